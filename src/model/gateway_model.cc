// The gateway kinds of model.h: HTTP rules, TCP rules, certificates.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "core/names.h"
#include "model/model.h"

namespace berth::model {
namespace {

constexpr size_t kMaxMatches = 8;
constexpr size_t kMaxMatchValue = 256;
constexpr size_t kMaxBackends = 10;
constexpr size_t kMaxPem = 64 << 10;

std::set<std::string> ReadOnlyExcept(std::initializer_list<const char*> keep) {
  std::set<std::string> s = ReadOnlyFields();
  for (const char* k : keep) s.erase(k);
  return s;
}

template <class T>
Result<T> Done(JsonReader& r, T value) {
  r.Finish();
  if (!r.ok()) return r.status();
  return value;
}

bool IsTokenChar(char c) {  // RFC 9110 tchar
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

Status ValidateToken(const std::string& s, const std::string& what, const std::string& field) {
  if (s.empty() || s.size() > 128 || !std::all_of(s.begin(), s.end(), IsTokenChar)) {
    return InvalidArgument(what + " \"" + s.substr(0, 64) +
                               "\" is not a valid name: use letters, digits and !#$%&'*+-.^_`|~",
                           field);
  }
  return Status::Ok();
}

void ParseMatches(JsonReader& r, const char* key, bool cookie, std::vector<GatewayMatch>* out) {
  std::set<std::string> names;
  r.Arr(key, [&](JsonReader& m, size_t) {
    GatewayMatch g;
    m.Str("name", &g.name, 128);
    m.Str("value", &g.value, kMaxMatchValue);
    if (!m.ok()) return;
    m.Fail(ValidateToken(g.name, cookie ? "cookie name" : "header name", m.FieldPath("name")));
    if (!m.ok()) return;
    for (char c : g.value) {
      bool bad = static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
      if (cookie) bad = bad || c == ';' || c == ',' || c == ' ' || c == '"' || c == '\\';
      if (bad) {
        m.Fail(InvalidArgument(m.FieldPath("value") + " has a character a " +
                                   (cookie ? "cookie" : "header") + " value cannot hold",
                               m.FieldPath("value")));
        return;
      }
    }
    std::string folded = g.name;
    if (!cookie) {
      for (char& c : folded) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      g.name = folded;  // header names are case-insensitive: store them lower-cased
    }
    if (!names.insert(folded).second) {
      m.Fail(InvalidArgument(std::string(cookie ? "cookie " : "header ") + g.name +
                                 " is matched twice",
                             m.FieldPath("name")));
      return;
    }
    out->push_back(g);
  }, kMaxMatches);
}

Json MatchesJson(const std::vector<GatewayMatch>& ms) {
  Json a = Json::array();
  for (const GatewayMatch& m : ms) a.push_back({{"name", m.name}, {"value", m.value}});
  return a;
}

// Checks and normalises a path prefix: "/api/" → "/api".
Status NormalisePath(std::string* path, const std::string& field) {
  const std::string& p = *path;
  auto bad = [&](const std::string& why) {
    return InvalidArgument("path_prefix \"" + p.substr(0, 100) + "\" " + why, field);
  };
  if (p.empty() || p.front() != '/') return bad("must start with '/'");
  for (char c : p) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '?' || c == '#' ||
        static_cast<unsigned char>(c) >= 0x80) {
      return bad("may not contain spaces, control characters, '?', '#' or non-ASCII bytes");
    }
  }
  std::string out = p;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  size_t i = 1;
  while (i <= out.size()) {
    size_t j = out.find('/', i);
    if (j == std::string::npos) j = out.size();
    std::string seg = out.substr(i, j - i);
    if (out.size() > 1 && (seg.empty() || seg == "." || seg == "..")) {
      return bad("has an empty, '.' or '..' segment");
    }
    i = j + 1;
  }
  *path = out;
  return Status::Ok();
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// FNV-1a: a stable short hash for derived names (not security relevant).
std::string ShortHash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 6; ++i) out += kHex[(h >> (i * 4)) & 15];
  return out;
}

}  // namespace

