// The deploy controller: turns what the store says a component should be (component,
// versions, dependencies) into DesiredComponents for a Driver, drives the driver, and writes
// what runs back to the store as `instance` objects (only when an instance changed) and what
// happened as events.
//
// It watches the store's change feed (a listener wakes it; ChangesSince says what changed)
// and does a full scan at start and whenever the feed was compacted past its cursor, so it
// converges from any state: a restart at any moment repeats nothing harmful.
//
// Version resolution: `component.version` names the version to run; "" means the newest
// version with status `ready`. The artifact `sha256:<hex>` is DATA/artifacts/<hex>/; a version
// with artifact "" runs its start command in an otherwise empty working dir (for commands
// that use absolute paths or the config files). The version's start_command wins; else the
// component's build.start_command. Without a runnable version nothing new is started (what
// runs keeps running) and one event says why.
//
// Jobs and cronjobs (docs/architecture.md "Jobs"): runs are `run` objects under the component.
// The controller starts one for each new version a job deploys and for each firing of a
// cronjob's schedule (PlanCron: concurrency policy, at most one catch-up after an outage),
// hands the runs in status `running` to the driver, and writes each run's outcome back
// (JobSucceeded / JobFailed events), keeping the newest `job.history_limit` finished runs.
//
// Thread-safety: Start/Stop from one thread; the work runs on the controller's own thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "core/clock.h"
#include "events/events.h"
#include "runtime/driver.h"
#include "store/store.h"

namespace berth::runtime {

struct ControllerOptions {
  std::string data_dir;
  std::chrono::milliseconds tick{200};
  // An operation (deploy, scale, ...) that has not converged this long after the controller
  // first saw it is ended as failed, so the component accepts operations again.
  std::chrono::milliseconds operation_deadline{std::chrono::minutes(10)};
  // Called from the controller thread about once a second (the server wakes log streams).
  std::function<void()> on_tick;
  // The time runs are stamped with and cron schedules fire by; nullptr = the system clock.
  const Clock* clock = nullptr;
  // A team's directory, its disk ready (sandbox/team_disk.h): artifacts are looked up in its
  // artifacts/ before DATA/artifacts. Null: DATA/teams/<team> as it is.
  std::function<Result<std::string>(const std::string& team)> team_dir;
  // "Ready" means routed (docs/gateway.md "Ready means routed"): when above zero, an operation
  // of a component the gateway routes (an outer port, or a rule's backend) succeeds only once
  // the gateway reports (the gateway_status object's `revision`) that it serves a snapshot at
  // or after the revision that wrote the converged instances; without that report within this
  // long it fails. 0: it ends when the instances converge (no gateway runs).
  std::chrono::milliseconds route_wait{0};
};

class Controller {
 public:
  Controller(Store& store, Driver& driver, events::Recorder& recorder, ControllerOptions options);
  ~Controller();

  // Full scan, then the watch loop on its own thread.
  Status Start();
  // Stops the loop. Instances keep running (the driver's shims outlive the server).
  void Stop();

  // The driver's events go here (only for components that still exist).
  void RecordEvent(const ComponentRef& ref, events::Type type, const std::string& reason,
                   const std::string& message);

  // One pass without the thread: changes, a driver tick, instance writes (tests).
  void RunOnceForTest();
  Status FullScanForTest() { return FullScan(); }

 private:
  Status FullScan();
  void ProcessChanges();
  void Reconcile(const ComponentRef& ref);
  // What a version runs besides the main process (docs/architecture.md "Process types").
  struct Processes {
    std::optional<InstanceTemplate> base;  // the version's template before the command is chosen
    std::map<std::string, DesiredComponent> groups;  // Procfile types other than web, by type
    std::string release;  // the Procfile's release command ("" = none)
  };
  Result<DesiredComponent> Resolve(const ComponentRef& ref, const Json& component,
                                   std::string* problem, Processes* procs);
  // Applies the process groups of `ref` (and replicas 0 to the types the version dropped).
  void ApplyGroups(const ComponentRef& ref, std::map<std::string, DesiredComponent> groups);
  // Runs the release command of `version` in a group of its own before the rollout (true:
  // hold the rollout: the release runs or failed).
  bool HoldForRelease(const ComponentRef& ref, const std::string& version, const Processes& procs,
                      bool running);
  // Ends releases whose run finished: a success lets the rollout go, a failure ends the
  // operation with the release's last log lines and keeps the old version.
  void SyncReleases();
  // One-off runs of a service (`berth run -- CMD`): a job group "run" of the current version.
  void ApplyServiceRuns(const ComponentRef& ref);
  std::map<std::string, std::string> DependencyEnv(const ComponentRef& ref);
  void SyncInstances();
  // Reads the component's operation object into ops_ (in progress) or drops it.
  void LoadOperation(const ComponentRef& ref);
  // Starts a "deploy" operation for a version the controller deploys on its own (a build of a
  // component that runs the newest ready version) unless another operation is in progress.
  void BeginAutoDeploy(const ComponentRef& ref, const std::string& version);
  // Whether the operation of `scope` has ended given what runs; fills status and message.
  // After a failed rollout: pins the component to `to` (the version that was serving) with an
  // audit entry and a RolledBack event, as `berth rollback` would. `why`: the failure.
  void ReturnTo(const ComponentRef& ref, const std::string& to, const std::string& from,
                const std::string& why);
  bool OperationEnded(const std::string& scope, const std::vector<InstanceStatus>& now,
                      std::string* status, std::string* message);
  void Loop();

