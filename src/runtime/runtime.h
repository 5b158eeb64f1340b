// The local runtime as one piece for `berth server`: the system host, the local driver (which
// adopts the shims left running by an earlier server) and the deploy controller.
//
//   auto rt = runtime::LocalRuntime::Start(store, SystemClock::Get(), {.data_dir = dir});
//   ...
//   rt->Stop();  // the controller stops; instances keep running under their shims
//
// Thread-safety: Start and Stop from one thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/usage_sampler.h"
#include "runtime/local_driver.h"
#include "runtime/system_host.h"
#include "store/store.h"

namespace berth::runtime {

struct RuntimeOptions {
  std::string data_dir;
  std::chrono::milliseconds tick{200};
  std::function<void()> on_tick;  // about once a second, from the controller thread
  LocalDriverOptions driver;
  int64_t log_max_bytes = 10 << 20;  // per instance log file before rotation
  // Told about every running instance (app pgid → its cgroup) about once a second, so the
  // API can report CPU% over a recent window; null = nobody asks.
  std::shared_ptr<UsageSampler> usage;
  InstanceSandbox sandbox;  // how instances are isolated (disabled: as the server's user)
  // ControllerOptions::route_wait: operations of routed components end once the gateway
  // serves them (0 = no gateway runs: they end when the instances converge).
  std::chrono::milliseconds route_wait{0};
};

class LocalRuntime {
 public:
  static Result<std::unique_ptr<LocalRuntime>> Start(Store& store, const Clock& clock,
                                                     RuntimeOptions options);
  ~LocalRuntime();
  void Stop();

 private:
  LocalRuntime() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::runtime
