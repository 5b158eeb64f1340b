// The runtime driver (DESIGN.md §2): the one interface between the deploy controller and
// whatever runs instances — supervised local processes (LocalDriver) or, later, Kubernetes
// Deployments. The controller resolves a component's desired state from the store into a
// DesiredComponent (which version, how many, with what env, ports, files, checks and limits)
// and hands it to Apply; the driver converges on it in its own time (rolling replacement,
// restarts with back-off, health checks) and reports what runs through Observe.
//
// The vocabulary is berth's, not Kubernetes': a Kubernetes driver renders a DesiredComponent
// as a Deployment (replicas, template, probes, resources, a ConfigMap for the files) and maps
// Pods back to InstanceStatus.
//
// Thread-safety: implementations are driven from one controller thread; they need not be
// thread-safe unless they say so.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "events/events.h"
#include "model/model.h"

namespace berth::runtime {

using ComponentRef = events::ComponentRef;

// What every instance of one component runs. Any change of it replaces the instances (a
// rolling update); see Fingerprint.
struct InstanceTemplate {
  std::string version;        // "v3"
  std::string artifact_dir;   // absolute directory copied into each working dir; "" = none
  std::string start_command;  // run as `/bin/sh -c <start_command>` in the working dir
  std::map<std::string, std::string> env;  // component env + platform identity
  std::vector<model::ConfigFile> config_files;  // rendered with ${VAR} from the instance env
  std::vector<model::Port> ports;               // declared ports (mapped per instance)
  model::Health health;
  model::Resources resources;
  int64_t restart_generation = 0;  // bumped by a restart request
  // SIGTERM → SIGKILL when an instance stops; part of the instance (the shim holds it), so a
  // change replaces the instances, as Kubernetes does for a pod's grace period.
  int grace_s = 10;
  // Persistent directories mounted (by symlink) at `path` in the working dir; per instance
  // for stateful components (unless shared), else one per component.
  struct VolumeMount {
    std::string name;
    std::string path;
    bool per_instance = false;
  };
  std::vector<VolumeMount> volumes;
  // No PORT: the instance listens nowhere (a Procfile worker, a release, a one-off run), so
  // none is allocated and no readiness check waits for one.
  bool no_port = false;

