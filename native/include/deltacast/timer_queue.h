// TimerQueue: one structure for every deadline of a hub (debounce and batch
// windows, throttles, heartbeats), driven by a single Asio timer or by the
// manual clock. A min-heap ordered by (deadline, scheduling order), so timers
// due at the same millisecond fire in the order they were set: deterministic.
//
// Cancelling is lazy: schedule() returns a sequence number; an owner that
// re-arms or cancels its timer remembers the latest number and ignores a
// fired (id, seq) that is not it. Stale entries cost one heap slot until due.
//
// Thread affinity: the core thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <queue>
#include <vector>

namespace deltacast {

// Time on a hub's clock: milliseconds from the hub's start, never above
// kMaxClockMs (2^62 ms, some 146 million years): the clock saturates there.
// Every delay a hub is given is at most kMaxDelayMs (2^31 - 1 ms, the bound
// lib/options.js enforces on time options and on one hub.advance), so a
// deadline `now + delay`, or a sum of a few such delays, cannot overflow.
inline constexpr std::int64_t kMaxClockMs = std::int64_t{1} << 62;
inline constexpr std::int64_t kMaxDelayMs = 0x7fffffff;

// a + b, saturated to [0, kMaxClockMs] (defined for every a, b: no signed overflow).
constexpr std::int64_t clockAdd(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) return b > 0 ? kMaxClockMs : 0;
  return sum < 0 ? 0 : sum > kMaxClockMs ? kMaxClockMs : sum;
}

class TimerQueue {
 public:
  std::uint64_t schedule(std::int64_t deadline, std::uint64_t id) {
    const std::uint64_t seq = ++sequence_;
    heap_.push(Entry{deadline, seq, id});
    return seq;
  }

  // Calls fire(id, seq) for every timer due at or before `now`, earliest
  // first. Timers scheduled by `fire` itself for a time <= now also run.
  template <class Fire>
  std::size_t advance(std::int64_t now, Fire&& fire) {
    std::size_t fired = 0;
    while (!heap_.empty() && heap_.top().deadline <= now) {
      const Entry entry = heap_.top();
      heap_.pop();
      fire(entry.id, entry.seq);
      ++fired;
    }
    return fired;
  }

  std::optional<std::int64_t> nextDeadline() const {
    if (heap_.empty()) return std::nullopt;
    return heap_.top().deadline;
  }

  std::size_t size() const noexcept { return heap_.size(); }

 private:
  struct Entry {
    std::int64_t deadline;
    std::uint64_t seq;
    std::uint64_t id;
    bool operator>(const Entry& other) const {
      return deadline != other.deadline ? deadline > other.deadline : seq > other.seq;
    }
  };

  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap_;
  std::uint64_t sequence_ = 0;
};

}  // namespace deltacast
