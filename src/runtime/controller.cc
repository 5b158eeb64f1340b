#include "runtime/controller.h"

#include <time.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/log.h"
#include "core/names.h"
#include "core/safe_fs.h"
#include "model/model.h"
#include "runtime/detail/cron_plan.h"

namespace berth::runtime {
namespace {

Json ParseBody(const Object& o) {
  Json j = Json::parse(o.body, nullptr, false);
  return j.is_object() ? j : Json::object();
}

std::vector<std::string> Split(const std::string& scope) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= scope.size()) {
    size_t j = scope.find('/', i);
    if (j == std::string::npos) j = scope.size();
    out.push_back(scope.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::string EnvName(const std::string& name) {
  std::string out;
  for (char c : name) out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// "2026-11-23T11:18:26.123Z" (FormatTime's form, milliseconds optional) → Unix ms; 0 when
// unreadable.
int64_t ParseTimeMs(const std::string& text) {
  struct tm tm {};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) return 0;
  int64_t ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  if (*rest == '.') {
    int64_t frac = 0, scale = 100;
    for (++rest; *rest >= '0' && *rest <= '9'; ++rest) {
      frac += (*rest - '0') * scale;
      scale /= 10;
    }
    ms += frac;
  }
  return ms;
}

std::string OneLine(std::string s, size_t max = 500) {
  for (char& ch : s) {
    if (ch == '\n' || ch == '\r') ch = ' ';
  }
  if (s.size() > max) s = s.substr(s.size() - max);
  return s;
}

bool IsJob(const std::string& kind) { return kind == "job" || kind == "cronjob"; }

}  // namespace

Controller::Controller(Store& store, Driver& driver, events::Recorder& recorder,
                       ControllerOptions options)
    : store_(store), driver_(driver), recorder_(recorder), opt_(std::move(options)) {}

Controller::~Controller() { Stop(); }

Status Controller::Start() {
  BERTH_RETURN_IF_ERROR(FullScan());
  listener_ = store_.AddListener([this](int64_t) {
    std::lock_guard<std::mutex> l(mu_);
    wake_ = true;
    cv_.notify_one();
  });
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void Controller::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
  if (listener_ >= 0) {
    store_.RemoveListener(listener_);
    listener_ = -1;
  }
}

void Controller::Loop() {
  while (true) {
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, opt_.tick, [this] { return wake_ || stop_; });
      if (stop_) return;
      wake_ = false;
    }
    RunOnceForTest();
  }
}

void Controller::RunOnceForTest() {
  ProcessChanges();
  Schedule();
  driver_.Tick();
  SyncReleases();
  SyncRuns();
  SyncInstances();
  RemoveLeftovers();
  auto now = std::chrono::steady_clock::now();
  if (opt_.on_tick && now - last_hook_ >= std::chrono::seconds(1)) {
    last_hook_ = now;
    opt_.on_tick();
  }
}

Status Controller::FullScan() {
  scanning_ = true;
  struct Done {
    bool* flag;
    ~Done() { *flag = false; }
  } done{&scanning_};
  cursor_ = store_.Head();
  BERTH_ASSIGN_OR_RETURN(std::vector<Object> teams, ListAll(store_, model::kTeam, ""));
  std::set<std::string> present;
  for (const Object& t : teams) {
    BERTH_ASSIGN_OR_RETURN(std::vector<Object> comps, ListAll(store_, model::kComponent, t.name, true));
    for (const Object& c : comps) {
      auto parts = Split(c.scope);
      if (parts.size() != 2) continue;
      ComponentRef ref{parts[0], parts[1], c.name};
      present.insert(ref.Scope());
      Reconcile(ref);
    }
    // What the store says runs: rewritten or deleted by the first SyncInstances.
    BERTH_ASSIGN_OR_RETURN(std::vector<Object> insts, ListAll(store_, model::kInstance, t.name, true));
    for (const Object& i : insts) written_[i.scope][i.name] = "<unknown>";
  }
  for (const ComponentRef& ref : driver_.Components()) {
    if (!present.count(ref.Scope())) {
      Logger("runtime")->info("msg=\"removing instances of a deleted component\" component={}",
                              ref.Scope());
      driver_.Remove(ref);
      deleted_[ref.Scope()] = ref;
    }
  }
  return Status::Ok();
}

void Controller::ProcessChanges() {
  std::set<std::string> dirty;
  std::map<std::string, ComponentRef> refs;
  while (true) {
    auto changes = store_.ChangesSince(cursor_, 1000);
    if (!changes.ok()) {
      if (changes.status().code() == Code::kGone) {
        Logger("runtime")->warn("msg=\"change feed compacted past the controller: full scan\"");
        (void)FullScan();
      }
      return;
    }
    if (changes->empty()) break;
    for (const Change& ch : *changes) {
      cursor_ = ch.revision;
      const Object& o = ch.object;
      auto mark = [&](const std::string& scope) {
        auto parts = Split(scope);
        if (parts.size() != 3) return;
        ComponentRef ref{parts[0], parts[1], parts[2]};
        dirty.insert(ref.Scope());
        refs[ref.Scope()] = ref;
      };
      if (o.kind == model::kComponent) {
        mark(o.scope + "/" + o.name);
        // Its connection_env may have changed: dependents get it at their next start.
        auto deps = store_.FindByIndex(model::kDependency, o.scope + "/" + o.name);
        if (deps.ok()) {
          for (const Object& d : *deps) mark(d.scope);
        }
      } else if (o.kind == model::kVersion || o.kind == model::kDependency ||
                 o.kind == model::kOperation || o.kind == model::kRun) {
        mark(o.scope);
      } else if (o.kind == model::kInstance) {
        // A dependency's instances moved: its dependents get new connection info at their
        // next start.
        auto deps = store_.FindByIndex(model::kDependency, o.scope);
        if (deps.ok()) {
          for (const Object& d : *deps) mark(d.scope);
        }
      }
    }
  }
  for (const std::string& key : dirty) Reconcile(refs[key]);
}

