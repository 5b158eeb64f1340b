// Strict parsing of the gateway snapshot (docs/gateway.md "Snapshot"). The snapshot comes from
// the control plane over the network, so it is treated as outside input: every field is typed,
// bounded and cross-checked (pool and certificate references, unique ids and listen ports)
// before the data plane ever sees it.
#include "gateway/snapshot.h"

#include <arpa/inet.h>

#include <cctype>
#include <set>

namespace berth::gateway {
namespace {

constexpr size_t kMaxRoutes = 10000;
constexpr size_t kMaxPools = 10000;
constexpr size_t kMaxEndpoints = 1000;
constexpr size_t kMaxDomains = 100;
constexpr size_t kMaxPem = 1 << 20;

bool IsTokenChar(unsigned char c) {
  // RFC 9110 tchar: the characters of header and cookie names.
  return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(const std::string& s) {
  if (s.empty() || s.size() > 256) return false;
  for (unsigned char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

bool IsFieldValue(const std::string& s) {
  for (unsigned char c : s) {
    if (c < 0x20 && c != '\t') return false;
    if (c == 0x7f) return false;
  }
  return true;
}

}  // namespace

bool IsValidDomain(const std::string& d, bool allow_wildcard) {
  std::string_view s = d;
  if (allow_wildcard && s.size() > 2 && s.substr(0, 2) == "*.") s.remove_prefix(2);
  if (s.empty() || s.size() > 253) return false;
  size_t label = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = s[i];
    if (c == '.') {
      if (label == 0 || s[i - 1] == '-') return false;
      label = 0;
      continue;
    }
    if (!(std::islower(c) || std::isdigit(c) || c == '-')) return false;
    if (label == 0 && c == '-') return false;
    if (++label > 63) return false;
  }
  return label > 0 && s.back() != '-';
}

bool IsIpLiteral(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

const char* BalanceName(Balance b) {
  switch (b) {
    case Balance::kRoundRobin:
      return "round_robin";
    case Balance::kLeastConn:
      return "least_conn";
    case Balance::kHashCookie:
      return "hash_cookie";
    case Balance::kHashIp:
      return "hash_ip";
  }
  return "round_robin";
}

namespace {

Balance BalanceFromName(const std::string& s) {
  if (s == "least_conn") return Balance::kLeastConn;
  if (s == "hash_cookie") return Balance::kHashCookie;
  if (s == "hash_ip") return Balance::kHashIp;
  return Balance::kRoundRobin;
}

void ReadDomains(JsonReader& r, const char* key, std::vector<std::string>* out, bool required) {
  if (required && !r.Has(key)) {
    return r.Fail(InvalidArgument(r.FieldPath(key) + " is required", r.FieldPath(key)));
  }
  // Domains are plain strings, not objects: read the raw array.
  Json raw;
  r.Raw(key, &raw);
  if (!r.ok() || raw.is_null()) return;
  if (!raw.is_array()) {
    return r.Fail(
        InvalidArgument(r.FieldPath(key) + " must be an array of domain names", r.FieldPath(key)));
  }
  if (raw.size() > kMaxDomains) {
    return r.Fail(InvalidArgument(
        r.FieldPath(key) + " has more than " + std::to_string(kMaxDomains) + " items",
        r.FieldPath(key)));
  }
  if (required && raw.empty()) {
    return r.Fail(
        InvalidArgument(r.FieldPath(key) + " must name at least one domain", r.FieldPath(key)));
  }
  for (size_t i = 0; i < raw.size(); ++i) {
    std::string field = r.FieldPath(key) + "[" + std::to_string(i) + "]";
    if (!raw[i].is_string()) return r.Fail(InvalidArgument(field + " must be a string", field));
    std::string d = raw[i].get<std::string>();
    for (auto& c : d) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!IsValidDomain(d, /*allow_wildcard=*/true)) {
      return r.Fail(InvalidArgument(
          field +
              " is not a valid domain name (letters, digits, '-', '.', optionally \"*.\" "
              "first): \"" +
              d.substr(0, 64) + "\"",
          field));
    }
    out->push_back(std::move(d));
  }
}

void ReadMatches(JsonReader& r, const char* key, std::vector<Match>* out) {
  r.Arr(
      key,
      [&](JsonReader& m, size_t) {
        Match x;
        m.Str("name", &x.name, 256);
        m.Str("value", &x.value, 4096);
        if (!m.ok()) return;
        if (!IsToken(x.name)) {
          return m.Fail(InvalidArgument(m.FieldPath("name") + " must be a header/cookie name token",
                                        m.FieldPath("name")));
        }
        if (!IsFieldValue(x.value)) {
          return m.Fail(InvalidArgument(m.FieldPath("value") + " contains control characters",
                                        m.FieldPath("value")));
        }
        out->push_back(std::move(x));
      },
      32);
}

void ReadBalance(JsonReader& r, Balance* out, bool tcp) {
  std::string b = BalanceName(*out);
  if (tcp) {
    r.Enum("balance", &b, {"round_robin", "least_conn", "hash_ip"});
  } else {
    r.Enum("balance", &b, {"round_robin", "least_conn", "hash_cookie", "hash_ip"});
  }
  if (r.ok()) *out = BalanceFromName(b);
}

void ReadId(JsonReader& r, std::string* id, std::set<std::string>* seen) {
  if (!r.Has("id"))
    return r.Fail(InvalidArgument(r.FieldPath("id") + " is required", r.FieldPath("id")));
  r.Str("id", id, 256);
  if (!r.ok()) return;
  if (id->empty() || !IsFieldValue(*id) || id->find(' ') != std::string::npos) {
    return r.Fail(InvalidArgument(r.FieldPath("id") + " must be non-empty, without spaces",
                                  r.FieldPath("id")));
  }
  if (!seen->insert(*id).second) {
    return r.Fail(InvalidArgument(r.FieldPath("id") + " duplicates route id \"" + *id + "\"",
                                  r.FieldPath("id")));
  }
}

void ReadOwner(JsonReader& r, std::string* team, std::string* app, std::string* component) {
  r.Str("team", team, 128);
  r.Str("app", app, 128);
  r.Str("component", component, 128);
}

}  // namespace

Result<Snapshot> ParseSnapshot(const Json& in) {
  Snapshot s;
  JsonReader r(in, "");
  if (!r.ok()) return r.status();
  r.Int("revision", &s.revision, 0, INT64_MAX);

  // Pools first: routes refer to them.
  {
    Json pools;
    r.Raw("pools", &pools);
    if (r.ok() && !pools.is_null()) {
      if (!pools.is_object()) {
        r.Fail(InvalidArgument("pools must be an object of pool key to pool", "pools"));
      } else if (pools.size() > kMaxPools) {
        r.Fail(InvalidArgument("pools has more than " + std::to_string(kMaxPools) + " entries",
                               "pools"));
      }
      for (auto it = pools.begin(); r.ok() && pools.is_object() && it != pools.end(); ++it) {
        const std::string& key = it.key();
        std::string field = "pools." + key;
        if (key.empty() || key.size() > 512 || !IsFieldValue(key)) {
          r.Fail(InvalidArgument("pool key must be 1-512 printable characters", field));
          break;
        }
        Pool p;
        JsonReader pr(*it, field);
        if (pr.ok()) {
          ReadOwner(pr, &p.team, &p.app, &p.component);
          pr.Str("version", &p.version, 128);
          pr.Int("port", &p.port, 0, 65535);
          pr.Str("reason", &p.reason, 1024);
          pr.Arr(
              "endpoints",
              [&](JsonReader& er, size_t) {
                Endpoint e;
                er.Str("instance", &e.instance, 256);
                er.Str("host", &e.host, 64);
                er.Str("netns", &e.netns, 1024);
                if (!er.Has("port")) {
                  return er.Fail(
                      InvalidArgument(er.FieldPath("port") + " is required", er.FieldPath("port")));
                }
                er.Int("port", &e.port, 1, 65535);
                if (!er.ok()) return;
                if (e.host == "localhost") e.host = "127.0.0.1";
                if (!IsIpLiteral(e.host)) {
                  return er.Fail(InvalidArgument(
                      er.FieldPath("host") + " must be an IP address, got \"" + e.host + "\"",
                      er.FieldPath("host")));
                }
                if (!e.netns.empty() && (e.netns[0] != '/' || !IsFieldValue(e.netns) ||
                                         e.netns.find("/../") != std::string::npos)) {
                  return er.Fail(InvalidArgument(
                      er.FieldPath("netns") + " must be an absolute path", er.FieldPath("netns")));
                }
                if (!IsFieldValue(e.instance)) {
                  return er.Fail(
                      InvalidArgument(er.FieldPath("instance") + " contains control characters",
                                      er.FieldPath("instance")));
                }
                p.endpoints.push_back(std::move(e));
              },
              kMaxEndpoints);
          if (pr.ok() && !IsFieldValue(p.reason)) {
            pr.Fail(
                InvalidArgument(field + ".reason contains control characters", field + ".reason"));
          }
          pr.Finish();
        }
        if (!pr.ok()) {
          r.Fail(pr.status());
          break;
        }
        s.pools.emplace(key, std::move(p));
      }
    }
  }

  std::set<std::string> cert_names;
  r.Arr(
      "certificates",
      [&](JsonReader& cr, size_t) {
        Certificate c;
        if (!cr.Has("name")) {
          return cr.Fail(
              InvalidArgument(cr.FieldPath("name") + " is required", cr.FieldPath("name")));
        }
        cr.Str("name", &c.name, 256);
        ReadDomains(cr, "domains", &c.domains, /*required=*/false);
        cr.Str("cert_pem", &c.cert_pem, kMaxPem);
        cr.Str("key_pem", &c.key_pem, kMaxPem);
        cr.Str("not_after", &c.not_after, 64);
        if (!cr.ok()) return;
        if (c.name.empty() || !IsFieldValue(c.name)) {
          return cr.Fail(
              InvalidArgument(cr.FieldPath("name") + " must be non-empty", cr.FieldPath("name")));
        }
        if (!cert_names.insert(c.name).second) {
          return cr.Fail(
              InvalidArgument(cr.FieldPath("name") + " duplicates certificate \"" + c.name + "\"",
                              cr.FieldPath("name")));
        }
        if (c.cert_pem.find("-----BEGIN") == std::string::npos) {
          return cr.Fail(
              InvalidArgument(cr.FieldPath("cert_pem") + " must be PEM", cr.FieldPath("cert_pem")));
        }
        if (c.key_pem.find("-----BEGIN") == std::string::npos) {
          return cr.Fail(
              InvalidArgument(cr.FieldPath("key_pem") + " must be PEM", cr.FieldPath("key_pem")));
        }
        s.certificates.push_back(std::move(c));
      },
      kMaxRoutes);

  std::set<std::string> ids;
  r.Arr(
      "http_routes",
      [&](JsonReader& hr, size_t) {
        HttpRoute h;
        ReadId(hr, &h.id, &ids);
        ReadOwner(hr, &h.team, &h.app, &h.component);
        ReadDomains(hr, "domains", &h.domains, /*required=*/true);
        hr.Str("path_prefix", &h.path_prefix, 1024);
        if (hr.ok() && (h.path_prefix.empty() || h.path_prefix[0] != '/' ||
                        h.path_prefix.find_first_of("?# ") != std::string::npos ||
                        !IsFieldValue(h.path_prefix))) {
          hr.Fail(InvalidArgument(
              hr.FieldPath("path_prefix") + " must start with '/' and hold no '?', '#' or spaces",
              hr.FieldPath("path_prefix")));
        }
        ReadMatches(hr, "headers", &h.headers);
        ReadMatches(hr, "cookies", &h.cookies);
        if (hr.ok() && !hr.Has("backends")) {
          hr.Fail(
              InvalidArgument(hr.FieldPath("backends") + " is required", hr.FieldPath("backends")));
        }
        hr.Arr(
            "backends",
            [&](JsonReader& br, size_t) {
              Backend b;
              br.Str("pool", &b.pool, 512);
              br.Int("weight", &b.weight, 0, 1000000);
              if (!br.ok()) return;
              if (!s.pools.count(b.pool)) {
                return br.Fail(InvalidArgument(br.FieldPath("pool") +
                                                   " names no pool of the snapshot: \"" +
                                                   b.pool.substr(0, 128) + "\"",
                                               br.FieldPath("pool")));
              }
              h.backends.push_back(std::move(b));
            },
            16);
        if (hr.ok() && h.backends.empty()) {
          hr.Fail(InvalidArgument(hr.FieldPath("backends") + " must name at least one pool",
                                  hr.FieldPath("backends")));
        }
        ReadBalance(hr, &h.balance, /*tcp=*/false);
        hr.Str("hash_cookie", &h.hash_cookie, 256);
        if (hr.ok() && !IsToken(h.hash_cookie)) {
          hr.Fail(InvalidArgument(hr.FieldPath("hash_cookie") + " must be a cookie name",
                                  hr.FieldPath("hash_cookie")));
        }
        hr.Str("certificate", &h.certificate, 256);
        if (hr.ok() && !h.certificate.empty() && !cert_names.count(h.certificate)) {
          hr.Fail(InvalidArgument(hr.FieldPath("certificate") +
                                      " names no certificate of the snapshot: \"" +
                                      h.certificate.substr(0, 128) + "\"",
                                  hr.FieldPath("certificate")));
        }
        hr.Bool("redirect_https", &h.redirect_https);
        hr.Obj("rate_limit", [&](JsonReader& rl) {
          Json rps;
          rl.Raw("requests_per_second", &rps);
          if (!rps.is_null()) {
            if (!rps.is_number() || rps.get<double>() < 0 || rps.get<double>() > 1e7) {
              return rl.Fail(InvalidArgument(
                  rl.FieldPath("requests_per_second") + " must be a number from 0 to 1e7",
                  rl.FieldPath("requests_per_second")));
            }
            h.rate_limit.requests_per_second = rps.get<double>();
          }
          rl.Int("burst", &h.rate_limit.burst, 0, 10000000);
        });
        hr.Int("max_body_bytes", &h.max_body_bytes, 0, INT64_MAX);
        hr.Obj("timeouts", [&](JsonReader& t) {
          t.Int("connect_ms", &h.timeouts.connect_ms, 1, 3600000);
          t.Int("header_ms", &h.timeouts.header_ms, 1, 3600000);
          t.Int("idle_ms", &h.timeouts.idle_ms, 0, 86400000);
          t.Int("total_ms", &h.timeouts.total_ms, 0, 86400000);
        });
        if (hr.ok()) s.http_routes.push_back(std::move(h));
      },
      kMaxRoutes);

  std::set<int> ports;
  r.Arr(
      "tcp_routes",
      [&](JsonReader& tr, size_t) {
        TcpRoute t;
        ReadId(tr, &t.id, &ids);
        ReadOwner(tr, &t.team, &t.app, &t.component);
        tr.Str("listen_host", &t.listen_host, 64);
        if (tr.ok() && !IsIpLiteral(t.listen_host)) {
          tr.Fail(InvalidArgument(tr.FieldPath("listen_host") + " must be an IP address",
                                  tr.FieldPath("listen_host")));
        }
        if (tr.ok() && !tr.Has("listen_port")) {
          tr.Fail(InvalidArgument(tr.FieldPath("listen_port") + " is required",
                                  tr.FieldPath("listen_port")));
        }
        tr.Int("listen_port", &t.listen_port, 1, 65535);
        if (tr.ok() && !ports.insert(t.listen_port).second) {
          tr.Fail(InvalidArgument(tr.FieldPath("listen_port") + " duplicates TCP listen port " +
                                      std::to_string(t.listen_port),
                                  tr.FieldPath("listen_port")));
        }
        if (tr.ok() && !tr.Has("pool")) {
          tr.Fail(InvalidArgument(tr.FieldPath("pool") + " is required", tr.FieldPath("pool")));
        }
        tr.Str("pool", &t.pool, 512);
        if (tr.ok() && !s.pools.count(t.pool)) {
          tr.Fail(InvalidArgument(tr.FieldPath("pool") + " names no pool of the snapshot: \"" +
                                      t.pool.substr(0, 128) + "\"",
                                  tr.FieldPath("pool")));
        }
        ReadBalance(tr, &t.balance, /*tcp=*/true);
        tr.Int("connect_timeout_ms", &t.connect_timeout_ms, 1, 3600000);
        tr.Int("idle_timeout_ms", &t.idle_timeout_ms, 1, 86400000);
        if (tr.ok()) s.tcp_routes.push_back(std::move(t));
      },
      kMaxRoutes);
  r.Finish();
  if (!r.ok()) return r.status();
  return s;
}

namespace {

Json MatchesJson(const std::vector<Match>& ms) {
  Json a = Json::array();
  for (const auto& m : ms) a.push_back({{"name", m.name}, {"value", m.value}});
  return a;
}

}  // namespace

Json ToJson(const Snapshot& s) {
  Json j;
  j["revision"] = s.revision;
  j["http_routes"] = Json::array();
  for (const auto& h : s.http_routes) {
    Json backends = Json::array();
    for (const auto& b : h.backends) backends.push_back({{"pool", b.pool}, {"weight", b.weight}});
    j["http_routes"].push_back({
        {"id", h.id},
        {"team", h.team},
        {"app", h.app},
        {"component", h.component},
        {"domains", h.domains},
        {"path_prefix", h.path_prefix},
        {"headers", MatchesJson(h.headers)},
        {"cookies", MatchesJson(h.cookies)},
        {"backends", backends},
        {"balance", BalanceName(h.balance)},
        {"hash_cookie", h.hash_cookie},
        {"certificate", h.certificate},
        {"redirect_https", h.redirect_https},
        {"rate_limit",
         {{"requests_per_second", h.rate_limit.requests_per_second},
          {"burst", h.rate_limit.burst}}},
        {"max_body_bytes", h.max_body_bytes},
        {"timeouts",
         {{"connect_ms", h.timeouts.connect_ms},
          {"header_ms", h.timeouts.header_ms},
          {"idle_ms", h.timeouts.idle_ms},
          {"total_ms", h.timeouts.total_ms}}},
    });
  }
  j["tcp_routes"] = Json::array();
  for (const auto& t : s.tcp_routes) {
    j["tcp_routes"].push_back({{"id", t.id},
                               {"team", t.team},
                               {"app", t.app},
                               {"component", t.component},
                               {"listen_host", t.listen_host},
                               {"listen_port", t.listen_port},
                               {"pool", t.pool},
                               {"balance", BalanceName(t.balance)},
                               {"connect_timeout_ms", t.connect_timeout_ms},
                               {"idle_timeout_ms", t.idle_timeout_ms}});
  }
  j["pools"] = Json::object();
  for (const auto& [key, p] : s.pools) {
    Json eps = Json::array();
    for (const auto& e : p.endpoints) {
      Json ep = {{"instance", e.instance}, {"host", e.host}, {"port", e.port}};
      if (!e.netns.empty()) ep["netns"] = e.netns;
      eps.push_back(std::move(ep));
    }
    j["pools"][key] = {{"team", p.team},       {"app", p.app},   {"component", p.component},
                       {"version", p.version}, {"port", p.port}, {"endpoints", eps},
                       {"reason", p.reason}};
  }
  j["certificates"] = Json::array();
  for (const auto& c : s.certificates) {
    j["certificates"].push_back({{"name", c.name},
                                 {"domains", c.domains},
                                 {"cert_pem", c.cert_pem},
                                 {"key_pem", c.key_pem},
                                 {"not_after", c.not_after}});
  }
  return j;
}

}  // namespace berth::gateway
