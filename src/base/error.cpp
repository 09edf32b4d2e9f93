#include "base/error.h"

namespace jiceng {

int HttpStatus(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalid: return 400;
    case ErrorCode::kUnauthorized: return 401;
    case ErrorCode::kForbidden: return 403;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kMethodNotAllowed: return 405;
    case ErrorCode::kNotAcceptable: return 406;
    case ErrorCode::kConflict: return 409;
    case ErrorCode::kGone: return 410;
    case ErrorCode::kPreconditionFailed: return 412;
    case ErrorCode::kTooLarge: return 413;
    case ErrorCode::kUnsupportedMedia: return 415;
    case ErrorCode::kUnprocessable: return 422;
    case ErrorCode::kTooManyRequests: return 429;
    case ErrorCode::kInternal: return 500;
    case ErrorCode::kNotImplemented: return 501;
    case ErrorCode::kUnavailable: return 503;
  }
  return 500;
}

const char* IssueTypeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalid: return "invalid";
    case ErrorCode::kUnauthorized: return "login";
    case ErrorCode::kForbidden: return "forbidden";
    case ErrorCode::kNotFound: return "not-found";
    case ErrorCode::kMethodNotAllowed: return "not-supported";
    case ErrorCode::kNotAcceptable: return "not-supported";
    case ErrorCode::kConflict: return "conflict";
    case ErrorCode::kGone: return "deleted";
    case ErrorCode::kPreconditionFailed: return "conflict";
    case ErrorCode::kTooLarge: return "too-costly";
    case ErrorCode::kUnsupportedMedia: return "not-supported";
    case ErrorCode::kUnprocessable: return "processing";
    case ErrorCode::kTooManyRequests: return "throttled";
    case ErrorCode::kInternal: return "exception";
    case ErrorCode::kNotImplemented: return "not-supported";
    case ErrorCode::kUnavailable: return "transient";
  }
  return "exception";
}

}  // namespace jiceng
