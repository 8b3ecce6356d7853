#include "deltacast/delivery.h"

#include <algorithm>
#include <charconv>
#include <map>

#include "deltacast/json_tape.h"
#include "deltacast/topic_pattern.h"
#include "text_util.h"

namespace deltacast {

namespace {

// Stable codes of `err` frames (docs/protocol.md).
constexpr const char* kInvalidMessage = "DELTACAST_INVALID_MESSAGE";
constexpr const char* kUnknownMessage = "DELTACAST_UNKNOWN_MESSAGE";
constexpr const char* kMessageTooLarge = "DELTACAST_MESSAGE_TOO_LARGE";
constexpr const char* kForbidden = "DELTACAST_FORBIDDEN";
constexpr const char* kTooManySubscriptions = "DELTACAST_TOO_MANY_SUBSCRIPTIONS";
constexpr const char* kInvalidAck = "DELTACAST_INVALID_ACK";
constexpr const char* kRateLimited = "DELTACAST_RATE_LIMITED";

// Timer ids: topics count up from 1; connections carry this bit.
constexpr std::uint64_t kConnectionTimer = 1ull << 63;  // heartbeat
constexpr std::uint64_t kStallTimer = 1ull << 62;       // over the credit window since...

// The members of a client message this engine reads.
struct Message {
  std::string type;
  bool hasTopic = false;
  std::string topic;
  bool hasEpoch = false;
  std::string epoch;
  bool hasVersion = false;
  std::uint64_t version = 0;
};

// Parses a client message; the empty string on success, else what is wrong.
std::string parseMessage(std::string_view text, std::size_t maxBytes, Message& message) {
  ParseLimits limits;
  limits.maxBytes = maxBytes;
  limits.maxDepth = 16;
  JsonTape tape;
  if (Status s = tape.parse(text, limits); !s) return s.message();
  if (tape[0].type != JsonType::Object)
    return std::string("a message must be a JSON object, not ") + jsonTypeName(tape[0].type);
  std::string name;
  for (std::uint32_t k = 1; k < tape[0].next; k = tape[k + 1].next) {
    name.clear();
    decodeJsonString(tape.raw(k), name);
    const std::uint32_t v = k + 1;
    auto asString = [&](std::string& into) -> bool {
      if (tape[v].type != JsonType::String) return false;
      into.clear();
      decodeJsonString(tape.raw(v), into);
      return true;
    };
    if (name == "t") {
      if (!asString(message.type)) return "\"t\" must be a string";
    } else if (name == "topic") {
      if (!asString(message.topic)) return "\"topic\" must be a string";
      message.hasTopic = true;
    } else if (name == "epoch") {
      if (!asString(message.epoch)) return "\"epoch\" must be a string";
      message.hasEpoch = true;
    } else if (name == "version") {
      const std::string_view raw = tape.raw(v);
      std::uint64_t value = 0;
      const auto result = std::from_chars(raw.data(), raw.data() + raw.size(), value);
      if (tape[v].type != JsonType::Number || (tape[v].flags & TapeNode::kIsInteger) == 0 || result.ec != std::errc() ||
          result.ptr != raw.data() + raw.size() || value > (1ull << 53)) {
        return "\"version\" must be a non-negative integer";
      }
      message.version = value;
      message.hasVersion = true;
    }
    // Other members are ignored: newer clients may send more.
  }
  if (message.type.empty()) return "missing \"t\"";
  return {};
}

void appendQuoted(std::string_view s, std::string& out) {
  out.push_back('"');
  appendJsonEscaped(s, out);
  out.push_back('"');
}

}  // namespace

Delivery::Delivery(const TopicStore& store, AccessRules rules, DeliveryLimits limits, std::vector<LaneRule> lanes,
                   Pacing pacing)
    : store_(store), rules_(std::move(rules)), limits_(limits), lanes_(std::move(lanes)), pacing_(pacing) {}

Lane Delivery::laneOf(std::string_view topic) const {
  for (const LaneRule& rule : lanes_) {
    if (topicMatches(rule.pattern, topic)) return rule.lane;
  }
  return Lane::Normal;
}

Delivery::TopicState& Delivery::state(std::string_view topic) {
  auto [it, added] = topics_.try_emplace(std::string(topic));
  if (added) {
    it->second.id = nextTopicId_++;
    it->second.lane = laneOf(topic);
    topicById_.emplace(it->second.id, it->first);
  }
  return it->second;
}

void Delivery::connect(ConnectionId id, Principal principal, std::int64_t now, bool acks) {
  auto [it, added] = connections_.try_emplace(
      id, std::move(principal), TokenBucket(limits_.messagesPerSecond, limits_.messageBurst, now), now, acks);
  if (!added) return;
  stats_.connections.fetch_add(1, std::memory_order_relaxed);
  if (limits_.heartbeatIntervalMs > 0) {
    it->second.heartbeatSeq = timers_.schedule(now + limits_.heartbeatIntervalMs, kConnectionTimer | id);
  }
}

void Delivery::heartbeat(ConnectionId id, std::uint64_t seq, std::int64_t now) {
  const auto it = connections_.find(id);
  if (it == connections_.end() || it->second.heartbeatSeq != seq) return;
  // A connection without acks may have no upstream at all (SSE): only the
  // transport can tell that it is gone.
  if (it->second.acks && now - it->second.lastHeard >= limits_.heartbeatTimeoutMs) {
    stats_.closedSilent.fetch_add(1, std::memory_order_relaxed);
    closeConnection(id, kCloseHeartbeatTimeout,
                    "no message from the client for " + std::to_string(now - it->second.lastHeard) + " ms");
    return;
  }
  send(id, ping_);
  it->second.heartbeatSeq = timers_.schedule(now + limits_.heartbeatIntervalMs, kConnectionTimer | id);
}

void Delivery::stallCheck(ConnectionId id, std::uint64_t seq, std::int64_t now) {
  const auto it = connections_.find(id);
  if (it == connections_.end() || it->second.stallSeq != seq || it->second.overSince < 0) return;
  if (now - it->second.overSince < limits_.stallTimeoutMs) return;
  stats_.closedSlow.fetch_add(1, std::memory_order_relaxed);
  closeConnection(id, kCloseStalled,
                  "over its credit window for " + std::to_string(now - it->second.overSince) + " ms without acks");
}

void Delivery::closeConnection(ConnectionId id, int code, std::string reason) {
  disconnect(id);
  closings_.push_back({id, code, std::move(reason)});
}

std::vector<Closing> Delivery::takeClosings() {
  std::vector<Closing> taken;
  taken.swap(closings_);
  return taken;
}

void Delivery::disconnect(ConnectionId id) {
  const auto it = connections_.find(id);
  if (it == connections_.end()) return;
  for (const auto& [topic, subscription] : it->second.subscriptions) {
    (void)subscription;
    unsubscribed(id, topic);
  }
  stats_.connections.fetch_sub(1, std::memory_order_relaxed);
  stats_.subscriptions.fetch_sub(it->second.subscriptions.size(), std::memory_order_relaxed);
  connections_.erase(it);
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
    topicById_.erase(st->second.id);
    topics_.erase(st);
  }
}

