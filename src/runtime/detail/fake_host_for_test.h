// Private to the runtime module's tests: a machine for LocalDriver where nothing forks — shims
// are records the test makes exit, stop and disappear.
// Thread-safety: none; one test thread.
#pragma once

#include <algorithm>
#include <future>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "runtime/local_driver.h"

namespace berth::runtime::detail {

struct FakeShim {
  LaunchSpec spec;
  ShimObservation obs;
  bool stop_requested = false;
};

class FakeHost final : public Host {
 public:
  Result<int> AllocatePort(const std::set<int>& taken) override {
    while (taken.count(next_port_)) ++next_port_;
    return next_port_++;
  }
  Result<int> Launch(const LaunchSpec& spec) override {
    if (fail_launch) return Internal("no such artifact");
    FakeShim s;
    s.spec = spec;
    s.obs.state = ShimObservation::State::kRunning;
    s.obs.shim_pid = next_pid_++;
    s.obs.app_pid = next_pid_++;
    shims[spec.instance] = s;
    launches.push_back(spec);
    return s.obs.shim_pid;
  }
  ShimObservation Observe(const ComponentRef&, const std::string& instance) override {
    auto it = shims.find(instance);
    if (it == shims.end()) return {};
    return it->second.obs;
  }
  void Stop(const ComponentRef&, const std::string& instance) override {
    stops.push_back(instance);
    auto it = shims.find(instance);
    if (it != shims.end()) it->second.stop_requested = true;
  }
  void Kill(const ComponentRef&, const std::string& instance) override {
    kills.push_back(instance);
    if (shims.count(instance)) Exit(instance, -1, 9);
  }
  void Cleanup(const ComponentRef&, const std::string& instance, bool) override {
    shims.erase(instance);
    cleanups.push_back(instance);
  }
  std::vector<DiscoveredShim> Discover() override { return discovered; }
  std::string WorkDir(const ComponentRef&, const std::string& instance) override {
    return "/tmp/" + instance;
  }
  std::future<ProbeResult> Probe(const model::Probe& probe, const ProbeTarget& target) override {
    std::promise<ProbeResult> p;
    bool ok = probe_ok.count(target.port) ? probe_ok[target.port] : default_probe_ok;
    p.set_value({ok, ok ? "HTTP 200" : "HTTP 500: broken"});
    probes += 1;
    return p.get_future();
  }
  std::string LogTail(const ComponentRef&, const std::string&, int) override { return log_tail; }

  // Test controls.
  void Exit(const std::string& instance, int code, int signal = 0) {
    auto& o = shims.at(instance).obs;
    o.state = ShimObservation::State::kExited;
    o.exit.code = code;
    o.exit.signal = signal;
  }
  // Every shim asked to stop exits now.
  void FinishStops() {
    for (auto& [n, s] : shims) {
      if (s.stop_requested && s.obs.state == ShimObservation::State::kRunning) {
        s.obs.state = ShimObservation::State::kExited;
        s.obs.exit.signal = 15;
      }
    }
  }
  int Running() const {
    return static_cast<int>(std::count_if(shims.begin(), shims.end(), [](const auto& kv) {
      return kv.second.obs.state == ShimObservation::State::kRunning;
    }));
  }

  std::map<std::string, FakeShim> shims;
  std::vector<LaunchSpec> launches;
  std::vector<std::string> stops;
  std::vector<std::string> cleanups;
  std::vector<std::string> kills;
  std::vector<DiscoveredShim> discovered;
  std::map<int, bool> probe_ok;
  bool default_probe_ok = true;
  bool fail_launch = false;
  std::string log_tail = "fatal: cannot connect to database";
  int probes = 0;

 private:
  int next_port_ = 20000;
  int next_pid_ = 100;
};

}  // namespace berth::runtime::detail
