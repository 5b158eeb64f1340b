// Domain ownership (docs/gateway.md "Domains belong to teams", docs/security.md): a domain
// belongs to one team — the team whose HTTP rule claimed it first, or the team a platform
// administrator assigned it to — and only that team's rules may route it, with any path.
// Ownership also runs through wildcards: a team holding `*.example.com` holds every name below
// example.com (the gateway's wildcards match at any depth), so no other team may route
// `x.example.com`, and a team holding `x.example.com` keeps every other team from
// `*.example.com`.
//
// Owners are `domain` objects (model::kDomain, scope "", named by the domain) written in the
// same commit as the rule that claims them, with compare-and-set, so two teams racing for the
// same name cannot both win. A claimed (not assigned) domain is released with its team's last
// rule on it; an assigned one stays until an administrator releases it or the team is deleted.
//
// Thread-safety: free functions over a Store; they only read it and return ops (except
// BackfillDomainOwners, which commits).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/store.h"

namespace berth::routing {

struct DomainOwner {
  std::string domain;  // "shop.example.com" or "*.example.com"
  std::string team;
  bool assigned = false;  // by a platform administrator (kept without rules)
  std::string by;         // who assigned it, or whose rule claimed it
  int64_t revision = 0;
};

// The team that holds `domain`, directly or through a related name: the exact owner, an owner
// of a wildcard above it, and — for a wildcard — an owner of any name below it. Returns the
// first holder that is not `team` (nullopt-like: an empty DomainOwner when none).
Result<DomainOwner> OtherHolder(Store& store, const std::string& domain, const std::string& team);

// The ops that make `team` hold `domain` for a rule write, to commit with the rule: create the
// owner object, or re-assert the team's own one (compare-and-set on its revision). 409
// domain_taken (field "domain") when another team holds it or a related name.
Result<std::vector<Op>> ClaimDomainOps(Store& store, const std::string& team,
                                       const std::string& domain, const std::string& actor);

// The ops releasing the domains `team` claimed (not the assigned ones) that no HTTP rule of
// the team routes once the rules named in `going` ("team/app/rule") are gone.
Result<std::vector<Op>> ReleaseDomainOps(Store& store, const std::string& team,
                                         const std::set<std::string>& going);

// The ops deleting every domain `team` holds, assigned or claimed (the team is deleted).
Result<std::vector<Op>> TeamDomainOps(Store& store, const std::string& team);

// Every domain owner, in name order.
Result<std::vector<DomainOwner>> ListDomainOwners(Store& store);

// The owner of exactly `domain` (not_found when nobody holds it by that name).
Result<DomainOwner> GetDomainOwner(Store& store, const std::string& domain);

// Writes an owner object for every domain an HTTP rule routes that has none yet (rules made
// before domains had owners): the team of the first rule found holds it. Returns how many it
// wrote; domains two teams already share are left unowned and logged.
Result<int> BackfillDomainOwners(Store& store);

}  // namespace berth::routing
