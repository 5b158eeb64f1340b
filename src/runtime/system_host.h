// The real Host of the local driver: working dirs on disk, shims started as detached
// processes of this same binary (`berth shim`), checks over loopback sockets and
// `/bin/sh -c`. The on-disk protocol is in detail/shim_files.h.
// Thread-safety: driven by one thread (the controller); probes run on their own threads and
// touch no shared state.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "runtime/local_driver.h"

namespace berth::runtime {

struct SystemHostOptions {
  std::string data_dir;
  std::string exe;  // the berth binary for shims; "" = /proc/self/exe
  int64_t log_max_bytes = 10 << 20;
  int log_keep = 2;
};

class SystemHost final : public Host {
 public:
  explicit SystemHost(SystemHostOptions options);
  ~SystemHost() override;

  Result<int> AllocatePort(const std::set<int>& taken) override;
  Result<int> Launch(const LaunchSpec& spec) override;
  ShimObservation Observe(const ComponentRef& ref, const std::string& instance) override;
  void Stop(const ComponentRef& ref, const std::string& instance) override;
  void Kill(const ComponentRef& ref, const std::string& instance) override;
  void Cleanup(const ComponentRef& ref, const std::string& instance, bool remove_workdir) override;
  std::vector<DiscoveredShim> Discover() override;
  std::string WorkDir(const ComponentRef& ref, const std::string& instance) override;
  std::future<ProbeResult> Probe(const model::Probe& probe, const ProbeTarget& target) override;
  std::string LogTail(const ComponentRef& ref, const std::string& instance, int lines) override;

  // Runs one check synchronously (also used by tests).
  static ProbeResult RunProbe(const model::Probe& probe, const ProbeTarget& target);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::runtime
