#include "routing/routing.h"

#include "routing/domains.h"

#include <map>
#include <set>

#include "core/log.h"

namespace berth::routing {
namespace {

Json Body(const Object& o) {
  Json j = Json::parse(o.body, nullptr, false);
  return j.is_object() ? j : Json::object();
}

gateway::Balance ToBalance(const std::string& s) {
  if (s == "least_conn") return gateway::Balance::kLeastConn;
  if (s == "hash_cookie") return gateway::Balance::kHashCookie;
  if (s == "hash_ip") return gateway::Balance::kHashIp;
  return gateway::Balance::kRoundRobin;
}

std::string DomainBase(const std::string& team, const std::string& app,
                       const std::string& component, const std::string& suffix) {
  return component + "." + app + (team == "default" ? "" : "." + team) + "." + suffix;
}

// What one component looks like to the pool builder, read once per snapshot.
struct ComponentView {
  bool exists = false;
  model::Component spec;
  std::vector<Json> instances;
  bool versions_read = false;
  std::vector<Json> versions;
};

class Builder {
 public:
  Builder(Store& store, const Options& options) : store_(store), opt_(options) {}

  Result<gateway::Snapshot> Build() {
    snap_.revision = store_.Head();
    BERTH_ASSIGN_OR_RETURN(std::vector<Object> teams, ListAll(store_, model::kTeam, ""));
    // User rules first: their exact domains take precedence over a default domain that
    // happens to be equal (possible only after --domain-suffix changed).
    struct AppRef {
      std::string team, app;
    };
    std::vector<AppRef> apps;
    for (const Object& t : teams) {
      BERTH_ASSIGN_OR_RETURN(std::vector<Object> as, ListAll(store_, model::kApp, t.name));
      for (const Object& a : as) apps.push_back({t.name, a.name});
    }
    for (const AppRef& a : apps) BERTH_RETURN_IF_ERROR(AddUserRules(a.team, a.app));
    for (const AppRef& a : apps) BERTH_RETURN_IF_ERROR(AddDefaultRoutes(a.team, a.app));
    return std::move(snap_);
  }

 private:
  Result<ComponentView*> View(const std::string& team, const std::string& app,
                              const std::string& component) {
    std::string scope = team + "/" + app + "/" + component;
    auto it = views_.find(scope);
    if (it != views_.end()) return &it->second;
    ComponentView& v = views_[scope];
    auto obj = store_.Get(model::kComponent, team + "/" + app, component);
    if (!obj.ok()) {
      if (obj.status().code() != Code::kNotFound) return obj.status();
      return &v;
    }
    auto spec = model::ParseComponent(Body(*obj));
    if (!spec.ok()) return Internal("stored component " + scope + " does not parse: " + spec.status().message());
    v.exists = true;
    v.spec = *spec;
    BERTH_ASSIGN_OR_RETURN(std::vector<Object> insts, ListAll(store_, model::kInstance, scope));
    for (const Object& i : insts) v.instances.push_back(Body(i));
    return &v;
  }

  Status EnsureVersions(const std::string& scope, ComponentView* v) {
    if (v->versions_read) return Status::Ok();
    BERTH_ASSIGN_OR_RETURN(std::vector<Object> vs, ListAll(store_, model::kVersion, scope));
    for (const Object& o : vs) v->versions.push_back(Body(o));
    v->versions_read = true;
    return Status::Ok();
  }

