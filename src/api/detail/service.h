// Private to the api module: the state every route handler shares, and the registration
// functions of the handler files.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "api/api_server.h"
#include "api/router.h"
#include "auth/access.h"
#include "auth/rate_limiter.h"
#include "events/events.h"
#include "model/model.h"
#include "store/store.h"

namespace berth::api {

// What a push's hook may do with its credential (git_routes.cc): build that one component.
struct PushGrant {
  std::string team, app, component, user;
  std::chrono::steady_clock::time_point expires;
};

struct Service {
  Service(Store& s, const Clock& c, ApiOptions o)
      : store(s), clock(c), options(std::move(o)), access(s, c),
        limiter(c, options.login_attempts), events(s, c) {}

  Store& store;
  const Clock& clock;
  ApiOptions options;
  auth::Access access;
  auth::LoginRateLimiter limiter;
  events::Recorder events;
  // The port the API listens on (set once it is bound): no TCP rule may take it.
  std::atomic<int> api_port{0};
  Router router;
  std::atomic<bool> ready{false};
  std::string openapi;  // built once after the routes are registered
  // Answers GET/HEAD requests no route matched (static_files.cc: the console); nullopt or
  // unset = the usual 404/405 JSON.
  std::function<std::optional<HttpResponse>(const HttpRequest&)> fallback;

  // Detections running per user (build_routes.cc), against options.detect_per_user.
  std::mutex detect_mu;
  std::map<std::string, int> detecting;  // guarded by detect_mu

  // The credentials of running pushes (git_routes.cc), by credential.
  std::mutex push_mu;
  std::map<std::string, PushGrant> push_grants;  // guarded by push_mu
};

// handlers.cc: health, session, users, tokens, teams, members, apps, components,
// dependencies, versions, instances, events, audit.
void RegisterResourceRoutes(Service& s);
// watch.cc: the change-feed streams.
void RegisterWatchRoutes(Service& s);
// build_routes.cc: detection, builds, cancel, build logs.
void RegisterBuildRoutes(Service& s);
// build_routes.cc: queues a build of `component` (a new "queued" version whose build_request
// snapshots its source and build settings; a non-empty `ref` replaces a git source's ref;
// `trigger` — e.g. the webhook push — is kept in build_request.trigger). Errors:
// failed_precondition (no source), invalid_argument (a ref for a non-git source, a bad ref).
Result<Object> QueueVersion(Service& s, const std::string& team, const std::string& app,
                            const model::Component& component, const std::string& ref,
                            const std::string& actor, const Json& trigger);
// webhook_routes.cc: enabling a component's webhook and receiving pushes at /api/v1/hooks/{id}.
void RegisterWebhookRoutes(Service& s);
// git_routes.cc: the push URL (git http-backend behind berth's auth) and the push hook's
// callback that builds and deploys the pushed commit.
void RegisterGitRoutes(Service& s);
// gateway_routes.cc: HTTP and TCP rules, certificates, the gateway snapshot.
void RegisterGatewayRoutes(Service& s);
// gateway_routes.cc: sets (*component)["addresses"] on every component response — where the component answers through the
// gateway (default domains, then the app's HTTP rules on it).
void AddComponentAddresses(Service& s, const std::string& team, const std::string& app,
                           Json* component);
// runtime_routes.cc: restart requests, operations and instance logs.
void RegisterRuntimeRoutes(Service& s);
// runtime_routes.cc: what a write of the component at ctx's team/app/component (stored body
// `before`, nullptr for a create, and `after`) adds to its commit: the component's new
// operation object when the write starts one (deploy, rollback, scale, restart, stop, start,
// update). Refuses (changing nothing) with 409 operation_in_progress while another operation
// of the component runs.
Result<std::vector<Op>> LifecycleOps(Service& s, const Ctx& ctx, const Json* before,
                                     const Json& after);
// The same for a JSON array of components of one app (reads the app's rules once).
// Sets each component's read-only `process_types`: the process types of the version it runs
// (Procfile web, worker, ...) with the instances each should have, e.g. {"web": 2, "worker": 1}
// (runtime_routes.cc; docs/architecture.md "Process types").
void AddComponentProcessTypes(Service& s, const std::string& team, const std::string& app,
                              Json* components);
void AddComponentListAddresses(Service& s, const std::string& team, const std::string& app,
                               Json* components);
// handlers.cc: a write's JSON object body (415 unsupported_media_type for another content
// type, 400 invalid_json for an empty or malformed one).
Result<Json> JsonBody(const Ctx& ctx);
// handlers.cc: removes "revision" from a write body; 0 when absent (400 when not a
// non-negative integer).
Result<int64_t> TakeRevision(Json& body);
// handlers.cc: "\"" + s + "\"" for messages that name a value.
std::string Quoted(const std::string& s);
// handlers.cc: a stored object's JSON body ({} when it is not an object).
Json Stored(const Object& o);
// handlers.cc: OK when the caller has at least `min` in the path's {team}; else the 404/403
// the access rules give, naming `action`.
Status NeedRole(Service& s, const Ctx& ctx, model::Role min, const std::string& action);
// handlers.cc: a list's paging from ?after= and ?limit= (1..500; 400 invalid_argument, field
// "limit", otherwise).
Result<ListOptions> ListOpts(const Ctx& ctx, const std::string& scope);
// handlers.cc: the ?revision= of a delete; 0 when absent.
Result<int64_t> QueryRevision(const Ctx& ctx);
// build_routes.cc: whether the caller may set `source` on the component team/app/component
// (docs/security.md "Sources"): 403 source_not_allowed for server paths outside the source
// roots (or, with none, for non-admins), inside the data directory, or another component's
// upload. `current` is the stored source (null on create): an unchanged source passes.
Status CheckSourceWrite(Service& s, const Ctx& ctx, const std::string& team, const std::string& app,
                        const std::string& component, const model::Source& source,
                        const Json* current);
// build_routes.cc: removes the files of `dir` whose names start with `prefix` that neither `keep`
// nor a queued or building version of the component at `scope` names as its source archive (a
// build waiting in the queue still finds its archive). Keeps everything when the versions cannot
// be listed.
void PruneUploads(Service& s, const std::string& scope, const std::string& dir, const std::string& keep,
                  const std::string& prefix = "");
// static_files.cc: the built console from options.web_root at "/" (outside /api).
void RegisterStaticFiles(Service& s);
// The response for a non-API GET/HEAD from web_root: a file, index.html for app routes, or 404
// JSON (console_not_built when web_root has no index.html); nullopt for /api paths and other
// methods.
std::optional<HttpResponse> ServeStatic(const std::string& web_root, const HttpRequest& req);
std::string ContentTypeFor(const std::string& path);
// openapi.cc
std::string BuildOpenApi(const Router& router, const std::string& version);

// Shared by handlers.cc and watch.cc: the API form of a stored object (secrets removed,
// revision, timestamps and parent names added).
Json RenderObject(const Object& o);

}  // namespace berth::api
