#include "core/disk.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace berth {

int DiskSpace::UsedPercent() const {
  if (total_bytes == 0) return 0;
  uint64_t used = total_bytes > free_bytes ? total_bytes - free_bytes : 0;
  return static_cast<int>((used * 100 + total_bytes - 1) / total_bytes);
}

Result<DiskSpace> DiskSpaceOf(const std::string& path) {
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) {
    return Internal("cannot read the free space of " + path + ": " + std::strerror(errno));
  }
  DiskSpace d;
  d.total_bytes = static_cast<uint64_t>(st.f_blocks) * st.f_frsize;
  d.free_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  return d;
}

bool DiskIsFull(const std::string& path) {
  auto d = DiskSpaceOf(path);
  return d.ok() && d->free_bytes < kDiskFullBelowBytes;
}

bool IsDiskFullError(int e) { return e == ENOSPC || e == EDQUOT; }

bool IsDiskFullError(const std::error_code& ec) {
  return ec && (ec.category() == std::generic_category() ||
                ec.category() == std::system_category()) &&
         IsDiskFullError(ec.value());
}

std::string FormatBytes(uint64_t b) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(b));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  }
  return buf;
}

}  // namespace berth
