// tests/support/http_client: small blocking HTTP/1.1 clients for tests and benchmarks.
// HttpClient keeps one keep-alive connection (reconnecting when the server closed it);
// RawConnection writes arbitrary bytes for malformed-input and timeout tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace jiceng::testing {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct ClientResponse {
  int status = 0;
  Headers headers;  // names in lower case
  std::string body;

  std::optional<std::string> Header(std::string_view lower_name) const;
};

class HttpClient {
 public:
  struct Options {
    bool tls = false;  // TLS without certificate verification (self-signed test certs)
    std::chrono::milliseconds timeout{10000};  // per operation
  };

  HttpClient(std::string host, uint16_t port);
  HttpClient(std::string host, uint16_t port, Options options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request on the kept-alive connection (connecting first when needed). The
  // connection is dropped after a response with `Connection: close` or any error.
  Result<ClientResponse> Send(std::string_view method, std::string_view target,
                              std::string_view body = {}, const Headers& headers = {});

  void Close();
  bool connected() const;
  // TCP connections opened so far: 1 after several requests means keep-alive worked.
  int connects() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

class RawConnection {
 public:
  static Result<std::unique_ptr<RawConnection>> Connect(const std::string& host, uint16_t port);
  ~RawConnection();

  // False once the peer has closed or reset the connection.
  bool Write(std::string_view bytes);

  struct ReadResult {
    std::string data;
    bool closed = false;  // the peer closed (or reset) the connection
  };
  // Reads until the peer closes or `timeout` passes.
  ReadResult ReadUntilClose(std::chrono::milliseconds timeout);
  // Reads until `needle` has arrived, the peer closes or `timeout` passes.
  ReadResult ReadUntil(std::string_view needle, std::chrono::milliseconds timeout);

 private:
  class Impl;
  explicit RawConnection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace jiceng::testing
