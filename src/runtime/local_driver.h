// The local runtime driver: each instance is an app process supervised by its own shim
// (`berth shim`, shim.h) on this machine. LocalDriver holds only the decisions — how many
// instances, which to start or stop and when, rolling replacement, back-off, health checks,
// crash-loop and liveness events — and reaches the machine through Host, so the decisions are
// unit-tested with a fake host and a fake clock (local_driver_test.cc).
//
// Instance lifecycle: starting (launched, not yet ready) → running (ready) → stopping
// (SIGTERM sent, waiting for the shim to record the exit) → gone; an unexpected exit goes to
// backoff and is relaunched under the same name after 1 s, 2 s, 4 s ... (capped), the
// sequence resetting after the instance has run for `backoff_reset`.
//
// Rolling update (template fingerprint changed): one new instance at a time is started
// (surge 1); an old one is stopped only when the new one is ready (no unavailability), except
// old instances that are not ready anyway, which go at once.
//
// Jobs (DesiredComponent::job): instead of replicas, one instance per desired run, named
// "<component>-<run>", run to completion and never restarted after exit 0; a failed attempt
// is relaunched under the same name after 1 s, 2 s, 4 s ... until the run's retries are spent
// (the run fails, with the last log lines); a run past its timeout is stopped and failed. A
// finished run's instance is removed at once (its log stays); the run's outcome is reported
// by ObserveRuns until the run leaves the desired runs.
//
// Thread-safety: not thread-safe; one controller thread calls every method.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/clock.h"
#include "runtime/driver.h"

namespace berth::runtime {

// Everything a shim needs to start one instance (also what it records for adoption).
struct LaunchSpec {
  ComponentRef ref;
  std::string instance;     // "web-2"
  std::string process;      // its process group ("" = main); kept for adoption
  std::string version;
  std::string fingerprint;
  std::string command;
  std::string artifact_dir;  // "" = none
  std::vector<model::ConfigFile> config_files;
  std::map<std::string, std::string> env;  // the whole app environment
  int port = 0;
  std::map<int, int> ports;
  int restarts = 0;
  model::Resources resources;
  int grace_s = 10;
  std::vector<InstanceTemplate::VolumeMount> volumes;  // prepared by the host, not the shim
};

// What the machine says about one shim.
struct ShimObservation {
  enum class State { kRunning, kExited, kGone };
  State state = State::kGone;  // kGone: neither a live shim nor a recorded exit
  int shim_pid = 0;
  int app_pid = 0;
  int64_t started_at_ms = 0;
  LastExit exit;  // kExited only
};

// A shim found on disk at start (for adoption).
struct DiscoveredShim {
  LaunchSpec spec;
  ShimObservation obs;
};

struct ProbeResult {
  bool ok = false;
  std::string output;  // what the check saw: "connection refused", "HTTP 500", command output
};

// Where a probe goes: a port on 127.0.0.1 (in the instance's network), and the instance's
// dir/env for command checks.
struct ProbeTarget {
  ComponentRef ref;
  std::string instance;
  int port = 0;
  std::string workdir;
  std::map<std::string, std::string> env;
};

// The machine, as the driver sees it. Implementations: SystemHost (system_host.h), fakes in
// tests.
class Host {
 public:
  virtual ~Host() = default;
  // A free loopback port not in `taken`.
  virtual Result<int> AllocatePort(const std::set<int>& taken) = 0;
  // Prepares the working dir and starts a detached shim; returns the shim's pid.
  virtual Result<int> Launch(const LaunchSpec& spec) = 0;
  virtual ShimObservation Observe(const ComponentRef& ref, const std::string& instance) = 0;
  // Graceful stop: the shim forwards SIGTERM, waits the grace period, then SIGKILLs.
  virtual void Stop(const ComponentRef& ref, const std::string& instance) = 0;
  // Immediate SIGKILL of the app's process group and the shim.
  virtual void Kill(const ComponentRef& ref, const std::string& instance) = 0;
  // Removes what is left of a gone instance (run dir; working dir when `remove_workdir`).
  virtual void Cleanup(const ComponentRef& ref, const std::string& instance,
                       bool remove_workdir) = 0;
  // Shims recorded on disk: live ones to adopt, exited ones to restart. Stale records (dead
  // shim, no recorded exit) are cleaned up here and not returned.
  virtual std::vector<DiscoveredShim> Discover() = 0;
  virtual std::string WorkDir(const ComponentRef& ref, const std::string& instance) = 0;
  // Runs a check asynchronously; the future is polled, never waited on by the driver.
  virtual std::future<ProbeResult> Probe(const model::Probe& probe, const ProbeTarget& target) = 0;
  // The last `lines` lines of the instance's log (for crash events).
  virtual std::string LogTail(const ComponentRef& ref, const std::string& instance,
                              int lines) = 0;
  // The network namespace (a file) the component's instances listen in; "" = this host's.
  virtual std::string NetnsOf(const ComponentRef& ref) const { return ""; }
};

struct LocalDriverOptions {
  std::chrono::milliseconds backoff_initial{1000};
  std::chrono::milliseconds backoff_max{60000};
  std::chrono::milliseconds backoff_reset{60000};   // running this long forgives past crashes
  std::chrono::milliseconds crashloop_window{60000};
  int crashloop_threshold = 3;                      // crashes in the window = a crash loop
  std::chrono::milliseconds stop_timeout_extra{5000};  // after grace: SIGKILL it ourselves
  // A ready instance that is removed is first reported unready for this long, so whoever
  // routes traffic (gateway, clients) stops using it before it gets SIGTERM.
  std::chrono::milliseconds drain{1000};
};

using EventSink = std::function<void(const ComponentRef& ref, events::Type type,
                                     const std::string& reason, const std::string& message)>;

class LocalDriver final : public Driver {
 public:
  LocalDriver(Host& host, const Clock& clock, EventSink events, LocalDriverOptions options = {});
  ~LocalDriver() override;

