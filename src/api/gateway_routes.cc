// Gateway routes (docs/api.md "Gateway"): HTTP and TCP rules under an app, certificates under
// a team, and the routing snapshot the gateway role fetches.
//
// Every rule write also writes the rule's gateway_claim (model.h) in the same commit, so two
// rules can never route the same domain/path/matches or listen on the same TCP port — across
// teams too — even when the writes race. Deleting a rule, its app, team or component releases
// its claim in the same commit (routing/claims.h); a claim whose rule is nevertheless gone
// (left by older versions) is stale, swept at server start and taken over by the next rule.
#include <algorithm>
#include <fstream>
#include <limits>
#include <map>

#include "api/detail/service.h"
#include "core/names.h"
#include "routing/certificates.h"
#include "routing/domains.h"
#include "routing/routing.h"

namespace berth::api {

int BoundGatewayPort(const std::string& data_dir, const char* field);

namespace {

using model::Role;

constexpr size_t kAuditSideLimit = 8 << 10;

// What the audit log keeps of an object: never key material, and certificates without their
// (long, public) PEM.
Json AuditSide(const Json* side) {
  if (!side) return nullptr;
  Json j = *side;
  j.erase("key_sealed");
  j.erase("cert_pem");
  if (j.dump().size() > kAuditSideLimit) return {{"omitted", "object too large"}};
  return j;
}

AuditRecord Audit(const Ctx& ctx, const std::string& action, const std::string& resource,
                  const Json* before, const Json* after) {
  Json summary = {{"before", AuditSide(before)}, {"after", AuditSide(after)}};
  return AuditRecord{ctx.who.user, ctx.P("team"), action, resource, summary.dump()};
}

routing::Options RoutingOptions(const Service& s) {
  routing::Options o;
  o.domain_suffix = s.options.domain_suffix;
  o.listen_host = s.options.gateway_host;
  o.http_port = s.options.gateway_http_port;
  o.https_port = s.options.gateway_https_port;
  o.secrets = s.options.secrets.get();
  return o;
}

// The API form: RenderObject plus the parents, never the sealed key, and for certificates
// whether they have expired.
Json Render(Service& s, const Object& o) {
  Json j = RenderObject(o);
  j.erase("key_sealed");
  std::string scope = o.scope;
  size_t slash = scope.find('/');
  j["team"] = scope.substr(0, slash);
  if (slash != std::string::npos) j["app"] = scope.substr(slash + 1);
  if (o.kind == model::kCertificate) {
    auto c = model::CertificateFromJson(Stored(o));
    j["expired"] = c.ok() && routing::CertificateExpired(*c, s.clock.Now());
  }
  return j;
}

// ---- what the gateway reports ----------------------------------------------------------------

constexpr char kStatusName[] = "gateway";

bool IsGateway(const auth::Principal& who) {
  return who.service && who.user == model::kGatewayUser;
}

// The gateway's last report (Stored body of the gateway_status object; {} when none).
Json GatewayReport(Service& s) {
  auto o = s.store.Get(model::kGatewayStatus, "", kStatusName);
  return o.ok() ? Stored(*o) : Json::object();
}

// The route id the snapshot gives a TCP rule (routing.cc): "team/app/component/rule".
std::string TcpRouteId(const std::string& scope, const Json& rule) {
  return scope + "/" + rule.value("component", "") + "/" + rule.value("name", "");
}

// A TCP rule's listener as the gateway last reported it: "listening", "failed" (with the bind
// error), "pending" (the gateway has not reported a listener for this rule on its port yet) or
// "unknown" (no gateway has reported).
Json TcpRuleStatus(const Json& report, const Object& rule) {
  if (!report.contains("tcp") || !report["tcp"].is_array()) {
    return {{"state", "unknown"}, {"message", "no gateway has reported its listeners"}};
  }
  Json body = Stored(rule);
  std::string id = TcpRouteId(rule.scope, body);
  std::string port = ":" + std::to_string(body.value("listen_port", 0));
  for (const Json& t : report["tcp"]) {
    std::string address = t.value("address", "");
    bool same_port = address.size() >= port.size() &&
                     address.compare(address.size() - port.size(), port.size(), port) == 0;
    if (t.value("route", "") != id || !same_port) continue;
    if (t.value("listening", false)) {
      return {{"state", "listening"}, {"address", t.value("address", "")}};
    }
    return {{"state", "failed"},
            {"address", t.value("address", "")},
            {"error", t.value("error", "")},
            {"since", t.value("since", "")}};
  }
  return {{"state", "pending"}, {"message", "the gateway has not applied this rule yet"}};
}

// Render plus, for TCP rules, the listener status from `report`.
Json RenderRule(Service& s, const Object& o, const Json& report) {
  Json j = Render(s, o);
  if (o.kind == model::kTcpRule) j["status"] = TcpRuleStatus(report, o);
  return j;
}

Status AppExists(Service& s, const std::string& team, const std::string& app) {
  auto o = s.store.Get(model::kApp, team, app);
  if (o.ok()) return Status::Ok();
  if (o.status().code() == Code::kNotFound) {
    return NotFound("app " + Quoted(app) + " not found in team " + Quoted(team));
  }
  return o.status();
}

Result<Reply> ListReply(Service& s, const Ctx& ctx, const std::string& kind,
                        const std::string& scope, bool recursive) {
  BERTH_ASSIGN_OR_RETURN(ListOptions o, ListOpts(ctx, scope));
  o.recursive = recursive;
  BERTH_ASSIGN_OR_RETURN(ListResult r, s.store.List(kind, o));
  Json report = kind == model::kTcpRule ? GatewayReport(s) : Json::object();
  Json items = Json::array();
  for (const Object& obj : r.items) items.push_back(RenderRule(s, obj, report));
  return Reply{200, {{"items", items}, {"next", r.next}, {"revision", r.revision}}, {}, nullptr};
}

// ---- rules: the shared write path -----------------------------------------------------------

struct RuleKind {
  const char* kind;       // model::kHttpRule / kTcpRule
  const char* noun;       // "HTTP rule"
  const char* path;       // "http-rules"
  const char* conflict;   // the error code when the claim is taken
};
const RuleKind kHttp{model::kHttpRule, "HTTP rule", "http-rules", "domain_taken"};
const RuleKind kTcp{model::kTcpRule, "TCP rule", "tcp-rules", "port_taken"};

std::string AppScope(const Ctx& c) { return c.P("team") + "/" + c.P("app"); }
std::string RuleResource(const Ctx& c, const RuleKind& k, const std::string& name) {
  return "apps/" + c.P("app") + "/" + k.path + "/" + name;
}

// Describes the requests a claim key routes, for messages.
std::string KeyText(const std::string& key) {
  if (key.rfind("tcp ", 0) == 0) return "TCP port " + key.substr(4);
  std::string rest = key.substr(5);  // "domain path [matches]"
  size_t sp = rest.find(' ');
  std::string domain = rest.substr(0, sp);
  std::string tail = sp == std::string::npos ? "" : rest.substr(sp + 1);
  size_t sp2 = tail.find(' ');
  std::string path = tail.substr(0, sp2);
  std::string matches = sp2 == std::string::npos ? "" : " with " + tail.substr(sp2 + 1);
  return domain + (path == "/" ? "" : path) + matches;
}

// More ops for a rule's commit, read again at every attempt (they compare-and-set).
using ExtraOps = std::function<Result<std::vector<Op>>()>;

// Commits `rule_op` together with the claim ops that move the rule from `old_key` to
// `new_key` ("" = none) and `extra` (an HTTP rule's domain). Returns the committed rule.
Result<Object> CommitRule(Service& s, const Ctx& ctx, const RuleKind& k, const Op& rule_op,
                          const std::string& old_key, const std::string& new_key,
                          const AuditRecord& audit, const ExtraOps& extra = nullptr) {
  const Object& rule = rule_op.object;
  Json owner = {{"kind", rule.kind}, {"scope", rule.scope}, {"name", rule.name}};
  auto owned_by_rule = [&](const Json& claim) {
    return claim.value("kind", "") == rule.kind && claim.value("scope", "") == rule.scope &&
           claim.value("name", "") == rule.name;
  };
  for (int attempt = 0; attempt < 5; ++attempt) {
    WriteBatch b;
    b.ops.push_back(rule_op);
    if (new_key != old_key) {
      auto claim = s.store.Get(model::kGatewayClaim, "", new_key);
      if (claim.ok()) {
        Json c = Stored(*claim);
        if (!owned_by_rule(c)) {
          auto holder = s.store.Get(c.value("kind", ""), c.value("scope", ""), c.value("name", ""));
          if (holder.ok()) {
            std::string holder_scope = c.value("scope", "");
            std::string team = holder_scope.substr(0, holder_scope.find('/'));
            std::string who = team == ctx.P("team")
                                  ? "rule " + Quoted(c.value("name", "")) + " of app " +
                                        Quoted(holder_scope.substr(holder_scope.find('/') + 1))
                                  : "a rule of another team";
            return Status(Code::kConflict, k.conflict,
                          KeyText(new_key) + " is already routed by " + who,
                          k.kind == model::kTcpRule ? "listen_port" : "domain");
          }
          if (holder.status().code() != Code::kNotFound) return holder.status();
          Op take;  // stale: its rule went with its app or team
          take.type = OpType::kUpdate;
          take.object = Object{model::kGatewayClaim, "", new_key, owner.dump()};
          take.expected_revision = claim->revision;
          b.ops.push_back(take);
        }
      } else if (claim.status().code() == Code::kNotFound) {
        Op create;
        create.type = OpType::kCreate;
        create.object = Object{model::kGatewayClaim, "", new_key, owner.dump()};
        b.ops.push_back(create);
      } else {
        return claim.status();
      }
      if (!old_key.empty()) {
        auto old = s.store.Get(model::kGatewayClaim, "", old_key);
        if (old.ok() && owned_by_rule(Stored(*old))) {
          Op drop;
          drop.type = OpType::kDelete;
          drop.object = Object{model::kGatewayClaim, "", old_key};
          drop.expected_revision = old->revision;
          b.ops.push_back(drop);
        }
      }
    }
    if (extra) {
      BERTH_ASSIGN_OR_RETURN(std::vector<Op> more, extra());
      for (Op& m : more) b.ops.push_back(std::move(m));
    }
    b.audit.push_back(audit);
    auto r = s.store.Commit(b);
    if (r.ok()) return r->objects.front();
    // The batch failed as a whole: find out whether the rule itself is to blame, or a claim
    // moved under us (then look again).
    auto now = s.store.Get(rule.kind, rule.scope, rule.name);
    if (rule_op.type == OpType::kCreate && now.ok()) {
      return AlreadyExists(std::string(k.noun) + " " + Quoted(rule.name) + " already exists");
    }
    if (rule_op.type == OpType::kUpdate) {
      if (!now.ok()) return NotFound(std::string(k.noun) + " " + Quoted(rule.name) + " not found");
      if (now->revision != rule_op.expected_revision) return r.status();  // caller re-reads
    }
    if (r.status().code() != Code::kAlreadyExists && r.status().code() != Code::kConflict &&
        r.status().code() != Code::kNotFound) {
      return r.status();
    }
  }
  return RevisionConflict("the gateway rules are changing too often: retry");
}

Result<Reply> DeleteRule(Service& s, Ctx& ctx, const RuleKind& k) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, std::string("delete ") + k.noun + "s"));
  BERTH_RETURN_IF_ERROR(AppExists(s, ctx.P("team"), ctx.P("app")));
  BERTH_ASSIGN_OR_RETURN(int64_t expected, QueryRevision(ctx));
  const std::string name = ctx.P("rule");
  auto cur = s.store.Get(k.kind, AppScope(ctx), name);
  if (!cur.ok()) {
    if (cur.status().code() == Code::kNotFound) return NotFound(std::string(k.noun) + " " + Quoted(name) + " not found");
    return cur.status();
  }
  if (expected != 0 && cur->revision != expected) {
    return RevisionConflict(std::string(k.noun) + " " + Quoted(name) + " is at revision " +
                            std::to_string(cur->revision) + ", not " + std::to_string(expected));
  }
  Json before = Stored(*cur);
  std::string key;
  if (k.kind == model::kHttpRule) {
    auto r = model::ParseHttpRule(before);
    if (r.ok()) key = model::HttpRuleKey(*r);
  } else {
    auto r = model::ParseTcpRule(before);
    if (r.ok()) key = model::TcpRuleKey(*r);
  }
  WriteBatch b;
  Op op;
  op.type = OpType::kDelete;
  op.object = Object{k.kind, cur->scope, name};
  op.expected_revision = cur->revision;
  b.ops.push_back(op);
  auto claim = key.empty() ? Result<Object>(NotFound("")) : s.store.Get(model::kGatewayClaim, "", key);
  if (claim.ok()) {
    Json c = Stored(*claim);
    if (c.value("scope", "") == cur->scope && c.value("name", "") == name) {
      Op drop;
      drop.type = OpType::kDelete;
      drop.object = Object{model::kGatewayClaim, "", key};
      drop.expected_revision = claim->revision;
      b.ops.push_back(drop);
    }
  }
  if (k.kind == model::kHttpRule) {
    // The team's claim on the domain goes with its last rule on it.
    BERTH_ASSIGN_OR_RETURN(std::vector<Op> domains,
                           routing::ReleaseDomainOps(s.store, ctx.P("team"),
                                                     {cur->scope + "/" + name}));
    for (Op& d : domains) b.ops.push_back(std::move(d));
  }
  b.audit.push_back(Audit(ctx, "delete", RuleResource(ctx, k, name), &before, nullptr));
  auto r = s.store.Commit(b);
  if (!r.ok()) {
    if (r.status().code() == Code::kNotFound) return NotFound(std::string(k.noun) + " " + Quoted(name) + " not found");
    return r.status();
  }
  return Reply{200, {{"deleted", k.kind}, {"name", name}, {"revision", r->revision}}, {}, nullptr};
}