  // Adds the pool (once) and returns its key.
  Result<std::string> Pool(const std::string& team, const std::string& app,
                           const std::string& component, int port, const std::string& version) {
    std::string key = PoolKey(team, app, component, port, version);
    if (snap_.pools.count(key)) return key;
    gateway::Pool p;
    p.team = team;
    p.app = app;
    p.component = component;
    p.version = version;
    p.port = port;
    BERTH_ASSIGN_OR_RETURN(ComponentView* v, View(team, app, component));
    std::string scope = team + "/" + app + "/" + component;
    std::map<std::string, int> waiting;  // state → instances not ready
    if (v->exists) {
      int first_port = v->spec.ports.empty() ? 0 : v->spec.ports.front().port;
      for (const Json& i : v->instances) {
        // Only the main (web) process serves: workers, one-off runs and releases listen nowhere.
        if (!i.value("process", "").empty()) continue;
        if (!version.empty() && i.value("version", "") != version) continue;
        bool ready = i.value("ready", false) && i.value("state", "") != "stopping";
        int real = 0;
        const Json ports = i.value("ports", Json::object());
        auto it = ports.is_object() ? ports.find(std::to_string(port)) : ports.end();
        if (ports.is_object() && it != ports.end() && it->is_number_integer()) {
          real = it->get<int>();
        } else if (port == first_port) {
          real = i.value("port", 0);
        }
        if (ready && real > 0) {
          p.endpoints.push_back({i.value("name", ""), "127.0.0.1", real, i.value("netns", "")});
        } else {
          ++waiting[i.value("state", "unknown")];
        }
      }
    }
    if (p.endpoints.empty()) {
      BERTH_ASSIGN_OR_RETURN(p.reason, EmptyReason(scope, v, version, port, waiting));
    }
    snap_.pools.emplace(key, std::move(p));
    return key;
  }

  Result<std::string> EmptyReason(const std::string& scope, ComponentView* v,
                                  const std::string& version, int port,
                                  const std::map<std::string, int>& waiting) {
    if (!v->exists) return std::string("component not found");
    const model::Component& c = v->spec;
    bool declared = false;
    for (const model::Port& p : c.ports) declared |= p.port == port;
    if (!declared) return "port " + std::to_string(port) + " is not declared by the component";
    if (c.desired_state == "stopped") return std::string("component stopped");
    if (c.replicas == 0) return std::string("component scaled to 0");
    BERTH_RETURN_IF_ERROR(EnsureVersions(scope, v));
    bool any_ready = false, version_found = false;
    std::string building;
    for (const Json& ver : v->versions) {
      std::string status = ver.value("status", "");
      any_ready |= status == "ready";
      if (status == "queued" || status == "building") building = ver.value("name", "");
      if (!version.empty() && ver.value("name", "") == version) version_found = true;
    }
    if (!version.empty() && !version_found) return "version " + version + " not found";
    if (!any_ready && waiting.empty()) {
      return std::string("no version built yet") + (building.empty() ? "" : " (" + building + " building)");
    }
    if (waiting.empty()) {
      return version.empty() ? std::string("no instance running")
                             : "no instance of " + version + " running";
    }
    std::string detail;
    for (const auto& [state, n] : waiting) {
      detail += (detail.empty() ? "" : ", ") + std::to_string(n) + " " + state;
    }
    return (version.empty() ? std::string("no ready instance") : "no ready instance of " + version) +
           " (" + detail + ")";
  }

  // The team's certificate as the snapshot carries it ("team/name"), added once; "" when it
  // is missing or its key does not open (the route then has no certificate).
  Result<std::string> Cert(const std::string& team, const std::string& name) {
    std::string full = team + "/" + name;
    if (certs_.count(full)) return certs_[full];
    certs_[full] = "";
    auto obj = store_.Get(model::kCertificate, team, name);
    if (!obj.ok()) {
      if (obj.status().code() != Code::kNotFound) return obj.status();
      return std::string();
    }
    auto c = model::CertificateFromJson(Body(*obj));
    if (!c.ok()) return Internal("stored certificate " + full + " does not parse");
    if (opt_.secrets == nullptr) {
      Logger("routing")->warn("msg=\"no secret key: certificate left out\" certificate={}", full);
      return std::string();
    }
    auto key = opt_.secrets->Open(c->key_sealed);
    if (!key.ok()) {
      Logger("routing")->error(
          "msg=\"certificate key does not open (was DATA/secret.key replaced?): left out\" "
          "certificate={}",
          full);
      return std::string();
    }
    gateway::Certificate out;
    out.name = full;
    // A certificate is served (by SNI) only for names its team may route: a name another
    // team holds (routing/domains.h) is left out, so a team cannot present its certificate
    // for another team's domain.
    for (const std::string& d : c->domains) {
      BERTH_ASSIGN_OR_RETURN(DomainOwner other, OtherHolder(store_, d, team));
      if (other.team.empty()) out.domains.push_back(d);
    }
    out.cert_pem = c->cert_pem;
    out.key_pem = *key;
    out.not_after = c->not_after;
    snap_.certificates.push_back(std::move(out));
    certs_[full] = full;
    return full;
  }

