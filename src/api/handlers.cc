// Route handlers for every resource of docs/api.md except the watch streams.
//
// Each write follows one path: authorise → parse and validate the body (model) → check
// references in the store → one atomic Commit carrying the change and its audit record. A
// request that fails at any step has changed nothing.
#include <algorithm>
#include <cmath>

#include "api/detail/service.h"
#include "auth/crypto.h"
#include "auth/tokens.h"
#include "builder/controller.h"
#include "core/safe_fs.h"
#include "core/disk.h"
#include "core/names.h"
#include "core/cgroup.h"
#include "core/proc_usage.h"
#include "routing/claims.h"

namespace berth::api {
namespace {

using model::Role;

constexpr size_t kAuditSideLimit = 8 << 10;  // bytes of before/after kept per audit entry

// ---- small helpers ------------------------------------------------------------------------

std::vector<std::string> SplitScope(const std::string& scope) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < scope.size()) {
    size_t j = scope.find('/', i);
    if (j == std::string::npos) j = scope.size();
    out.push_back(scope.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// The writable view of a stored object (what PUT/PATCH start from).
Json Writable(const Object& o) {
  Json j = Stored(o);
  j.erase("password_hash");
  return j;
}

Status NotFoundNoun(const std::string& noun, const std::string& name) {
  return NotFound(noun + " " + Quoted(name) + " not found");
}

}  // namespace

Result<Json> JsonBody(const Ctx& ctx) {
  const std::string& ct = ctx.req.Header("content-type");
  if (!ct.empty() && ct.rfind("application/json", 0) != 0) {
    return Status(Code::kUnsupportedMedia, "unsupported_media_type",
                  "the body must be JSON (Content-Type: application/json), got " + ct);
  }
  if (ctx.req.body.empty()) {
    return Status(Code::kInvalidArgument, "invalid_json",
                  "the request body is empty: send a JSON object");
  }
  return ParseJsonObject(ctx.req.body);
}

// Removes "revision" from a write body; 0 when absent.
Result<int64_t> TakeRevision(Json& body) {
  auto it = body.find("revision");
  if (it == body.end()) return int64_t{0};
  if (it->is_null()) {
    body.erase(it);
    return int64_t{0};
  }
  if (!it->is_number_integer() || it->get<int64_t>() < 0) {
    return InvalidArgument("revision must be a non-negative integer", "revision");
  }
  int64_t r = it->get<int64_t>();
  body.erase(it);
  return r;
}

Result<int64_t> QueryRevision(const Ctx& ctx) {
  std::string r = ctx.req.Query("revision");
  if (r.empty()) return int64_t{0};
  if (r.size() > 18 || r.find_first_not_of("0123456789") != std::string::npos) {
    return InvalidArgument("revision must be a non-negative integer", "revision");
  }
  return std::stoll(r);
}

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

Json Stored(const Object& o) {
  Json j = Json::parse(o.body, nullptr, false);
  return j.is_object() ? j : Json::object();
}

Status NeedRole(Service& s, const Ctx& ctx, model::Role min, const std::string& action) {
  auto r = s.access.Require(ctx.who, ctx.P("team"), min, action);
  return r.ok() ? Status::Ok() : r.status();
}

Result<ListOptions> ListOpts(const Ctx& ctx, const std::string& scope) {
  ListOptions o;
  o.scope = scope;
  o.after = ctx.req.Query("after");
  std::string lim = ctx.req.Query("limit");
  if (!lim.empty()) {
    if (lim.size() > 4 || lim.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(lim) < 1 || std::stoi(lim) > 500) {
      return InvalidArgument("limit must be a number from 1 to 500", "limit");
    }
    o.limit = std::stoi(lim);
  }
  return o;
}

namespace {

// Readiness while the disk is full: writes would fail, so the server does not accept work.
Status WritesPossible(Service& s) {
  if (Status w = s.store.WriteHealth(); !w.ok()) {
    return Status(Code::kUnavailable, "insufficient_storage", w.message());
  }
  if (s.options.data_dir.empty()) return Status::Ok();
  auto d = DiskSpaceOf(s.options.data_dir);
  if (d.ok() && d->free_bytes < kDiskFullBelowBytes) {
    return Status(Code::kUnavailable, "insufficient_storage",
                  "no space left on device: the disk holding the data directory " +
                      s.options.data_dir + " is full (" + FormatBytes(d->free_bytes) +
                      " free); writes fail until space is freed");
  }
  return Status::Ok();
}

Json SideForAudit(const Json* side) {
  if (!side) return nullptr;
  Json j = *side;
  if (j.is_object()) j.erase("password_hash");
  std::string dumped = j.dump();
  if (dumped.size() > kAuditSideLimit) {
    return {{"omitted", "object of " + std::to_string(dumped.size()) + " bytes"}};
  }
  return j;
}

AuditRecord Audit(const Ctx& ctx, const std::string& team, const std::string& action,
                  const std::string& resource, const Json* before, const Json* after) {
  Json summary = {{"before", SideForAudit(before)}, {"after", SideForAudit(after)}};
  if (before && after && before->is_object() && after->is_object()) {
    Json changed = Json::array();
    for (auto it = after->begin(); it != after->end(); ++it) {
      if (it.key() == "password_hash") continue;
      if (!before->contains(it.key()) || (*before)[it.key()] != *it) changed.push_back(it.key());
    }
    summary["changed"] = changed;
  }
  return AuditRecord{ctx.who.user, team, action, resource, summary.dump()};
}

Reply Created(const Object& o) { return Reply{201, RenderObject(o), {}, nullptr}; }
Reply Ok(const Object& o) { return Reply{200, RenderObject(o), {}, nullptr}; }

Reply ListReply(const ListResult& r) {
  Json items = Json::array();
  for (const Object& o : r.items) items.push_back(RenderObject(o));
  return Reply{200, {{"items", items}, {"next", r.next}, {"revision", r.revision}}, {}, nullptr};
}

// ---- generic object operations ------------------------------------------------------------

struct Target {
  std::string kind;
  std::string scope;
  std::string name;
  std::string noun;      // "app", used in messages
  std::string team;      // audit team ("" = platform)
  std::string resource;  // audit resource path
};

Result<Reply> ListOf(Service& s, const Ctx& ctx, const std::string& kind,
                     const std::string& scope, bool descending = false) {
  BERTH_ASSIGN_OR_RETURN(ListOptions o, ListOpts(ctx, scope));
  o.descending = descending;
  BERTH_ASSIGN_OR_RETURN(ListResult r, s.store.List(kind, o));
  return ListReply(r);
}

Result<Object> Load(Service& s, const Target& t) {
  auto o = s.store.Get(t.kind, t.scope, t.name);
  if (!o.ok() && o.status().code() == Code::kNotFound) return NotFoundNoun(t.noun, t.name);
  return o;
}

Result<Reply> GetOf(Service& s, const Target& t) {
  BERTH_ASSIGN_OR_RETURN(Object o, Load(s, t));
  return Ok(o);
}

Result<CommitResult> CommitOne(Service& s, Op op, std::vector<Op> extra, AuditRecord audit) {
  WriteBatch b;
  b.ops.push_back(std::move(op));
  for (Op& e : extra) b.ops.push_back(std::move(e));
  b.audit.push_back(std::move(audit));
  return s.store.Commit(b);
}

// Creates `body` (already validated) as object `t`.
Result<Reply> CreateOf(Service& s, const Ctx& ctx, const Target& t, const Json& body,
                       std::vector<Op> extra = {}, std::string index_key = {}) {
  Op op;
  op.type = OpType::kCreate;
  op.object = Object{t.kind, t.scope, t.name, body.dump(), std::move(index_key)};
  auto r = CommitOne(s, std::move(op), std::move(extra),
                     Audit(ctx, t.team, "create", t.resource, nullptr, &body));
  if (!r.ok()) {
    if (r.status().code() == Code::kAlreadyExists) {
      return AlreadyExists(t.noun + " " + Quoted(t.name) + " already exists");
    }
    return r.status();
  }
  return Created(r->objects.front());
}

// PUT (replace) or PATCH (merge) of object `t`. `parse` validates the merged writable JSON and
// returns the new stored body; it also gets the current stored body (to keep server-owned
// fields) and may veto the change.
using ParseFn = std::function<Result<Json>(const Json& merged, const Json& current)>;
// More ops for the same commit, from the current and the new stored body (e.g. a component's
// operation object); may veto the change.
using ExtraFn = std::function<Result<std::vector<Op>>(const Json& current, const Json& next)>;

Result<Reply> UpdateOf(Service& s, const Ctx& ctx, const Target& t, const ParseFn& parse,
                       const ExtraFn& extra_ops = nullptr) {
  BERTH_ASSIGN_OR_RETURN(Json body, JsonBody(ctx));
  BERTH_ASSIGN_OR_RETURN(int64_t expected, TakeRevision(body));
  if (body.contains("name") && !(body["name"].is_string() && body["name"] == t.name)) {
    return InvalidArgument("name cannot be changed (the body says " + body["name"].dump() +
                               ", the path " + Quoted(t.name) + ")",
                           "name");
  }
  // Without an explicit revision the write is last-writer-wins; a concurrent change between
  // our read and our write is retried rather than reported.
  for (int attempt = 0; attempt < 5; ++attempt) {
    BERTH_ASSIGN_OR_RETURN(Object cur, Load(s, t));
    if (expected != 0 && cur.revision != expected) {
      return RevisionConflict(t.noun + " " + Quoted(t.name) + " is at revision " +
                              std::to_string(cur.revision) + ", not " + std::to_string(expected) +
                              ": read it again and retry");
    }
    Json current = Stored(cur);
    Json merged;
    if (ctx.req.method == "PATCH") {
      merged = Writable(cur);
      merged.merge_patch(body);
    } else {
      merged = body;
    }
    merged["name"] = t.name;
    BERTH_ASSIGN_OR_RETURN(Json next, parse(merged, current));
    std::vector<Op> extra;
    if (extra_ops) {
      BERTH_ASSIGN_OR_RETURN(extra, extra_ops(current, next));
    }
    const bool had_extra = !extra.empty();
    Op op;
    op.type = OpType::kUpdate;
    op.object = Object{t.kind, t.scope, t.name, next.dump(), cur.index_key};
    op.expected_revision = cur.revision;
    auto r = CommitOne(s, std::move(op), std::move(extra),
                       Audit(ctx, t.team, "update", t.resource, &current, &next));
    if (r.ok()) return Ok(r->objects.front());
    // A lost race on an extra object (another operation began meanwhile) is decided again by
    // the next round's checks.
    bool extra_race = had_extra && (r.status().reason() == "revision_conflict" ||
                                    r.status().reason() == "already_exists");
    if (extra_race) continue;
    if (r.status().reason() != "revision_conflict" || expected != 0) {
      if (r.status().code() == Code::kNotFound) return NotFoundNoun(t.noun, t.name);
      return r.status();
    }
  }
  return RevisionConflict(t.noun + " " + Quoted(t.name) + " is changing too often: retry");
}

// DELETE of `t`, optionally with everything under `tree_scope` and `more` ops in the same
// commit.
Result<Reply> DeleteOf(Service& s, const Ctx& ctx, const Target& t,
                       const std::string& tree_scope = {}, std::vector<Op> more = {}) {
  BERTH_ASSIGN_OR_RETURN(int64_t expected, QueryRevision(ctx));
  BERTH_ASSIGN_OR_RETURN(Object cur, Load(s, t));
  if (expected != 0 && cur.revision != expected) {
    return RevisionConflict(t.noun + " " + Quoted(t.name) + " is at revision " +
                            std::to_string(cur.revision) + ", not " + std::to_string(expected));
  }
  Op op;
  op.type = OpType::kDelete;
  op.object = Object{t.kind, t.scope, t.name};
  op.expected_revision = expected != 0 ? expected : cur.revision;
  std::vector<Op> extra;
  if (!tree_scope.empty()) {
    Op tree;
    tree.type = OpType::kDeleteTree;
    tree.object.scope = tree_scope;
    extra.push_back(std::move(tree));
  }
  for (Op& m : more) extra.push_back(std::move(m));
  Json before = Stored(cur);
  auto r = CommitOne(s, std::move(op), std::move(extra),
                     Audit(ctx, t.team, "delete", t.resource, &before, nullptr));
  if (!r.ok()) {
    if (r.status().code() == Code::kNotFound) return NotFoundNoun(t.noun, t.name);
    return r.status();
  }
  // Source archives uploaded for what was deleted (build_routes.cc keeps them in
  // DATA/uploads/<team>/<app>/<component>/); only these kinds own such a directory.
  if ((t.kind == model::kTeam || t.kind == model::kApp || t.kind == model::kComponent) &&
      !tree_scope.empty() && !s.options.data_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(s.options.data_dir + "/uploads/" + tree_scope, ec);
  }
  return Reply{200, {{"deleted", t.noun}, {"name", t.name}, {"revision", r->revision}}, {}, nullptr};
}

// ---- parents ------------------------------------------------------------------------------

Status AppExists(Service& s, const std::string& team, const std::string& app) {
  auto o = s.store.Get(model::kApp, team, app);
  if (o.ok()) return Status::Ok();
  if (o.status().code() == Code::kNotFound) {
    return NotFound("app " + Quoted(app) + " not found in team " + Quoted(team));
  }
  return o.status();
}

Status ComponentExists(Service& s, const std::string& team, const std::string& app,
                       const std::string& component) {
  BERTH_RETURN_IF_ERROR(AppExists(s, team, app));
  auto o = s.store.Get(model::kComponent, team + "/" + app, component);
  if (o.ok()) return Status::Ok();
  if (o.status().code() == Code::kNotFound) {
    return NotFound("component " + Quoted(component) + " not found in app " + Quoted(app));
  }
  return o.status();
}

std::string AppScope(const Ctx& c) { return c.P("team") + "/" + c.P("app"); }
std::string CompScope(const Ctx& c) { return AppScope(c) + "/" + c.P("component"); }
std::string AppRes(const Ctx& c) { return "apps/" + c.P("app"); }
std::string CompRes(const Ctx& c) { return AppRes(c) + "/components/" + c.P("component"); }

// ---- health and session -------------------------------------------------------------------

Result<Reply> Login(Service& s, Ctx& ctx) {
  BERTH_ASSIGN_OR_RETURN(Json body, JsonBody(ctx));
  std::string user, password;
  JsonReader r(body, "");
  r.Str("user", &user, 63);
  r.Str("password", &password, 1024);
  r.Finish();
  if (!r.ok()) return r.status();
  if (user.empty()) return InvalidArgument("user is required", "user");
  const std::string& addr = ctx.req.remote_addr;
  int wait = s.limiter.RetryAfterSeconds(addr, user);
  if (wait > 0) {
    // An error that carries a header: built here rather than through the Status path.
    Json err = {{"code", "rate_limited"},
                {"message", "too many failed logins for " + Quoted(user) + " from " + addr +
                                ": retry in " + std::to_string(wait) + " s"}};
    return Reply{429, err, {{"Retry-After", std::to_string(wait)}}, nullptr};
  }
  auto obj = s.store.Get(model::kUser, "", user);
  if (!obj.ok() && obj.status().code() != Code::kNotFound) return obj.status();
  Json u = obj.ok() ? Stored(*obj) : Json::object();
  if (u.value("service", false)) {
    // Its name is public (docs), so saying what it is reveals nothing.
    s.limiter.RecordFailure(addr, user);
    return Status(Code::kUnauthenticated, "service_account",
                  Quoted(user) + " is a service account of berth: it authenticates with its "
                                 "token, never with a password");
  }
  // Verify even for unknown users so response time does not reveal which names exist.
  static const std::string kDummy = auth::HashPassword("berth-dummy-password").value();
  bool good = auth::VerifyPassword(u.value("password_hash", kDummy), password) && obj.ok();
  if (!good) {
    s.limiter.RecordFailure(addr, user);
    return Unauthenticated("wrong user name or password");
  }
  if (u.value("disabled", false)) return Unauthenticated("user " + Quoted(user) + " is disabled");
  s.limiter.RecordSuccess(addr, user);
  model::Token t;
  t.id = auth::RandomHex(6);
  t.name = "login";
  t.user = user;
  t.expires_at_ms = UnixMillis(s.clock.Now()) + s.options.token_ttl_hours * 3600 * 1000;
  t.last_used_at_ms = UnixMillis(s.clock.Now());  // logging in is a use
  std::string secret = auth::NewTokenSecret();
  Json tj = model::ToJson(t);
  Op op;
  op.type = OpType::kCreate;
  op.object = Object{model::kToken, model::TokenScope(user), t.id, tj.dump(),
                     auth::HashToken(secret)};
  ctx.who.user = user;
  BERTH_ASSIGN_OR_RETURN(CommitResult c,
                         CommitOne(s, std::move(op), {},
                                   Audit(ctx, "", "login", "tokens/" + t.id, nullptr, &tj)));
  return Reply{200,
               {{"token", secret},
                {"user", user},
                {"expires_at", FormatTime(FromUnixMillis(t.expires_at_ms))}},
               {}, nullptr};
}

Result<Reply> Logout(Service& s, Ctx& ctx) {
  Target t{model::kToken, model::TokenScope(ctx.who.user), ctx.who.token_id, "token", "",
           "tokens/" + ctx.who.token_id};
  BERTH_ASSIGN_OR_RETURN(Reply r, DeleteOf(s, ctx, t));
  return Reply{200, {{"logged_out", true}}, {}, nullptr};
}

Result<model::PlatformSettings> LoadSettings(Service& s);

Result<Reply> Whoami(Service& s, Ctx& ctx) {
  BERTH_ASSIGN_OR_RETURN(Object u, s.store.Get(model::kUser, "", ctx.who.user));
  BERTH_ASSIGN_OR_RETURN(std::vector<Object> ms, s.store.FindByName(model::kMember, ctx.who.user));
  Json teams = Json::array();
  for (const Object& m : ms) teams.push_back({{"team", m.scope}, {"role", Stored(m).value("role", "")}});
  BERTH_ASSIGN_OR_RETURN(model::PlatformSettings settings, LoadSettings(s));
  bool can_create = ctx.who.admin || settings.team_creation == "everyone";
  return Reply{200, {{"user", RenderObject(u)}, {"teams", teams}, {"can_create_teams", can_create}},
               {}, nullptr};
}

// ---- users --------------------------------------------------------------------------------

Status NeedPlatformAdmin(const Ctx& ctx, const std::string& action) {
  if (ctx.who.admin) return Status::Ok();
  return PermissionDenied("only platform administrators can " + action);
}

// 409 name_reserved for the names of berth's service accounts (and "berth" itself), which
// neither users nor teams may take (docs/security.md).
Status NotReserved(const std::string& name, const std::string& what) {
  if (!model::ReservedName(name)) return Status::Ok();
  return Status(Code::kConflict, "name_reserved",
                Quoted(name) + " is reserved for berth's own service accounts: choose another " +
                    what + " name",
                "name");
}

Status NeedSelfOrAdmin(const Ctx& ctx, const std::string& user) {
  if (ctx.who.admin || ctx.who.user == user) return Status::Ok();
  return NotFoundNoun("user", user);
}

Status ServiceAccount(const std::string& name, const std::string& what) {
  return Status(Code::kConflict, "service_account",
                Quoted(name) + " is a service account berth made for itself (the gateway "
                               "authenticates as it): it cannot be " + what);
}

// Whether the stored user `name` is a service account (false when it does not exist).
Result<bool> IsServiceAccount(Service& s, const std::string& name) {
  auto o = s.store.Get(model::kUser, "", name);
  if (!o.ok()) {
    if (o.status().code() == Code::kNotFound) return false;
    return o.status();
  }
  return Stored(*o).value("service", false);
}

Result<Reply> ListUsers(Service& s, Ctx& ctx) {
  std::string all = ctx.req.Query("all");
  if (!all.empty() && all != "true" && all != "false") {
    return InvalidArgument("all must be true or false", "all");
  }
  if (ctx.who.admin) {
    BERTH_ASSIGN_OR_RETURN(Reply r, ListOf(s, ctx, model::kUser, ""));
    if (all != "true") {
      // Service accounts only with ?all=true; `next` still pages through every user.
      Json kept = Json::array();
      for (Json& u : r.body["items"]) {
        if (!u.value("service", false)) kept.push_back(std::move(u));
      }
      r.body["items"] = std::move(kept);
    }
    return r;
  }
  BERTH_ASSIGN_OR_RETURN(Object me, s.store.Get(model::kUser, "", ctx.who.user));
  return Reply{200, {{"items", Json::array({RenderObject(me)})}, {"next", ""}, {"revision", me.revision}}, {}, nullptr};
}

Result<Reply> CreateUser(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedPlatformAdmin(ctx, "create users"));
  BERTH_ASSIGN_OR_RETURN(Json body, JsonBody(ctx));
  BERTH_ASSIGN_OR_RETURN(model::UserInput in, model::ParseUser(body));
  if (!in.password) return InvalidArgument("password is required (at least 8 characters)", "password");
  if (in.current_password) return UnknownField("current_password");
  if (in.user.service) {
    return InvalidArgument("service accounts are made by berth itself, not through the API",
                           "service");
  }
  BERTH_RETURN_IF_ERROR(NotReserved(in.user.name, "user"));
  BERTH_ASSIGN_OR_RETURN(in.user.password_hash, auth::HashPassword(*in.password));
  Target t{model::kUser, "", in.user.name, "user", "", "users/" + in.user.name};
  return CreateOf(s, ctx, t, model::ToJson(in.user, true));
}

Result<Reply> UpdateUser(Service& s, Ctx& ctx) {
  const std::string name = ctx.P("user");
  BERTH_RETURN_IF_ERROR(NeedSelfOrAdmin(ctx, name));
  Target t{model::kUser, "", name, "user", "", "users/" + name};
  return UpdateOf(s, ctx, t, [&](const Json& merged, const Json& current) -> Result<Json> {
    if (current.value("service", false)) return ServiceAccount(name, "changed");
    BERTH_ASSIGN_OR_RETURN(model::UserInput in, model::ParseUser(merged));
    if (in.user.service) {
      return InvalidArgument("service accounts are made by berth itself, not through the API",
                             "service");
    }
    bool was_admin = current.value("admin", false);
    if (!ctx.who.admin && (in.user.admin != was_admin || in.user.disabled != current.value("disabled", false))) {
      return PermissionDenied("only platform administrators can change admin or disabled");
    }
    if (ctx.who.admin && ctx.who.user == name && (!in.user.admin || in.user.disabled)) {
      return FailedPrecondition("you cannot remove your own administrator rights or disable yourself");
    }
    in.user.password_hash = current.value("password_hash", "");
    if (in.password) {
      if (!ctx.who.admin) {
        if (!in.current_password || !auth::VerifyPassword(in.user.password_hash, *in.current_password)) {
          return InvalidArgument("current_password is missing or wrong", "current_password");
        }
      }
      BERTH_ASSIGN_OR_RETURN(in.user.password_hash, auth::HashPassword(*in.password));
    }
    return model::ToJson(in.user, true);
  }, [&](const Json& current, const Json& next) -> Result<std::vector<Op>> {
    // A new password ends every session of the user: all their tokens go in the same commit
    // (the caller's too, if it is theirs: they log in again with the new password).
    std::vector<Op> ops;
    if (next.value("password_hash", "") != current.value("password_hash", "")) {
      ops.push_back(auth::RevokeAllTokensOp(name));
    }
    return ops;
  });
}

Result<Reply> DeleteUser(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedPlatformAdmin(ctx, "delete users"));
  const std::string name = ctx.P("user");
  if (name == ctx.who.user) return FailedPrecondition("you cannot delete yourself");
  BERTH_ASSIGN_OR_RETURN(bool service, IsServiceAccount(s, name));
  if (service) return ServiceAccount(name, "deleted");
  // A team must keep an owner: refuse while the user is the last owner anywhere.
  BERTH_ASSIGN_OR_RETURN(std::vector<Object> ms, s.store.FindByName(model::kMember, name));
  std::vector<Op> extra;
  for (const Object& m : ms) {
    if (Stored(m).value("role", "") == "owner") {
      BERTH_ASSIGN_OR_RETURN(ListResult all, s.store.List(model::kMember, ListOptions{m.scope, "", 1000}));
      int owners = 0;
      for (const Object& o : all.items) owners += Stored(o).value("role", "") == "owner";
      if (owners <= 1) {
        return FailedPrecondition(Quoted(name) + " is the last owner of team " + Quoted(m.scope) +
                                  ": make someone else owner first");
      }
    }
    Op op;
    op.type = OpType::kDelete;
    op.object = Object{model::kMember, m.scope, m.name};
    extra.push_back(op);
  }
  // Every token of the user goes with them (one tree delete of their token scope, however
  // many there are).
  extra.push_back(auth::RevokeAllTokensOp(name));
  Target t{model::kUser, "", name, "user", "", "users/" + name};
  BERTH_ASSIGN_OR_RETURN(Object cur, Load(s, t));
  Op op;
  op.type = OpType::kDelete;
  op.object = Object{model::kUser, "", name};
  op.expected_revision = cur.revision;
  Json before = Stored(cur);
  BERTH_ASSIGN_OR_RETURN(CommitResult r, CommitOne(s, std::move(op), std::move(extra),
                                                   Audit(ctx, "", "delete", t.resource, &before, nullptr)));
  return Reply{200, {{"deleted", "user"}, {"name", name}, {"revision", r.revision}}, {}, nullptr};
}

// ---- tokens -------------------------------------------------------------------------------

Result<Reply> CreateToken(Service& s, Ctx& ctx) {
  BERTH_ASSIGN_OR_RETURN(Json body, JsonBody(ctx));
  BERTH_ASSIGN_OR_RETURN(model::TokenInput in, model::ParseTokenInput(body));
  model::Token t;
  t.id = auth::RandomHex(6);
  t.name = in.name;
  t.user = ctx.who.user;
  int64_t ttl_ms = in.ttl_seconds ? in.ttl_seconds * 1000
                                  : (in.ttl_hours ? in.ttl_hours : s.options.token_ttl_hours) *
                                        3600 * 1000;
  t.expires_at_ms = UnixMillis(s.clock.Now()) + ttl_ms;
  std::string secret = auth::NewTokenSecret();
  Target target{model::kToken, model::TokenScope(ctx.who.user), t.id, "token", "",
                "tokens/" + t.id};
  BERTH_ASSIGN_OR_RETURN(Reply r, CreateOf(s, ctx, target, model::ToJson(t), {}, auth::HashToken(secret)));
  r.body["token"] = secret;
  return r;
}

// ---- platform settings --------------------------------------------------------------------

Result<model::PlatformSettings> LoadSettings(Service& s) {
  auto o = s.store.Get(model::kSetting, "", model::kPlatformSettings);
  if (!o.ok()) {
    if (o.status().code() == Code::kNotFound) return model::PlatformSettings{};
    return o.status();
  }
  auto p = model::ParsePlatformSettings(Stored(*o));
  if (!p.ok()) return Internal("stored platform settings do not parse: " + p.status().message());
  return *p;
}

Result<Reply> GetSettings(Service& s, Ctx& ctx) {
  (void)ctx;  // every user reads them (the console shows "new team" by them)
  BERTH_ASSIGN_OR_RETURN(model::PlatformSettings p, LoadSettings(s));
  auto o = s.store.Get(model::kSetting, "", model::kPlatformSettings);
  Json j = model::ToJson(p);
  j["revision"] = o.ok() ? o->revision : 0;
  return Reply{200, j, {}, nullptr};
}

Result<Reply> UpdateSettings(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedPlatformAdmin(ctx, "change the platform settings"));
  BERTH_ASSIGN_OR_RETURN(Json body, JsonBody(ctx));
  BERTH_ASSIGN_OR_RETURN(int64_t expected, TakeRevision(body));
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto cur = s.store.Get(model::kSetting, "", model::kPlatformSettings);
    if (!cur.ok() && cur.status().code() != Code::kNotFound) return cur.status();
    int64_t rev = cur.ok() ? cur->revision : 0;
    if (expected != 0 && rev != expected) {
      return RevisionConflict("the platform settings are at revision " + std::to_string(rev) +
                              ", not " + std::to_string(expected));
    }
    BERTH_ASSIGN_OR_RETURN(model::PlatformSettings now, LoadSettings(s));
    Json merged = body;
    if (ctx.req.method == "PATCH") {
      merged = model::ToJson(now);
      merged.merge_patch(body);
    }
    BERTH_ASSIGN_OR_RETURN(model::PlatformSettings next, model::ParsePlatformSettings(merged));
    Json before = model::ToJson(now), after = model::ToJson(next);
    Op op;
    op.type = cur.ok() ? OpType::kUpdate : OpType::kCreate;
    op.object = Object{model::kSetting, "", model::kPlatformSettings, after.dump()};
    op.expected_revision = rev;
    auto r = CommitOne(s, std::move(op), {},
                       Audit(ctx, "", "update", "settings", &before, &after));
    if (r.ok()) {
      after["revision"] = r->revision;
      return Reply{200, after, {}, nullptr};
    }
    if ((r.status().reason() != "revision_conflict" && r.status().code() != Code::kAlreadyExists) ||
        expected != 0) {
      return r.status();
    }
  }
  return RevisionConflict("the platform settings are changing too often: retry");
}