Result<Reply> GetRule(Service& s, Ctx& ctx, const RuleKind& k) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kViewer, "read gateway rules"));
  BERTH_RETURN_IF_ERROR(AppExists(s, ctx.P("team"), ctx.P("app")));
  auto o = s.store.Get(k.kind, AppScope(ctx), ctx.P("rule"));
  if (!o.ok()) {
    if (o.status().code() == Code::kNotFound) {
      return NotFound(std::string(k.noun) + " " + Quoted(ctx.P("rule")) + " not found");
    }
    return o.status();
  }
  return Reply{200, RenderRule(s, *o, GatewayReport(s)), {}, nullptr};
}

// Loads the component a backend names; 400 naming `field` when it is not in the app.
Result<model::Component> BackendComponent(Service& s, const Ctx& ctx, const std::string& name,
                                          const std::string& field) {
  auto o = s.store.Get(model::kComponent, AppScope(ctx), name);
  if (!o.ok()) {
    if (o.status().code() == Code::kNotFound) {
      return InvalidArgument("component " + Quoted(name) + " not found in app " + Quoted(ctx.P("app")), field);
    }
    return o.status();
  }
  auto c = model::ParseComponent(Stored(*o));
  if (!c.ok()) return Internal("stored component " + name + " does not parse");
  return *c;
}

