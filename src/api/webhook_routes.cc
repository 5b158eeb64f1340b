// Webhooks (docs/api.md "Webhooks"): a component can enable one webhook; a git host's push to
// the component's branch then queues a build of the pushed commit, which the deploy
// controller runs once it is ready (when the component follows the newest version).
//
// The webhook is a store object of kind "webhook" named "webhook" in the component's scope
// (so deleting the component deletes it), found by its random id through the index key. Its
// secret is kept in clear because HMAC verification needs the key itself; RenderObject never
// shows it — only GET/PUT of the webhook (developers and up) do.
//
// Receiving (POST /api/v1/hooks/{id}, no token): the proof is checked before anything in the
// body is read — GitHub's X-Hub-Signature-256 ("sha256=" + hex HMAC-SHA256 of the raw body),
// Gitea's X-Gitea-Signature (hex HMAC-SHA256), GitLab's X-Gitlab-Token (the secret), or for
// the generic form X-Berth-Token / ?token= (the secret) — always compared in constant time.
// A bad or missing proof is 401 invalid_signature and changes nothing.
#include <algorithm>

#include "api/detail/service.h"
#include "auth/crypto.h"
#include "events/events.h"

namespace berth::api {
namespace {

using model::Role;

constexpr char kWebhookName[] = "webhook";
constexpr char kZeroCommit[] = "0000000000000000000000000000000000000000";

std::string CompScope(const Ctx& c) { return c.P("team") + "/" + c.P("app") + "/" + c.P("component"); }
std::string Resource(const Ctx& c) {
  return "apps/" + c.P("app") + "/components/" + c.P("component") + "/webhook";
}

Result<Object> LoadComponent(Service& s, const std::string& team, const std::string& app,
                             const std::string& component) {
  auto c = s.store.Get(model::kComponent, team + "/" + app, component);
  if (!c.ok() && c.status().code() == Code::kNotFound) {
    return NotFound("component " + Quoted(component) + " not found in app " + Quoted(app));
  }
  return c;
}

Status Unsigned(const std::string& why) {
  return Status(Code::kUnauthenticated, "invalid_signature", why);
}
Status BadPayload(const std::string& why) {
  return Status(Code::kInvalidArgument, "invalid_payload", why);
}

// What the owner of a webhook sees: the stored fields plus the path to configure at the git
// host and, when the request said which host it reached, the full URL.
Json View(const Object& o, const Ctx& ctx, bool with_secret) {
  Json j = RenderObject(o);
  std::string path = "/api/v1/hooks/" + j.value("id", "");
  j["path"] = path;
  const std::string& host = ctx.req.Header("host");
  if (!host.empty() && host.find_first_of(" /\r\n") == std::string::npos) j["url"] = "http://" + host + path;
  if (with_secret) j["secret"] = Stored(o).value("secret", "");
  return j;
}

// ---- managing the webhook (developers and up) ---------------------------------------------

Result<Reply> GetWebhook(Service& s, Ctx& ctx) {
  // The secret is shown, so viewers may not read it.
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "read webhooks"));
  BERTH_ASSIGN_OR_RETURN(Object comp, LoadComponent(s, ctx.P("team"), ctx.P("app"), ctx.P("component")));
  (void)comp;
  auto w = s.store.Get(model::kWebhook, CompScope(ctx), kWebhookName);
  if (!w.ok() && w.status().code() == Code::kNotFound) {
    return NotFound("component " + Quoted(ctx.P("component")) + " has no webhook: enable one with PUT");
  }
  if (!w.ok()) return w.status();
  return Reply{200, View(*w, ctx, true), {}, nullptr};
}