  Status AddUserRules(const std::string& team, const std::string& app) {
    std::string scope = team + "/" + app;
    BERTH_ASSIGN_OR_RETURN(std::vector<Object> rules, ListAll(store_, model::kHttpRule, scope));
    for (const Object& o : rules) {
      auto rule = model::ParseHttpRule(Body(o));
      if (!rule.ok()) return Internal("stored rule " + scope + "/" + o.name + " does not parse");
      gateway::HttpRoute r;
      r.id = scope + "/" + o.name;
      r.team = team;
      r.app = app;
      r.component = rule->backends.front().component;
      r.domains = {rule->domain};
      r.path_prefix = rule->path_prefix;
      for (const model::GatewayMatch& m : rule->headers) r.headers.push_back({m.name, m.value});
      for (const model::GatewayMatch& m : rule->cookies) r.cookies.push_back({m.name, m.value});
      for (const model::RuleBackend& b : rule->backends) {
        int port = b.port;
        if (port == 0) {  // the API resolves ports at write time; only hand-made data lacks one
          BERTH_ASSIGN_OR_RETURN(ComponentView* v, View(team, app, b.component));
          port = v->exists ? FirstHttpPort(v->spec.ports) : 0;
          if (port == 0) continue;  // no pool can be named; the data plane rejects port 0
        }
        BERTH_ASSIGN_OR_RETURN(std::string key, Pool(team, app, b.component, port, b.version));
        r.backends.push_back({key, b.weight});
      }
      if (r.backends.empty()) {
        Logger("routing")->warn("msg=\"rule has no usable backend: left out\" rule={}", r.id);
        continue;
      }
      r.balance = ToBalance(rule->balance);
      r.hash_cookie = rule->hash_cookie;
      if (!rule->certificate.empty()) {
        BERTH_ASSIGN_OR_RETURN(r.certificate, Cert(team, rule->certificate));
      }
      r.redirect_https = rule->redirect_https && !r.certificate.empty();
      r.rate_limit.requests_per_second = rule->rate_limit_rps;
      r.rate_limit.burst = rule->rate_limit_burst;
      r.max_body_bytes = rule->max_body_bytes;
      r.timeouts = {rule->timeouts.connect_ms, rule->timeouts.header_ms, rule->timeouts.idle_ms,
                    rule->timeouts.total_ms};
      if (rule->path_prefix == "/" && rule->headers.empty() && rule->cookies.empty()) {
        user_domains_.insert(rule->domain);
      }
      snap_.http_routes.push_back(std::move(r));
    }
    BERTH_ASSIGN_OR_RETURN(std::vector<Object> tcps, ListAll(store_, model::kTcpRule, scope));
    for (const Object& o : tcps) {
      auto rule = model::ParseTcpRule(Body(o));
      if (!rule.ok()) return Internal("stored rule " + scope + "/" + o.name + " does not parse");
      gateway::TcpRoute r;
      r.id = scope + "/" + rule->component + "/" + o.name;
      r.team = team;
      r.app = app;
      r.component = rule->component;
      r.listen_host = opt_.listen_host;
      r.listen_port = rule->listen_port;
      BERTH_ASSIGN_OR_RETURN(r.pool, Pool(team, app, rule->component, rule->port, ""));
      r.balance = ToBalance(rule->balance);
      r.connect_timeout_ms = rule->connect_timeout_ms;
      r.idle_timeout_ms = rule->idle_timeout_ms;
      snap_.tcp_routes.push_back(std::move(r));
    }
    return Status::Ok();
  }

