// Runtime routes (docs/api.md "Runtime"): restart requests, operations, job runs and instance
// logs. Start, stop,
// scale and rollback are PATCHes of the component (handlers.cc); the deploy controller makes
// them real.
//
// Instance logs are read from the files the shims write
// (DATA/logs/instances/<team>/<app>/<component>/<instance>.log, rotated to .log.1, .log.2),
// one line per output line: "<RFC 3339 UTC ms> <out|err|shim> <text>".
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "api/detail/service.h"
#include "core/names.h"
#include "core/safe_fs.h"
#include "events/events.h"

namespace berth::api {
namespace {

namespace fs = std::filesystem;
using model::Role;

constexpr size_t kMaxTail = 10000;
constexpr size_t kDefaultTail = 1000;
constexpr size_t kMaxChunk = 256 << 10;  // bytes read per file per poll while following
constexpr size_t kMaxBacklogFile = 64 << 20;  // bytes read of one (rotated) log file for a backlog

std::string CompScope(const Ctx& c) {
  return c.P("team") + "/" + c.P("app") + "/" + c.P("component");
}

Result<Object> LoadComponent(Service& s, const Ctx& ctx) {
  auto o = s.store.Get(model::kComponent, ctx.P("team") + "/" + ctx.P("app"), ctx.P("component"));
  if (!o.ok() && o.status().code() == Code::kNotFound) {
    return NotFound("component \"" + ctx.P("component") + "\" not found in app \"" + ctx.P("app") +
                    "\"");
  }
  return o;
}

// ---- operations ---------------------------------------------------------------------------

constexpr char kCurrent[] = "current";

// The runtime-relevant part of a stored component: what decides which instances run and how.
// Source and build settings only matter to builds (except the start command); the rollout
// settings say how to replace instances, not what runs; connection_env is for dependents.
Json RuntimeView(const Json& c) {
  Json v = c;
  v.erase("source");
  v.erase("rollout");
  v.erase("connection_env");  // what dependents get: their business, at their next start
  v.erase("job");             // job settings and the schedule apply to the next run
  v.erase("schedule");
  v.erase("revision");
  std::string start = c.contains("build") && c["build"].is_object()
                          ? c["build"].value("start_command", "")
                          : "";
  v["build"] = start;
  return v;
}

struct VersionInfo {
  bool any_ready = false;
  int64_t newest_ready = -1;
  std::map<std::string, int64_t> ready_numbers;
};

Result<VersionInfo> ReadyVersions(Service& s, const std::string& scope) {
  VersionInfo info;
  ListOptions o;
  o.scope = scope;
  o.limit = 1000;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(ListResult r, s.store.List(model::kVersion, o));
    for (const Object& v : r.items) {
      Json j = Json::parse(v.body, nullptr, false);
      if (!j.is_object() || j.value("status", "") != "ready") continue;
      int64_t n = j.value("number", int64_t{0});
      info.any_ready = true;
      info.newest_ready = std::max(info.newest_ready, n);
      info.ready_numbers[v.name] = n;
    }
    if (r.next.empty()) break;
    o.after = r.next;
  }
  return info;
}

// Which operation (if any) turning `before` into `after` is, and its description.
std::string Classify(const Json& before, const Json& after, const VersionInfo& versions,
                     std::string* detail) {
  auto str = [](const Json& j, const char* k) { return j.value(k, std::string()); };
  if (str(before, "desired_state") != str(after, "desired_state")) {
    if (str(after, "desired_state") == "stopped") {
      *detail = "stop every instance";
      return "stop";
    }
    *detail = "start " + std::to_string(after.value("replicas", 0)) + " instance(s)";
    return "start";
  }
  if (str(before, "desired_state") == "stopped") return "";  // nothing runs, nothing rolls
  if (str(before, "version") != str(after, "version")) {
    std::string v = str(after, "version");
    if (v.empty()) {
      *detail = "deploy the newest ready version";
      return "deploy";
    }
    auto it = versions.ready_numbers.find(v);
    if (it != versions.ready_numbers.end() && it->second < versions.newest_ready) {
      *detail = "roll back to " + v;
      return "rollback";
    }
    *detail = "deploy " + v;
    return "deploy";
  }
  if (before.value("restart_generation", int64_t{0}) != after.value("restart_generation", int64_t{0})) {
    *detail = "restart every instance, one at a time";
    return "restart";
  }
  Json procs_before = before.value("processes", Json::object());
  Json procs_after = after.value("processes", Json::object());
  if (before.value("replicas", 0) != after.value("replicas", 0) || procs_before != procs_after) {
    std::string what;
    if (before.value("replicas", 0) != after.value("replicas", 0)) {
      what = "from " + std::to_string(before.value("replicas", 0)) + " to " +
             std::to_string(after.value("replicas", 0)) + " instance(s)";
    }
    for (const auto& [type, n] : procs_after.items()) {
      if (procs_before.contains(type) && procs_before[type] == n) continue;
      what += (what.empty() ? "" : ", ") + type + " to " + n.dump();
    }
    for (const auto& [type, n] : procs_before.items()) {
      if (!procs_after.contains(type)) what += (what.empty() ? "" : ", ") + type + " to 1 (default)";
    }
    *detail = "scale " + what;
    return "scale";
  }
  Json b = RuntimeView(before), a = RuntimeView(after);
  if (a == b) return "";
  std::string fields;
  for (auto it = a.begin(); it != a.end(); ++it) {
    if (!b.contains(it.key()) || b[it.key()] != *it) {
      fields += (fields.empty() ? "" : ", ") + (it.key() == "build" ? "build.start_command" : it.key());
    }
  }
  *detail = "replace the instances with the changed settings (" + fields + ")";
  return "update";
}

std::string BusyMessage(const Ctx& ctx, const model::Operation& op) {
  const std::string& comp = ctx.P("component");
  const std::string where = comp + " --app " + ctx.P("app");
  return "component " + Quoted(comp) + " is busy: its " + op.type + " (" + op.detail + ", by " + op.by +
         ", started " + op.started_at + ") is still in progress. Wait for it to finish " +
         "(`berth wait " + where + " --operation`, or GET .../operation until its status is no " +
         "longer in_progress) or cancel it (`berth cancel " + where + "`), then try again";
}

Result<std::optional<Object>> CurrentOperation(Service& s, const std::string& scope) {
  auto o = s.store.Get(model::kOperation, scope, kCurrent);
  if (o.ok()) return std::optional<Object>(*o);
  if (o.status().code() == Code::kNotFound) return std::optional<Object>();
  return o.status();
}

// ---- team quotas --------------------------------------------------------------------------

// What a component asks of its team's quota: instances, and memory and CPU for each.
struct Usage {
  int64_t instances = 0;
  int64_t memory_mb = 0;
  int64_t cpu_millis = 0;
  bool unlimited_memory = false;  // runs instances without a memory limit
  bool unlimited_cpu = false;
};

Usage UsageOf(const Json& c) {
  Usage u;
  if (!c.is_object() || c.value("desired_state", "running") != "running") return u;
  u.instances = c.value("replicas", 0);
  // Process types other than web count with the counts set for them (an unset type's
  // default instance is not counted: the API does not know a version's types).
  if (c.contains("processes") && c["processes"].is_object()) {
    for (const auto& [type, n] : c["processes"].items()) {
      if (n.is_number_integer()) u.instances += n.get<int64_t>();
    }
  }
  if (u.instances == 0) return u;
  Json res = c.contains("resources") && c["resources"].is_object() ? c["resources"] : Json::object();
  int64_t mem = res.value("memory_mb", int64_t{0}), cpu = res.value("cpu_millis", int64_t{0});
  u.memory_mb = u.instances * mem;
  u.cpu_millis = u.instances * cpu;
  u.unlimited_memory = mem == 0;
  u.unlimited_cpu = cpu == 0;
  return u;
}

// Refuses a write that would take the team over one of its quotas (instances, memory_mb,
// cpu_millis; 0 = unlimited). Only growth is refused: a team already over a quota that was
// lowered can still shrink or change other things. With a memory or CPU quota, every running
// component must declare that limit (as Kubernetes' ResourceQuota demands), or the quota
// would mean nothing.
Status CheckQuota(Service& s, const Ctx& ctx, const Json* before, const Json& after) {
  auto team_obj = s.store.Get(model::kTeam, "", ctx.P("team"));
  if (!team_obj.ok()) return team_obj.status();
  auto team = model::ParseTeam(Json::parse(team_obj->body, nullptr, false));
  if (!team.ok()) return Status::Ok();
  const model::Quota& q = team->quota;
  if (q.instances == 0 && q.memory_mb == 0 && q.cpu_millis == 0) return Status::Ok();
  Usage was = before ? UsageOf(*before) : Usage{};
  Usage will = UsageOf(after);
  if (will.instances <= was.instances && will.memory_mb <= was.memory_mb &&
      will.cpu_millis <= was.cpu_millis) {
    return Status::Ok();
  }
  const std::string comp = after.value("name", std::string());
  if (q.memory_mb > 0 && will.unlimited_memory && will.instances > 0) {
    return Status(Code::kConflict, "quota_exceeded",
                  "team " + Quoted(ctx.P("team")) + " has a memory quota of " +
                      std::to_string(q.memory_mb) + " MiB: component " + Quoted(comp) +
                      " must set resources.memory_mb to run",
                  "resources.memory_mb");
  }
  if (q.cpu_millis > 0 && will.unlimited_cpu && will.instances > 0) {
    return Status(Code::kConflict, "quota_exceeded",
                  "team " + Quoted(ctx.P("team")) + " has a CPU quota of " +
                      std::to_string(q.cpu_millis) + " millicores: component " + Quoted(comp) +
                      " must set resources.cpu_millis to run",
                  "resources.cpu_millis");
  }
  // The team's use without this component, then with it as it would be.
  Usage others;
  BERTH_ASSIGN_OR_RETURN(std::vector<Object> apps, ListAll(s.store, model::kApp, ctx.P("team")));
  for (const Object& a : apps) {
    BERTH_ASSIGN_OR_RETURN(std::vector<Object> comps,
                           ListAll(s.store, model::kComponent, ctx.P("team") + "/" + a.name));
    for (const Object& c : comps) {
      if (a.name == ctx.P("app") && c.name == comp) continue;
      Usage u = UsageOf(Json::parse(c.body, nullptr, false));
      others.instances += u.instances;
      others.memory_mb += u.memory_mb;
      others.cpu_millis += u.cpu_millis;
    }
  }
  struct Dim {
    const char* name;
    const char* unit;
    const char* field;
    int64_t limit, total, grew;
  };
  for (const Dim& d : {Dim{"instances", "", "replicas", q.instances, others.instances + will.instances,
                           will.instances - was.instances},
                       Dim{"memory", " MiB", "resources.memory_mb", q.memory_mb,
                           others.memory_mb + will.memory_mb, will.memory_mb - was.memory_mb},
                       Dim{"CPU", " millicores", "resources.cpu_millis", q.cpu_millis,
                           others.cpu_millis + will.cpu_millis, will.cpu_millis - was.cpu_millis}}) {
    if (d.limit == 0 || d.grew <= 0 || d.total <= d.limit) continue;
    std::string n = std::string(d.name);
    return Status(Code::kConflict, "quota_exceeded",
                  "team " + Quoted(ctx.P("team")) + " " + n + " quota exceeded by " +
                      std::to_string(d.total - d.limit) + d.unit + ": the team would use " +
                      std::to_string(d.total) + d.unit + " of " + std::to_string(d.limit) + d.unit +
                      " (component " + Quoted(comp) + ": " +
                      std::to_string(std::string(d.name) == "instances" ? will.instances
                                     : std::string(d.name) == "memory" ? will.memory_mb
                                                                        : will.cpu_millis) +
                      d.unit + ")",
                  d.field);
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<Op>> LifecycleOps(Service& s, const Ctx& ctx, const Json* before,
                                     const Json& after) {
  std::vector<Op> ops;
  Status quota = CheckQuota(s, ctx, before, after);
  if (!quota.ok()) {
    if (before != nullptr && quota.reason() == "quota_exceeded") {
      // The refusal is also told where people look for why a component does not grow.
      (void)events::Recorder(s.store, s.clock)
          .Record({ctx.P("team"), ctx.P("app"), ctx.P("component")}, events::Type::kWarning,
                  "QuotaExceeded", "refused: " + quota.message());
    }
    return quota;
  }
  if (before == nullptr) return ops;  // a new component: nothing runs yet
  const std::string scope = CompScope(ctx);
  BERTH_ASSIGN_OR_RETURN(VersionInfo versions, ReadyVersions(s, scope));
  std::string detail;
  std::string type = Classify(*before, after, versions, &detail);
  // Without a ready version nothing runs or rolls: settings can change freely.
  if (type.empty() || !versions.any_ready) return ops;
  BERTH_ASSIGN_OR_RETURN(std::optional<Object> cur, CurrentOperation(s, scope));
  if (cur) {
    auto op = model::OperationFromJson(Json::parse(cur->body, nullptr, false));
    if (op.ok() && op->status == "in_progress") {
      return Status(Code::kConflict, "operation_in_progress", BusyMessage(ctx, *op));
    }
  }
  model::Operation op;
  op.type = type;
  op.detail = detail;
  op.by = ctx.who.user;
  op.started_at = FormatTime(s.clock.Now());
  Op w;
  w.type = cur ? OpType::kUpdate : OpType::kCreate;
  w.object = Object{model::kOperation, scope, kCurrent, model::ToJson(op).dump(), ""};
  if (cur) w.expected_revision = cur->revision;
  ops.push_back(std::move(w));
  return ops;
}

namespace {

// GET .../operation: the component's current (or last) operation.
Result<Reply> GetOperation(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kViewer, "read components"));
  BERTH_ASSIGN_OR_RETURN(Object comp, LoadComponent(s, ctx));
  (void)comp;
  BERTH_ASSIGN_OR_RETURN(std::optional<Object> cur, CurrentOperation(s, CompScope(ctx)));
  if (!cur) {
    return NotFound("component " + Quoted(ctx.P("component")) + " has had no operation yet");
  }
  return Reply{200, RenderObject(*cur), {}, nullptr};
}

// POST .../operation/cancel: ends the operation in progress (status cancelled) so another can
// begin. What already changed stays; the runtime keeps converging on the component as it is,
// so the usual next step is a rollback or another deploy.
Result<Reply> CancelOperation(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "cancel operations"));
  BERTH_ASSIGN_OR_RETURN(Object comp, LoadComponent(s, ctx));
  (void)comp;
  const std::string scope = CompScope(ctx);
  for (int attempt = 0; attempt < 5; ++attempt) {
    BERTH_ASSIGN_OR_RETURN(std::optional<Object> cur, CurrentOperation(s, scope));
    std::optional<model::Operation> op;
    if (cur) {
      auto parsed = model::OperationFromJson(Json::parse(cur->body, nullptr, false));
      if (parsed.ok()) op = *parsed;
    }
    if (!op || op->status != "in_progress") {
      return FailedPrecondition("component " + Quoted(ctx.P("component")) +
                                " has no operation in progress to cancel");
    }
    Json before = model::ToJson(*op);
    op->status = "cancelled";
    op->finished_at = FormatTime(s.clock.Now());
    op->message = "cancelled by " + ctx.who.user;
    Json after = model::ToJson(*op);
    WriteBatch b;
    Op w;
    w.type = OpType::kUpdate;
    w.object = Object{model::kOperation, scope, kCurrent, after.dump(), ""};
    w.expected_revision = cur->revision;
    b.ops.push_back(std::move(w));
    Json summary = {{"before", before}, {"after", after}, {"changed", Json::array({"status"})}};
    b.audit.push_back(AuditRecord{ctx.who.user, ctx.P("team"), "cancel",
                                  "apps/" + ctx.P("app") + "/components/" + ctx.P("component") +
                                      "/operation",
                                  summary.dump()});
    auto r = s.store.Commit(b);
    if (r.ok()) {
      (void)events::Recorder(s.store, s.clock)
          .Record({ctx.P("team"), ctx.P("app"), ctx.P("component")}, events::Type::kWarning,
                  "OperationCancelled",
                  "the " + op->type + " (" + op->detail + ") was cancelled by " + ctx.who.user);
      return Reply{200, RenderObject(r->objects.front()), {}, nullptr};
    }
    if (r.status().code() != Code::kConflict) return r.status();
  }
  return RevisionConflict("the operation is changing concurrently: retry");
}