void Controller::Reconcile(const ComponentRef& ref) {
  auto obj = store_.Get(model::kComponent, ref.team + "/" + ref.app, ref.component);
  if (!obj.ok()) {
    if (obj.status().code() == Code::kNotFound) {
      if (known_.erase(ref.Scope())) {
        Logger("runtime")->info("msg=\"component deleted: removing its instances\" component={}",
                                ref.Scope());
      }
      problems_.erase(ref.Scope());
      ops_.erase(ref.Scope());
      component_rev_.erase(ref.Scope());
      instance_rev_.erase(ref.Scope());
      desired_.erase(ref.Scope());
      applied_version_.erase(ref.Scope());
      serving_.erase(ref.Scope());
      returned_to_.erase(ref.Scope());
      jobs_.erase(ref.Scope());
      runs_.erase(ref.Scope());
      cron_last_.erase(ref.Scope());
      groups_.erase(ref.Scope());
      base_.erase(ref.Scope());
      releases_.erase(ref.Scope());
      released_.erase(ref.Scope());
      driver_.Remove(ref);
      deleted_[ref.Scope()] = ref;
    }
    return;
  }
  known_[ref.Scope()] = ref;
  component_rev_[ref.Scope()] = obj->revision;
  deleted_.erase(ref.Scope());  // created again under the same name: its files are its own
  LoadOperation(ref);
  Json body = ParseBody(*obj);
  auto comp = model::ParseComponent(body);
  LoadRuns(ref);
  bool is_job = comp.ok() && IsJob(comp->kind);
  if (is_job) {
    jobs_[ref.Scope()] = JobInfo{*comp, comp->desired_state == "running"};
    if (comp->desired_state != "running") CancelRuns(ref, "the component was stopped");
    if (comp->kind != "cronjob") cron_last_.erase(ref.Scope());
    PruneRuns(ref, comp->job.history_limit);  // runs cancelled or added by the API count too
  } else {
    jobs_.erase(ref.Scope());
    cron_last_.erase(ref.Scope());
    // One-off runs (a command of their own) run in any kind; the job's own runs do not.
    if (comp.ok()) CancelRuns(ref, "the component is no longer a job or cronjob", true);
  }
  std::string problem;
  Processes procs;
  auto desired = Resolve(ref, body, &problem, &procs);
  if (!desired.ok()) {
    Logger("runtime")->error("msg=\"cannot resolve component\" component={} error=\"{}\"",
                             ref.Scope(), desired.status().message());
    return;
  }
  std::string& last = problems_[ref.Scope()];
  if (problem != last) {
    last = problem;
    if (!problem.empty()) RecordEvent(ref, events::Type::kWarning, "NotRunnable", problem);
  }
  std::string version = desired->tmpl ? desired->tmpl->version : "";
  // A version the controller moves to on its own (the first one, or a newer ready one for a
  // component that follows the newest) is a deploy operation too; at a start-up scan it is
  // what ran before, not a change.
  auto applied = applied_version_.find(ref.Scope());
  std::string before = applied != applied_version_.end() ? applied->second : "";
  if (before != version) {
    // What serves now, if anything: the version a failed rollout of `version` returns to —
    // the one moved away from, or (moving on from a rollout that had not finished) the one
    // that still serves.
    std::set<std::string> ready;
    for (const InstanceStatus& st : driver_.Observe(ref)) {
      if (st.ready) ready.insert(st.version);
    }
    auto served = serving_.find(ref.Scope());
    std::string keep = served != serving_.end() && ready.count(served->second) ? served->second : "";
    if (ready.count(before)) keep = before;
    if (keep.empty() || keep == version || version.empty() || desired->job) {
      serving_.erase(ref.Scope());
    } else {
      serving_[ref.Scope()] = keep;
    }
  }
  bool returning = false;
  if (auto r = returned_to_.find(ref.Scope()); r != returned_to_.end()) {
    returning = r->second == version;
    returned_to_.erase(r);
  }
  if (!scanning_ && !returning && before != version && !version.empty() && desired->running) {
    if (!desired->job && (desired->replicas > 0 || !procs.groups.empty())) {
      BeginAutoDeploy(ref, version);
    } else if (is_job && comp->kind == "job") {
      // A job runs each version it is deployed with (Kubernetes: a new Job per release).
      TriggerRun(ref, "deploy", "", version);
      desired->runs = DesiredRuns(ref.Scope(), comp->job);
    }
  }
  applied_version_[ref.Scope()] = version;
  const std::string scope = ref.Scope();
  if (!is_job && HoldForRelease(ref, version, procs, desired->running)) {
    // What ran keeps running (at the new counts) until the release passed.
    auto old = desired_.find(scope);
    desired->tmpl = old != desired_.end() ? old->second.tmpl : std::nullopt;
    std::map<std::string, DesiredComponent> held = groups_[scope];
    for (auto& [name, g] : procs.groups) {
      auto o = held.find(name);
      g.tmpl = o != held.end() ? o->second.tmpl : std::nullopt;
      held[name] = g;
    }
    procs.groups = std::move(held);
  } else if (procs.base) {
    base_[scope] = *procs.base;
  } else if (!desired->tmpl) {
    base_.erase(scope);
  }
  desired_[scope] = *desired;
  driver_.Apply(*desired);
  if (!is_job) {
    ApplyGroups(ref, std::move(procs.groups));
    ApplyServiceRuns(ref);
  }
}

void Controller::ApplyGroups(const ComponentRef& ref,
                             std::map<std::string, DesiredComponent> groups) {
  auto& applied = groups_[ref.Scope()];
  for (auto& [name, g] : applied) {
    if (groups.count(name)) continue;
    // A type the version no longer has: its instances stop.
    g.replicas = 0;
    g.tmpl.reset();
    groups[name] = g;
  }
  for (auto& [name, g] : groups) driver_.Apply(g);
  applied = std::move(groups);
}

bool Controller::HoldForRelease(const ComponentRef& ref, const std::string& version,
                                const Processes& procs, bool running) {
  const std::string scope = ref.Scope();
  if (version.empty()) return false;
  auto done = released_.find(scope);
  if (done != released_.end() && done->second == version) return false;
  if (procs.release.empty() || !procs.base) {
    released_[scope] = version;
    return false;
  }
  if (scanning_) {
    // A server start: what runs was released before. A version no instance runs yet while
    // others do was being released when the server stopped: release it (again).
    auto insts = ListAll(store_, model::kInstance, scope);
    bool others = false, this_one = false;
    if (insts.ok()) {
      for (const Object& o : *insts) {
        Json j = ParseBody(o);
        if (j.contains("process") && j.value("process", "") != "") continue;
        (j.value("version", "") == version ? this_one : others) = true;
      }
    }
    if (this_one || !others) {
      released_[scope] = version;
      return false;
    }
  }
  auto it = releases_.find(scope);
  if (it != releases_.end() && it->second.version == version) {
    // Running, or failed: the version is not rolled out (a newer version releases anew).
    return true;
  }
  if (!running) return true;  // released when the component runs again
  Release rel;
  rel.version = version;
  rel.run = "release-" + version;
  rel.started = std::chrono::steady_clock::now();
  DesiredComponent& g = rel.group;
  g.ref = ref;
  g.process = "release";
  g.job = true;
  g.tmpl = *procs.base;
  g.tmpl->start_command = procs.release;
  DesiredRun run;
  run.name = rel.run;
  run.retries = 0;  // a release that fails stops the deploy; it is not tried again
  run.timeout_s = 900;
  run.started_at_ms = NowMs();
  g.runs.push_back(run);
  RecordEvent(ref, events::Type::kNormal, "ReleaseStarted",
              "running the release command of " + version + " before its rollout: `" +
                  procs.release + "`");
  driver_.Apply(g);
  releases_[scope] = std::move(rel);
  return true;
}