  Status AddDefaultRoutes(const std::string& team, const std::string& app) {
    std::string scope = team + "/" + app;
    BERTH_ASSIGN_OR_RETURN(std::vector<Object> comps, ListAll(store_, model::kComponent, scope));
    for (const Object& o : comps) {
      auto c = model::ParseComponent(Body(o));
      if (!c.ok()) return Internal("stored component " + scope + "/" + o.name + " does not parse");
      for (const DefaultRoute& d : DefaultRoutes(team, app, c->name, c->ports, opt_.domain_suffix)) {
        gateway::HttpRoute r;
        r.id = scope + "/" + c->name + "/default-" + std::to_string(d.port);
        r.team = team;
        r.app = app;
        r.component = c->name;
        for (const std::string& domain : d.domains) {
          if (domain.size() <= 253 && !user_domains_.count(domain)) r.domains.push_back(domain);
        }
        if (r.domains.empty()) continue;
        BERTH_ASSIGN_OR_RETURN(std::string key, Pool(team, app, c->name, d.port, ""));
        r.backends.push_back({key, 100});
        snap_.http_routes.push_back(std::move(r));
      }
    }
    return Status::Ok();
  }

  Store& store_;
  const Options& opt_;
  gateway::Snapshot snap_;
  std::map<std::string, ComponentView> views_;   // by component scope
  std::map<std::string, std::string> certs_;     // "team/name" → name in the snapshot or ""
  std::set<std::string> user_domains_;
};

Json MatchesJson(const std::vector<gateway::Match>& ms) {
  Json a = Json::array();
  for (const gateway::Match& m : ms) a.push_back({{"name", m.name}, {"value", m.value}});
  return a;
}

}  // namespace

const char* BalanceText(gateway::Balance b) {
  switch (b) {
    case gateway::Balance::kRoundRobin: return "round_robin";
    case gateway::Balance::kLeastConn: return "least_conn";
    case gateway::Balance::kHashCookie: return "hash_cookie";
    case gateway::Balance::kHashIp: return "hash_ip";
  }
  return "round_robin";
}

int FirstHttpPort(const std::vector<model::Port>& ports) {
  for (const model::Port& p : ports) {
    if (p.protocol == "http" && p.outer) return p.port;
  }
  for (const model::Port& p : ports) {
    if (p.protocol == "http") return p.port;
  }
  return 0;
}

std::string PoolKey(const std::string& team, const std::string& app, const std::string& component,
                    int port, const std::string& version) {
  return team + "/" + app + "/" + component + ":" + std::to_string(port) +
         (version.empty() ? "" : "@" + version);
}

std::vector<DefaultRoute> DefaultRoutes(const std::string& team, const std::string& app,
                                        const std::string& component,
                                        const std::vector<model::Port>& ports,
                                        const std::string& suffix) {
  std::vector<DefaultRoute> out;
  std::string base = DomainBase(team, app, component, suffix);
  for (const model::Port& p : ports) {
    if (!p.outer || p.protocol != "http") continue;
    DefaultRoute d;
    d.port = p.port;
    if (out.empty()) d.domains.push_back(base);
    d.domains.push_back(std::to_string(p.port) + "." + base);
    out.push_back(std::move(d));
  }
  return out;
}

Result<gateway::Snapshot> BuildSnapshot(Store& store, const Options& options) {
  return Builder(store, options).Build();
}

Json SnapshotToJson(const gateway::Snapshot& s) {
  Json http = Json::array();
  for (const gateway::HttpRoute& r : s.http_routes) {
    Json backends = Json::array();
    for (const gateway::Backend& b : r.backends) backends.push_back({{"pool", b.pool}, {"weight", b.weight}});
    http.push_back({{"id", r.id},
                    {"team", r.team},
                    {"app", r.app},
                    {"component", r.component},
                    {"domains", r.domains},
                    {"path_prefix", r.path_prefix},
                    {"headers", MatchesJson(r.headers)},
                    {"cookies", MatchesJson(r.cookies)},
                    {"backends", backends},
                    {"balance", BalanceText(r.balance)},
                    {"hash_cookie", r.hash_cookie},
                    {"certificate", r.certificate},
                    {"redirect_https", r.redirect_https},
                    {"rate_limit",
                     {{"requests_per_second", r.rate_limit.requests_per_second},
                      {"burst", r.rate_limit.burst}}},
                    {"max_body_bytes", r.max_body_bytes},
                    {"timeouts",
                     {{"connect_ms", r.timeouts.connect_ms},
                      {"header_ms", r.timeouts.header_ms},
                      {"idle_ms", r.timeouts.idle_ms},
                      {"total_ms", r.timeouts.total_ms}}}});
  }
  Json tcp = Json::array();
  for (const gateway::TcpRoute& r : s.tcp_routes) {
    tcp.push_back({{"id", r.id},
                   {"team", r.team},
                   {"app", r.app},
                   {"component", r.component},
                   {"listen_host", r.listen_host},
                   {"listen_port", r.listen_port},
                   {"pool", r.pool},
                   {"balance", BalanceText(r.balance)},
                   {"connect_timeout_ms", r.connect_timeout_ms},
                   {"idle_timeout_ms", r.idle_timeout_ms}});
  }
  Json pools = Json::object();
  for (const auto& [key, p] : s.pools) {
    Json eps = Json::array();
    for (const gateway::Endpoint& e : p.endpoints) {
      Json ep = {{"instance", e.instance}, {"host", e.host}, {"port", e.port}};
      if (!e.netns.empty()) ep["netns"] = e.netns;
      eps.push_back(std::move(ep));
    }
    pools[key] = {{"team", p.team},   {"app", p.app},       {"component", p.component},
                  {"version", p.version}, {"port", p.port}, {"endpoints", eps},
                  {"reason", p.reason}};
  }
  Json certs = Json::array();
  for (const gateway::Certificate& c : s.certificates) {
    certs.push_back({{"name", c.name},
                     {"domains", c.domains},
                     {"cert_pem", c.cert_pem},
                     {"key_pem", c.key_pem},
                     {"not_after", c.not_after}});
  }
  return {{"revision", s.revision},
          {"http_routes", http},
          {"tcp_routes", tcp},
          {"pools", pools},
          {"certificates", certs}};
}

Result<AddressBook> AddressBook::Load(Store& store, const std::string& team,
                                      const std::string& app, const Options& options) {
  AddressBook book;
  book.team_ = team;
  book.app_ = app;
  book.options_ = options;
  book.options_.secrets = nullptr;  // addresses never need keys
  BERTH_ASSIGN_OR_RETURN(std::vector<Object> rules, ListAll(store, model::kHttpRule, team + "/" + app));
  for (const Object& o : rules) {
    auto rule = model::ParseHttpRule(Body(o));
    if (rule.ok() && rule->domain.rfind("*.", 0) != 0) book.rules_.push_back(std::move(*rule));
  }
  return book;
}

std::vector<std::string> AddressBook::Addresses(const std::string& component,
                                                const std::vector<model::Port>& ports) const {
  std::vector<std::string> out;
  auto with_port = [](int port, int default_port) {
    return port == 0 || port == default_port ? std::string() : ":" + std::to_string(port);
  };
  std::string http_port = with_port(options_.http_port, 80);
  for (const DefaultRoute& d : DefaultRoutes(team_, app_, component, ports, options_.domain_suffix)) {
    for (const std::string& domain : d.domains) out.push_back("http://" + domain + http_port);
  }
  for (const model::HttpRule& rule : rules_) {
    bool mine = false;
    for (const model::RuleBackend& b : rule.backends) mine |= b.component == component && b.weight > 0;
    if (!mine) continue;
    std::string path = rule.path_prefix == "/" ? "" : rule.path_prefix;
    if (!rule.certificate.empty()) {
      out.push_back("https://" + rule.domain + with_port(options_.https_port, 443) + path);
    } else {
      out.push_back("http://" + rule.domain + http_port + path);
    }
  }
  return out;
}

Result<std::vector<std::string>> ComponentAddresses(Store& store, const std::string& team,
                                                    const std::string& app,
                                                    const std::string& component,
                                                    const std::vector<model::Port>& ports,
                                                    const Options& options) {
  BERTH_ASSIGN_OR_RETURN(AddressBook book, AddressBook::Load(store, team, app, options));
  return book.Addresses(component, ports);
}

bool AffectsSnapshot(const std::string& kind) {
  for (const char* k : {model::kComponent, model::kInstance, model::kVersion, model::kApp,
                        model::kTeam, model::kHttpRule, model::kTcpRule, model::kCertificate}) {
    if (kind == k) return true;
  }
  return false;
}

}  // namespace berth::routing