// POST .../restart: bumps restart_generation; the controller replaces every instance, one at a
// time (a rolling restart).
Result<Reply> Restart(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "restart components"));
  for (int attempt = 0; attempt < 5; ++attempt) {
    BERTH_ASSIGN_OR_RETURN(Object cur, LoadComponent(s, ctx));
    Json before = Json::parse(cur.body, nullptr, false);
    if (!before.is_object()) return Internal("stored component is not a JSON object");
    Json after = before;
    after["restart_generation"] = before.value("restart_generation", int64_t{0}) + 1;
    BERTH_ASSIGN_OR_RETURN(std::vector<Op> extra, LifecycleOps(s, ctx, &before, after));
    WriteBatch b;
    Op op;
    op.type = OpType::kUpdate;
    op.object = Object{model::kComponent, cur.scope, cur.name, after.dump(), cur.index_key};
    op.expected_revision = cur.revision;
    b.ops.push_back(std::move(op));
    for (Op& e : extra) b.ops.push_back(std::move(e));
    Json summary = {{"before", {{"restart_generation", before.value("restart_generation", 0)}}},
                    {"after", {{"restart_generation", after["restart_generation"]}}},
                    {"changed", Json::array({"restart_generation"})}};
    b.audit.push_back(AuditRecord{ctx.who.user, ctx.P("team"), "restart",
                                  "apps/" + ctx.P("app") + "/components/" + ctx.P("component"),
                                  summary.dump()});
    auto r = s.store.Commit(b);
    if (r.ok()) {
      Json body = RenderObject(r->objects.front());
      AddComponentAddresses(s, ctx.P("team"), ctx.P("app"), &body);
      return Reply{202, body, {}, nullptr};
    }
    if (r.status().code() != Code::kConflict && r.status().code() != Code::kAlreadyExists) {
      return r.status();
    }
  }
  return RevisionConflict("the component is being changed concurrently: retry");
}

