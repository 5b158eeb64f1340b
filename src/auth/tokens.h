// Housekeeping of API tokens (docs/security.md "Identity, teams and the gateway"): tokens live
// under model::TokenScope(user); these functions move tokens stored by older versions (under
// the bare user name, a scope a team of that name shared) and delete expired ones.
// Thread-safety: free functions over a Store; safe to call while the API serves (every write
// expects the revision it read, so a concurrent change is never overwritten).
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "store/store.h"

namespace berth::auth {

// Moves every token stored under a user's bare name (scope "<user>", before tokens had their
// own scope) to model::TokenScope(user), keeping its id, body and hash. Returns how many moved.
Result<int> MigrateTokenScopes(Store& store);

// Deletes every token whose expires_at_ms is set and at or before `now_ms`. Returns how many.
Result<int> SweepExpiredTokens(Store& store, int64_t now_ms);

// The op that revokes every token of `user` (all of them, whatever their number: one tree
// delete of the user's token scope), for the commit that changes their password or deletes
// them.
Op RevokeAllTokensOp(const std::string& user);

}  // namespace berth::auth
