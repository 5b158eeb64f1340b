// A small synchronous HTTP/1.1 client for the berth CLI: one request per connection, plain
// http only. Boost.Beast stays inside http_client.cc so nothing that includes this header pays
// its compile cost.
//
// Transport failures (unreachable server, timeouts, malformed responses) come back as a non-OK
// Status with reason "unavailable" and a message a person can act on; HTTP error statuses are
// NOT failures here: the caller gets the Response and decides (it carries the API error JSON).
// Thread-safety: free functions without shared state; each call uses its own io_context.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace berth::cli {

// A parsed server base URL: "http://HOST[:PORT][/PREFIX]".
struct ServerUrl {
  std::string host;         // "127.0.0.1", "berth.example", "::1" (no brackets)
  uint16_t port = 80;
  std::string base_path;    // "" or "/prefix" (never a trailing '/')

  // Normalised form: "http://127.0.0.1:7070" (port always written, no trailing slash).
  std::string ToString() const;
};

// Accepts "http://host", "http://host:port", "http://[::1]:7070", with or without a trailing
// '/', optionally with a path prefix. Rejects other schemes (https is not supported by the CLI
// yet), missing hosts, bad ports, queries and fragments, with an invalid_argument Status
// (field "server").
Result<ServerUrl> ParseServerUrl(std::string_view url);

struct Response {
  int status = 0;
  std::string content_type;
  std::string retry_after;  // the Retry-After header, if any
  std::string body;
};

struct HttpClientOptions {
  std::chrono::seconds connect_timeout{30};
  // Longest wait for the server while sending or receiving; for streams, the longest idle
  // gap between chunks (the server sends heartbeats every 15 s).
  std::chrono::seconds read_timeout{30};
  size_t body_limit = 64u << 20;
};

// Sends `method` (e.g. "GET") to url_base + path_and_query ("/api/v1/teams?limit=10").
// `body`, when not empty, goes as application/json; `token`, when not empty, as a Bearer
// token.
Result<Response> Request(std::string_view method, std::string_view url_base,
                         std::string_view path_and_query, std::string_view body,
                         std::string_view token, const HttpClientOptions& options = {});

// Like Request, but the body is the file at `file_path` (application/octet-stream), streamed
// from disk rather than read into memory. A server that answers before reading the whole body
// (413) still has its answer returned.
Result<Response> UploadFile(std::string_view method, std::string_view url_base,
                            std::string_view path_and_query, const std::string& file_path,
                            std::string_view token, const HttpClientOptions& options = {});

// Called per received line (without the '\n'); return false to stop reading.
using LineCallback = std::function<bool(std::string_view line)>;

// Like Request, but for streamed (chunked, newline-delimited) responses such as the watch
// feed. On a 2xx status the body is delivered line by line to `on_line` as it arrives and the
// returned Response has an empty body; it returns when the server ends the stream or
// `on_line` returns false. On any other status the body is read whole into the Response and
// `on_line` is never called.
Result<Response> RequestStream(std::string_view method, std::string_view url_base,
                               std::string_view path_and_query, std::string_view body,
                               std::string_view token, const LineCallback& on_line,
                               const HttpClientOptions& options = {});

}  // namespace berth::cli