// "10m", "30s", "2h", "1d" → milliseconds; -1 when not a duration.
int64_t ParseDurationMs(const std::string& text) {
  if (text.size() < 2) return -1;
  std::string digits = text.substr(0, text.size() - 1);
  if (digits.empty() || digits.size() > 9 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return -1;
  }
  int64_t n = std::stoll(digits);
  switch (text.back()) {
    case 's': return n * 1000;
    case 'm': return n * 60 * 1000;
    case 'h': return n * 3600 * 1000;
    case 'd': return n * 86400 * 1000;
    default: return -1;
  }
}

// The log files' timestamps are fixed-width RFC 3339 with milliseconds, so times compare as
// strings. Returns the lower bound ("" = no bound).
Result<std::string> SinceBound(const Ctx& ctx, const Clock& clock) {
  std::string since = ctx.req.Query("since");
  if (since.empty()) return std::string();
  int64_t ms = ParseDurationMs(since);
  if (ms >= 0) return FormatTime(clock.Now() - std::chrono::milliseconds(ms));
  // RFC 3339 UTC: "2026-11-23T11:18:26Z" or with milliseconds.
  if (since.size() >= 20 && since[4] == '-' && since[10] == 'T' && since.back() == 'Z') {
    if (since.find('.') == std::string::npos) since.insert(since.size() - 1, ".000");
    return since;
  }
  return InvalidArgument("since must be a duration (30s, 10m, 2h, 1d) or an RFC 3339 UTC time",
                         "since");
}

