// Status: how the core reports failure. Errors are values, never exceptions
// thrown across threads; the binding turns a Status into a JS DeltacastError
// whose `code` is the stable string returned by errorCodeName().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace deltacast {

enum class ErrorCode : std::uint8_t {
  Ok = 0,
  InvalidArgument,  // DELTACAST_INVALID_ARGUMENT: an option or argument of the wrong kind
  InvalidJson,      // DELTACAST_INVALID_JSON: text that is not JSON (or not UTF-8)
  InvalidValue,     // DELTACAST_INVALID_VALUE: a JS value JSON cannot carry
  InvalidPatch,     // DELTACAST_INVALID_PATCH: a malformed patch or operation
  InvalidPointer,   // DELTACAST_INVALID_POINTER: a path that is not an RFC 6901 pointer
  PathNotFound,     // DELTACAST_PATH_NOT_FOUND: a pointer that does not resolve, an index out of range
  PatchTestFailed,  // DELTACAST_PATCH_TEST_FAILED: a `test` operation that did not match
  TooLarge,         // DELTACAST_TOO_LARGE: input over a size limit
  TooDeep,          // DELTACAST_TOO_DEEP: nesting over the depth limit
  InvalidTopic,     // DELTACAST_INVALID_TOPIC: an empty, too long or malformed topic name
  NotKeyedArray,    // DELTACAST_NOT_KEYED_ARRAY: upsert/remove on a topic that is not an array of keyed rows
  Closed,           // DELTACAST_CLOSED: the hub was closed
  Internal,         // DELTACAST_INTERNAL: an unexpected failure in the core (a bug); nothing was changed
  TooManyOps,       // DELTACAST_TOO_MANY_OPS: a patch with more operations than limits.maxPatchOps
};

// The stable string for a code ("DELTACAST_INVALID_JSON", ...); "DELTACAST_OK" for Ok.
const char* errorCodeName(ErrorCode code) noexcept;

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }

  bool isOk() const noexcept { return code_ == ErrorCode::Ok; }
  explicit operator bool() const noexcept { return isOk(); }
  ErrorCode code() const noexcept { return code_; }
  const char* codeName() const noexcept { return errorCodeName(code_); }
  const std::string& message() const noexcept { return message_; }

 private:
  ErrorCode code_ = ErrorCode::Ok;
  std::string message_;
};

}  // namespace deltacast