void Controller::SyncReleases() {
  std::vector<std::string> scopes;
  for (const auto& [scope, rel] : releases_) {
    if (!rel.failed) scopes.push_back(scope);
  }
  for (const std::string& scope : scopes) {
    auto k = known_.find(scope);
    if (k == known_.end()) continue;
    const ComponentRef ref = k->second;
    Release& rel = releases_.at(scope);
    std::optional<RunStatus> st;
    for (const RunStatus& r : driver_.ObserveRuns(ref)) {
      if (r.name == rel.run && r.state != "running") st = r;
    }
    if (!st) continue;
    // The run is over: its instance goes.
    rel.group.runs.clear();
    driver_.Apply(rel.group);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - rel.started);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(took.count()) / 1000.0);
    if (st->state == "succeeded") {
      RecordEvent(ref, events::Type::kNormal, "ReleaseSucceeded",
                  "the release command of " + rel.version + " succeeded after " + buf +
                      " s: rolling it out");
      released_[scope] = rel.version;
      releases_.erase(scope);
      Reconcile(ref);
      continue;
    }
    rel.failed = true;
    auto running = desired_.find(scope);
    std::string keeps = running != desired_.end() && running->second.tmpl
                            ? running->second.tmpl->version + " keeps running"
                            : "nothing was running";
    std::string why = "the release command of " + rel.version + " failed (" + st->message +
                      "): the deploy is aborted and " + keeps;
    std::string tail = st->log_tail;
    while (!tail.empty() && tail.back() == '\n') tail.pop_back();
    RecordEvent(ref, events::Type::kWarning, "ReleaseFailed",
                why + (tail.empty() ? "" : "; its last lines: " + OneLine(tail)));
    auto op = ops_.find(scope);
    if (op != ops_.end() && op->second.failure.empty()) {
      op->second.failure = why + (tail.empty() ? "" : "; its last log lines:\n" + tail);
    }
  }
}

void Controller::ApplyServiceRuns(const ComponentRef& ref) {
  const std::string scope = ref.Scope();
  auto r = runs_.find(scope);
  DesiredComponent g;
  g.ref = ref;
  g.process = "run";
  g.job = true;
  if (r != runs_.end()) {
    auto base = base_.find(scope);
    if (base == base_.end()) {
      // Nothing to run a command in: such runs fail at once.
      auto p = problems_.find(scope);
      std::string why = "no version to run it in" +
                        (p != problems_.end() && !p->second.empty() ? ": " + p->second
                                                                    : std::string());
      WriteBatch b;
      std::string now = FormatTime(FromUnixMillis(NowMs()));
      for (const auto& [name, sr] : r->second) {
        model::Run c = sr.run;
        c.status = "failed";
        c.finished_at = now;
        c.message = why;
        Op u;
        u.type = OpType::kUpdate;
        u.object = Object{model::kRun, scope, name, model::ToJson(c).dump(), ""};
        u.expected_revision = sr.revision;
        b.ops.push_back(std::move(u));
      }
      (void)store_.Commit(b);
      LoadRuns(ref);
    } else {
      g.tmpl = base->second;
      model::JobSettings once;
      once.retries = 0;
      g.runs = DesiredRuns(scope, once);
    }
  }
  // The group stays applied while runs go and once more after the last (so its instance
  // stops); a service that never had a one-off run has none.
  if (g.runs.empty() && !run_groups_.count(scope)) return;
  driver_.Apply(g);
  if (g.runs.empty()) {
    run_groups_.erase(scope);
  } else {
    run_groups_.insert(scope);
  }
}

void Controller::LoadOperation(const ComponentRef& ref) {
  const std::string scope = ref.Scope();
  auto o = store_.Get(model::kOperation, scope, "current");
  std::optional<model::Operation> op;
  if (o.ok()) {
    auto parsed = model::OperationFromJson(ParseBody(*o));
    if (parsed.ok()) op = *parsed;
  }
  if (!op || op->status != "in_progress") {
    ops_.erase(scope);
    return;
  }
  auto it = ops_.find(scope);
  if (it != ops_.end() && it->second.revision == o->revision) return;
  OperationState st;
  st.revision = o->revision;
  st.op = *op;
  st.seen = std::chrono::steady_clock::now();
  ops_[scope] = std::move(st);
}

void Controller::BeginAutoDeploy(const ComponentRef& ref, const std::string& version) {
  const std::string scope = ref.Scope();
  if (ops_.count(scope)) return;  // the deploy joins the operation in progress
  auto cur = store_.Get(model::kOperation, scope, "current");
  model::Operation op;
  op.type = "deploy";
  op.detail = "deploy " + version + " (the newest ready version)";
  op.by = "berth";
  op.started_at = FormatTime(std::chrono::system_clock::now());
  WriteBatch b;
  Op w;
  w.type = cur.ok() ? OpType::kUpdate : OpType::kCreate;
  w.object = Object{model::kOperation, scope, "current", model::ToJson(op).dump(), ""};
  if (cur.ok()) w.expected_revision = cur->revision;
  b.ops.push_back(std::move(w));
  auto r = store_.Commit(b);
  if (!r.ok()) {
    // Someone began an operation meanwhile: it is read from the feed.
    Logger("runtime")->info("msg=\"no deploy operation\" component={} error=\"{}\"", scope,
                            r.status().message());
    return;
  }
  OperationState st;
  st.revision = r->revision;
  st.op = op;
  st.seen = std::chrono::steady_clock::now();
  ops_[scope] = std::move(st);
}

bool Controller::OperationEnded(const std::string& scope, const std::vector<InstanceStatus>& now,
                                std::string* status, std::string* message) {
  OperationState& st = ops_.at(scope);
  if (!st.failure.empty()) {
    *status = "failed";
    *message = st.failure;
    return true;
  }
  auto rel = releases_.find(scope);
  if (rel != releases_.end() && !rel->second.failed) return false;  // the rollout waits for it
  auto d = desired_.find(scope);
  if (d == desired_.end()) return DeadlinePassed(st, "the component could not be resolved", status, message);
  if (d->second.job) {
    // Nothing long-running converges for a job: the change is in place for its runs.
    *status = "succeeded";
    *message = "recorded: the component's runs use it (a job runs on deploy, on its schedule "
               "or on request)";
    return true;
  }
  const DesiredComponent& want_d = d->second;
  // Every process group converges: the main one and each Procfile type (one-off runs and the
  // release are not part of it).
  std::vector<const DesiredComponent*> groups{&want_d};
  if (auto g = groups_.find(scope); g != groups_.end()) {
    for (const auto& [name, gd] : g->second) groups.push_back(&gd);
  }
  int want = 0, good = 0;
  bool converged = true;
  std::string counts;
  for (const DesiredComponent* gd : groups) {
    int w = gd->running ? gd->replicas : 0;
    int n = 0, g_good = 0;
    for (const InstanceStatus& s : now) {
      if (s.process != gd->process) continue;
      ++n;
      if (s.ready && s.state == "running" && !s.outdated) ++g_good;
    }
    want += w;
    good += g_good;
    converged = converged && n == w && g_good == w;
    if (w > 0 && !gd->tmpl) {
      auto p = problems_.find(scope);
      *status = "failed";
      *message = p != problems_.end() && !p->second.empty() ? p->second : "nothing runnable";
      return true;
    }
    if (groups.size() > 1) {
      counts += (counts.empty() ? "" : ", ") +
                (gd->process.empty() ? std::string("web") : gd->process) + " " + std::to_string(w);
    }
  }
  if (converged) {
    *status = "succeeded";
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - st.seen);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(took.count()) / 1000.0);
    std::string at;
    for (const DesiredComponent* gd : groups) {
      if (gd->tmpl && at.empty()) at = " at " + gd->tmpl->version;
    }
    *message = want == 0 ? "no instance runs"
                         : std::to_string(want) + " of " + std::to_string(want) + " instance(s) ready" +
                               (counts.empty() ? "" : " (" + counts + ")") + at + " after " + buf +
                               " s";
    return true;
  }
  // An instance of what the operation wants that crash-loops: the operation cannot succeed.
  // Looked at as a state on every pass, because the CrashLoop event (RecordEvent) only ends
  // operations that are in progress when it fires — and it fires at most once a minute, never
  // again once the back-off passes the crash-loop window. An operation begun after that (a
  // scale, a settings change that does not replace the instance) waited for the deadline.
  for (const InstanceStatus& s : now) {
    if (s.outdated || !s.crash_looping) continue;
    *status = "failed";
    *message = "instance " + s.name + " is crash-looping (" + std::to_string(s.restarts) +
               " restarts): " + s.message;
    return true;
  }
  return DeadlinePassed(st, std::to_string(good) + " of " + std::to_string(want) +
                                " instance(s) ready and current",
                        status, message);
}

