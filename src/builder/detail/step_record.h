// Records of the build steps that run, in DATA/build-steps/, so that a server started after
// the previous one died without stopping its builds (kill -9, a crash, the OOM killer) can end
// the steps it left behind: they would otherwise run on until the build time limit, and the
// build resumes anyway.
//
// A record is one small file per running step: a random token, written before the step
// starts, then the step's process group. The step gets the token in its environment
// (BERTH_BUILD_STEP=token), so its processes are recognised even if they left the process
// group (setsid) and a process group that outlived its leader is never confused with another
// one that reuses the id: only processes showing the token (in /proc/PID/environ) are
// killed, together with the process groups they belong to when those are the recorded ones.
//
// Private to the build module. Thread-safety: a StepRecord belongs to one thread;
// KillLeftoverSteps runs before any build starts.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace berth::builder::detail {

inline constexpr char kStepTokenVar[] = "BERTH_BUILD_STEP";

class StepRecord {
 public:
  // Writes DIR/NAME (DIR is created). A record that cannot be written (a full disk) only
  // loses the clean-up after a crash: the step still runs, and ok() is false.
  StepRecord(const std::string& dir, const std::string& name);
  ~StepRecord();  // removes the record: the step and its process group are gone
  StepRecord(const StepRecord&) = delete;
  StepRecord& operator=(const StepRecord&) = delete;

  // "BERTH_BUILD_STEP=<token>", for the step's environment.
  std::string EnvEntry() const;
  // The step's shell runs as process group `pgid`.
  void Started(int pgid);
  bool ok() const { return ok_; }

 private:
  void Write(int pgid);
  std::string path_, token_;
  bool ok_ = false;
};

// Kills every process of the steps recorded in DIR (see above) and removes the records.
// Returns the number of processes killed.
int KillLeftoverSteps(const std::string& dir, spdlog::logger& log);

}  // namespace berth::builder::detail