  // Takes over the shims found on disk. Call once, before the first Apply.
  void Adopt();

  void Apply(const DesiredComponent& desired) override;
  void Remove(const ComponentRef& ref) override;
  void Tick() override;
  std::vector<InstanceStatus> Observe(const ComponentRef& ref) override;
  std::vector<ComponentRef> Components() override;
  std::vector<RunStatus> ObserveRuns(const ComponentRef& ref) override;

 private:
  struct Check {
    int failures = 0;
    int successes = 0;
    bool passed = false;
    TimePoint next{};
    std::optional<std::future<ProbeResult>> pending;
    std::string last_output;
  };
  enum class Phase { kStarting, kRunning, kBackoff, kStopping };
  enum class AfterStop { kRemove, kRestart };
  struct Instance {
    std::string name;
    int index = 0;
    std::string fingerprint;
    std::string version;
    std::optional<InstanceTemplate> tmpl;  // empty for adopted instances until applied
    Phase phase = Phase::kStarting;
    AfterStop after_stop = AfterStop::kRemove;
    int shim_pid = 0;
    int app_pid = 0;
    int port = 0;
    std::map<int, int> ports;
    std::map<std::string, std::string> env;  // as launched (for command checks)
    int restarts = 0;
    TimePoint started_at{};
    TimePoint stop_deadline{};
    TimePoint stop_at{};       // when SIGTERM goes out (after draining)
    bool stop_sent = false;
    TimePoint backoff_until{};
    int consecutive_crashes = 0;
    std::deque<TimePoint> crashes;
    TimePoint last_crashloop_event{};
    std::optional<LastExit> last_exit;
    Check startup, readiness, liveness;
    std::string message;
    // Adopted from a previous server and not observed yet: whether it serves is unknown until
    // the first Supervise, so a rollout neither counts it ready nor replaces it as unready.
    bool adopted_unobserved = false;
    std::string run;  // the job run it belongs to ("run-3"); "" for a replica
  };
  struct Run {
    DesiredRun spec;
    std::string instance;
    std::string version;
    enum class State { kRunning, kSucceeded, kFailed } state = State::kRunning;
    int attempts = 0;
    TimePoint started_at{};
    TimePoint finished_at{};
    std::optional<LastExit> last_exit;
    std::string message;
    std::string log_tail;
    std::optional<InstanceTemplate> tmpl;  // what every attempt runs
  };
  struct Component {
    ComponentRef ref;
    std::string process;  // "" = the main process (see DesiredComponent::process)
    std::optional<DesiredComponent> desired;
    bool removing = false;
    std::map<std::string, Instance> instances;
    std::map<std::string, Run> runs;  // jobs: the desired runs, by name
  };

  void Converge(Component& c);
  void ConvergeOrdered(Component& c, const std::vector<Instance*>& active,
                       const std::vector<Instance*>& old, int want);
  void Supervise(Component& c, Instance& in);
  void RunChecks(Component& c, Instance& in);
  bool StepCheck(const ComponentRef& ref, Check& check, const std::optional<model::Probe>& probe,
                 Instance& in, bool* failed);
  Status Launch(Component& c, Instance& in);
  void StartNew(Component& c);
  void BeginStop(Component& c, Instance& in, AfterStop after);
  // Kills what is left of an instance whose shim is gone; the exit to record (SIGKILL, now).
  LastExit SupervisorGone(Component& c, Instance& in);
  void OnExit(Component& c, Instance& in, const LastExit& exit);
  void ConvergeJob(Component& c);
  void StartRun(Component& c, Run& run);
  void SuperviseJob(Component& c, Instance& in);
  // Handles the end of one attempt: success, a retry after back-off, or the run's failure.
  void OnJobExit(Component& c, Run& run, Instance& in, const LastExit& exit);
  void FinishRun(Run& run, bool succeeded, const std::string& message);
  bool Ready(const Instance& in) const;
  const InstanceTemplate* Current(const Component& c) const;
  std::set<int> TakenPorts() const;
  // One entry per process group; the main group's key is the component's scope.
  static std::string Key(const ComponentRef& r, const std::string& process) {
    return process.empty() ? r.Scope() : r.Scope() + "\n" + process;
  }
  // "web" for the main group, "web-worker" for the worker group: what instance names start with.
  static std::string Prefix(const Component& c) {
    return c.process.empty() ? c.ref.component : c.ref.component + "-" + c.process;
  }
  // The groups of one component.
  std::vector<Component*> Groups(const ComponentRef& ref);

  Host& host_;
  const Clock& clock_;
  EventSink events_;
  const LocalDriverOptions opt_;
  std::map<std::string, Component> components_;
};

}  // namespace berth::runtime
