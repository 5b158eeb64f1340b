#include "runtime/runtime.h"

#include <filesystem>

#include "events/events.h"
#include "runtime/controller.h"
#include "runtime/detail/shim_files.h"
#include "runtime/system_host.h"

namespace berth::runtime {

struct LocalRuntime::Impl {
  std::unique_ptr<SystemHost> host;
  std::unique_ptr<events::Recorder> recorder;
  std::unique_ptr<LocalDriver> driver;
  std::unique_ptr<Controller> controller;
  Controller* sink = nullptr;  // set once the controller exists; events before go nowhere
};

Result<std::unique_ptr<LocalRuntime>> LocalRuntime::Start(Store& store, const Clock& clock,
                                                          RuntimeOptions options) {
  std::unique_ptr<LocalRuntime> rt(new LocalRuntime());
  rt->impl_ = std::make_unique<Impl>();
  Impl* impl = rt->impl_.get();
  // Shims run with cwd "/" and are recognised by their run dir: one absolute spelling.
  std::error_code ec;
  std::string canonical = std::filesystem::weakly_canonical(
      std::filesystem::absolute(options.data_dir, ec), ec).string();
  if (!ec && !canonical.empty()) options.data_dir = canonical;
  SystemHostOptions ho;
  ho.data_dir = options.data_dir;
  ho.log_max_bytes = options.log_max_bytes;
  ho.sandbox = options.sandbox;
  impl->host = std::make_unique<SystemHost>(ho);
  impl->recorder = std::make_unique<events::Recorder>(store, clock);
  impl->driver = std::make_unique<LocalDriver>(
      *impl->host, clock,
      [impl](const ComponentRef& ref, events::Type type, const std::string& reason,
             const std::string& message) {
        if (impl->sink) impl->sink->RecordEvent(ref, type, reason, message);
      },
      options.driver);
  impl->driver->Adopt();
  ControllerOptions co;
  co.data_dir = options.data_dir;
  co.tick = options.tick;
  co.on_tick = [hook = options.on_tick, usage = options.usage, impl] {
    if (hook) hook();
    if (!usage) return;
    // On the controller thread, which alone drives the driver.
    std::map<int, std::string> groups;
    for (const ComponentRef& ref : impl->driver->Components()) {
      for (const InstanceStatus& s : impl->driver->Observe(ref)) {
        if (s.pid > 0) groups[s.pid] = detail::CgroupName(ref, s.name);
      }
    }
    usage->Update(groups, std::chrono::steady_clock::now());
  };
  co.clock = &clock;
  co.route_wait = options.route_wait;
  co.team_dir = [config = options.sandbox.config](const std::string& team) { return config.TeamDir(team); };
  impl->controller = std::make_unique<Controller>(store, *impl->driver, *impl->recorder, co);
  impl->sink = impl->controller.get();
  BERTH_RETURN_IF_ERROR(impl->controller->Start());
  return rt;
}

LocalRuntime::~LocalRuntime() { Stop(); }

void LocalRuntime::Stop() {
  if (impl_ && impl_->controller) impl_->controller->Stop();
}

}  // namespace berth::runtime
