#include "api/errors.h"

#include <nlohmann/json.hpp>

namespace berth::api {

int HttpStatusFor(Code code) {
  switch (code) {
    case Code::kOk: return 200;
    case Code::kInvalidArgument: return 400;
    case Code::kUnauthenticated: return 401;
    case Code::kPermissionDenied: return 403;
    case Code::kNotFound: return 404;
    case Code::kMethodNotAllowed: return 405;
    case Code::kAlreadyExists: return 409;
    case Code::kConflict: return 409;
    case Code::kGone: return 410;
    case Code::kPayloadTooLarge: return 413;
    case Code::kUnsupportedMedia: return 415;
    case Code::kRateLimited: return 429;
    case Code::kInternal: return 500;
    case Code::kUnavailable: return 503;
    case Code::kTimeout: return 504;
    case Code::kInsufficientStorage: return 507;
  }
  return 500;
}

HttpResponse ErrorResponse(const Status& status) {
  nlohmann::json body = {{"code", status.reason().empty() ? "internal" : status.reason()},
                         {"message", status.message()}};
  if (!status.field().empty()) body["field"] = status.field();
  HttpResponse r;
  r.status = HttpStatusFor(status.code());
  // Messages may quote what a request sent: never let a byte that is not UTF-8 turn an error
  // into an exception (and a 500).
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

}  // namespace berth::api