// ---- HTTP rules ------------------------------------------------------------------------------

// Reference checks of a parsed rule: backends name components (and ports, versions) of this
// app, the certificate is the team's and covers the domain, the domain is not a default one.
Status CheckHttpRule(Service& s, const Ctx& ctx, model::HttpRule* r) {
  const std::string& suffix = s.options.domain_suffix;
  std::string bare = r->domain.rfind("*.", 0) == 0 ? r->domain.substr(2) : r->domain;
  auto ends_with = [](const std::string& a, const std::string& b) {
    return a.size() > b.size() && a.compare(a.size() - b.size(), std::string::npos, b) == 0;
  };
  if (bare == suffix || ends_with(bare, "." + suffix)) {
    return InvalidArgument("domains under ." + suffix +
                               " are the default domains berth gives every component "
                               "(<component>.<app>." + suffix + "): choose another domain",
                           "domain");
  }
  if (r->domain.rfind("*.", 0) == 0 && ends_with(suffix, "." + bare)) {
    // *.example.com with the suffix apps.example.com would catch every default domain no
    // route serves yet (the gateway's wildcards match at any depth).
    return InvalidArgument(r->domain + " would cover the default domains berth gives every "
                               "component (<component>.<app>." + suffix + "): choose a narrower "
                               "wildcard",
                           "domain");
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < r->backends.size(); ++i) {
    model::RuleBackend& b = r->backends[i];
    std::string field = "backends[" + std::to_string(i) + "]";
    BERTH_ASSIGN_OR_RETURN(model::Component c, BackendComponent(s, ctx, b.component, field + ".component"));
    if (b.port == 0) {
      b.port = routing::FirstHttpPort(c.ports);
      if (b.port == 0) {
        return InvalidArgument("component " + Quoted(b.component) +
                                   " declares no HTTP port: add one, e.g. `berth component set " +
                                   b.component + " --app " + ctx.P("app") + " --port 8080/http`",
                               field + ".component");
      }
    } else {
      auto p = std::find_if(c.ports.begin(), c.ports.end(),
                            [&](const model::Port& x) { return x.port == b.port; });
      if (p == c.ports.end()) {
        return InvalidArgument("component " + Quoted(b.component) + " does not declare port " +
                                   std::to_string(b.port),
                               field + ".port");
      }
      if (p->protocol != "http") {
        return InvalidArgument("port " + std::to_string(b.port) + " of " + Quoted(b.component) + " is " +
                                   p->protocol + ", not http: route it with a TCP rule",
                               field + ".port");
      }
    }
    if (!b.version.empty()) {
      auto v = s.store.Get(model::kVersion, AppScope(ctx) + "/" + b.component, b.version);
      if (!v.ok()) {
        if (v.status().code() == Code::kNotFound) {
          return InvalidArgument("component " + Quoted(b.component) + " has no version " + Quoted(b.version),
                                 field + ".version");
        }
        return v.status();
      }
    }
    if (!seen.insert(b.component + ":" + std::to_string(b.port) + "@" + b.version).second) {
      return InvalidArgument("backend " + b.component + ":" + std::to_string(b.port) +
                                 (b.version.empty() ? "" : "@" + b.version) + " is listed twice",
                             field);
    }
  }
  if (!r->certificate.empty()) {
    auto o = s.store.Get(model::kCertificate, ctx.P("team"), r->certificate);
    if (!o.ok()) {
      if (o.status().code() == Code::kNotFound) {
        return InvalidArgument("certificate " + Quoted(r->certificate) + " not found in team " +
                                   Quoted(ctx.P("team")) + ": upload it first (`berth cert add " +
                                   r->certificate + " --cert FILE --key FILE`)",
                               "certificate");
      }
      return o.status();
    }
    auto c = model::CertificateFromJson(Stored(*o));
    if (!c.ok()) return Internal("stored certificate does not parse");
    bool covers = std::any_of(c->domains.begin(), c->domains.end(), [&](const std::string& d) {
      return routing::CertificateCovers(d, r->domain);
    });
    if (!covers) {
      std::string list;
      for (const std::string& d : c->domains) list += (list.empty() ? "" : ", ") + d;
      return InvalidArgument("certificate " + Quoted(r->certificate) + " is for " + list +
                                 ", not for " + r->domain,
                             "certificate");
    }
  }
  return Status::Ok();
}

Result<Reply> CreateHttpRule(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "change gateway rules"));
  BERTH_RETURN_IF_ERROR(AppExists(s, ctx.P("team"), ctx.P("app")));
  BERTH_ASSIGN_OR_RETURN(Json body, JsonBody(ctx));
  BERTH_ASSIGN_OR_RETURN(int64_t ignored, TakeRevision(body));
  (void)ignored;
  BERTH_ASSIGN_OR_RETURN(model::HttpRule r, model::ParseHttpRule(body));
  BERTH_RETURN_IF_ERROR(CheckHttpRule(s, ctx, &r));
  if (r.name.empty()) r.name = model::DefaultHttpRuleName(r);
  Json after = model::ToJson(r);
  Op op;
  op.type = OpType::kCreate;
  op.object = Object{model::kHttpRule, AppScope(ctx), r.name, after.dump()};
  const std::string team = ctx.P("team"), domain = r.domain, actor = ctx.who.user;
  BERTH_ASSIGN_OR_RETURN(
      Object o, CommitRule(s, ctx, kHttp, op, "", model::HttpRuleKey(r),
                           Audit(ctx, "create", RuleResource(ctx, kHttp, r.name), nullptr, &after),
                           [&s, team, domain, actor] {
                             return routing::ClaimDomainOps(s.store, team, domain, actor);
                           }));
  return Reply{201, Render(s, o), {}, nullptr};
}

// PUT (replace) and PATCH (merge) of a rule: `parse_check` validates the merged body and
// returns the new stored body and its claim key; `key_of` gives the current body's key.
using RuleParse = std::function<Result<std::pair<Json, std::string>>(const Json& merged)>;
using RuleKey = std::function<std::string(const Json& stored)>;

// An HTTP rule's domain ops for its commit, from the current and the new stored body.
using RuleExtra = std::function<ExtraOps(const Json& current, const Json& next)>;

