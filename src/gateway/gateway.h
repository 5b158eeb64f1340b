// The gateway data plane (DESIGN.md §2, docs/gateway.md): HTTP/1.1 + WebSocket and TLS
// listeners, TCP routes, load balancing over the ready endpoints of a Snapshot, access log
// and Prometheus metrics. It knows nothing about the store or the control plane: whoever runs
// it (the `berth gateway` role) feeds it snapshots through Apply.
//
// Thread-safety: every method may be called from any thread. Apply swaps the snapshot
// atomically; requests already routed finish on the snapshot they started with.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "gateway/snapshot.h"

namespace berth::gateway {

// How the io threads are placed on CPUs (detail/cpu_pin.h PinPlan).
enum class PinMode { kAuto, kOn, kOff };

struct Options {
  std::string http = "127.0.0.1:8080";   // "" = no HTTP listener; port 0 = any free port
  std::string https = "127.0.0.1:8443";  // "" = no HTTPS listener
  std::string admin = "127.0.0.1:9090";  // /metrics, /healthz; "" = none
  int io_threads = 2;
  // Pinning io thread i to a CPU of its own (detail/cpu_pin.h): by default only when there is
  // one io thread per CPU the process may use.
  PinMode pin_io_threads = PinMode::kAuto;
  std::string access_log;  // file path; "" = none, "-" = stdout
  size_t max_header_bytes = 16 * 1024;
  int64_t default_max_body_bytes = 0;  // 0 = unlimited (streamed)
  int max_connections = 10000;  // client connections beyond this are closed at once
  // Before a route is known, the client's own timeouts: receiving a request header (and the TLS
  // handshake) from its first byte — slow-client protection — and the wait for the next
  // request on a keep-alive connection.
  int client_header_timeout_ms = 30000;
  int client_idle_timeout_ms = 60000;
};

// The listener of one TCP route (DataPlane::TcpListeners).
struct TcpListenerStatus {
  std::string route_id;  // TcpRoute::id
  std::string address;   // "127.0.0.1:5432"
  bool listening = false;
  std::string error;     // why it does not listen ("" while it does)
};

class DataPlane {
 public:
  virtual ~DataPlane() = default;
  // Binds the listeners (an error names the address) and starts serving an empty snapshot:
  // every host answers 404 until the first Apply.
  static Result<std::unique_ptr<DataPlane>> Start(const Options& options);

  // Validates references the parser could not (certificates that do not load) and swaps the
  // snapshot in. On error the previous snapshot stays. A TCP route whose port cannot be bound
  // (taken by another process) does not fail the Apply — one bad rule must not freeze every
  // other one: the rest is served, the route's listener is reported by TcpListeners() with the
  // bind error and retried every second until it binds or the route goes.
  virtual Status Apply(const Snapshot& snapshot) = 0;
  // Every TCP route of the current snapshot and whether its port listens, in port order.
  virtual std::vector<TcpListenerStatus> TcpListeners() const = 0;
  virtual int64_t revision() const = 0;

  // Bound addresses ("127.0.0.1:41234"), useful when Options asked for port 0.
  virtual std::string http_address() const = 0;
  virtual std::string https_address() const = 0;
  virtual std::string admin_address() const = 0;
  // The CPUs the io threads were pinned to, in thread order; empty when they were not.
  virtual std::vector<int> io_cpus() const = 0;

  // Stops accepting, closes idle keep-alive connections (within a second), lets in-flight
  // exchanges finish for up to `drain_ms`, then closes everything and joins the io threads:
  // never call it from a handler running on an io thread.
  virtual void Stop(int drain_ms) = 0;
};

// For the tests and the fuzzer (fuzz/gateway_request_fuzz.cc): parses `raw` — a request as a
// client sends it, header first — as the data plane does and applies its request rules
// (docs/gateway.md "Request framing"). Returns 0 with the request header the gateway would send
// upstream (before its X-Forwarded-* and X-Request-Id fields) in `upstream_head`, the status
// the gateway answers itself (400, 431, 501), or -1 when `raw` holds no complete header.
int ProxiedRequestForTest(std::string_view raw, std::string* upstream_head);

}  // namespace berth::gateway
