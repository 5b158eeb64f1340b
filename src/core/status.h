// Status and Result<T>: how expected failures travel through berth without exceptions.
//
// A Status is either OK or carries a Code (the broad class, mapped to an HTTP status in one
// place: api/errors), a stable machine-readable reason (the API's error "code", e.g.
// "invalid_name"), a message a person can act on, and optionally the input field to blame.
// Thread-safety: value types, no shared state.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace berth {

enum class Code {
  kOk,
  kInvalidArgument,     // 400
  kUnauthenticated,     // 401
  kPermissionDenied,    // 403
  kNotFound,            // 404
  kMethodNotAllowed,    // 405
  kAlreadyExists,       // 409
  kConflict,            // 409 (revision or state conflict)
  kGone,                // 410
  kPayloadTooLarge,     // 413
  kUnsupportedMedia,    // 415
  kRateLimited,         // 429
  kInternal,            // 500
  kUnavailable,         // 503
  kTimeout,             // 504 (something the server waited on, e.g. a git server, took too long)
  kInsufficientStorage, // 507 (a full disk: nothing was saved)
};

class Status {
 public:
  Status() = default;
  Status(Code code, std::string reason, std::string message, std::string field = {})
      : code_(code), reason_(std::move(reason)), message_(std::move(message)),
        field_(std::move(field)) {}

  static Status Ok() { return {}; }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  // Stable API error code, e.g. "invalid_name". Never empty for a non-OK status.
  const std::string& reason() const { return reason_; }
  const std::string& message() const { return message_; }
  const std::string& field() const { return field_; }
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string reason_;
  std::string message_;
  std::string field_;
};

// Shorthands for the common failures; the reason string is the default for the code.
Status InvalidArgument(std::string message, std::string field = {});
Status InvalidName(std::string message, std::string field = "name");
Status UnknownField(std::string field);
Status NotFound(std::string message);
Status AlreadyExists(std::string message);
Status RevisionConflict(std::string message);
Status FailedPrecondition(std::string message);
Status PermissionDenied(std::string message);
Status Unauthenticated(std::string message);
Status Internal(std::string message);
Status Unavailable(std::string message);
// "insufficient_storage" (507): the disk of `path` is full (ENOSPC, EDQUOT, SQLITE_FULL).
// `what` says what could not be saved.
Status DiskFull(const std::string& what, const std::string& path);

// Result<T> holds a T or a non-OK Status (shaped like std::expected).
template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}            // NOLINT(runtime/explicit)
  Result(Status status) : v_(std::move(status)) {      // NOLINT(runtime/explicit)
    assert(!std::get<Status>(v_).ok());
  }
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<1>(v_);
  }

 private:
  std::variant<T, Status> v_;
};

}  // namespace berth

// Returns early from the enclosing function when `expr` (a Status) is not OK.
#define BERTH_RETURN_IF_ERROR(expr)        \
  do {                                     \
    ::berth::Status berth_s_ = (expr);     \
    if (!berth_s_.ok()) return berth_s_;   \
  } while (0)

#define BERTH_CONCAT_INNER(a, b) a##b
#define BERTH_CONCAT(a, b) BERTH_CONCAT_INNER(a, b)
// `BERTH_ASSIGN_OR_RETURN(auto x, MakeX());` binds the value or returns the error.
#define BERTH_ASSIGN_OR_RETURN(lhs, expr)                           \
  auto BERTH_CONCAT(berth_r_, __LINE__) = (expr);                   \
  if (!BERTH_CONCAT(berth_r_, __LINE__).ok())                       \
    return BERTH_CONCAT(berth_r_, __LINE__).status();               \
  lhs = std::move(BERTH_CONCAT(berth_r_, __LINE__)).value()
