#include "core/usage_sampler.h"

#include <set>

#include "core/proc_usage.h"

namespace berth {

std::optional<double> CpuPercent(const CpuSample& from, const CpuSample& to,
                                 std::chrono::milliseconds min_span) {
  auto span = to.at - from.at;
  if (span < min_span || span.count() <= 0) return std::nullopt;
  double used = to.cpu_seconds - from.cpu_seconds;
  if (used < 0) return std::nullopt;
  double wall = std::chrono::duration<double>(span).count();
  return used / wall * 100.0;
}

UsageSampler::UsageSampler(UsageSamplerOptions options) : opt_(std::move(options)) {}

void UsageSampler::Update(const std::map<int, std::string>& groups, TimePoint now) {
  std::set<int> pgids;
  {
    std::lock_guard<std::mutex> l(mu_);
    groups_ = groups;
    for (auto it = samples_.begin(); it != samples_.end();) {
      it = groups.count(it->first) ? std::next(it) : samples_.erase(it);
    }
    if (last_read_ != TimePoint{} && now - last_read_ < opt_.every) return;
    last_read_ = now;
    for (const auto& [pgid, cgroup] : groups) pgids.insert(pgid);
  }
  // One pass over /proc, outside the lock: the API's readers are not held up by it.
  auto usage = ReadProcessGroups(pgids, opt_.proc_root);
  for (const auto& [pgid, u] : usage) Record(pgid, {now, u.cpu_seconds});
}

void UsageSampler::Record(int pgid, const CpuSample& sample) {
  std::lock_guard<std::mutex> l(mu_);
  auto& q = samples_[pgid];
  if (!q.empty() && (sample.cpu_seconds < q.back().cpu_seconds || sample.at < q.back().at)) {
    q.clear();  // the pgid names another group now (or the clock is not this one's)
  }
  q.push_back(sample);
  // Keep one sample about a window old: the oldest within window + one sampling period.
  while (q.size() > 1 && sample.at - q.front().at > opt_.window + opt_.every) q.pop_front();
}

std::optional<double> UsageSampler::Percent(int pgid, const CpuSample& now) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = samples_.find(pgid);
  if (it == samples_.end()) return std::nullopt;
  for (const CpuSample& s : it->second) {  // oldest first: the widest span in the window
    if (now.at - s.at > opt_.window + opt_.every) continue;
    if (auto p = CpuPercent(s, now)) return p;
    // Too recent (or another group's counter): nothing older will do better.
    return std::nullopt;
  }
  return std::nullopt;
}

std::string UsageSampler::CgroupOf(int pgid) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = groups_.find(pgid);
  return it == groups_.end() ? "" : it->second;
}

}  // namespace berth
