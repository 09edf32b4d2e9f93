#include "store/postgres/read_combiner.h"

#include <algorithm>
#include <memory>
#include <vector>

namespace jiceng::store::postgres {

struct ReadCombiner::Waiter {
  Item item;
  bool done = false;
  // Woken when the read is done, or when it is first in the queue and a leader's place is free.
  std::condition_variable cv;
};

ReadCombiner::ReadCombiner(int max_leaders, int max_batch, RunBatch run)
    : max_leaders_(std::max(max_leaders, 1)),
      max_batch_(static_cast<size_t>(std::max(max_batch, 1))),
      run_(std::move(run)) {}

Result<std::optional<ResourceVersion>> ReadCombiner::Read(std::string_view type,
                                                          std::string_view id) {
  // Shared with the leader that answers it, which wakes it after letting go of the lock (a
  // waiter woken while the lock is still held would only block on it again).
  auto self = std::make_shared<Waiter>();
  self->item.type = type;
  self->item.id = id;
  std::unique_lock lock(mu_);
  queue_.push_back(self);
  while (!self->done) {
    // Lead when a place is free and this read is first in line (so reads are taken in order,
    // and no read waits behind one queued later).
    if (leaders_ < max_leaders_ && queue_.front() == self) {
      ++leaders_;
      const auto n = static_cast<std::ptrdiff_t>(std::min(queue_.size(), max_batch_));
      std::vector<std::shared_ptr<Waiter>> batch(queue_.begin(), queue_.begin() + n);
      queue_.erase(queue_.begin(), queue_.begin() + n);
      ++stats_.batches;
      stats_.reads += batch.size();
      // Reads left over beyond max_batch: their first may lead too, if a place is left.
      std::shared_ptr<Waiter> next;
      if (!queue_.empty() && leaders_ < max_leaders_) next = queue_.front();
      lock.unlock();
      if (next) next->cv.notify_one();
      std::vector<Item*> items;
      items.reserve(batch.size());
      for (const auto& w : batch) items.push_back(&w->item);
      run_(items);
      lock.lock();
      --leaders_;
      for (const auto& w : batch) w->done = true;
      // The place this leader leaves goes to the oldest queued read.
      if (!queue_.empty()) next = queue_.front();
      lock.unlock();
      for (const auto& w : batch) {
        if (w != self) w->cv.notify_one();
      }
      if (next) next->cv.notify_one();
      return std::move(self->item.result);
    }
    self->cv.wait(lock);
  }
  return std::move(self->item.result);
}

ReadCombiner::Stats ReadCombiner::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace jiceng::store::postgres
