// api/message: transport-neutral HTTP request and response. http/ fills a Request from the
// wire and writes the Response back; api/ never sees a socket.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace jiceng::api {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;  // upper case: GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS
  std::string target;  // raw request target, e.g. "/fhir/Patient?name=wang"
  std::string path;    // percent-decoded path without the query, e.g. "/fhir/Patient"
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
  HeaderList headers;  // names in lower case
  std::string body;
  std::string remote;  // peer address, for the access log and audit
  std::string scheme = "http";

  // First header with this (lower-case) name.
  std::optional<std::string_view> Header(std::string_view lower_name) const {
    for (const auto& [k, v] : headers)
      if (k == lower_name) return std::string_view(v);
    return std::nullopt;
  }
};

struct Response {
  int status = 200;
  std::string content_type;  // empty: no body
  HeaderList headers;        // extra headers (ETag, Location, Last-Modified, …)
  std::string body;

  void SetHeader(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

}  // namespace jiceng::api
