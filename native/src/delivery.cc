#include "deltacast/delivery.h"

#include <algorithm>
#include <map>

#include "text_util.h"

namespace deltacast {

namespace {

// Timer ids: topics count up from 1; connections carry this bit.
constexpr std::uint64_t kConnectionTimer = 1ull << 63;  // heartbeat and stall check
constexpr int kCloseGoingAway = 1001;                   // the hub is closing, as a WebSocket server says

}  // namespace

Delivery::Delivery(const TopicStore& store, AccessRules rules, DeliveryLimits limits, std::vector<LaneRule> lanes,
                   Pacing pacing)
    : store_(store),
      rules_(std::move(rules)),
      limits_(limits),
      credit_{limits.creditFrames, limits.creditBytes, limits.criticalOverflow},
      pacer_(std::move(lanes), pacing) {}

Delivery::TopicState& Delivery::state(std::string_view topic) {
  auto [it, added] = topics_.try_emplace(std::string(topic));
  if (added) {
    it->second.id = nextTopicId_++;
    it->second.lane = laneOf(topic);
    topicById_.emplace(it->second.id, it->first);
  }
  return it->second;
}

void Delivery::connect(ConnectionId id, Principal principal, std::int64_t now, bool acks, std::int64_t expiresAt,
                       std::string transport) {
  lastNow_ = now;
  auto [it, added] = connections_.try_emplace(
      id, std::move(principal),
      InboundLimiter(limits_.messagesPerSecond, limits_.messageBurst, limits_.rateViolations, now), now, acks,
      expiresAt < 0 ? -1 : expiresAt, std::move(transport));
  if (!added) return;
  stats_.connections.fetch_add(1, std::memory_order_relaxed);
  if (limits_.heartbeatIntervalMs > 0) it->second.nextPing = now + limits_.heartbeatIntervalMs;
  armConnection(id, it->second);
  audit("connect", id, it->second, now);
}

void Delivery::audit(const char* type, ConnectionId id, const Connection& connection, std::int64_t now,
                     std::string_view topic, const char* code, int closeCode) {
  if (!audit_) return;
  audits_.push_back(
      {type, id, connection.principal.id, connection.transport, std::string(topic), code, closeCode, now});
}

std::vector<AuditEvent> Delivery::takeAudits() {
  std::vector<AuditEvent> taken;
  taken.swap(audits_);
  return taken;
}

std::vector<AuthRequest> Delivery::takeAuthRequests() {
  std::vector<AuthRequest> taken;
  taken.swap(authRequests_);
  return taken;
}

void Delivery::reauth(ConnectionId id, ReauthStatus status, Principal principal, std::int64_t expiresAt,
                      std::int64_t now) {
  lastNow_ = now;
  const auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& connection = it->second;
  if (status != ReauthStatus::Verified) {
    error(id, kUnauthorized,
          status == ReauthStatus::Refused
              ? "the token was refused; the current identity stays until it expires"
              : "this connection cannot refresh its identity (its transport verifies no tokens)");
    audit("auth-failed", id, connection, now, {}, kUnauthorized);
    return;
  }
  if (principal.id != connection.principal.id) {
    error(id, kForbidden, "a refreshed identity must name the same user");
    audit("auth-failed", id, connection, now, {}, kForbidden);
    closeConnection(id, kCloseExpired, "the refreshed identity names another user", now);
    return;
  }
  connection.principal.roles = std::move(principal.roles);
  connection.expiresAt = expiresAt < 0 ? -1 : expiresAt;
  audit("auth", id, connection, now);
  // Subscriptions the new roles no longer admit end, in topic order.
  std::vector<std::string> ended;
  for (const auto& [topic, sub] : connection.subscriptions) {
    (void)sub;
    if (!rules_.allows(connection.principal, topic)) ended.push_back(topic);
  }
  std::sort(ended.begin(), ended.end());
  for (const std::string& topic : ended) {
    connection.subscriptions.erase(topic);
    stats_.subscriptions.fetch_sub(1, std::memory_order_relaxed);
    unsubscribed(id, topic);
    connection.credit.forget(topic);
    error(id, kForbidden, "the refreshed identity may not follow " + quoted(topic), topic);
    audit("forbidden", id, connection, now, topic, kForbidden);
  }
  armConnection(id, connection);
  if (!ended.empty()) catchUpDirty(id, connection, now);
}

void Delivery::armConnection(ConnectionId id, const Connection& connection) {
  std::int64_t due = connection.nextPing;
  if (connection.credit.overSince() >= 0) {
    const std::int64_t stall = connection.credit.overSince() + limits_.stallTimeoutMs;
    if (due < 0 || stall < due) due = stall;
  }
  if (connection.expiresAt >= 0 && (due < 0 || connection.expiresAt < due)) due = connection.expiresAt;
  if (due < 0) {
    timers_.cancel(kConnectionTimer | id);
  } else {
    timers_.schedule(due, kConnectionTimer | id);
  }
}

void Delivery::overWindow(ConnectionId id, Connection& connection, std::int64_t now) {
  if (connection.credit.overSince() >= 0) return;
  connection.credit.setOverSince(now);
  armConnection(id, connection);
}

void Delivery::connectionTimer(ConnectionId id, std::int64_t now) {
  const auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& connection = it->second;
  if (connection.expiresAt >= 0 && now >= connection.expiresAt) {
    audit("expired", id, connection, now, {}, nullptr, kCloseExpired);
    closeConnection(id, kCloseExpired, "the identity expired", now);
    return;
  }
  const std::int64_t overSince = connection.credit.overSince();
  if (overSince >= 0 && now - overSince >= limits_.stallTimeoutMs) {
    stats_.closedSlow.fetch_add(1, std::memory_order_relaxed);
    closeConnection(id, kCloseStalled,
                    (connection.credit.acks() ? "over its credit window for " : "congested for ") +
                        std::to_string(now - overSince) + " ms without acks",
                    now);
    return;
  }
  if (connection.nextPing >= 0 && now >= connection.nextPing) {
    // A connection without acks may have no upstream at all (SSE): only the
    // transport can tell that it is gone.
    if (connection.credit.acks() && now - connection.lastHeard >= limits_.heartbeatTimeoutMs) {
      stats_.closedSilent.fetch_add(1, std::memory_order_relaxed);
      closeConnection(id, kCloseHeartbeatTimeout,
                      "no message from the client for " + std::to_string(now - connection.lastHeard) + " ms", now);
      return;
    }
    send(id, frames::ping());
    connection.nextPing = now + limits_.heartbeatIntervalMs;
  }
  armConnection(id, connection);
}

void Delivery::closeConnection(ConnectionId id, int code, std::string reason, std::int64_t now) {
  const auto it = connections_.find(id);
  if (it != connections_.end()) audit("close", id, it->second, now, {}, nullptr, code);
  forget(id);
  closings_.push_back({id, code, std::move(reason)});
}

void Delivery::closeOversized() {
  std::map<ConnectionId, std::size_t> oversized;
  oversized.swap(oversized_);
  for (const auto& [id, bytes] : oversized) {
    if (!connected(id)) continue;
    // It cannot be sent, and without it the connection would miss a step:
    // it goes (its client resumes with a snapshot it can take, or not at all).
    closeConnection(
        id, kCloseTooLarge,
        "a frame of " + std::to_string(bytes) + " bytes is over the limit of " + std::to_string(limits_.maxFrameBytes),
        lastNow_);
  }
}

std::vector<Closing> Delivery::takeClosings() {
  closeOversized();
  std::vector<Closing> taken;
  taken.swap(closings_);
  return taken;
}

void Delivery::disconnect(ConnectionId id, std::int64_t now) {
  const auto it = connections_.find(id);
  if (it != connections_.end()) audit("close", id, it->second, now);
  forget(id);
}

void Delivery::forget(ConnectionId id) {
  const auto it = connections_.find(id);
  if (it == connections_.end()) return;
  for (const auto& [topic, subscription] : it->second.subscriptions) {
    (void)subscription;
    unsubscribed(id, topic);
  }
  stats_.connections.fetch_sub(1, std::memory_order_relaxed);
  stats_.subscriptions.fetch_sub(it->second.subscriptions.size(), std::memory_order_relaxed);
  connections_.erase(it);
  timers_.cancel(kConnectionTimer | id);
}

void Delivery::unsubscribed(ConnectionId id, const std::string& topic) {
  const auto subs = subscribers_.find(topic);
  if (subs == subscribers_.end()) return;
  subs->second.erase(id);
  if (!subs->second.empty()) return;
  subscribers_.erase(subs);
  // Nobody follows the topic any more: its cached frames and pacing state go
  // (a pending flush would have no one to send to).
  const auto st = topics_.find(topic);
  if (st != topics_.end()) {
    if (st->second.held || st->second.asked) return;  // its flush still asks JS for the value
    dropState(st);
  }
}

void Delivery::dropState(std::unordered_map<std::string, TopicState>::iterator it) {
  timers_.cancel(it->second.id);
  topicById_.erase(it->second.id);
  topics_.erase(it);
}

std::size_t Delivery::subscriptionCount() const {
  std::size_t count = 0;
  for (const auto& [id, connection] : connections_) {
    (void)id;
    count += connection.subscriptions.size();
  }
  return count;
}

std::vector<Outgoing> Delivery::takeOutgoing() {
  closeOversized();
  std::vector<Outgoing> taken;
  taken.swap(outgoing_);
  return taken;
}

void Delivery::error(ConnectionId id, const char* code, std::string_view message, std::string_view topic) {
  send(id, frames::error(code, message, topic));
}

Frame Delivery::snapshotFrame(std::string_view topic, const Snapshot& snapshot) {
  TopicState& cache = state(topic);
  if (cache.snapshot && cache.version == snapshot.version && cache.epoch == snapshot.epoch) {
    stats_.snapshotFramesReused.fetch_add(1, std::memory_order_relaxed);
    return cache.snapshot;
  }
  stats_.snapshotFramesBuilt.fetch_add(1, std::memory_order_relaxed);
  if (cache.version != snapshot.version || cache.epoch != snapshot.epoch) cache.lastStep.reset();
  cache.version = snapshot.version;
  cache.epoch = snapshot.epoch;
  cache.snapshot = frames::snapshot(topic, snapshot.epoch, snapshot.version, snapshot.json);
  return cache.snapshot;
}

Frame Delivery::patchFrom(std::string_view topic, TopicState& state, const Snapshot& snapshot, std::uint64_t from) {
  if (from + 1 == snapshot.version && state.lastStep && state.version == snapshot.version &&
      state.epoch == snapshot.epoch) {
    return state.lastStep;
  }
  const std::vector<HistoryStep> steps = store_.historySince(topic, from);
  const bool haveSteps = !steps.empty() && steps.back().to == snapshot.version;
  std::size_t bytes = 0;
  for (const HistoryStep& step : steps) bytes += step.ops.size();
  // Several steps (or steps the history no longer has) from the state of the
  // last flush: one diff gives the net change, which is never more ops than
  // the steps and usually fewer (a row that ticked ten times is one replace).
  std::string squashed;
  const bool fromBase = (!haveSteps || steps.size() > 1) && state.base && state.base->version == from &&
                        state.base->epoch == snapshot.epoch && store_.diffFrom(*state.base, topic, squashed);
  if (fromBase && (!haveSteps || squashed.size() <= bytes)) {
    if (squashed.size() >= snapshot.json.size()) return nullptr;
    stats_.squashed.fetch_add(1, std::memory_order_relaxed);
  } else {
    squashed.clear();
    if (!haveSteps || bytes >= snapshot.json.size()) return nullptr;
  }
  const frames::PatchIds ids = idsBetween(state, from, snapshot.version);
  if (!squashed.empty()) return frames::patch(topic, snapshot.epoch, from, snapshot.version, squashed, ids);
  std::vector<std::string_view> ops;
  ops.reserve(steps.size());
  for (const HistoryStep& step : steps) ops.emplace_back(step.ops);
  return frames::patchOfSteps(topic, snapshot.epoch, from, snapshot.version, ops, ids);
}

frames::PatchIds Delivery::idsBetween(const TopicState& state, std::uint64_t from, std::uint64_t to) {
  frames::PatchIds out;
  // A change made while nobody here followed the topic has no id to give;
  // one whose id was dropped (over kRecentIds) makes the list incomplete.
  if (from < state.idsLostUpTo) {
    out.truncated = true;
    return out;
  }
  for (auto it = state.ids.rbegin(); it != state.ids.rend() && it->first > from; ++it) {
    if (it->first > to) continue;
    if (out.ids.size() == frames::kMaxFrameIds) {
      out.ids.clear();
      out.truncated = true;
      return out;
    }
    out.ids.emplace_back(it->second);
  }
  std::reverse(out.ids.begin(), out.ids.end());  // oldest first
  return out;
}

bool Delivery::admitted(ConnectionId id, Connection& connection, bool routine, std::int64_t now) {
  switch (connection.inbound.admit(routine, now)) {
    case InboundLimiter::Verdict::Admit: return true;
    case InboundLimiter::Verdict::RefuseAndTell:
      error(id, kRateLimited,
            "over " + std::to_string(static_cast<long long>(limits_.messagesPerSecond)) +
                " messages a second: messages are dropped until the rate falls");
      return false;
    case InboundLimiter::Verdict::Refuse: return false;
    case InboundLimiter::Verdict::Close:
      stats_.closedFlooding.fetch_add(1, std::memory_order_relaxed);
      closeConnection(id, kCloseRateLimited,
                      "more than " + std::to_string(limits_.rateViolations) + " messages in a row over the rate limit",
                      now);
      return false;
  }
  return false;
}

void Delivery::refuse(ConnectionId id, const char* code, std::string_view message, std::int64_t now) {
  lastNow_ = now;
  const auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& connection = it->second;
  connection.lastHeard = now;  // as for a message that does not parse
  if (!admitted(id, connection, false, now)) return;
  error(id, code, message);
}

void Delivery::receive(ConnectionId id, std::string_view text, std::int64_t now) {
  lastNow_ = now;
  const auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& connection = it->second;
  connection.lastHeard = now;  // any message, even a refused one, shows the client is alive
  ClientMessage message;
  message.type = MessageType::Sub;  // what a message that does not parse costs
  const Refusal refusal = parseClientMessage(text, limits_.maxMessageBytes, limits_.maxTopicLength, message);
  const bool routine = message.type == MessageType::Ack || message.type == MessageType::Pong;
  if (!admitted(id, connection, routine, now)) return;
  if (refusal) {
    error(id, refusal.code, refusal.message, refusal.topic);
    return;
  }
  switch (message.type) {
    case MessageType::Pong: return;
    case MessageType::Auth: authRequests_.push_back({id, std::move(message.token)}); return;
    case MessageType::Sub:
      subscribe(id, connection, message.topic, message.hasEpoch ? &message.epoch : nullptr,
                message.hasVersion ? &message.version : nullptr, now);
      return;
    case MessageType::Unsub: {
      const auto sub = connection.subscriptions.find(message.topic);
      if (sub == connection.subscriptions.end()) return;  // idempotent
      connection.subscriptions.erase(sub);
      stats_.subscriptions.fetch_sub(1, std::memory_order_relaxed);
      unsubscribed(id, message.topic);
      // Frames of the topic already handed to send() keep counting until the
      // client acks them (an ack for a topic no longer subscribed to is taken
      // while the window holds its frames): unsubscribing frees no credit, or
      // sub/unsub alternation would be sent snapshots without bound.
      return;
    }
    case MessageType::Ack: break;
  }
  // ack: only for a topic subscribed to, and a version that was sent.
  const auto sub = connection.subscriptions.find(message.topic);
  if (!connection.credit.acks()) {
    // A connection without acks has no window to open: a well-formed ack is
    // ignored, so one client can speak to both kinds of connection.
  } else if (sub == connection.subscriptions.end()) {
    const std::uint64_t newest = connection.credit.newestUnacked(message.topic);
    if (newest == 0) {
      error(id, kInvalidAck, "ack for a topic this connection is not subscribed to", message.topic);
    } else if (message.version > newest) {
      error(id, kInvalidAck,
            "ack for version " + std::to_string(message.version) + ", but version " + std::to_string(newest) +
                " is the newest sent",
            message.topic);
    } else {
      acknowledged(id, connection, message.topic, message.version, now);
    }
  } else if (message.version > sub->second.newestSent) {
    error(id, kInvalidAck,
          "ack for version " + std::to_string(message.version) + ", but version " +
              std::to_string(sub->second.newestSent) + " is the newest sent",
          message.topic);
  } else {
    acknowledged(id, connection, message.topic, message.version, now);
  }
}

void Delivery::subscribe(ConnectionId id, Connection& connection, std::string_view topic, const std::string* epoch,
                         const std::uint64_t* version, std::int64_t now) {
  if (!rules_.allows(connection.principal, topic)) {
    error(id, kForbidden, "this connection may not subscribe to " + quoted(topic), topic);
    audit("forbidden", id, connection, now, topic, kForbidden);
    return;
  }
  auto [entry, added] = connection.subscriptions.try_emplace(std::string(topic));
  if (added && connection.subscriptions.size() > limits_.maxSubscriptions) {
    connection.subscriptions.erase(entry);
    error(id, kTooManySubscriptions,
          "a connection may hold at most " + std::to_string(limits_.maxSubscriptions) + " subscriptions", topic);
    return;
  }
  subscribers_[std::string(topic)].insert(id);
  if (added) {
    stats_.subscriptions.fetch_add(1, std::memory_order_relaxed);
    // Frames of the topic sent before an unsub may still be on their way:
    // their acks stay valid (and a claimed version never makes one valid).
    entry->second.newestSent = connection.credit.newestUnacked(topic);
  }
  audit("sub", id, connection, now, topic);
  Subscription& subscription = entry->second;

  const std::shared_ptr<const Snapshot> snapshot = store_.get(topic);
  if (!snapshot) {  // nothing yet: the first version will come as a snapshot
    subscription.hold({}, 0);
    // A client resuming a topic that has gone meanwhile (deleted, expired or
    // evicted while it was away) must drop what it holds.
    if (epoch != nullptr) {
      stats_.goneSent.fetch_add(1, std::memory_order_relaxed);
      send(id, frames::gone(topic, *epoch, *version, "absent"));
    }
    return;
  }
  if (epoch != nullptr && *epoch == snapshot->epoch && *version == snapshot->version) {
    subscription.holdSent(snapshot->epoch, snapshot->version);  // already current: nothing to send
    return;
  }
  // A sub for the state already in flight to this connection costs nothing:
  // the snapshot on its way answers it.
  if (epoch == nullptr && subscription.snapshotInFlight && !subscription.dirty &&
      subscription.epoch == snapshot->epoch && subscription.version == snapshot->version) {
    return;
  }
  // What the client holds, until it is sent more.
  subscription.hold(epoch != nullptr ? *epoch : std::string(), epoch != nullptr ? *version : 0);
  // A claim of a version the topic really had in its current epoch may be
  // acked (the client was sent it, on this connection or an earlier one);
  // any other claim makes no ack valid.
  if (epoch != nullptr && *epoch == snapshot->epoch && *version <= snapshot->version) {
    subscription.newestSent = std::max(subscription.newestSent, *version);
  }
  if (!hasCredit(connection)) {
    // Like any frame, the answer waits for credit: one frame when it comes.
    subscription.dirty = true;
    stats_.conflated.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (epoch != nullptr && *epoch == snapshot->epoch && *version < snapshot->version) {
    // Resume: the missing steps as one patch, when the history has them all
    // and that is smaller than a snapshot.
    if (Frame patch = patchFrom(topic, state(topic), *snapshot, *version)) {
      subscription.holdSent(snapshot->epoch, snapshot->version);
      charge(id, connection, topic, snapshot->epoch, snapshot->version, patch->size(), now);
      send(id, std::move(patch));
      return;
    }
  }
  subscription.holdSent(snapshot->epoch, snapshot->version);
  subscription.snapshotInFlight = true;
  Frame frame = snapshotFrame(topic, *snapshot);
  charge(id, connection, topic, snapshot->epoch, snapshot->version, frame->size(), now);
  send(id, std::move(frame));
  TopicState& st = state(topic);
  if (!st.base || st.base->epoch != snapshot->epoch) st.base = snapshot;  // the first subscriber's state
}

void Delivery::changed(std::string_view topic, const ChangeResult& result, std::int64_t now, std::optional<Lane> lane,
                       std::string_view changeId, bool held) {
  lastNow_ = now;
  if (!result.changed || subscribers_.empty()) return;
  if (subscribers_.find(std::string(topic)) == subscribers_.end()) return;
  const bool fresh = topics_.find(std::string(topic)) == topics_.end();
  TopicState& st = state(topic);
  if (fresh || result.created) {  // a new epoch: its ids start here
    st.ids.clear();
    st.idsLostUpTo = 0;
  }
  if (!changeId.empty()) {
    st.ids.emplace_back(result.version, std::string(changeId));
    if (st.ids.size() > kRecentIds) {
      st.idsLostUpTo = st.ids.front().first;
      st.ids.pop_front();
    }
  }
  // The change's own patch frame: shared by every subscriber at the previous version.
  st.lastStep.reset();
  if (!result.created && !result.ops.empty()) {
    st.lastStep = frames::patch(topic, result.epoch, result.version - 1, result.version, result.ops,
                                idsBetween(st, result.version - 1, result.version));
  }
  st.version = result.version;
  st.epoch = result.epoch;
  st.snapshot.reset();
  if (held && (st.pacing.pending || st.asked)) return;  // paced by its holds
  const Pacer::Decision decision = pacer_.changed(st.pacing, lane.value_or(st.lane), now);
  switch (decision.kind) {
    case Pacer::Decision::FlushNow:
      timers_.cancel(st.id);  // a scheduled flush of this topic is now stale
      flush({std::string(topic)}, now, true);
      return;
    case Pacer::Decision::Arm: timers_.schedule(decision.deadline, st.id); return;  // moves its timer if it has one
    case Pacer::Decision::Keep: return;
  }
}

void Delivery::flushAllPending(std::int64_t now) {
  lastNow_ = now;
  std::vector<std::string> topics;
  for (auto& [name, st] : topics_) {
    if (!st.pacing.pending) continue;
    st.pacing.pending = false;
    timers_.cancel(st.id);
    topics.push_back(name);
  }
  std::sort(topics.begin(), topics.end());  // deterministic order
  if (!topics.empty()) flush(topics, now, false);
  // After their last frames, every open connection is closed with 1001 (the transports are told so
  // once the core has stopped): each gets its close event, in the order they connected.
  if (!audit_) return;
  std::vector<ConnectionId> open;
  for (const auto& entry : connections_) open.push_back(entry.first);
  std::sort(open.begin(), open.end());
  for (const ConnectionId id : open) audit("close", id, connections_.at(id), now, {}, nullptr, kCloseGoingAway);
}

void Delivery::hold(std::string_view topic, std::optional<Lane> lane, std::int64_t now, std::uint64_t heldId) {
  lastNow_ = now;
  TopicState& st = state(topic);
  if (!st.held && !st.asked) ++held_;
  st.heldAt = now;
  if (heldId != 0) st.heldId = heldId;
  if (st.asked) {
    // Asked for already, not yet released: the release answers this hold
    // too (JS sends the latest value it holds), and is applied even if the
    // topic was removed since the ask: this publish came after the removal.
    st.dropped = false;
    return;
  }
  st.held = true;
  paceHold(st, topic, lane, now);
}

void Delivery::redate(std::string_view topic, std::optional<Lane> lane, std::int64_t at, std::uint64_t position,
                      std::int64_t now, bool releaseFollows) {
  const auto it = topics_.find(std::string(topic));
  if (it == topics_.end() || !it->second.asked) {
    hold(topic, lane, at);  // before the flush asked (the value goes early): a hold() when it was made
    lastNow_ = now;
    return;
  }
  lastNow_ = now;
  TopicState& st = it->second;
  st.heldAt = at;
  if (st.dropped) {
    // Removed since the last hold: a publish after the removal's record is
    // applied, one before went with the topic. Either way the release is due.
    if (position > st.droppedAt) st.dropped = false;
    if (!releaseFollows)
      dueWants_.push_back({std::string(topic), st.heldId});  // asked before the removal: the value now
    return;
  }
  if (releaseFollows) return;  // a hold after the removal brought it back: the value goes now
  // The flush fell due on the hold's schedule; a later publish made before
  // then may move a debounce back (and changes nothing else: a window or an
  // interval runs from the first). One made after it goes with this flush,
  // which is late already.
  st.pacing = st.askedPacing;
  std::int64_t due = st.pacing.scheduledAt;
  if (at < due) {
    const Pacer::Decision decision = pacer_.changed(st.pacing, lane.value_or(st.lane), at);
    due = decision.kind == Pacer::Decision::FlushNow ? at : decision.deadline;
  }
  if (due <= now) {
    Pacer::fire(st.pacing, due);  // when it fell due (a low lane's next interval counts from there)
    // Asked for again as due: JS answers with the value, whatever it was
    // published since (which goes with this flush), so a producer that keeps
    // publishing cannot keep a flush that fell due from going.
    dueWants_.push_back({std::string(topic), st.heldId});
    return;
  }
  st.asked = false;
  st.held = true;
  timers_.schedule(due, st.id);
}

void Delivery::paceHold(TopicState& st, std::string_view topic, std::optional<Lane> lane, std::int64_t now) {
  const Pacer::Decision decision = pacer_.changed(st.pacing, lane.value_or(st.lane), now);
  switch (decision.kind) {
    case Pacer::Decision::FlushNow:  // critical: asked for at once
      st.askedPacing = st.pacing;
      timers_.cancel(st.id);
      st.held = false;
      st.asked = true;
      wants_.push_back({std::string(topic), st.heldId});
      return;
    case Pacer::Decision::Arm: timers_.schedule(decision.deadline, st.id); return;
    case Pacer::Decision::Keep: return;
  }
}

bool Delivery::heldValueDropped(std::string_view topic) const {
  const auto it = topics_.find(std::string(topic));
  return it != topics_.end() && it->second.asked && it->second.dropped;
}

std::optional<std::int64_t> Delivery::lastHoldAt(std::string_view topic) const {
  const auto it = topics_.find(std::string(topic));
  if (it == topics_.end()) return std::nullopt;
  return it->second.heldAt;
}

void Delivery::released(std::string_view topic, std::int64_t now) {
  lastNow_ = now;
  const auto it = topics_.find(std::string(topic));
  if (it == topics_.end() || !it->second.asked) return;  // an early release: the hold's flush still comes
  TopicState& st = it->second;
  const bool dropped = st.dropped;
  st.asked = false;  // (held stays false while asked: hold() leaves an asked topic to its release)
  st.dropped = false;
  --held_;
  // The flush the hold was asked for, now that the value is in; a topic
  // nobody follows keeps no state.
  if (subscribers_.find(it->first) == subscribers_.end()) {
    dropState(it);
    return;
  }
  // A dropped value was not applied: there is nothing of it to send, and a
  // change made since the removal keeps its own flush.
  if (dropped) return;
  timers_.cancel(st.id);
  flush({it->first}, now, false);
  st.pacing.pending = false;
}

void Delivery::releasedEarly(std::string_view topic, std::int64_t now) {
  lastNow_ = now;
  const auto it = topics_.find(std::string(topic));
  if (it == topics_.end()) return;
  TopicState& st = it->second;
  if (st.asked) {
    released(topic, now);
    return;
  }
  if (!st.held) return;
  st.held = false;
  --held_;
  // A topic nobody follows keeps no state once nothing is held (its flush
  // would send nothing).
  if (subscribers_.find(it->first) == subscribers_.end()) dropState(it);
}

std::vector<Delivery::Want> Delivery::takeWants() {
  std::vector<Want> taken;
  taken.swap(wants_);
  return taken;
}

std::vector<Delivery::Want> Delivery::takeDueWants() {
  std::vector<Want> taken;
  taken.swap(dueWants_);
  return taken;
}

void Delivery::advance(std::int64_t now) {
  lastNow_ = now;
  while (const std::optional<std::int64_t> due = timers_.nextDeadline()) {
    if (*due > now) break;
    std::vector<std::string> topics;
    timers_.advance(*due, [&](std::uint64_t id, std::uint64_t) {
      if ((id & kConnectionTimer) != 0) {
        connectionTimer(id & ~kConnectionTimer, *due);
        return;
      }
      const auto name = topicById_.find(id);
      if (name == topicById_.end()) return;
      TopicState& st = topics_[name->second];
      const PacingState before = st.pacing;
      if (!Pacer::fire(st.pacing, *due)) return;
      if (st.held) {
        // Its frames wait for the value (released()), or for a later
        // publish's time (redate()), which may put the flush off.
        st.askedPacing = before;
        st.held = false;
        st.asked = true;
        wants_.push_back({name->second, st.heldId});
      } else {
        topics.push_back(name->second);
      }
    });
    if (!topics.empty()) flush(topics, *due, false);
  }
}

Frame Delivery::catchUp(std::string_view topic, TopicState& st, const Snapshot& snapshot, const Subscription& sub,
                        std::map<std::uint64_t, Frame>* shared) {
  Frame frame;
  if (sub.epoch == snapshot.epoch && sub.version > 0 && sub.version < snapshot.version) {
    if (shared != nullptr) {
      auto [it, added] = shared->try_emplace(sub.version);
      if (added) it->second = patchFrom(topic, st, snapshot, sub.version);
      frame = it->second;
    } else {
      frame = patchFrom(topic, st, snapshot, sub.version);
    }
  }
  if (frame) {
    const std::size_t saved = snapshot.json.size() > frame->size() ? snapshot.json.size() - frame->size() : 0;
    stats_.bytesSaved.fetch_add(saved, std::memory_order_relaxed);
    return frame;
  }
  return snapshotFrame(topic, snapshot);
}

void Delivery::charge(ConnectionId id, Connection& connection, std::string_view topic, const std::string& epoch,
                      std::uint64_t version, std::size_t bytes, std::int64_t now) {
  connection.credit.charge(topic, epoch, version, bytes);
  if (!hasCredit(connection)) overWindow(id, connection, now);
}

void Delivery::gone(const RemovedTopic& removed, std::int64_t now, std::uint64_t position) {
  lastNow_ = now;
  // Its frames and its pending flush go: nothing of that epoch is sent again.
  // The topic keeps only its identity (its timer id and lane).
  if (const auto st = topics_.find(removed.topic); st != topics_.end()) {
    TopicState fresh;
    fresh.id = st->second.id;
    fresh.lane = st->second.lane;
    fresh.heldAt = st->second.heldAt;
    fresh.heldId = st->second.heldId;
    // A held value was published before the removal: published at once, it
    // would have gone with the topic. It is asked for now (JS settles its
    // publishes) and not applied (heldValueDropped); a hold before its
    // release is a publish after the removal, and brings it back.
    if (st->second.held || st->second.asked) {
      fresh.asked = true;
      fresh.dropped = true;
      fresh.droppedAt = position;
      if (!st->second.asked)
        dueWants_.push_back({removed.topic, fresh.heldId});  // one asked for already: its answer comes
    }
    timers_.cancel(fresh.id);
    st->second = std::move(fresh);
  }
  const auto subs = subscribers_.find(removed.topic);
  if (subs == subscribers_.end()) return;
  const Frame frame = frames::gone(removed.topic, removed.epoch, removed.version, removalName(removed.reason));
  const std::vector<ConnectionId> ids(subs->second.begin(), subs->second.end());
  for (const ConnectionId id : ids) {
    const auto it = connections_.find(id);
    if (it == connections_.end()) continue;
    Connection& connection = it->second;
    const auto sub = connection.subscriptions.find(removed.topic);
    if (sub == connection.subscriptions.end()) continue;
    // Holds nothing of any epoch now. The version stays, so an ack the client
    // sent before it heard is not an error.
    sub->second.epoch.clear();
    sub->second.dirty = false;
    sub->second.snapshotInFlight = false;
    // Not a state frame: it does not count against the window, and the
    // topic's unacked frames can no longer be acked.
    stats_.goneSent.fetch_add(1, std::memory_order_relaxed);
    send(id, frame);
    connection.credit.forget(removed.topic);
    catchUpDirty(id, connection, now);
  }
}

void Delivery::acknowledged(ConnectionId id, Connection& connection, std::string_view topic, std::uint64_t version,
                            std::int64_t now) {
  connection.credit.acknowledge(topic, version);
  if (const auto sub = connection.subscriptions.find(std::string(topic));
      sub != connection.subscriptions.end() && version >= sub->second.version) {
    sub->second.snapshotInFlight = false;  // applied: a `sub` holding nothing now needs a new one
  }
  catchUpDirty(id, connection, now);
}

void Delivery::catchUpDirty(ConnectionId id, Connection& connection, std::int64_t now) {
  if (!hasCredit(connection)) return;
  if (connection.credit.overSince() >= 0) {
    connection.credit.setOverSince(-1);
    armConnection(id, connection);  // no stall check any more
  }
  // Credit is back: one frame per conflated topic, at its latest version.
  std::vector<Frame> frames;
  for (auto& [name, sub] : connection.subscriptions) {
    if (!sub.dirty) continue;
    if (!hasCredit(connection)) break;
    sub.dirty = false;
    const std::shared_ptr<const Snapshot> snapshot = store_.get(name);
    if (!snapshot || (sub.epoch == snapshot->epoch && sub.version == snapshot->version)) continue;
    Frame frame = catchUp(name, state(name), *snapshot, sub, nullptr);
    charge(id, connection, name, snapshot->epoch, snapshot->version, frame->size(), now);
    sub.epoch = snapshot->epoch;
    sub.version = snapshot->version;
    sub.newestSent = std::max(sub.newestSent, snapshot->version);
    sub.snapshotInFlight = frames::isSnapshot(frame);
    frames.push_back(std::move(frame));
  }
  sendAll(id, std::move(frames));
}

void Delivery::congestion(ConnectionId id, bool congested, std::int64_t now) {
  lastNow_ = now;
  const auto it = connections_.find(id);
  if (it == connections_.end() || !it->second.credit.congestion(congested)) return;
  if (congested) {
    overWindow(id, it->second, now);
  } else {
    catchUpDirty(id, it->second, now);
  }
}

void Delivery::flush(const std::vector<std::string>& topics, std::int64_t now, bool critical) {
  std::map<ConnectionId, std::vector<Frame>> frames;  // ordered: deterministic output
  std::vector<ConnectionId> overflowing;
  for (const std::string& topic : topics) {
    const auto subs = subscribers_.find(topic);
    if (subs == subscribers_.end()) continue;
    const std::shared_ptr<const Snapshot> snapshot = store_.get(topic);
    if (!snapshot) continue;
    TopicState& st = state(topic);
    if (const auto sent = Pacer::sending(st.pacing, now)) {
      stats_.latency[static_cast<std::size_t>(sent->lane)].record(sent->latencyMs);
    }
    std::map<std::uint64_t, Frame> patches;  // by from-version: encoded once
    for (const ConnectionId id : subs->second) {
      Connection& connection = connections_.find(id)->second;
      Subscription& sub = connection.subscriptions[topic];
      if (sub.epoch == snapshot->epoch && sub.version == snapshot->version) continue;
      if (!critical && !hasCredit(connection)) {
        // Conflation: remember that this topic moved on; memory stays one flag.
        sub.dirty = true;
        stats_.conflated.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      Frame frame = catchUp(topic, st, *snapshot, sub, &patches);
      charge(id, connection, topic, snapshot->epoch, snapshot->version, frame->size(), now);
      sub.epoch = snapshot->epoch;
      sub.version = snapshot->version;
      sub.newestSent = std::max(sub.newestSent, snapshot->version);
      sub.dirty = false;
      sub.snapshotInFlight = frames::isSnapshot(frame);
      frames[id].push_back(std::move(frame));
      if (critical && connection.credit.overflowing(credit_)) {
        overflowing.push_back(id);
      }
    }
    st.base = snapshot;  // what the subscribers with credit now hold
  }
  for (auto& [id, list] : frames) sendAll(id, std::move(list));
  for (const ConnectionId id : overflowing) {
    if (!connected(id)) continue;
    stats_.closedSlow.fetch_add(1, std::memory_order_relaxed);
    closeConnection(id, kCloseStalled, "critical updates overflowed the connection's credit window", now);
  }
}

}  // namespace deltacast
