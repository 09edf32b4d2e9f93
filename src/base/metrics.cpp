#include "base/metrics.h"

namespace jiceng::metrics {

prometheus::Registry& Registry() {
  static auto* registry = new prometheus::Registry();
  return *registry;
}

prometheus::Family<prometheus::Counter>& HttpRequests() {
  static auto& f = prometheus::BuildCounter()
                       .Name("jiceng_http_requests_total")
                       .Help("HTTP requests served, by method, route and status")
                       .Register(Registry());
  return f;
}

prometheus::Family<prometheus::Histogram>& HttpLatencySeconds() {
  static auto& f = prometheus::BuildHistogram()
                       .Name("jiceng_http_request_duration_seconds")
                       .Help("Time from request parsed to response written, by method and route")
                       .Register(Registry());
  return f;
}

prometheus::Family<prometheus::Counter>& HttpHandlers() {
  static auto& f = prometheus::BuildCounter()
                       .Name("jiceng_http_handlers_total")
                       .Help(
                           "HTTP handlers handed over to a handler thread (mode=handed_over); "
                           "the rest of the requests ran on their connection's loop thread")
                       .Register(Registry());
  return f;
}

prometheus::Family<prometheus::Gauge>& HttpState() {
  static auto& f = prometheus::BuildGauge()
                       .Name("jiceng_http_state")
                       .Help(
                           "Open HTTP connections (connections) and handlers waiting for a "
                           "handler thread (handlers_waiting)")
                       .Register(Registry());
  return f;
}

prometheus::Family<prometheus::Histogram>& DbSeconds() {
  static auto& f = prometheus::BuildHistogram()
                       .Name("jiceng_db_operation_duration_seconds")
                       .Help("Database operation time, by backend and operation")
                       .Register(Registry());
  return f;
}

prometheus::Family<prometheus::Counter>& DbEvents() {
  static auto& f = prometheus::BuildCounter()
                       .Name("jiceng_db_events_total")
                       .Help("Database events (units of work, group commits, WAL frames), by backend")
                       .Register(Registry());
  return f;
}

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries b{0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                         0.005,  0.01,    0.025,  0.05,  0.1,
                                                         0.25,   0.5,     1,      2.5,   10};
  return b;
}

}  // namespace jiceng::metrics
