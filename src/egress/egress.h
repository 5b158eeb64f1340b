// The way out of a team's network (docs/security.md "Network"): a team's network namespace has
// only its loopback, so its build steps and instances reach the internet through an HTTP proxy
// the platform serves inside that namespace, at kAddress:kPort, named by the standard
// variables (HTTP_PROXY, HTTPS_PROXY, http_proxy, https_proxy; NO_PROXY for loopback). npm, pip,
// git, Go, curl, Maven and most HTTP client libraries follow them.
//
// Two requests are served, one per connection:
//   CONNECT host:port HTTP/1.1   a tunnel (TLS and anything else that runs over TCP)
//   GET http://host[:port]/path  a plain HTTP request (absolute form), sent on as origin form
//                                with "Connection: close"
// The destination is resolved here and refused (403) when any address it names is loopback,
// link-local (169.254/16, fe80::/10: cloud metadata services), unspecified, multicast, an
// address of this machine, or in `deny`: a team's code reaches neither the platform's own
// listeners nor another team's through the proxy. Every tunnel is logged with its team and
// destination.
//
// The proxy listens inside a namespace through a socket made there (core/netns.h SocketIn);
// it connects out from the process's own network. Port kPort is below 1024, which the team's
// unprivileged code can never bind, so no app can take the proxy's place.
//
// Thread-safety: Serve, Forget and Stop may be called from any thread; connections run on one
// io thread of the proxy's own.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace berth::egress {

inline constexpr char kAddress[] = "127.0.0.1";
inline constexpr int kPort = 1023;

// The variables a sandboxed build step or instance gets ("K=V").
std::vector<std::string> ProxyEnv();

struct Options {
  std::vector<std::string> deny;   // more refused destinations, CIDR ("10.0.0.0/8")
  // Destinations allowed although local (CIDR): a registry mirror on this machine, say. Checked
  // before every refusal.
  std::vector<std::string> allow;
  int64_t connect_timeout_ms = 10000;
  int64_t idle_timeout_ms = 300000;  // a tunnel with no traffic either way for this long ends
  int max_connections = 512;         // per namespace, at once
};

class Proxy {
 public:
  // Errors: an unparsable `deny` entry.
  static Result<std::unique_ptr<Proxy>> Start(Options options);
  ~Proxy();  // Stop()

  // Listens inside the network namespace bound at `netns` (once per path; `team` names it in
  // logs). Errors: the namespace cannot be opened or the port bound there.
  Status Serve(const std::string& netns, const std::string& team);
  // Stops listening in `netns` (open tunnels finish).
  void Forget(const std::string& netns);
  void Stop();

  // Whether the proxy refuses `ip` (a literal address) as a destination.
  bool Refuses(const std::string& ip) const;

 private:
  Proxy() = default;
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// The proxy's request line and headers, parsed (exposed for tests).
struct Request {
  std::string method;  // CONNECT, GET, ...
  std::string host;    // destination host (brackets removed from IPv6 literals)
  int port = 0;
  std::string origin_form;  // for a plain request: "/path?query" (empty for CONNECT)
  std::string headers;      // the header lines to send on, each ending in CRLF, proxy ones removed
};
// Parses a request head (up to and including the blank line). Errors name what is wrong.
Result<Request> ParseRequest(const std::string& head);

// Whether `ip` lies in `cidr` ("a.b.c.d/n" or an IPv6 prefix).
Result<bool> InCidr(const std::string& ip, const std::string& cidr);

}  // namespace berth::egress
