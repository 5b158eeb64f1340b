// Gateway claims (docs/gateway.md "Control plane"): the gateway_claim objects that make a
// domain/path/matches or a TCP listen port belong to one rule across all teams. The API writes
// a claim in the same commit as its rule; these functions release claims when the rules go
// with their app, team or component, and sweep claims whose rule is gone.
//
// Thread-safety: free functions over a Store; they only read it and return ops (except
// SweepStaleClaims, which commits), so calls may run concurrently. Every returned op expects
// the revision it read: a concurrent change fails the caller's commit rather than deleting
// or rewriting something newer.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "store/store.h"

namespace berth::routing {

// The claim's body: which rule holds it.
struct ClaimOwner {
  std::string kind;   // model::kHttpRule / kTcpRule
  std::string scope;  // "team/app"
  std::string name;   // the rule's name
};

// Deletes of the claims held by the HTTP and TCP rules at or below `scope` ("team" or
// "team/app"), for the commit that deletes those rules with their app or team; with them the
// team's domains (routing/domains.h): every one for a team, the ones only the app's rules
// routed for an app.
Result<std::vector<Op>> ClaimReleaseOps(Store& store, const std::string& scope);

// Ops for the commit that deletes component `component` of `team/app`: its TCP rules and the
// HTTP rules that route only to it are deleted with their claims; an HTTP rule that also
// routes to other components loses its backends on this one (and is deleted with its claim
// when no backend with a weight above 0 remains). Domains no rule of the team routes any more
// are released (unless assigned). `changed` (optional) gets "kind/name" of
// every rule touched, for the answer.
Result<std::vector<Op>> ComponentRuleOps(Store& store, const std::string& team,
                                         const std::string& app, const std::string& component,
                                         std::vector<std::string>* changed = nullptr);

// Deletes every claim whose rule no longer exists, or no longer routes what the claim names
// (claims left by deletes from before claims were released with their rules). Returns how
// many it deleted. Safe to run while the API serves: each delete expects the claim's
// revision, and a claim taken over meanwhile is left alone.
Result<int> SweepStaleClaims(Store& store);

}  // namespace berth::routing
