#include "deltacast/pacing.h"

#include <algorithm>

#include "deltacast/topic_pattern.h"

namespace deltacast {

Lane Pacer::laneOf(std::string_view topic) const {
  for (const LaneRule& rule : lanes_) {
    if (topicMatches(rule.pattern, topic)) return rule.lane;
  }
  return Lane::Normal;
}

Pacer::Decision Pacer::changed(PacingState& st, Lane effective, std::int64_t now) const {
  if (st.oldestUnsent < 0) st.oldestUnsent = now;
  if (!st.pending || effective < st.pendingLane) st.pendingLane = effective;  // the most urgent lane of the flush

  std::int64_t deadline = now;
  switch (effective) {
    case Lane::Critical:
      st.pending = false;  // a scheduled flush of this topic is now stale
      st.flushed = true;
      st.lastFlushAt = now;
      return {Decision::FlushNow, now};
    case Lane::High: deadline = now + pacing_.highWindowMs; break;
    case Lane::Normal:
      if (!st.pending) st.firstPendingAt = now;
      deadline = std::min(now + pacing_.normalDebounceMs, st.firstPendingAt + pacing_.normalMaxWaitMs);
      break;
    case Lane::Low: deadline = st.flushed ? std::max(now, st.lastFlushAt + pacing_.lowIntervalMs) : now; break;
  }
  // A flush already scheduled earlier stays; a later one is moved forward.
  // Only the normal lane's own debounce moves its deadline back.
  const bool debounce = effective == Lane::Normal && st.scheduledLane == Lane::Normal;
  if (!st.pending || deadline < st.scheduledAt || debounce) {
    if (!st.pending && effective != Lane::Normal) st.firstPendingAt = now;
    st.pending = true;
    st.scheduledAt = deadline;
    st.scheduledLane = effective;
    return {Decision::Arm, deadline};
  }
  return {Decision::Keep, st.scheduledAt};
}

bool Pacer::fire(PacingState& st, std::int64_t now) {
  if (!st.pending) return false;
  st.pending = false;
  st.flushed = true;
  st.lastFlushAt = now;
  return true;
}

std::optional<Pacer::Sent> Pacer::sending(PacingState& st, std::int64_t now) {
  if (st.oldestUnsent < 0) return std::nullopt;
  const Sent sent{st.pendingLane, now - st.oldestUnsent};
  st.oldestUnsent = -1;
  return sent;
}

}  // namespace deltacast
