// Who is calling and what they may do. Authenticate turns a bearer token into a Principal;
// TeamRole answers the caller's role in a team (platform administrators act as owners
// everywhere). A caller who is not a member gets not_found for the team, so team names do
// not leak to outsiders.
// Thread-safety: thread-safe; the store does the locking.
#pragma once

#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "model/model.h"
#include "store/store.h"

namespace berth::auth {

struct Principal {
  std::string user;
  bool admin = false;       // platform administrator
  std::string token_id;
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
  Store& store_;
  const Clock& clock_;
};

}  // namespace berth::auth
