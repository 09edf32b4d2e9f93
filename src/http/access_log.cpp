#include "http/access_log.h"

#include "base/json.h"

#include <spdlog/async.h>
#include <spdlog/async_logger.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

#include "http/target.h"

namespace jiceng::http {

AccessLog::AccessLog()
    : pool_(std::make_shared<spdlog::details::thread_pool>(8192, 1)),
      logger_(std::make_shared<spdlog::async_logger>(
          "jiceng.access", std::make_shared<spdlog::sinks::stdout_sink_mt>(), pool_,
          spdlog::async_overflow_policy::block)) {
  logger_->set_pattern("%v");
  logger_->set_level(spdlog::level::info);
}

AccessLog::~AccessLog() {
  // Drain before the pool's worker thread is joined.
  logger_->flush();
}

void AccessLog::Write(std::string_view remote, std::string_view method, std::string_view target,
                      int status, size_t bytes, double duration_ms) {
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) %
                1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[64];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(millis.count()));
  std::string line;
  line.reserve(128 + target.size());
  line += R"({"ts":")";
  line += ts;
  line += R"(","remote":)";
  AppendJsonString(line, remote);
  line += R"(,"method":)";
  AppendJsonString(line, method);
  line += R"(,"target":)";
  AppendJsonString(line, target);
  char tail[96];
  std::snprintf(tail, sizeof tail, R"(,"status":%d,"bytes":%zu,"duration_ms":%.3f})", status,
                bytes, duration_ms);
  line += tail;
  logger_->info(line);
}

}  // namespace jiceng::http