// PUT {"provider": "github"|"gitea"|"gitlab"|"generic", "branch"?: "main", "rotate_secret"?: bool}
// enables the webhook or changes it; the id and secret stay unless rotate_secret is true.
Result<Reply> PutWebhook(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "manage webhooks"));
  const std::string& ct = ctx.req.Header("content-type");
  if (!ct.empty() && ct.rfind("application/json", 0) != 0) {
    return Status(Code::kUnsupportedMedia, "unsupported_media_type",
                  "the body must be JSON (Content-Type: application/json), got " + ct);
  }
  BERTH_ASSIGN_OR_RETURN(Json body, ParseJsonObject(ctx.req.body.empty() ? "{}" : ctx.req.body));
  std::string provider = "github", branch;
  bool rotate = false;
  JsonReader r(body, "");
  r.Enum("provider", &provider, {"github", "gitea", "gitlab", "generic"});
  r.Str("branch", &branch, 255);
  r.Bool("rotate_secret", &rotate);
  r.Finish();
  if (!r.ok()) return r.status();
  if (!branch.empty() && (branch.front() == '-' || branch.find_first_of(" \t\r\n\\~^:?*[") != std::string::npos ||
                          branch.find("..") != std::string::npos)) {
    return InvalidArgument("branch " + Quoted(branch) + " is not a valid git branch name", "branch");
  }
  if (branch.rfind("refs/heads/", 0) == 0) branch = branch.substr(11);
  BERTH_ASSIGN_OR_RETURN(Object comp, LoadComponent(s, ctx.P("team"), ctx.P("app"), ctx.P("component")));
  (void)comp;
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto existing = s.store.Get(model::kWebhook, CompScope(ctx), kWebhookName);
    if (!existing.ok() && existing.status().code() != Code::kNotFound) return existing.status();
    Json before = existing.ok() ? Stored(*existing) : Json();
    Json after = {{"id", existing.ok() ? before.value("id", "") : auth::RandomHex(16)},
                  {"provider", provider},
                  {"branch", branch},
                  {"secret", existing.ok() && !rotate ? before.value("secret", "") : auth::RandomHex(24)}};
    if (after["id"].get<std::string>().empty()) after["id"] = auth::RandomHex(16);
    if (after["secret"].get<std::string>().empty()) after["secret"] = auth::RandomHex(24);
    WriteBatch b;
    Op op;
    op.type = existing.ok() ? OpType::kUpdate : OpType::kCreate;
    op.object = Object{model::kWebhook, CompScope(ctx), kWebhookName, after.dump(), after["id"].get<std::string>()};
    if (existing.ok()) op.expected_revision = existing->revision;
    b.ops.push_back(op);
    auto redact = [](Json j) {
      if (j.is_object() && j.contains("secret")) j["secret"] = "(secret)";
      return j;
    };
    Json audit_after = redact(after);
    if (rotate) audit_after["secret"] = "(rotated)";
    b.audit.push_back({ctx.who.user, ctx.P("team"), existing.ok() ? "update" : "create", Resource(ctx),
                       Json({{"before", redact(before)}, {"after", audit_after}}).dump()});
    auto c = s.store.Commit(b);
    if (c.ok()) return Reply{existing.ok() ? 200 : 201, View(c->objects.front(), ctx, true), {}, nullptr};
    if (c.status().code() != Code::kAlreadyExists && c.status().reason() != "revision_conflict" &&
        c.status().code() != Code::kNotFound) {
      return c.status();
    }
  }
  return RevisionConflict("the webhook is changing concurrently: retry");
}

Result<Reply> DeleteWebhook(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "manage webhooks"));
  BERTH_ASSIGN_OR_RETURN(Object comp, LoadComponent(s, ctx.P("team"), ctx.P("app"), ctx.P("component")));
  (void)comp;
  auto w = s.store.Get(model::kWebhook, CompScope(ctx), kWebhookName);
  if (!w.ok() && w.status().code() == Code::kNotFound) {
    return NotFound("component " + Quoted(ctx.P("component")) + " has no webhook");
  }
  if (!w.ok()) return w.status();
  Json before = Stored(*w);
  before["secret"] = "(secret)";
  WriteBatch b;
  Op op;
  op.type = OpType::kDelete;
  op.object = Object{model::kWebhook, CompScope(ctx), kWebhookName, "{}", ""};
  op.expected_revision = w->revision;
  b.ops.push_back(op);
  b.audit.push_back({ctx.who.user, ctx.P("team"), "delete", Resource(ctx),
                     Json({{"before", before}, {"after", nullptr}}).dump()});
  BERTH_ASSIGN_OR_RETURN(CommitResult c, s.store.Commit(b));
  return Reply{200, {{"deleted", "webhook"}, {"name", ctx.P("component")}, {"revision", c.revision}}, {}, nullptr};
}

// ---- receiving a delivery (no token; the secret proves the sender) ------------------------