Result<Reply> UpdateRule(Service& s, Ctx& ctx, const RuleKind& k, const RuleParse& parse_check,
                         const RuleKey& key_of, const RuleExtra& extra = nullptr) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "change gateway rules"));
  BERTH_RETURN_IF_ERROR(AppExists(s, ctx.P("team"), ctx.P("app")));
  BERTH_ASSIGN_OR_RETURN(Json body, JsonBody(ctx));
  BERTH_ASSIGN_OR_RETURN(int64_t expected, TakeRevision(body));
  const std::string name = ctx.P("rule");
  if (body.contains("name") && !(body["name"].is_string() && body["name"] == name)) {
    return InvalidArgument("name cannot be changed (the body says " + body["name"].dump() +
                               ", the path " + Quoted(name) + ")",
                           "name");
  }
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto cur = s.store.Get(k.kind, AppScope(ctx), name);
    if (!cur.ok()) {
      if (cur.status().code() == Code::kNotFound) return NotFound(std::string(k.noun) + " " + Quoted(name) + " not found");
      return cur.status();
    }
    if (expected != 0 && cur->revision != expected) {
      return RevisionConflict(std::string(k.noun) + " " + Quoted(name) + " is at revision " +
                              std::to_string(cur->revision) + ", not " + std::to_string(expected) +
                              ": read it again and retry");
    }
    Json current = Stored(*cur);
    Json merged = body;
    if (ctx.req.method == "PATCH") {
      merged = current;
      merged.merge_patch(body);
    }
    merged["name"] = name;
    BERTH_ASSIGN_OR_RETURN(auto next, parse_check(merged));
    Op op;
    op.type = OpType::kUpdate;
    op.object = Object{k.kind, cur->scope, name, next.first.dump()};
    op.expected_revision = cur->revision;
    auto o = CommitRule(s, ctx, k, op, key_of(current), next.second,
                        Audit(ctx, "update", RuleResource(ctx, k, name), &current, &next.first),
                        extra ? extra(current, next.first) : ExtraOps());
    if (o.ok()) return Reply{200, RenderRule(s, *o, GatewayReport(s)), {}, nullptr};
    if (o.status().reason() != "revision_conflict" || expected != 0) return o.status();
  }
  return RevisionConflict(std::string(k.noun) + " " + Quoted(name) + " is changing too often: retry");
}

Result<Reply> UpdateHttpRule(Service& s, Ctx& ctx) {
  return UpdateRule(
      s, ctx, kHttp,
      [&](const Json& merged) -> Result<std::pair<Json, std::string>> {
        BERTH_ASSIGN_OR_RETURN(model::HttpRule r, model::ParseHttpRule(merged));
        BERTH_RETURN_IF_ERROR(CheckHttpRule(s, ctx, &r));
        return std::make_pair(model::ToJson(r), model::HttpRuleKey(r));
      },
      [](const Json& stored) {
        auto r = model::ParseHttpRule(stored);
        return r.ok() ? model::HttpRuleKey(*r) : std::string();
      },
      [&](const Json& current, const Json& next) -> ExtraOps {
        // Claim the (new) domain; a domain the rule leaves goes if no other rule of the team
        // routes it.
        std::string team = ctx.P("team"), actor = ctx.who.user;
        std::string rule = AppScope(ctx) + "/" + ctx.P("rule");
        std::string to = next.value("domain", ""), from = current.value("domain", "");
        return [&s, team, actor, rule, to, from]() -> Result<std::vector<Op>> {
          BERTH_ASSIGN_OR_RETURN(std::vector<Op> ops,
                                 routing::ClaimDomainOps(s.store, team, to, actor));
          if (from != to) {
            BERTH_ASSIGN_OR_RETURN(std::vector<Op> rel,
                                   routing::ReleaseDomainOps(s.store, team, {rule}));
            for (Op& r : rel) {
              if (r.object.name != to) ops.push_back(std::move(r));
            }
          }
          return ops;
        };
      });
}

// ---- TCP rules -------------------------------------------------------------------------------

// The ports berth itself listens on (docs/security.md): the API's, the gateway's HTTP, HTTPS
// and admin (metrics) listeners — as configured and, where port 0 picked one, as bound.
std::vector<std::pair<int, std::string>> PlatformPorts(Service& s) {
  std::vector<std::pair<int, std::string>> out = {
      {s.api_port.load(), "the API's"},
      {s.options.gateway_http_port, "the gateway's HTTP"},
      {s.options.gateway_https_port, "the gateway's HTTPS"},
      {s.options.gateway_admin_port, "the gateway's admin (metrics)"}};
  if (!s.options.data_dir.empty()) {
    for (auto [field, what] : {std::pair<const char*, const char*>{"http", "the gateway's HTTP"},
                               {"https", "the gateway's HTTPS"},
                               {"admin", "the gateway's admin (metrics)"}}) {
      out.emplace_back(BoundGatewayPort(s.options.data_dir, field), what);
    }
  }
  return out;
}

Status CheckTcpRule(Service& s, const Ctx& ctx, model::TcpRule* t) {
  for (const auto& [port, what] : PlatformPorts(s)) {
    if (port != 0 && t->listen_port == port) {
      return Status(Code::kConflict, "port_reserved",
                    "TCP port " + std::to_string(port) + " is " + what +
                        " port: berth listens there itself; choose another listen_port",
                    "listen_port");
    }
  }
  BERTH_ASSIGN_OR_RETURN(model::Component c, BackendComponent(s, ctx, t->component, "component"));
  if (c.ports.empty()) {
    return InvalidArgument("component " + Quoted(t->component) + " declares no port: add one, e.g. " +
                               "`berth component set " + t->component + " --app " + ctx.P("app") +
                               " --port 5432/tcp`",
                           "component");
  }
  if (t->port == 0) {
    t->port = c.ports.front().port;
  } else if (std::none_of(c.ports.begin(), c.ports.end(),
                          [&](const model::Port& p) { return p.port == t->port; })) {
    return InvalidArgument("component " + Quoted(t->component) + " does not declare port " +
                               std::to_string(t->port),
                           "port");
  }
  if (t->name.empty()) t->name = "tcp-" + std::to_string(t->listen_port);
  return Status::Ok();
}

Result<Reply> CreateTcpRule(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "change gateway rules"));
  BERTH_RETURN_IF_ERROR(AppExists(s, ctx.P("team"), ctx.P("app")));
  BERTH_ASSIGN_OR_RETURN(Json body, JsonBody(ctx));
  BERTH_ASSIGN_OR_RETURN(int64_t ignored, TakeRevision(body));
  (void)ignored;
  BERTH_ASSIGN_OR_RETURN(model::TcpRule t, model::ParseTcpRule(body));
  BERTH_RETURN_IF_ERROR(CheckTcpRule(s, ctx, &t));
  Json after = model::ToJson(t);
  Op op;
  op.type = OpType::kCreate;
  op.object = Object{model::kTcpRule, AppScope(ctx), t.name, after.dump()};
  BERTH_ASSIGN_OR_RETURN(Object o, CommitRule(s, ctx, kTcp, op, "", model::TcpRuleKey(t),
                                              Audit(ctx, "create", RuleResource(ctx, kTcp, t.name), nullptr, &after)));
  return Reply{201, RenderRule(s, o, GatewayReport(s)), {}, nullptr};
}

Result<Reply> UpdateTcpRule(Service& s, Ctx& ctx) {
  return UpdateRule(
      s, ctx, kTcp,
      [&](const Json& merged) -> Result<std::pair<Json, std::string>> {
        BERTH_ASSIGN_OR_RETURN(model::TcpRule t, model::ParseTcpRule(merged));
        BERTH_RETURN_IF_ERROR(CheckTcpRule(s, ctx, &t));
        return std::make_pair(model::ToJson(t), model::TcpRuleKey(t));
      },
      [](const Json& stored) {
        auto t = model::ParseTcpRule(stored);
        return t.ok() ? model::TcpRuleKey(*t) : std::string();
      });
}

// ---- certificates ----------------------------------------------------------------------------

std::string CertResource(const std::string& name) { return "certificates/" + name; }

