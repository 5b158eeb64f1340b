// Private to the runtime module: the on-disk protocol between the server and its shims.
//
//   DATA/run/<team>/<app>/<component>/<instance>/spec.json   written by the server before it
//       starts the shim (LaunchSpec + paths); read by the shim, and by the server to adopt.
//   DATA/run/.../<instance>/state.json   written only by the shim, atomically (tmp + rename):
//       {"shim_pid","app_pid","app_start","started_at_ms","state":"starting|running|exited",
//        "exit_code","signal","oom","exited_at_ms"}
//   DATA/run/.../<instance>/launch.json   written by the server right after it forked the shim:
//       {"shim_pid","shim_start"} (the pid and its /proc start time, which exec does not change)
//   DATA/instances/<team>/<app>/<component>/<instance>/   the app's working dir
//   DATA/logs/instances/<team>/<app>/<component>/<instance>.log (+ .log.1, .log.2 rotated):
//       one line per output line: "<RFC 3339 UTC ms> <out|err|shim> <text>"
//
// A shim that wrote its state is recognised by /proc/<pid>/cmdline == [<exe>, "shim", "--dir",
// <run dir>], so a recycled pid is never mistaken for it; before that, by the pid and start
// time in launch.json, which a restarted server reads too (the pid used to be kept in memory
// only, so a new server deleted the run dir of a shim still starting). The cmdline alone is also
// not enough right after a launch: the server learns that exec succeeded when exec closes the
// CLOEXEC report pipe, which the kernel does before it has set up the new program's arguments,
// so for that moment the live shim's cmdline reads as empty, like a zombie's. An app is recognised by
// its pid plus its start time (/proc/<pid>/stat field 22), recorded as "app_start".
// Thread-safety: free functions, no shared state.
#pragma once

#include <string>

#include <optional>

#include "runtime/local_driver.h"
#include "sandbox/sandbox.h"

namespace berth::runtime::detail {

struct Layout {
  std::string data_dir;
  std::string RunRoot() const { return data_dir + "/run"; }
  std::string RunDir(const ComponentRef& r, const std::string& instance) const {
    return RunRoot() + "/" + r.Scope() + "/" + instance;
  }
  std::string WorkDir(const ComponentRef& r, const std::string& instance) const {
    return data_dir + "/instances/" + r.Scope() + "/" + instance;
  }
  // DATA/teams/<team>/volumes/<app>/<component>/<volume>[/<instance>], on the team's disk
  // (sandbox/team_disk.h): outlives instances, deploys and restarts; removed only with the
  // component when asked (api: ?volumes=delete).
  std::string VolumeDir(const ComponentRef& r, const std::string& volume,
                        const std::string& instance) const {
    std::string d = data_dir + "/teams/" + r.team + "/volumes/" + r.app + "/" + r.component + "/" + volume;
    return instance.empty() ? d : d + "/" + instance;
  }
  // Where an older server kept the same volume (DATA/volumes/<team>/<app>/<component>/...):
  // used as it is when it exists and the new place does not.
  std::string LegacyVolumeDir(const ComponentRef& r, const std::string& volume,
                              const std::string& instance) const {
    std::string d = data_dir + "/volumes/" + r.Scope() + "/" + volume;
    return instance.empty() ? d : d + "/" + instance;
  }
  std::string LogPath(const ComponentRef& r, const std::string& instance) const {
    return data_dir + "/logs/instances/" + r.Scope() + "/" + instance + ".log";
  }
};

// The instance's cgroup (core/cgroup.h) under each hierarchy's root:
// "berth/<team>.<app>.<component>.<instance>" (names are DNS labels: no dots, no clash with
// the builder's "berth/builds/").
inline std::string CgroupName(const ComponentRef& r, const std::string& instance) {
  return "berth/" + r.team + "." + r.app + "." + r.component + "." + instance;
}

// The shim's instructions: the launch spec plus where things go.
struct ShimSpec {
  LaunchSpec launch;
  std::string workdir;
  std::string log_path;
  int64_t log_max_bytes = 10 << 20;
  int log_keep = 2;  // rotated files kept (.log.1 ... .log.N)
  // Set: the app runs in this sandbox (sandbox/sandbox.h) instead of as the shim's own user in
  // `workdir`; its cgroup_procs are filled in by the shim. Unset: no sandbox (--sandbox off).
  std::optional<sandbox::Spec> sandbox;
  int64_t pids_max = 0;  // the instance cgroup's task limit, 0 = none
};

Json ShimSpecToJson(const ShimSpec& s);
Result<ShimSpec> ShimSpecFromJson(const Json& j);

struct ShimState {
  std::string state;  // starting | running | exited ("" = no state file)
  int shim_pid = 0;
  int app_pid = 0;
  int64_t app_start = 0;
  int64_t started_at_ms = 0;
  LastExit exit;
};
Json ShimStateToJson(const ShimState& s);
ShimState ReadShimState(const std::string& run_dir);

// What the server knows about a shim it forked (launch.json): enough to recognise it before
// the shim has written its state, also after a server restart.
struct LaunchRecord {
  int shim_pid = 0;
  int64_t shim_start = 0;  // ProcessStartTicks(shim_pid) at launch
};
Json LaunchRecordToJson(const LaunchRecord& r);
LaunchRecord ReadLaunchRecord(const std::string& run_dir);

// The pid of the live shim of `run_dir`, 0 when there is none: the pid in its state when
// /proc shows that shim, else the launched process while it is still the same process (alive,
// not a zombie, same start time) — it may be inside exec or not yet have written its state.
int LiveShim(const ShimState& state, const LaunchRecord& launched, const std::string& run_dir,
             const std::string& proc_root = "/proc");

// Env::Default()'s ReadFile and WriteFileAtomic (mode 0644), kept as the runtime's names.
Result<std::string> ReadFile(const std::string& path);
Status WriteFileAtomic(const std::string& path, const std::string& content);

// True when `pid` is a live shim for `run_dir` (not a zombie, not a recycled pid).
// `proc_root` is "/proc" except in tests.
bool IsShim(int pid, const std::string& run_dir, const std::string& proc_root = "/proc");
// Start time of `pid` in clock ticks since boot (field 22 of /proc/pid/stat); 0 if gone or a
// zombie.
int64_t ProcessStartTicks(int pid, const std::string& proc_root = "/proc");
// True when `pid` is alive, not a zombie, and started at `start_ticks`.
bool IsSameProcess(int pid, int64_t start_ticks, const std::string& proc_root = "/proc");

// "${VAR}" → env value (unknown names are left as written).
std::string RenderTemplate(const std::string& text, const std::map<std::string, std::string>& env);

}  // namespace berth::runtime::detail
