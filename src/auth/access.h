// Who is calling and what they may do. Authenticate turns a bearer token into a Principal;
// TeamRole answers the caller's role in a team (platform administrators act as owners
// everywhere). A caller who is not a member gets not_found for the team, so team names do
// not leak to outsiders.
//
// Every API request asks both questions, so answers are cached in memory. The cache is kept
// exact by the store's change feed: before answering, Access checks whether the store head
// moved and, if any change since touched a user, token, team or membership, drops the cache.
// A revoked token or a removed member therefore loses access with the very next request.
// Thread-safety: thread-safe (one mutex around the cache; store calls happen outside it
// except for the feed catch-up).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "core/clock.h"
#include "core/status.h"
#include "model/model.h"
#include "store/store.h"

namespace berth::auth {

struct Principal {
  std::string user;
  bool admin = false;       // platform administrator
  std::string token_id;
  // A service account of berth (the gateway): only the routes marked for service accounts
  // answer it (api/router.h Route::service_account), whatever else it is.
  bool service = false;
};

class Access {
 public:
  Access(Store& store, const Clock& clock) : store_(store), clock_(clock) {}

  // `authorization` is the Authorization header value ("Bearer bth_...").
  Result<Principal> Authenticate(const std::string& authorization);

  // The caller's role in `team`; not_found when the team does not exist or the caller is no
  // member of it.
  Result<model::Role> TeamRole(const Principal& who, const std::string& team);

  // Succeeds when the caller's role in `team` is at least `min`; otherwise permission_denied
  // with a message saying which role `action` needs ("create apps").
  Result<model::Role> Require(const Principal& who, const std::string& team, model::Role min,
                              const std::string& action);

 private:
  struct CachedToken {
    Principal principal;
    int64_t expires_at_ms = 0;
    int64_t last_used_at_ms = 0;
    std::string scope;  // the token object's scope (its user)
  };
  Result<Principal> AuthenticateUncached(const std::string& hash, CachedToken* out);
  Result<model::Role> TeamRoleUncached(const Principal& who, const std::string& team);
  // Drops cached answers that a change since the last sync may have made wrong.
  void SyncLocked();
  void TouchLastUsed(const std::string& hash, const CachedToken& token, int64_t now_ms);

  static constexpr size_t kMaxEntries = 20000;
  static constexpr int64_t kLastUsedResolutionMs = 10 * 60 * 1000;

  Store& store_;
  const Clock& clock_;
  std::mutex mu_;
  int64_t synced_head_ = -1;                                    // guarded by mu_
  std::unordered_map<std::string, CachedToken> tokens_;         // by token hash; guarded by mu_
  std::map<std::pair<std::string, std::string>, Result<model::Role>> roles_;  // guarded by mu_
};

}  // namespace berth::auth
