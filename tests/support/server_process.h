// tests/support/server_process: runs a server binary as a child process for integration tests
// and benchmarks. The child's stdout is read continuously (so it never blocks on a full pipe)
// until it prints `jiceng: listening on http://HOST:PORT`; the port is taken from that line.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"

namespace jiceng::testing {

class ServerProcess {
 public:
  // Starts `binary` with `args` (argv[1..]) and waits up to `startup_timeout` for the
  // listening line. Fails if the child exits first or the line never comes.
  static Result<std::unique_ptr<ServerProcess>> Start(
      const std::string& binary, const std::vector<std::string>& args,
      std::chrono::milliseconds startup_timeout = std::chrono::seconds(30));

  // Kills the child with SIGKILL if it is still running.
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }

  void Kill(int signal = SIGTERM);
  // Waits for the child to exit: its exit code, or 128 + signal number when killed by one.
  int Wait();
  // Everything the child wrote to stdout so far.
  std::string Output() const;

 private:
  ServerProcess() = default;
  void ReadLoop();

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  uint16_t port_ = 0;
  bool reaped_ = false;
  int exit_code_ = -1;
  std::thread reader_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string output_;
  bool eof_ = false;
};

}  // namespace jiceng::testing
