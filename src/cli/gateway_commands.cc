// The gateway's CLI verbs (docs/cli.md "Gateway"), each one or two REST calls
// (docs/api.md "Gateway"):
//   berth domain add DOMAIN --app A --component C [--port P] [--path /x] [--header K=V]...
//                [--cookie K=V]... [--canary TARGET=PERCENT]... [--cert NAME] [--https-redirect]
//                [--rate-limit RPS[:BURST]] [--balance B] [--max-body BYTES] [--name N]
//   berth domain list [--app A] | show NAME --app A | remove NAME|DOMAIN --app A [--path /x]
//   berth domain owners | assign DOMAIN TEAM | release DOMAIN   (platform administrators)
//   berth tcp add LISTEN_PORT --app A --component C [--port P] [--balance B] [--name N]
//                [--idle-timeout DURATION] [--connect-timeout DURATION]
//   berth tcp list [--app A] | remove NAME|LISTEN_PORT --app A
//   berth cert add|update NAME --cert FILE --key FILE [--chain FILE]
//   berth cert list | show NAME | remove NAME
#include <fstream>
#include <sstream>
#include <tuple>

#include "cli/client_config.h"
#include "cli/detail/commands.h"
#include "cli/detail/flags.h"
#include "cli/detail/api_errors.h"
#include "cli/detail/http_client.h"
#include "cli/detail/verb.h"
#include "cli/output.h"

