#include "routing/claims.h"

#include <set>

#include "core/log.h"
#include "model/model.h"
#include "routing/domains.h"

namespace berth::routing {
namespace {

Json Body(const Object& o) {
  Json j = Json::parse(o.body, nullptr, false);
  return j.is_object() ? j : Json::object();
}

// The claim key of a stored rule; "" when it does not parse (it then holds no claim the API
// could have written).
std::string RuleKey(const std::string& kind, const Json& body) {
  if (kind == model::kHttpRule) {
    auto r = model::ParseHttpRule(body);
    return r.ok() ? model::HttpRuleKey(*r) : std::string();
  }
  if (kind == model::kTcpRule) {
    auto r = model::ParseTcpRule(body);
    return r.ok() ? model::TcpRuleKey(*r) : std::string();
  }
  return std::string();
}

ClaimOwner OwnerOf(const Object& claim) {
  Json c = Body(claim);
  return ClaimOwner{c.value("kind", ""), c.value("scope", ""), c.value("name", "")};
}

Op Delete(const std::string& kind, const std::string& scope, const std::string& name,
          int64_t revision) {
  Op op;
  op.type = OpType::kDelete;
  op.object = Object{kind, scope, name};
  op.expected_revision = revision;
  return op;
}

// Appends the delete of `rule`'s claim when the claim exists and is the rule's.
Status AddClaimRelease(Store& store, const Object& rule, std::set<std::string>* seen,
                       std::vector<Op>* ops) {
  std::string key = RuleKey(rule.kind, Body(rule));
  if (key.empty() || !seen->insert(key).second) return Status::Ok();
  auto claim = store.Get(model::kGatewayClaim, "", key);
  if (!claim.ok()) {
    return claim.status().code() == Code::kNotFound ? Status::Ok() : claim.status();
  }
  ClaimOwner owner = OwnerOf(*claim);
  if (owner.kind != rule.kind || owner.scope != rule.scope || owner.name != rule.name) {
    return Status::Ok();  // another rule's: not ours to release
  }
  ops->push_back(Delete(model::kGatewayClaim, "", key, claim->revision));
  return Status::Ok();
}

}  // namespace

Result<std::vector<Op>> ClaimReleaseOps(Store& store, const std::string& scope) {
  // Rule names repeat across apps, so a team is walked app by app rather than with one
  // recursive list (whose paging by name would not be exact).
  std::vector<std::string> app_scopes;
  if (scope.find('/') == std::string::npos) {
    BERTH_ASSIGN_OR_RETURN(std::vector<Object> apps, ListAll(store, model::kApp, scope));
    for (const Object& a : apps) app_scopes.push_back(scope + "/" + a.name);
  } else {
    app_scopes.push_back(scope);
  }
  std::vector<Op> ops;
  std::set<std::string> seen;
  std::set<std::string> going;  // "team/app/rule" of the HTTP rules that go
  for (const std::string& s : app_scopes) {
    for (const char* kind : {model::kHttpRule, model::kTcpRule}) {
      BERTH_ASSIGN_OR_RETURN(std::vector<Object> rules, ListAll(store, kind, s));
      for (const Object& r : rules) {
        BERTH_RETURN_IF_ERROR(AddClaimRelease(store, r, &seen, &ops));
        if (r.kind == model::kHttpRule) going.insert(r.scope + "/" + r.name);
      }
    }
  }
  // The team's domains: all of them with the team; with an app, those its rules alone routed
  // (and the team did not have assigned).
  const std::string team = scope.substr(0, scope.find('/'));
  BERTH_ASSIGN_OR_RETURN(std::vector<Op> domains,
                         scope.find('/') == std::string::npos
                             ? TeamDomainOps(store, team)
                             : ReleaseDomainOps(store, team, going));
  for (Op& d : domains) ops.push_back(std::move(d));
  return ops;
}

Result<std::vector<Op>> ComponentRuleOps(Store& store, const std::string& team,
                                         const std::string& app, const std::string& component,
                                         std::vector<std::string>* changed) {
  const std::string scope = team + "/" + app;
  std::vector<Op> ops;
  std::set<std::string> seen;
  std::set<std::string> going;  // "team/app/rule" of the HTTP rules deleted
  auto drop = [&](const Object& rule) -> Status {
    ops.push_back(Delete(rule.kind, rule.scope, rule.name, rule.revision));
    if (changed) changed->push_back(rule.kind + "/" + rule.name);
    if (rule.kind == model::kHttpRule) going.insert(rule.scope + "/" + rule.name);
    return AddClaimRelease(store, rule, &seen, &ops);
  };
  BERTH_ASSIGN_OR_RETURN(std::vector<Object> tcps, ListAll(store, model::kTcpRule, scope));
  for (const Object& o : tcps) {
    auto rule = model::ParseTcpRule(Body(o));
    if (rule.ok() && rule->component == component) BERTH_RETURN_IF_ERROR(drop(o));
  }
  BERTH_ASSIGN_OR_RETURN(std::vector<Object> https, ListAll(store, model::kHttpRule, scope));
  for (const Object& o : https) {
    auto rule = model::ParseHttpRule(Body(o));
    if (!rule.ok()) continue;
    std::vector<model::RuleBackend> rest;
    bool weighted = false;
    for (const model::RuleBackend& b : rule->backends) {
      if (b.component == component) continue;
      weighted |= b.weight > 0;
      rest.push_back(b);
    }
    if (rest.size() == rule->backends.size()) continue;  // does not route to it
    if (!weighted) {
      BERTH_RETURN_IF_ERROR(drop(o));
      continue;
    }
    // The rule's key (domain, path, matches) is unchanged: its claim stays.
    rule->backends = std::move(rest);
    Op op;
    op.type = OpType::kUpdate;
    op.object = Object{o.kind, o.scope, o.name, model::ToJson(*rule).dump()};
    op.expected_revision = o.revision;
    ops.push_back(std::move(op));
    if (changed) changed->push_back(o.kind + "/" + o.name);
  }
  if (!going.empty()) {
    BERTH_ASSIGN_OR_RETURN(std::vector<Op> domains, ReleaseDomainOps(store, team, going));
    for (Op& d : domains) ops.push_back(std::move(d));
  }
  return ops;
}

Result<int> SweepStaleClaims(Store& store) {
  BERTH_ASSIGN_OR_RETURN(std::vector<Object> claims, ListAll(store, model::kGatewayClaim, ""));
  int deleted = 0;
  for (const Object& c : claims) {
    ClaimOwner owner = OwnerOf(c);
    bool stale = owner.kind.empty() || owner.name.empty();
    if (!stale) {
      auto rule = store.Get(owner.kind, owner.scope, owner.name);
      if (!rule.ok() && rule.status().code() != Code::kNotFound) return rule.status();
      stale = !rule.ok() || RuleKey(owner.kind, Body(*rule)) != c.name;
    }
    if (!stale) continue;
    WriteBatch b;
    b.ops.push_back(Delete(model::kGatewayClaim, "", c.name, c.revision));
    auto r = store.Commit(b);
    if (r.ok()) {
      ++deleted;
      continue;
    }
    // Taken over or released meanwhile: the API's write won, which is right.
    if (r.status().code() == Code::kNotFound || r.status().reason() == "revision_conflict") {
      continue;
    }
    return r.status();
  }
  if (deleted > 0) {
    Logger("routing")->info("msg=\"removed stale gateway claims\" count={}", deleted);
  }
  return deleted;
}

}  // namespace berth::routing
