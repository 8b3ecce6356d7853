#include "deltacast/status.h"

namespace deltacast {

const char* errorCodeName(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::Ok: return "DELTACAST_OK";
    case ErrorCode::InvalidArgument: return "DELTACAST_INVALID_ARGUMENT";
    case ErrorCode::InvalidJson: return "DELTACAST_INVALID_JSON";
    case ErrorCode::InvalidValue: return "DELTACAST_INVALID_VALUE";
    case ErrorCode::InvalidPatch: return "DELTACAST_INVALID_PATCH";
    case ErrorCode::InvalidPointer: return "DELTACAST_INVALID_POINTER";
    case ErrorCode::PathNotFound: return "DELTACAST_PATH_NOT_FOUND";
    case ErrorCode::PatchTestFailed: return "DELTACAST_PATCH_TEST_FAILED";
    case ErrorCode::TooLarge: return "DELTACAST_TOO_LARGE";
    case ErrorCode::TooDeep: return "DELTACAST_TOO_DEEP";
    case ErrorCode::InvalidTopic: return "DELTACAST_INVALID_TOPIC";
    case ErrorCode::NotKeyedArray: return "DELTACAST_NOT_KEYED_ARRAY";
    case ErrorCode::Closed: return "DELTACAST_CLOSED";
    case ErrorCode::Internal: return "DELTACAST_INTERNAL";
    case ErrorCode::TooManyOps: return "DELTACAST_TOO_MANY_OPS";
  }
  return "DELTACAST_UNKNOWN";
}

}  // namespace deltacast
