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
#include <utility>
#include <vector>

namespace deltacast {

// Where each armed id sits in the heap: an open-addressing table (linear
// probing, deletion by backward shift), so that a sift step, which moves an
// entry and records its new place, costs one probe into a flat array rather
// than a node lookup (std::unordered_map: a bucket, then a node elsewhere).
// At most half full; it does not shrink (as a node map's bucket array).
class TimerPositions {
 public:
  // The place of `id`, or nullptr.
  std::size_t* find(std::uint64_t id) {
    if (size_ == 0) return nullptr;
    for (std::size_t i = home(id);; i = (i + 1) & mask_) {
      Slot& slot = slots_[i];
      if (slot.at == kFree) return nullptr;
      if (slot.id == id) return &slot.at;
    }
  }
  const std::size_t* find(std::uint64_t id) const { return const_cast<TimerPositions*>(this)->find(id); }

  // The place of `id`, which has one (the heap's own entries).
  std::size_t& existing(std::uint64_t id) {
    for (std::size_t i = home(id);; i = (i + 1) & mask_) {
      if (slots_[i].id == id && slots_[i].at != kFree) return slots_[i].at;
    }
  }

  // The place of `id`, made `at` if it had none (then `added`).
  std::pair<std::size_t*, bool> emplace(std::uint64_t id, std::size_t at) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    for (std::size_t i = home(id);; i = (i + 1) & mask_) {
      Slot& slot = slots_[i];
      if (slot.at == kFree) {
        slot = Slot{id, at};
        ++size_;
        return {&slot.at, true};
      }
      if (slot.id == id) return {&slot.at, false};
    }
  }

  void erase(std::uint64_t id) {
    if (size_ == 0) return;
    std::size_t i = home(id);
    for (;; i = (i + 1) & mask_) {
      if (slots_[i].at == kFree) return;
      if (slots_[i].id == id) break;
    }
    // Backward shift: each later entry of the run that may move into the
    // hole (its home is not cyclically in (hole, its slot]) moves there.
    for (std::size_t j = (i + 1) & mask_; slots_[j].at != kFree; j = (j + 1) & mask_) {
      const std::size_t k = home(slots_[j].id);
      const bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
      if (stays) continue;
      slots_[i] = slots_[j];
      i = j;
    }
    slots_[i].at = kFree;
    --size_;
  }

  std::size_t size() const noexcept { return size_; }

 private:
  static constexpr std::size_t kFree = ~std::size_t{0};
  struct Slot {
    std::uint64_t id = 0;
    std::size_t at = kFree;
  };

  std::size_t home(std::uint64_t id) const noexcept {
    return static_cast<std::size_t>((id * 0x9E3779B97F4A7C15ull) >> shift_) & mask_;  // Fibonacci hashing
  }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    const std::size_t capacity = old.empty() ? 16 : old.size() * 2;
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    shift_ = 64;
    for (std::size_t c = capacity; c > 1; c >>= 1) --shift_;
    size_ = 0;
    for (const Slot& slot : old) {
      if (slot.at == kFree) continue;
      std::size_t i = home(slot.id);
      while (slots_[i].at != kFree) i = (i + 1) & mask_;
      slots_[i] = slot;
      ++size_;
    }
  }

  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  unsigned shift_ = 64;
  std::size_t size_ = 0;
};

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
    const auto [place, added] = position_.emplace(id, heap_.size());
    if (added) {
      heap_.push_back(Entry{deadline, seq, id});
      up(heap_.size() - 1);
    } else {
      const std::size_t at = *place;
      heap_[at].deadline = deadline;
      heap_[at].seq = seq;
      down(up(at));
    }
    return seq;
  }

  // Removes the timer of `id`, if there is one.
  void cancel(std::uint64_t id) {
    const std::size_t* place = position_.find(id);
    if (place == nullptr) return;
    const std::size_t at = *place;
    position_.erase(id);
    const std::size_t last = heap_.size() - 1;
    if (at != last) {
      heap_[at] = heap_[last];
      position_.existing(heap_[at].id) = at;
      heap_.pop_back();
      down(up(at));
    } else {
      heap_.pop_back();
    }
  }

  bool armed(std::uint64_t id) const { return position_.find(id) != nullptr; }

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

  void place(std::size_t at) { position_.existing(heap_[at].id) = at; }

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
  TimerPositions position_;  // id -> index in heap_
  std::uint64_t sequence_ = 0;
};

}  // namespace deltacast
