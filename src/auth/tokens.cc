#include "auth/tokens.h"

#include "core/log.h"
#include "model/model.h"

namespace berth::auth {
namespace {

Json Body(const Object& o) {
  Json j = Json::parse(o.body, nullptr, false);
  return j.is_object() ? j : Json::object();
}

}  // namespace

Result<int> MigrateTokenScopes(Store& store) {
  BERTH_ASSIGN_OR_RETURN(std::vector<Object> users, ListAll(store, model::kUser, ""));
  int moved = 0;
  for (const Object& u : users) {
    BERTH_ASSIGN_OR_RETURN(std::vector<Object> old, ListAll(store, model::kToken, u.name));
    if (old.empty()) continue;
    WriteBatch b;
    for (const Object& t : old) {
      Op del;
      del.type = OpType::kDelete;
      del.object = Object{model::kToken, t.scope, t.name};
      del.expected_revision = t.revision;
      b.ops.push_back(std::move(del));
      Op put;
      put.type = OpType::kUpsert;
      put.object = Object{model::kToken, model::TokenScope(u.name), t.name, t.body, t.index_key};
      b.ops.push_back(std::move(put));
    }
    b.audit.push_back({"berth", "", "update", "users/" + u.name + "/tokens",
                       Json({{"moved", old.size()}, {"to", model::TokenScope(u.name)}}).dump()});
    BERTH_RETURN_IF_ERROR(store.Commit(b).status());
    moved += static_cast<int>(old.size());
  }
  if (moved > 0) {
    Logger("auth")->info("msg=\"moved tokens to their users' own scopes\" count={}", moved);
  }
  return moved;
}

Result<int> SweepExpiredTokens(Store& store, int64_t now_ms) {
  BERTH_ASSIGN_OR_RETURN(std::vector<Object> users, ListAll(store, model::kUser, ""));
  int deleted = 0;
  for (const Object& u : users) {
    BERTH_ASSIGN_OR_RETURN(std::vector<Object> tokens,
                           ListAll(store, model::kToken, model::TokenScope(u.name)));
    WriteBatch b;
    for (const Object& t : tokens) {
      int64_t exp = Body(t).value("expires_at_ms", int64_t{0});
      if (exp == 0 || exp > now_ms) continue;
      Op del;
      del.type = OpType::kDelete;
      del.object = Object{model::kToken, t.scope, t.name};
      del.expected_revision = t.revision;
      b.ops.push_back(std::move(del));
    }
    if (b.ops.empty()) continue;
    auto r = store.Commit(b);
    if (!r.ok()) {
      // Revoked or used (last_used_at) meanwhile: the next sweep looks again.
      if (r.status().reason() == "revision_conflict" || r.status().code() == Code::kNotFound) {
        continue;
      }
      return r.status();
    }
    deleted += static_cast<int>(b.ops.size());
  }
  if (deleted > 0) Logger("auth")->info("msg=\"deleted expired tokens\" count={}", deleted);
  return deleted;
}

Op RevokeAllTokensOp(const std::string& user) {
  Op op;
  op.type = OpType::kDeleteTree;
  op.object.scope = model::TokenScope(user);
  return op;
}

}  // namespace berth::auth
