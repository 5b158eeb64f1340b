#include "gateway/role.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>

#include "core/clock.h"
#include "core/fd_limit.h"
#include "core/log.h"
#include "gateway/detail/control_link.h"
#include "gateway/detail/cpu_pin.h"
#include "gateway/detail/state_dir.h"

namespace berth::gateway {
namespace {

// The snapshot currently served, for telling a real change from a re-fetch that changed only
// the revision (instances are re-written often; the data plane need not swap for that).
class Current {
 public:
  // Returns whether `s` routes differently from what is served.
  bool Differs(const Snapshot& s) {
    std::lock_guard<std::mutex> l(mu_);
    return !routes_ || *routes_ != RoutesOf(s);
  }
  void Set(const Snapshot& s) {
    std::lock_guard<std::mutex> l(mu_);
    routes_ = RoutesOf(s);
  }
  // The revision of the last snapshot taken — applied, or identical in its routes to what is
  // served (what the gateway reports: every rule at or below it is applied).
  void Took(int64_t revision) { took_.store(revision); }
  int64_t took() const { return took_.load(); }

 private:
  static std::string RoutesOf(const Snapshot& s) {
    Json j = ToJson(s);
    j.erase("revision");
    return j.dump();
  }
  std::mutex mu_;
  std::optional<std::string> routes_;  // guarded by mu_
  std::atomic<int64_t> took_{-1};
};

Result<Snapshot> ParseText(const std::string& text, const std::string& where) {
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded()) return InvalidArgument(where + " is not JSON");
  auto s = ParseSnapshot(j);
  if (!s.ok()) return InvalidArgument(where + ": " + s.status().message(), s.status().field());
  return s;
}

std::string Summary(const Snapshot& s) {
  size_t endpoints = 0;
  for (const auto& [key, pool] : s.pools) endpoints += pool.endpoints.size();
  return fmt::format(
      "revision={} http_routes={} tcp_routes={} pools={} endpoints={} "
      "certificates={}",
      s.revision, s.http_routes.size(), s.tcp_routes.size(), s.pools.size(), endpoints,
      s.certificates.size());
}

// Parses, applies and (in control mode) persists one snapshot; refuses it whole on error.
Result<int64_t> Take(DataPlane& dp, Current& current, const detail::StateDir* state,
                     const std::string& text, const std::string& where, spdlog::logger& log) {
  BERTH_ASSIGN_OR_RETURN(Snapshot s, ParseText(text, where));
  if (!current.Differs(s)) {
    current.Took(s.revision);
    return s.revision;
  }
  if (Status st = dp.Apply(s); !st.ok()) {
    return Status(st.code(), st.reason(), where + ": " + st.message(), st.field());
  }
  current.Set(s);
  current.Took(s.revision);
  log.info("msg=\"serving a new snapshot\" source=\"{}\" {}", where, Summary(s));
  if (state != nullptr) {
    // What was applied is what a restart serves: only snapshots that passed Apply are kept.
    if (Status st = state->SaveSnapshot(ToJson(s).dump()); !st.ok()) {
      log.error(
          "msg=\"cannot persist the snapshot; a restart would serve an older one\" "
          "reason=\"{}\"",
          st.message());
    }
  }
  return s.revision;
}

Result<std::string> ReadFileText(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return NotFound("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "berth gateway: %s\n", message.c_str());
  std::fflush(stderr);
  return 1;
}

}  // namespace

Status ValidateRoleOptions(const RoleOptions& o) {
  int sources = !o.control.empty() + !o.control_file.empty() + !o.snapshot_file.empty();
  if (sources != 1) {
    return InvalidArgument(
        "give exactly one of --control URL, --control-file FILE or "
        "--snapshot FILE",
        "control");
  }
  if (!o.control.empty()) BERTH_RETURN_IF_ERROR(detail::ParseControlUrl(o.control).status());
  if (o.snapshot_file.empty() && o.state_dir.empty()) {
    return InvalidArgument(
        "--state DIR is required with --control: the gateway keeps its last "
        "good snapshot there",
        "state");
  }
  if (o.data_plane.io_threads < 1 || o.data_plane.io_threads > 256) {
    return InvalidArgument("--io-threads must be from 1 to 256", "io_threads");
  }
  PinMode pin;
  if (!detail::ParsePinMode(o.pin_io_threads, &pin)) {
    return InvalidArgument("--pin-io-threads must be auto, on or off, not \"" +
                               o.pin_io_threads + "\"",
                           "pin_io_threads");
  }
  if (o.data_plane.http.empty() && o.data_plane.https.empty()) {
    return InvalidArgument("--http and --https are both off: nothing to serve", "http");
  }
  return Status::Ok();
}

int RunGateway(const RoleOptions& o) {
  if (Status s = ValidateRoleOptions(o); !s.ok()) return Fail(s.message());
  SetLogLevel(o.log_level);
  auto log = Logger("gateway");
  // Signals are taken with sigwait below; block them before any thread starts so every
  // thread inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  // Every client and upstream connection is a descriptor: take what the hard limit allows.
  OpenFileLimit files = RaiseOpenFileLimit();
  log->info("msg=\"open-file limit\" soft={} hard={} raised={}", files.soft, files.hard, files.raised);
  if (files.soft > 0 &&
      static_cast<uint64_t>(o.data_plane.max_connections) * 2 + 256 > files.soft) {
    // Each proxied connection also holds an upstream one.
    log->warn("msg=\"max_connections is above what the open-file limit leaves: beyond it new "
              "connections are closed at once\" max_connections={} open_file_limit={}",
              o.data_plane.max_connections, files.soft);
  }

  std::optional<detail::StateDir> state;
  if (!o.state_dir.empty()) {
    auto opened = detail::StateDir::Open(o.state_dir);
    if (!opened.ok()) return Fail(opened.status().message());
    state.emplace(std::move(opened).value());
  }
  Options dpo = o.data_plane;
  detail::ParsePinMode(o.pin_io_threads, &dpo.pin_io_threads);  // validated above
  auto started = DataPlane::Start(dpo);
  if (!started.ok()) return Fail("cannot start: " + started.status().message());
  std::unique_ptr<DataPlane> dp = std::move(started).value();
  Current current;
  const bool control = o.snapshot_file.empty();
  const detail::StateDir* persist = control && state ? &*state : nullptr;

  if (control) {
    auto saved = state->LoadSnapshot();
    if (saved.ok()) {
      auto rev = Take(*dp, current, nullptr, *saved, state->snapshot_path(), *log);
      if (!rev.ok()) {
        log->error(
            "msg=\"the persisted snapshot does not load; waiting for the control plane\" "
            "reason=\"{}\"",
            rev.status().message());
      } else {
        log->info(
            "msg=\"serving the persisted snapshot until the control plane answers\" "
            "revision={}",
            *rev);
      }
    } else if (saved.status().code() != Code::kNotFound) {
      log->error(
          "msg=\"cannot read the persisted snapshot; waiting for the control plane\" "
          "reason=\"{}\"",
          saved.status().message());
    }
  }
  auto load_static = [&] {
    auto text = ReadFileText(o.snapshot_file);
    auto rev = text.ok() ? Take(*dp, current, nullptr, *text, o.snapshot_file, *log)
                         : Result<int64_t>(text.status());
    if (!rev.ok()) {
      log->error(
          "msg=\"refused the snapshot file; the previous snapshot keeps serving\" "
          "reason=\"{}\" serving_revision={}",
          rev.status().message(), dp->revision());
    }
  };
  if (!control) load_static();

  std::unique_ptr<detail::ControlLink> link;
  if (control) {
    detail::ControlLinkOptions lo;
    lo.control_url = o.control;
    lo.control_file = o.control_file;
    lo.token_file = o.token_file;
    DataPlane* plane = dp.get();
    // What the control plane shows on the TCP rules (which listeners could not bind, and why)
    // and the revision of the snapshot taken last, which the control plane waits for before it
    // calls an operation done ("ready" means routed, docs/gateway.md). Sent when either
    // changes; the link reports at once after each snapshot it takes.
    lo.status = [plane, &current]() {
      Json tcp = Json::array();
      for (const TcpListenerStatus& t : plane->TcpListeners()) {
        Json e = {{"route", t.route_id}, {"address", t.address}, {"listening", t.listening}};
        if (!t.listening) e["error"] = t.error;
        tcp.push_back(std::move(e));
      }
      return Json({{"revision", std::max<int64_t>(current.took(), 0)}, {"tcp", tcp}}).dump();
    };
    link = std::make_unique<detail::ControlLink>(
        lo, [plane, &current, persist, log](const std::string& text) {
          return Take(*plane, current, persist, text, "the control plane's snapshot", *log);
        });
    link->Start();
  }

  Json status = {{"pid", ::getpid()},
                 {"http", dp->http_address()},
                 {"https", dp->https_address()},
                 {"admin", dp->admin_address()},
                 {"mode", control ? "control" : "static"},
                 {"io_threads", o.data_plane.io_threads},
                 {"io_cpus", dp->io_cpus()},
                 {"started_at", FormatTime(SystemClock::Get().Now())}};
  if (state) {
    if (Status s = state->WriteStatus(status.dump() + "\n"); !s.ok()) {
      log->error("msg=\"cannot write the status file\" reason=\"{}\"", s.message());
    }
  }
  std::string cpus;
  for (int c : dp->io_cpus()) cpus += (cpus.empty() ? "" : ",") + std::to_string(c);
  log->info("msg=ready http={} https={} admin={} io_threads={} io_cpus=\"{}\" source=\"{}\"",
            dp->http_address(), dp->https_address(), dp->admin_address(),
            o.data_plane.io_threads, cpus.empty() ? "unpinned" : cpus,
            control ? (o.control.empty() ? o.control_file : o.control) : o.snapshot_file);
  std::printf("berth gateway ready: http %s, https %s, admin %s\n", dp->http_address().c_str(),
              dp->https_address().c_str(), dp->admin_address().c_str());
  std::fflush(stdout);

  int sig = 0;
  while (true) {
    sigwait(&set, &sig);
    if (sig != SIGHUP) break;
    if (control) {
      log->info("msg=\"SIGHUP ignored: in control mode the snapshot follows the control plane\"");
    } else {
      load_static();
    }
  }
  log->info("msg=stopping signal={}", sig);
  if (link) link->Stop();
  dp->Stop(o.drain_ms);
  if (state) state->RemoveStatus();
  log->info("msg=stopped");
  return 0;
}

void RegisterGatewayCommand(CLI::App& app, int* exit_code) {
  CLI::App* cmd = app.add_subcommand(
      "gateway", "Run the gateway: route HTTP/TCP traffic to the apps' instances");
  auto o = std::make_shared<RoleOptions>();
  cmd->add_option("--control", o->control, "the control plane's API URL (http://HOST:PORT)")
      ->envname("BERTH_GATEWAY_CONTROL");
  cmd->add_option("--control-file", o->control_file,
                  "read the control plane's URL from this JSON file's \"api\" field before every "
                  "connection (berth server's DATA/server.json)")
      ->envname("BERTH_GATEWAY_CONTROL_FILE");
  cmd->add_option("--token-file", o->token_file, "file holding the API token for the control plane")
      ->envname("BERTH_GATEWAY_TOKEN_FILE");
  cmd->add_option("--state", o->state_dir,
                  "state directory: the last good snapshot (encrypted), lock, pid and status files")
      ->envname("BERTH_GATEWAY_STATE");
  cmd->add_option("--snapshot", o->snapshot_file,
                  "static mode: serve this snapshot file (docs/gateway.md), reload on SIGHUP")
      ->envname("BERTH_GATEWAY_SNAPSHOT");
  cmd->add_option("--http", o->data_plane.http, "HTTP listener ADDR:PORT, or off")
      ->envname("BERTH_GATEWAY_HTTP")
      ->capture_default_str();
  cmd->add_option("--https", o->data_plane.https, "HTTPS listener ADDR:PORT, or off")
      ->envname("BERTH_GATEWAY_HTTPS")
      ->capture_default_str();
  cmd->add_option("--admin", o->data_plane.admin, "admin listener (/metrics, /healthz), or off")
      ->envname("BERTH_GATEWAY_ADMIN")
      ->capture_default_str();
  cmd->add_option("--access-log", o->data_plane.access_log, "JSON access log: a file, - for stdout")
      ->envname("BERTH_GATEWAY_ACCESS_LOG");
  cmd->add_option("--io-threads", o->data_plane.io_threads, "threads serving connections")
      ->envname("BERTH_GATEWAY_IO_THREADS")
      ->capture_default_str();
  cmd->add_option("--pin-io-threads", o->pin_io_threads,
                  "auto, on or off: pin each io thread to a CPU of its own (auto: only when "
                  "there is one io thread per CPU the process may use)")
      ->envname("BERTH_GATEWAY_PIN_IO_THREADS")
      ->capture_default_str();
  cmd->add_option("--max-connections", o->data_plane.max_connections,
                  "client connections held at once; more are closed at once (16-1000000)")
      ->envname("BERTH_GATEWAY_MAX_CONNECTIONS")
      ->check(CLI::Range(16, 1000000))
      ->capture_default_str();
  cmd->add_option("--log-level", o->log_level, "trace, debug, info, warn, error or off")
      ->envname("BERTH_GATEWAY_LOG_LEVEL")
      ->capture_default_str();
  cmd->callback([o, exit_code, cmd] {
    // A client verb under this command (`berth gateway rotate-credential`) ran instead.
    if (!cmd->get_subcommands().empty()) return;
    for (std::string* addr : {&o->data_plane.http, &o->data_plane.https, &o->data_plane.admin}) {
      if (*addr == "off") addr->clear();
    }
    *exit_code = RunGateway(*o);
  });
}

}  // namespace berth::gateway
