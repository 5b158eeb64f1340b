// File operations strictly beneath a directory, never through a symlink.
//
// The server reads and writes files inside trees that users shape: a source checkout, a build
// directory, an artifact, an instance's working directory. A symlink planted there ("conf ->
// /etc", "build.log -> ../../secret.key") must never make the server read, write or delete
// something else. Every function here takes a `root` the server itself chose (an admin-configured
// data directory may be a symlink, so the root is followed) and a relative path inside it, and
// walks that path one component at a time with openat(O_NOFOLLOW): a symlink anywhere on the way
// or at the end fails with `unsafe_path` instead of being followed. A relative path must be
// non-empty, not absolute and free of ".." (ValidateRelativePath), else `unsafe_path` too.
//
// ResolveInTree/CheckTreeSymlinks answer a different question — where a user's symlink *would*
// lead if followed with the tree taken as the whole world — so that sources whose links escape
// their tree are refused before anything reads them.
//
// Thread-safety: free functions over the file system; no shared state.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace berth {

// Owns a file descriptor (closed on destruction). Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  int get() const { return fd_; }
  int release();
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// The stable error for a path that is absolute, climbs with "..", or runs through a symlink:
// InvalidArgument with reason "unsafe_path".
Status UnsafePath(std::string message, std::string field = {});

// Checks `rel` as a path relative to a directory: not empty, not absolute, no ".." component,
// no NUL, at most 4096 bytes. Errors: unsafe_path naming `field`.
Status ValidateBeneathPath(std::string_view rel, const std::string& field = {});

// Opens the directory `root` (following it: the server chose it) and then each directory of
// `rel` without following symlinks; with `create`, missing directories are made (0755).
// `rel` may be "" or "." for the root itself. Errors: unsafe_path (a symlink or a non-directory
// on the way), not_found (missing and !create), internal.
Result<UniqueFd> OpenDirBeneath(const std::string& root, std::string_view rel, bool create);

// Opens the file `rel` beneath `root` with `flags` (O_NOFOLLOW and O_CLOEXEC are added; with
// O_CREAT, missing parent directories are made). A symlink at the end or on the way is
// unsafe_path; a missing file is not_found.
Result<UniqueFd> OpenBeneath(const std::string& root, std::string_view rel, int flags,
                             mode_t mode = 0644);

// Reads at most `max` bytes of the regular file `rel` beneath `root` starting at `offset`; sets
// *size to the file's size when given. Errors as OpenBeneath, plus unsafe_path for a
// non-regular file.
Result<std::string> ReadBeneath(const std::string& root, std::string_view rel, int64_t offset,
                                size_t max, int64_t* size = nullptr);

// Replaces the file `rel` beneath `root` with `content`: any existing entry there (a file, a
// hard link into something shared, a symlink) is unlinked first and a new file created with
// O_EXCL, so nothing else is ever written through. Parent directories are made as needed.
Status WriteBeneath(const std::string& root, std::string_view rel, std::string_view content,
                    mode_t mode = 0644);

// Removes the entry `rel` beneath `root` — a file, a symlink (the link itself) or a whole
// directory tree, never following a symlink inside it. A missing entry is not an error.
Status RemoveBeneath(const std::string& root, std::string_view rel);

// lstat of `rel` beneath `root`, reached through real directories only (the entry itself may
// be a symlink: it is described, not followed). Errors as OpenDirBeneath.
Result<struct stat> StatBeneath(const std::string& root, std::string_view rel);

// True when `rel` beneath `root` is a real directory reached through real directories only.
bool IsRealDirBeneath(const std::string& root, std::string_view rel);

// Where `rel` leads inside the tree `root` when every symlink on the way is followed with the
// tree taken as the whole file system: the resolved path relative to root ("" for the root
// itself). Missing components are taken as they are written. Errors: unsafe_path when the walk
// leaves the tree (an absolute target, ".." above the root) or meets more than 40 links.
Result<std::string> ResolveInTree(const std::string& root, std::string_view rel);

// Walks the tree `root` (never following links) and checks that every symlink in it resolves
// inside the tree (ResolveInTree). Errors: unsafe_path naming the first link that escapes and
// its target; `field` is put on the error.
Status CheckTreeSymlinks(const std::string& root, const std::string& field);

}  // namespace berth
