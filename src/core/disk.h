// The disk holding a path: its size and free space (statvfs), and what counts as full. Used by
// the full-disk handling of issue 24 (docs/server.md "A full disk"): readiness, the builder's
// messages, `berth doctor` and the warning before the data directory's disk is full.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <system_error>

#include "core/status.h"

namespace berth {

struct DiskSpace {
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;  // available to an unprivileged writer (f_bavail)
  // Percent of the disk in use, 0..100 (rounded up: "100" only when nothing is left).
  int UsedPercent() const;
};

// Below this much free space the disk counts as full: the store's commits and uploads fail
// on it (SQLite needs a few pages, an upload its whole size).
inline constexpr uint64_t kDiskFullBelowBytes = 1 << 20;

Result<DiskSpace> DiskSpaceOf(const std::string& path);
// True when the disk holding `path` has less than kDiskFullBelowBytes free (false when it
// cannot be told).
bool DiskIsFull(const std::string& path);
// True for the errors of a full disk or an exhausted quota (ENOSPC, EDQUOT).
bool IsDiskFullError(int errno_value);
bool IsDiskFullError(const std::error_code& ec);
// "1.2 GiB" for messages.
std::string FormatBytes(uint64_t bytes);

}  // namespace berth