// ---- teams --------------------------------------------------------------------------------

Result<Reply> ListTeams(Service& s, Ctx& ctx) {
  if (ctx.who.admin) return ListOf(s, ctx, model::kTeam, "");
  int64_t head = s.store.Head();
  BERTH_ASSIGN_OR_RETURN(std::vector<Object> ms, s.store.FindByName(model::kMember, ctx.who.user));
  std::sort(ms.begin(), ms.end(), [](const Object& a, const Object& b) { return a.scope < b.scope; });
  Json items = Json::array();
  for (const Object& m : ms) {
    auto t = s.store.Get(model::kTeam, "", m.scope);
    if (t.ok()) items.push_back(RenderObject(*t));
  }
  return Reply{200, {{"items", items}, {"next", ""}, {"revision", head}}, {}, nullptr};
}

Result<Reply> CreateTeam(Service& s, Ctx& ctx) {
  BERTH_ASSIGN_OR_RETURN(model::PlatformSettings settings, LoadSettings(s));
  if (!ctx.who.admin && settings.team_creation != "everyone") {
    return Status(Code::kPermissionDenied, "team_creation_restricted",
                  "only platform administrators can create teams on this platform (the "
                  "team_creation setting is \"" + settings.team_creation +
                      "\"): ask an administrator for a team");
  }
  BERTH_ASSIGN_OR_RETURN(Json body, JsonBody(ctx));
  BERTH_ASSIGN_OR_RETURN(int64_t ignored, TakeRevision(body));
  (void)ignored;
  BERTH_ASSIGN_OR_RETURN(model::Team team, model::ParseTeam(body));
  BERTH_RETURN_IF_ERROR(NotReserved(team.name, "team"));
  if (!ctx.who.admin &&
      (team.quota.instances || team.quota.memory_mb || team.quota.cpu_millis || team.quota.disk_mb)) {
    return PermissionDenied("only platform administrators can set team quotas");
  }
  team.created_by = ctx.who.user;
  if (!ctx.who.admin) {
    // More teams must not mean more resources: a user may have created at most
    // max_teams_per_user teams that still exist, and each gets the default quota.
    BERTH_ASSIGN_OR_RETURN(std::vector<Object> teams, ListAll(s.store, model::kTeam, ""));
    int64_t mine = 0;
    for (const Object& t : teams) mine += Stored(t).value("created_by", "") == ctx.who.user;
    if (mine >= settings.max_teams_per_user) {
      return Status(Code::kConflict, "team_limit_reached",
                    "you have created " + std::to_string(mine) + " teams, the most this platform "
                    "allows a user (max_teams_per_user " +
                        std::to_string(settings.max_teams_per_user) +
                        "): delete one, or ask an administrator");
    }
    team.quota = settings.default_team_quota;
  }
  // The creator owns the new team.
  Op owner;
  owner.type = OpType::kCreate;
  owner.object = Object{model::kMember, team.name, ctx.who.user,
                        model::ToJson(model::Member{ctx.who.user, Role::kOwner}).dump()};
  Target t{model::kTeam, "", team.name, "team", team.name, "team"};
  return CreateOf(s, ctx, t, model::ToJson(team), {owner});
}