struct LogLine {
  std::string time;
  std::string instance;
  std::string stream;
  std::string text;
};

bool ParseLine(const std::string& raw, const std::string& instance, LogLine* out) {
  size_t a = raw.find(' ');
  if (a == std::string::npos) return false;
  size_t b = raw.find(' ', a + 1);
  if (b == std::string::npos) return false;
  out->time = raw.substr(0, a);
  out->stream = raw.substr(a + 1, b - a - 1);
  out->text = raw.substr(b + 1);
  out->instance = instance;
  return true;
}

std::string Render(const LogLine& l) {
  Json j = {{"time", l.time}, {"instance", l.instance}, {"stream", l.stream}, {"line", l.text}};
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

// Instance logs live in DATA/logs/instances/<team>/<app>/<component>/ (`root` the data dir,
// `rel` the rest); they are read with core/safe_fs.h, never through a symlink.
class LogStream final : public StreamSource {
 public:
  LogStream(std::string root, std::string rel, std::string instance, std::string since,
            std::string grep, bool follow, size_t tail)
      : root_(std::move(root)), rel_(std::move(rel)), dir_(root_ + "/" + rel_),
        instance_(std::move(instance)), since_(std::move(since)), grep_(std::move(grep)),
        follow_(follow), tail_(tail) {}

  bool Poll(std::string* out) override {
    if (!started_) {
      started_ = true;
      Backlog(out);
      return follow_;
    }
    for (const std::string& inst : Instances()) Follow(inst, out);
    return true;
  }

  std::string Heartbeat() override { return "{\"type\":\"heartbeat\"}\n"; }

 private:
  struct Cursor {
    ino_t inode = 0;
    off_t offset = 0;
    std::string partial;
  };

  bool Keep(const LogLine& l) const {
    if (!since_.empty() && l.time < since_) return false;
    if (!grep_.empty() && l.text.find(grep_) == std::string::npos) return false;
    return true;
  }

  std::vector<std::string> Instances() const {
    std::vector<std::string> out;
    if (!instance_.empty()) {
      out.push_back(instance_);
      return out;
    }
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_, ec)) {
      std::string name = e.path().filename().string();
      if (name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0) {
        out.push_back(name.substr(0, name.size() - 4));
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  void Backlog(std::string* out) {
    std::vector<LogLine> lines;
    for (const std::string& inst : Instances()) {
      std::string base = rel_ + "/" + inst + ".log";
      for (int i = 9; i >= 0; --i) {
        std::string rel = i == 0 ? base : base + "." + std::to_string(i);
        auto st = StatBeneath(root_, rel);
        if (!st.ok() || !S_ISREG(st->st_mode)) continue;
        auto text = ReadBeneath(root_, rel, 0, kMaxBacklogFile);
        if (!text.ok()) continue;
        std::istringstream f(*text);
        std::string raw;
        while (std::getline(f, raw)) {
          LogLine l;
          if (ParseLine(raw, inst, &l) && Keep(l)) lines.push_back(std::move(l));
        }
        if (i == 0) {
          // Follow from the end of what was read (a partial last line is re-read later).
          Cursor& c = cursors_[inst];
          c.inode = st->st_ino;
          c.offset = static_cast<off_t>(text->size());
        }
      }
    }
    std::stable_sort(lines.begin(), lines.end(),
                     [](const LogLine& a, const LogLine& b) { return a.time < b.time; });
    size_t from = lines.size() > tail_ ? lines.size() - tail_ : 0;
    for (size_t i = from; i < lines.size(); ++i) *out += Render(lines[i]);
    // Instances without a log yet start from their beginning when they appear.
  }

  void Follow(const std::string& inst, std::string* out) {
    std::string rel = rel_ + "/" + inst + ".log";
    auto stat = StatBeneath(root_, rel);
    if (!stat.ok() || !S_ISREG(stat->st_mode)) return;
    const struct stat& st = *stat;
    Cursor& c = cursors_[inst];
    if (c.inode != st.st_ino || st.st_size < c.offset) {  // rotated or new: from the start
      c.inode = st.st_ino;
      c.offset = 0;
      c.partial.clear();
    }
    if (st.st_size == c.offset) return;
    size_t want = std::min<size_t>(kMaxChunk, static_cast<size_t>(st.st_size - c.offset));
    auto read = ReadBeneath(root_, rel, c.offset, want);
    if (!read.ok()) return;
    std::string data = std::move(*read);
    c.offset += static_cast<off_t>(data.size());
    c.partial += data;
    size_t start = 0;
    while (true) {
      size_t nl = c.partial.find('\n', start);
      if (nl == std::string::npos) break;
      LogLine l;
      if (ParseLine(c.partial.substr(start, nl - start), inst, &l) && Keep(l)) *out += Render(l);
      start = nl + 1;
    }
    c.partial.erase(0, start);
  }

  const std::string root_;
  const std::string rel_;
  const std::string dir_;  // root_/rel_, listed for the instances
  const std::string instance_;
  const std::string since_;
  const std::string grep_;
  const bool follow_;
  const size_t tail_;
  bool started_ = false;
  std::map<std::string, Cursor> cursors_;
};

Result<Reply> Logs(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kViewer, "read logs"));
  BERTH_ASSIGN_OR_RETURN(Object comp, LoadComponent(s, ctx));
  (void)comp;
  if (s.options.data_dir.empty()) return Unavailable("this server keeps no instance logs");
  std::string instance = ctx.req.Query("instance");
  if (!instance.empty()) BERTH_RETURN_IF_ERROR(ValidateDnsLabel(instance, "instance name", "instance"));
  BERTH_ASSIGN_OR_RETURN(std::string since, SinceBound(ctx, s.clock));
  std::string follow = ctx.req.Query("follow");
  if (!follow.empty() && follow != "0" && follow != "1" && follow != "true" && follow != "false") {
    return InvalidArgument("follow must be 1 or 0", "follow");
  }
  size_t tail = kDefaultTail;
  std::string t = ctx.req.Query("tail");
  if (!t.empty()) {
    if (t.size() > 6 || t.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(t) > kMaxTail) {
      return InvalidArgument("tail must be a number from 0 to " + std::to_string(kMaxTail), "tail");
    }
    tail = std::stoul(t);
  }
  std::string grep = ctx.req.Query("grep");
  if (grep.size() > 1024) return InvalidArgument("grep is longer than 1024 characters", "grep");
  Reply r;
  r.stream = std::make_shared<LogStream>(s.options.data_dir, "logs/instances/" + CompScope(ctx),
                                         instance, since, grep,
                                         follow == "1" || follow == "true", tail);
  r.headers.push_back({"Cache-Control", "no-cache"});
  return r;
}

