// The gateway's routing snapshot (docs/gateway.md "Snapshot"): everything the data plane needs
// to route traffic, as one immutable value. The control plane builds it from the store
// (routing/), ships it as JSON over GET /api/v1/gateway/snapshot, and the data plane parses,
// validates and swaps it in whole. The data plane never reads the store.
//
// Thread-safety: plain values; a DataPlane shares a parsed Snapshot read-only between threads.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/json_util.h"

namespace berth::gateway {

// One ready instance behind a pool.
struct Endpoint {
  std::string instance;  // "web-2"
  std::string host = "127.0.0.1";
  int port = 0;
  // The network namespace the instance listens in (a file, core/netns.h: its team's network);
  // "" = this host's own network. The gateway makes its upstream sockets inside it.
  std::string netns;
};

// The ready instances of one component port (optionally one version of it). An empty pool
// answers 503 with `reason` in the X-Berth-Reason header.
struct Pool {
  std::string team, app, component, version;  // version "" = every version
  int port = 0;                                // the component's declared port
  std::vector<Endpoint> endpoints;
  std::string reason;  // why it is empty: "no ready instance (1 starting)", "component stopped"
};

struct Backend {
  std::string pool;  // a key of Snapshot::pools
  int weight = 100;  // relative; 0 = receives nothing
};

struct Match {
  std::string name;
  std::string value;  // exact match
};

struct RateLimit {
  double requests_per_second = 0;  // 0 = unlimited; per route, per client address
  int burst = 0;                   // 0 = requests_per_second rounded up
};

struct Timeouts {
  int connect_ms = 5000;   // upstream connect
  int header_ms = 30000;   // client request header / upstream response header
  int idle_ms = 60000;     // no byte in either direction
  int total_ms = 0;        // whole exchange; 0 = none (streams, WebSockets)
};

enum class Balance { kRoundRobin, kLeastConn, kHashCookie, kHashIp };

struct HttpRoute {
  std::string id;  // stable; names the route in logs and metrics
  std::string team, app, component;  // the owner, for logs/metrics ("" for none)
  std::vector<std::string> domains;  // "shop.example.com", "*.example.com"
  std::string path_prefix = "/";
  std::vector<Match> headers;  // all must match
  std::vector<Match> cookies;  // all must match
  std::vector<Backend> backends;
  Balance balance = Balance::kRoundRobin;
  std::string hash_cookie = "berth_affinity";  // kHashCookie: the sticky cookie's name
  std::string certificate;   // a Certificate name: served on HTTPS for these domains
  bool redirect_https = false;
  RateLimit rate_limit;
  int64_t max_body_bytes = 0;  // 0 = the gateway's default
  Timeouts timeouts;
};

struct TcpRoute {
  std::string id;
  std::string team, app, component;
  std::string listen_host = "127.0.0.1";
  int listen_port = 0;
  std::string pool;
  Balance balance = Balance::kRoundRobin;  // kHashIp for stickiness; cookies do not apply
  int connect_timeout_ms = 5000;
  // No byte in either direction for this long closes both sides.
  int idle_timeout_ms = 3600000;
};

struct Certificate {
  std::string name;                  // unique in the snapshot ("team/name")
  std::vector<std::string> domains;  // from the certificate (SAN/CN); used for SNI
  std::string cert_pem;              // leaf first, then the chain
  std::string key_pem;
  std::string not_after;             // RFC 3339
};

struct Snapshot {
  int64_t revision = 0;  // the store revision it was built from
  std::vector<HttpRoute> http_routes;
  std::vector<TcpRoute> tcp_routes;
  std::map<std::string, Pool> pools;
  std::vector<Certificate> certificates;
};

const char* BalanceName(Balance b);
// A lower-case DNS name ("shop.example.com"); with allow_wildcard also "*.example.com".
bool IsValidDomain(const std::string& domain, bool allow_wildcard);
// "127.0.0.1", "::1".
bool IsIpLiteral(const std::string& s);
// Strict: unknown fields, dangling pool/certificate references, bad ports or domains, and
// duplicate ids or TCP listen ports are errors naming the field.
Result<Snapshot> ParseSnapshot(const Json& in);
Json ToJson(const Snapshot& s);

}  // namespace berth::gateway
