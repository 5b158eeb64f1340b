// The gateway's rules for a request's framing and Host (docs/gateway.md "Request framing"),
// after RFC 9112 §3.2 and §6 and what nginx and haproxy do. A request the gateway and the app
// could read differently (where its body ends, which host it is for) is refused before it is
// routed, so no byte of one client's request can be taken by the app as another request.
//
// Pure functions over the header values: the data plane feeds them its parsed fields. Public
// so the unit tests and the fuzzers reach them. Thread-safety: none needed.
#pragma once

#include <string_view>

namespace berth::gateway {

enum class TransferCodings {
  kChunked,         // "chunked" once and last: the body is chunked
  kNotFinal,        // chunked missing or not the final coding → 400 (RFC 9112 §6.3)
  kChunkedTwice,    // chunked applied more than once → 400
  kUnsupported,     // another coding before chunked (gzip, ...) → 501 (RFC 9112 §6.1)
};

// Accumulates the codings of every Transfer-Encoding field line of a message (a list split
// over several lines is one list, RFC 9110 §5.3).
class TransferCodingList {
 public:
  void Add(std::string_view field_value);
  TransferCodings Verdict() const;
  // The first coding other than chunked, for a 501's message ("" when none).
  std::string_view unsupported() const { return other_; }

 private:
  int chunked_ = 0;
  bool last_chunked_ = false;
  bool malformed_ = false;  // an element that is not a token (parameters included)
  std::string_view other_;
};

// A Host field value the gateway accepts: empty, or a reg-name / IPv4 / [IPv6] with an
// optional :port of digits (RFC 9110 §7.2, RFC 3986 §3.2.2). No userinfo, path, whitespace,
// control or non-ASCII bytes.
bool ValidHostValue(std::string_view host);

// An absolute-form request-target (RFC 9112 §3.2.2): "http://authority/path?query" (also
// https, any case). On success `authority` is its host[:port] and `origin` its path and query
// ("" when the target had no path: the caller sends "/"). False for every other form.
bool SplitAbsoluteTarget(std::string_view target, std::string_view* authority,
                         std::string_view* origin);

}  // namespace berth::gateway
