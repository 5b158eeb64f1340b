// Recording what happened to a component (DESIGN.md §1 "event"): build started/failed,
// instance started/crashed/OOM-killed/unhealthy, with the reason a person needs. Events are
// store objects of kind "event" under the component's scope ("team/app/component"), named so
// that name order is time order (listing descending gives newest first). A repeat of the same
// (reason, message) within `dedup_window` bumps the last event's count instead of adding one.
// Thread-safety: thread-safe.
#pragma once

#include <chrono>
#include <mutex>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "store/store.h"

namespace berth::events {

enum class Type { kNormal, kWarning };

struct ComponentRef {
  std::string team;
  std::string app;
  std::string component;
  std::string Scope() const { return team + "/" + app + "/" + component; }
};

class Recorder {
 public:
  Recorder(Store& store, const Clock& clock,
           std::chrono::seconds dedup_window = std::chrono::seconds(600));
  // Records (or counts a repeat of) an event. `reason` is a short CamelCase word
  // ("BuildFailed", "CrashLoop"); `message` is the sentence a person reads.
  Status Record(const ComponentRef& where, Type type, const std::string& reason,
                const std::string& message);

 private:
  Store& store_;
  const Clock& clock_;
  const std::chrono::seconds dedup_window_;
  std::mutex mu_;  // serialises the read-modify-write of repeats
};

}  // namespace berth::events