// Parses an upload and turns it into the stored form (key sealed).
Result<model::Certificate> SealedCertificate(Service& s, const Json& body) {
  if (!s.options.secrets) {
    return Unavailable("this server has no secret key to store certificate keys with");
  }
  BERTH_ASSIGN_OR_RETURN(model::CertificateInput in, model::ParseCertificateInput(body));
  BERTH_ASSIGN_OR_RETURN(model::Certificate c, routing::InspectCertificate(in.cert_pem, in.key_pem));
  c.name = in.name;
  c.key_sealed = s.options.secrets->Seal(in.key_pem);
  return c;
}

Result<Reply> CreateCertificate(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "upload certificates"));
  BERTH_ASSIGN_OR_RETURN(Json body, JsonBody(ctx));
  BERTH_ASSIGN_OR_RETURN(int64_t ignored, TakeRevision(body));
  (void)ignored;
  BERTH_ASSIGN_OR_RETURN(model::Certificate c, SealedCertificate(s, body));
  Json after = model::ToJson(c);
  WriteBatch b;
  Op op;
  op.type = OpType::kCreate;
  op.object = Object{model::kCertificate, ctx.P("team"), c.name, after.dump()};
  b.ops.push_back(op);
  b.audit.push_back(Audit(ctx, "create", CertResource(c.name), nullptr, &after));
  auto r = s.store.Commit(b);
  if (!r.ok()) {
    if (r.status().code() == Code::kAlreadyExists) {
      return AlreadyExists("certificate " + Quoted(c.name) + " already exists: replace it with PUT");
    }
    return r.status();
  }
  return Reply{201, Render(s, r->objects.front()), {}, nullptr};
}

// PUT: a renewed certificate (and key) under the same name. Rules that use it must still be
// covered by its domains.
Result<Reply> ReplaceCertificate(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "replace certificates"));
  BERTH_ASSIGN_OR_RETURN(Json body, JsonBody(ctx));
  BERTH_ASSIGN_OR_RETURN(int64_t expected, TakeRevision(body));
  const std::string name = ctx.P("certificate");
  if (!body.contains("name")) body["name"] = name;
  if (!(body["name"].is_string() && body["name"] == name)) {
    return InvalidArgument("name cannot be changed (the body says " + body["name"].dump() +
                               ", the path " + Quoted(name) + ")",
                           "name");
  }
  auto cur = s.store.Get(model::kCertificate, ctx.P("team"), name);
  if (!cur.ok()) {
    if (cur.status().code() == Code::kNotFound) return NotFound("certificate " + Quoted(name) + " not found");
    return cur.status();
  }
  if (expected != 0 && cur->revision != expected) {
    return RevisionConflict("certificate " + Quoted(name) + " is at revision " +
                            std::to_string(cur->revision) + ", not " + std::to_string(expected));
  }
  BERTH_ASSIGN_OR_RETURN(model::Certificate c, SealedCertificate(s, body));
  ListOptions lo;
  lo.scope = ctx.P("team");
  lo.recursive = true;
  lo.limit = 1000;
  BERTH_ASSIGN_OR_RETURN(ListResult rules, s.store.List(model::kHttpRule, lo));
  for (const Object& o : rules.items) {
    auto r = model::ParseHttpRule(Stored(o));
    if (!r.ok() || r->certificate != name) continue;
    bool covers = std::any_of(c.domains.begin(), c.domains.end(), [&](const std::string& d) {
      return routing::CertificateCovers(d, r->domain);
    });
    if (!covers) {
      return InvalidArgument("the new certificate does not cover " + r->domain + ", which rule " +
                                 Quoted(o.name) + " serves with it",
                             "cert_pem");
    }
  }
  Json before = Stored(*cur);
  Json after = model::ToJson(c);
  WriteBatch b;
  Op op;
  op.type = OpType::kUpdate;
  op.object = Object{model::kCertificate, ctx.P("team"), name, after.dump()};
  op.expected_revision = cur->revision;
  b.ops.push_back(op);
  b.audit.push_back(Audit(ctx, "update", CertResource(name), &before, &after));
  BERTH_ASSIGN_OR_RETURN(CommitResult r, s.store.Commit(b));
  return Reply{200, Render(s, r.objects.front()), {}, nullptr};
}

Result<Reply> DeleteCertificate(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "delete certificates"));
  BERTH_ASSIGN_OR_RETURN(int64_t expected, QueryRevision(ctx));
  const std::string name = ctx.P("certificate");
  auto cur = s.store.Get(model::kCertificate, ctx.P("team"), name);
  if (!cur.ok()) {
    if (cur.status().code() == Code::kNotFound) return NotFound("certificate " + Quoted(name) + " not found");
    return cur.status();
  }
  if (expected != 0 && cur->revision != expected) {
    return RevisionConflict("certificate " + Quoted(name) + " is at revision " +
                            std::to_string(cur->revision) + ", not " + std::to_string(expected));
  }
  ListOptions lo;
  lo.scope = ctx.P("team");
  lo.recursive = true;
  lo.limit = 1000;
  BERTH_ASSIGN_OR_RETURN(ListResult rules, s.store.List(model::kHttpRule, lo));
  std::vector<std::string> users;
  for (const Object& o : rules.items) {
    if (Stored(o).value("certificate", "") == name) users.push_back(o.scope.substr(o.scope.find('/') + 1) + "/" + o.name);
  }
  if (!users.empty()) {
    std::string list;
    for (const std::string& u : users) list += (list.empty() ? "" : ", ") + u;
    return FailedPrecondition("certificate " + Quoted(name) + " is used by " + list +
                              ": remove it from those rules first");
  }
  Json before = Stored(*cur);
  WriteBatch b;
  Op op;
  op.type = OpType::kDelete;
  op.object = Object{model::kCertificate, ctx.P("team"), name};
  op.expected_revision = cur->revision;
  b.ops.push_back(op);
  b.audit.push_back(Audit(ctx, "delete", CertResource(name), &before, nullptr));
  auto r = s.store.Commit(b);
  if (!r.ok()) {
    if (r.status().code() == Code::kNotFound) return NotFound("certificate " + Quoted(name) + " not found");
    return r.status();
  }
  return Reply{200, {{"deleted", "certificate"}, {"name", name}, {"revision", r->revision}}, {}, nullptr};
}

// ---- snapshot --------------------------------------------------------------------------------

Result<Reply> Snapshot(Service& s, Ctx& ctx) {
  if (!ctx.who.admin && !IsGateway(ctx.who)) {
    return PermissionDenied("only platform administrators and the gateway can read the gateway "
                            "snapshot (it holds every team's certificate keys)");
  }
  BERTH_ASSIGN_OR_RETURN(gateway::Snapshot snap, routing::BuildSnapshot(s.store, RoutingOptions(s)));
  return Reply{200, routing::SnapshotToJson(snap), {{"Cache-Control", "no-store"}}, nullptr};
}