template <class Drop>
void Delivery::release(Connection& connection, Drop&& drop) {
  for (auto it = connection.unacked.begin(); it != connection.unacked.end();) {
    if (drop(*it)) {
      connection.unackedBytes -= it->bytes;
      it = connection.unacked.erase(it);
    } else {
      ++it;
    }
  }
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
  std::vector<Outgoing> taken;
  taken.swap(outgoing_);
  return taken;
}

void Delivery::error(ConnectionId id, const char* code, std::string_view message, std::string_view topic) {
  std::string frame = "{\"t\":\"err\",\"code\":\"";
  frame.append(code);
  frame.append("\",\"message\":");
  appendQuoted(message, frame);
  if (!topic.empty()) {
    frame.append(",\"topic\":");
    appendQuoted(topic, frame);
  }
  frame.push_back('}');
  send(id, std::make_shared<const std::string>(std::move(frame)));
}

Frame Delivery::snapshotFrame(std::string_view topic, const Snapshot& snapshot) {
  TopicState& frames = state(topic);
  if (frames.snapshot && frames.version == snapshot.version && frames.epoch == snapshot.epoch) {
    stats_.snapshotFramesReused.fetch_add(1, std::memory_order_relaxed);
    return frames.snapshot;
  }
  stats_.snapshotFramesBuilt.fetch_add(1, std::memory_order_relaxed);
  std::string frame = "{\"t\":\"snap\",\"topic\":";
  appendQuoted(topic, frame);
  frame.append(",\"epoch\":");
  appendQuoted(snapshot.epoch, frame);
  frame.append(",\"version\":");
  frame.append(std::to_string(snapshot.version));
  frame.append(",\"data\":");
  frame.append(snapshot.json);
  frame.push_back('}');
  if (frames.version != snapshot.version || frames.epoch != snapshot.epoch) frames.lastStep.reset();
  frames.version = snapshot.version;
  frames.epoch = snapshot.epoch;
  frames.snapshot = std::make_shared<const std::string>(std::move(frame));
  return frames.snapshot;
}

