// CPU use of process groups as a percentage, the way `docker stats` and `kubectl top` show it:
// CPU time used over a recent window (default the last 10 s) divided by the wall time, as a
// percent of one core (a group busy on two cores shows 200). A single reading of /proc only
// gives CPU seconds since the start, so someone has to sample periodically: the local runtime
// calls Update about once a second with the process groups it supervises; the API reads a
// fresh sample at request time and compares it with the oldest sample in the window, so one
// GET answers with a meaningful value.
//
// It also remembers the cgroup (core/cgroup.h) of each group, so the API can prefer the
// cgroup's memory accounting and report the limits the kernel applies.
//
// Thread-safety: all methods are safe to call concurrently (one internal mutex).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "core/cgroup.h"

namespace berth {

struct CpuSample {
  std::chrono::steady_clock::time_point at;
  double cpu_seconds = 0;  // cumulative CPU time of the group at `at`
};

// Percent of one core used between two samples of the same group; nullopt when they are less
// than `min_span` apart (too noisy) or the counter went backwards (another group now).
std::optional<double> CpuPercent(
    const CpuSample& from, const CpuSample& to,
    std::chrono::milliseconds min_span = std::chrono::milliseconds(500));

struct UsageSamplerOptions {
  std::chrono::milliseconds window{10000};  // the percentage covers about this much time
  std::chrono::milliseconds every{2000};    // Update reads /proc at most this often
  CgroupLayout cgroups;                     // where instance cgroups live (Detect() in the server)
  std::string proc_root = "/proc";
};

class UsageSampler {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit UsageSampler(UsageSamplerOptions options = {});

  // The process groups to follow (pgid → cgroup name, "" for none); others are forgotten.
  // Reads their CPU time from /proc when `every` has passed since the last reading.
  void Update(const std::map<int, std::string>& groups, TimePoint now);
  // Adds one sample (Update's reading; tests feed synthetic ones). A counter that went
  // backwards starts the group's history again.
  void Record(int pgid, const CpuSample& sample);
  // CPU% of `pgid` from the oldest sample within the window to `now`; nullopt without one at
  // least half a second old.
  std::optional<double> Percent(int pgid, const CpuSample& now) const;
  // The cgroup name Update was given for `pgid` ("" when none or not followed).
  std::string CgroupOf(int pgid) const;
  const CgroupLayout& cgroups() const { return opt_.cgroups; }

 private:
  const UsageSamplerOptions opt_;
  mutable std::mutex mu_;
  std::map<int, std::deque<CpuSample>> samples_;  // guarded by mu_; oldest first
  std::map<int, std::string> groups_;             // guarded by mu_
  TimePoint last_read_{};                         // guarded by mu_
};

}  // namespace berth
