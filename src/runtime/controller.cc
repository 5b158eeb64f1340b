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
      } else if (o.kind == model::kVersion || o.kind == model::kDependency) {
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
      driver_.Remove(ref);
    }
    return;
  }
  known_[ref.Scope()] = ref;
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
  driver_.Apply(*desired);
}

Result<DesiredComponent> Controller::Resolve(const ComponentRef& ref, const Json& body,
                                             std::string* problem) {
  BERTH_ASSIGN_OR_RETURN(model::Component c, model::ParseComponent(body));
  DesiredComponent d;
  d.ref = ref;
  d.running = c.desired_state == "running";
  d.replicas = c.replicas;
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
    if (k == known_.end()) {
      // The component is gone (its tree was deleted with it): nothing to write.
      written_.erase(scope);
      continue;
    }
    if (b.ops.empty()) continue;
    auto r = store_.Commit(b);
    if (!r.ok()) {
      // A delete of an already deleted object fails the batch: retry one op at a time.
      for (const Op& op : b.ops) {
        WriteBatch one;
        one.ops.push_back(op);
        (void)store_.Commit(one);
      }
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
  Status s = recorder_.Record(ref, type, reason, message);
  if (!s.ok()) {
    Logger("runtime")->warn("msg=\"cannot record event\" error=\"{}\"", s.message());
  }
}

}  // namespace berth::runtime
