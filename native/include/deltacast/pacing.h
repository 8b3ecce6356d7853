// Pacing: when a topic's changes are sent, by lane.
//
//   critical  sent at once
//   high      batched: the first change opens a window, all changes in it go together
//   normal    debounced: sent when no change came for debounceMs, or maxWaitMs after the first
//   low       throttled: at most one flush per intervalMs
//
// A Pacer decides; the caller keeps one PacingState per topic and one timer
// per topic (TimerQueue), and arms it where the Pacer says. No clock, no
// timers and no I/O here: every decision is a function of the state and `now`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace deltacast {

enum class Lane : std::uint8_t { Critical, High, Normal, Low };

struct LaneRule {
  std::string pattern;  // topic_pattern.h
  Lane lane;
};

struct Pacing {
  std::int64_t highWindowMs = 16;
  std::int64_t normalDebounceMs = 50;
  std::int64_t normalMaxWaitMs = 250;
  std::int64_t lowIntervalMs = 1000;
};

// The pacing state of one topic.
struct PacingState {
  std::int64_t oldestUnsent = -1;     // time of the first change not flushed yet
  Lane pendingLane = Lane::Normal;    // the most urgent lane among the unsent changes
  Lane scheduledLane = Lane::Normal;  // the lane that set the pending flush's deadline
  std::int64_t scheduledAt = 0;
  bool pending = false;  // a flush is scheduled (the topic's timer is armed)
  std::int64_t firstPendingAt = 0;
  std::int64_t lastFlushAt = 0;
  bool flushed = false;
};

class Pacer {
 public:
  explicit Pacer(std::vector<LaneRule> lanes = {}, Pacing pacing = {}) : lanes_(std::move(lanes)), pacing_(pacing) {}

  // The first rule whose pattern matches; normal when none does.
  Lane laneOf(std::string_view topic) const;

  struct Decision {
    enum Kind : std::uint8_t {
      FlushNow,  // critical: send now (a scheduled flush is stale: cancel the timer)
      Arm,       // (re)arm the topic's timer at `deadline`
      Keep,      // the flush already scheduled stays as it is
    } kind;
    std::int64_t deadline = 0;
  };
  // A change at `now` on `lane` (the topic's, or the change's own).
  Decision changed(PacingState& state, Lane lane, std::int64_t now) const;

  // The topic's timer fired at `now`: true if a flush is due (false: nothing
  // was pending any more).
  static bool fire(PacingState& state, std::int64_t now);

  // The topic's changes are being sent at `now`: the lane and the latency
  // (from its oldest unsent change) to record, once per flush.
  struct Sent {
    Lane lane;
    std::int64_t latencyMs;
  };
  static std::optional<Sent> sending(PacingState& state, std::int64_t now);

 private:
  std::vector<LaneRule> lanes_;
  Pacing pacing_;
};

}  // namespace deltacast