Result<Reply> UpdateTeam(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kAdmin, "change the team"));
  Target t{model::kTeam, "", ctx.P("team"), "team", ctx.P("team"), "team"};
  return UpdateOf(s, ctx, t, [&](const Json& merged, const Json& current) -> Result<Json> {
    BERTH_ASSIGN_OR_RETURN(model::Team team, model::ParseTeam(merged));
    team.created_by = current.value("created_by", "");  // the server's, never the caller's
    Json next = model::ToJson(team);
    if (!ctx.who.admin && next["quota"] != current.value("quota", Json::object())) {
      return PermissionDenied("only platform administrators can change team quotas");
    }
    return next;
  });
}

Result<Reply> DeleteTeam(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kOwner, "delete the team"));
  Target t{model::kTeam, "", ctx.P("team"), "team", ctx.P("team"), "team"};
  // The team's gateway rules go with it; their claims on domains and ports are released in
  // the same commit.
  BERTH_ASSIGN_OR_RETURN(std::vector<Op> claims, routing::ClaimReleaseOps(s.store, ctx.P("team")));
  return DeleteOf(s, ctx, t, ctx.P("team"), std::move(claims));
}

// ---- members ------------------------------------------------------------------------------

Result<int> CountOwners(Service& s, const std::string& team) {
  BERTH_ASSIGN_OR_RETURN(ListResult all, s.store.List(model::kMember, ListOptions{team, "", 1000}));
  int owners = 0;
  for (const Object& o : all.items) owners += Stored(o).value("role", "") == "owner";
  return owners;
}

