#include "api/api_server.h"

#include <filesystem>

#include "api/detail/service.h"
#include "api/errors.h"
#include "core/disk.h"
#include "core/log.h"

namespace berth::api {

namespace {

// A stream that keeps checking its caller (docs/security.md): the token is authenticated
// again, and the route's access (membership of the stream's team, or the platform/service
// right of a team-less stream) asked again, whenever the store changed since the last check
// (revocations, removed members, disabled users) and at least every `recheck` otherwise
// (expiry). When access is gone the stream ends with an error line.
class GuardedStream final : public StreamSource {
 public:
  using Allowed = std::function<Status(const auth::Principal&)>;
  GuardedStream(Service& s, std::shared_ptr<StreamSource> inner, std::string authorization,
                Allowed allowed)
      : s_(s), inner_(std::move(inner)), authorization_(std::move(authorization)),
        allowed_(std::move(allowed)), checked_head_(s.store.Head()),
        checked_at_(std::chrono::steady_clock::now()) {}

  bool Poll(std::string* out) override {
    if (ended_) return false;
    if (Status st = Check(); !st.ok()) {
      ended_ = true;
      Json err = {{"type", "error"},
                  {"code", st.reason()},
                  {"message", "access ended: " + st.message()}};
      *out += err.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
      return false;
    }
    return inner_->Poll(out);
  }
  std::string Heartbeat() override { return ended_ ? std::string() : inner_->Heartbeat(); }

 private:
  Status Check() {
    int64_t head = s_.store.Head();
    auto now = std::chrono::steady_clock::now();
    if (head == checked_head_ && now - checked_at_ < s_.options.stream_recheck) {
      return Status::Ok();
    }
    checked_head_ = head;
    checked_at_ = now;
    auto who = s_.access.Authenticate(authorization_);
    if (!who.ok()) return who.status();
    return allowed_(*who);
  }

