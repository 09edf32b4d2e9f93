// base/error: the one error type of Jiceng. Expected failures (invalid input, not found,
// conflict, forbidden) are values of this type; one formatter (api/outcome) turns an Error into
// an HTTP status and a FHIR OperationOutcome.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace jiceng {

enum class ErrorCode {
  kInvalid,             // 400: malformed request or resource
  kUnauthorized,        // 401
  kForbidden,           // 403
  kNotFound,            // 404
  kMethodNotAllowed,    // 405
  kNotAcceptable,       // 406
  kConflict,            // 409
  kGone,                // 410
  kPreconditionFailed,  // 412
  kTooLarge,            // 413
  kUnsupportedMedia,    // 415
  kUnprocessable,       // 422: well-formed but invalid against the definitions
  kTooManyRequests,     // 429
  kInternal,            // 500
  kNotImplemented,      // 501
  kUnavailable,         // 503
};

int HttpStatus(ErrorCode code);
// FHIR issue-type code (http://hl7.org/fhir/issue-type) that best matches an ErrorCode.
const char* IssueTypeFor(ErrorCode code);

// One entry of an OperationOutcome.
struct Issue {
  std::string severity = "error";  // fatal | error | warning | information
  std::string code = "invalid";    // issue-type code
  std::string diagnostics;
  std::string expression;  // FHIRPath location, e.g. "Patient.birthDate"; empty when none
};

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  std::vector<Issue> issues;  // extra detail; the message is the first issue when this is empty

  Error() = default;
  Error(ErrorCode c, std::string msg) : code(c), message(std::move(msg)) {}
  Error(ErrorCode c, std::string msg, std::string expression)
      : code(c), message(std::move(msg)) {
    issues.push_back(Issue{"error", IssueTypeFor(c), message, std::move(expression)});
  }
};

inline Error Invalid(std::string msg, std::string expression = {}) {
  return Error(ErrorCode::kInvalid, std::move(msg), std::move(expression));
}
inline Error NotFound(std::string msg) { return Error(ErrorCode::kNotFound, std::move(msg)); }
inline Error Conflict(std::string msg) { return Error(ErrorCode::kConflict, std::move(msg)); }
inline Error Internal(std::string msg) { return Error(ErrorCode::kInternal, std::move(msg)); }

}  // namespace jiceng