Status ValidateDomain(std::string* domain, const std::string& field) {
  std::string d = Lower(*domain);
  auto bad = [&](const std::string& why) {
    return InvalidArgument("domain \"" + domain->substr(0, 100) + "\" " + why, field);
  };
  if (d.empty()) return bad("is empty");
  if (d.size() > 253) return bad("is longer than 253 characters");
  std::string host = d;
  if (d.rfind("*.", 0) == 0) host = d.substr(2);
  if (host.find('*') != std::string::npos) {
    return bad("is not a host name: a wildcard is only allowed as the whole first label, "
               "e.g. *.example.com");
  }
  size_t i = 0;
  int labels = 0;
  while (i <= host.size()) {
    size_t j = host.find('.', i);
    if (j == std::string::npos) j = host.size();
    std::string label = host.substr(i, j - i);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-' ||
        !std::all_of(label.begin(), label.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
        })) {
      return bad("is not a host name: use labels of a-z, 0-9 and '-' separated by dots "
                 "(at most 63 characters each, not starting or ending with '-')");
    }
    ++labels;
    i = j + 1;
  }
  if (d.front() == '*' && labels < 2) return bad("is too broad: a wildcard needs at least two labels after it");
  *domain = d;
  return Status::Ok();
}

Result<HttpRule> ParseHttpRule(const Json& in) {
  HttpRule h;
  JsonReader r(in, "", ReadOnlyFields());
  r.Str("name", &h.name, 255);
  if (r.ok() && !h.name.empty()) r.Fail(ValidateDnsLabel(h.name, "rule name"));
  r.Str("domain", &h.domain, 300);
  if (r.ok() && !r.Has("domain")) r.Fail(InvalidArgument("domain is required", "domain"));
  if (r.ok()) r.Fail(ValidateDomain(&h.domain, "domain"));
  r.Str("path_prefix", &h.path_prefix, 1024);
  if (r.ok()) r.Fail(NormalisePath(&h.path_prefix, "path_prefix"));
  ParseMatches(r, "headers", false, &h.headers);
  ParseMatches(r, "cookies", true, &h.cookies);
  std::set<std::string> seen;
  r.Arr("backends", [&](JsonReader& b, size_t) {
    RuleBackend be;
    b.Str("component", &be.component, 255);
    b.Int("port", &be.port, 0, 65535);
    b.Str("version", &be.version, 255);
    b.Int("weight", &be.weight, 0, 1000);
    if (b.ok()) b.Fail(ValidateDnsLabel(be.component, "component name", b.FieldPath("component")));
    if (b.ok() && !be.version.empty()) {
      b.Fail(ValidateDnsLabel(be.version, "version name", b.FieldPath("version")));
    }
    std::string key = be.component + ":" + std::to_string(be.port) + "@" + be.version;
    if (b.ok() && !seen.insert(key).second) {
      b.Fail(InvalidArgument("backend " + be.component +
                                 (be.port ? ":" + std::to_string(be.port) : std::string()) +
                                 (be.version.empty() ? "" : "@" + be.version) + " is listed twice",
                             b.path()));
    }
    h.backends.push_back(be);
  }, kMaxBackends);
  if (r.ok() && h.backends.empty()) {
    r.Fail(InvalidArgument("backends needs at least one {\"component\": ...}", "backends"));
  }
  if (r.ok() && std::none_of(h.backends.begin(), h.backends.end(),
                             [](const RuleBackend& b) { return b.weight > 0; })) {
    r.Fail(InvalidArgument("at least one backend needs a weight above 0", "backends"));
  }
  r.Enum("balance", &h.balance, {"round_robin", "least_conn", "hash_cookie", "hash_ip"});
  r.Str("hash_cookie", &h.hash_cookie, 128);
  if (r.ok()) r.Fail(ValidateToken(h.hash_cookie, "hash_cookie", "hash_cookie"));
  r.Str("certificate", &h.certificate, 255);
  if (r.ok() && !h.certificate.empty()) {
    r.Fail(ValidateDnsLabel(h.certificate, "certificate name", "certificate"));
  }
  r.Bool("redirect_https", &h.redirect_https);
  if (r.ok() && h.redirect_https && h.certificate.empty()) {
    r.Fail(InvalidArgument("redirect_https needs a certificate for the domain", "redirect_https"));
  }
  r.Obj("rate_limit", [&](JsonReader& rl) {
    Json rps;
    rl.Raw("requests_per_second", &rps);
    if (!rps.is_null()) {
      if (!rps.is_number() || !std::isfinite(rps.get<double>()) || rps.get<double>() < 0 ||
          rps.get<double>() > 1e6) {
        rl.Fail(InvalidArgument("rate_limit.requests_per_second must be a number from 0 to 1000000",
                                "rate_limit.requests_per_second"));
      } else {
        h.rate_limit_rps = rps.get<double>();
      }
    }
    rl.Int("burst", &h.rate_limit_burst, 0, 1000000);
    if (rl.ok() && h.rate_limit_burst > 0 && h.rate_limit_rps == 0) {
      rl.Fail(InvalidArgument("rate_limit.burst needs requests_per_second", "rate_limit.burst"));
    }
  });
  r.Int("max_body_bytes", &h.max_body_bytes, 0, int64_t{1} << 40);
  r.Obj("timeouts", [&](JsonReader& t) {
    t.Int("connect_ms", &h.timeouts.connect_ms, 1, 600000);
    t.Int("header_ms", &h.timeouts.header_ms, 1, 600000);
    t.Int("idle_ms", &h.timeouts.idle_ms, 1, 86400000);
    t.Int("total_ms", &h.timeouts.total_ms, 0, 86400000);
  });
  return Done(r, std::move(h));
}

