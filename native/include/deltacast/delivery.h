// Delivery: connections, their subscriptions, and the frames they are sent.
//
// Subscribing (with resume from an epoch and version), unsubscribing,
// fan-out of each change paced by its lane, access rules, and strict handling
// of malformed client messages. Frames are encoded once per (topic, from
// version) and shared (by pointer) by every connection that receives them;
// topics flushed together for one connection go out as one `batch`.
//
// Lanes (per topic pattern, or per change):
//   critical  sent at once
//   high      batched: the first change opens a window, all changes in it go together
//   normal    debounced: sent when no change came for debounceMs, or maxWaitMs after the first
//   low       throttled: at most one flush per intervalMs
// Every pending flush is one entry in a TimerQueue, driven by advance(now).
//
// Credit windows and conflation, heartbeats and rate limits build on this
// and are not here yet.
//
// Thread affinity: the core thread only. It reads the TopicStore it is given
// (same thread) and never calls out: what must be sent is collected and taken
// by the caller with takeOutgoing().
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "deltacast/access_rules.h"
#include "deltacast/timer_queue.h"
#include "deltacast/token_bucket.h"
#include "deltacast/topic_store.h"

namespace deltacast {

using ConnectionId = std::uint64_t;
using Frame = std::shared_ptr<const std::string>;

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

struct DeliveryLimits {
  std::size_t maxSubscriptions = 1000;       // per connection
  std::size_t maxMessageBytes = 64u << 10;   // one client message
  double messagesPerSecond = 100;            // inbound rate per connection (token bucket)...
  double messageBurst = 1000;                // ...and its burst: a client may subscribe to its maximum at once
  std::size_t rateViolations = 100;          // messages refused in a row before the connection is closed
  std::int64_t heartbeatIntervalMs = 25000;  // a ping this often; 0: no heartbeats
  std::int64_t heartbeatTimeoutMs = 60000;   // no message from the client for this long: closed
  // Credit window: state frames sent and not yet acknowledged. Over it,
  // non-critical topics are conflated: marked dirty and sent once, at their
  // latest version, when acks bring the connection back under the window.
  std::size_t creditFrames = 64;
  std::size_t creditBytes = 1u << 20;
  std::int64_t stallTimeoutMs = 30000;  // over the window this long: closed
  std::size_t criticalOverflow = 4;     // critical frames may take the window this many times over, then: closed
  std::size_t maxTopicLength = 256;
};

struct Outgoing {
  ConnectionId connection;
  Frame frame;
};

// A connection the engine closed (heartbeat timeout, message flood); it is
// already forgotten here, and the transport must be told.
struct Closing {
  ConnectionId connection;
  int code;  // WebSocket close code
  std::string reason;
};

// Close codes the engine uses.
inline constexpr int kCloseRateLimited = 1008;       // policy violation
inline constexpr int kCloseHeartbeatTimeout = 4000;  // application range
inline constexpr int kCloseStalled = 4001;           // over the credit window too long, or critical overflow

// Publish-to-send latency of one lane, on the hub's clock (ms): from the
// first change a flush carries to the flush.
struct LatencyHistogram {
  static constexpr std::array<std::int64_t, 13> kBoundsMs = {0, 1, 2, 5, 10, 20, 50, 100, 250, 500, 1000, 2500, 5000};
  std::array<std::atomic<std::uint64_t>, kBoundsMs.size() + 1> counts{};  // last: above every bound
  std::atomic<std::uint64_t> count{0};
  std::atomic<std::uint64_t> sumMs{0};
  void record(std::int64_t ms) {
    std::size_t bucket = 0;
    while (bucket < kBoundsMs.size() && ms > kBoundsMs[bucket]) ++bucket;
    counts[bucket].fetch_add(1, std::memory_order_relaxed);
    count.fetch_add(1, std::memory_order_relaxed);
    sumMs.fetch_add(static_cast<std::uint64_t>(ms < 0 ? 0 : ms), std::memory_order_relaxed);
  }
};

// Counters, written on the core thread, read from any thread.
struct DeliveryStats {
  std::atomic<std::uint64_t> connections{0};
  std::atomic<std::uint64_t> subscriptions{0};
  std::atomic<std::uint64_t> framesSent{0};
  std::atomic<std::uint64_t> bytesSent{0};
  std::atomic<std::uint64_t> bytesSaved{0};  // snapshot bytes minus patch bytes, for every patch sent
  std::atomic<std::uint64_t> conflated{0};   // updates held back from a connection over its window
  std::atomic<std::uint64_t> closedSlow{0};
  std::atomic<std::uint64_t> closedSilent{0};
  std::atomic<std::uint64_t> closedFlooding{0};
  std::atomic<std::uint64_t> snapshotFramesBuilt{0};   // snapshot frames encoded
  std::atomic<std::uint64_t> snapshotFramesReused{0};  // ... and sent again from the cache
  std::atomic<std::uint64_t> goneSent{0};              // `gone` frames: subscribers told their topic left the store
  std::atomic<std::uint64_t> squashed{0};              // patch frames made by one diff over several changes
  std::array<LatencyHistogram, 4> latency;             // by Lane
};

class Delivery {
 public:
  Delivery(const TopicStore& store, AccessRules rules, DeliveryLimits limits, std::vector<LaneRule> lanes = {},
           Pacing pacing = {});

