// Status and Result<T>: how every reai module reports failure.
//
// A Status is either OK or carries a code and a message for a person. Result<T>
// holds a T or a non-OK Status. Codes are mapped to HTTP statuses once, at the
// server edge (server/http_errors), and to exit codes once, in the CLI.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace reai {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // bad input: malformed JSON, wrong type, unparsable CSV value
  kNotFound,           // unknown tenant, contact, model, route
  kAlreadyExists,      // duplicate id where duplicates are an error
  kUnauthenticated,    // missing, expired or forged credentials
  kPermissionDenied,   // valid credentials, wrong tenant or role
  kPayloadTooLarge,    // body or batch above the configured limit
  kResourceExhausted,  // rate limit, full queue
  kFailedPrecondition, // state does not allow the operation (e.g. no model yet)
  kUnavailable,        // a backing service (store, bus) cannot be reached
  kInternal,           // a bug or an unexpected library failure
};

std::string_view status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "InvalidArgument: missing field 'ts'"; "OK" when OK.
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status already_exists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status unauthenticated(std::string m) { return {StatusCode::kUnauthenticated, std::move(m)}; }
inline Status permission_denied(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }
inline Status payload_too_large(std::string m) { return {StatusCode::kPayloadTooLarge, std::move(m)}; }
inline Status resource_exhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status failed_precondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status internal_error(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// Result<T>: a value or a non-OK Status (std::expected is C++23; this is the
// subset reai uses). Accessing value() of an error is a programming error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : data_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(data_).is_ok() && "Result from an OK status has no value");
  }

  bool has_value() const { return std::holds_alternative<T>(data_); }
  explicit operator bool() const { return has_value(); }

  T& value() & { return std::get<T>(data_); }
  const T& value() const& { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // The error; OK when the result holds a value.
  Status status() const { return has_value() ? Status{} : std::get<Status>(data_); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace reai

// Propagates a non-OK Status from an expression returning Status.
#define REAI_RETURN_IF_ERROR(expr)          \
  do {                                      \
    ::reai::Status reai_status_ = (expr);   \
    if (!reai_status_.is_ok()) return reai_status_; \
  } while (0)
