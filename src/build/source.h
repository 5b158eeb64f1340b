// Getting a component's source into a fresh directory: a local directory (copied without
// .git), a git repository at a ref (git CLI; the commit is recorded), an archive (.tar.gz,
// .tgz, .tar, .zip; unpacked safely) or a built package (a runnable jar, a binary or a folder).
//
// Archive safety: every entry is checked before anything is written — absolute paths, ".."
// components, symlinks or hard links whose target leaves the destination, device files and
// FIFOs are rejected, and the unpacked size and number of entries are limited. An archive
// whose entries all sit in one top-level directory is unpacked without that directory.
// Thread-safety: free functions; concurrent calls must use different destinations.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "core/status.h"
#include "model/model.h"

namespace berth::build {

struct SourceLimits {
  int64_t max_bytes = int64_t{2} << 30;  // unpacked/copied bytes
  int64_t max_files = 200000;            // entries
};

struct FetchResult {
  std::string commit;  // git sources: the checked-out commit
};

// `dest` must not exist; it is created. `log` receives progress lines (git's output).
// `cancel` stops a running git. Errors: invalid_argument (bad source, unsafe archive, limits),
// failed_precondition (git failed), with a message naming the cause.
Result<FetchResult> FetchSource(const model::Source& source, const std::string& dest,
                                const SourceLimits& limits,
                                const std::function<void(const std::string&)>& log,
                                const std::atomic<bool>& cancel);

// Validates an archive without writing anything (the first pass of ExtractArchive): readable,
// no escaping or special entries, within the limits. Errors: invalid_argument.
Status CheckArchive(const std::string& archive, const SourceLimits& limits);
// The archive part of FetchSource, exposed for tests.
Status ExtractArchive(const std::string& archive, const std::string& dest, const SourceLimits& limits);

}  // namespace berth::build