Frame Delivery::patchFrom(std::string_view topic, TopicState& state, const Snapshot& snapshot, std::uint64_t from) {
  if (from + 1 == snapshot.version && state.lastStep && state.version == snapshot.version &&
      state.epoch == snapshot.epoch) {
    return state.lastStep;
  }
  const std::vector<const HistoryEntry*> steps = store_.historySince(topic, from);
  const bool haveSteps = !steps.empty() && steps.back()->to == snapshot.version;
  std::size_t bytes = 0;
  for (const HistoryEntry* step : steps) bytes += step->ops.size();
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
  std::string frame = "{\"t\":\"patch\",\"topic\":";
  appendQuoted(topic, frame);
  frame.append(",\"epoch\":");
  appendQuoted(snapshot.epoch, frame);
  frame.append(",\"from\":" + std::to_string(from) + ",\"to\":" + std::to_string(snapshot.version) + ",\"ops\":");
  if (!squashed.empty()) {
    frame.append(squashed);
  } else {
    frame.push_back('[');
    bool first = true;
    for (const HistoryEntry* step : steps) {
      const std::string_view inner = std::string_view(step->ops).substr(1, step->ops.size() - 2);
      if (inner.empty()) continue;
      if (!first) frame.push_back(',');
      first = false;
      frame.append(inner);
    }
    frame.push_back(']');
  }
  frame.push_back('}');
  return std::make_shared<const std::string>(std::move(frame));
}

