#include "runtime/local_driver.h"

#include <algorithm>
#include <cmath>

#include "core/log.h"

namespace berth::runtime {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

std::string Seconds(milliseconds d) {
  int64_t ms = d.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

int IndexOf(const std::string& component, const std::string& name) {
  if (name.size() <= component.size() + 1) return 0;
  std::string tail = name.substr(component.size() + 1);
  if (tail.empty() || tail.size() > 6 || tail.find_first_not_of("0123456789") != std::string::npos) {
    return 0;
  }
  return std::stoi(tail);
}

std::string ProbeWhat(const model::Probe& p, int port) {
  if (p.type == "http") return "http GET " + p.path + " on port " + std::to_string(port);
  if (p.type == "command") return "command `" + p.command + "`";
  return "tcp connect to port " + std::to_string(port);
}

std::string OneLine(std::string s, size_t max = 300) {
  for (char& ch : s) {
    if (ch == '\n' || ch == '\r') ch = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  if (s.size() > max) s = s.substr(0, max) + "...";
  return s;
}

}  // namespace

LocalDriver::LocalDriver(Host& host, const Clock& clock, EventSink events,
                         LocalDriverOptions options)
    : host_(host), clock_(clock), events_(std::move(events)), opt_(options) {}

LocalDriver::~LocalDriver() = default;

void LocalDriver::Adopt() {
  TimePoint now = clock_.Now();
  for (DiscoveredShim& d : host_.Discover()) {
    Component& c = components_[Key(d.spec.ref, d.spec.process)];
    c.ref = d.spec.ref;
    c.process = d.spec.process;
    Instance in;
    in.name = d.spec.instance;
    in.index = IndexOf(Prefix(c), in.name);
    in.fingerprint = d.spec.fingerprint;
    in.version = d.spec.version;
    in.port = d.spec.port;
    in.ports = d.spec.ports;
    in.env = d.spec.env;
    in.restarts = d.spec.restarts;
    in.shim_pid = d.obs.shim_pid;
    in.app_pid = d.obs.app_pid;
    in.started_at = d.obs.started_at_ms ? FromUnixMillis(d.obs.started_at_ms) : now;
    if (d.obs.state == ShimObservation::State::kRunning) {
      in.phase = Phase::kStarting;
      in.message = "adopted";
      in.adopted_unobserved = true;
    } else {
      // It exited while the server was away: restart it now (counted as a crash).
      in.phase = Phase::kBackoff;
      in.last_exit = d.obs.exit;
      in.backoff_until = now;
      in.message = "exited while the server was down: " + d.obs.exit.Describe();
    }
    Logger("runtime")->info("msg=adopted component={} instance={} shim_pid={} app_pid={} state={}",
                            c.ref.Scope(), in.name, in.shim_pid, in.app_pid,
                            in.phase == Phase::kBackoff ? "exited" : "running");
    c.instances[in.name] = std::move(in);
  }
}

void LocalDriver::Apply(const DesiredComponent& desired) {
  Component& c = components_[Key(desired.ref, desired.process)];
  c.ref = desired.ref;
  c.process = desired.process;
  c.removing = false;
  c.desired = desired;
  if (desired.tmpl) {
    std::string fp = desired.tmpl->Fingerprint();
    for (auto& [name, in] : c.instances) {
      if (in.fingerprint == fp) in.tmpl = desired.tmpl;
    }
  }
}

std::vector<LocalDriver::Component*> LocalDriver::Groups(const ComponentRef& ref) {
  std::vector<Component*> out;
  const std::string scope = ref.Scope();
  for (auto& [k, c] : components_) {
    if (k == scope || k.compare(0, scope.size() + 1, scope + "\n") == 0) out.push_back(&c);
  }
  return out;
}

void LocalDriver::Remove(const ComponentRef& ref) {
  for (Component* c : Groups(ref)) {
    c->removing = true;
    c->desired.reset();
  }
}

std::vector<ComponentRef> LocalDriver::Components() {
  std::vector<ComponentRef> out;
  std::set<std::string> seen;
  for (const auto& [k, c] : components_) {
    if (seen.insert(c.ref.Scope()).second) out.push_back(c.ref);
  }
  return out;
}

const InstanceTemplate* LocalDriver::Current(const Component& c) const {
  if (!c.desired || !c.desired->tmpl) return nullptr;
  return &*c.desired->tmpl;
}

bool LocalDriver::Ready(const Instance& in) const {
  if (in.phase != Phase::kStarting && in.phase != Phase::kRunning) return false;
  if (!in.tmpl) return in.phase == Phase::kRunning || in.readiness.passed;
  if (in.tmpl->health.startup && !in.startup.passed) return false;
  return in.readiness.passed;
}

std::set<int> LocalDriver::TakenPorts() const {
  std::set<int> taken;
  for (const auto& [k, c] : components_) {
    for (const auto& [n, in] : c.instances) {
      if (in.port) taken.insert(in.port);
      for (const auto& [d, p] : in.ports) taken.insert(p);
    }
  }
  return taken;
}

void LocalDriver::Tick() {
  for (auto it = components_.begin(); it != components_.end();) {
    Component& c = it->second;
    bool job = !c.removing && c.desired && c.desired->job;
    if (job) {
      ConvergeJob(c);
    } else {
      c.runs.clear();
      Converge(c);
    }
    std::vector<std::string> names;
    for (const auto& [n, in] : c.instances) names.push_back(n);
    for (const std::string& n : names) {
      auto found = c.instances.find(n);
      if (found == c.instances.end()) continue;
      if (job && found->second.phase != Phase::kStopping) {
        SuperviseJob(c, found->second);
      } else {
        Supervise(c, found->second);
      }
    }
    if (c.removing && c.instances.empty()) {
      it = components_.erase(it);
    } else {
      ++it;
    }
  }
}

void LocalDriver::Converge(Component& c) {
  std::vector<Instance*> active;
  for (auto& [n, in] : c.instances) {
    // An instance stopping to restart still counts: it comes back under the same name.
    if (in.phase != Phase::kStopping || in.after_stop == AfterStop::kRestart) {
      active.push_back(&in);
    }
  }
  auto stop_all = [&] {
    for (Instance* in : active) BeginStop(c, *in, AfterStop::kRemove);
  };
  if (c.removing) return stop_all();
  if (!c.desired) return;  // adopted, not applied yet: leave it alone
  const DesiredComponent& d = *c.desired;
  int want = d.running ? d.replicas : 0;
  if (want <= 0) return stop_all();
  const InstanceTemplate* t = Current(c);
  // Extra instances go first when they are not ready, then from the highest index.
  auto stop_extra = [&](std::vector<Instance*>& list, size_t keep) {
    std::sort(list.begin(), list.end(), [&](const Instance* a, const Instance* b) {
      bool ra = Ready(*a), rb = Ready(*b);
      if (ra != rb) return ra;  // ready ones first (kept)
      return a->index < b->index;
    });
    for (size_t i = keep; i < list.size(); ++i) BeginStop(c, *list[i], AfterStop::kRemove);
  };
  if (t == nullptr) {
    if (active.size() > static_cast<size_t>(want)) stop_extra(active, want);
    return;
  }
  std::string fp = t->Fingerprint();
  std::vector<Instance*> cur, old;
  for (Instance* in : active) (in->fingerprint == fp ? cur : old).push_back(in);
  if (d.ordered) return ConvergeOrdered(c, active, old, want);
  if (old.empty()) {
    for (size_t n = cur.size(); n < static_cast<size_t>(want); ++n) StartNew(c);
    if (cur.size() > static_cast<size_t>(want)) stop_extra(cur, want);
    return;
  }
  // Rolling replacement (Kubernetes' RollingUpdate, in berth words): never more than
  // `max_surge` instances above the replicas, never fewer than `replicas - max_unavailable`
  // ready ones while old instances still serve. Old instances that are not ready serve
  // nothing and go at once. Instances already stopping count for neither bound.
  int surge = d.rollout.max_surge.Resolve(want, true);
  int unavailable = d.rollout.max_unavailable.Resolve(want, false);
  if (surge <= 0 && unavailable <= 0) surge = 1;  // both 0 would never progress
  const int min_ready = std::max(0, want - unavailable);
  if (cur.size() > static_cast<size_t>(want)) {
    stop_extra(cur, want);
    cur.resize(want);  // stop_extra keeps the first `want` after sorting: the ones that stay
  }
  int ready_cur = 0;
  for (Instance* in : cur) ready_cur += Ready(*in) ? 1 : 0;
  std::vector<Instance*> old_ready;
  int old_unknown = 0;
  for (Instance* in : old) {
    if (Ready(*in)) {
      old_ready.push_back(in);
    } else if (in->adopted_unobserved) {
      ++old_unknown;  // a server restart mid-rollout: it probably still serves; look first
    } else {
      BeginStop(c, *in, AfterStop::kRemove);  // serves nothing: replace at once
    }
  }
  std::sort(old_ready.begin(), old_ready.end(),
            [](const Instance* a, const Instance* b) { return a->index > b->index; });
  int ready_total = ready_cur + static_cast<int>(old_ready.size());
  int live_old = static_cast<int>(old_ready.size()) + old_unknown;
  for (Instance* in : old_ready) {
    if (ready_total - 1 < min_ready) break;
    BeginStop(c, *in, AfterStop::kRemove);
    --ready_total;
    --live_old;
  }
  int count_cur = static_cast<int>(cur.size());
  while (count_cur < want && count_cur + live_old < want + surge) {
    StartNew(c);
    ++count_cur;
  }
}

void LocalDriver::ConvergeOrdered(Component& c, const std::vector<Instance*>& active,
                                  const std::vector<Instance*>& old, int want) {
  // One change at a time, each waiting for the previous one to finish.
  for (const auto& [n, in] : c.instances) {
    if (in.phase == Phase::kStopping || in.adopted_unobserved) return;
  }
  auto highest = [](std::vector<Instance*> list) {
    return *std::max_element(list.begin(), list.end(), [](const Instance* a, const Instance* b) {
      return a->index < b->index;
    });
  };
  std::vector<Instance*> extra, old_unready;
  for (Instance* in : active) {
    if (in->index >= want) extra.push_back(in);
  }
  for (Instance* in : old) {
    if (!Ready(*in)) old_unready.push_back(in);
  }
  if (!extra.empty()) return BeginStop(c, *highest(extra), AfterStop::kRemove);
  // A broken old instance would block the order forever: replace it first.
  if (!old_unready.empty()) return BeginStop(c, *highest(old_unready), AfterStop::kRemove);
  for (Instance* in : active) {
    if (!Ready(*in)) return;  // the next waits until this one is ready
  }
  // A missing instance (new, or the one just replaced) first, then the next old one.
  if (static_cast<int>(active.size()) < want) return StartNew(c);  // the lowest free index
  if (!old.empty()) BeginStop(c, *highest(old), AfterStop::kRemove);
}

void LocalDriver::StartNew(Component& c) {
  std::set<int> used;
  for (const auto& [n, in] : c.instances) used.insert(in.index);
  int index = c.desired && c.desired->ordered ? 0 : 1;
  while (used.count(index)) ++index;
  Instance in;
  in.index = index;
  in.name = Prefix(c) + "-" + std::to_string(index);
  in.tmpl = c.desired->tmpl;
  in.fingerprint = in.tmpl->Fingerprint();
  in.version = in.tmpl->version;
  auto [it, inserted] = c.instances.emplace(in.name, std::move(in));
  Status s = Launch(c, it->second);
  if (!s.ok()) {
    LastExit e;
    e.at_ms = UnixMillis(clock_.Now());
    it->second.message = s.message();
    events_(c.ref, events::Type::kWarning, "StartFailed",
            "instance " + it->second.name + " could not start: " + s.message());
    OnExit(c, it->second, e);
  }
}

Status LocalDriver::Launch(Component& c, Instance& in) {
  const InstanceTemplate& t = *in.tmpl;
  std::set<int> taken = TakenPorts();
  if (t.no_port) {
    in.port = 0;
    in.ports.clear();
  } else if (in.port == 0) {
    BERTH_ASSIGN_OR_RETURN(in.port, host_.AllocatePort(taken));
    taken.insert(in.port);
  }
  std::map<int, int> ports;
  for (size_t i = 0; i < t.ports.size(); ++i) {
    int declared = t.ports[i].port;
    if (i == 0) {
      ports[declared] = in.port;
    } else if (auto old = in.ports.find(declared); old != in.ports.end()) {
      ports[declared] = old->second;
    } else {
      BERTH_ASSIGN_OR_RETURN(ports[declared], host_.AllocatePort(taken));
      taken.insert(ports[declared]);
    }
  }
  in.ports = ports;
  std::map<std::string, std::string> env = t.env;
  if (c.desired) {
    for (const auto& [k, v] : c.desired->dependency_env) env.emplace(k, v);
  }
  if (in.port != 0) env["PORT"] = std::to_string(in.port);
  for (const auto& [declared, real] : in.ports) {
    env["PORT_" + std::to_string(declared)] = std::to_string(real);
  }
  env["BERTH_INSTANCE"] = in.name;
  env["BERTH_VERSION"] = t.version;
  LaunchSpec spec;
  spec.ref = c.ref;
  spec.instance = in.name;
  spec.process = c.process;
  spec.version = t.version;
  spec.fingerprint = in.fingerprint;
  spec.command = t.start_command;
  spec.artifact_dir = t.artifact_dir;
  spec.config_files = t.config_files;
  spec.env = env;
  spec.port = in.port;
  spec.ports = in.ports;
  spec.restarts = in.restarts;
  spec.resources = t.resources;
  spec.grace_s = t.grace_s;
  spec.volumes = t.volumes;
  in.env = env;
  in.phase = Phase::kStarting;
  in.started_at = clock_.Now();
  in.startup = Check{};
  in.readiness = Check{};
  in.liveness = Check{};
  in.app_pid = 0;
  in.message = "";
  BERTH_ASSIGN_OR_RETURN(in.shim_pid, host_.Launch(spec));
  Logger("runtime")->info("msg=started component={} instance={} version={} port={} shim_pid={}",
                          c.ref.Scope(), in.name, in.version, in.port, in.shim_pid);
  return Status::Ok();
}

void LocalDriver::BeginStop(Component& c, Instance& in, AfterStop after) {
  if (in.phase == Phase::kStopping) {
    if (after == AfterStop::kRemove) in.after_stop = AfterStop::kRemove;
    return;
  }
  if (in.phase == Phase::kBackoff) {
    // Nothing runs: finish at once.
    if (after == AfterStop::kRemove) {
      host_.Cleanup(c.ref, in.name, true);
      c.instances.erase(in.name);
    } else {
      in.backoff_until = clock_.Now();
    }
    return;
  }
  bool drain = after == AfterStop::kRemove && Ready(in) && !c.removing;
  TimePoint now = clock_.Now();
  in.stop_at = drain ? now + opt_.drain : now;
  in.stop_sent = false;
  if (!drain) {
    host_.Stop(c.ref, in.name);
    in.stop_sent = true;
  }
  in.phase = Phase::kStopping;
  in.after_stop = after;
  int grace = in.tmpl ? in.tmpl->grace_s : (c.desired ? c.desired->grace_s : 10);
  in.stop_deadline = in.stop_at + std::chrono::seconds(grace) + opt_.stop_timeout_extra;
  in.readiness.passed = false;
  in.message = after == AfterStop::kRemove ? "stopping" : "restarting";
}

void LocalDriver::Supervise(Component& c, Instance& in) {
  TimePoint now = clock_.Now();
  if (in.phase == Phase::kBackoff) {
    if (now < in.backoff_until || c.removing || !in.tmpl) return;
    const InstanceTemplate* t = Current(c);
    if (t == nullptr || t->Fingerprint() != in.fingerprint) return;  // Converge replaces it
    in.restarts += 1;
    Status s = Launch(c, in);
    if (!s.ok()) {
      events_(c.ref, events::Type::kWarning, "StartFailed",
              "instance " + in.name + " could not start: " + s.message());
      LastExit e;
      e.at_ms = UnixMillis(now);
      OnExit(c, in, e);
    }
    return;
  }
  ShimObservation obs = host_.Observe(c.ref, in.name);
  in.adopted_unobserved = false;
  if (in.phase == Phase::kStopping) {
    if (!in.stop_sent && obs.state == ShimObservation::State::kRunning) {
      if (now < in.stop_at) return;  // draining: reported unready, still serving
      host_.Stop(c.ref, in.name);
      in.stop_sent = true;
    }
    if (obs.state == ShimObservation::State::kRunning) {
      if (now >= in.stop_deadline) host_.Kill(c.ref, in.name);
      return;
    }
    if (obs.state == ShimObservation::State::kExited) in.last_exit = obs.exit;
    if (in.after_stop == AfterStop::kRemove) {
      host_.Cleanup(c.ref, in.name, true);
      Logger("runtime")->info("msg=stopped component={} instance={}", c.ref.Scope(), in.name);
      c.instances.erase(in.name);
      return;
    }
    // Restart (liveness failure or a restart of the same template): same name, relaunch.
    host_.Cleanup(c.ref, in.name, false);
    in.phase = Phase::kBackoff;
    in.backoff_until = now;
    return;
  }
  switch (obs.state) {
    case ShimObservation::State::kRunning:
      in.app_pid = obs.app_pid;
      in.shim_pid = obs.shim_pid;
      RunChecks(c, in);
      return;
    case ShimObservation::State::kExited:
      OnExit(c, in, obs.exit);
      return;
    case ShimObservation::State::kGone: {
      LastExit e = SupervisorGone(c, in);
      in.message = "the instance's supervisor disappeared";
      OnExit(c, in, e);
      return;
    }
  }
}

LastExit LocalDriver::SupervisorGone(Component& c, Instance& in) {
  // The supervisor vanished, or could not be recognised: kill whatever is left of the
  // instance (identity-checked by the host) and let the relaunch take a fresh port, so an app
  // that lives on cannot make its successor fail with "address already in use".
  host_.Kill(c.ref, in.name);
  in.port = 0;
  in.ports.clear();
  LastExit e;
  e.at_ms = UnixMillis(clock_.Now());
  e.signal = 9;
  return e;
}

void LocalDriver::OnExit(Component& c, Instance& in, const LastExit& exit) {
  TimePoint now = clock_.Now();
  in.last_exit = exit;
  in.app_pid = 0;
  in.readiness = Check{};
  in.startup = Check{};
  in.liveness = Check{};
  if (now - in.started_at >= opt_.backoff_reset) in.consecutive_crashes = 0;
  in.consecutive_crashes += 1;
  milliseconds delay = opt_.backoff_initial;
  for (int i = 1; i < in.consecutive_crashes && delay < opt_.backoff_max; ++i) delay *= 2;
  delay = std::min(delay, opt_.backoff_max);
  in.phase = Phase::kBackoff;
  in.backoff_until = now + delay;
  in.crashes.push_back(now);
  while (!in.crashes.empty() && now - in.crashes.front() > opt_.crashloop_window) {
    in.crashes.pop_front();
  }
  std::string tail = OneLine(host_.LogTail(c.ref, in.name, 3), 500);
  std::string what = exit.Describe();
  in.message = what + "; restarting in " + Seconds(delay);
  Logger("runtime")->warn("msg=exited component={} instance={} exit=\"{}\" backoff_ms={}",
                          c.ref.Scope(), in.name, what, delay.count());
  if (exit.oom && in.tmpl) {
    events_(c.ref, events::Type::kWarning, "OOMKilled",
            "instance " + in.name + " was killed for exceeding its memory limit of " +
                std::to_string(in.tmpl->resources.memory_mb) + " MiB");
  } else {
    events_(c.ref, events::Type::kWarning, "Crashed",
            "instance " + in.name + " " + what + (tail.empty() ? "" : ": " + tail));
  }
  if (static_cast<int>(in.crashes.size()) >= opt_.crashloop_threshold &&
      (in.last_crashloop_event == TimePoint{} ||
       now - in.last_crashloop_event >= opt_.crashloop_window)) {
    in.last_crashloop_event = now;
    int64_t window_s = duration_cast<std::chrono::seconds>(opt_.crashloop_window).count();
    events_(c.ref, events::Type::kWarning, "CrashLoop",
            "instance " + in.name + " " + what + " " + std::to_string(in.crashes.size()) +
                " times in " + std::to_string(window_s) + " s (next restart in " +
                Seconds(delay) + ")" + (tail.empty() ? "" : ": " + tail));
  }
}

// ---- jobs ----------------------------------------------------------------------------------

void LocalDriver::ConvergeJob(Component& c) {
  const DesiredComponent& d = *c.desired;
  TimePoint now = clock_.Now();
  std::set<std::string> wanted;
  for (const DesiredRun& dr : d.runs) wanted.insert(dr.name);
  for (auto it = c.runs.begin(); it != c.runs.end();) {
    it = wanted.count(it->first) ? std::next(it) : c.runs.erase(it);
  }
  // Only instances of runs still going may live: the rest (a cancelled run, an instance of a
  // former service, a finished run's leftover) stop.
  std::set<std::string> keep;
  if (d.running) {
    for (const DesiredRun& dr : d.runs) {
      auto r = c.runs.find(dr.name);
      if (r == c.runs.end() || r->second.state == Run::State::kRunning) {
        keep.insert(c.ref.component + "-" + dr.name);
      }
    }
  }
  std::vector<std::string> names;
  for (const auto& [n, in] : c.instances) names.push_back(n);
  for (const std::string& n : names) {
    auto it = c.instances.find(n);
    if (it != c.instances.end() && !keep.count(n)) BeginStop(c, it->second, AfterStop::kRemove);
  }
  if (!d.running) return;
  for (const DesiredRun& dr : d.runs) {
    auto [it, inserted] = c.runs.try_emplace(dr.name);
    Run& run = it->second;
    run.spec = dr;
    if (inserted) {
      run.instance = c.ref.component + "-" + dr.name;
      run.started_at = dr.started_at_ms ? FromUnixMillis(dr.started_at_ms) : now;
      run.tmpl = d.tmpl;
      if (run.tmpl && !dr.command.empty()) {
        // A one-off command in an instance of the current version: its own template.
        InstanceTemplate t = *run.tmpl;
        t.start_command = dr.command;
        run.tmpl = std::move(t);
      }
      StartRun(c, run);
    }
    if (run.state != Run::State::kRunning || dr.timeout_s <= 0) continue;
    if (now - run.started_at >= std::chrono::seconds(dr.timeout_s)) {
      FinishRun(run, false,
                "did not finish within its timeout of " + std::to_string(dr.timeout_s) +
                    " s (attempt " + std::to_string(run.attempts) + "); stopped");
      auto in = c.instances.find(run.instance);
      if (in != c.instances.end()) {
        run.log_tail = host_.LogTail(c.ref, run.instance, 5);
        BeginStop(c, in->second, AfterStop::kRemove);
      }
    }
  }
}

void LocalDriver::StartRun(Component& c, Run& run) {
  auto found = c.instances.find(run.instance);
  if (found != c.instances.end()) {
    // Adopted from a previous server: the run goes on where it was.
    Instance& in = found->second;
    in.run = run.spec.name;
    if (!in.tmpl) in.tmpl = run.tmpl;
    run.attempts = in.restarts + 1;
    run.version = in.version;
    if (in.phase == Phase::kBackoff && in.last_exit) {
      OnJobExit(c, run, in, *in.last_exit);  // it ended while the server was down
    }
    return;
  }
  if (!run.tmpl) {
    FinishRun(run, false, "nothing to run: the component has no runnable version");
    return;
  }
  Instance in;
  in.name = run.instance;
  in.run = run.spec.name;
  in.tmpl = run.tmpl;
  in.fingerprint = run.tmpl->Fingerprint();
  in.version = run.tmpl->version;
  run.version = in.version;
  run.attempts = 1;
  auto [it, inserted] = c.instances.emplace(in.name, std::move(in));
  Status s = Launch(c, it->second);
  if (!s.ok()) {
    events_(c.ref, events::Type::kWarning, "StartFailed",
            "instance " + run.instance + " could not start: " + s.message());
    LastExit e;
    e.at_ms = UnixMillis(clock_.Now());
    OnJobExit(c, run, it->second, e);
  }
}

void LocalDriver::SuperviseJob(Component& c, Instance& in) {
  auto r = c.runs.find(in.run);
  if (r == c.runs.end() || r->second.state != Run::State::kRunning) {
    BeginStop(c, in, AfterStop::kRemove);
    return;
  }
  Run& run = r->second;
  TimePoint now = clock_.Now();
  if (in.phase == Phase::kBackoff) {
    if (now < in.backoff_until) return;
    in.restarts += 1;
    run.attempts += 1;
    Status s = Launch(c, in);
    if (!s.ok()) {
      events_(c.ref, events::Type::kWarning, "StartFailed",
              "instance " + in.name + " could not start: " + s.message());
      LastExit e;
      e.at_ms = UnixMillis(now);
      OnJobExit(c, run, in, e);
    }
    return;
  }
  ShimObservation obs = host_.Observe(c.ref, in.name);
  in.adopted_unobserved = false;
  switch (obs.state) {
    case ShimObservation::State::kRunning:
      in.app_pid = obs.app_pid;
      in.shim_pid = obs.shim_pid;
      in.phase = Phase::kRunning;
      in.message = "running " + run.spec.name + " (attempt " + std::to_string(run.attempts) +
                   " of " + std::to_string(run.spec.retries + 1) + ")";
      return;
    case ShimObservation::State::kExited:
      OnJobExit(c, run, in, obs.exit);
      return;
    case ShimObservation::State::kGone:
      OnJobExit(c, run, in, SupervisorGone(c, in));
      return;
  }
}

void LocalDriver::OnJobExit(Component& c, Run& run, Instance& in, const LastExit& exit) {
  TimePoint now = clock_.Now();
  in.last_exit = exit;
  run.last_exit = exit;
  in.app_pid = 0;
  const std::string name = in.name;
  const int total = run.spec.retries + 1;
  const std::string attempt = "attempt " + std::to_string(run.attempts) + " of " +
                              std::to_string(total);
  if (exit.code == 0 && exit.signal == 0 && !exit.oom) {
    FinishRun(run, true, "completed on " + attempt);
    Logger("runtime")->info("msg=\"run succeeded\" component={} run={} attempts={}",
                            c.ref.Scope(), run.spec.name, run.attempts);
    host_.Cleanup(c.ref, name, true);
    c.instances.erase(name);
    return;
  }
  std::string what = exit.Describe();
  if (exit.oom && in.tmpl) {
    what += " (limit " + std::to_string(in.tmpl->resources.memory_mb) + " MiB)";
  }
  std::string tail = host_.LogTail(c.ref, name, 5);
  if (run.attempts >= total) {
    run.log_tail = tail;
    FinishRun(run, false, what + " on " + attempt);
    Logger("runtime")->warn("msg=\"run failed\" component={} run={} exit=\"{}\" attempts={}",
                            c.ref.Scope(), run.spec.name, what, run.attempts);
    host_.Cleanup(c.ref, name, true);
    c.instances.erase(name);
    return;
  }
  milliseconds delay = opt_.backoff_initial;
  for (int i = 1; i < run.attempts && delay < opt_.backoff_max; ++i) delay *= 2;
  delay = std::min(delay, opt_.backoff_max);
  in.phase = Phase::kBackoff;
  in.backoff_until = now + delay;
  in.message = what + " on " + attempt + "; retrying in " + Seconds(delay);
  run.message = in.message;
  events_(c.ref, events::Type::kWarning, "JobRetrying",
          "run " + run.spec.name + " (instance " + name + ") " + what + " on " + attempt +
              "; retrying in " + Seconds(delay) +
              (tail.empty() ? "" : ": " + OneLine(tail, 500)));
}

void LocalDriver::FinishRun(Run& run, bool succeeded, const std::string& message) {
  run.state = succeeded ? Run::State::kSucceeded : Run::State::kFailed;
  run.finished_at = clock_.Now();
  run.message = message;
}

std::vector<RunStatus> LocalDriver::ObserveRuns(const ComponentRef& ref) {
  std::vector<RunStatus> out;
  for (Component* group : Groups(ref)) {
    const Component* it_c = group;
    for (const auto& [name, run] : it_c->runs) {
      RunStatus s;
      s.name = name;
      s.instance = run.instance;
      s.version = run.version;
      s.state = run.state == Run::State::kRunning     ? "running"
                : run.state == Run::State::kSucceeded ? "succeeded"
                                                      : "failed";
      s.attempts = run.attempts;
      s.finished_at_ms = run.state == Run::State::kRunning ? 0 : UnixMillis(run.finished_at);
      s.last_exit = run.last_exit;
      s.message = run.message;
      if (run.state == Run::State::kRunning) {
        auto in = it_c->instances.find(run.instance);
        if (in != it_c->instances.end()) s.message = in->second.message;
      }
      s.log_tail = run.log_tail;
      out.push_back(std::move(s));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const RunStatus& a, const RunStatus& b) { return a.name < b.name; });
  return out;
}

bool LocalDriver::StepCheck(const ComponentRef& ref, Check& check,
                            const std::optional<model::Probe>& probe, Instance& in, bool* failed) {
  *failed = false;
  TimePoint now = clock_.Now();
  if (check.pending) {
    if (check.pending->wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      return check.passed;
    }
    ProbeResult r = check.pending->get();
    check.pending.reset();
    check.last_output = r.output;
    if (r.ok) {
      check.successes += 1;
      check.failures = 0;
      check.passed = true;
    } else {
      check.failures += 1;
      check.successes = 0;
      if (check.failures >= std::max(1, probe->failure_threshold)) {
        *failed = true;
        check.passed = false;
      }
    }
    // Until a check first passes it is repeated quickly so instances become ready promptly.
    milliseconds interval = std::chrono::seconds(std::max(1, probe->interval_s));
    if (!check.passed) interval = std::min(interval, milliseconds(300));
    check.next = now + interval;
    return check.passed;
  }
  if (now >= check.next) {
    ProbeTarget target;
    target.ref = ref;
    target.instance = in.name;
    target.port = in.port;
    if (probe->port != 0) {
      auto m = in.ports.find(probe->port);
      target.port = m != in.ports.end() ? m->second : probe->port;
    }
    target.workdir = host_.WorkDir(ref, in.name);
    target.env = in.env;
    check.pending = host_.Probe(*probe, target);
  }
  return check.passed;
}

void LocalDriver::RunChecks(Component& c, Instance& in) {
  if (!in.tmpl) {
    // Adopted with a template that is no longer current: running means serving.
    in.readiness.passed = true;
    in.phase = Phase::kRunning;
    return;
  }
  const model::Health& h = in.tmpl->health;
  bool failed = false;
  auto probe_port = [&](const model::Probe& p) {
    if (p.port == 0) return in.port;
    auto m = in.ports.find(p.port);
    return m != in.ports.end() ? m->second : p.port;
  };
  if (h.startup && !in.startup.passed) {
    StepCheck(c.ref, in.startup, h.startup, in, &failed);
    if (failed) {
      events_(c.ref, events::Type::kWarning, "StartupFailed",
              "instance " + in.name + " failed its startup check (" +
                  ProbeWhat(*h.startup, probe_port(*h.startup)) + ") " +
                  std::to_string(in.startup.failures) + " times: " +
                  OneLine(in.startup.last_output) + "; restarting");
      BeginStop(c, in, AfterStop::kRestart);
    }
    if (!in.startup.passed) {
      in.message = "waiting for the startup check";
      return;
    }
  }
  std::optional<model::Probe> readiness = h.readiness;
  if (!readiness && !in.tmpl->ports.empty()) {
    model::Probe implicit;  // a declared port must accept connections before traffic goes there
    implicit.type = "tcp";
    implicit.interval_s = 2;
    implicit.timeout_s = 1;
    implicit.failure_threshold = 3;
    readiness = implicit;
  }
  if (readiness) {
    bool was = in.readiness.passed;
    StepCheck(c.ref, in.readiness, readiness, in, &failed);
    if (in.readiness.passed) {
      in.phase = Phase::kRunning;
      in.message = "";
    } else {
      in.message = "not ready: " + OneLine(in.readiness.last_output);
    }
    if (was && failed) {
      events_(c.ref, events::Type::kWarning, "Unready",
              "instance " + in.name + " failed its readiness check (" +
                  ProbeWhat(*readiness, probe_port(*readiness)) + "): " +
                  OneLine(in.readiness.last_output));
    }
  } else {
    in.readiness.passed = true;
    in.phase = Phase::kRunning;
  }
  // Liveness counts only once the instance has been ready: a slow start is the startup
  // check's business, not a reason to kill the instance.
  if (h.liveness && in.phase == Phase::kRunning) {
    StepCheck(c.ref, in.liveness, h.liveness, in, &failed);
    if (failed) {
      events_(c.ref, events::Type::kWarning, "LivenessFailed",
              "instance " + in.name + " failed its liveness check (" +
                  ProbeWhat(*h.liveness, probe_port(*h.liveness)) + ") " +
                  std::to_string(in.liveness.failures) + " times: " +
                  OneLine(in.liveness.last_output) + "; restarting");
      BeginStop(c, in, AfterStop::kRestart);
    }
  }
}

std::vector<InstanceStatus> LocalDriver::Observe(const ComponentRef& ref) {
  std::vector<InstanceStatus> out;
  for (Component* group : Groups(ref)) {
    const Component& c = *group;
    const InstanceTemplate* t = Current(c);
    std::string fp = t ? t->Fingerprint() : "";
    for (const auto& [n, in] : c.instances) {
      InstanceStatus s;
      s.name = in.name;
      s.process = c.process;
      s.version = in.version;
      switch (in.phase) {
        case Phase::kStarting: s.state = "starting"; break;
        case Phase::kRunning: s.state = "running"; break;
        case Phase::kBackoff: s.state = "backoff"; break;
        case Phase::kStopping: s.state = "stopping"; break;
      }
      s.ready = Ready(in);
      s.outdated = t != nullptr && in.fingerprint != fp;
      bool alive = in.phase != Phase::kBackoff;
      s.pid = alive ? in.app_pid : 0;
      s.shim_pid = alive ? in.shim_pid : 0;
      s.port = in.port;
      s.ports = in.ports;
      s.netns = host_.NetnsOf(c.ref);
      s.restarts = in.restarts;
      s.started_at_ms = alive ? UnixMillis(in.started_at) : 0;
      s.last_exit = in.last_exit;
      s.message = in.message;
      s.crash_looping = in.consecutive_crashes >= opt_.crashloop_threshold && !s.ready &&
                        in.phase != Phase::kStopping;
      out.push_back(std::move(s));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const InstanceStatus& a, const InstanceStatus& b) { return a.name < b.name; });
  return out;
}

}  // namespace berth::runtime