bool Controller::DeadlinePassed(const OperationState& st, const std::string& progress,
                                std::string* status, std::string* message) const {
  if (std::chrono::steady_clock::now() - st.seen < opt_.operation_deadline) return false;
  *status = "failed";
  *message = "did not finish within " +
             std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                opt_.operation_deadline).count()) +
             " s: " + progress;
  return true;
}

Result<DesiredComponent> Controller::Resolve(const ComponentRef& ref, const Json& body,
                                             std::string* problem, Processes* procs) {
  BERTH_ASSIGN_OR_RETURN(model::Component c, model::ParseComponent(body));
  DesiredComponent d;
  d.ref = ref;
  d.running = c.desired_state == "running";
  d.replicas = c.replicas;
  d.grace_s = c.grace_period_s;
  d.rollout = c.rollout;
  d.ordered = c.kind == "stateful";
  const std::string scope = ref.Scope();
  if (IsJob(c.kind)) {
    d.job = true;
    d.runs = DesiredRuns(scope, c.job);
  }

  std::optional<model::Version> version;
  if (!c.version.empty()) {
    auto v = store_.Get(model::kVersion, scope, c.version);
    if (v.ok()) {
      auto parsed = model::ParseVersion(ParseBody(*v));
      if (parsed.ok() && parsed->status == "ready") {
        version = *parsed;
        version->name = c.version;
      } else {
        *problem = "version " + c.version + " is not ready (status " +
                   (parsed.ok() ? parsed->status : std::string("unreadable")) + ")";
      }
    } else {
      *problem = "version " + c.version + " does not exist";
    }
  } else {
    BERTH_ASSIGN_OR_RETURN(std::vector<Object> versions, ListAll(store_, model::kVersion, scope));
    int64_t best = -1;
    for (const Object& o : versions) {
      Json j = ParseBody(o);
      if (j.value("status", "") != "ready") continue;
      int64_t n = j.value("number", int64_t{0});
      if (n > best) {
        j.erase("name");
        j.erase("number");
        auto parsed = model::ParseVersion(j);
        if (!parsed.ok()) continue;
        best = n;
        version = *parsed;
        version->name = o.name;
        version->number = n;
      }
    }
    if (!version) *problem = "no ready version to run yet: build one or add a version";
  }
  if (version) {
    InstanceTemplate t;
    t.version = version->name;
    // The component's build.start_command is the user's explicit choice and wins over the
    // one the version's build recorded (detection's, or the setting as it was then): a change
    // of it is an update operation that must replace the instances with it, not one that
    // "succeeds" while nothing changes until the next build.
    t.start_command = !c.build.start_command.empty() ? c.build.start_command
                                                     : version->start_command;
    // The artifact's directory is derived from its digest (model::ParseVersion refuses
    // anything else), never taken as a path.
    const std::string& art = version->artifact;
    if (model::IsArtifactDigest(art)) {
      const std::string hex = art.substr(7);
      // A build publishes on its team's disk; DATA/artifacts holds older servers' artifacts.
      std::string team_dir = opt_.data_dir + "/teams/" + ref.team;
      if (opt_.team_dir) {
        if (auto d = opt_.team_dir(ref.team); d.ok()) team_dir = *d;
      }
      std::error_code exists_ec;
      t.artifact_dir = team_dir + "/artifacts/" + hex;
      if (!std::filesystem::exists(t.artifact_dir, exists_ec)) {
        t.artifact_dir = opt_.data_dir + "/artifacts/" + hex;
      }
    }
    // The builder's layout (docs/architecture.md): DATA/artifacts/<hex>/{config.json, <workdir>/}
    // where config.json names the tree to run and the env the build set up (e.g. a venv's
    // PATH). Artifacts without config.json are the tree itself.
    std::map<std::string, std::string> artifact_env;
    if (!t.artifact_dir.empty()) {
      auto cfg_text = ReadBeneath(t.artifact_dir, "config.json", 0, 1 << 20);
      if (cfg_text.ok()) {
        Json cfg = CheckJsonDepth(*cfg_text).ok() ? Json::parse(*cfg_text, nullptr, false) : Json();
        std::string workdir = cfg.is_object() ? cfg.value("workdir", "") : "";
        if (!cfg.is_object() || !ValidateRelativePath(workdir.empty() ? "." : workdir, "workdir").ok() ||
            (!workdir.empty() && !IsRealDirBeneath(t.artifact_dir, workdir))) {
          *problem = "the artifact of version " + t.version + " has an unreadable config.json";
        } else {
          if (!workdir.empty()) t.artifact_dir += "/" + workdir;
          if (cfg.contains("env") && cfg["env"].is_object()) {
            for (const auto& [k, v] : cfg["env"].items()) {
              if (v.is_string()) artifact_env[k] = v.get<std::string>();
            }
          }
        }
      }
    }
    // The version's other process types (a Procfile's worker, clock, ...): each its own
    // group of instances without a port; the release command runs once before a rollout.
    std::map<std::string, std::string> other;
    if (!IsJob(c.kind) && version->detect.is_object()) {
      const Json& p = version->detect.contains("processes") ? version->detect["processes"] : Json();
      if (p.is_object()) {
        for (const auto& [type, cmd] : p.items()) {
          std::string name = model::ProcessTypeName(type);
          if (name == "web" || !cmd.is_string() || cmd.get<std::string>().empty()) continue;
          if (!model::ValidateProcessType(name, "processes").ok()) continue;
          other[name] = cmd.get<std::string>();
        }
      }
      if (version->detect.contains("release") && version->detect["release"].is_string()) {
        procs->release = version->detect["release"].get<std::string>();
      }
    }
    std::error_code ec;
    if (!problem->empty()) {
      // reported below
    } else if (t.start_command.empty() && other.empty()) {
      *problem = "version " + t.version + " has no start command (set build.start_command)";
    } else if (!t.artifact_dir.empty() && !std::filesystem::is_directory(t.artifact_dir, ec)) {
      *problem = "the artifact of version " + t.version + " is missing: " + t.artifact_dir;
    } else {
      t.env = artifact_env;  // the component's own env wins over what the build set
      for (const auto& [k, v] : c.env) t.env[k] = v;
      t.env["BERTH_TEAM"] = ref.team;
      t.env["BERTH_APP"] = ref.app;
      t.env["BERTH_COMPONENT"] = ref.component;
      t.config_files = c.config_files;
      t.ports = c.ports;
      t.health = c.health;
      t.resources = c.resources;
      t.restart_generation = c.restart_generation;
      t.grace_s = c.grace_period_s;
      for (const model::Volume& v : c.volumes) {
        t.volumes.push_back({v.name, v.path, c.kind == "stateful" && !v.shared});
      }
      // Workers, the release and one-off runs listen nowhere and are checked by running.
      InstanceTemplate quiet = t;
      quiet.ports.clear();
      quiet.health = model::Health{};
      quiet.no_port = true;
      procs->base = quiet;
      for (const auto& [name, cmd] : other) {
        DesiredComponent g;
        g.ref = ref;
        g.process = name;
        g.running = d.running;
        auto n = c.processes.find(name);
        g.replicas = n != c.processes.end() ? n->second : 1;
        g.grace_s = c.grace_period_s;
        g.rollout = c.rollout;
        g.tmpl = quiet;
        g.tmpl->start_command = cmd;
        procs->groups[name] = std::move(g);
      }
      if (t.start_command.empty()) {
        d.replicas = 0;  // a Procfile without web: only its other processes run
      } else {
        d.tmpl = std::move(t);
      }
    }
  }
  d.dependency_env = DependencyEnv(ref);
  for (auto& [name, g] : procs->groups) g.dependency_env = d.dependency_env;
  return d;
}