// ---- job runs ----------------------------------------------------------------------------

// GET .../runs: the component's runs, paginated (?after=&limit=) in name order like every
// list; `number` orders them by age.
Result<Reply> ListRuns(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kViewer, "read components"));
  BERTH_ASSIGN_OR_RETURN(Object comp, LoadComponent(s, ctx));
  (void)comp;
  BERTH_ASSIGN_OR_RETURN(ListOptions o, ListOpts(ctx, CompScope(ctx)));
  BERTH_ASSIGN_OR_RETURN(ListResult r, s.store.List(model::kRun, o));
  Json items = Json::array();
  for (const Object& obj : r.items) items.push_back(RenderObject(obj));
  return Reply{200, {{"items", items}, {"next", r.next}, {"revision", r.revision}}, {}, nullptr};
}

Result<Reply> GetRun(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kViewer, "read components"));
  BERTH_ASSIGN_OR_RETURN(Object comp, LoadComponent(s, ctx));
  (void)comp;
  auto o = s.store.Get(model::kRun, CompScope(ctx), ctx.P("run"));
  if (!o.ok() && o.status().code() == Code::kNotFound) {
    return NotFound("run " + Quoted(ctx.P("run")) + " of component " + Quoted(ctx.P("component")) +
                    " not found (finished runs beyond job.history_limit are deleted)");
  }
  if (!o.ok()) return o.status();
  return Reply{200, RenderObject(*o), {}, nullptr};
}

