#include "gateway/request_rules.h"

#include "gateway/match.h"

namespace berth::gateway {
namespace {

// tchar of RFC 9110 §5.6.2.
bool IsTokenChar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

// unreserved / sub-delims / pct-encoded of RFC 3986 (the characters of a reg-name).
bool IsRegNameChar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '-': case '.': case '_': case '~': case '!': case '$': case '&': case '\'': case '(':
    case ')': case '*': case '+': case ',': case ';': case '=': case '%':
      return true;
    default:
      return false;
  }
}

bool AllDigits(std::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

void TransferCodingList::Add(std::string_view v) {
  size_t i = 0;
  while (i <= v.size()) {
    size_t comma = v.find(',', i);
    if (comma == std::string_view::npos) comma = v.size();
    std::string_view e = v.substr(i, comma - i);
    while (!e.empty() && (e.front() == ' ' || e.front() == '\t')) e.remove_prefix(1);
    while (!e.empty() && (e.back() == ' ' || e.back() == '\t')) e.remove_suffix(1);
    i = comma + 1;
    if (e.empty()) continue;  // empty list elements are allowed (RFC 9110 §5.6.1)
    for (char c : e) {
      if (!IsTokenChar(static_cast<unsigned char>(c))) malformed_ = true;
    }
    if (EqualsIgnoreCase(e, "chunked")) {
      ++chunked_;
      last_chunked_ = true;
    } else {
      last_chunked_ = false;
      if (other_.empty()) other_ = e;
    }
  }
}

TransferCodings TransferCodingList::Verdict() const {
  if (malformed_ || !last_chunked_) return TransferCodings::kNotFinal;
  if (chunked_ > 1) return TransferCodings::kChunkedTwice;
  if (!other_.empty()) return TransferCodings::kUnsupported;
  return TransferCodings::kChunked;
}

bool ValidHostValue(std::string_view h) {
  if (h.empty()) return true;
  std::string_view port;
  if (h.front() == '[') {
    size_t close = h.find(']');
    if (close == std::string_view::npos || close < 2) return false;
    for (char c : h.substr(1, close - 1)) {
      bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      if (!hex && c != ':' && c != '.') return false;
    }
    std::string_view rest = h.substr(close + 1);
    if (rest.empty()) return true;
    if (rest.front() != ':') return false;
    port = rest.substr(1);
  } else {
    size_t colon = h.find(':');
    std::string_view name = h.substr(0, colon);
    if (name.empty()) return false;
    for (char c : name) {
      if (!IsRegNameChar(static_cast<unsigned char>(c))) return false;
    }
    if (colon == std::string_view::npos) return true;
    port = h.substr(colon + 1);
  }
  return port.size() <= 5 && AllDigits(port);  // ":" alone is allowed (an empty port)
}

bool SplitAbsoluteTarget(std::string_view target, std::string_view* authority,
                         std::string_view* origin) {
  size_t scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos) return false;
  std::string_view scheme = target.substr(0, scheme_end);
  if (!EqualsIgnoreCase(scheme, "http") && !EqualsIgnoreCase(scheme, "https")) return false;
  std::string_view rest = target.substr(scheme_end + 3);
  size_t end = rest.find_first_of("/?#");
  if (end == std::string_view::npos) end = rest.size();
  *authority = rest.substr(0, end);
  *origin = rest.substr(end);
  return true;
}

}  // namespace berth::gateway
