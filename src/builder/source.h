// Getting a component's source into a fresh directory: a local directory (copied without
// .git), a git repository at a ref (git CLI; the commit is recorded), an archive (.tar.gz,
// .tgz, .tar, .zip; unpacked safely) or a built package (a runnable jar, a binary or a folder).
//
// Archive safety: every entry is checked before anything is written — absolute paths, ".."
// components, symlinks or hard links whose target leaves the destination, device files and
// FIFOs are rejected, and the unpacked size and number of entries are limited. An archive
// whose entries all sit in one top-level directory is unpacked without that directory.
//
// Whatever the type, the fetched tree is then checked as a whole: a symlink in it that leads
// outside it when followed (an absolute target, or ".." above the top, also through other
// links: core/safe_fs.h ResolveInTree) fails the fetch with 400 `unsafe_path`, so nothing
// after it (detection, the build, the server) can be led out of the tree by a user's link.
//
// Git runs with a clean environment and only the transports http, https and ssh (plus file for
// a local repository, which the API admits only under the source roots: source_policy.h),
// never remote helpers (GIT_ALLOW_PROTOCOL, protocol.allow=never, GIT_PROTOCOL_FROM_USER=0);
// a transfer slower than 1 KB/s for 30 s is abandoned (GIT_HTTP_LOW_SPEED_*, ssh keep-alives),
// and the whole fetch is killed with its process group after `git_timeout`.
// Thread-safety: free functions; concurrent calls must use different destinations.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "core/status.h"
#include "model/model.h"

namespace berth::builder {

struct SourceLimits {
  int64_t max_bytes = int64_t{2} << 30;  // unpacked/copied bytes
  int64_t max_files = 200000;            // entries
  // A git fetch (clone, checkout, rev-parse together) still running after this is killed:
  // 504 `source_timeout`.
  std::chrono::seconds git_timeout{600};
};

struct FetchResult {
  std::string commit;  // git sources: the checked-out commit
};

// `dest` must not exist; it is created. `log` receives progress lines (git's output).
// `cancel` stops a running git. Errors: invalid_argument (bad source, unsafe archive, limits),
// unsafe_path (a symlink that leads out of the tree), failed_precondition (git failed),
// source_timeout (git took longer than limits.git_timeout), with a message naming the cause.
// Who may use which source is not checked here: see source_policy.h.
Result<FetchResult> FetchSource(const model::Source& source, const std::string& dest,
                                const SourceLimits& limits,
                                const std::function<void(const std::string&)>& log,
                                const std::atomic<bool>& cancel);

// Validates an archive without writing anything (the first pass of ExtractArchive): readable,
// no escaping or special entries, within the limits. Errors: invalid_argument.
Status CheckArchive(const std::string& archive, const SourceLimits& limits);
// The archive part of FetchSource, exposed for tests.
Status ExtractArchive(const std::string& archive, const std::string& dest, const SourceLimits& limits);

}  // namespace berth::builder