Target MemberTarget(const Ctx& ctx, const std::string& user) {
  return Target{model::kMember, ctx.P("team"), user, "member", ctx.P("team"), "members/" + user};
}

Result<Reply> AddMember(Service& s, Ctx& ctx) {
  BERTH_ASSIGN_OR_RETURN(Role mine, s.access.Require(ctx.who, ctx.P("team"), Role::kAdmin, "add members"));
  BERTH_ASSIGN_OR_RETURN(Json body, JsonBody(ctx));
  BERTH_ASSIGN_OR_RETURN(model::Member m, model::ParseMember(body));
  if (m.role == Role::kOwner && mine < Role::kOwner) {
    return PermissionDenied("only owners can make someone an owner");
  }
  auto u = s.store.Get(model::kUser, "", m.user);
  if (!u.ok()) {
    if (u.status().code() == Code::kNotFound) {
      return InvalidArgument("user " + Quoted(m.user) + " does not exist", "user");
    }
    return u.status();
  }
  if (Stored(*u).value("service", false)) return ServiceAccount(m.user, "a team member");
  return CreateOf(s, ctx, MemberTarget(ctx, m.user), model::ToJson(m));
}

Result<Reply> UpdateMember(Service& s, Ctx& ctx) {
  BERTH_ASSIGN_OR_RETURN(Role mine, s.access.Require(ctx.who, ctx.P("team"), Role::kAdmin, "change members"));
  const std::string user = ctx.P("user");
  return UpdateOf(s, ctx, MemberTarget(ctx, user), [&](const Json& merged, const Json& current) -> Result<Json> {
    Json in = merged;
    in.erase("name");
    if (!in.contains("user")) in["user"] = user;
    if (in["user"] != user) return InvalidArgument("user cannot be changed", "user");
    BERTH_ASSIGN_OR_RETURN(model::Member m, model::ParseMember(in));
    bool was_owner = current.value("role", "") == "owner";
    if ((was_owner || m.role == Role::kOwner) && mine < Role::kOwner) {
      return PermissionDenied("only owners can make or unmake owners");
    }
    if (was_owner && m.role != Role::kOwner) {
      BERTH_ASSIGN_OR_RETURN(int owners, CountOwners(s, ctx.P("team")));
      if (owners <= 1) return FailedPrecondition("team " + Quoted(ctx.P("team")) + " must keep at least one owner");
    }
    return model::ToJson(m);
  });
}

