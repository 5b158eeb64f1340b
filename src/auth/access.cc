#include "auth/access.h"

#include "auth/crypto.h"

namespace berth::auth {

Result<Principal> Access::Authenticate(const std::string& authorization) {
  static const std::string kBearer = "Bearer ";
  if (authorization.empty()) {
    return Unauthenticated("this request needs a token: log in with `berth login` or send "
                           "\"Authorization: Bearer <token>\"");
  }
  if (authorization.size() <= kBearer.size() ||
      authorization.compare(0, kBearer.size(), kBearer) != 0) {
    return Unauthenticated("the Authorization header must be \"Bearer <token>\"");
  }
  std::string secret = authorization.substr(kBearer.size());
  auto found = store_.FindByIndex(model::kToken, HashToken(secret));
  if (!found.ok()) return found.status();
  if (found->empty()) return Unauthenticated("the token is not valid (revoked or unknown): log in again");
  Json body = Json::parse(found->front().body, nullptr, false);
  auto token = model::TokenFromJson(body);
  if (!token.ok()) return Internal("stored token is unreadable: " + token.status().message());
  if (token->expires_at_ms != 0 && token->expires_at_ms <= UnixMillis(clock_.Now())) {
    return Unauthenticated("the token expired at " + FormatTime(FromUnixMillis(token->expires_at_ms)) +
                           ": log in again");
  }
  auto user = store_.Get(model::kUser, "", token->user);
  if (!user.ok()) {
    if (user.status().code() == Code::kNotFound) return Unauthenticated("the token's user no longer exists");
    return user.status();
  }
  Json u = Json::parse(user->body, nullptr, false);
  if (u.value("disabled", false)) return Unauthenticated("user \"" + token->user + "\" is disabled");
  return Principal{token->user, u.value("admin", false), token->id};
}

Result<model::Role> Access::TeamRole(const Principal& who, const std::string& team) {
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