// POST .../runs: starts a run now (trigger manual). The deploy controller runs it; the reply is
// the new run in status running. The component's concurrency policy applies as to a firing:
// forbid refuses while a run goes (409 run_in_progress), replace cancels the running ones in
// the same commit.
Result<Reply> StartRun(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "start runs"));
  const std::string scope = CompScope(ctx);
  const std::string& comp_name = ctx.P("component");
  // An optional body {"command": "..."}: a one-off command in a fresh instance of the current
  // version (Heroku's `run`), for any kind of component.
  std::string command;
  if (!ctx.req.body.empty()) {
    BERTH_ASSIGN_OR_RETURN(Json body, JsonBody(ctx));
    for (auto it = body.begin(); it != body.end(); ++it) {
      if (it.key() != "command") return InvalidArgument("unknown field " + it.key(), it.key());
    }
    if (body.contains("command")) {
      if (!body["command"].is_string() || body["command"].get<std::string>().empty() ||
          body["command"].get<std::string>().size() > 65536) {
        return InvalidArgument("command must be a non-empty string of at most 64 KiB", "command");
      }
      command = body["command"].get<std::string>();
      if (command.find('\0') != std::string::npos) {
        return InvalidArgument("command must not contain NUL", "command");
      }
    }
  }
  for (int attempt = 0; attempt < 5; ++attempt) {
    BERTH_ASSIGN_OR_RETURN(Object obj, LoadComponent(s, ctx));
    auto comp = model::ParseComponent(Json::parse(obj.body, nullptr, false));
    if (!comp.ok()) return Internal("stored component is unreadable: " + comp.status().message());
    if (comp->kind != "job" && comp->kind != "cronjob" && command.empty()) {
      return Status(Code::kConflict, "not_a_job",
                    "component " + Quoted(comp_name) + " is a " + comp->kind +
                        ": only job and cronjob components run their own command as runs; run a "
                        "command in it with {\"command\": ...} (`berth run " + comp_name +
                        " --app " + ctx.P("app") + " -- CMD`)",
                    "kind");
    }
    if (comp->desired_state != "running") {
      return Status(Code::kConflict, "component_stopped",
                    "component " + Quoted(comp_name) + " is stopped: start it first (`berth start " +
                        comp_name + " --app " + ctx.P("app") + "`)",
                    "desired_state");
    }
    BERTH_ASSIGN_OR_RETURN(std::vector<Object> all, ListAll(s.store, model::kRun, scope));
    int64_t max = 0;
    std::vector<std::pair<Object, model::Run>> running;
    for (const Object& o : all) {
      max = std::max(max, model::RunNumber(o.name));
      auto r = model::RunFromJson(Json::parse(o.body, nullptr, false));
      if (r.ok() && r->status == "running") running.emplace_back(o, *r);
    }
    // One-off commands run beside whatever runs; the concurrency policy is the job's own.
    const std::string policy = command.empty() ? comp->job.concurrency_policy : "allow";
    if (!running.empty() && policy == "forbid") {
      std::string list;
      for (const auto& [o, r] : running) list += (list.empty() ? "" : ", ") + o.name;
      return Status(Code::kConflict, "run_in_progress",
                    "run " + list + " of component " + Quoted(comp_name) +
                        " is still running and its concurrency policy is forbid: wait for it " +
                        "(`berth runs " + comp_name + " --app " + ctx.P("app") +
                        "`) or set job.concurrency_policy to allow or replace");
    }
    model::Run run;
    run.number = max + 1;
    run.name = "run-" + std::to_string(run.number);
    run.trigger = "manual";
    run.by = ctx.who.user;
    run.instance = comp_name + "-" + run.name;
    run.command = command;
    run.started_at = FormatTime(s.clock.Now());
    WriteBatch b;
    Op w;
    w.type = OpType::kCreate;
    w.object = Object{model::kRun, scope, run.name, model::ToJson(run).dump(), ""};
    b.ops.push_back(std::move(w));
    std::vector<std::string> cancelled;
    if (policy == "replace") {
      for (auto& [o, r] : running) {
        r.status = "cancelled";
        r.finished_at = run.started_at;
        r.message = "replaced (concurrency policy replace) by " + run.name;
        Op u;
        u.type = OpType::kUpdate;
        u.object = Object{model::kRun, scope, o.name, model::ToJson(r).dump(), ""};
        u.expected_revision = o.revision;
        b.ops.push_back(std::move(u));
        cancelled.push_back(o.name);
      }
    }
    Json summary = {{"after", model::ToJson(run)}};
    b.audit.push_back(AuditRecord{ctx.who.user, ctx.P("team"), "create",
                                  "apps/" + ctx.P("app") + "/components/" + comp_name + "/runs/" +
                                      run.name,
                                  summary.dump()});
    auto r = s.store.Commit(b);
    if (r.ok()) {
      for (const std::string& name : cancelled) {
        (void)events::Recorder(s.store, s.clock)
            .Record({ctx.P("team"), ctx.P("app"), comp_name}, events::Type::kWarning,
                    "JobCancelled",
                    "run " + name + " was cancelled: replaced (concurrency policy replace) by " +
                        run.name + ", started by " + ctx.who.user);
      }
      return Reply{202, RenderObject(r->objects.front()), {}, nullptr};
    }
    if (r.status().code() != Code::kConflict && r.status().code() != Code::kAlreadyExists) {
      return r.status();
    }
  }
  return RevisionConflict("runs of the component are changing concurrently: retry");
}

}  // namespace

