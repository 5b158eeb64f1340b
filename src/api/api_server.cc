#include "api/api_server.h"

#include "api/detail/service.h"
#include "api/errors.h"
#include "core/log.h"

namespace berth::api {

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
  RegisterRuntimeRoutes(impl_->service);
  RegisterGatewayRoutes(impl_->service);
  RegisterStaticFiles(impl_->service);
  impl_->service.openapi =
      BuildOpenApi(impl_->service.router, impl_->service.options.server_version);
}

ApiService::~ApiService() = default;

void ApiService::SetReady(bool ready) { impl_->service.ready = ready; }

std::string ApiService::OpenApiJson() const { return impl_->service.openapi; }

bool ApiService::IsBlocking(const HttpRequest& request) const {
  std::map<std::string, std::string> params;
  auto route = impl_->service.router.Match(request.method, request.path, &params);
  return route.ok() && (*route)->blocking;
}

HttpResponse ApiService::Handle(const HttpRequest& request) {
  Service& s = impl_->service;
  std::map<std::string, std::string> params;
  auto route = s.router.Match(request.method, request.path, &params);
  if (!route.ok()) {
    if (auto page = s.fallback ? s.fallback(request) : std::nullopt) return std::move(*page);
    return ErrorResponse(route.status());
  }
  Ctx ctx{request, std::move(params), {}};
  if (!(*route)->public_route) {
    auto who = s.access.Authenticate(request.Header("authorization"));
    if (!who.ok()) return ErrorResponse(who.status());
    ctx.who = *who;
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
    return ErrorResponse(reply.status());
  }
  HttpResponse out;
  out.status = reply->status;
  out.headers = std::move(reply->headers);
  if (reply->stream) {
    out.content_type = "application/x-ndjson";
    out.stream = std::move(reply->stream);
  } else if (!reply->body.is_null()) {
    out.body = reply->body.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  return out;
}

}  // namespace berth::api