void Delivery::receive(ConnectionId id, std::string_view text, std::int64_t now) {
  const auto it = connections_.find(id);
  if (it == connections_.end()) return;
  it->second.lastHeard = now;  // any message, even a refused one, shows the client is alive
  Message message;
  std::string problem;
  if (text.size() > limits_.maxMessageBytes) {
    problem = "a message of " + std::to_string(text.size()) + " bytes is over the limit of " +
              std::to_string(limits_.maxMessageBytes);
  } else {
    problem = parseMessage(text, limits_.maxMessageBytes, message);
  }
  // Acks and pongs are the steady traffic of a healthy client: they cost a
  // twentieth of a token, so acking every frame of a busy topic stays far
  // below the limit; everything else costs one.
  const bool routine = problem.empty() && (message.type == "ack" || message.type == "pong");
  if (!it->second.inbound.take(now, routine ? 0.05 : 1.0)) {
    if (++it->second.refusedInARow >= limits_.rateViolations) {
      stats_.closedFlooding.fetch_add(1, std::memory_order_relaxed);
      closeConnection(id, kCloseRateLimited,
                      "more than " + std::to_string(limits_.rateViolations) + " messages in a row over the rate limit");
      return;
    }
    if (it->second.refusedInARow == 1) {
      error(id, kRateLimited,
            "over " + std::to_string(static_cast<long long>(limits_.messagesPerSecond)) +
                " messages a second: messages are dropped until the rate falls");
    }
    return;
  }
  it->second.refusedInARow = 0;
  if (!problem.empty()) {
    error(id, text.size() > limits_.maxMessageBytes ? kMessageTooLarge : kInvalidMessage, problem);
    return;
  }
  const std::string& type = message.type;
  if (type == "pong") return;
  if (type != "sub" && type != "unsub" && type != "ack") {
    error(id, kUnknownMessage, "unknown message type " + quoted(type) + " (expected sub, unsub, ack or pong)");
    return;
  }
  if (!message.hasTopic) {
    error(id, kInvalidMessage, "\"" + type + "\" needs a \"topic\"");
    return;
  }
  if (Status s = validateTopic(message.topic, limits_.maxTopicLength); !s) {
    error(id, s.codeName(), s.message());
    return;
  }
  Connection& connection = it->second;
  if (type == "sub") {
    if (message.hasVersion != message.hasEpoch) {
      error(id, kInvalidMessage, "\"epoch\" and \"version\" go together", message.topic);
      return;
    }
    subscribe(id, connection, message.topic, message.hasEpoch ? &message.epoch : nullptr,
              message.hasVersion ? &message.version : nullptr, now);
    return;
  }
  const auto sub = connection.subscriptions.find(message.topic);
  if (type == "unsub") {
    if (sub == connection.subscriptions.end()) return;  // idempotent
    connection.subscriptions.erase(sub);
    stats_.subscriptions.fetch_sub(1, std::memory_order_relaxed);
    unsubscribed(id, message.topic);
    // Frames of that topic can no longer be acked: they stop counting.
    release(connection, [&](const Unacked& u) { return u.topic == message.topic; });
    catchUpDirty(id, connection, now);
    return;
  }
  // ack: only for a topic subscribed to, and a version that was sent.
  if (!message.hasVersion) {
    error(id, kInvalidMessage, "\"ack\" needs a \"version\"", message.topic);
  } else if (!connection.acks) {
    // A connection without acks has no window to open: a well-formed ack is
    // ignored, so one client can speak to both kinds of connection.
  } else if (sub == connection.subscriptions.end()) {
    error(id, kInvalidAck, "ack for a topic this connection is not subscribed to", message.topic);
  } else if (message.version > sub->second.version) {
    error(id, kInvalidAck,
          "ack for version " + std::to_string(message.version) + ", but version " +
              std::to_string(sub->second.version) + " is the newest sent",
          message.topic);
  } else {
    acknowledged(id, connection, message.topic, message.version, now);
  }
}

