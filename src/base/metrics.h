// base/metrics: the process-wide Prometheus registry (prometheus-cpp core) and the few metric
// families every module records into. /metrics (http/) serialises Registry().
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <string>

namespace jiceng::metrics {

prometheus::Registry& Registry();

// HTTP requests by method, route class and status (http/ records these).
prometheus::Family<prometheus::Counter>& HttpRequests();
prometheus::Family<prometheus::Histogram>& HttpLatencySeconds();
// HTTP handlers handed to a handler thread (http/server.cpp; mode="handed_over"): the connection
// shared its loop with others and the request was not a read by id. The others ran inline, on the
// connection's own loop thread (not counted: jiceng_http_requests_total less these). Many handed
// over: more `server.threads` would serve them inline.
prometheus::Family<prometheus::Counter>& HttpHandlers();
// Open HTTP connections (name="connections") and handlers waiting for a free handler thread
// (name="handlers_waiting").
prometheus::Family<prometheus::Gauge>& HttpState();
// Database operations by backend and operation ("read", "write_commit", "history", …).
prometheus::Family<prometheus::Histogram>& DbSeconds();

// Database events by backend and event: "units" (units of work written), "commits" (their
// group commits; units/commits is the mean group size), "wal_frames" (SQLite WAL pages written).
prometheus::Family<prometheus::Counter>& DbEvents();

// Buckets shared by latency histograms: 100 µs … 10 s.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets();

}  // namespace jiceng::metrics
