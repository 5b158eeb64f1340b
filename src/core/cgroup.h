// Linux control groups for berth's limits: one module for the builder (a memory limit per
// build) and the runtime (memory and CPU per instance, usage for the API), speaking both file
// protocols:
//
//   v2 (unified): <root>/<name>/ with memory.max (+ memory.swap.max 0), cpu.max "<quota>
//       100000", cgroup.procs; usage memory.current; OOM kills "oom_kill N" in memory.events.
//       A controller works in a group only when every ancestor lists it in
//       cgroup.subtree_control, so Create enables it on the way down.
//   v1: <memory root>/<name>/ with memory.limit_in_bytes (+ memory.swappiness 0),
//       <cpu root>/<name>/ with cpu.cfs_period_us 100000 and cpu.cfs_quota_us, and
//       <pids root>/<name>/ with pids.max; a process joins each through its cgroup.procs;
//       usage memory.usage_in_bytes; OOM kills "oom_kill N" in memory.oom_control (kernels
//       since 4.13), else memory.failcnt (hits of the limit).
//   Both: pids.max caps the number of tasks (processes and threads) in the group, so a fork
//       bomb inside one instance or build stops at its own limit.
//
// Roots are parameters (CgroupLayout), so the protocols are tested against a directory laid
// out like each hierarchy. Groups are removed with rmdir only: cgroupfs drops a group's files
// with it, and a group that still has processes stays (EBUSY) rather than being torn down.
//
// Thread-safety: CgroupLayout is a value; a Cgroup is not shared between threads (each method
// only reads or writes files, so const methods may run concurrently).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace berth {

// Where the hierarchies that can carry limits are mounted ("" = not available).
struct CgroupLayout {
  std::string v2;         // a unified hierarchy offering the memory or cpu controller
  std::string v1_memory;  // a v1 hierarchy with the memory controller
  std::string v1_cpu;     // a v1 hierarchy with the cpu controller
  std::string v1_pids;    // a v1 hierarchy with the pids controller

  // Looks under `root` (normally /sys/fs/cgroup): a unified hierarchy mounted there (pure v2);
  // else v1 `memory/` and `cpu/`; else a hybrid `unified/` mount, used only if it offers the
  // memory controller (one with no controllers, as on a systemd hybrid machine, cannot limit).
  static CgroupLayout Detect(const std::string& root = "/sys/fs/cgroup");
  bool Empty() const {
    return v2.empty() && v1_memory.empty() && v1_cpu.empty() && v1_pids.empty();
  }
  // Whether berth may create groups there (false when the hierarchy is read-only to us).
  bool Writable() const;
  // "cgroup v2 at /sys/fs/cgroup", "cgroup v1 (memory at ..., cpu at ...)", "no cgroups".
  std::string Describe() const;
};

struct CgroupLimits {
  int64_t memory_bytes = 0;  // 0 = no memory limit
  int64_t cpu_millis = 0;    // 0 = no CPU limit; 1000 = one core
  int64_t pids = 0;          // 0 = no task limit
};

// One group named by a relative path ("berth/builds/7", "berth/t.a.c.c-1"), present in each
// hierarchy its limits need (v2: one directory; v1: memory and/or cpu).
class Cgroup {
 public:
  Cgroup() = default;

  // Creates the group (or takes it over if left behind) and writes `limits`. Best effort: what
  // cannot be set up is said in `*problem` (empty when everything applied) and the rest still
  // applies; with no hierarchy for any limit the group is empty().
  static Cgroup Create(const CgroupLayout& layout, const std::string& name,
                       const CgroupLimits& limits, std::string* problem);
  // The group as it exists now, creating nothing (for reading usage); empty() if it does not.
  static Cgroup Open(const CgroupLayout& layout, const std::string& name);

  bool empty() const { return memory_dir_.empty() && cpu_dir_.empty() && pids_dir_.empty(); }
  bool v2() const { return v2_; }
  const std::string& memory_dir() const { return memory_dir_; }
  const std::string& cpu_dir() const { return cpu_dir_; }
  const std::string& pids_dir() const { return pids_dir_; }
  // The cgroup.procs files a process writes its pid to in order to join (one per hierarchy).
  std::vector<std::string> ProcsFiles() const;
  Status AddProcess(int pid) const;

  // OOM kills inside the group so far (see the header comment for the v1 fallback).
  int64_t OomKills() const;
  // The group's memory working set: usage (memory.current / memory.usage_in_bytes) minus
  // inactive file cache from memory.stat, as `docker stats` and `kubectl top` count it.
  std::optional<int64_t> MemoryBytes() const;
  // The limits as the kernel holds them; nullopt when unlimited or without that controller.
  std::optional<int64_t> MemoryLimitBytes() const;
  std::optional<int64_t> CpuLimitMillis() const;
  std::optional<int64_t> PidsLimit() const;

  // Removes the group's directories (retrying briefly while the kernel finishes reaping its
  // last processes). Parents are kept: they are shared with other groups.
  void Remove();

 private:
  bool v2_ = false;
  std::string memory_dir_;  // v2: the group's directory (also cpu_dir_ when CPU is limited)
  std::string cpu_dir_;
  std::string pids_dir_;  // v2: the group's directory when tasks are limited
};

}  // namespace berth