Json ToJson(const HttpRule& h) {
  Json backends = Json::array();
  for (const RuleBackend& b : h.backends) {
    backends.push_back(
        {{"component", b.component}, {"port", b.port}, {"version", b.version}, {"weight", b.weight}});
  }
  return {{"name", h.name},
          {"domain", h.domain},
          {"path_prefix", h.path_prefix},
          {"headers", MatchesJson(h.headers)},
          {"cookies", MatchesJson(h.cookies)},
          {"backends", backends},
          {"balance", h.balance},
          {"hash_cookie", h.hash_cookie},
          {"certificate", h.certificate},
          {"redirect_https", h.redirect_https},
          {"rate_limit", {{"requests_per_second", h.rate_limit_rps}, {"burst", h.rate_limit_burst}}},
          {"max_body_bytes", h.max_body_bytes},
          {"timeouts",
           {{"connect_ms", h.timeouts.connect_ms},
            {"header_ms", h.timeouts.header_ms},
            {"idle_ms", h.timeouts.idle_ms},
            {"total_ms", h.timeouts.total_ms}}}};
}

std::string HttpRuleKey(const HttpRule& h) {
  std::vector<std::string> parts;
  for (const GatewayMatch& m : h.headers) parts.push_back("h:" + m.name + "=" + m.value);
  for (const GatewayMatch& m : h.cookies) parts.push_back("c:" + m.name + "=" + m.value);
  std::sort(parts.begin(), parts.end());
  std::string key = "http " + h.domain + " " + h.path_prefix;
  for (const std::string& p : parts) key += " " + p;
  return key;
}

std::string DefaultHttpRuleName(const HttpRule& h) {
  std::string raw = h.domain + (h.path_prefix == "/" ? "" : h.path_prefix);
  std::string name;
  for (char c : raw) {
    if (c == '*') {
      name += "wildcard";
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      name += c;
    } else if (!name.empty() && name.back() != '-') {
      name += '-';
    }
  }
  while (!name.empty() && name.back() == '-') name.pop_back();
  if (name.empty() || !(name.front() >= 'a' && name.front() <= 'z')) name = "r-" + name;
  bool matches = !h.headers.empty() || !h.cookies.empty();
  if (matches || name.size() > 63) {
    name = name.substr(0, 56);
    while (!name.empty() && name.back() == '-') name.pop_back();
    name += "-" + ShortHash(HttpRuleKey(h));
  }
  return name;
}

