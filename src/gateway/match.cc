#include "gateway/match.h"

#include <algorithm>

namespace berth::gateway {
namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

bool VectorHeaders::Find(std::string_view name, std::string_view* value) const {
  for (const auto& [n, v] : h_) {
    if (EqualsIgnoreCase(n, name)) {
      *value = v;
      return true;
    }
  }
  return false;
}

std::string_view NormalizeHost(std::string_view host, char (&buf)[256]) {
  host = Trim(host);
  if (!host.empty() && host.front() == '[') {
    // IPv6 literal: "[::1]:8080" → "[::1]".
    size_t end = host.find(']');
    if (end == std::string_view::npos) return {};
    host = host.substr(0, end + 1);
  } else {
    size_t colon = host.find(':');
    if (colon != std::string_view::npos) host = host.substr(0, colon);
  }
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty() || host.size() >= sizeof(buf)) return {};
  for (size_t i = 0; i < host.size(); ++i) buf[i] = Lower(host[i]);
  return std::string_view(buf, host.size());
}

std::string_view TargetPath(std::string_view target) {
  if (!target.empty() && target.front() != '/') {
    // absolute-form ("http://host/path"): skip scheme and authority.
    size_t scheme = target.find("://");
    if (scheme == std::string_view::npos) return "/";
    size_t slash = target.find('/', scheme + 3);
    if (slash == std::string_view::npos) return "/";
    target = target.substr(slash);
  }
  size_t q = target.find_first_of("?#");
  if (q != std::string_view::npos) target = target.substr(0, q);
  if (target.empty()) return "/";
  return target;
}

bool PathPrefixMatches(std::string_view prefix, std::string_view path) {
  if (prefix.empty() || prefix == "/") return true;
  if (path.size() < prefix.size() || path.compare(0, prefix.size(), prefix) != 0) return false;
  if (path.size() == prefix.size()) return true;
  return prefix.back() == '/' || path[prefix.size()] == '/';
}

bool FindCookie(std::string_view header, std::string_view name, std::string_view* value) {
  while (!header.empty()) {
    size_t semi = header.find(';');
    std::string_view pair = Trim(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    if (Trim(pair.substr(0, eq)) != name) continue;
    std::string_view v = Trim(pair.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    *value = v;
    return true;
  }
  return false;
}

RouteTable::RouteTable(const std::vector<HttpRoute>& routes) : routes_(&routes) {
  for (int i = 0; i < static_cast<int>(routes.size()); ++i) {
    for (const auto& d : routes[i].domains) {
      if (d.size() > 2 && d[0] == '*' && d[1] == '.') {
        wildcard_[d.substr(1)].push_back(i);
      } else {
        exact_[d].push_back(i);
      }
    }
  }
  auto order = [&](int a, int b) {
    const HttpRoute& x = routes[a];
    const HttpRoute& y = routes[b];
    if (x.path_prefix.size() != y.path_prefix.size()) {
      return x.path_prefix.size() > y.path_prefix.size();
    }
    size_t mx = x.headers.size() + x.cookies.size();
    size_t my = y.headers.size() + y.cookies.size();
    if (mx != my) return mx > my;
    return a < b;
  };
  for (auto* m : {&exact_, &wildcard_}) {
    for (auto& [_, tier] : *m) {
      std::sort(tier.begin(), tier.end(), order);
      tier.erase(std::unique(tier.begin(), tier.end()), tier.end());
    }
  }
}

int RouteTable::MatchTier(const std::vector<int>& tier, std::string_view path,
                          const RequestHeaders& headers) const {
  for (int i : tier) {
    const HttpRoute& r = (*routes_)[i];
    if (!PathPrefixMatches(r.path_prefix, path)) continue;
    bool ok = true;
    for (const auto& m : r.headers) {
      std::string_view v;
      if (!headers.Find(m.name, &v) || Trim(v) != m.value) {
        ok = false;
        break;
      }
    }
    if (ok && !r.cookies.empty()) {
      std::string_view cookie_header;
      if (!headers.Find("cookie", &cookie_header)) ok = false;
      for (const auto& m : r.cookies) {
        std::string_view v;
        if (!ok || !FindCookie(cookie_header, m.name, &v) || v != m.value) {
          ok = false;
          break;
        }
      }
    }
    if (ok) return i;
  }
  return -1;
}

int RouteTable::Match(std::string_view host, std::string_view target,
                      const RequestHeaders& headers) const {
  if (!routes_) return -1;
  char buf[256];
  std::string_view h = NormalizeHost(host, buf);
  if (h.empty()) return -1;
  std::string_view path = TargetPath(target);
  if (auto it = exact_.find(h); it != exact_.end()) {
    int r = MatchTier(it->second, path, headers);
    if (r >= 0) return r;
  }
  if (wildcard_.empty()) return -1;
  // Suffixes from the most specific: "a.b.example.com" → ".b.example.com", ".example.com", ".com".
  for (size_t dot = h.find('.'); dot != std::string_view::npos; dot = h.find('.', dot + 1)) {
    if (auto it = wildcard_.find(h.substr(dot)); it != wildcard_.end()) {
      int r = MatchTier(it->second, path, headers);
      if (r >= 0) return r;
    }
  }
  return -1;
}

}  // namespace berth::gateway