void AddComponentProcessTypes(Service& s, const std::string& team, const std::string& app,
                              Json* components) {
  for (Json& c : *components) {
    if (!c.is_object()) continue;
    const std::string kind = c.value("kind", "service");
    Json types = Json::object();
    if (kind == "job" || kind == "cronjob") {
      c["process_types"] = types;
      continue;
    }
    // The version the runtime runs: the pinned one, else the newest ready (as the controller).
    const std::string scope = team + "/" + app + "/" + c.value("name", "");
    Json detect;
    const std::string pinned = c.value("version", "");
    if (!pinned.empty()) {
      auto v = s.store.Get(model::kVersion, scope, pinned);
      if (v.ok()) detect = Json::parse(v->body, nullptr, false).value("detect", Json());
    } else if (auto all = ListAll(s.store, model::kVersion, scope); all.ok()) {
      int64_t best = -1;
      for (const Object& o : *all) {
        Json j = Json::parse(o.body, nullptr, false);
        if (!j.is_object() || j.value("status", "") != "ready") continue;
        if (j.value("number", int64_t{0}) > best) {
          best = j.value("number", int64_t{0});
          detect = j.value("detect", Json());
        }
      }
    }
    const Json counts = c.value("processes", Json::object());
    bool web = true;
    if (detect.is_object() && detect.contains("processes") && detect["processes"].is_object() &&
        !detect["processes"].empty()) {
      web = false;
      for (const auto& [type, cmd] : detect["processes"].items()) {
        std::string name = model::ProcessTypeName(type);
        if (name == "web") {
          web = true;
          continue;
        }
        if (!model::ValidateProcessType(name, "processes").ok()) continue;
        types[name] = counts.is_object() && counts.contains(name) ? counts[name] : Json(1);
      }
    }
    const Json build = c.value("build", Json::object());
    if (build.is_object() && !build.value("start_command", "").empty()) web = true;
    if (web) types["web"] = c.value("replicas", 0);
    c["process_types"] = types;
  }
}