// PUT /api/v1/gateway/status: the gateway reports the snapshot revision it serves and its TCP
// route listeners. Stored as the gateway_status object; a listener that starts failing (or
// recovers) is an event on the rule's component.
Result<Reply> ReportStatus(Service& s, Ctx& ctx) {
  if (!ctx.who.admin && !IsGateway(ctx.who)) {
    return PermissionDenied("only the gateway reports the gateway's status");
  }
  BERTH_ASSIGN_OR_RETURN(Json body, JsonBody(ctx));
  int64_t revision = 0;
  struct Listener {
    std::string route, address, error;
    bool listening = false;
  };
  std::vector<Listener> tcp;
  JsonReader r(body, "");
  r.Int("revision", &revision, 0, std::numeric_limits<int64_t>::max());
  r.Arr(
      "tcp",
      [&](JsonReader& e, size_t) {
        Listener l;
        e.Str("route", &l.route, 1024);
        e.Str("address", &l.address, 300);
        e.Bool("listening", &l.listening);
        e.Str("error", &l.error, 1024);
        e.Finish();
        tcp.push_back(std::move(l));
      },
      65536);
  r.Finish();
  if (!r.ok()) return r.status();

  const std::string now = FormatTime(s.clock.Now());
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto cur = s.store.Get(model::kGatewayStatus, "", kStatusName);
    if (!cur.ok() && cur.status().code() != Code::kNotFound) return cur.status();
    Json before = cur.ok() ? Stored(*cur) : Json::object();
    std::map<std::string, Json> was;
    if (before.contains("tcp") && before["tcp"].is_array()) {
      for (const Json& t : before["tcp"]) was[t.value("route", "")] = t;
    }
    Json list = Json::array();
    std::vector<std::pair<Listener, bool>> changed;  // (listener, recovered)
    for (const Listener& l : tcp) {
      Json t = {{"route", l.route}, {"address", l.address}, {"listening", l.listening}};
      auto old = was.find(l.route);
      bool old_failed = old != was.end() && !old->second.value("listening", true);
      if (!l.listening) {
        t["error"] = l.error;
        // Since when it fails: kept across reports while the error stays the same.
        t["since"] = old_failed && old->second.value("error", "") == l.error
                         ? old->second.value("since", now)
                         : now;
        if (!old_failed || old->second.value("error", "") != l.error) changed.push_back({l, false});
      } else if (old_failed) {
        changed.push_back({l, true});
      }
      list.push_back(std::move(t));
    }
    Json after = {{"revision", revision}, {"reported_at", now}, {"tcp", list}};
    WriteBatch b;
    Op op;
    op.type = OpType::kUpsert;
    op.object = Object{model::kGatewayStatus, "", kStatusName, after.dump()};
    op.expected_revision = cur.ok() ? cur->revision : 0;
    if (!cur.ok()) op.type = OpType::kCreate;
    b.ops.push_back(std::move(op));
    auto c = s.store.Commit(b);
    if (!c.ok()) {
      if (c.status().reason() == "revision_conflict" ||
          c.status().code() == Code::kAlreadyExists) {
        continue;
      }
      return c.status();
    }
    // Events on the rule's component; the route id names it ("team/app/component/rule"), and
    // only a rule that exists with that component gets one.
    for (const auto& [l, recovered] : changed) {
      std::vector<std::string> parts;
      for (size_t i = 0, j; i <= l.route.size(); i = j + 1) {
        j = l.route.find('/', i);
        if (j == std::string::npos) j = l.route.size();
        parts.push_back(l.route.substr(i, j - i));
      }
      if (parts.size() != 4) continue;
      auto rule = s.store.Get(model::kTcpRule, parts[0] + "/" + parts[1], parts[3]);
      if (!rule.ok() || Stored(*rule).value("component", "") != parts[2]) continue;
      events::ComponentRef where{parts[0], parts[1], parts[2]};
      if (recovered) {
        (void)s.events.Record(where, events::Type::kNormal, "TcpListening",
                              "TCP rule " + Quoted(parts[3]) + " listens on " + l.address);
      } else {
        (void)s.events.Record(where, events::Type::kWarning, "TcpListenFailed",
                              "TCP rule " + Quoted(parts[3]) + ": the gateway " + l.error +
                                  "; it retries every second (another process holds the port?)");
      }
    }
    return Reply{200, {{"revision", c->revision}}, {}, nullptr};
  }
  return RevisionConflict("the gateway status is changing too often: retry");
}

// ---- domains (platform administrators) -----------------------------------------------------

Json RenderOwner(const routing::DomainOwner& d) {
  return {{"domain", d.domain},
          {"team", d.team},
          {"assigned", d.assigned},
          {"by", d.by},
          {"revision", d.revision}};
}

Status NeedAdmin(const Ctx& ctx, const std::string& action) {
  if (ctx.who.admin) return Status::Ok();
  return PermissionDenied("only platform administrators can " + action);
}

Result<Reply> ListDomains(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedAdmin(ctx, "list which team each domain belongs to"));
  BERTH_ASSIGN_OR_RETURN(std::vector<routing::DomainOwner> all, routing::ListDomainOwners(s.store));
  Json items = Json::array();
  for (const auto& d : all) items.push_back(RenderOwner(d));
  return Reply{200, {{"items", items}, {"next", ""}, {"revision", s.store.Head()}}, {}, nullptr};
}

// The HTTP rules of `team` that route exactly `domain` ("app/rule").
Result<std::vector<std::string>> RulesOn(Service& s, const std::string& team,
                                         const std::string& domain) {
  std::vector<std::string> out;
  BERTH_ASSIGN_OR_RETURN(std::vector<Object> apps, ListAll(s.store, model::kApp, team));
  for (const Object& a : apps) {
    BERTH_ASSIGN_OR_RETURN(std::vector<Object> rules,
                           ListAll(s.store, model::kHttpRule, team + "/" + a.name));
    for (const Object& r : rules) {
      if (Stored(r).value("domain", "") == domain) out.push_back(a.name + "/" + r.name);
    }
  }
  return out;
}

Result<std::string> DomainParam(const Ctx& ctx) {
  std::string d = ctx.P("domain");
  BERTH_RETURN_IF_ERROR(model::ValidateDomain(&d, "domain"));
  return d;
}

