#include "core/status.h"

namespace berth {

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string s = reason_ + ": " + message_;
  if (!field_.empty()) s += " (field " + field_ + ")";
  return s;
}

Status InvalidArgument(std::string m, std::string f) {
  return {Code::kInvalidArgument, "invalid_argument", std::move(m), std::move(f)};
}
Status InvalidName(std::string m, std::string f) {
  return {Code::kInvalidArgument, "invalid_name", std::move(m), std::move(f)};
}
Status UnknownField(std::string f) {
  std::string m = "unknown field \"" + f + "\"";
  return {Code::kInvalidArgument, "unknown_field", std::move(m), std::move(f)};
}
Status NotFound(std::string m) { return {Code::kNotFound, "not_found", std::move(m)}; }
Status AlreadyExists(std::string m) {
  return {Code::kAlreadyExists, "already_exists", std::move(m)};
}
Status RevisionConflict(std::string m) {
  return {Code::kConflict, "revision_conflict", std::move(m)};
}
Status FailedPrecondition(std::string m) {
  return {Code::kConflict, "failed_precondition", std::move(m)};
}
Status PermissionDenied(std::string m) {
  return {Code::kPermissionDenied, "permission_denied", std::move(m)};
}
Status Unauthenticated(std::string m) {
  return {Code::kUnauthenticated, "unauthenticated", std::move(m)};
}
Status Internal(std::string m) { return {Code::kInternal, "internal", std::move(m)}; }
Status Unavailable(std::string m) { return {Code::kUnavailable, "unavailable", std::move(m)}; }
Status DiskFull(const std::string& what, const std::string& path) {
  return {Code::kInsufficientStorage, "insufficient_storage",
          what + ": no space left on device (the disk holding " + path +
              " is full); free space on it and try again"};
}

}  // namespace berth
