// store/postgres: combines concurrent reads by id into pipelines.
//
// Each read by id (IStore::ReadCurrent) used to be its own round trip on its own pooled
// connection: the HTTP thread sends one statement and blocks, the backend wakes for it, answers,
// sleeps. On this kind of machine the wake-ups, not the statement (7 µs of executor time), are
// most of the cost on both sides. The combiner lets at most `max_leaders` threads talk to the
// database at a time. A thread that arrives while they are all busy queues its read; the next
// leader takes every queued read (up to `max_batch`) and runs them as one pipeline (one send,
// one backend wake-up, one answer), then hands each waiting thread its result. Under no
// concurrency a read is led by its own thread at once, as before.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>

#include "base/result.h"
#include "store/store.h"

namespace jiceng::store::postgres {

class ReadCombiner {
 public:
  // One queued read: its key, and the result the batch fills in.
  struct Item {
    std::string_view type;
    std::string_view id;
    Result<std::optional<ResourceVersion>> result = std::optional<ResourceVersion>();
  };
  // Runs `items` (one or more) and sets each item's result. Called without the combiner's lock
  // held, by at most `max_leaders` threads at a time. Must not throw.
  using RunBatch = std::function<void(std::span<Item* const> items)>;

  ReadCombiner(int max_leaders, int max_batch, RunBatch run);

  Result<std::optional<ResourceVersion>> Read(std::string_view type, std::string_view id);

  // Batches run so far and reads in them (for tests and metrics).
  struct Stats {
    uint64_t batches = 0;
    uint64_t reads = 0;
  };
  Stats stats() const;

 private:
  struct Waiter;

  const int max_leaders_;
  const size_t max_batch_;
  const RunBatch run_;
  mutable std::mutex mu_;
  std::deque<std::shared_ptr<Waiter>> queue_;  // reads not yet taken by a leader, oldest first
  int leaders_ = 0;
  Stats stats_;
};

}  // namespace jiceng::store::postgres