  Service& s_;
  const std::shared_ptr<StreamSource> inner_;
  const std::string authorization_;
  const Allowed allowed_;
  // Touched by the one polling thread at a time.
  int64_t checked_head_;
  std::chrono::steady_clock::time_point checked_at_;
  bool ended_ = false;
};

// 403 for a service account (the gateway) on a route not made for it.
Status ServiceScope(const auth::Principal& who, const HttpRequest& req, const Route& route) {
  return Status(Code::kPermissionDenied, "service_account_scope",
                Quoted(who.user) + " is a service account of berth: its credential is good for "
                                   "the routes its service needs, not for " +
                    req.method + " " + route.pattern);
}

// The credential of a request: its Authorization header, or for a route that takes HTTP basic
// auth (git's smart HTTP), "Bearer <password>" — the token is the password, the user name is
// not looked at (the token says who it is).
std::string AuthorizationOf(const HttpRequest& req, const Route& route) {
  const std::string& h = req.Header("authorization");
  if (!route.basic_auth || h.size() < 6 || h.compare(0, 6, "Basic ") != 0) return h;
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string decoded;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 6; i < h.size() && h[i] != '='; ++i) {
    size_t v = kAlphabet.find(h[i]);
    if (v == std::string::npos) return "Basic (malformed)";
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      decoded.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  size_t colon = decoded.find(':');
  if (colon == std::string::npos || colon + 1 == decoded.size()) return "";
  return "Bearer " + decoded.substr(colon + 1);
}

// An error answer; a 401 of a basic-auth route asks for the credential as git expects.
HttpResponse RouteError(const Status& st, const Route& route) {
  HttpResponse r = ErrorResponse(st);
  if (route.basic_auth && r.status == 401) {
    r.headers.push_back({"WWW-Authenticate", "Basic realm=\"berth\", charset=\"UTF-8\""});
  }
  return r;
}

}  // namespace

struct ApiService::Impl {
  Impl(Store& s, const Clock& c, ApiOptions o) : service(s, c, std::move(o)) {}
  Service service;
  std::shared_ptr<spdlog::logger> log = Logger("api");
};

ApiService::ApiService(Store& store, const Clock& clock, ApiOptions options)
    : impl_(std::make_unique<Impl>(store, clock, std::move(options))) {
  RegisterResourceRoutes(impl_->service);
  RegisterWatchRoutes(impl_->service);
  RegisterBuildRoutes(impl_->service);
  RegisterWebhookRoutes(impl_->service);
  RegisterGitRoutes(impl_->service);
  RegisterRuntimeRoutes(impl_->service);
  RegisterGatewayRoutes(impl_->service);
  RegisterStaticFiles(impl_->service);
  impl_->service.openapi =
      BuildOpenApi(impl_->service.router, impl_->service.options.server_version);
}

ApiService::~ApiService() = default;

void ApiService::SetReady(bool ready) { impl_->service.ready = ready; }

void ApiService::SetApiPort(int port) { impl_->service.api_port = port; }

std::string ApiService::OpenApiJson() const { return impl_->service.openapi; }

bool ApiService::IsBlocking(const HttpRequest& request) const {
  std::map<std::string, std::string> params;
  auto route = impl_->service.router.Match(request.method, request.path, &params);
  return route.ok() && ((*route)->blocking || (*route)->slow);
}

bool ApiService::IsSlow(const HttpRequest& request) const {
  std::map<std::string, std::string> params;
  auto route = impl_->service.router.Match(request.method, request.path, &params);
  return route.ok() && (*route)->slow;
}

std::optional<BodyFile> ApiService::BodyToFile(const HttpRequest& head) const {
  Service& s = impl_->service;
  std::map<std::string, std::string> params;
  auto route = s.router.Match(head.method, head.path, &params);
  if (!route.ok() || !(*route)->body_to_file || s.options.data_dir.empty()) return std::nullopt;
  BodyFile out;
  out.dir = s.options.data_dir + "/tmp";
  out.limit = static_cast<uint64_t>(s.options.upload_limit);
  auto who = s.access.Authenticate(AuthorizationOf(head, **route));
  if (!who.ok()) {
    out.reject = RouteError(who.status(), **route);
    return out;
  }
  if (who->service) {
    out.reject = ErrorResponse(ServiceScope(*who, head, **route));
    return out;
  }
  auto team = params.find("team");
  if (team != params.end()) {
    auto allowed = s.access.Require(*who, team->second, (*route)->upload_min_role,
                                    (*route)->basic_auth ? "push to components" : "upload sources");
    if (!allowed.ok()) {
      out.reject = RouteError(allowed.status(), **route);
      return out;
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(out.dir, ec);
  if (IsDiskFullError(ec)) {
    out.reject = ErrorResponse(DiskFull("the upload cannot be stored", out.dir));
  } else if (ec) {
    out.reject = ErrorResponse(Internal("cannot create " + out.dir + ": " + ec.message()));
  }
  return out;
}

HttpResponse ApiService::Handle(const HttpRequest& request) {
  Service& s = impl_->service;
  // Names, paths and query values are text: bytes that do not decode to UTF-8 without control
  // characters are refused before anything looks at them (or quotes them in a message or log).
  if (Status target = CheckRequestTarget(request); !target.ok()) return ErrorResponse(target);
  std::map<std::string, std::string> params;
  auto route = s.router.Match(request.method, request.path, &params);
  if (!route.ok()) {
    if (auto page = s.fallback ? s.fallback(request) : std::nullopt) return std::move(*page);
    return ErrorResponse(route.status());
  }
  Ctx ctx{request, std::move(params), {}};
  if (!(*route)->public_route) {
    auto who = s.access.Authenticate(AuthorizationOf(request, **route));
    if (!who.ok()) return RouteError(who.status(), **route);
    ctx.who = *who;
    if (ctx.who.service && !(*route)->service_account) {
      return ErrorResponse(ServiceScope(ctx.who, request, **route));
    }
  }
  Result<Reply> reply = Internal("handler gave no reply");
  try {
    reply = (*route)->fn(ctx);
  } catch (const std::exception& e) {
    // Handlers report failures as Status; an exception here is a bug, not a crash.
    impl_->log->error("msg=\"handler threw\" route=\"{} {}\" what=\"{}\"", request.method,
                      (*route)->pattern, e.what());
    reply = Internal(std::string("unexpected error: ") + e.what());
  }
  if (!reply.ok()) {
    if (reply.status().code() == Code::kInternal) {
      impl_->log->error("msg=\"request failed\" method={} path=\"{}\" error=\"{}\"", request.method,
                        request.path, reply.status().message());
    }
    return RouteError(reply.status(), **route);
  }
  HttpResponse out;
  out.status = reply->status;
  out.headers = std::move(reply->headers);
  if (reply->stream) {
    out.content_type = "application/x-ndjson";
    // A stream of another kind (git's protocol, the push hook's text) names its own type.
    for (auto it = out.headers.begin(); it != out.headers.end(); ++it) {
      if (it->first == "Content-Type") {
        out.content_type = it->second;
        out.headers.erase(it);
        break;
      }
    }
    out.stream = std::move(reply->stream);
    // A git response is git's protocol to its end (no error line may be put in it); it ends
    // with its request.
    if (!(*route)->public_route && !(*route)->basic_auth) {
      // Who may go on reading it: a member of the stream's team (any role reads), else a
      // platform administrator, or a service account on a route made for it.
      auto team = ctx.params.find("team");
      std::string team_name = team == ctx.params.end() ? "" : team->second;
      bool service_route = (*route)->service_account;
      Service* sp = &s;
      out.stream = std::make_shared<GuardedStream>(
          s, std::move(out.stream), request.Header("authorization"),
          [sp, team_name, service_route](const auth::Principal& who) -> Status {
            if (!team_name.empty()) return sp->access.TeamRole(who, team_name).status();
            if (who.admin || (who.service && service_route)) return Status::Ok();
            return PermissionDenied("this stream is for platform administrators");
          });
    }
  } else if (!reply->body.is_null()) {
    out.body = reply->body.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  return out;
}

}  // namespace berth::api
