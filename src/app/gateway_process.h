// The all-in-one server's gateway (docs/gateway.md "Role", docs/server.md "Gateway"):
// `berth server` runs `berth gateway` as a separate, detached process so that apps stay
// reachable while the control plane restarts or after it was killed. The gateway keeps its
// state in DATA/gateway/, reads the server's URL from DATA/server.json (the API port may
// change across restarts) and authenticates with a token of the platform service user
// `berth-gateway`, kept 0600 in DATA/gateway/token.
//
// On start the server adopts the gateway already running for its data directory (found by
// DATA/gateway/gateway.pid and checked through /proc/PID/cmdline), or starts one; a gateway
// started with other settings is stopped and replaced. While the server runs it checks the
// gateway (it learns of its exit at once through a pidfd, else within check_interval) and starts
// it again when it died (RestartBackoff).
// When the server stops, the gateway keeps running: the next server adopts it.
//
// Thread-safety: Start/Stop from the owning thread; pid() from any thread.
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/model.h"
#include "store/store.h"

namespace berth {

using model::kGatewayUser;

// Makes sure the service account `berth-gateway` (`service: true`, no password, not a platform
// administrator: as a service account it may only read the routing snapshot and watch and
// report the gateway's status) exists and DATA/gateway/token holds a valid, non-expiring token
// of it; creates what is missing (with audit entries), marks a `berth-gateway` made before
// service accounts existed as one and takes away the administrator rights older versions gave
// it. Fails if a user of that name exists but is not berth's (it has a password, or is
// disabled).
Status EnsureGatewayCredential(Store& store, const std::string& data_dir, spdlog::logger& log);

// Issues a new token for `berth-gateway`, writes it to DATA/gateway/token (0600, atomically)
// and revokes every other token of the account in the same commit (`berth gateway
// rotate-credential`). The running gateway reads the file before each connection, so it
// switches at its next request; the watch it holds open ends when its old token is revoked.
// Returns the new token's id.
Result<std::string> RotateGatewayCredential(Store& store, const std::string& data_dir,
                                            const std::string& actor);

// The gateway's admin address when its setting is "auto" (the default): the address recorded
// in DATA/gateway/admin-address while it is still this data directory's to use (its gateway
// listens there, or the port is free), else a free loopback port, recorded there for the next
// start — so the address stays the same across restarts and the running gateway is adopted.
Result<std::string> ResolveAutoGatewayAdmin(const std::string& data_dir, spdlog::logger& log);

// One listener of the gateway and the setting that chose it, for messages.
struct GatewayListener {
  std::string kind;     // "http", "https", "admin" (as `berth gateway` names them)
  std::string address;  // "127.0.0.1:8080"; port 0 or "" = nothing to check
  std::string flag;     // "--http", "--gateway-admin", ...
};

// Fails, with one message naming the flag, when another process already listens on one of
// the addresses (the gateway could not start and would be restarted forever). Addresses this
// data directory's running gateway holds with the same setting are fine: it is adopted.
Status CheckGatewayListeners(const std::string& data_dir,
                             const std::vector<GatewayListener>& listeners);

struct GatewayProcessOptions {
  std::string data_dir;
  std::string exe;                 // the berth binary; "" = /proc/self/exe
  std::string http, https, admin;  // the gateway's listeners
  std::string log_level = "info";
  int64_t io_threads = 2;                // --io-threads
  std::string pin_io_threads = "auto";   // --pin-io-threads
  int64_t max_connections = 10000;       // --max-connections
  std::chrono::milliseconds check_interval{1000};
};

// When to start a gateway that died: at once when it had run for at least a second (it served;
// a crash then is no start-up failure, however many came before), else after 250 ms, 500 ms,
// 1 s, ... up to 30 s while it keeps dying within its first second (a port taken, a bad
// setting): a crash loop is slowed, a gateway that crashes now and then is back at once.
// Thread-safety: one thread.
class RestartBackoff {
 public:
  static constexpr std::chrono::milliseconds kQuickExit{1000};
  static constexpr std::chrono::milliseconds kFirstDelay{250};
  static constexpr std::chrono::milliseconds kMaxDelay{30000};
  // The gateway exited after running `uptime`; returns how long to wait before starting it.
  std::chrono::milliseconds OnExit(std::chrono::milliseconds uptime);

 private:
  int quick_exits_ = 0;  // in a row
};

// The command line the server runs the gateway with (argv[0] first).
std::vector<std::string> GatewayCommand(const GatewayProcessOptions& options);

class GatewayProcess {
 public:
  explicit GatewayProcess(GatewayProcessOptions options);
  ~GatewayProcess();  // Stop(); the gateway keeps running
  GatewayProcess(const GatewayProcess&) = delete;
  GatewayProcess& operator=(const GatewayProcess&) = delete;

  // Adopts or starts the gateway and starts watching it. Returns its pid. A gateway it starts
  // that exits before it listens (an address taken meanwhile, say) is an error carrying the
  // gateway's own reason and the server flag to change — not a restart loop.
  Result<int> Start();
  // Stops watching. The gateway process is left running.
  void Stop();
  // The gateway's pid (0 when none runs).
  int pid() const;
  // Whether Start adopted a running gateway rather than starting one.
  bool adopted() const;
  // DATA/gateway/gateway.json of the current gateway once it listens ({"http", "https",
  // "admin", ...}); waits up to `timeout`. Unavailable when it did not report in time.
  Result<std::string> WaitListening(std::chrono::milliseconds timeout) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth
