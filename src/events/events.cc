#include "events/events.h"

#include <cstdio>

#include "model/model.h"

namespace berth::events {

Recorder::Recorder(Store& store, const Clock& clock, std::chrono::seconds dedup_window)
    : store_(store), clock_(clock), dedup_window_(dedup_window) {}


Status Recorder::Record(const ComponentRef& where, Type type, const std::string& reason,
                        const std::string& message) {
  std::lock_guard<std::mutex> l(mu_);
  TimePoint now = clock_.Now();
  const std::string scope = where.Scope();
  // Repeats of the newest event are counted, not duplicated ("crashed 5 times").
  ListOptions newest;
  newest.scope = scope;
  newest.limit = 1;
  newest.descending = true;
  auto last = store_.List(model::kEvent, newest);
  if (!last.ok()) return last.status();
  if (!last->items.empty()) {
    const Object& o = last->items.front();
    auto e = model::EventFromJson(Json::parse(o.body, nullptr, false));
    if (e.ok() && e->reason == reason && e->message == message &&
        now - FromUnixMillis(o.updated_at_ms) < dedup_window_) {
      e->count += 1;
      e->last_at = FormatTime(now);
      WriteBatch b;
      Op op;
      op.type = OpType::kUpdate;
      op.object = Object{model::kEvent, scope, o.name, model::ToJson(*e).dump(), ""};
      op.expected_revision = o.revision;
      b.ops.push_back(std::move(op));
      auto r = store_.Commit(b);
      return r.ok() ? Status::Ok() : r.status();
    }
  }
  static int counter = 0;
  char name[48];
  std::snprintf(name, sizeof name, "%015lld-%04d", static_cast<long long>(UnixMillis(now)),
                counter++ % 10000);
  model::Event e;
  e.id = name;
  e.type = type == Type::kWarning ? "warning" : "normal";
  e.reason = reason;
  e.message = message;
  e.app = where.app;
  e.component = where.component;
  e.first_at = e.last_at = FormatTime(now);
  WriteBatch b;
  Op op;
  op.type = OpType::kCreate;
  op.object = Object{model::kEvent, scope, name, model::ToJson(e).dump(), ""};
  b.ops.push_back(std::move(op));
  auto r = store_.Commit(b);
  return r.ok() ? Status::Ok() : r.status();
}

}  // namespace berth::events