Result<Reply> RemoveMember(Service& s, Ctx& ctx) {
  const std::string user = ctx.P("user");
  BERTH_ASSIGN_OR_RETURN(Role mine, s.access.TeamRole(ctx.who, ctx.P("team")));
  bool self = user == ctx.who.user;
  if (!self && mine < Role::kAdmin) {
    return PermissionDenied(std::string("your role in team ") + Quoted(ctx.P("team")) + " is " +
                            model::RoleName(mine) + "; to remove members you need admin or above");
  }
  Target t = MemberTarget(ctx, user);
  BERTH_ASSIGN_OR_RETURN(Object cur, Load(s, t));
  if (Stored(cur).value("role", "") == "owner") {
    if (!self && mine < Role::kOwner) return PermissionDenied("only owners can remove owners");
    BERTH_ASSIGN_OR_RETURN(int owners, CountOwners(s, ctx.P("team")));
    if (owners <= 1) return FailedPrecondition("team " + Quoted(ctx.P("team")) + " must keep at least one owner");
  }
  return DeleteOf(s, ctx, t);
}

// ---- apps ---------------------------------------------------------------------------------

Target AppTarget(const Ctx& ctx, const std::string& name) {
  return Target{model::kApp, ctx.P("team"), name, "app", ctx.P("team"), "apps/" + name};
}

Result<Reply> CreateApp(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "create apps"));
  BERTH_ASSIGN_OR_RETURN(Json body, JsonBody(ctx));
  BERTH_ASSIGN_OR_RETURN(int64_t ignored, TakeRevision(body));
  (void)ignored;
  BERTH_ASSIGN_OR_RETURN(model::App app, model::ParseApp(body));
  return CreateOf(s, ctx, AppTarget(ctx, app.name), model::ToJson(app));
}

Result<Reply> UpdateApp(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "change apps"));
  return UpdateOf(s, ctx, AppTarget(ctx, ctx.P("app")), [](const Json& merged, const Json&) -> Result<Json> {
    BERTH_ASSIGN_OR_RETURN(model::App app, model::ParseApp(merged));
    return model::ToJson(app);
  });
}

// Components of other apps (or, with `app_only` false, any other component) that depend on
// something inside `team/app[/component]`.
Result<std::vector<std::string>> Dependents(Service& s, const std::string& team,
                                            const std::string& app, const std::string& component) {
  std::vector<std::string> out;
  BERTH_ASSIGN_OR_RETURN(ListResult comps, s.store.List(model::kComponent, ListOptions{team + "/" + app, "", 1000}));
  std::vector<std::string> targets;
  if (!component.empty()) {
    targets.push_back(team + "/" + app + "/" + component);
  } else {
    for (const Object& c : comps.items) targets.push_back(team + "/" + app + "/" + c.name);
  }
  for (const std::string& key : targets) {
    BERTH_ASSIGN_OR_RETURN(std::vector<Object> deps, s.store.FindByIndex(model::kDependency, key));
    for (const Object& d : deps) {
      // d.scope is team/app/component of the dependent.
      std::string dependent_app = SplitScope(d.scope).size() > 1 ? SplitScope(d.scope)[1] : "";
      if (component.empty() && dependent_app == app) continue;  // inside the app being deleted
      out.push_back(d.scope.substr(team.size() + 1));
    }
  }
  return out;
}

std::string JoinList(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size() && i < 10; ++i) out += (i ? ", " : "") + v[i];
  if (v.size() > 10) out += ", ...";
  return out;
}

Result<Reply> DeleteApp(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "delete apps"));
  BERTH_ASSIGN_OR_RETURN(Object app, Load(s, AppTarget(ctx, ctx.P("app"))));
  BERTH_ASSIGN_OR_RETURN(auto deps, Dependents(s, ctx.P("team"), ctx.P("app"), ""));
  if (!deps.empty()) {
    return FailedPrecondition("components of other apps depend on app " + Quoted(ctx.P("app")) +
                              " (" + JoinList(deps) + "): remove those dependencies first");
  }
  BERTH_ASSIGN_OR_RETURN(std::vector<Op> claims, routing::ClaimReleaseOps(s.store, AppScope(ctx)));
  return DeleteOf(s, ctx, AppTarget(ctx, ctx.P("app")), AppScope(ctx), std::move(claims));
}

// ---- components ---------------------------------------------------------------------------

Target ComponentTarget(const Ctx& ctx, const std::string& name) {
  return Target{model::kComponent, AppScope(ctx), name, "component", ctx.P("team"),
                AppRes(ctx) + "/components/" + name};
}

Result<Reply> ListComponents(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kViewer, "read components"));
  BERTH_RETURN_IF_ERROR(AppExists(s, ctx.P("team"), ctx.P("app")));
  BERTH_ASSIGN_OR_RETURN(Reply r, ListOf(s, ctx, model::kComponent, AppScope(ctx)));
  AddComponentListAddresses(s, ctx.P("team"), ctx.P("app"), &r.body["items"]);
  return r;
}

Result<Reply> CreateComponent(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "create components"));
  BERTH_RETURN_IF_ERROR(AppExists(s, ctx.P("team"), ctx.P("app")));
  BERTH_ASSIGN_OR_RETURN(Json body, JsonBody(ctx));
  BERTH_ASSIGN_OR_RETURN(int64_t ignored, TakeRevision(body));
  (void)ignored;
  BERTH_ASSIGN_OR_RETURN(model::Component c, model::ParseComponent(body));
  BERTH_RETURN_IF_ERROR(CheckSourceWrite(s, ctx, ctx.P("team"), ctx.P("app"), c.name, c.source, nullptr));
  Json created = model::ToJson(c);
  BERTH_ASSIGN_OR_RETURN(std::vector<Op> extra, LifecycleOps(s, ctx, nullptr, created));
  BERTH_ASSIGN_OR_RETURN(Reply r, CreateOf(s, ctx, ComponentTarget(ctx, c.name), created,
                                           std::move(extra)));
  AddComponentAddresses(s, ctx.P("team"), ctx.P("app"), &r.body);
  return r;
}

Result<Reply> UpdateComponent(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "change components"));
  BERTH_RETURN_IF_ERROR(AppExists(s, ctx.P("team"), ctx.P("app")));
  BERTH_ASSIGN_OR_RETURN(Reply r, UpdateOf(s, ctx, ComponentTarget(ctx, ctx.P("component")),
                  [&](const Json& merged, const Json& current) -> Result<Json> {
                    BERTH_ASSIGN_OR_RETURN(model::Component c, model::ParseComponent(merged));
                    const Json* before = current.contains("source") ? &current["source"] : nullptr;
                    BERTH_RETURN_IF_ERROR(CheckSourceWrite(s, ctx, ctx.P("team"), ctx.P("app"),
                                                           ctx.P("component"), c.source, before));
                    return model::ToJson(c);
                  },
                  [&](const Json& current, const Json& next) {
                    return LifecycleOps(s, ctx, &current, next);
                  }));
  AddComponentAddresses(s, ctx.P("team"), ctx.P("app"), &r.body);
  return r;
}

