// http/access_log: one structured JSON line per request on stdout, written by a background
// thread (spdlog async) so a slow stdout reader costs the request path only a queue push.
#pragma once

#include <memory>
#include <string_view>

namespace spdlog {
class logger;
namespace details {
class thread_pool;
}
}  // namespace spdlog

namespace jiceng::http {

class AccessLog {
 public:
  AccessLog();
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // {"ts":"2024-05-01T08:00:00.123Z","remote":…,"method":…,"target":…,"status":200,
  //  "bytes":123,"duration_ms":0.42}
  void Write(std::string_view remote, std::string_view method, std::string_view target,
             int status, size_t bytes, double duration_ms);

 private:
  // Own pool (not spdlog's global one) so several servers in one test process don't share or
  // tear down each other's queue.
  std::shared_ptr<spdlog::details::thread_pool> pool_;
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace jiceng::http