std::map<std::string, std::string> Controller::DependencyEnv(const ComponentRef& ref) {
  std::map<std::string, std::string> env;
  auto deps = ListAll(store_, model::kDependency, ref.Scope());
  if (!deps.ok()) return env;
  for (const Object& o : *deps) {
    Json d = ParseBody(o);
    std::string target_app = d.value("target_app", ref.app);
    std::string target = d.value("target_component", "");
    if (target.empty()) continue;
    std::string name = EnvName(o.name);
    // The dependency's own connection info (Rainbond style: names as its owner wrote them;
    // the dependent's own env wins on a clash, see Launch).
    auto target_obj = store_.Get(model::kComponent, ref.team + "/" + target_app, target);
    if (target_obj.ok()) {
      Json tc = ParseBody(*target_obj);
      if (tc.contains("connection_env") && tc["connection_env"].is_object()) {
        for (const auto& [k, v] : tc["connection_env"].items()) {
          if (v.is_string()) env[k] = v.get<std::string>();
        }
      }
    }
    env[name + "_HOST"] = "127.0.0.1";
    auto insts = ListAll(store_, model::kInstance, ref.team + "/" + target_app + "/" + target);
    if (!insts.ok()) continue;
    const Json* chosen = nullptr;
    std::vector<Json> bodies;
    for (const Object& i : *insts) bodies.push_back(ParseBody(i));
    for (const Json& b : bodies) {
      if (b.value("ready", false)) {
        chosen = &b;
        break;
      }
    }
    if (!chosen && !bodies.empty()) chosen = &bodies.front();
    if (!chosen) continue;
    env[name + "_PORT"] = std::to_string(chosen->value("port", 0));
    if (chosen->contains("ports") && (*chosen)["ports"].is_object()) {
      for (const auto& [declared, real] : (*chosen)["ports"].items()) {
        if (real.is_number_integer()) env[name + "_PORT_" + declared] = std::to_string(real.get<int>());
      }
    }
  }
  return env;
}

void Controller::SyncInstances() {
  std::set<std::string> scopes;
  for (const auto& [scope, ref] : known_) scopes.insert(scope);
  for (const auto& [scope, m] : written_) scopes.insert(scope);
  for (const std::string& scope : scopes) {
    auto k = known_.find(scope);
    std::vector<InstanceStatus> now;
    if (k != known_.end()) now = driver_.Observe(k->second);
    auto& prev = written_[scope];
    WriteBatch b;
    std::set<std::string> seen;
    for (const InstanceStatus& s : now) {
      seen.insert(s.name);
      std::string body = InstanceToJson(s).dump();
      auto it = prev.find(s.name);
      if (it != prev.end() && it->second == body) continue;
      Op op;
      op.type = OpType::kUpsert;
      op.object = Object{model::kInstance, scope, s.name, body, ""};
      b.ops.push_back(std::move(op));
    }
    std::vector<std::string> gone;
    for (const auto& [name, body] : prev) {
      if (!seen.count(name)) gone.push_back(name);
    }
    if (k != known_.end()) {
      for (const std::string& name : gone) {
        Op op;
        op.type = OpType::kDelete;
        op.object = Object{model::kInstance, scope, name, "{}", ""};
        b.ops.push_back(std::move(op));
      }
    }
    const bool instance_writes = !b.ops.empty();
    // The operation ends in the same commit as the instance writes that show it done, so
    // whoever sees the instances ready also sees the component free for the next operation —
    // unless the gateway routes the component: then it ends once the gateway serves a snapshot
    // that has those writes ("ready" means routed), in a later commit.
    std::optional<std::pair<std::string, model::Operation>> ended;  // status → operation
    std::string return_to, return_from, return_why;  // a failed rollout goes back to what served
    if (k != known_.end() && ops_.count(scope)) {
      std::string status, message;
      OperationState& st = ops_[scope];
      bool end = OperationEnded(scope, now, &status, &message);
      bool route_failed = false;  // the instances converged but the gateway did not route them
      auto d = desired_.find(scope);
      if (end && status == "succeeded" && opt_.route_wait.count() > 0 && d != desired_.end() &&
          !d->second.job && Routed(k->second)) {
        auto tp = std::chrono::steady_clock::now();
        if (!st.converged) st.converged = tp;
        if (instance_writes) {
          end = false;  // the writes below raise the revision the gateway must reach
        } else {
          st.route_revision = std::max(instance_rev_[scope], component_rev_[scope]);
          int64_t served = GatewayRevision();
          if (served >= st.route_revision) {
            message += "; the gateway routes them (snapshot revision " + std::to_string(served) + ")";
          } else if (tp - *st.converged >= opt_.route_wait) {
            status = "failed";
            route_failed = true;
            message += ", but the gateway did not route them within " +
                       std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                          opt_.route_wait).count()) +
                       " s (it serves snapshot revision " +
                       (served < 0 ? std::string("none: no gateway has reported")
                                   : std::to_string(served)) +
                       ", they are at " + std::to_string(st.route_revision) +
                       "; see the gateway's log DATA/gateway/gateway.log)";
          } else {
            end = false;
          }
        }
      } else if (!end) {
        st.converged.reset();
      }
      if (end && status == "failed" && !route_failed) {
        // The new version did not start (not a gateway that failed to route it).
        auto served = serving_.find(scope);
        const std::string target = d != desired_.end() && d->second.tmpl ? d->second.tmpl->version : "";
        if (served != serving_.end() && !target.empty() && served->second != target) {
          return_to = served->second;
          return_from = target;
          return_why = message;
          message += "; returned to " + return_to + ", which was serving";
        }
      }
      if (end && status == "succeeded") serving_.erase(scope);
      if (end) {
        model::Operation op = st.op;
        op.status = status;
        op.message = message;
        op.finished_at = FormatTime(std::chrono::system_clock::now());
        Op w;
        w.type = OpType::kUpdate;
        w.object = Object{model::kOperation, scope, "current", model::ToJson(op).dump(), ""};
        w.expected_revision = st.revision;
        b.ops.push_back(std::move(w));
        ended = std::make_pair(status, op);
      }
    }
    if (k == known_.end()) {
      // The component is gone (its tree was deleted with it): nothing to write.
      written_.erase(scope);
      continue;
    }
    if (b.ops.empty()) continue;
    auto r = store_.Commit(b);
    bool op_written = r.ok();
    if (r.ok() && instance_writes) instance_rev_[scope] = r->revision;
    if (!r.ok()) {
      // A delete of an already deleted object fails the batch: retry one op at a time.
      for (const Op& op : b.ops) {
        WriteBatch one;
        one.ops.push_back(op);
        auto one_r = store_.Commit(one);
        if (op.object.kind == model::kOperation) op_written = one_r.ok();
        if (op.object.kind == model::kInstance && one_r.ok()) instance_rev_[scope] = one_r->revision;
      }
    }
    if (ended && op_written) {
      // A lost CAS (the operation was cancelled meanwhile) leaves it to the feed.
      ops_.erase(scope);
      const model::Operation& op = ended->second;
      bool ok = ended->first == "succeeded";
      RecordEvent(k->second, ok ? events::Type::kNormal : events::Type::kWarning,
                  ok ? "OperationSucceeded" : "OperationFailed",
                  "the " + op.type + " (" + op.detail + ") " + (ok ? "succeeded: " : "failed: ") +
                      op.message);
      if (!return_to.empty()) ReturnTo(k->second, return_to, return_from, return_why);
    }
    for (const std::string& name : gone) prev.erase(name);
    for (const InstanceStatus& s : now) prev[s.name] = InstanceToJson(s).dump();
  }
}

