// A memory limit for one build. Preferred: a memory cgroup (v2 when the unified hierarchy is at
// /sys/fs/cgroup, else v1 /sys/fs/cgroup/memory) under berth/builds/<id>, which limits what the
// build really uses and records OOM kills. Where the server cannot create one (no controller,
// no permission), the fallback is RLIMIT_AS through the shell's `ulimit -v`: it caps address
// space, not resident memory, so runtimes that reserve large virtual ranges (V8, the JVM) may
// fail early under it — the build log says which kind of limit applies.
// Private to the build module. Thread-safety: one object per build; not shared.
#pragma once

#include <cstdint>
#include <string>

#include "core/cgroup.h"

namespace berth::builder::detail {

class BuildMemoryLimit {
 public:
  // `limit_mb` 0 = no limit. `id` names the cgroup (unique per running build). `pids` > 0 also
  // caps the build's tasks (sandboxed builds: a fork bomb in a step stops there).
  BuildMemoryLimit(const std::string& id, int64_t limit_mb,
                   const CgroupLayout& layout = CgroupLayout::Detect(), int64_t pids = 0);
  ~BuildMemoryLimit();  // removes the cgroup (its processes have ended by then)
  BuildMemoryLimit(const BuildMemoryLimit&) = delete;
  BuildMemoryLimit& operator=(const BuildMemoryLimit&) = delete;

  // `command` wrapped so that the shell running it enters the limit before anything else runs.
  std::string Wrap(const std::string& command) const;
  // The cgroup.procs files a sandboxed step joins instead of Wrap (empty without a cgroup).
  std::vector<std::string> ProcsFiles() const { return cgroup_.ProcsFiles(); }
  // For the build log: "cgroup v1 memory limit 2048 MiB", "RLIMIT_AS 2048 MiB (...)", "".
  const std::string& Describe() const { return describe_; }
  // The cgroup's OOM-kill count went up since the last call (a step was killed for memory).
  bool OomKilledSinceLastCheck();

 private:
  int64_t limit_mb_ = 0;
  Cgroup cgroup_;  // empty when none
  std::string describe_;
  int64_t oom_seen_ = 0;
};

}  // namespace berth::builder::detail
