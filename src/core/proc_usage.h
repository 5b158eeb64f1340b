// CPU and memory use of process groups, read from Linux /proc: what an instance (an app that
// leads its own process group, with whatever children it starts) uses right now. The local
// runtime's instances run this way (runtime/shim.h), so the API reports their usage without
// asking the runtime.
//
// Thread-safety: a pure function over /proc; safe from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

namespace berth {

struct ProcessGroupUsage {
  int64_t rss_bytes = 0;     // resident memory of every live member
  double cpu_seconds = 0;    // user + system time of the members and their reaped children
  int processes = 0;         // live members (0: the group is gone)
};

// One pass over `proc_root` (normally "/proc"): the usage of each group in `pgids` that has a
// live member. Groups with none are absent from the result. Zombies count for CPU only.
std::map<int, ProcessGroupUsage> ReadProcessGroups(const std::set<int>& pgids,
                                                   const std::string& proc_root = "/proc");

}  // namespace berth