void Controller::ReturnTo(const ComponentRef& ref, const std::string& to, const std::string& from,
                          const std::string& why) {
  const std::string parent = ref.team + "/" + ref.app;
  serving_.erase(ref.Scope());
  // A new version that cannot start must not stay beside the old ones, crash-looping and
  // holding the component "in rollout": the component is pinned to the version that served,
  // as `berth rollback` does (and `berth deploy` follows the newest again).
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto cur = store_.Get(model::kComponent, parent, ref.component);
    if (!cur.ok()) return;
    Json before = ParseBody(*cur);
    Json after = before;
    after["version"] = to;
    WriteBatch b;
    Op w;
    w.type = OpType::kUpdate;
    w.object = Object{model::kComponent, parent, ref.component, after.dump(), ""};
    w.expected_revision = cur->revision;
    b.ops.push_back(std::move(w));
    b.audit.push_back({"berth", ref.team, "update", "apps/" + ref.app + "/components/" + ref.component,
                       Json({{"before", before}, {"after", after},
                             {"why", "the rollout of " + from + " failed: returned to " + to}}).dump()});
    auto r = store_.Commit(b);
    if (r.ok()) {
      returned_to_[ref.Scope()] = to;
      RecordEvent(ref, events::Type::kWarning, "RolledBack",
                  "the rollout of " + from + " failed (" + why + "): returned to " + to +
                      ", which was serving (`berth deploy " + ref.component + " --app " + ref.app +
                      "` follows the newest version again)");
      return;
    }
    if (r.status().reason() != "revision_conflict") {
      Logger("runtime")->warn("msg=\"cannot return to the serving version\" component={} error=\"{}\"",
                              ref.Scope(), r.status().message());
      return;
    }
  }
}

bool Controller::Routed(const ComponentRef& ref) {
  const std::string app_scope = ref.team + "/" + ref.app;
  auto obj = store_.Get(model::kComponent, app_scope, ref.component);
  if (!obj.ok()) return false;
  Json c = ParseBody(*obj);
  for (const Json& p : c.value("ports", Json::array())) {
    if (p.is_object() && p.value("outer", false)) return true;
  }
  auto http = ListAll(store_, model::kHttpRule, app_scope);
  if (http.ok()) {
    for (const Object& o : *http) {
      for (const Json& b : ParseBody(o).value("backends", Json::array())) {
        if (b.is_object() && b.value("component", "") == ref.component) return true;
      }
    }
  }
  auto tcp = ListAll(store_, model::kTcpRule, app_scope);
  if (tcp.ok()) {
    for (const Object& o : *tcp) {
      if (ParseBody(o).value("component", "") == ref.component) return true;
    }
  }
  return false;
}

int64_t Controller::GatewayRevision() {
  auto o = store_.Get(model::kGatewayStatus, "", "gateway");
  if (!o.ok()) return -1;
  Json j = ParseBody(*o);
  return j.contains("revision") && j["revision"].is_number_integer() ? j["revision"].get<int64_t>()
                                                                      : -1;
}

void Controller::RecordEvent(const ComponentRef& ref, events::Type type, const std::string& reason,
                             const std::string& message) {
  Logger("runtime")->info("msg=event component={} reason={} message=\"{}\"", ref.Scope(), reason,
                          message);
  if (!known_.count(ref.Scope())) return;
  if (reason == "CrashLoop") {
    // An operation cannot succeed while an instance crash-loops (e.g. a new version that
    // exits at start); ending it lets the user roll back.
    auto it = ops_.find(ref.Scope());
    if (it != ops_.end() && it->second.failure.empty()) it->second.failure = message;
  }
  Status s = recorder_.Record(ref, type, reason, message);
  if (!s.ok()) {
    Logger("runtime")->warn("msg=\"cannot record event\" error=\"{}\"", s.message());
  }
}

// ---- jobs ------------------------------------------------------------------------------------

int64_t Controller::NowMs() const {
  return UnixMillis(opt_.clock ? opt_.clock->Now() : std::chrono::system_clock::now());
}