// PUT /api/v1/gateway/domains/{domain} {"team": T}: the domain (and, for a wildcard, every
// name below it) belongs to T, with or without rules, until released.
Result<Reply> AssignDomain(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedAdmin(ctx, "assign domains to teams"));
  BERTH_ASSIGN_OR_RETURN(std::string domain, DomainParam(ctx));
  BERTH_ASSIGN_OR_RETURN(Json body, JsonBody(ctx));
  std::string team;
  JsonReader r(body, "", {"domain", "assigned", "by", "revision"});
  r.Str("team", &team, 63);
  r.Finish();
  if (!r.ok()) return r.status();
  if (team.empty()) return InvalidArgument("team is required", "team");
  const std::string& suffix = s.options.domain_suffix;
  std::string bare = domain.rfind("*.", 0) == 0 ? domain.substr(2) : domain;
  if (bare == suffix || (bare.size() > suffix.size() &&
                         bare.compare(bare.size() - suffix.size() - 1, std::string::npos,
                                      "." + suffix) == 0)) {
    return InvalidArgument("domains under ." + suffix + " are berth's default domains", "domain");
  }
  auto t = s.store.Get(model::kTeam, "", team);
  if (!t.ok()) {
    if (t.status().code() == Code::kNotFound) {
      return InvalidArgument("team " + Quoted(team) + " does not exist", "team");
    }
    return t.status();
  }
  for (int attempt = 0; attempt < 5; ++attempt) {
    BERTH_ASSIGN_OR_RETURN(routing::DomainOwner other, routing::OtherHolder(s.store, domain, team));
    if (!other.team.empty()) {
      return Status(Code::kConflict, "domain_taken",
                    domain + " is held by team " + Quoted(other.team) +
                        (other.domain == domain ? "" : " (through " + other.domain + ")") +
                        ": release it first (berth domain release " + other.domain + ")",
                    "domain");
    }
    auto cur = s.store.Get(model::kDomain, "", domain);
    if (!cur.ok() && cur.status().code() != Code::kNotFound) return cur.status();
    Json after = {{"team", team}, {"assigned", true}, {"by", ctx.who.user}};
    Json before = cur.ok() ? Stored(*cur) : Json();
    WriteBatch b;
    Op op;
    op.type = cur.ok() ? OpType::kUpdate : OpType::kCreate;
    op.object = Object{model::kDomain, "", domain, after.dump()};
    op.expected_revision = cur.ok() ? cur->revision : 0;
    b.ops.push_back(std::move(op));
    b.audit.push_back(AuditRecord{ctx.who.user, "", cur.ok() ? "update" : "create",
                                  "domains/" + domain,
                                  Json({{"before", before}, {"after", after}}).dump()});
    b.audit.push_back(AuditRecord{ctx.who.user, team, "assign", "domains/" + domain,
                                  Json({{"before", nullptr}, {"after", after}}).dump()});
    auto c = s.store.Commit(b);
    if (c.ok()) {
      BERTH_ASSIGN_OR_RETURN(routing::DomainOwner d, routing::GetDomainOwner(s.store, domain));
      return Reply{200, RenderOwner(d), {}, nullptr};
    }
    if (c.status().reason() != "revision_conflict" && c.status().code() != Code::kAlreadyExists) {
      return c.status();
    }
  }
  return RevisionConflict("the domain is changing too often: retry");
}

// DELETE /api/v1/gateway/domains/{domain}: the domain belongs to nobody again (only while no
// rule of its team routes it: 409 domain_in_use otherwise).
Result<Reply> ReleaseDomain(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedAdmin(ctx, "release domains"));
  BERTH_ASSIGN_OR_RETURN(std::string domain, DomainParam(ctx));
  auto cur = s.store.Get(model::kDomain, "", domain);
  if (!cur.ok()) {
    if (cur.status().code() == Code::kNotFound) {
      return NotFound("no team holds " + domain + " by that name");
    }
    return cur.status();
  }
  Json before = Stored(*cur);
  std::string team = before.value("team", "");
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> rules, RulesOn(s, team, domain));
  if (!rules.empty()) {
    std::string list;
    for (const std::string& r : rules) list += (list.empty() ? "" : ", ") + r;
    return Status(Code::kConflict, "domain_in_use",
                  "rules of team " + Quoted(team) + " route " + domain + " (" + list +
                      "): remove them first",
                  "domain");
  }
  WriteBatch b;
  Op op;
  op.type = OpType::kDelete;
  op.object = Object{model::kDomain, "", domain};
  op.expected_revision = cur->revision;
  b.ops.push_back(std::move(op));
  b.audit.push_back(AuditRecord{ctx.who.user, "", "delete", "domains/" + domain,
                                Json({{"before", before}, {"after", nullptr}}).dump()});
  b.audit.push_back(AuditRecord{ctx.who.user, team, "release", "domains/" + domain,
                                Json({{"before", before}, {"after", nullptr}}).dump()});
  auto c = s.store.Commit(b);
  if (!c.ok()) {
    if (c.status().code() == Code::kNotFound) return NotFound("no team holds " + domain);
    return c.status();
  }
  return Reply{200, {{"deleted", "domain"}, {"name", domain}, {"revision", c->revision}}, {},
               nullptr};
}

// POST /api/v1/gateway/credential/rotate (platform administrators): a new token for the
// gateway's service account, written where the gateway reads it; the old ones are revoked.
Result<Reply> RotateCredential(Service& s, Ctx& ctx) {
  if (!ctx.who.admin) {
    return PermissionDenied("only platform administrators can rotate the gateway's credential");
  }
  if (!s.options.rotate_gateway_credential) {
    return FailedPrecondition("this server runs no gateway (--gateway off): there is no gateway "
                              "credential to rotate");
  }
  BERTH_ASSIGN_OR_RETURN(std::string id, s.options.rotate_gateway_credential(ctx.who.user));
  return Reply{200, {{"rotated", true}, {"token_id", id}, {"user", model::kGatewayUser}}, {},
               nullptr};
}

// The claims on domains/paths and TCP ports across every team, with the rule holding each
// (platform administrators: they span teams). `stale` marks a claim whose rule is gone.
Result<Reply> Claims(Service& s, Ctx& ctx) {
  if (!ctx.who.admin) {
    return PermissionDenied("only platform administrators can read the gateway claims (they span "
                            "every team)");
  }
  BERTH_ASSIGN_OR_RETURN(ListOptions o, ListOpts(ctx, ""));
  BERTH_ASSIGN_OR_RETURN(ListResult r, s.store.List(model::kGatewayClaim, o));
  Json items = Json::array();
  for (const Object& c : r.items) {
    Json owner = Stored(c);
    std::string scope = owner.value("scope", "");
    size_t slash = scope.find('/');
    auto rule = s.store.Get(owner.value("kind", ""), scope, owner.value("name", ""));
    if (!rule.ok() && rule.status().code() != Code::kNotFound) return rule.status();
    items.push_back({{"key", c.name},
                     {"kind", owner.value("kind", "")},
                     {"team", scope.substr(0, slash)},
                     {"app", slash == std::string::npos ? "" : scope.substr(slash + 1)},
                     {"rule", owner.value("name", "")},
                     {"stale", !rule.ok()},
                     {"revision", c.revision}});
  }
  return Reply{200, {{"items", items}, {"next", r.next}, {"revision", r.revision}}, {}, nullptr};
}

struct Def {
  const char* method;
  std::string pattern;
  const char* summary;
  const char* request_schema;
  const char* response_schema;
  bool is_list;
  int success;
  std::function<Result<Reply>(Service&, Ctx&)> fn;
};

}  // namespace

void AddComponentAddresses(Service& s, const std::string& team, const std::string& app, Json* c) {
  Json one = Json::array({std::move(*c)});
  AddComponentListAddresses(s, team, app, &one);
  *c = std::move(one[0]);
}

// The port a gateway bound when it was asked for port 0 ("127.0.0.1:41234" in `field` of
// DATA/gateway/gateway.json, written by the gateway once it listens); 0 when not known yet.
int BoundGatewayPort(const std::string& data_dir, const char* field) {
  std::ifstream in(data_dir + "/gateway/gateway.json");
  if (!in) return 0;
  Json j = Json::parse(in, nullptr, false);
  if (!j.is_object() || !j.contains(field) || !j[field].is_string()) return 0;
  std::string addr = j[field].get<std::string>();
  size_t colon = addr.rfind(':');
  if (colon == std::string::npos) return 0;
  int port = std::atoi(addr.c_str() + colon + 1);
  return port > 0 && port < 65536 ? port : 0;
}

