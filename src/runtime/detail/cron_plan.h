// Private to the runtime module: what a cronjob does at a given time — the schedule and
// concurrency-policy decision of the deploy controller, pure so it is unit-tested with plain
// numbers (Kubernetes' CronJob controller, in berth words).
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "model/model.h"

namespace berth::runtime::detail {

struct CronDecision {
  enum class Action {
    kNone,     // nothing is due
    kStart,    // start a run for the firing
    kSkip,     // policy forbid and a run goes on: skip the firing (an event says so)
    kReplace,  // policy replace and a run goes on: cancel it, then start a run
  };
  Action action = Action::kNone;
  int64_t scheduled_at_s = 0;  // the firing acted on: the latest due one (earlier missed ones
                               // are dropped, so a long outage yields one catch-up run)
  int64_t next_s = 0;          // the first firing after now; 0 = never
  bool missed = false;         // firings were dropped or this one is a minute late (an outage)
};

// `last_s`: the last firing already handled (its run's scheduled_at, or when the controller
// began watching the cronjob). `running`: runs of the component still going. `policy`:
// allow | forbid | replace. A suspended cronjob fires nothing (and the caller moves `last_s`
// on, so firings during a suspension are not caught up).
CronDecision PlanCron(const model::CronSchedule& schedule, const std::string& policy,
                      bool suspended, int64_t last_s, int64_t now_s, int running);

}  // namespace berth::runtime::detail