Result<Reply> DeleteComponent(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "delete components"));
  BERTH_RETURN_IF_ERROR(ComponentExists(s, ctx.P("team"), ctx.P("app"), ctx.P("component")));
  BERTH_ASSIGN_OR_RETURN(auto deps, Dependents(s, ctx.P("team"), ctx.P("app"), ctx.P("component")));
  if (!deps.empty()) {
    return FailedPrecondition("other components depend on " + Quoted(ctx.P("component")) + " (" +
                              JoinList(deps) + "): remove those dependencies first");
  }
  std::string volumes = ctx.req.Query("volumes");
  if (!volumes.empty() && volumes != "keep" && volumes != "delete") {
    return InvalidArgument("volumes must be keep (the default) or delete", "volumes");
  }
  // Gateway rules that route to it: removed (or, with other backends, trimmed) in the same
  // commit, releasing their claims.
  std::vector<std::string> rules;
  BERTH_ASSIGN_OR_RETURN(std::vector<Op> rule_ops,
                         routing::ComponentRuleOps(s.store, ctx.P("team"), ctx.P("app"),
                                                   ctx.P("component"), &rules));
  BERTH_ASSIGN_OR_RETURN(Reply r, DeleteOf(s, ctx, ComponentTarget(ctx, ctx.P("component")),
                                           CompScope(ctx), std::move(rule_ops)));
  if (volumes == "delete" && !s.options.data_dir.empty()) {
    // The instances still stopping may hold files open there; unlinked files stay readable
    // to them until they exit.
    // Apps write into their volumes: never follow a link they left there (older servers kept
    // them in DATA/volumes, a sandboxing one on the team's disk).
    Status removed = RemoveBeneath(s.options.data_dir, "volumes/" + CompScope(ctx));
    if (removed.ok()) {
      removed = RemoveBeneath(s.options.data_dir, "teams/" + ctx.P("team") + "/volumes/" +
                                                      ctx.P("app") + "/" + ctx.P("component"));
    }
    if (!removed.ok()) return Internal("component deleted, but its volumes were not: " + removed.message());
    r.body["volumes"] = "deleted";
  } else {
    r.body["volumes"] = "kept";
  }
  r.body["gateway_rules"] = rules;
  return r;
}

// ---- dependencies, versions, instances, events ---------------------------------------------

Result<Reply> ReadUnderComponent(Service& s, Ctx& ctx, const std::string& kind, bool descending) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kViewer, "read components"));
  BERTH_RETURN_IF_ERROR(ComponentExists(s, ctx.P("team"), ctx.P("app"), ctx.P("component")));
  return ListOf(s, ctx, kind, CompScope(ctx), descending);
}

Result<Reply> GetUnderComponent(Service& s, Ctx& ctx, const std::string& kind,
                                const std::string& noun, const std::string& param) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kViewer, "read components"));
  BERTH_RETURN_IF_ERROR(ComponentExists(s, ctx.P("team"), ctx.P("app"), ctx.P("component")));
  return GetOf(s, Target{kind, CompScope(ctx), ctx.P(param), noun, "", ""});
}

double Round2(double v) { return static_cast<double>(static_cast<int64_t>(v * 100 + 0.5)) / 100; }

// Instances as stored plus `usage` of the app's process group read now (null when it does not
// run here), so usage is live without the runtime rewriting instances every few seconds:
// {rss_bytes, cpu_seconds, processes} from /proc; cpu_percent over the sampler's window;
// memory_bytes from the instance's memory cgroup when it has one (working set), else the RSS
// sum (memory_source says which); memory_limit_bytes / cpu_limit_millis as the kernel applies
// them (null without a limit or without cgroups).
void AddUsage(const Service& s, Json& body) {
  std::vector<Json*> insts;
  if (body.contains("items") && body["items"].is_array()) {
    for (Json& i : body["items"]) insts.push_back(&i);
  } else if (body.is_object()) {
    insts.push_back(&body);
  }
  std::set<int> pgids;
  for (const Json* i : insts) {
    int pid = i->value("pid", 0);
    if (pid > 0) pgids.insert(pid);
  }
  auto usage = ReadProcessGroups(pgids);
  auto now = std::chrono::steady_clock::now();
  const UsageSampler* sampler = s.options.usage.get();
  for (Json* i : insts) {
    int pid = i->value("pid", 0);
    auto it = usage.find(pid);
    if (it == usage.end()) {
      (*i)["usage"] = nullptr;
      continue;
    }
    const ProcessGroupUsage& u = it->second;
    Json cpu_percent = nullptr, memory_limit = nullptr, cpu_limit = nullptr;
    int64_t memory = u.rss_bytes;
    std::string source = "proc";
    if (sampler != nullptr) {
      if (auto p = sampler->Percent(pid, {now, u.cpu_seconds})) cpu_percent = std::round(*p * 10) / 10;
      std::string name = sampler->CgroupOf(pid);
      Cgroup group = name.empty() ? Cgroup() : Cgroup::Open(sampler->cgroups(), name);
      if (auto m = group.MemoryBytes()) {
        memory = *m;
        source = "cgroup";
      }
      if (auto l = group.MemoryLimitBytes()) memory_limit = *l;
      if (auto l = group.CpuLimitMillis()) cpu_limit = *l;
    }
    (*i)["usage"] = {{"rss_bytes", u.rss_bytes},
                     {"cpu_seconds", Round2(u.cpu_seconds)},
                     {"processes", u.processes},
                     {"cpu_percent", cpu_percent},
                     {"memory_bytes", memory},
                     {"memory_source", source},
                     {"memory_limit_bytes", memory_limit},
                     {"cpu_limit_millis", cpu_limit}};
  }
}

Result<Reply> ListInstances(Service& s, Ctx& ctx) {
  BERTH_ASSIGN_OR_RETURN(Reply r, ReadUnderComponent(s, ctx, model::kInstance, false));
  AddUsage(s, r.body);
  return r;
}

Result<Reply> GetInstance(Service& s, Ctx& ctx) {
  BERTH_ASSIGN_OR_RETURN(Reply r, GetUnderComponent(s, ctx, model::kInstance, "instance", "instance"));
  AddUsage(s, r.body);
  return r;
}

Result<Reply> AddDependency(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "change dependencies"));
  BERTH_RETURN_IF_ERROR(ComponentExists(s, ctx.P("team"), ctx.P("app"), ctx.P("component")));
  BERTH_ASSIGN_OR_RETURN(Json body, JsonBody(ctx));
  BERTH_ASSIGN_OR_RETURN(model::Dependency d, model::ParseDependencyInput(body, ctx.P("app")));
  if (d.target_app == ctx.P("app") && d.target_component == ctx.P("component")) {
    return InvalidArgument("a component cannot depend on itself", "target_component");
  }
  Status exists = ComponentExists(s, ctx.P("team"), d.target_app, d.target_component);
  if (!exists.ok()) {
    if (exists.code() == Code::kNotFound) return InvalidArgument(exists.message(), "target_component");
    return exists;
  }
  Target t{model::kDependency, CompScope(ctx), d.name, "dependency", ctx.P("team"),
           CompRes(ctx) + "/dependencies/" + d.name};
  return CreateOf(s, ctx, t, model::ToJson(d), {},
                  ctx.P("team") + "/" + d.target_app + "/" + d.target_component);
}

Result<Reply> RemoveDependency(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "change dependencies"));
  Target t{model::kDependency, CompScope(ctx), ctx.P("dependency"), "dependency", ctx.P("team"),
           CompRes(ctx) + "/dependencies/" + ctx.P("dependency")};
  return DeleteOf(s, ctx, t);
}

Result<Reply> CreateVersion(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "create versions"));
  BERTH_RETURN_IF_ERROR(ComponentExists(s, ctx.P("team"), ctx.P("app"), ctx.P("component")));
  BERTH_ASSIGN_OR_RETURN(Json body, JsonBody(ctx));
  BERTH_ASSIGN_OR_RETURN(int64_t ignored, TakeRevision(body));
  (void)ignored;
  if (body.contains("name") || body.contains("number")) {
    return InvalidArgument("version names and numbers are assigned by the server",
                           body.contains("name") ? "name" : "number");
  }
  // Where a version's log lives and what a build was asked to build are the server's to say:
  // a build_log named any file the log route would read and retention delete, a build_request
  // any source the builder would build (docs/security.md "Input and paths").
  for (const char* field : {"build_log", "build_request"}) {
    auto it = body.find(field);
    if (it == body.end() || it->is_null() || (it->is_string() && it->get_ref<const std::string&>().empty()) ||
        (it->is_object() && it->empty())) {
      continue;
    }
    return Status(Code::kInvalidArgument, "server_assigned",
                  std::string(field) + " is set by the server (the build log's place is derived "
                  "from the names; a build request from the component): leave it out",
                  field);
  }
  BERTH_ASSIGN_OR_RETURN(model::Version v, model::ParseVersion(body));
  v.build_log.clear();
  v.build_request = Json::object();
  // Numbers count up per component; a concurrent create of the same number loses the
  // kCreate race and takes the next one.
  for (int attempt = 0; attempt < 5; ++attempt) {
    BERTH_ASSIGN_OR_RETURN(ListResult all, s.store.List(model::kVersion, ListOptions{CompScope(ctx), "", 1000}));
    int64_t max = 0;
    for (const Object& o : all.items) max = std::max<int64_t>(max, Stored(o).value("number", int64_t{0}));
    v.number = max + 1;
    v.name = "v" + std::to_string(v.number);
    if (v.built_at.empty()) v.built_at = FormatTime(s.clock.Now());
    v.build_log = builder::BuildLogPath(ctx.P("team"), ctx.P("app"), ctx.P("component"), v.name);
    Target t{model::kVersion, CompScope(ctx), v.name, "version", ctx.P("team"),
             CompRes(ctx) + "/versions/" + v.name};
    auto r = CreateOf(s, ctx, t, model::ToJson(v));
    if (r.ok() || r.status().code() != Code::kAlreadyExists) return r;
  }
  return RevisionConflict("versions are being created concurrently: retry");
}

