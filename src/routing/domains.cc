#include "routing/domains.h"

#include <map>

#include "core/log.h"
#include "model/model.h"

namespace berth::routing {
namespace {

Json Body(const Object& o) {
  Json j = Json::parse(o.body, nullptr, false);
  return j.is_object() ? j : Json::object();
}

DomainOwner OwnerOf(const Object& o) {
  Json b = Body(o);
  return DomainOwner{o.name, b.value("team", ""), b.value("assigned", false), b.value("by", ""),
                     o.revision};
}

bool IsWildcard(const std::string& d) { return d.rfind("*.", 0) == 0; }

// "a.b.example.com" → "*.b.example.com", "*.example.com", "*.com"; for "*.example.com" → "*.com".
std::vector<std::string> WildcardsAbove(const std::string& domain) {
  std::string base = IsWildcard(domain) ? domain.substr(2) : domain;
  std::vector<std::string> out;
  for (size_t dot = base.find('.'); dot != std::string::npos; dot = base.find('.', dot + 1)) {
    out.push_back("*." + base.substr(dot + 1));
  }
  return out;
}

// Whether `name` (exact or wildcard) lies strictly below the wildcard's base ("x.example.com"
// and "*.x.example.com" lie below "*.example.com").
bool Below(const std::string& name, const std::string& wildcard) {
  std::string base = wildcard.substr(1);  // ".example.com"
  std::string n = IsWildcard(name) ? name.substr(1) : name;
  return n.size() > base.size() && n.compare(n.size() - base.size(), base.size(), base) == 0;
}

Result<std::map<std::string, std::vector<std::string>>> TeamRuleDomains(
    Store& store, const std::string& team, const std::set<std::string>& going) {
  std::map<std::string, std::vector<std::string>> used;  // domain → "app/rule"
  BERTH_ASSIGN_OR_RETURN(std::vector<Object> apps, ListAll(store, model::kApp, team));
  for (const Object& a : apps) {
    std::string scope = team + "/" + a.name;
    BERTH_ASSIGN_OR_RETURN(std::vector<Object> rules, ListAll(store, model::kHttpRule, scope));
    for (const Object& r : rules) {
      if (going.count(scope + "/" + r.name)) continue;
      auto rule = model::ParseHttpRule(Body(r));
      if (rule.ok()) used[rule->domain].push_back(a.name + "/" + r.name);
    }
  }
  return used;
}

Op DeleteOp(const DomainOwner& d) {
  Op op;
  op.type = OpType::kDelete;
  op.object = Object{model::kDomain, "", d.domain};
  op.expected_revision = d.revision;
  return op;
}

}  // namespace

Result<DomainOwner> GetDomainOwner(Store& store, const std::string& domain) {
  BERTH_ASSIGN_OR_RETURN(Object o, store.Get(model::kDomain, "", domain));
  return OwnerOf(o);
}

Result<std::vector<DomainOwner>> ListDomainOwners(Store& store) {
  BERTH_ASSIGN_OR_RETURN(std::vector<Object> all, ListAll(store, model::kDomain, ""));
  std::vector<DomainOwner> out;
  for (const Object& o : all) out.push_back(OwnerOf(o));
  return out;
}

Result<DomainOwner> OtherHolder(Store& store, const std::string& domain, const std::string& team) {
  std::vector<std::string> names = {domain};
  for (const std::string& w : WildcardsAbove(domain)) names.push_back(w);
  for (const std::string& n : names) {
    auto o = store.Get(model::kDomain, "", n);
    if (!o.ok()) {
      if (o.status().code() == Code::kNotFound) continue;
      return o.status();
    }
    DomainOwner d = OwnerOf(*o);
    if (d.team != team) return d;
  }
  if (IsWildcard(domain)) {
    // Everything below the wildcard's base is its territory: a scan of the owners (wildcards
    // are rare writes).
    BERTH_ASSIGN_OR_RETURN(std::vector<DomainOwner> all, ListDomainOwners(store));
    for (const DomainOwner& d : all) {
      if (d.team != team && Below(d.domain, domain)) return d;
    }
  }
  return DomainOwner{};
}

Result<std::vector<Op>> ClaimDomainOps(Store& store, const std::string& team,
                                       const std::string& domain, const std::string& actor) {
  BERTH_ASSIGN_OR_RETURN(DomainOwner other, OtherHolder(store, domain, team));
  if (!other.team.empty()) {
    std::string what = other.domain == domain ? domain : domain + " (through " + other.domain + ")";
    return Status(Code::kConflict, "domain_taken",
                  what + " belongs to another team: a domain is routed by the team that claimed "
                         "it first or the team a platform administrator assigned it to",
                  "domain");
  }
  std::vector<Op> ops;
  auto own = store.Get(model::kDomain, "", domain);
  if (own.ok()) {
    // Ours: re-asserted with compare-and-set, so an administrator's release or reassignment
    // racing with this write fails one of the two.
    Op touch;
    touch.type = OpType::kUpdate;
    touch.object = Object{model::kDomain, "", domain, own->body};
    touch.expected_revision = own->revision;
    ops.push_back(std::move(touch));
    return ops;
  }
  if (own.status().code() != Code::kNotFound) return own.status();
  Op create;
  create.type = OpType::kCreate;  // fails the commit if another team got there first
  create.object = Object{model::kDomain, "", domain,
                         Json({{"team", team}, {"assigned", false}, {"by", actor}}).dump()};
  ops.push_back(std::move(create));
  return ops;
}

Result<std::vector<Op>> ReleaseDomainOps(Store& store, const std::string& team,
                                         const std::set<std::string>& going) {
  BERTH_ASSIGN_OR_RETURN(auto used, TeamRuleDomains(store, team, going));
  BERTH_ASSIGN_OR_RETURN(std::vector<DomainOwner> all, ListDomainOwners(store));
  std::vector<Op> ops;
  for (const DomainOwner& d : all) {
    if (d.team != team || d.assigned || used.count(d.domain)) continue;
    ops.push_back(DeleteOp(d));
  }
  return ops;
}

Result<std::vector<Op>> TeamDomainOps(Store& store, const std::string& team) {
  BERTH_ASSIGN_OR_RETURN(std::vector<DomainOwner> all, ListDomainOwners(store));
  std::vector<Op> ops;
  for (const DomainOwner& d : all) {
    if (d.team == team) ops.push_back(DeleteOp(d));
  }
  return ops;
}

Result<int> BackfillDomainOwners(Store& store) {
  BERTH_ASSIGN_OR_RETURN(std::vector<Object> teams, ListAll(store, model::kTeam, ""));
  int written = 0;
  for (const Object& t : teams) {
    BERTH_ASSIGN_OR_RETURN(auto used, TeamRuleDomains(store, t.name, {}));
    for (const auto& [domain, rules] : used) {
      auto own = store.Get(model::kDomain, "", domain);
      if (own.ok()) continue;
      if (own.status().code() != Code::kNotFound) return own.status();
      auto ops = ClaimDomainOps(store, t.name, domain, "berth");
      if (!ops.ok()) {
        Logger("routing")->warn(
            "msg=\"a domain is routed by more than one team; it stays unowned until an "
            "administrator assigns it\" domain={} team={} reason=\"{}\"",
            domain, t.name, ops.status().message());
        continue;
      }
      WriteBatch b;
      b.ops = std::move(*ops);
      auto r = store.Commit(b);
      if (!r.ok()) {
        if (r.status().code() == Code::kAlreadyExists) continue;  // the API was quicker
        return r.status();
      }
      ++written;
    }
  }
  if (written > 0) {
    Logger("routing")->info("msg=\"recorded the owners of domains routed before\" count={}",
                            written);
  }
  return written;
}

}  // namespace berth::routing