  // acks false: a connection without acks (a carrier with no upstream, such
  // as SSE, or one that paces itself). Its credit is the transport's
  // backpressure alone: it gets non-critical frames while its socket takes
  // them (congestion(id, false)), and over it conflation works as for a slow
  // acking client. No ack window; `ack` messages are checked for form, then
  // ignored; it is never closed for silence (pings are still sent). Critical
  // frames handed over while it is congested count as unacked frames do
  // (criticalOverflow windows, then closed 4001), and congested for
  // stallTimeoutMs: closed 4001.
  void connect(ConnectionId id, Principal principal, std::int64_t now = 0, bool acks = true);
  void disconnect(ConnectionId id);
  bool connected(ConnectionId id) const { return connections_.count(id) != 0; }

  // One client message (JSON text). Anything malformed gets an `err` frame
  // with a stable code; nothing else changes.
  void receive(ConnectionId id, std::string_view message, std::int64_t now = 0);

  // After a change accepted by the store (result.changed), at time `now`:
  // delivers it now (critical lane) or schedules the topic's flush. `lane`
  // overrides the topic's lane for this change.
  void changed(std::string_view topic, const ChangeResult& result, std::int64_t now,
               std::optional<Lane> lane = std::nullopt);

  // A topic left the store (deleted, expired, evicted): each subscriber gets a
  // `gone` frame at once and holds nothing; the subscription stays, so a topic
  // that comes back reaches it as a snapshot under a new epoch.
  void gone(const RemovedTopic& removed, std::int64_t now);

  // Runs every flush due at or before `now`, earliest first; flushes due at
  // the same millisecond go out together.
  void advance(std::int64_t now);
  std::optional<std::int64_t> nextDeadline() const { return timers_.nextDeadline(); }
  // Sends every scheduled flush now (the hub is closing).
  void flushAllPending(std::int64_t now);
  Lane laneOf(std::string_view topic) const;

  std::vector<Outgoing> takeOutgoing();
  std::vector<Closing> takeClosings();

  // The transport's socket is full (send() returned false) or has drained:
  // while congested, a connection gets no non-critical frames, as if over its window.
  void congestion(ConnectionId id, bool congested, std::int64_t now);

  std::size_t subscriptionCount() const;
  const DeliveryStats& stats() const { return stats_; }

 private:
  struct Subscription {
    std::string epoch;
    std::uint64_t version = 0;  // what the client holds; 0: nothing
    bool dirty = false;         // conflated: a newer version waits for credit
  };
  struct Unacked {
    std::string topic;
    std::string epoch;
    std::uint64_t version;
    std::size_t bytes;
  };
  struct Connection {
    Connection(Principal who, TokenBucket bucket, std::int64_t now, bool withAcks)
        : principal(std::move(who)), inbound(bucket), lastHeard(now), acks(withAcks) {}
    Principal principal;
    std::unordered_map<std::string, Subscription> subscriptions;
    TokenBucket inbound;
    std::size_t refusedInARow = 0;
    std::int64_t lastHeard = 0;
    std::uint64_t heartbeatSeq = 0;
    std::deque<Unacked> unacked;
    std::size_t unackedBytes = 0;
    std::int64_t overSince = -1;  // when it went over its credit window; -1: it is not
    std::uint64_t stallSeq = 0;   // its pending stall check (timer sequence)
    bool congested = false;       // the transport said its socket is full (send() returned false)
    bool acks = true;             // false: credit is the transport's backpressure alone
  };
  // Per topic with subscribers: its frames (built on first use, shared) and
  // its pacing state.
  struct TopicState {
    std::uint64_t id = 0;  // for the timer queue
    Lane lane = Lane::Normal;
    // frames of the latest version
    std::uint64_t version = 0;
    std::string epoch;
    Frame snapshot;
    Frame lastStep;  // the patch from version - 1, from the change itself
    // The state subscribers were last brought to by a flush: a paced flush
    // diffs it against the current state once (one squashed patch), instead
    // of concatenating every step of the window.
    std::shared_ptr<const Snapshot> base;
    // pacing
    std::int64_t oldestUnsent = -1;     // time of the first change not flushed yet
    Lane pendingLane = Lane::Normal;    // the most urgent lane among the unsent changes
    Lane scheduledLane = Lane::Normal;  // the lane that set the pending flush's deadline
    std::int64_t scheduledAt = 0;
    bool pending = false;
    std::uint64_t timerSeq = 0;
    std::int64_t firstPendingAt = 0;
    std::int64_t lastFlushAt = 0;
    bool flushed = false;
  };