Result<Reply> DeleteVersion(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "delete versions"));
  Target t{model::kVersion, CompScope(ctx), ctx.P("version"), "version", ctx.P("team"),
           CompRes(ctx) + "/versions/" + ctx.P("version")};
  return DeleteOf(s, ctx, t);
}

Result<Reply> TeamEvents(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kViewer, "read events"));
  BERTH_ASSIGN_OR_RETURN(ListOptions o, ListOpts(ctx, ctx.P("team")));
  o.descending = true;
  o.recursive = true;
  BERTH_ASSIGN_OR_RETURN(ListResult r, s.store.List(model::kEvent, o));
  return ListReply(r);
}

// ---- audit --------------------------------------------------------------------------------

Result<Reply> AuditList(Service& s, const Ctx& ctx, const std::string& team) {
  std::string lim = ctx.req.Query("limit", "100");
  std::string before = ctx.req.Query("after", "0");
  auto numeric = [](const std::string& v) {
    return !v.empty() && v.size() <= 18 && v.find_first_not_of("0123456789") == std::string::npos;
  };
  if (!numeric(lim) || std::stoll(lim) < 1 || std::stoll(lim) > 500) {
    return InvalidArgument("limit must be a number from 1 to 500", "limit");
  }
  if (!numeric(before)) return InvalidArgument("after must be an audit entry id", "after");
  int limit = static_cast<int>(std::stoll(lim));
  BERTH_ASSIGN_OR_RETURN(std::vector<AuditEntry> es, s.store.ListAudit(team, std::stoll(before), limit + 1));
  Json items = Json::array();
  std::string next;
  for (size_t i = 0; i < es.size() && static_cast<int>(i) < limit; ++i) {
    const AuditEntry& e = es[i];
    Json summary = Json::parse(e.record.summary, nullptr, false);
    items.push_back({{"id", e.id},
                     {"time", FormatTime(FromUnixMillis(e.time_ms))},
                     {"revision", e.revision},
                     {"actor", e.record.actor},
                     {"team", e.record.team},
                     {"action", e.record.action},
                     {"resource", e.record.resource},
                     {"summary", summary.is_discarded() ? Json() : summary}});
    if (static_cast<int>(i) == limit - 1 && static_cast<int>(es.size()) > limit) next = std::to_string(e.id);
  }
  return Reply{200, {{"items", items}, {"next", next}, {"revision", s.store.Head()}}, {}, nullptr};
}

// ---- registration -------------------------------------------------------------------------

struct Def {
  const char* method;
  std::string pattern;
  const char* summary;
  const char* tag;
  const char* request_schema;
  const char* response_schema;
  bool is_list;
  int success;
  std::function<Result<Reply>(Service&, Ctx&)> fn;
  bool public_route = false;
  bool blocking = false;
};

}  // namespace

Json RenderObject(const Object& o) {
  Json j = Stored(o);
  j.erase("password_hash");
  if (o.kind == model::kWebhook) j.erase("secret");  // shown only by GET/PUT .../webhook
  j.erase("key_sealed");  // certificates (gateway_routes.cc): sealed keys never leave
  std::vector<std::string> parents = SplitScope(o.scope);
  const std::string& k = o.kind;
  if (k == model::kMember || k == model::kApp) {
    if (!parents.empty()) j["team"] = parents[0];
  } else if (k == model::kComponent) {
    if (parents.size() >= 2) j["team"] = parents[0], j["app"] = parents[1];
  } else if (k == model::kDependency || k == model::kVersion || k == model::kInstance ||
             k == model::kEvent || k == model::kWebhook ||
             k == model::kOperation || k == model::kRun) {
    if (parents.size() >= 3) j["team"] = parents[0], j["app"] = parents[1], j["component"] = parents[2];
  } else if (k == model::kToken) {
    j.erase("expires_at_ms");
    j.erase("last_used_at_ms");
    Json stored = Stored(o);
    int64_t exp = stored.value("expires_at_ms", int64_t{0});
    int64_t used = stored.value("last_used_at_ms", int64_t{0});
    j["expires_at"] = exp ? Json(FormatTime(FromUnixMillis(exp))) : Json();
    j["last_used_at"] = used ? Json(FormatTime(FromUnixMillis(used))) : Json();
  }
  j["revision"] = o.revision;
  j["created_at"] = FormatTime(FromUnixMillis(o.created_at_ms));
  j["updated_at"] = FormatTime(FromUnixMillis(o.updated_at_ms));
  return j;
}