  // A stable digest of everything above: equal fingerprints = interchangeable instances.
  std::string Fingerprint() const;
};

// One run of a job (Kubernetes' Job): one instance, named "<component>-<run>", runs the
// template's command to completion. Exit 0 ends the run as succeeded; any other end (a code,
// a signal, an OOM kill) is retried after a back-off (1 s, doubling) until `retries` retries
// have failed too; `timeout_s` bounds the whole run (Kubernetes' activeDeadlineSeconds).
struct DesiredRun {
  std::string name;           // "run-3"
  int retries = 3;
  int timeout_s = 0;          // 0 = none
  int64_t started_at_ms = 0;  // when the run began (its deadline survives a server restart)
  // Run this instead of the template's start command (a one-off `berth run -- CMD`).
  std::string command;
};

// One process group of a component: the driver keeps each (ref, process) apart — its own
// replicas, rollout and instances, named "<component>-<n>" for the main process ("") and
// "<component>-<process>-<n>" for the others (docs/architecture.md "Process types"). Observe,
// ObserveRuns and Remove take the component: every group of it.
struct DesiredComponent {
  ComponentRef ref;
  std::string process;  // "" = the main (web) process; "worker", "release", "run", ...
  bool running = true;  // desired_state == "running"
  int replicas = 1;
  // Nothing runnable yet (no ready version, missing artifact): the driver keeps what runs and
  // starts nothing new.
  std::optional<InstanceTemplate> tmpl;
  // Connection info of dependencies (<NAME>_HOST, <NAME>_PORT): applied when an instance
  // (re)starts, deliberately not part of the fingerprint so a moving dependency does not roll
  // its dependents.
  std::map<std::string, std::string> dependency_env;
  int grace_s = 10;  // SIGTERM → SIGKILL for instances without a current template
  // How a rolling update replaces instances (surge above replicas, unavailable below).
  model::Rollout rollout;
  // A stateful component (Kubernetes' StatefulSet, OrderedReady): instances are named from 0
  // (web-0, web-1, ...) and change one at a time — the next starts once every lower one is
  // ready; scale-down and replacement go from the highest index, and a replaced instance
  // comes back under its own name (its per-instance volume is keyed by it). `rollout` does
  // not apply.
  bool ordered = false;
  // A job or cronjob: no long-running replicas (`replicas` and `rollout` do not apply); each
  // run in `runs` gets one instance that runs to completion with the current `tmpl`. A run
  // that leaves `runs` while it goes is stopped (cancelled); the driver forgets runs that left.
  bool job = false;
  std::vector<DesiredRun> runs;
};

struct LastExit {
  int code = -1;      // exit status, -1 when killed by a signal
  int signal = 0;     // terminating signal, 0 when it exited
  bool oom = false;   // killed by the kernel for exceeding the memory limit
  int64_t at_ms = 0;
  std::string Describe() const;  // "exited with code 3", "was killed by signal 9 (SIGKILL)"
};

// What became of a run (ObserveRuns).
struct RunStatus {
  std::string name;       // "run-3"
  std::string instance;   // "backup-run-3"
  std::string version;
  std::string state;      // running | succeeded | failed
  int attempts = 0;       // launches so far
  int64_t finished_at_ms = 0;
  std::optional<LastExit> last_exit;
  std::string message;    // how it ended or why it waits, for people
  std::string log_tail;   // the last lines of the instance's log, when it failed
};

struct InstanceStatus {
  std::string name;        // "web-2"
  std::string process;     // its process group; "" = the main (web) process
  std::string version;     // "v3"
  std::string state;       // starting | running | backoff | stopping
  bool ready = false;      // passes readiness: may receive traffic
  bool outdated = false;   // runs an older template; will be replaced
  int pid = 0;             // the app's pid (process group leader), 0 when not running
  int shim_pid = 0;
  int port = 0;            // PORT
  std::map<int, int> ports;  // declared port → the port this instance listens on
  std::string netns;       // the network it listens in (a namespace file); "" = this host's
  int restarts = 0;
  int64_t started_at_ms = 0;
  std::optional<LastExit> last_exit;
  std::string message;     // why it is not ready / waiting, for people
  // Not ready after crashing at least the driver's crash-loop threshold of times in a row:
  // a state, not the CrashLoop event (which fires at most once a window and stops once the
  // back-off outgrows it), so an operation begun during a crash loop still sees it.
  bool crash_looping = false;
};

class Driver {
 public:
  virtual ~Driver() = default;
  // Records the desired state of one component; idempotent. Convergence happens in Tick.
  virtual void Apply(const DesiredComponent& desired) = 0;
  // Stops every instance of the component and removes its working dirs.
  virtual void Remove(const ComponentRef& ref) = 0;
  // Makes progress: starts, stops, checks, restarts. Never blocks for long.
  virtual void Tick() = 0;
  // What runs for the component now, sorted by name.
  virtual std::vector<InstanceStatus> Observe(const ComponentRef& ref) = 0;
  // Every component the driver holds instances of (including adopted ones not yet applied).
  virtual std::vector<ComponentRef> Components() = 0;
  // The runs of a job component that are in its desired `runs`, sorted by name.
  virtual std::vector<RunStatus> ObserveRuns(const ComponentRef& ref) = 0;
};

// The store form of an instance (kind "instance" under the component's scope).
Json InstanceToJson(const InstanceStatus& s);
// {code, signal, oom, at, reason}: how instances and runs show an exit.
Json LastExitToJson(const LastExit& e);

}  // namespace berth::runtime
