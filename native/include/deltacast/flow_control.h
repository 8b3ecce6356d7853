// Flow control: the credit of one connection.
//
// Every state frame (snap, patch) sent counts against the connection's window
// until the client acks its version. While the connection has no credit (over
// its window, or its transport congested), non-critical topics are conflated
// by the caller: marked dirty, and sent once, at their latest version, when
// credit returns. A connection without acks has no window: its credit is the
// transport's backpressure alone, and only the frames handed to it while it is
// congested count (they are forgotten when it drains).
//
// No clock and no I/O: the caller is told when the connection goes over or
// comes back, and keeps the stall timer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

namespace deltacast {

struct CreditLimits {
  std::size_t frames = 64;           // state frames not yet acked
  std::size_t bytes = 1u << 20;      // ... and their bytes
  std::size_t criticalOverflow = 4;  // critical frames may take the window this many times over
};

class CreditWindow {
 public:
  explicit CreditWindow(bool acks = true) : acks_(acks) {}

  bool acks() const noexcept { return acks_; }
  bool congested() const noexcept { return congested_; }
  bool hasCredit(const CreditLimits& limits) const noexcept {
    if (congested_) return false;
    return !acks_ || (unacked_.size() < limits.frames && unackedBytes_ < limits.bytes);
  }
  // Critical frames (sent whatever the credit) have taken the window
  // criticalOverflow times over: the connection cannot keep up.
  bool overflowing(const CreditLimits& limits) const noexcept {
    return unacked_.size() > limits.frames * limits.criticalOverflow ||
           unackedBytes_ > limits.bytes * limits.criticalOverflow;
  }

  // Counts a state frame of `topic` at (epoch, version). Frames of an earlier
  // epoch of the topic stop counting (versions start again: they can never
  // be acked).
  void charge(std::string_view topic, std::string_view epoch, std::uint64_t version, std::size_t bytes);
  // The client applied `topic` up to `version`.
  void acknowledge(std::string_view topic, std::uint64_t version);
  // The topic's frames can no longer be acked (gone).
  void forget(std::string_view topic);
  // The newest version of `topic` still counting; 0: none.
  std::uint64_t newestUnacked(std::string_view topic) const noexcept;
  // The transport says its socket is full (send() returned false) or drained.
  // Returns false when nothing changed.
  bool congestion(bool congested);

  // When the connection went without credit; -1: it has credit. The caller
  // sets it (overSince(now)) when hasCredit turns false and clears it when
  // credit returns; the stall timeout runs from it.
  std::int64_t overSince() const noexcept { return overSince_; }
  void setOverSince(std::int64_t at) noexcept { overSince_ = at; }

  std::size_t frames() const noexcept { return unacked_.size(); }
  std::size_t bytes() const noexcept { return unackedBytes_; }

 private:
  struct Unacked {
    std::string topic;
    std::string epoch;
    std::uint64_t version;
    std::size_t bytes;
  };
  template <class Drop>
  void release(Drop&& drop);

  std::deque<Unacked> unacked_;
  std::size_t unackedBytes_ = 0;
  std::int64_t overSince_ = -1;
  bool congested_ = false;
  bool acks_ = true;
};

}  // namespace deltacast
