#pragma once
// Where the data plane's io threads run: the CPUs they are pinned to, if any.
#include <vector>

#include "gateway/gateway.h"

namespace berth::gateway::detail {

// The CPU of io thread i is plan[i]; an empty plan leaves every thread to the scheduler.
//   kOff  never pins.
//   kOn   pins io thread i to allowed[i] when there are at least as many allowed CPUs as
//         threads.
//   kAuto pins only when there is exactly one io thread per allowed CPU: the gateway then owns
//         every core it may use (nginx's `worker_processes auto; worker_cpu_affinity auto`),
//         and without pinning the scheduler can stack two io threads on one core, which sets
//         the p99 under load (docs/gateway.md "Tail latency"). With more CPUs than threads the
//         threads stay free to move off a core something else keeps busy.
std::vector<int> PinPlan(PinMode mode, const std::vector<int>& allowed, int threads);

// The CPUs this process may run on (sched_getaffinity), ascending; empty if unknown.
std::vector<int> AllowedCpus();

// "auto", "on" or "off" (also "true"/"false"/"1"/"0", as an environment variable gives a flag).
bool ParsePinMode(const std::string& text, PinMode* mode);
const char* PinModeName(PinMode mode);

}  // namespace berth::gateway::detail