void Delivery::subscribe(ConnectionId id, Connection& connection, std::string_view topic, const std::string* epoch,
                         const std::uint64_t* version, std::int64_t now) {
  if (!rules_.allows(connection.principal, topic)) {
    error(id, kForbidden, "this connection may not subscribe to " + quoted(topic), topic);
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
  if (added) stats_.subscriptions.fetch_add(1, std::memory_order_relaxed);
  Subscription& subscription = entry->second;

  const std::shared_ptr<const Snapshot> snapshot = store_.get(topic);
  if (!snapshot) {  // nothing yet: the first version will come as a snapshot
    subscription = {};
    // A client resuming a topic that has gone meanwhile (deleted, expired or
    // evicted while it was away) must drop what it holds.
    if (epoch != nullptr) {
      stats_.goneSent.fetch_add(1, std::memory_order_relaxed);
      send(id, goneFrame(topic, *epoch, *version, "absent"));
    }
    return;
  }
  if (epoch != nullptr && *epoch == snapshot->epoch && *version == snapshot->version) {
    subscription = {snapshot->epoch, snapshot->version};  // already current: nothing to send
    return;
  }
  if (epoch != nullptr && *epoch == snapshot->epoch && *version < snapshot->version) {
    // Resume: the missing steps as one patch, when the history has them all
    // and that is smaller than a snapshot.
    if (Frame patch = patchFrom(topic, state(topic), *snapshot, *version)) {
      subscription = {snapshot->epoch, snapshot->version};
      charge(id, connection, topic, snapshot->epoch, snapshot->version, patch->size(), now);
      send(id, std::move(patch));
      return;
    }
  }
  subscription = {snapshot->epoch, snapshot->version};
  Frame frame = snapshotFrame(topic, *snapshot);
  charge(id, connection, topic, snapshot->epoch, snapshot->version, frame->size(), now);
  send(id, std::move(frame));
  TopicState& st = state(topic);
  if (!st.base || st.base->epoch != snapshot->epoch) st.base = snapshot;  // the first subscriber's state
}

void Delivery::changed(std::string_view topic, const ChangeResult& result, std::int64_t now, std::optional<Lane> lane) {
  if (!result.changed) return;
  if (subscribers_.find(std::string(topic)) == subscribers_.end()) return;
  TopicState& st = state(topic);
  // The change's own patch frame: shared by every subscriber at the previous version.
  st.lastStep.reset();
  if (!result.created && !result.ops.empty()) {
    std::string frame = "{\"t\":\"patch\",\"topic\":";
    appendQuoted(topic, frame);
    frame.append(",\"epoch\":");
    appendQuoted(result.epoch, frame);
    frame.append(",\"from\":" + std::to_string(result.version - 1) + ",\"to\":" + std::to_string(result.version) +
                 ",\"ops\":");
    frame.append(result.ops);
    frame.push_back('}');
    st.lastStep = std::make_shared<const std::string>(std::move(frame));
  }
  st.version = result.version;
  st.epoch = result.epoch;
  st.snapshot.reset();
  if (st.oldestUnsent < 0) st.oldestUnsent = now;
  const Lane effective = lane.value_or(st.lane);
  if (!st.pending || effective < st.pendingLane) st.pendingLane = effective;  // the most urgent lane of the flush

  std::int64_t deadline = now;
  switch (effective) {
    case Lane::Critical:
      st.pending = false;  // a scheduled flush of this topic is now stale
      st.flushed = true;
      st.lastFlushAt = now;
      flush({std::string(topic)}, now, true);
      return;
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
    arm(st, deadline);
    st.scheduledLane = effective;
  }
}

void Delivery::flushAllPending(std::int64_t now) {
  std::vector<std::string> topics;
  for (auto& [name, st] : topics_) {
    if (!st.pending) continue;
    st.pending = false;
    topics.push_back(name);
  }
  std::sort(topics.begin(), topics.end());  // deterministic order
  if (!topics.empty()) flush(topics, now, false);
}

void Delivery::arm(TopicState& st, std::int64_t deadline) {
  st.pending = true;
  st.scheduledAt = deadline;
  st.timerSeq = timers_.schedule(deadline, st.id);
}

void Delivery::advance(std::int64_t now) {
  while (const std::optional<std::int64_t> due = timers_.nextDeadline()) {
    if (*due > now) break;
    std::vector<std::string> topics;
    timers_.advance(*due, [&](std::uint64_t id, std::uint64_t seq) {
      if ((id & kConnectionTimer) != 0) {
        heartbeat(id & ~kConnectionTimer, seq, *due);
        return;
      }
      if ((id & kStallTimer) != 0) {
        stallCheck(id & ~kStallTimer, seq, *due);
        return;
      }
      const auto name = topicById_.find(id);
      if (name == topicById_.end()) return;
      TopicState& st = topics_[name->second];
      if (!st.pending || st.timerSeq != seq) return;  // re-armed or flushed since
      st.pending = false;
      st.flushed = true;
      st.lastFlushAt = *due;
      topics.push_back(name->second);
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
  // Without acks, frames count only while the transport is congested (the
  // critical frames it is still handed); drained() forgets them.
  if (!connection.acks && !connection.congested) return;
  // Frames of an earlier epoch of this topic can never be acked (versions
  // start again): they stop counting.
  release(connection, [&](const Unacked& u) { return u.topic == topic && u.epoch != epoch; });
  connection.unacked.push_back({std::string(topic), epoch, version, bytes});
  connection.unackedBytes += bytes;
  if (!hasCredit(connection) && connection.overSince < 0) {
    connection.overSince = now;
    connection.stallSeq = timers_.schedule(now + limits_.stallTimeoutMs, kStallTimer | id);
  }
}

void Delivery::sendAll(ConnectionId id, std::vector<Frame> list) {
  if (list.empty()) return;
  if (list.size() == 1) {
    send(id, std::move(list.front()));
    return;
  }
  std::string batch = "{\"t\":\"batch\",\"items\":[";
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (i > 0) batch.push_back(',');
    batch.append(*list[i]);
  }
  batch.append("]}");
  send(id, std::make_shared<const std::string>(std::move(batch)));
}

Frame Delivery::goneFrame(std::string_view topic, std::string_view epoch, std::uint64_t version,
                          std::string_view reason) {
  std::string text = "{\"t\":\"gone\",\"topic\":";
  appendQuoted(topic, text);
  text.append(",\"epoch\":");
  appendQuoted(epoch, text);
  text.append(",\"version\":" + std::to_string(version) + ",\"reason\":\"");
  text.append(reason);
  text.append("\"}");
  return std::make_shared<const std::string>(std::move(text));
}

void Delivery::gone(const RemovedTopic& removed, std::int64_t now) {
  const auto subs = subscribers_.find(removed.topic);
  if (subs == subscribers_.end()) return;
  // Its frames and its pending flush go: nothing of that epoch is sent again.
  // The topic keeps only its identity (its timer id and lane).
  if (const auto st = topics_.find(removed.topic); st != topics_.end()) {
    TopicState fresh;
    fresh.id = st->second.id;
    fresh.lane = st->second.lane;
    st->second = std::move(fresh);
  }
  const Frame frame = goneFrame(removed.topic, removed.epoch, removed.version, removalName(removed.reason));
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
    // Not a state frame: it does not count against the window, and the
    // topic's unacked frames can no longer be acked.
    stats_.goneSent.fetch_add(1, std::memory_order_relaxed);
    send(id, frame);
    release(connection, [&](const Unacked& u) { return u.topic == removed.topic; });
    catchUpDirty(id, connection, now);
  }
}

void Delivery::acknowledged(ConnectionId id, Connection& connection, std::string_view topic, std::uint64_t version,
                            std::int64_t now) {
  release(connection, [&](const Unacked& u) { return u.topic == topic && u.version <= version; });
  catchUpDirty(id, connection, now);
}

void Delivery::catchUpDirty(ConnectionId id, Connection& connection, std::int64_t now) {
  if (!hasCredit(connection)) return;
  connection.overSince = -1;
  connection.stallSeq = 0;  // the pending stall check is stale
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
    frames.push_back(std::move(frame));
  }
  sendAll(id, std::move(frames));
}

void Delivery::congestion(ConnectionId id, bool congested, std::int64_t now) {
  const auto it = connections_.find(id);
  if (it == connections_.end() || it->second.congested == congested) return;
  it->second.congested = congested;
  if (congested) {
    if (it->second.overSince < 0) {
      it->second.overSince = now;
      it->second.stallSeq = timers_.schedule(now + limits_.stallTimeoutMs, kStallTimer | id);
    }
  } else {
    if (!it->second.acks) release(it->second, [](const Unacked&) { return true; });
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
    if (st.oldestUnsent >= 0) {
      stats_.latency[static_cast<std::size_t>(st.pendingLane)].record(now - st.oldestUnsent);
      st.oldestUnsent = -1;
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
      sub.dirty = false;
      frames[id].push_back(std::move(frame));
      if (critical && (connection.unacked.size() > limits_.creditFrames * limits_.criticalOverflow ||
                       connection.unackedBytes > limits_.creditBytes * limits_.criticalOverflow)) {
        overflowing.push_back(id);
      }
    }
    st.base = snapshot;  // what the subscribers with credit now hold
  }
  for (auto& [id, list] : frames) sendAll(id, std::move(list));
  for (const ConnectionId id : overflowing) {
    if (!connected(id)) continue;
    stats_.closedSlow.fetch_add(1, std::memory_order_relaxed);
    closeConnection(id, kCloseStalled, "critical updates overflowed the connection's credit window");
  }
}

}  // namespace deltacast
