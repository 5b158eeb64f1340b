#include "runtime/controller.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/log.h"
#include "core/names.h"
#include "model/model.h"

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

// Lists every object of `kind` in `scope` (all pages).
Result<std::vector<Object>> ListAll(Store& store, const std::string& kind, const std::string& scope,
                                    bool recursive = false) {
  std::vector<Object> out;
  ListOptions o;
  o.scope = scope;
  o.limit = 1000;
  o.recursive = recursive;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(ListResult r, store.List(kind, o));
    for (Object& obj : r.items) out.push_back(std::move(obj));
    if (r.next.empty()) break;
    o.after = r.next;
  }
  return out;
}

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
  driver_.Tick();
  SyncInstances();
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
                 o.kind == model::kOperation) {
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
      desired_.erase(ref.Scope());
      applied_version_.erase(ref.Scope());
      driver_.Remove(ref);
    }
    return;
  }
  known_[ref.Scope()] = ref;
  LoadOperation(ref);
  std::string problem;
  auto desired = Resolve(ref, ParseBody(*obj), &problem);
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
  if (!scanning_ && before != version && !version.empty() && desired->running &&
      desired->replicas > 0) {
    BeginAutoDeploy(ref, version);
  }
  applied_version_[ref.Scope()] = version;
  desired_[ref.Scope()] = *desired;
  driver_.Apply(*desired);
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
  auto d = desired_.find(scope);
  if (d == desired_.end()) return false;
  const DesiredComponent& want_d = d->second;
  int want = want_d.running ? want_d.replicas : 0;
  int good = 0;
  for (const InstanceStatus& s : now) {
    if (s.ready && s.state == "running" && !s.outdated) ++good;
  }
  if (want == 0 ? now.empty() : (static_cast<int>(now.size()) == want && good == want)) {
    *status = "succeeded";
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - st.seen);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(took.count()) / 1000.0);
    *message = want == 0 ? "no instance runs"
                         : std::to_string(want) + " of " + std::to_string(want) + " instance(s) ready" +
                               (want_d.tmpl ? " at " + want_d.tmpl->version : std::string()) +
                               " after " + buf + " s";
    return true;
  }
  if (want > 0 && !want_d.tmpl) {
    auto p = problems_.find(scope);
    *status = "failed";
    *message = p != problems_.end() && !p->second.empty() ? p->second : "nothing runnable";
    return true;
  }
  if (std::chrono::steady_clock::now() - st.seen >= opt_.operation_deadline) {
    *status = "failed";
    *message = "did not finish within " +
               std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                  opt_.operation_deadline).count()) +
               " s: " + std::to_string(good) + " of " + std::to_string(want) +
               " instance(s) ready and current";
    return true;
  }
  return false;
}

Result<DesiredComponent> Controller::Resolve(const ComponentRef& ref, const Json& body,
                                             std::string* problem) {
  BERTH_ASSIGN_OR_RETURN(model::Component c, model::ParseComponent(body));
  DesiredComponent d;
  d.ref = ref;
  d.running = c.desired_state == "running";
  d.replicas = c.replicas;
  d.grace_s = c.grace_period_s;
  d.rollout = c.rollout;
  d.ordered = c.kind == "stateful";
  const std::string scope = ref.Scope();

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
    t.start_command = !version->start_command.empty() ? version->start_command
                                                      : c.build.start_command;
    const std::string& art = version->artifact;
    if (art.rfind("sha256:", 0) == 0) {
      t.artifact_dir = opt_.data_dir + "/artifacts/" + art.substr(7);
    } else if (!art.empty()) {
      t.artifact_dir = opt_.data_dir + "/artifacts/" + art;
    }
    // The builder's layout (docs/architecture.md): DATA/artifacts/<hex>/{config.json, <workdir>/}
    // where config.json names the tree to run and the env the build set up (e.g. a venv's
    // PATH). Artifacts without config.json are the tree itself.
    std::map<std::string, std::string> artifact_env;
    if (!t.artifact_dir.empty()) {
      std::ifstream cfg_in(t.artifact_dir + "/config.json");
      if (cfg_in) {
        Json cfg = Json::parse(cfg_in, nullptr, false);
        std::string workdir = cfg.is_object() ? cfg.value("workdir", "") : "";
        if (!cfg.is_object() || !ValidateRelativePath(workdir.empty() ? "." : workdir, "workdir").ok()) {
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
    std::error_code ec;
    if (!problem->empty()) {
      // reported below
    } else if (t.start_command.empty()) {
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
      d.tmpl = std::move(t);
    }
  }
  d.dependency_env = DependencyEnv(ref);
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
    // The operation ends in the same commit as the instance writes that show it done, so
    // whoever sees the instances ready also sees the component free for the next operation.
    std::optional<std::pair<std::string, model::Operation>> ended;  // status → operation
    if (k != known_.end() && ops_.count(scope)) {
      std::string status, message;
      if (OperationEnded(scope, now, &status, &message)) {
        model::Operation op = ops_[scope].op;
        op.status = status;
        op.message = message;
        op.finished_at = FormatTime(std::chrono::system_clock::now());
        Op w;
        w.type = OpType::kUpdate;
        w.object = Object{model::kOperation, scope, "current", model::ToJson(op).dump(), ""};
        w.expected_revision = ops_[scope].revision;
        b.ops.push_back(std::move(w));
        ended = std::make_pair(status, op);
      }
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
    if (k == known_.end()) {
      // The component is gone (its tree was deleted with it): nothing to write.
      written_.erase(scope);
      continue;
    }
    if (b.ops.empty()) continue;
    auto r = store_.Commit(b);
    bool op_written = r.ok();
    if (!r.ok()) {
      // A delete of an already deleted object fails the batch: retry one op at a time.
      for (const Op& op : b.ops) {
        WriteBatch one;
        one.ops.push_back(op);
        auto one_r = store_.Commit(one);
        if (op.object.kind == model::kOperation) op_written = one_r.ok();
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
    }
    for (const std::string& name : gone) prev.erase(name);
    for (const InstanceStatus& s : now) prev[s.name] = InstanceToJson(s).dump();
  }
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

}  // namespace berth::runtime
