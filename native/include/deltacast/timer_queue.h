// TimerQueue: one structure for every deadline of a hub (debounce and batch
// windows, throttles, heartbeats), driven by a single Asio timer or by the
// manual clock. A min-heap ordered by (deadline, scheduling order), so timers
// due at the same millisecond fire in the order they were set: deterministic.
//
// One entry per id at most: schedule() for an id that already has a timer
// moves that timer (it gets a new sequence number, and the old one never
// fires), and cancel() removes it. Memory is one entry per armed id, whatever
// the number of re-arms or of owners that went away. schedule() returns the
// sequence number; fire(id, seq) receives it.
//
// Thread affinity: the core thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <utility>
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
    const auto [it, added] = position_.try_emplace(id, heap_.size());
    if (added) {
      heap_.push_back(Entry{deadline, seq, id});
      up(heap_.size() - 1);
    } else {
      const std::size_t at = it->second;
      heap_[at].deadline = deadline;
      heap_[at].seq = seq;
      down(up(at));
    }
    return seq;
  }

  // Removes the timer of `id`, if there is one.
  void cancel(std::uint64_t id) {
    const auto it = position_.find(id);
    if (it == position_.end()) return;
    const std::size_t at = it->second;
    position_.erase(it);
    const std::size_t last = heap_.size() - 1;
    if (at != last) {
      heap_[at] = heap_[last];
      position_[heap_[at].id] = at;
      heap_.pop_back();
      down(up(at));
    } else {
      heap_.pop_back();
    }
  }

  bool armed(std::uint64_t id) const { return position_.count(id) != 0; }

  // Calls fire(id, seq) for every timer due at or before `now`, earliest
  // first. Timers scheduled by `fire` itself for a time <= now also run.
  template <class Fire>
  std::size_t advance(std::int64_t now, Fire&& fire) {
    std::size_t fired = 0;
    while (!heap_.empty() && heap_.front().deadline <= now) {
      const Entry entry = heap_.front();
      cancel(entry.id);
      fire(entry.id, entry.seq);
      ++fired;
    }
    return fired;
  }

  std::optional<std::int64_t> nextDeadline() const {
    if (heap_.empty()) return std::nullopt;
    return heap_.front().deadline;
  }

  // Entries held: one per armed id.
  std::size_t size() const noexcept { return heap_.size(); }

 private:
  struct Entry {
    std::int64_t deadline;
    std::uint64_t seq;
    std::uint64_t id;
    bool before(const Entry& other) const {
      return deadline != other.deadline ? deadline < other.deadline : seq < other.seq;
    }
  };

  void place(std::size_t at) { position_[heap_[at].id] = at; }

  std::size_t up(std::size_t at) {
    while (at > 0) {
      const std::size_t parent = (at - 1) / 2;
      if (!heap_[at].before(heap_[parent])) break;
      std::swap(heap_[at], heap_[parent]);
      place(at);
      at = parent;
    }
    place(at);
    return at;
  }

  void down(std::size_t at) {
    for (;;) {
      const std::size_t left = 2 * at + 1;
      if (left >= heap_.size()) break;
      std::size_t least = left;
      if (left + 1 < heap_.size() && heap_[left + 1].before(heap_[left])) least = left + 1;
      if (!heap_[least].before(heap_[at])) break;
      std::swap(heap_[at], heap_[least]);
      place(at);
      at = least;
    }
    place(at);
  }

  std::vector<Entry> heap_;
  std::unordered_map<std::uint64_t, std::size_t> position_;  // id -> index in heap_
  std::uint64_t sequence_ = 0;
};

}  // namespace deltacast