Status Verify(const HttpRequest& req, const std::string& provider, const std::string& secret) {
  if (provider == "github" || provider == "gitea") {
    const char* header = provider == "github" ? "x-hub-signature-256" : "x-gitea-signature";
    std::string sig = req.Header(header);
    if (sig.empty()) return Unsigned(std::string("the delivery has no ") + (provider == "github" ? "X-Hub-Signature-256" : "X-Gitea-Signature") + " header");
    if (provider == "github") {
      if (sig.rfind("sha256=", 0) != 0) return Unsigned("X-Hub-Signature-256 must be sha256=<hex>");
      sig = sig.substr(7);
    }
    std::transform(sig.begin(), sig.end(), sig.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (!auth::ConstantTimeEquals(sig, auth::HmacSha256Hex(secret, req.body))) {
      return Unsigned("the signature does not match the body and the webhook's secret");
    }
    return Status::Ok();
  }
  std::string token = provider == "gitlab" ? req.Header("x-gitlab-token") : req.Header("x-berth-token");
  if (token.empty() && provider == "generic") token = req.Query("token");
  if (token.empty()) {
    return Unsigned(provider == "gitlab" ? "the delivery has no X-Gitlab-Token header"
                                         : "the delivery has no X-Berth-Token header or token query parameter");
  }
  if (!auth::ConstantTimeEquals(token, secret)) return Unsigned("the token does not match the webhook's secret");
  return Status::Ok();
}

Reply Ignored(const std::string& why) {
  return Reply{202, {{"status", "ignored"}, {"reason", why}}, {}, nullptr};
}

std::string Str(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

Result<Reply> ReceiveHook(Service& s, Ctx& ctx) {
  const std::string id = ctx.P("id");
  if (id.empty() || id.size() > 64 || id.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return NotFound("no webhook " + Quoted(id));
  }
  BERTH_ASSIGN_OR_RETURN(std::vector<Object> found, s.store.FindByIndex(model::kWebhook, id));
  if (found.size() != 1) return NotFound("no webhook " + Quoted(id));
  const Object hook = found.front();
  const Json hj = Stored(hook);
  const std::string provider = hj.value("provider", "");
  BERTH_RETURN_IF_ERROR(Verify(ctx.req, provider, hj.value("secret", "")));

  // Authentic from here on. Which event is it?
  std::string event;
  if (provider == "github") event = ctx.req.Header("x-github-event");
  if (provider == "gitea") event = ctx.req.Header("x-gitea-event");
  if (provider == "gitlab") event = ctx.req.Header("x-gitlab-event");
  if (provider == "github" && event == "ping") {
    return Reply{200, {{"status", "ok"}, {"reason", "pong"}}, {}, nullptr};
  }
  bool is_push = provider == "generic" || event == "push" || event == "Push Hook";
  if (!is_push) return Ignored("event " + Quoted(event) + " is not a push");

  // The payload: JSON, or GitHub's form encoding (payload=<json>).
  Json payload = Json::object();
  std::string text = ctx.req.body;
  const std::string& ct = ctx.req.Header("content-type");
  if (ct.rfind("application/x-www-form-urlencoded", 0) == 0) {
    auto form = ParseQuery(text);
    auto it = form.find("payload");
    if (it == form.end()) return BadPayload("a form-encoded delivery must carry payload=<json>");
    text = it->second;
  }
  if (!text.empty()) {
    BERTH_RETURN_IF_ERROR(CheckJsonDepth(text));  // before the parser sees hostile nesting
    payload = Json::parse(text, nullptr, false);
    if (payload.is_discarded() || !payload.is_object()) return BadPayload("the payload is not a JSON object");
  } else if (provider != "generic") {
    return BadPayload("the push delivery has no payload");
  }
  std::string ref = Str(payload, "ref");
  std::string commit = Str(payload, provider == "generic" ? "commit" : "after");
  if (provider == "gitlab" && !Str(payload, "checkout_sha").empty()) commit = Str(payload, "checkout_sha");
  if (provider != "generic" && ref.empty()) return BadPayload("the push payload has no \"ref\"");
  if (!commit.empty() && (commit.size() > 64 || commit.find_first_not_of("0123456789abcdef") != std::string::npos)) {
    return BadPayload("the pushed commit " + Quoted(commit) + " is not a hexadecimal commit id");
  }

  // Whose webhook, and which branch does the component follow?
  std::vector<std::string> parts;
  for (size_t i = 0; i <= hook.scope.size();) {
    size_t j = hook.scope.find('/', i);
    if (j == std::string::npos) j = hook.scope.size();
    parts.push_back(hook.scope.substr(i, j - i));
    i = j + 1;
  }
  if (parts.size() != 3) return Internal("webhook stored under a malformed scope " + Quoted(hook.scope));
  BERTH_ASSIGN_OR_RETURN(Object comp_obj, LoadComponent(s, parts[0], parts[1], parts[2]));
  BERTH_ASSIGN_OR_RETURN(model::Component comp, model::ParseComponent(Stored(comp_obj)));
  if (provider != "generic" && comp.source.type != "git") {
    return FailedPrecondition("component " + Quoted(comp.name) + " builds from a " + comp.source.type +
                              " source, not git: a push cannot be built");
  }
  std::string branch = hj.value("branch", "");
  if (branch.empty()) branch = comp.source.ref;
  if (branch.empty() && payload.contains("repository") && payload["repository"].is_object()) {
    branch = Str(payload["repository"], "default_branch");
  }
  if (branch.empty() && payload.contains("project") && payload["project"].is_object()) {
    branch = Str(payload["project"], "default_branch");
  }
  if (branch.empty() && provider != "generic") branch = "main";

  std::string pushed = ref.rfind("refs/heads/", 0) == 0 ? ref.substr(11) : ref;
  if (!ref.empty()) {
    if (ref.rfind("refs/heads/", 0) != 0 && provider != "generic") {
      return Ignored("push to " + ref + " is not a branch; the component follows branch " + branch);
    }
    if (!branch.empty() && pushed != branch) {
      return Ignored("push to branch " + pushed + "; the component follows branch " + branch);
    }
  }
  if (commit == kZeroCommit) return Ignored("branch " + pushed + " was deleted");

  Json trigger = {{"webhook", provider}};
  if (!pushed.empty()) trigger["branch"] = pushed;
  if (!commit.empty()) trigger["commit"] = commit;
  // Build the pushed commit itself (not whatever the branch points at when the build starts);
  // without a commit (generic form), the component's own ref.
  std::string build_ref = comp.source.type == "git" ? commit : "";
  BERTH_ASSIGN_OR_RETURN(Object v, QueueVersion(s, parts[0], parts[1], comp, build_ref,
                                                "webhook:" + provider, trigger));
  bool deploys = comp.version.empty();
  std::string message = "webhook (" + provider + ") " +
                        (pushed.empty() ? std::string("delivery") : "push to " + pushed) +
                        (commit.empty() ? "" : " at " + commit.substr(0, 12)) + " queued build " + v.name +
                        (deploys ? "" : "; the component is pinned to " + comp.version + ", so it will not deploy");
  events::Recorder rec(s.store, s.clock);
  (void)rec.Record({parts[0], parts[1], parts[2]}, events::Type::kNormal, "WebhookBuild", message);
  Json out = {{"status", "queued"}, {"version", v.name}, {"deploys", deploys}, {"reason", message}};
  if (!commit.empty()) out["commit"] = commit;
  if (!pushed.empty()) out["branch"] = pushed;
  return Reply{202, out, {}, nullptr};
}

}  // namespace

void RegisterWebhookRoutes(Service& svc) {
  const std::string C = "/api/v1/teams/{team}/apps/{app}/components/{component}";
  struct Def {
    const char* method;
    std::string pattern;
    const char* summary;
    int success;
    std::function<Result<Reply>(Service&, Ctx&)> fn;
    bool public_route;
  };
  std::vector<Def> defs = {
      {"GET", C + "/webhook", "Show the component's webhook with its secret (developers)", 200, GetWebhook, false},
      {"PUT", C + "/webhook",
       "Enable or change the component's webhook ({\"provider\",\"branch\",\"rotate_secret\"})", 200,
       PutWebhook, false},
      {"DELETE", C + "/webhook", "Disable the component's webhook", 200, DeleteWebhook, false},
      {"POST", "/api/v1/hooks/{id}",
       "Receive a push from GitHub, Gitea, GitLab or the generic form (signature or token, no bearer token)",
       202, ReceiveHook, true},
  };
  for (Def& d : defs) {
    Route r;
    r.method = d.method;
    r.pattern = d.pattern;
    r.summary = d.summary;
    r.tag = "webhooks";
    r.success_status = d.success;
    r.public_route = d.public_route;
    Service* sp = &svc;
    auto fn = d.fn;
    r.fn = [sp, fn](Ctx& c) { return fn(*sp, c); };
    svc.router.Add(std::move(r));
  }
}

}  // namespace berth::api