void Controller::LoadRuns(const ComponentRef& ref) {
  const std::string scope = ref.Scope();
  auto all = ListAll(store_, model::kRun, scope);
  if (!all.ok()) return;
  std::map<std::string, StoredRun> running;
  for (const Object& o : *all) {
    auto r = model::RunFromJson(ParseBody(o));
    if (!r.ok() || r->status != "running") continue;
    r->name = o.name;
    running[o.name] = StoredRun{o.revision, *r};
  }
  if (running.empty()) {
    runs_.erase(scope);
  } else {
    runs_[scope] = std::move(running);
  }
}

std::vector<DesiredRun> Controller::DesiredRuns(const std::string& scope,
                                                const model::JobSettings& job) const {
  std::vector<DesiredRun> out;
  auto it = runs_.find(scope);
  if (it == runs_.end()) return out;
  for (const auto& [name, sr] : it->second) {
    DesiredRun d;
    d.name = name;
    d.retries = sr.run.command.empty() ? job.retries : 0;  // a one-off command runs once
    d.timeout_s = job.timeout_s;
    d.command = sr.run.command;
    d.started_at_ms = ParseTimeMs(sr.run.started_at);
    out.push_back(d);
  }
  return out;
}

void Controller::ApplyRuns(const ComponentRef& ref) {
  auto d = desired_.find(ref.Scope());
  auto j = jobs_.find(ref.Scope());
  if (d == desired_.end() || j == jobs_.end() || !d->second.job) return;
  d->second.runs = DesiredRuns(ref.Scope(), j->second.component.job);
  driver_.Apply(d->second);
}

Result<std::string> Controller::StartRun(const ComponentRef& ref, const std::string& trigger,
                                         const std::string& scheduled_at,
                                         const std::string& version,
                                         const std::vector<std::string>& cancel,
                                         const std::string& why) {
  const std::string scope = ref.Scope();
  for (int attempt = 0; attempt < 5; ++attempt) {
    BERTH_ASSIGN_OR_RETURN(std::vector<Object> all, ListAll(store_, model::kRun, scope));
    int64_t max = 0;
    for (const Object& o : all) max = std::max(max, model::RunNumber(o.name));
    model::Run run;
    run.number = max + 1;
    run.name = "run-" + std::to_string(run.number);
    run.trigger = trigger;
    run.by = "berth";
    run.instance = ref.component + "-" + run.name;
    run.scheduled_at = scheduled_at;
    run.version = version;
    run.started_at = FormatTime(FromUnixMillis(NowMs()));
    WriteBatch b;
    Op w;
    w.type = OpType::kCreate;
    w.object = Object{model::kRun, scope, run.name, model::ToJson(run).dump(), ""};
    b.ops.push_back(std::move(w));
    auto cur = runs_.find(scope);
    for (const std::string& name : cancel) {
      if (cur == runs_.end() || !cur->second.count(name)) continue;
      const StoredRun& sr = cur->second.at(name);
      model::Run c = sr.run;
      c.status = "cancelled";
      c.finished_at = run.started_at;
      c.message = why + " " + run.name;
      Op u;
      u.type = OpType::kUpdate;
      u.object = Object{model::kRun, scope, name, model::ToJson(c).dump(), ""};
      u.expected_revision = sr.revision;
      b.ops.push_back(std::move(u));
    }
    auto r = store_.Commit(b);
    if (r.ok()) {
      for (const std::string& name : cancel) {
        RecordEvent(ref, events::Type::kWarning, "JobCancelled",
                    "run " + name + " was cancelled: " + why + " " + run.name);
      }
      LoadRuns(ref);
      Logger("runtime")->info("msg=\"run started\" component={} run={} trigger={}", scope,
                              run.name, trigger);
      return run.name;
    }
    if (r.status().code() != Code::kConflict && r.status().code() != Code::kAlreadyExists) {
      return r.status();
    }
    LoadRuns(ref);  // a run was written meanwhile (the API): read again
  }
  return Status(Code::kConflict, "conflict", "runs of " + scope + " change concurrently");
}

void Controller::TriggerRun(const ComponentRef& ref, const std::string& trigger,
                            const std::string& scheduled_at, const std::string& version) {
  auto j = jobs_.find(ref.Scope());
  if (j == jobs_.end()) return;
  const std::string& policy = j->second.component.job.concurrency_policy;
  std::vector<std::string> running;
  if (auto it = runs_.find(ref.Scope()); it != runs_.end()) {
    for (const auto& [name, sr] : it->second) running.push_back(name);
  }
  std::string list;
  for (const std::string& n : running) list += (list.empty() ? "" : ", ") + n;
  if (!running.empty() && policy == "forbid") {
    std::string what = trigger == "schedule" ? "the firing at " + scheduled_at
                                             : "the " + trigger + " run";
    RecordEvent(ref, events::Type::kWarning, trigger == "schedule" ? "CronSkipped" : "JobSkipped",
                "skipped " + what + ": run " + list +
                    " is still running (concurrency policy forbid)");
    return;
  }
  std::vector<std::string> cancel;
  if (policy == "replace") cancel = running;
  auto r = StartRun(ref, trigger, scheduled_at, version, cancel,
                    "replaced (concurrency policy replace) by");
  if (!r.ok()) {
    Logger("runtime")->warn("msg=\"cannot start a run\" component={} error=\"{}\"",
                            ref.Scope(), r.status().message());
    return;
  }
  ApplyRuns(ref);
}

void Controller::CancelRuns(const ComponentRef& ref, const std::string& why,
                            bool keep_one_off) {
  auto it = runs_.find(ref.Scope());
  if (it == runs_.end()) return;
  WriteBatch b;
  std::vector<std::string> names;
  std::string now = FormatTime(FromUnixMillis(NowMs()));
  for (const auto& [name, sr] : it->second) {
    if (keep_one_off && !sr.run.command.empty()) continue;
    names.push_back(name);
    model::Run c = sr.run;
    c.status = "cancelled";
    c.finished_at = now;
    c.message = why;
    Op u;
    u.type = OpType::kUpdate;
    u.object = Object{model::kRun, ref.Scope(), name, model::ToJson(c).dump(), ""};
    u.expected_revision = sr.revision;
    b.ops.push_back(std::move(u));
  }
  if (b.ops.empty()) return;
  auto r = store_.Commit(b);
  if (r.ok()) {
    for (const std::string& name : names) {
      RecordEvent(ref, events::Type::kWarning, "JobCancelled",
                  "run " + name + " was cancelled: " + why);
    }
  }
  LoadRuns(ref);
}

