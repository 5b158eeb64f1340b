// The HTTP boundary between berth's API logic and the network. The transport (Boost.Beast,
// kept inside api/detail/http_server.cc so no other file pays its compile cost) parses
// requests, enforces size limits and timeouts, and hands plain HttpRequest values to a
// Handler; handlers never see Beast.
//
// Streaming responses (the watch feed, live logs): a handler returns a response with `stream`
// set; the transport sends the head with chunked encoding, then repeatedly calls
// StreamSource::Poll and writes what it returns. When Poll has nothing, the transport waits
// until HttpServer::WakeStreams() is called or `heartbeat` passes, then polls again.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace berth {

struct HttpRequest {
  std::string method;   // "GET", "POST", ...
  std::string target;   // raw request target, e.g. "/api/v1/teams?limit=10"
  std::string path;     // percent-decoded path without the query: "/api/v1/teams"
  std::map<std::string, std::string> query;    // decoded query parameters (last one wins)
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  // Set instead of `body` when the handler's BodyToFile accepted the request: the file the body
  // was streamed to. The transport deletes it after Handle returns; a handler that keeps the
  // body renames it away first.
  std::string body_file;
  std::string remote_addr;  // "127.0.0.1"

  // Header value or "" (name must be lower case).
  const std::string& Header(const std::string& name) const;
  // Query value or `fallback`.
  std::string Query(const std::string& name, const std::string& fallback = "") const;
};

class StreamSource {
 public:
  virtual ~StreamSource() = default;
  // Appends whatever is ready now to *out (possibly nothing). Returns false when the stream
  // has ended (after appending its last data). Called from one transport thread at a time.
  virtual bool Poll(std::string* out) = 0;
  // Data to send when nothing happened for `heartbeat` (e.g. a heartbeat line).
  virtual std::string Heartbeat() = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::shared_ptr<StreamSource> stream;  // when set, `body` is ignored
};

// Where a request's body goes instead of memory (see Handler::BodyToFile).
struct BodyFile {
  std::string dir;     // an existing directory; the transport creates a new file in it
  uint64_t limit = 0;  // bytes; a larger body gets 413 payload_too_large and the file is removed
  // When set, the transport answers this instead (e.g. 401 before a large upload is read)
  // and closes the connection without reading the body.
  std::optional<HttpResponse> reject;
};

class Handler {
 public:
  virtual ~Handler() = default;
  // Called once the header of a request is read, before its body: nullopt keeps the body in
  // memory (at most HttpServerOptions::body_limit bytes); a BodyFile streams it to a file as it
  // arrives (large uploads), so it is never held whole in memory. Must be quick and not throw.
  virtual std::optional<BodyFile> BodyToFile(const HttpRequest& head) const {
    (void)head;
    return std::nullopt;
  }
  // Produces the response. Must not throw. Called concurrently from transport threads.
  virtual HttpResponse Handle(const HttpRequest& request) = 0;
  // True when handling may block for long (password hashing): the transport then runs it on
  // a separate pool so the network threads stay responsive.
  virtual bool IsBlocking(const HttpRequest& request) const = 0;
  // True (implies blocking) when handling may wait on something outside for long — a git
  // server during detection: the transport runs it on a pool of its own
  // (HttpServerOptions::slow_threads), so slow work never holds up the blocking pool.
  virtual bool IsSlow(const HttpRequest& request) const {
    (void)request;
    return false;
  }
};

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 7070;                 // 0 = pick a free port
  int io_threads = 2;
  int blocking_threads = 2;
  int slow_threads = 8;                 // the pool of Handler::IsSlow requests
  size_t body_limit = 1 << 20;          // bytes; larger bodies get 413 payload_too_large
  size_t header_limit = 16 << 10;       // bytes
  std::chrono::seconds request_timeout{30};   // to receive a whole request
  std::chrono::seconds idle_timeout{75};      // keep-alive idle
  std::chrono::seconds heartbeat{15};         // stream heartbeat interval
  // A waiting stream is polled at least this often even when nothing woke it, so a source can
  // end by itself (e.g. when the caller's access is gone: its token expired).
  std::chrono::milliseconds stream_poll{1000};
  // Connections open at once; more are accepted, answered 503 and closed. Out of descriptors
  // (EMFILE), new connections are accepted and closed at once (core/fd_limit.h).
  int max_connections = 10000;
};

// Thread-safety: Start/Stop from one thread; WakeStreams from any thread.
class HttpServer {
 public:
  virtual ~HttpServer() = default;
  // Binds and starts serving; returns the bound port. The handler must outlive the server.
  virtual Result<uint16_t> Start() = 0;
  // Stops accepting, closes connections and joins the threads. Idempotent.
  virtual void Stop() = 0;
  // Tells every waiting stream to poll again now.
  virtual void WakeStreams() = 0;
};

std::unique_ptr<HttpServer> NewHttpServer(HttpServerOptions options, Handler* handler);

// Helpers shared by handlers and the transport.
std::string PercentDecode(const std::string& s, bool plus_is_space);
// Splits "a=1&b=x%20y" into a map (decoded).
std::map<std::string, std::string> ParseQuery(const std::string& query);
// Sets req->target and what the transport derives from it: the decoded path and query.
void SetTarget(HttpRequest* req, const std::string& target);
// Whether the decoded path and every query key and value are valid UTF-8 without control
// characters. Errors: 400 invalid_path (the message shows the offending bytes escaped).
Status CheckRequestTarget(const HttpRequest& req);

}  // namespace berth