  // ---- jobs ----
  struct StoredRun {
    int64_t revision = 0;
    model::Run run;
  };
  struct JobInfo {
    model::Component component;
    bool running = false;
  };
  // Reads the runs of `ref` in status running into runs_ (and returns them).
  void LoadRuns(const ComponentRef& ref);
  // Writes a new run (and cancels `cancel` in the same commit); returns its name.
  Result<std::string> StartRun(const ComponentRef& ref, const std::string& trigger,
                               const std::string& scheduled_at, const std::string& version,
                               const std::vector<std::string>& cancel, const std::string& why);
  // Starts a run as the concurrency policy says: allow, forbid (skipped with an event while
  // one runs), replace (the running ones are cancelled in the same commit).
  void TriggerRun(const ComponentRef& ref, const std::string& trigger,
                  const std::string& scheduled_at, const std::string& version);
  std::vector<DesiredRun> DesiredRuns(const std::string& scope,
                                      const model::JobSettings& job) const;
  // Hands the runs in runs_ to the driver (with the rest of what was last applied).
  void ApplyRuns(const ComponentRef& ref);
  // Marks runs in status running cancelled (a stopped component, a kind that is no job).
  // keep_one_off: not the runs with a command of their own (`berth run -- CMD`).
  void CancelRuns(const ComponentRef& ref, const std::string& why, bool keep_one_off = false);
  // Writes what the driver says of the runs; ends the finished ones.
  void SyncRuns();
  // Fires the cronjobs that are due.
  void Schedule();
  // Deletes the oldest finished runs beyond the history limit, and their logs.
  void PruneRuns(const ComponentRef& ref, int limit);
  // Once the driver has removed every instance of a deleted component: its instance logs and
  // what is left of its run and work directories (DATA/logs/instances, DATA/run,
  // DATA/instances under <team>/<app>/<component>; volumes stay unless the API removed them).
  void RemoveLeftovers();
  int64_t NowMs() const;

  std::map<std::string, JobInfo> jobs_;  // scope → job or cronjob component
  std::map<std::string, std::map<std::string, StoredRun>> runs_;  // scope → running runs
  std::map<std::string, int64_t> cron_last_;  // scope → last firing handled (Unix s)
  std::map<std::string, ComponentRef> deleted_;  // scope → deleted, directories not yet removed

  Store& store_;
  Driver& driver_;
  events::Recorder& recorder_;
  const ControllerOptions opt_;

  // Controller-thread state.
  int64_t cursor_ = 0;
  std::map<std::string, ComponentRef> known_;        // components that exist in the store
  std::map<std::string, std::string> problems_;      // last "cannot run" message per component
  std::map<std::string, std::map<std::string, std::string>> written_;  // scope → name → body
  std::chrono::steady_clock::time_point last_hook_{};
  struct OperationState {
    int64_t revision = 0;
    model::Operation op;
    std::chrono::steady_clock::time_point seen{};
    std::string failure;  // set when the operation cannot succeed (a crash loop)
    // Converged and waiting for the gateway: since when, and the revision it must serve.
    std::optional<std::chrono::steady_clock::time_point> converged;
    int64_t route_revision = 0;
  };
  // Whether the gateway routes the component (an outer port or a rule's backend), so its
  // operations wait for the gateway (ControllerOptions::route_wait).
  bool Routed(const ComponentRef& ref);
  // The revision the gateway last reported serving; -1 when none did.
  int64_t GatewayRevision();
  std::map<std::string, int64_t> instance_rev_;   // scope → revision of the last instance write
  std::map<std::string, int64_t> component_rev_;  // scope → revision of the component read
  std::map<std::string, OperationState> ops_;        // scope → operation in progress
  // Ends `st` as failed ("did not finish within ...: progress") once its deadline passed.
  bool DeadlinePassed(const OperationState& st, const std::string& progress, std::string* status,
                      std::string* message) const;
  std::map<std::string, DesiredComponent> desired_;  // scope → what was last applied
  std::map<std::string, std::string> applied_version_;  // scope → version last applied
  // scope → the version that served (had ready instances) when the controller moved the
  // component to another one; a rollout of that other version that fails returns to it.
  std::map<std::string, std::string> serving_;
  // scope → the version a failed rollout returned to: reaching it is no new deploy operation.
  std::map<std::string, std::string> returned_to_;
  // scope → type → the non-main process groups last applied.
  std::map<std::string, std::map<std::string, DesiredComponent>> groups_;
  // scope → the current version's template (for one-off runs and the release).
  std::map<std::string, InstanceTemplate> base_;
  struct Release {
    std::string version;
    std::string run;  // "release-v3": the run (and "<component>-release-v3" its instance)
    bool failed = false;
    std::chrono::steady_clock::time_point started{};
    DesiredComponent group;
  };
  std::map<std::string, Release> releases_;        // scope → release running or failed
  std::map<std::string, std::string> released_;    // scope → version whose release passed
  std::set<std::string> run_groups_;  // scopes of services with a one-off run group applied
  bool scanning_ = false;  // in FullScan: what runs was deployed before; no new operations

  std::mutex mu_;
  std::condition_variable cv_;
  bool wake_ = false;  // guarded by mu_
  bool stop_ = false;  // guarded by mu_
  int listener_ = -1;
  std::thread thread_;
};

}  // namespace berth::runtime