  void subscribe(ConnectionId id, Connection& connection, std::string_view topic, const std::string* epoch,
                 const std::uint64_t* version, std::int64_t now);
  void error(ConnectionId id, const char* code, std::string_view message, std::string_view topic = {});
  TopicState& state(std::string_view topic);
  Frame snapshotFrame(std::string_view topic, const Snapshot& snapshot);
  static Frame goneFrame(std::string_view topic, std::string_view epoch, std::uint64_t version,
                         std::string_view reason);
  // A patch frame from `from` to the current version: the change's own frame;
  // over several steps, the smaller of the history's steps concatenated and
  // one diff from the state last flushed (when `from` is that state); null
  // when neither is available or the patch would not be smaller than a snapshot.
  Frame patchFrom(std::string_view topic, TopicState& state, const Snapshot& snapshot, std::uint64_t from);
  void arm(TopicState& state, std::int64_t deadline);
  // Brings every subscriber of these topics to the current version; a
  // connection that gets several frames gets them as one batch.
  void flush(const std::vector<std::string>& topics, std::int64_t now, bool critical);
  bool hasCredit(const Connection& connection) const {
    if (connection.congested) return false;
    return !connection.acks ||
           (connection.unacked.size() < limits_.creditFrames && connection.unackedBytes < limits_.creditBytes);
  }
  // Sends one catch-up frame per dirty subscription while credit lasts.
  void catchUpDirty(ConnectionId id, Connection& connection, std::int64_t now);
  // Counts a state frame against the connection's window.
  void charge(ConnectionId id, Connection& connection, std::string_view topic, const std::string& epoch,
              std::uint64_t version, std::size_t bytes, std::int64_t now);
  template <class Drop>
  void release(Connection& connection, Drop&& drop);
  void unsubscribed(ConnectionId id, const std::string& topic);
  void stallCheck(ConnectionId id, std::uint64_t seq, std::int64_t now);
  void acknowledged(ConnectionId id, Connection& connection, std::string_view topic, std::uint64_t version,
                    std::int64_t now);
  // The frame that brings a subscription from what it holds to `snapshot`.
  Frame catchUp(std::string_view topic, TopicState& state, const Snapshot& snapshot, const Subscription& sub,
                std::map<std::uint64_t, Frame>* shared);
  void sendAll(ConnectionId id, std::vector<Frame> frames);
  void heartbeat(ConnectionId id, std::uint64_t seq, std::int64_t now);
  void closeConnection(ConnectionId id, int code, std::string reason);
  void send(ConnectionId id, Frame frame) {
    stats_.framesSent.fetch_add(1, std::memory_order_relaxed);
    stats_.bytesSent.fetch_add(frame->size(), std::memory_order_relaxed);
    outgoing_.push_back({id, std::move(frame)});
  }

  const TopicStore& store_;
  AccessRules rules_;
  DeliveryLimits limits_;
  std::unordered_map<ConnectionId, Connection> connections_;
  std::unordered_map<std::string, std::set<ConnectionId>> subscribers_;  // ordered: deterministic fan-out
  std::vector<LaneRule> lanes_;
  Pacing pacing_;
  std::unordered_map<std::string, TopicState> topics_;
  std::unordered_map<std::uint64_t, std::string> topicById_;
  std::uint64_t nextTopicId_ = 1;
  TimerQueue timers_;
  std::vector<Outgoing> outgoing_;
  std::vector<Closing> closings_;
  DeliveryStats stats_;
  Frame ping_ = std::make_shared<const std::string>("{\"t\":\"ping\"}");
};

}  // namespace deltacast
