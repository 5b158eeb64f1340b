#include "auth/access.h"

#include "auth/crypto.h"

namespace berth::auth {
namespace {

bool AffectsAccess(const std::string& kind) {
  return kind == model::kToken || kind == model::kUser || kind == model::kTeam ||
         kind == model::kMember;
}

}  // namespace

void Access::SyncLocked() {
  int64_t head = store_.Head();
  if (head == synced_head_) return;
  bool drop = synced_head_ < 0;
  int64_t cursor = synced_head_;
  while (!drop && cursor < head) {
    auto changes = store_.ChangesSince(cursor, 1000);
    if (!changes.ok() || changes->empty()) {
      drop = true;  // compacted or unreadable: start over rather than guess
      break;
    }
    for (const Change& c : *changes) {
      cursor = c.revision;
      if (AffectsAccess(c.object.kind)) drop = true;
    }
  }
  if (drop || tokens_.size() > kMaxEntries || roles_.size() > kMaxEntries) {
    tokens_.clear();
    roles_.clear();
  }
  synced_head_ = std::max(head, cursor);
}

Result<Principal> Access::AuthenticateUncached(const std::string& hash, CachedToken* out) {
  auto found = store_.FindByIndex(model::kToken, hash);
  if (!found.ok()) return found.status();
  if (found->empty()) return Unauthenticated("the token is not valid (revoked or unknown): log in again");
  Json body = Json::parse(found->front().body, nullptr, false);
  auto token = model::TokenFromJson(body);
  if (!token.ok()) return Internal("stored token is unreadable: " + token.status().message());
  auto user = store_.Get(model::kUser, "", token->user);
  if (!user.ok()) {
    if (user.status().code() == Code::kNotFound) return Unauthenticated("the token's user no longer exists");
    return user.status();
  }
  Json u = Json::parse(user->body, nullptr, false);
  if (u.value("disabled", false)) return Unauthenticated("user \"" + token->user + "\" is disabled");
  out->principal = Principal{token->user, u.value("admin", false), token->id,
                             u.value("service", false)};
  out->expires_at_ms = token->expires_at_ms;
  out->last_used_at_ms = token->last_used_at_ms;
  out->scope = found->front().scope;
  return out->principal;
}

Result<Principal> Access::Authenticate(const std::string& authorization) {
  static const std::string kBearer = "Bearer ";
  if (authorization.empty()) {
    return Unauthenticated("this request needs a token: log in with `berth login --server URL --user NAME` or send "
                           "\"Authorization: Bearer <token>\"");
  }
  if (authorization.size() <= kBearer.size() ||
      authorization.compare(0, kBearer.size(), kBearer) != 0) {
    return Unauthenticated("the Authorization header must be \"Bearer <token>\"");
  }
  std::string hash = HashToken(authorization.substr(kBearer.size()));
  int64_t now = UnixMillis(clock_.Now());
  CachedToken token;
  bool cached = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    SyncLocked();
    auto it = tokens_.find(hash);
    if (it != tokens_.end()) {
      token = it->second;
      cached = true;
    }
  }
  if (!cached) {
    auto p = AuthenticateUncached(hash, &token);
    if (!p.ok()) return p.status();  // failures are not cached: they are rare and cheap
    std::lock_guard<std::mutex> l(mu_);
    tokens_[hash] = token;
  }
  if (token.expires_at_ms != 0 && token.expires_at_ms <= now) {
    return Unauthenticated("the token expired at " + FormatTime(FromUnixMillis(token.expires_at_ms)) +
                           ": log in again");
  }
  if (now - token.last_used_at_ms >= kLastUsedResolutionMs) TouchLastUsed(hash, token, now);
  return token.principal;
}

// Records when a token was last used, at a resolution of minutes so that reads do not turn
// into a write (and an fsync) each.
void Access::TouchLastUsed(const std::string& hash, const CachedToken& token, int64_t now_ms) {
  auto obj = store_.Get(model::kToken, token.scope, token.principal.token_id);
  if (!obj.ok()) return;
  Json body = Json::parse(obj->body, nullptr, false);
  if (!body.is_object()) return;
  body["last_used_at_ms"] = now_ms;
  WriteBatch b;
  Op op;
  op.type = OpType::kUpdate;
  op.object = Object{model::kToken, obj->scope, obj->name, body.dump(), obj->index_key};
  op.expected_revision = obj->revision;
  b.ops.push_back(std::move(op));
  (void)store_.Commit(b);  // losing this race to a concurrent request is fine
  std::lock_guard<std::mutex> l(mu_);
  auto it = tokens_.find(hash);
  if (it != tokens_.end()) it->second.last_used_at_ms = now_ms;
}

Result<model::Role> Access::TeamRoleUncached(const Principal& who, const std::string& team) {
  auto t = store_.Get(model::kTeam, "", team);
  if (!t.ok()) {
    if (t.status().code() == Code::kNotFound) return NotFound("team \"" + team + "\" not found");
    return t.status();
  }
  if (who.admin) return model::Role::kOwner;
  auto m = store_.Get(model::kMember, team, who.user);
  if (!m.ok()) {
    if (m.status().code() == Code::kNotFound) return NotFound("team \"" + team + "\" not found");
    return m.status();
  }
  Json body = Json::parse(m->body, nullptr, false);
  auto role = model::ParseRole(body.is_object() ? body.value("role", "") : "");
  if (!role) return Internal("membership of " + who.user + " in " + team + " has no valid role");
  return *role;
}

Result<model::Role> Access::TeamRole(const Principal& who, const std::string& team) {
  // Admin answers differ from member answers for the same name: key by both.
  auto key = std::make_pair((who.admin ? "*" : "") + who.user, team);
  {
    std::lock_guard<std::mutex> l(mu_);
    SyncLocked();
    auto it = roles_.find(key);
    if (it != roles_.end()) return it->second;
  }
  auto role = TeamRoleUncached(who, team);
  if (role.ok() || role.status().code() == Code::kNotFound) {
    std::lock_guard<std::mutex> l(mu_);
    roles_.emplace(key, role);
  }
  return role;
}

Result<model::Role> Access::Require(const Principal& who, const std::string& team,
                                    model::Role min, const std::string& action) {
  auto role = TeamRole(who, team);
  if (!role.ok()) return role.status();
  if (*role < min) {
    return PermissionDenied(std::string("your role in team \"") + team + "\" is " +
                            model::RoleName(*role) + "; to " + action + " you need " +
                            model::RoleName(min) + " or above");
  }
  return *role;
}

}  // namespace berth::auth