void RegisterResourceRoutes(Service& svc) {
  const std::string T = "/api/v1/teams/{team}";
  const std::string A = T + "/apps/{app}";
  const std::string C = A + "/components/{component}";
  auto viewer = [](const char* action) {
    return [action](Service& s, Ctx& c) -> Status { return NeedRole(s, c, Role::kViewer, action); };
  };
  (void)viewer;
  std::vector<Def> defs = {
      {"GET", "/healthz", "Liveness: the process answers", "health", "", "Health", false, 200,
       [](Service&, Ctx&) -> Result<Reply> { return Reply{200, {{"status", "ok"}}, {}, nullptr}; },
       true},
      {"GET", "/readyz", "Readiness: the store is open and the server accepts work", "health", "",
       "Health", false, 200,
       [](Service& s, Ctx&) -> Result<Reply> {
         if (!s.ready) return Unavailable("berth server is starting or stopping");
         if (Status disk = WritesPossible(s); !disk.ok()) return disk;
         return Reply{200, {{"status", "ready"}, {"revision", s.store.Head()}}, {}, nullptr};
       },
       true},
      {"GET", "/api/v1/openapi.json", "This document", "meta", "", "", false, 200,
       [](Service& s, Ctx&) -> Result<Reply> {
         return Reply{200, Json::parse(s.openapi), {}, nullptr};
       },
       true},
      {"POST", "/api/v1/login", "Log in: exchange a user name and password for a token", "session",
       "LoginRequest", "LoginResponse", false, 200, Login, true, true},
      {"POST", "/api/v1/logout", "Revoke the calling token", "session", "", "", false, 200, Logout},
      {"GET", "/api/v1/whoami", "The calling user and their teams", "session", "", "Whoami", false,
       200, Whoami},

      {"GET", "/api/v1/users", "List users (administrators: all; others: themselves)", "users", "",
       "User", true, 200, ListUsers},
      {"POST", "/api/v1/users", "Create a user (platform administrators)", "users", "UserInput",
       "User", false, 201, CreateUser, false, true},
      {"GET", "/api/v1/users/{user}", "Show a user", "users", "", "User", false, 200,
       [](Service& s, Ctx& c) -> Result<Reply> {
         BERTH_RETURN_IF_ERROR(NeedSelfOrAdmin(c, c.P("user")));
         return GetOf(s, Target{model::kUser, "", c.P("user"), "user", "", ""});
       }},
      {"PUT", "/api/v1/users/{user}", "Replace a user's settings or password", "users", "UserInput",
       "User", false, 200, UpdateUser, false, true},
      {"PATCH", "/api/v1/users/{user}", "Change some of a user's settings or password", "users",
       "UserInput", "User", false, 200, UpdateUser, false, true},
      {"DELETE", "/api/v1/users/{user}", "Delete a user, their tokens and memberships", "users", "",
       "Deleted", false, 200, DeleteUser},

      {"GET", "/api/v1/tokens", "List the caller's API tokens", "tokens", "", "Token", true, 200,
       [](Service& s, Ctx& c) { return ListOf(s, c, model::kToken, model::TokenScope(c.who.user)); }},
      {"POST", "/api/v1/tokens", "Create an API token (the secret is shown once)", "tokens",
       "TokenInput", "Token", false, 201, CreateToken},
      {"DELETE", "/api/v1/tokens/{token}", "Revoke one of the caller's tokens", "tokens", "",
       "Deleted", false, 200,
       [](Service& s, Ctx& c) {
         return DeleteOf(s, c, Target{model::kToken, model::TokenScope(c.who.user), c.P("token"),
                                      "token", "", "tokens/" + c.P("token")});
       }},
      {"GET", "/api/v1/audit", "Platform-level audit log (users, tokens, logins)", "audit", "",
       "AuditEntry", true, 200,
       [](Service& s, Ctx& c) -> Result<Reply> {
         BERTH_RETURN_IF_ERROR(NeedPlatformAdmin(c, "read the platform audit log"));
         return AuditList(s, c, "");
       }},

      {"GET", "/api/v1/settings", "The platform settings (who may create teams, their quota)",
       "settings", "", "PlatformSettings", false, 200, GetSettings},
      {"PUT", "/api/v1/settings", "Replace the platform settings (platform administrators)",
       "settings", "PlatformSettings", "PlatformSettings", false, 200, UpdateSettings},
      {"PATCH", "/api/v1/settings", "Change some platform settings (platform administrators)",
       "settings", "PlatformSettings", "PlatformSettings", false, 200, UpdateSettings},

      {"GET", "/api/v1/teams", "List the caller's teams (administrators: all)", "teams", "", "Team",
       true, 200, ListTeams},
      {"POST", "/api/v1/teams", "Create a team; the caller becomes its owner", "teams", "Team",
       "Team", false, 201, CreateTeam},
      {"GET", T, "Show a team", "teams", "", "Team", false, 200,
       [](Service& s, Ctx& c) -> Result<Reply> {
         BERTH_RETURN_IF_ERROR(NeedRole(s, c, Role::kViewer, "read the team"));
         BERTH_ASSIGN_OR_RETURN(Reply r, GetOf(s, Target{model::kTeam, "", c.P("team"), "team", "", ""}));
         // What the team's disk holds (its own filesystem under the sandbox), read now.
         if (s.options.team_disk) {
           if (auto d = s.options.team_disk(c.P("team")); d) r.body["disk"] = *d;
         }
         return r;
       }},
      {"PUT", T, "Replace a team's settings", "teams", "Team", "Team", false, 200, UpdateTeam},
      {"PATCH", T, "Change some of a team's settings", "teams", "Team", "Team", false, 200,
       UpdateTeam},
      {"DELETE", T, "Delete a team and everything in it (owners)", "teams", "", "Deleted", false,
       200, DeleteTeam},
      {"GET", T + "/audit", "The team's audit log, newest first (admins)", "audit", "",
       "AuditEntry", true, 200,
       [](Service& s, Ctx& c) -> Result<Reply> {
         BERTH_RETURN_IF_ERROR(NeedRole(s, c, Role::kAdmin, "read the audit log"));
         return AuditList(s, c, c.P("team"));
       }},
      {"GET", T + "/events", "Events of every component in the team, newest first", "events", "",
       "Event", true, 200, TeamEvents},

      {"GET", T + "/members", "List members and their roles", "members", "", "Member", true, 200,
       [](Service& s, Ctx& c) -> Result<Reply> {
         BERTH_RETURN_IF_ERROR(NeedRole(s, c, Role::kViewer, "read members"));
         return ListOf(s, c, model::kMember, c.P("team"));
       }},
      {"POST", T + "/members", "Add a member with a role (admins; owners for owner)", "members",
       "Member", "Member", false, 201, AddMember},
      {"GET", T + "/members/{user}", "Show a member", "members", "", "Member", false, 200,
       [](Service& s, Ctx& c) -> Result<Reply> {
         BERTH_RETURN_IF_ERROR(NeedRole(s, c, Role::kViewer, "read members"));
         return GetOf(s, MemberTarget(c, c.P("user")));
       }},
      {"PUT", T + "/members/{user}", "Change a member's role", "members", "Member", "Member", false,
       200, UpdateMember},
      {"PATCH", T + "/members/{user}", "Change a member's role", "members", "Member", "Member",
       false, 200, UpdateMember},
      {"DELETE", T + "/members/{user}", "Remove a member (or leave the team)", "members", "",
       "Deleted", false, 200, RemoveMember},

      {"GET", T + "/apps", "List apps", "apps", "", "App", true, 200,
       [](Service& s, Ctx& c) -> Result<Reply> {
         BERTH_RETURN_IF_ERROR(NeedRole(s, c, Role::kViewer, "read apps"));
         return ListOf(s, c, model::kApp, c.P("team"));
       }},
      {"POST", T + "/apps", "Create an app", "apps", "App", "App", false, 201, CreateApp},
      {"GET", A, "Show an app", "apps", "", "App", false, 200,
       [](Service& s, Ctx& c) -> Result<Reply> {
         BERTH_RETURN_IF_ERROR(NeedRole(s, c, Role::kViewer, "read apps"));
         return GetOf(s, AppTarget(c, c.P("app")));
       }},
      {"PUT", A, "Replace an app's settings", "apps", "App", "App", false, 200, UpdateApp},
      {"PATCH", A, "Change some of an app's settings", "apps", "App", "App", false, 200, UpdateApp},
      {"DELETE", A, "Delete an app and all its components", "apps", "", "Deleted", false, 200,
       DeleteApp},

      {"GET", A + "/components", "List an app's components", "components", "", "Component", true,
       200, ListComponents},
      {"POST", A + "/components", "Create a component", "components", "Component", "Component",
       false, 201, CreateComponent},
      {"GET", C, "Show a component", "components", "", "Component", false, 200,
       [](Service& s, Ctx& c) -> Result<Reply> {
         BERTH_RETURN_IF_ERROR(NeedRole(s, c, Role::kViewer, "read components"));
         BERTH_RETURN_IF_ERROR(AppExists(s, c.P("team"), c.P("app")));
         BERTH_ASSIGN_OR_RETURN(Reply r, GetOf(s, ComponentTarget(c, c.P("component"))));
         AddComponentAddresses(s, c.P("team"), c.P("app"), &r.body);
         return r;
       }},
      {"PUT", C, "Replace a component's settings", "components", "Component", "Component", false,
       200, UpdateComponent},
      {"PATCH", C, "Change some of a component's settings (JSON merge patch)", "components",
       "Component", "Component", false, 200, UpdateComponent},
      {"DELETE", C, "Delete a component with its versions and instances", "components", "",
       "Deleted", false, 200, DeleteComponent},

      {"GET", C + "/dependencies", "List what the component depends on", "dependencies", "",
       "Dependency", true, 200,
       [](Service& s, Ctx& c) { return ReadUnderComponent(s, c, model::kDependency, false); }},
      {"POST", C + "/dependencies", "Make the component depend on another", "dependencies",
       "DependencyInput", "Dependency", false, 201, AddDependency},
      {"GET", C + "/dependencies/{dependency}", "Show a dependency", "dependencies", "",
       "Dependency", false, 200,
       [](Service& s, Ctx& c) {
         return GetUnderComponent(s, c, model::kDependency, "dependency", "dependency");
       }},
      {"DELETE", C + "/dependencies/{dependency}", "Remove a dependency", "dependencies", "",
       "Deleted", false, 200, RemoveDependency},

      {"GET", C + "/versions", "List the component's versions", "versions", "", "Version", true,
       200, [](Service& s, Ctx& c) { return ReadUnderComponent(s, c, model::kVersion, false); }},
      {"POST", C + "/versions", "Record a version (a built artifact and its start command)",
       "versions", "Version", "Version", false, 201, CreateVersion},
      {"GET", C + "/versions/{version}", "Show a version", "versions", "", "Version", false, 200,
       [](Service& s, Ctx& c) {
         return GetUnderComponent(s, c, model::kVersion, "version", "version");
       }},
      {"DELETE", C + "/versions/{version}", "Delete a version", "versions", "", "Deleted", false,
       200, DeleteVersion},

      {"GET", C + "/instances", "List the component's running instances", "instances", "",
       "Instance", true, 200,
       ListInstances},
      {"GET", C + "/instances/{instance}", "Show an instance", "instances", "", "Instance", false,
       200,
       [](Service& s, Ctx& c) {
         return GetInstance(s, c);
       }},
      {"GET", C + "/events", "The component's events, newest first", "events", "", "Event", true,
       200, [](Service& s, Ctx& c) { return ReadUnderComponent(s, c, model::kEvent, true); }},
  };
  for (Def& d : defs) {
    Route r;
    r.method = d.method;
    r.pattern = d.pattern;
    r.summary = d.summary;
    r.tag = d.tag;
    r.request_schema = d.request_schema;
    r.response_schema = d.response_schema;
    r.is_list = d.is_list;
    r.success_status = d.success;
    r.public_route = d.public_route;
    r.blocking = d.blocking;
    Service* sp = &svc;
    auto fn = d.fn;
    r.fn = [sp, fn](Ctx& c) { return fn(*sp, c); };
    svc.router.Add(std::move(r));
  }
}

}  // namespace berth::api