void RegisterRuntimeRoutes(Service& svc) {
  const std::string C = "/api/v1/teams/{team}/apps/{app}/components/{component}";
  Service* sp = &svc;
  Route restart;
  restart.method = "POST";
  restart.pattern = C + "/restart";
  restart.summary = "Restart every instance, one at a time (bumps restart_generation)";
  restart.tag = "runtime";
  restart.response_schema = "Component";
  restart.success_status = 202;
  restart.fn = [sp](Ctx& c) { return Restart(*sp, c); };
  svc.router.Add(std::move(restart));

  Route op;
  op.method = "GET";
  op.pattern = C + "/operation";
  op.summary = "The component's current (or last) lifecycle operation and its status";
  op.tag = "runtime";
  op.response_schema = "Operation";
  op.fn = [sp](Ctx& c) { return GetOperation(*sp, c); };
  svc.router.Add(std::move(op));

  Route cancel;
  cancel.method = "POST";
  cancel.pattern = C + "/operation/cancel";
  cancel.summary = "End the operation in progress (status cancelled) so another can begin";
  cancel.tag = "runtime";
  cancel.response_schema = "Operation";
  cancel.fn = [sp](Ctx& c) { return CancelOperation(*sp, c); };
  svc.router.Add(std::move(cancel));

  Route runs;
  runs.method = "GET";
  runs.pattern = C + "/runs";
  runs.summary = "List the runs of a job or cronjob component (running and the newest finished)";
  runs.tag = "runs";
  runs.response_schema = "Run";
  runs.is_list = true;
  runs.fn = [sp](Ctx& c) { return ListRuns(*sp, c); };
  svc.router.Add(std::move(runs));

  Route start;
  start.method = "POST";
  start.pattern = C + "/runs";
  start.summary =
      "Start a run of a job or cronjob now, or with {\"command\"} a one-off command in a fresh "
      "instance of any component (409 not_a_job, component_stopped, run_in_progress)";
  start.tag = "runs";
  start.request_schema = "RunInput";
  start.response_schema = "Run";
  start.success_status = 202;
  start.fn = [sp](Ctx& c) { return StartRun(*sp, c); };
  svc.router.Add(std::move(start));

  Route run;
  run.method = "GET";
  run.pattern = C + "/runs/{run}";
  run.summary = "Show a run: status, attempts, last exit, the last log lines of a failure";
  run.tag = "runs";
  run.response_schema = "Run";
  run.fn = [sp](Ctx& c) { return GetRun(*sp, c); };
  svc.router.Add(std::move(run));

  Route logs;
  logs.method = "GET";
  logs.pattern = C + "/logs";
  logs.summary =
      "Instance logs as NDJSON lines {time,instance,stream,line} (?instance=&since=&grep=&tail=&"
      "follow=1)";
  logs.tag = "runtime";
  logs.response_schema = "LogLine";
  logs.fn = [sp](Ctx& c) { return Logs(*sp, c); };
  svc.router.Add(std::move(logs));
}

}  // namespace berth::api