void AddComponentListAddresses(Service& s, const std::string& team, const std::string& app,
                               Json* components) {
  routing::Options o = RoutingOptions(s);
  // Addresses are where the component answers through the gateway: with the configured HTTP
  // port, else the one this server's gateway bound; none while that is not known (rather than
  // a wrong one).
  bool known = true;
  if (o.http_port == 0) {
    o.http_port = BoundGatewayPort(s.options.data_dir, "http");
    known = o.http_port != 0;
    if (o.https_port == 0) o.https_port = BoundGatewayPort(s.options.data_dir, "https");
  }
  auto book = routing::AddressBook::Load(s.store, team, app, o);
  for (Json& c : *components) {
    if (!c.is_object()) continue;
    auto parsed = model::ParseComponent(c);
    std::vector<std::string> addrs;
    if (known && book.ok() && parsed.ok()) addrs = book->Addresses(parsed->name, parsed->ports);
    c["addresses"] = addrs;
  }
  AddComponentProcessTypes(s, team, app, components);
}

void RegisterGatewayRoutes(Service& svc) {
  const std::string T = "/api/v1/teams/{team}";
  const std::string A = T + "/apps/{app}";
  auto viewer_list = [](const char* kind, bool team_wide) {
    return [kind, team_wide](Service& s, Ctx& c) -> Result<Reply> {
      BERTH_RETURN_IF_ERROR(NeedRole(s, c, Role::kViewer, "read gateway rules"));
      if (team_wide) return ListReply(s, c, kind, c.P("team"), true);
      BERTH_RETURN_IF_ERROR(AppExists(s, c.P("team"), c.P("app")));
      return ListReply(s, c, kind, AppScope(c), false);
    };
  };
  std::vector<Def> defs = {
      {"GET", T + "/http-rules", "Every HTTP rule of the team's apps", "", "HttpRule", true, 200,
       viewer_list(model::kHttpRule, true)},
      {"GET", A + "/http-rules", "List the app's HTTP rules (domains)", "", "HttpRule", true, 200,
       viewer_list(model::kHttpRule, false)},
      {"POST", A + "/http-rules", "Route a domain (and path, headers, cookies) to components",
       "HttpRule", "HttpRule", false, 201, CreateHttpRule},
      {"GET", A + "/http-rules/{rule}", "Show an HTTP rule", "", "HttpRule", false, 200,
       [](Service& s, Ctx& c) { return GetRule(s, c, kHttp); }},
      {"PUT", A + "/http-rules/{rule}", "Replace an HTTP rule", "HttpRule", "HttpRule", false, 200,
       UpdateHttpRule},
      {"PATCH", A + "/http-rules/{rule}", "Change some fields of an HTTP rule (JSON merge patch)",
       "HttpRule", "HttpRule", false, 200, UpdateHttpRule},
      {"DELETE", A + "/http-rules/{rule}", "Remove an HTTP rule", "", "Deleted", false, 200,
       [](Service& s, Ctx& c) { return DeleteRule(s, c, kHttp); }},

      {"GET", T + "/tcp-rules", "Every TCP rule of the team's apps", "", "TcpRule", true, 200,
       viewer_list(model::kTcpRule, true)},
      {"GET", A + "/tcp-rules", "List the app's TCP rules (listen ports)", "", "TcpRule", true, 200,
       viewer_list(model::kTcpRule, false)},
      {"POST", A + "/tcp-rules", "Forward a gateway TCP port to a component port", "TcpRule",
       "TcpRule", false, 201, CreateTcpRule},
      {"GET", A + "/tcp-rules/{rule}", "Show a TCP rule", "", "TcpRule", false, 200,
       [](Service& s, Ctx& c) { return GetRule(s, c, kTcp); }},
      {"PUT", A + "/tcp-rules/{rule}", "Replace a TCP rule", "TcpRule", "TcpRule", false, 200,
       UpdateTcpRule},
      {"PATCH", A + "/tcp-rules/{rule}", "Change some fields of a TCP rule (JSON merge patch)",
       "TcpRule", "TcpRule", false, 200, UpdateTcpRule},
      {"DELETE", A + "/tcp-rules/{rule}", "Remove a TCP rule", "", "Deleted", false, 200,
       [](Service& s, Ctx& c) { return DeleteRule(s, c, kTcp); }},

      {"GET", T + "/certificates", "List the team's TLS certificates (never their keys)", "",
       "Certificate", true, 200,
       [](Service& s, Ctx& c) -> Result<Reply> {
         BERTH_RETURN_IF_ERROR(NeedRole(s, c, Role::kViewer, "read certificates"));
         return ListReply(s, c, model::kCertificate, c.P("team"), false);
       }},
      {"POST", T + "/certificates", "Upload a PEM certificate (+ chain) and its private key",
       "CertificateInput", "Certificate", false, 201, CreateCertificate},
      {"GET", T + "/certificates/{certificate}", "Show a certificate (never its key)", "",
       "Certificate", false, 200,
       [](Service& s, Ctx& c) -> Result<Reply> {
         BERTH_RETURN_IF_ERROR(NeedRole(s, c, Role::kViewer, "read certificates"));
         auto o = s.store.Get(model::kCertificate, c.P("team"), c.P("certificate"));
         if (!o.ok() && o.status().code() == Code::kNotFound) {
           return NotFound("certificate " + Quoted(c.P("certificate")) + " not found");
         }
         if (!o.ok()) return o.status();
         return Reply{200, Render(s, *o), {}, nullptr};
       }},
      {"PUT", T + "/certificates/{certificate}", "Replace a certificate and key (renewal)",
       "CertificateInput", "Certificate", false, 200, ReplaceCertificate},
      {"DELETE", T + "/certificates/{certificate}", "Delete a certificate no rule uses", "",
       "Deleted", false, 200, DeleteCertificate},

      {"GET", "/api/v1/gateway/snapshot",
       "The gateway's routing snapshot at a store revision (platform administrators)", "",
       "GatewaySnapshot", false, 200, Snapshot},
      {"GET", "/api/v1/gateway/claims",
       "Which rule holds each domain/path and TCP port, across teams (platform administrators)",
       "", "GatewayClaim", true, 200, Claims},
  };
  defs.push_back({"GET", "/api/v1/gateway/domains",
                  "Which team each domain belongs to (platform administrators)", "",
                  "DomainOwner", true, 200, ListDomains});
  defs.push_back({"PUT", "/api/v1/gateway/domains/{domain}",
                  "Assign a domain (or wildcard) to a team (platform administrators)",
                  "DomainAssignment", "DomainOwner", false, 200, AssignDomain});
  defs.push_back({"DELETE", "/api/v1/gateway/domains/{domain}",
                  "Release a domain no rule routes (platform administrators)", "", "Deleted",
                  false, 200, ReleaseDomain});
  defs.push_back({"POST", "/api/v1/gateway/credential/rotate",
                  "Give the gateway a new token and revoke its old ones (platform administrators)",
                  "", "CredentialRotated", false, 200, RotateCredential});
  defs.push_back({"PUT", "/api/v1/gateway/status",
                  "The gateway reports the revision it serves and its TCP listeners (the gateway's "
                  "service account)",
                  "GatewayStatus", "", false, 200, ReportStatus});
  for (Def& d : defs) {
    Route r;
    r.method = d.method;
    r.pattern = d.pattern;
    r.summary = d.summary;
    r.tag = "gateway";
    r.service_account = r.pattern == "/api/v1/gateway/snapshot" || r.pattern == "/api/v1/gateway/status";
    r.request_schema = d.request_schema;
    r.response_schema = d.response_schema;
    r.is_list = d.is_list;
    r.success_status = d.success;
    Service* sp = &svc;
    auto fn = d.fn;
    r.fn = [sp, fn](Ctx& c) { return fn(*sp, c); };
    svc.router.Add(std::move(r));
  }
}

}  // namespace berth::api