void Controller::SyncRuns() {
  std::vector<std::string> scopes;  // jobs' runs and services' one-off runs
  for (const auto& [scope, runs] : runs_) scopes.push_back(scope);
  for (const std::string& scope : scopes) {
    auto k = known_.find(scope);
    auto st_runs = runs_.find(scope);
    if (k == known_.end() || st_runs == runs_.end()) continue;
    const ComponentRef ref = k->second;
    bool finished_any = false;
    std::vector<RunStatus> observed = driver_.ObserveRuns(ref);
    for (const RunStatus& st : observed) {
      auto sr_it = st_runs->second.find(st.name);
      if (sr_it == st_runs->second.end()) continue;
      const StoredRun& sr = sr_it->second;
      model::Run r = sr.run;
      if (!st.version.empty()) r.version = st.version;
      if (!st.instance.empty()) r.instance = st.instance;
      r.attempts = st.attempts;
      if (st.last_exit) r.last_exit = LastExitToJson(*st.last_exit);
      bool final = st.state != "running";
      if (final) {
        r.status = st.state;
        r.finished_at = FormatTime(FromUnixMillis(st.finished_at_ms ? st.finished_at_ms : NowMs()));
        r.message = st.message;
        r.log_tail = st.log_tail;
      } else if (r.attempts == sr.run.attempts && r.version == sr.run.version &&
                 r.last_exit == sr.run.last_exit) {
        continue;  // nothing people need to see changed
      } else {
        r.message = st.message;
      }
      WriteBatch b;
      Op u;
      u.type = OpType::kUpdate;
      u.object = Object{model::kRun, scope, st.name, model::ToJson(r).dump(), ""};
      u.expected_revision = sr.revision;
      b.ops.push_back(std::move(u));
      auto c = store_.Commit(b);
      if (!c.ok()) continue;  // cancelled meanwhile: the feed brings it
      sr_it->second = StoredRun{c->revision, r};
      if (!final) continue;
      finished_any = true;
      std::string head = "run " + r.name + " (" + r.trigger +
                         (r.version.empty() ? std::string() : ", " + r.version) + ")";
      if (r.status == "succeeded") {
        int64_t took = ParseTimeMs(r.finished_at) - ParseTimeMs(r.started_at);
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.1f",
                      static_cast<double>(std::max<int64_t>(took, 0)) / 1000);
        RecordEvent(ref, events::Type::kNormal, "JobSucceeded",
                    head + " succeeded: " + r.message + " after " + buf + " s");
      } else {
        std::string tail = OneLine(r.log_tail);
        RecordEvent(ref, events::Type::kWarning, "JobFailed",
                    head + " failed: " + r.message + (tail.empty() ? "" : ": " + tail));
      }
    }
    if (finished_any) {
      auto j = jobs_.find(scope);
      PruneRuns(ref, j != jobs_.end() ? j->second.component.job.history_limit
                                      : model::JobSettings{}.history_limit);
      LoadRuns(ref);
      if (j != jobs_.end()) {
        ApplyRuns(ref);
      } else {
        ApplyServiceRuns(ref);
      }
    }
  }
}

void Controller::PruneRuns(const ComponentRef& ref, int limit) {
  auto all = ListAll(store_, model::kRun, ref.Scope());
  if (!all.ok()) return;
  std::vector<std::pair<int64_t, Object>> finished;
  for (Object& o : *all) {
    Json j = ParseBody(o);
    if (j.value("status", "") == "running") continue;
    finished.emplace_back(model::RunNumber(o.name), std::move(o));
  }
  if (static_cast<int>(finished.size()) <= limit) return;
  std::sort(finished.begin(), finished.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  WriteBatch b;
  std::vector<std::string> instances;
  for (size_t i = static_cast<size_t>(limit); i < finished.size(); ++i) {
    const Object& o = finished[i].second;
    Op d;
    d.type = OpType::kDelete;
    d.object = Object{model::kRun, o.scope, o.name, "{}", ""};
    d.expected_revision = o.revision;
    b.ops.push_back(std::move(d));
    instances.push_back(ParseBody(o).value("instance", ref.component + "-" + o.name));
  }
  if (!store_.Commit(b).ok()) return;
  // Their logs go with them (the shims rotate to .log.1 and .log.2).
  if (opt_.data_dir.empty()) return;
  std::error_code ec;
  for (const std::string& inst : instances) {
    if (!ValidateDnsLabel(inst, "instance").ok()) continue;
    std::string base = opt_.data_dir + "/logs/instances/" + ref.Scope() + "/" + inst + ".log";
    for (const char* suffix : {"", ".1", ".2"}) std::filesystem::remove(base + suffix, ec);
  }
}

void Controller::RemoveLeftovers() {
  if (deleted_.empty() || opt_.data_dir.empty()) return;
  std::set<std::string> still;
  for (const ComponentRef& r : driver_.Components()) still.insert(r.Scope());
  for (auto it = deleted_.begin(); it != deleted_.end();) {
    if (still.count(it->first)) {  // instances still stopping
      ++it;
      continue;
    }
    const ComponentRef& ref = it->second;
    for (const char* root : {"/logs/instances/", "/run/", "/instances/"}) {
      std::filesystem::path dir = opt_.data_dir + root + ref.Scope();
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
      // The app's and the team's directories go with their last component.
      for (int up = 0; up < 2; ++up) {
        dir = dir.parent_path();
        if (!std::filesystem::remove(dir, ec)) break;  // not empty (or gone)
      }
    }
    Logger("runtime")->info("msg=\"instance logs and directories removed\" component={}",
                            ref.Scope());
    it = deleted_.erase(it);
  }
}

void Controller::Schedule() {
  const int64_t now_s = NowMs() / 1000;
  std::vector<std::string> scopes;
  for (const auto& [scope, info] : jobs_) {
    if (info.component.kind == "cronjob") scopes.push_back(scope);
  }
  for (const std::string& scope : scopes) {
    const JobInfo& info = jobs_.at(scope);
    auto k = known_.find(scope);
    if (k == known_.end()) continue;
    if (!info.running || info.component.job.suspend) {
      cron_last_[scope] = now_s;  // firings while stopped or suspended are not caught up
      continue;
    }
    auto schedule = model::ParseCron(info.component.schedule, "schedule");
    if (!schedule.ok()) continue;
    if (!cron_last_.count(scope)) {
      // The last firing handled is the newest scheduled run's; a cronjob that never fired
      // starts counting now. So an outage yields at most one catch-up run.
      int64_t last_ms = 0;
      auto all = ListAll(store_, model::kRun, scope);
      if (all.ok()) {
        for (const Object& o : *all) {
          Json j = ParseBody(o);
          if (j.value("trigger", "") != "schedule") continue;
          last_ms = std::max(last_ms, ParseTimeMs(j.value("scheduled_at", "")));
        }
      }
      cron_last_[scope] = last_ms > 0 ? last_ms / 1000 : now_s;
    }
    auto running = runs_.find(scope);
    int n = running == runs_.end() ? 0 : static_cast<int>(running->second.size());
    detail::CronDecision d =
        detail::PlanCron(*schedule, info.component.job.concurrency_policy, false,
                         cron_last_[scope], now_s, n);
    if (d.action == detail::CronDecision::Action::kNone) continue;
    cron_last_[scope] = d.scheduled_at_s;
    std::string at = FormatTime(FromUnixMillis(d.scheduled_at_s * 1000));
    if (d.missed) {
      Logger("runtime")->info("msg=\"catch-up run for a missed firing\" component={} at={}",
                              scope, at);
    }
    auto d_it = desired_.find(scope);
    std::string version =
        d_it != desired_.end() && d_it->second.tmpl ? d_it->second.tmpl->version : "";
    TriggerRun(k->second, "schedule", at, version);
  }
}

}  // namespace berth::runtime
