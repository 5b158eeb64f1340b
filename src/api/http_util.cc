// Plain-C++ helpers of the HTTP boundary (no Beast here: this file is included in every build
// of the API and must stay cheap to compile).
#include "api/http.h"

#include <string_view>

#include "core/log.h"
#include "core/names.h"

namespace berth {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

const std::string& HttpRequest::Header(const std::string& name) const {
  static const std::string kEmpty;
  auto it = headers.find(name);
  return it == headers.end() ? kEmpty : it->second;
}

std::string HttpRequest::Query(const std::string& name, const std::string& fallback) const {
  auto it = query.find(name);
  return it == query.end() ? fallback : it->second;
}

// Malformed escapes ("%", "%zz") are kept literally rather than rejected: the decoded value
// is only ever compared or validated by the handlers, which report a precise error.
std::string PercentDecode(const std::string& s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      int hi = HexValue(s[i + 1]);
      int lo = HexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

std::map<std::string, std::string> ParseQuery(const std::string& query) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string::npos) amp = query.size();
    std::string_view part(query.data() + pos, amp - pos);
    if (!part.empty()) {
      size_t eq = part.find('=');
      std::string key = PercentDecode(std::string(part.substr(0, eq)), true);
      std::string value =
          eq == std::string_view::npos ? "" : PercentDecode(std::string(part.substr(eq + 1)), true);
      if (!key.empty()) out[std::move(key)] = std::move(value);  // last one wins
    }
    pos = amp + 1;
  }
  return out;
}

void SetTarget(HttpRequest* req, const std::string& target) {
  req->target = target;
  size_t q = target.find('?');
  req->path = PercentDecode(target.substr(0, q), false);
  req->query.clear();
  if (q != std::string::npos) req->query = ParseQuery(target.substr(q + 1));
}

Status CheckRequestTarget(const HttpRequest& req) {
  auto bad = [](const std::string& what, const std::string& value) {
    std::string shown = EscapeForLog(value.substr(0, 200));
    return Status(Code::kInvalidArgument, "invalid_path",
                  "the request's " + what + " \"" + shown +
                      "\" is not valid UTF-8 text (percent-escapes must decode to UTF-8 without "
                      "control characters)");
  };
  if (!IsPrintableUtf8(req.path)) return bad("path", req.path);
  for (const auto& [k, v] : req.query) {
    if (!IsPrintableUtf8(k)) return bad("query parameter name", k);
    if (!IsPrintableUtf8(v)) return bad("query parameter " + EscapeForLog(k), v);
  }
  return Status::Ok();
}

}  // namespace berth
