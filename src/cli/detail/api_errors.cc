#include "cli/detail/api_errors.h"

namespace berth::cli {

std::string Str(const Json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return (it != j.end() && it->is_string()) ? it->get<std::string>() : "";
}

Code CodeForHttp(int status) {
  switch (status) {
    case 400: return Code::kInvalidArgument;
    case 401: return Code::kUnauthenticated;
    case 403: return Code::kPermissionDenied;
    case 404: return Code::kNotFound;
    case 405: return Code::kMethodNotAllowed;
    case 409: return Code::kConflict;
    case 410: return Code::kGone;
    case 413: return Code::kPayloadTooLarge;
    case 415: return Code::kUnsupportedMedia;
    case 429: return Code::kRateLimited;
    case 503: return Code::kUnavailable;
    case 504: return Code::kTimeout;
    case 507: return Code::kInsufficientStorage;
    default: return Code::kInternal;
  }
}

Status StatusFromResponse(const Response& resp, const std::string& what) {
  Json j = Json::parse(resp.body, nullptr, false);
  std::string code = Str(j, "code");
  if (!j.is_discarded() && !code.empty()) {
    return Status(CodeForHttp(resp.status), code, Str(j, "message"), Str(j, "field"));
  }
  return Status(CodeForHttp(resp.status), "http_" + std::to_string(resp.status),
                what + ": the server answered HTTP " + std::to_string(resp.status));
}

}  // namespace berth::cli