namespace berth::cli {
namespace {

Status Usage(std::string m) { return Status(Code::kInvalidArgument, "usage", std::move(m)); }

using detail::Call;
using detail::Leaf;
using detail::Shared;

CLI::App* Noun(CLI::App& app, const std::string& name, const std::string& description) {
  CLI::App* cmd = app.add_subcommand(name, description);
  cmd->require_subcommand(1);
  return cmd;
}

// "K=V" → {"name":K,"value":V}.
Result<Json> ParseMatch(const std::string& text, const std::string& flag) {
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) return Usage(flag + " takes NAME=VALUE, got \"" + text + "\"");
  return Json{{"name", text.substr(0, eq)}, {"value", text.substr(eq + 1)}};
}

bool AllDigits(const std::string& s) {
  return !s.empty() && s.size() <= 9 && s.find_first_not_of("0123456789") == std::string::npos;
}

// --canary TARGET=PERCENT, TARGET = COMPONENT[:PORT][@VERSION] or @VERSION (the rule's
// component): {"component","port","version","weight"}.
Result<Json> ParseCanary(const std::string& text, const std::string& primary) {
  auto bad = [&](const std::string& why) {
    return Usage("--canary \"" + text + "\": " + why +
                 " (use COMPONENT[:PORT][@VERSION]=PERCENT or @VERSION=PERCENT, e.g. web-next=10 "
                 "or @v7=10)");
  };
  size_t eq = text.rfind('=');
  if (eq == std::string::npos) return bad("no =PERCENT");
  std::string target = text.substr(0, eq), pct = text.substr(eq + 1);
  if (!AllDigits(pct) || std::stoi(pct) < 1 || std::stoi(pct) > 99) return bad("PERCENT must be 1 to 99");
  std::string version;
  size_t at = target.find('@');
  if (at != std::string::npos) {
    version = target.substr(at + 1);
    target = target.substr(0, at);
    if (version.empty()) return bad("empty VERSION");
  }
  int port = 0;
  size_t colon = target.find(':');
  if (colon != std::string::npos) {
    std::string p = target.substr(colon + 1);
    if (!AllDigits(p) || std::stoi(p) < 1 || std::stoi(p) > 65535) return bad("PORT must be 1 to 65535");
    port = std::stoi(p);
    target = target.substr(0, colon);
  }
  if (target.empty()) {
    if (version.empty()) return bad("name a component or a version");
    target = primary;
  }
  return Json{{"component", target}, {"port", port}, {"version", version}, {"weight", std::stoi(pct)}};
}

std::string BackendText(const Json& b) {
  std::string s = Str(b, "component");
  if (b.value("port", 0) != 0) s += ":" + std::to_string(b.value("port", 0));
  if (!Str(b, "version").empty()) s += "@" + Str(b, "version");
  return s;
}

std::string BackendsText(const Json& rule) {
  const Json backends = rule.value("backends", Json::array());
  int total = 0;
  for (const auto& b : backends) total += b.value("weight", 0);
  std::string out;
  for (const auto& b : backends) {
    out += (out.empty() ? "" : ",") + BackendText(b);
    if (backends.size() > 1 && total > 0) {
      out += "=" + std::to_string(b.value("weight", 0) * 100 / total) + "%";
    }
  }
  return out;
}

std::string RuleUrl(const Json& r) {
  std::string path = Str(r, "path_prefix");
  return (Str(r, "certificate").empty() ? "http://" : "https://") + Str(r, "domain") +
         (path == "/" ? "" : path);
}

Result<std::string> ReadFile(const std::string& path, const std::string& flag) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Usage(flag + ": cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// ---- domain --------------------------------------------------------------------------------

// Said under "No domains found.": the addresses components have without a rule (their default
// domains), and which components have none because they declare no port — with the command
// that gives them one.
void DomainHints(Call& c, const std::string& only_app) {
  std::vector<std::string> apps;
  if (!only_app.empty()) {
    apps.push_back(only_app);
  } else {
    auto l = c.All(c.Team() + "/apps");
    if (!l.ok()) return;
    for (const auto& a : l->value("items", Json::array())) apps.push_back(Str(a, "name"));
    if (apps.size() > 20) apps.resize(20);  // a hint, not a report
  }
  for (const std::string& app : apps) {
    auto l = c.All(c.App(app) + "/components");
    if (!l.ok()) continue;
    for (const auto& comp : l->value("items", Json::array())) {
      const std::string name = Str(comp, "name"), kind = Str(comp, "kind");
      if (kind == "job" || kind == "cronjob") continue;
      std::string first;
      for (const auto& a : comp.value("addresses", Json::array())) {
        first = a.is_string() ? a.get<std::string>() : Str(a, "url");
        if (!first.empty()) break;
      }
      if (!first.empty()) {
        c.err() << name << " (app " << app << ") answers at its default domain " << first << "\n";
      } else if (comp.value("ports", Json::array()).empty()) {
        c.err() << name << " (app " << app << ") has no port, so no address: a build of a web "
                << "process gives it one, or declare it: berth component set " << name
                << " --app " << app << " --port 8080\n";
      }
    }
  }
}

void AddDomainCommands(CLI::App& app, const std::shared_ptr<Shared>& sh) {
  CLI::App* noun = Noun(app, "domain", "Route domains (HTTP rules) to components");
  struct Opts {
    std::string domain, app, component, version, path, cert, balance, rate_limit, name;
    int port = 0, weight = 0;
    int64_t max_body = -1;
    std::vector<std::string> headers, cookies, canaries;
    bool https_redirect = false;
  };
  auto o = std::make_shared<Opts>();

  CLI::App* add = Leaf(*noun, sh, "add", "Route DOMAIN[/PATH] to a component (canary with --canary)",
                       [o](Call& c) -> Status {
    Json backends = Json::array();
    int canary_total = 0;
    Json canaries = Json::array();
    for (const std::string& text : o->canaries) {
      BERTH_ASSIGN_OR_RETURN(Json b, ParseCanary(text, o->component));
      canary_total += b["weight"].get<int>();
      canaries.push_back(b);
    }
    int primary = o->weight > 0 ? o->weight : 100 - canary_total;
    if (primary <= 0) return Usage("the --canary percentages add up to 100 or more: nothing is left for " + o->component);
    backends.push_back({{"component", o->component}, {"port", o->port}, {"version", o->version}, {"weight", primary}});
    for (auto& b : canaries) backends.push_back(b);
    Json body = {{"domain", o->domain}, {"backends", backends}};
    if (!o->name.empty()) body["name"] = o->name;
    if (!o->path.empty()) body["path_prefix"] = o->path;
    for (auto [list, key, flag] : {std::tuple{&o->headers, "headers", "--header"},
                                   std::tuple{&o->cookies, "cookies", "--cookie"}}) {
      Json ms = Json::array();
      for (const std::string& text : *list) {
        BERTH_ASSIGN_OR_RETURN(Json m, ParseMatch(text, flag));
        ms.push_back(m);
      }
      if (!ms.empty()) body[key] = ms;
    }
    if (!o->cert.empty()) body["certificate"] = o->cert;
    if (o->https_redirect) body["redirect_https"] = true;
    if (!o->balance.empty()) body["balance"] = o->balance;
    if (o->max_body >= 0) body["max_body_bytes"] = o->max_body;
    if (!o->rate_limit.empty()) {
      std::string rps = o->rate_limit, burst;
      size_t colon = rps.find(':');
      if (colon != std::string::npos) {
        burst = rps.substr(colon + 1);
        rps = rps.substr(0, colon);
      }
      char* end = nullptr;
      double v = std::strtod(rps.c_str(), &end);
      if (rps.empty() || *end != '\0' || !(v > 0) || (!burst.empty() && !AllDigits(burst))) {
        return Usage("--rate-limit takes RPS or RPS:BURST, e.g. 50 or 50:100");
      }
      body["rate_limit"] = {{"requests_per_second", v}};
      if (!burst.empty()) body["rate_limit"]["burst"] = std::stoi(burst);
    }
    BERTH_ASSIGN_OR_RETURN(Json r, c.Do("POST", c.App(o->app) + "/http-rules", &body));
    c.Done(r, "routing " + RuleUrl(r) + " to " + BackendsText(r) + " (rule " + Str(r, "name") + ")");
    return Status::Ok();
  });
  add->add_option("domain", o->domain, "Domain, e.g. shop.example.com or *.example.com")->required();
  add->add_option("--app", o->app, "App of the component")->required();
  add->add_option("--component", o->component, "Component that serves the domain")->required();
  add->add_option("--port", o->port, "Its HTTP port (default: its first HTTP port)")->check(CLI::Range(1, 65535));
  add->add_option("--version", o->version, "Only this version of the component (e.g. v6)");
  add->add_option("--path", o->path, "Only requests under this path prefix (default /)");
  add->add_option("--header", o->headers, "Only requests with header NAME=VALUE (repeatable)")->take_all();
  add->add_option("--cookie", o->cookies, "Only requests with cookie NAME=VALUE (repeatable)")->take_all();
  add->add_option("--canary", o->canaries,
                  "Send PERCENT of the traffic to COMPONENT[:PORT][@VERSION] or @VERSION, e.g. "
                  "web-next=10 or @v7=10 (repeatable; the rest goes to --component)")
      ->take_all();
  add->add_option("--weight", o->weight, "Relative weight of --component (default: 100 minus the canaries)")
      ->check(CLI::Range(1, 1000));
  add->add_option("--cert", o->cert, "Serve HTTPS with this certificate (berth cert add)");
  add->add_flag("--https-redirect", o->https_redirect, "Redirect HTTP to HTTPS (needs --cert)");
  add->add_option("--rate-limit", o->rate_limit, "Requests per second per client, RPS or RPS:BURST");
  add->add_option("--balance", o->balance, "round_robin, least_conn, hash_cookie or hash_ip")
      ->check(CLI::IsMember({"round_robin", "least_conn", "hash_cookie", "hash_ip"}));
  add->add_option("--max-body", o->max_body, "Largest request body in bytes (0 = the gateway's default)")
      ->check(CLI::NonNegativeNumber);
  add->add_option("--name", o->name, "Rule name (default: derived from the domain and path)");

  auto lo = std::make_shared<std::string>();
  CLI::App* list = Leaf(*noun, sh, "list", "List HTTP rules (of one app, or of the whole team)",
                        [lo](Call& c) -> Status {
    std::string path = lo->empty() ? c.Team() + "/http-rules" : c.App(*lo) + "/http-rules";
    BERTH_ASSIGN_OR_RETURN(Json l, c.All(path));
    c.Table(l, "domains", {"NAME", "APP", "URL", "MATCHES", "BACKENDS", "BALANCE"}, [](const Json& r) {
      std::string matches;
      for (const char* k : {"headers", "cookies"}) {
        for (const auto& m : r.value(k, Json::array())) {
          matches += (matches.empty() ? "" : ",") + std::string(k[0] == 'h' ? "header:" : "cookie:") +
                     Str(m, "name") + "=" + Str(m, "value");
        }
      }
      return std::vector<std::string>{Str(r, "name"), Str(r, "app"), RuleUrl(r), matches,
                                      BackendsText(r), Str(r, "balance")};
    });
    if (!c.json() && l.value("items", Json::array()).empty()) DomainHints(c, *lo);
    return Status::Ok();
  });
  list->add_option("--app", *lo, "Only this app's rules");

  auto so = std::make_shared<std::pair<std::string, std::string>>();
  CLI::App* show = Leaf(*noun, sh, "show", "Show an HTTP rule", [so](Call& c) -> Status {
    BERTH_ASSIGN_OR_RETURN(Json r, c.Do("GET", c.App(so->second) + "/http-rules/" + EncodeComponent(so->first)));
    c.Show(r);
    return Status::Ok();
  });
  show->add_option("name", so->first, "Rule name")->required();
  show->add_option("--app", so->second, "App of the rule")->required();

  struct RemoveOpts {
    std::string target, app, path;
  };
  auto ro = std::make_shared<RemoveOpts>();
  CLI::App* remove = Leaf(*noun, sh, "remove", "Remove an HTTP rule, by name or by domain",
                          [ro](Call& c) -> Status {
    std::string name = ro->target;
    if (name.find('.') != std::string::npos || name.find('*') != std::string::npos) {
      std::string domain = name;
      for (char& ch : domain) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      BERTH_ASSIGN_OR_RETURN(Json l, c.All(c.App(ro->app) + "/http-rules"));
      std::vector<std::string> found;
      for (const auto& r : l["items"]) {
        std::string path = Str(r, "path_prefix");
        std::string want = ro->path.size() > 1 && ro->path.back() == '/' ? ro->path.substr(0, ro->path.size() - 1) : ro->path;
        if (Str(r, "domain") == domain && (ro->path.empty() || path == want)) found.push_back(Str(r, "name"));
      }
      if (found.empty()) {
        return Status(Code::kNotFound, "not_found",
                      "no HTTP rule for " + domain + (ro->path.empty() ? "" : " " + ro->path) +
                          " in app " + ro->app);
      }
      if (found.size() > 1) {
        std::string names;
        for (const auto& n : found) names += (names.empty() ? "" : ", ") + n;
        return Usage(domain + " has several rules (" + names + "): remove one by name or give --path");
      }
      name = found.front();
    }
    BERTH_ASSIGN_OR_RETURN(Json r, c.Do("DELETE", c.App(ro->app) + "/http-rules/" + EncodeComponent(name)));
    c.Done(r, "removed HTTP rule " + name);
    return Status::Ok();
  });
  remove->add_option("rule", ro->target, "Rule name or domain")->required();
  remove->add_option("--app", ro->app, "App of the rule")->required();
  remove->add_option("--path", ro->path, "With a domain: the rule for this path prefix");
}

// ---- domain owners (platform administrators) ------------------------------------------------

void AddDomainOwnerCommands(CLI::App& domain, const std::shared_ptr<Shared>& sh) {
  Leaf(domain, sh, "owners", "Which team each domain belongs to (platform administrators)",
       [](Call& c) -> Status {
    BERTH_ASSIGN_OR_RETURN(Json l, c.Do("GET", "/api/v1/gateway/domains"));
    c.Table(l, "domain owners", {"DOMAIN", "TEAM", "ASSIGNED", "BY"}, [](const Json& d) {
      return std::vector<std::string>{Str(d, "domain"), Str(d, "team"),
                                      d.value("assigned", false) ? "yes" : "no (claimed by a rule)",
                                      Str(d, "by")};
    });
    return Status::Ok();
  });
  auto a = std::make_shared<std::pair<std::string, std::string>>();
  CLI::App* assign = Leaf(domain, sh, "assign",
                          "Give DOMAIN (or *.DOMAIN) to TEAM: only its rules may route it "
                          "(platform administrators)",
                          [a](Call& c) -> Status {
    Json body = {{"team", a->second}};
    BERTH_ASSIGN_OR_RETURN(
        Json r, c.Do("PUT", "/api/v1/gateway/domains/" + EncodeComponent(a->first), &body));
    c.Done(r, a->first + " now belongs to team " + Str(r, "team"));
    return Status::Ok();
  });
  assign->add_option("domain", a->first, "Domain or wildcard (*.example.com)")->required();
  assign->add_option("team", a->second, "The team it belongs to")->required();
  auto rel = std::make_shared<std::string>();
  CLI::App* release = Leaf(domain, sh, "release",
                           "Let DOMAIN belong to no team again (no rule may route it; platform "
                           "administrators)",
                           [rel](Call& c) -> Status {
    BERTH_ASSIGN_OR_RETURN(Json r,
                           c.Do("DELETE", "/api/v1/gateway/domains/" + EncodeComponent(*rel)));
    c.Done(r, "released " + *rel);
    return Status::Ok();
  });
  release->add_option("domain", *rel, "Domain or wildcard")->required();
}

// ---- tcp -----------------------------------------------------------------------------------

void AddTcpCommands(CLI::App& app, const std::shared_ptr<Shared>& sh) {
  CLI::App* noun = Noun(app, "tcp", "Forward gateway TCP ports to components (TCP rules)");
  struct Opts {
    int listen_port = 0, port = 0;
    std::string app, component, balance, name, idle_timeout, connect_timeout;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* add = Leaf(*noun, sh, "add", "Forward LISTEN_PORT on the gateway to a component port",
                       [o](Call& c) -> Status {
    Json body = {{"listen_port", o->listen_port}, {"component", o->component}};
    if (o->port) body["port"] = o->port;
    if (!o->balance.empty()) body["balance"] = o->balance;
    if (!o->name.empty()) body["name"] = o->name;
    // The server checks the ranges (idle 1 s to 24 h, connect up to 10 min) and names the field.
    for (auto [flag, text, field] : {std::tuple{"--idle-timeout", &o->idle_timeout, "idle_timeout_ms"},
                                     std::tuple{"--connect-timeout", &o->connect_timeout, "connect_timeout_ms"}}) {
      if (text->empty()) continue;
      auto ms = ParseDurationMs(*text, flag);
      if (!ms.ok()) return Usage(ms.status().message());
      body[field] = *ms;
    }
    BERTH_ASSIGN_OR_RETURN(Json r, c.Do("POST", c.App(o->app) + "/tcp-rules", &body));
    c.Done(r, "forwarding TCP port " + std::to_string(r.value("listen_port", 0)) + " to " +
                  Str(r, "component") + ":" + std::to_string(r.value("port", 0)) + " (rule " +
                  Str(r, "name") + ")");
    return Status::Ok();
  });
  add->add_option("listen_port", o->listen_port, "Port the gateway listens on")->required()->check(CLI::Range(1, 65535));
  add->add_option("--app", o->app, "App of the component")->required();
  add->add_option("--component", o->component, "Component to forward to")->required();
  add->add_option("--port", o->port, "Its port (default: its first port)")->check(CLI::Range(1, 65535));
  add->add_option("--balance", o->balance, "round_robin, least_conn or hash_ip")
      ->check(CLI::IsMember({"round_robin", "least_conn", "hash_ip"}));
  add->add_option("--name", o->name, "Rule name (default tcp-LISTEN_PORT)");
  add->add_option("--idle-timeout", o->idle_timeout,
                  "Close a connection silent both ways this long, e.g. 30s, 15m (default 1h)");
  add->add_option("--connect-timeout", o->connect_timeout,
                  "Give up connecting to an instance after this long, e.g. 2s (default 5s)");

  auto lo = std::make_shared<std::string>();
  CLI::App* list = Leaf(*noun, sh, "list", "List TCP rules (of one app, or of the whole team)",
                        [lo](Call& c) -> Status {
    std::string path = lo->empty() ? c.Team() + "/tcp-rules" : c.App(*lo) + "/tcp-rules";
    BERTH_ASSIGN_OR_RETURN(Json l, c.All(path));
    c.Table(l, "TCP rules", {"NAME", "APP", "LISTEN", "COMPONENT", "PORT", "BALANCE", "IDLE", "STATUS"}, [](const Json& r) {
      std::string idle;
      if (r.contains("idle_timeout_ms") && r["idle_timeout_ms"].is_number_integer()) {
        int64_t ms = r["idle_timeout_ms"].get<int64_t>();
        idle = ms % 3600000 == 0 ? std::to_string(ms / 3600000) + "h"
               : ms % 60000 == 0 ? std::to_string(ms / 60000) + "m"
               : ms % 1000 == 0  ? std::to_string(ms / 1000) + "s"
                                 : std::to_string(ms) + "ms";
      }
      // The gateway's listener: "failed: cannot listen on ...: Address already in use".
      std::string status;
      if (r.contains("status") && r["status"].is_object()) {
        status = r["status"].value("state", "");
        if (status == "failed") status += ": " + r["status"].value("error", "");
      }
      return std::vector<std::string>{Str(r, "name"), Str(r, "app"), Field(r, "listen_port"),
                                      Str(r, "component"), Field(r, "port"), Str(r, "balance"), idle,
                                      status};
    });
    return Status::Ok();
  });
  list->add_option("--app", *lo, "Only this app's rules");

  auto ro = std::make_shared<std::pair<std::string, std::string>>();
  CLI::App* remove = Leaf(*noun, sh, "remove", "Remove a TCP rule, by name or by listen port",
                          [ro](Call& c) -> Status {
    std::string name = ro->first;
    if (AllDigits(name)) {
      BERTH_ASSIGN_OR_RETURN(Json l, c.All(c.App(ro->second) + "/tcp-rules"));
      std::string found;
      for (const auto& r : l["items"]) {
        if (r.value("listen_port", 0) == std::stoi(name)) found = Str(r, "name");
      }
      if (found.empty()) {
        return Status(Code::kNotFound, "not_found", "no TCP rule listens on port " + name + " in app " + ro->second);
      }
      name = found;
    }
    BERTH_ASSIGN_OR_RETURN(Json r, c.Do("DELETE", c.App(ro->second) + "/tcp-rules/" + EncodeComponent(name)));
    c.Done(r, "removed TCP rule " + name);
    return Status::Ok();
  });
  remove->add_option("rule", ro->first, "Rule name or listen port")->required();
  remove->add_option("--app", ro->second, "App of the rule")->required();
}

// ---- cert ----------------------------------------------------------------------------------

void AddCertCommands(CLI::App& app, const std::shared_ptr<Shared>& sh) {
  CLI::App* noun = Noun(app, "cert", "Manage the team's TLS certificates");
  struct Opts {
    std::string name, cert, key, chain;
  };
  auto o = std::make_shared<Opts>();
  for (bool update : {false, true}) {
    CLI::App* cmd = Leaf(*noun, sh, update ? "update" : "add",
                         update ? "Replace a certificate and its key (renewal)"
                                : "Upload a PEM certificate (+ chain) and its private key",
                         [o, update](Call& c) -> Status {
      BERTH_ASSIGN_OR_RETURN(std::string cert, ReadFile(o->cert, "--cert"));
      BERTH_ASSIGN_OR_RETURN(std::string key, ReadFile(o->key, "--key"));
      Json body = {{"name", o->name}, {"cert_pem", cert}, {"key_pem", key}};
      if (!o->chain.empty()) {
        BERTH_ASSIGN_OR_RETURN(std::string chain, ReadFile(o->chain, "--chain"));
        body["chain_pem"] = chain;
      }
      std::string path = c.Team() + "/certificates";
      BERTH_ASSIGN_OR_RETURN(Json r, update ? c.Do("PUT", path + "/" + EncodeComponent(o->name), &body)
                                            : c.Do("POST", path, &body));
      std::string domains;
      for (const auto& d : r.value("domains", Json::array())) {
        domains += (domains.empty() ? "" : ", ") + d.get<std::string>();
      }
      c.Done(r, std::string(update ? "replaced" : "added") + " certificate " + o->name + " for " +
                    domains + " (valid until " + Str(r, "not_after") + ")" +
                    (r.value("expired", false) ? " — it has EXPIRED" : ""));
      return Status::Ok();
    });
    cmd->add_option("name", o->name, "Certificate name")->required();
    cmd->add_option("--cert", o->cert, "PEM file: the certificate, then its chain")->required();
    cmd->add_option("--key", o->key, "PEM file: its private key (unencrypted)")->required();
    cmd->add_option("--chain", o->chain, "PEM file: the chain, when not in --cert");
  }

  Leaf(*noun, sh, "list", "List certificates with their domains and expiry", [](Call& c) -> Status {
    BERTH_ASSIGN_OR_RETURN(Json l, c.All(c.Team() + "/certificates"));
    c.Table(l, "certificates", {"NAME", "DOMAINS", "NOT AFTER", "EXPIRED", "ISSUER"}, [](const Json& r) {
      return std::vector<std::string>{Str(r, "name"), Field(r, "domains"), Str(r, "not_after"),
                                      r.value("expired", false) ? "yes" : "no", Str(r, "issuer")};
    });
    return Status::Ok();
  });

  auto so = std::make_shared<std::string>();
  CLI::App* show = Leaf(*noun, sh, "show", "Show a certificate (never its key)", [so](Call& c) -> Status {
    BERTH_ASSIGN_OR_RETURN(Json r, c.Do("GET", c.Team() + "/certificates/" + EncodeComponent(*so)));
    if (!c.json()) r.erase("cert_pem");
    c.Show(r);
    return Status::Ok();
  });
  show->add_option("name", *so, "Certificate name")->required();

  auto rm = std::make_shared<std::string>();
  CLI::App* remove = Leaf(*noun, sh, "remove", "Delete a certificate no rule uses", [rm](Call& c) -> Status {
    BERTH_ASSIGN_OR_RETURN(Json r, c.Do("DELETE", c.Team() + "/certificates/" + EncodeComponent(*rm)));
    c.Done(r, "removed certificate " + *rm);
    return Status::Ok();
  });
  remove->add_option("name", *rm, "Certificate name")->required();
}

}  // namespace

void AddGatewayAdminCommands(CLI::App& gateway, const ClientWorld& world, int* exit_code) {
  auto sh = std::make_shared<Shared>();
  sh->world = world;
  sh->exit_code = exit_code;
  Leaf(gateway, sh, "rotate-credential",
       "Give the gateway a new API token and revoke its old ones (platform administrators); the "
       "running gateway switches without dropping traffic",
       [](Call& c) -> Status {
         BERTH_ASSIGN_OR_RETURN(Json r, c.Do("POST", "/api/v1/gateway/credential/rotate"));
         c.Done(r, "rotated the gateway's credential: new token " + Str(r, "token_id") +
                       "; the old ones are revoked");
         return Status::Ok();
       });
}

void AddGatewayCommands(CLI::App& app, const ClientWorld& world, int* exit_code) {
  auto sh = std::make_shared<Shared>();
  sh->world = world;
  sh->exit_code = exit_code;
  AddDomainCommands(app, sh);
  AddDomainOwnerCommands(*app.get_subcommand("domain"), sh);
  AddTcpCommands(app, sh);
  AddCertCommands(app, sh);
}

}  // namespace berth::cli
