#include "runtime/detail/cron_plan.h"

namespace berth::runtime::detail {

CronDecision PlanCron(const model::CronSchedule& schedule, const std::string& policy,
                      bool suspended, int64_t last_s, int64_t now_s, int running) {
  CronDecision d;
  auto next_after_now = schedule.NextAfter(now_s);
  d.next_s = next_after_now ? *next_after_now : 0;
  if (suspended) return d;
  auto first = schedule.NextAfter(last_s);
  if (!first || *first > now_s) return d;
  // Several firings may be due after an outage: act once, for the latest.
  int64_t t = *first;
  for (int steps = 0; steps < 100000; ++steps) {
    auto n = schedule.NextAfter(t);
    if (!n || *n > now_s) break;
    t = *n;
    d.missed = true;  // an earlier firing was dropped
  }
  d.scheduled_at_s = t;
  d.missed = d.missed || now_s - t >= 60;
  if (running == 0 || policy == "allow") {
    d.action = CronDecision::Action::kStart;
  } else if (policy == "forbid") {
    d.action = CronDecision::Action::kSkip;
  } else {
    d.action = CronDecision::Action::kReplace;
  }
  return d;
}

}  // namespace berth::runtime::detail
