// The real Host of the local driver: working dirs on disk, shims started as detached
// processes of this same binary (`berth shim`), checks over loopback sockets and
// `/bin/sh -c`. The on-disk protocol is in detail/shim_files.h.
// Thread-safety: driven by one thread (the controller); probes run on their own threads and
// touch no shared state.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/local_driver.h"
#include "sandbox/sandbox.h"

namespace berth::runtime::detail {
struct ShimSpec;
}

namespace berth::runtime {

// How instances are sandboxed (sandbox/sandbox.h, docs/security.md). Disabled: they run as
// the server's user in a copy of their artifact, as before the sandbox existed.
struct InstanceSandbox {
  sandbox::Config config;    // config.enabled false: no sandbox
  int64_t memory_mb = 1024;  // the limit of instances that set none
  int64_t pids = 1024;       // tasks per instance
  int64_t tmp_mb = 64;       // the private /tmp
  int64_t app_mb = 512;      // the writable layer of /app (a tmpfs: memory)
};

struct SystemHostOptions {
  std::string data_dir;
  std::string exe;  // the berth binary for shims; "" = /proc/self/exe
  int64_t log_max_bytes = 10 << 20;
  int log_keep = 2;
  InstanceSandbox sandbox;
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

  // The team network an instance's sockets live in ("" = the host's).
  std::string NetnsOf(const ComponentRef& ref) const override;

  // Runs one check synchronously (also used by tests). `netns`: the instance's network.
  static ProbeResult RunProbe(const model::Probe& probe, const ProbeTarget& target,
                              const std::string& netns = "");

 private:
  // The working dir without a sandbox: a hard-link copy of the artifact, config files, links
  // to the volumes.
  Status PrepareWorkDir(const LaunchSpec& spec, const std::string& workdir);
  // The sandbox of one instance: its identity, network, overlay, config files and volumes.
  Status PrepareSandbox(const LaunchSpec& spec, detail::ShimSpec* s);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::runtime
