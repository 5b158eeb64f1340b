// Route matching (docs/gateway.md "Matching"): which HTTP route of a snapshot serves a request,
// from its Host, path and headers/cookies. Public so the fuzzer and the unit tests reach it.
//
// Thread-safety: a RouteTable is immutable after construction and shared between io threads.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/snapshot.h"

namespace berth::gateway {

// The request headers matching may consult. Names are compared case-insensitively.
class RequestHeaders {
 public:
  virtual ~RequestHeaders() = default;
  // The value of the first header called `name`; false when absent.
  virtual bool Find(std::string_view name, std::string_view* value) const = 0;
};

// Headers held as (name, value) pairs: tests, fuzzing, and callers without a parser.
class VectorHeaders final : public RequestHeaders {
 public:
  VectorHeaders() = default;
  explicit VectorHeaders(std::vector<std::pair<std::string, std::string>> h) : h_(std::move(h)) {}
  bool Find(std::string_view name, std::string_view* value) const override;

 private:
  std::vector<std::pair<std::string, std::string>> h_;
};

// Host header → lookup key: the port removed, lower-cased, a trailing dot dropped. Writes into
// `buf` (no allocation); returns "" for a host that cannot match any domain.
std::string_view NormalizeHost(std::string_view host, char (&buf)[256]);
// The path of a request-target: the query removed; absolute-form reduced to its path.
std::string_view TargetPath(std::string_view target);
// True when `prefix` matches `path` on a segment boundary ("/api" matches "/api", "/api/x",
// not "/apix"; "/" matches everything).
bool PathPrefixMatches(std::string_view prefix, std::string_view path);
// The value of cookie `name` in a Cookie header ("a=1; b=2"); false when absent.
bool FindCookie(std::string_view cookie_header, std::string_view name, std::string_view* value);
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

class RouteTable {
 public:
  RouteTable() = default;
  // Indexes `routes` (kept by the caller: the table holds pointers into it).
  explicit RouteTable(const std::vector<HttpRoute>& routes);

  // The index of the route serving the request, or -1 (→ 404). Exact domains first, then
  // wildcards from the most specific suffix; the first of those tiers with a route whose path
  // prefix and header/cookie matches hold wins, and within a tier the longest prefix, then the
  // most header+cookie matches, then the earliest route.
  int Match(std::string_view host, std::string_view target, const RequestHeaders& headers) const;

 private:
  int MatchTier(const std::vector<int>& tier, std::string_view path,
                const RequestHeaders& headers) const;

  const std::vector<HttpRoute>* routes_ = nullptr;
  std::map<std::string, std::vector<int>, std::less<>> exact_;
  std::map<std::string, std::vector<int>, std::less<>> wildcard_;  // key ".example.com"
};

}  // namespace berth::gateway
