// http/server: the HTTP/1.1 (optionally TLS) front of Jiceng. Owns connections, size and time
// limits, keep-alive, graceful shutdown, /healthz, /metrics, request metrics and the access log;
// everything else goes to one transport-neutral Handler. This header stays free of Beast/Asio
// so that cli/ and tests compile it cheaply; the only Beast user is server.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "api/message.h"
#include "base/config.h"
#include "base/result.h"

namespace jiceng::http {

class ServerImpl;

// Called once per request on the thread of the connection's loop. It may block (SQLite I/O,
// waiting for a group commit), holding that loop only: the server runs `threads` loops, and a
// new connection goes to the one serving the fewest connections.
// An exception escaping the handler becomes a 500 OperationOutcome.
using Handler = std::function<api::Response(api::Request&)>;

// Thread count used when Config::threads <= 0: max(8, 4 × cores), because handlers block.
int DefaultThreadCount();

class Server {
 public:
  Server(const Config& config, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens on config.listen ("host:port"; port 0 picks a free port), loads the TLS
  // certificate when enabled. Returns the bound port.
  Result<uint16_t> Start();

  // Serves on the configured number of loop threads (the caller's thread runs the acceptor and
  // the shutdown) and returns once Stop() has drained every connection. The caller may close
  // the database afterwards.
  void Run();

  // Graceful stop, callable from any thread and more than once: stops accepting, closes idle
  // keep-alive connections, lets in-flight requests finish and answer with
  // `Connection: close`, and force-closes whatever remains after limits.shutdown_grace_ms.
  void Stop();

  // Calls Stop() on SIGINT or SIGTERM. Call before Run().
  void StopOnSignals();

  uint16_t port() const;

 private:
  std::unique_ptr<ServerImpl> impl_;
};

}  // namespace jiceng::http