Result<TcpRule> ParseTcpRule(const Json& in) {
  TcpRule t;
  std::set<std::string> ignored = ReadOnlyExcept({"component"});
  ignored.insert("status");  // the listener's state the API adds (docs/api.md)
  JsonReader r(in, "", ignored);
  r.Str("name", &t.name, 255);
  if (r.ok() && !t.name.empty()) r.Fail(ValidateDnsLabel(t.name, "rule name"));
  r.Int("listen_port", &t.listen_port, 1, 65535);
  if (r.ok() && !r.Has("listen_port")) r.Fail(InvalidArgument("listen_port is required", "listen_port"));
  r.Str("component", &t.component, 255);
  if (r.ok()) r.Fail(ValidateDnsLabel(t.component, "component name", "component"));
  r.Int("port", &t.port, 0, 65535);
  r.Enum("balance", &t.balance, {"round_robin", "least_conn", "hash_ip"});
  r.Int("connect_timeout_ms", &t.connect_timeout_ms, 1, 600000);
  r.Int("idle_timeout_ms", &t.idle_timeout_ms, 1000, 86400000);
  return Done(r, std::move(t));
}

Json ToJson(const TcpRule& t) {
  return {{"name", t.name},           {"listen_port", t.listen_port},
          {"component", t.component}, {"port", t.port},
          {"balance", t.balance},     {"connect_timeout_ms", t.connect_timeout_ms},
          {"idle_timeout_ms", t.idle_timeout_ms}};
}

std::string TcpRuleKey(const TcpRule& t) { return "tcp " + std::to_string(t.listen_port); }

Result<CertificateInput> ParseCertificateInput(const Json& in) {
  CertificateInput c;
  JsonReader r(in, "", ReadOnlyFields());
  r.Str("name", &c.name, 255);
  if (r.ok()) r.Fail(ValidateDnsLabel(c.name, "certificate name"));
  r.Str("cert_pem", &c.cert_pem, kMaxPem);
  std::string chain;
  r.Str("chain_pem", &chain, kMaxPem);
  r.Str("key_pem", &c.key_pem, kMaxPem);
  if (r.ok() && c.cert_pem.empty()) r.Fail(InvalidArgument("cert_pem is required", "cert_pem"));
  if (r.ok() && c.key_pem.empty()) r.Fail(InvalidArgument("key_pem is required", "key_pem"));
  if (r.ok() && !chain.empty()) {
    if (c.cert_pem.back() != '\n') c.cert_pem += '\n';
    c.cert_pem += chain;
  }
  // Read-only fields of the stored form may come back from a GET; they are derived again.
  for (const char* derived : {"domains", "subject", "issuer", "not_before", "not_after",
                              "fingerprint_sha256", "expired"}) {
    Json ignored;
    r.Raw(derived, &ignored);
  }
  return Done(r, std::move(c));
}

Json ToJson(const Certificate& c) {
  return {{"name", c.name},
          {"domains", c.domains},
          {"subject", c.subject},
          {"issuer", c.issuer},
          {"not_before", c.not_before},
          {"not_after", c.not_after},
          {"fingerprint_sha256", c.fingerprint_sha256},
          {"cert_pem", c.cert_pem},
          {"key_sealed", c.key_sealed}};
}

Result<Certificate> CertificateFromJson(const Json& j) {
  Certificate c;
  JsonReader r(j, "");
  r.Str("name", &c.name);
  Json domains;
  r.Raw("domains", &domains);
  if (!domains.is_null()) {
    if (!domains.is_array()) return InvalidArgument("domains must be an array", "domains");
    for (const Json& d : domains) {
      if (!d.is_string()) return InvalidArgument("domains must be strings", "domains");
      c.domains.push_back(d.get<std::string>());
    }
  }
  r.Str("subject", &c.subject, 4096);
  r.Str("issuer", &c.issuer, 4096);
  r.Str("not_before", &c.not_before);
  r.Str("not_after", &c.not_after);
  r.Str("fingerprint_sha256", &c.fingerprint_sha256);
  r.Str("cert_pem", &c.cert_pem, kMaxPem * 2);
  r.Str("key_sealed", &c.key_sealed, kMaxPem * 2);
  return Done(r, std::move(c));
}

}  // namespace berth::model
