// api/response_format: content negotiation and the result-shaping parameters of reads
// (_format, _pretty, _summary, _elements).
#pragma once

#include <string>
#include <vector>

#include "api/message.h"
#include "base/result.h"

namespace jiceng::api {

struct FormatOptions {
  bool pretty = false;
  std::string summary;                // "", "true", "text", "data", "count", "false"
  std::vector<std::string> elements;  // _elements: top-level element names

  // True when the stored JSON can be sent as it is.
  bool IsPlain() const { return !pretty && (summary.empty() || summary == "false") && elements.empty(); }
};

// Reads _format / Accept (JSON only: XML asked for alone is 406), _pretty, _summary, _elements.
Result<FormatOptions> ParseFormatOptions(const Request& req);

// The stored resource JSON shaped by the options; returned unchanged (no re-parse) when no
// shaping is asked for.
Result<std::string> FormatResource(const std::string& stored_json, const FormatOptions& options);

}  // namespace jiceng::api
