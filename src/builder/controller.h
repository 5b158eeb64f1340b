// The build controller (docs/architecture.md "Desired state and controllers"): watches the
// store for versions with status "queued" and turns each into a ready (or failed) version.
//
// For one version it: marks it "building"; fetches the source (the snapshot in the version's
// `build_request`, else the component's current source) into DATA/builds/<id>/src; detects
// how to build it (overrides win); checks the toolchain; runs each build step with /bin/sh in
// its own process group under the time limit, with per-component dependency caches in
// DATA/cache/<team>/<app>/<component>/; writes the log line by line to
// DATA/logs/builds/<team>/<app>/<component>/<version>.log; publishes the tree as a
// content-addressed artifact (DATA/artifacts/<sha256>/, see detail/artifact.h) and marks the
// version "ready" — or "failed" with the step, exit code and last lines, plus a BuildFailed
// event. The running version of the component is never touched.
//
// Restarts lose nothing: at start it scans every version, queues the "queued" ones and
// resumes the "building" ones a previous server left behind; then it follows the change feed.
// A version set to "cancelled" (or deleted) while building has its process group killed.
// After a success only the newest `versions_kept` ready versions of the component are kept
// (the component's pinned version is never deleted); an artifact directory is removed when no
// version references it any more.
//
// Thread-safety: Start/Stop from one thread; everything else runs on the controller's own
// threads (one dispatcher, `concurrency` workers).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "sandbox/sandbox.h"
#include "store/store.h"

namespace berth::builder {

struct BuilderOptions {
  std::string data_dir;                          // required, absolute or relative to cwd
  int concurrency = 2;                           // builds at once; the rest wait in FIFO order
  std::chrono::seconds time_limit{1800};         // per build, all steps together
  int versions_kept = 10;                        // ready versions kept per component
  int64_t memory_limit_mb = 0;                   // per build (cgroup, else RLIMIT_AS); 0 = none
  int64_t max_source_bytes = int64_t{2} << 30;
  int64_t max_source_files = 200000;
  // Admin-configured directories sources on the server's disk must be under
  // (build/source_policy.h); checked again before each fetch.
  std::vector<std::string> source_roots;
  // A build starting while the data directory's disk is at least this full records a
  // DiskNearlyFull warning event on its component.
  int disk_warn_percent = 90;
  // First wait before trying again to record a build's start or result the store refused for a
  // while (busy, full disk); doubles up to 10 s. Tests make it short.
  std::chrono::milliseconds store_retry{200};
  // Called (at most every 100 ms) when a build log grew: lets log streams poll at once.
  std::function<void()> on_log;
  // Build steps run sandboxed (docs/security.md) when sandbox.enabled: as the team's user, in
  // the team's network, seeing only the source tree (/app), the component's caches (/cache)
  // and a home of their own.
  sandbox::Config sandbox;
  int64_t sandbox_pids = 4096;    // tasks per build
  int64_t sandbox_tmp_mb = 1024;  // the build's private /tmp (memory)
  // Non-empty: every build fails with this reason (a sandbox is required and this machine
  // cannot make one; the admin may opt out with --sandbox off).
  std::string refuse_builds;
};

class BuildController {
 public:
  BuildController(Store& store, const Clock& clock, BuilderOptions options);
  ~BuildController();  // Stop()

  // Scans the store and starts the threads. Errors: invalid_argument for bad options.
  Status Start();
  // Kills running builds (they stay "building" and resume on the next Start), joins threads.
  void Stop();

  // Builds waiting or running now.
  int PendingForTest() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Where a version's build log lives, relative to the data directory.
std::string BuildLogPath(const std::string& team, const std::string& app,
                         const std::string& component, const std::string& version);

}  // namespace berth::builder
