// Delivery: connections, their subscriptions, and the frames they are sent.
//
// Subscribing (with resume from an epoch and version), unsubscribing,
// fan-out of each change, access rules, heartbeats. It composes four parts,
// each with its own header and tests:
//   frames.h        encoding snap/patch/batch/gone/err/ping (shared by pointer:
//                   one encoding per (topic, from version) for every connection)
//   pacing.h        lanes and their debounce/batch/throttle windows
//   flow_control.h  each connection's credit window and congestion; over it,
//                   topics are conflated (one dirty flag each)
//   inbound.h       parsing and checking client messages, inbound rate limits
// Every pending flush, heartbeat, stall check and identity expiry is one
// entry in a TimerQueue (at most one per topic and one per connection),
// driven by advance(now).
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
#include "deltacast/flow_control.h"
#include "deltacast/frames.h"
#include "deltacast/inbound.h"
#include "deltacast/pacing.h"
#include "deltacast/timer_queue.h"
#include "deltacast/topic_store.h"

namespace deltacast {

using ConnectionId = std::uint64_t;

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
  // The longest frame handed to the transport, in bytes: V8's longest string
  // (v8::String::kMaxLength on 64-bit hosts). Topics flushed together are
  // split into several `batch` frames to stay under it; a connection whose
  // single frame would exceed it is closed with 1009 (the store's
  // limits.maxValueBytes is bounded well below it, so only a patch larger
  // than its value can).
  std::size_t maxFrameBytes = (std::size_t{1} << 29) - 24;
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
inline constexpr int kCloseTooLarge = 1009;          // a frame over DeliveryLimits::maxFrameBytes
inline constexpr int kCloseHeartbeatTimeout = 4000;  // application range
inline constexpr int kCloseStalled = 4001;           // over the credit window too long, or critical overflow
inline constexpr int kCloseExpired = 4003;           // the identity expired (expiresAt) or a refresh named another user

// A connection's client sent {"t":"auth","token":…}: the transport verifies
// the token and answers with Delivery::reauth.
struct AuthRequest {
  ConnectionId connection;
  std::string token;
};

// One audit event (hub option onAudit), in the order the core decided them.
// Never holds a token.
struct AuditEvent {
  const char* type;  // connect, sub, forbidden, auth, auth-failed, expired, close
  ConnectionId connection;
  std::string user;            // the connection's user id ("" anonymous)
  std::string transport;       // the name the transport gave on connect
  std::string topic;           // sub, forbidden
  const char* code = nullptr;  // forbidden, auth-failed: a DELTACAST_* code
  int closeCode = 0;           // close by the core, expired: the close code; 0: none
  std::int64_t time = 0;       // the hub's clock
};

// The answer to an AuthRequest.
enum class ReauthStatus : std::uint8_t {
  Verified = 0,     // the token was verified: the new identity is given
  Refused = 1,      // the transport's hook refused the token
  Unsupported = 2,  // the transport has no hook to verify tokens with
};

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
  //
  // expiresAt (the hub's clock, ms; -1: never): at that time, unless a
  // refresh (reauth) moved it, the connection is closed with 4003. The
  // connection's one timer entry is due at the earliest of its heartbeat,
  // stall check and expiry. `transport` names the carrier in audit events.
  void connect(ConnectionId id, Principal principal, std::int64_t now = 0, bool acks = true,
               std::int64_t expiresAt = -1, std::string transport = {});
  // The transport closed the connection (audited as a close without a code).
  void disconnect(ConnectionId id, std::int64_t now = 0);
  // The transport's answer to an AuthRequest. Verified with the same user id:
  // the roles and expiry are replaced, and every subscription the new roles no
  // longer admit ends with `err` DELTACAST_FORBIDDEN (topic named) and is
  // removed. Verified with another user id: `err` DELTACAST_FORBIDDEN and
  // closed with 4003. Refused or unsupported: `err` DELTACAST_UNAUTHORIZED,
  // and the old identity stays until its expiry.
  void reauth(ConnectionId id, ReauthStatus status, Principal principal, std::int64_t expiresAt, std::int64_t now);
  bool connected(ConnectionId id) const { return connections_.count(id) != 0; }

  // One client message (JSON text). Anything malformed gets an `err` frame
  // with a stable code; nothing else changes.
  void receive(ConnectionId id, std::string_view message, std::int64_t now = 0);
  // A client message the transport could not hand over as text (a binary
  // WebSocket frame, extra Socket.IO arguments, an event other than the
  // protocol's): refused with `err` `code` (kInvalidMessage or
  // kUnknownMessage) and `message`, after it is charged to the inbound rate
  // limit as any refused message is (a flood of them is closed with 1008).
  void refuse(ConnectionId id, const char* code, std::string_view message, std::int64_t now = 0);

  // After a change accepted by the store (result.changed), at time `now`:
  // delivers it now (critical lane) or schedules the topic's flush. `lane`
  // overrides the topic's lane for this change.
  // `changeId` (may be empty) is the publisher's id of the change: patch
  // frames carry the ids of the changes they contain (frames::PatchIds).
  // `held`: the change carries a held value (coalescing), whose publishes
  // were paced by their holds: a flush already scheduled or asked for is
  // left as it is.
  void changed(std::string_view topic, const ChangeResult& result, std::int64_t now,
               std::optional<Lane> lane = std::nullopt, std::string_view changeId = {}, bool held = false);

  // A topic left the store (deleted, expired, evicted): each subscriber gets a
  // `gone` frame at once and holds nothing; the subscription stays, so a topic
  // that comes back reaches it as a snapshot under a new epoch. A value held
  // for it (hold()) was published before the removal and goes with the topic:
  // it is asked for at once and dropped (heldValueDropped()). `position`:
  // where the removal falls among JS's records (bytes of them run before the
  // record that made it; redate() orders a later publish against it).
  void gone(const RemovedTopic& removed, std::int64_t now, std::uint64_t position = 0);

  // Coalescing (the hub's pacing.coalesce): JS holds an immutable value for
  // `topic` instead of serializing it, and says so with hold(). The hold is
  // paced as a change on `lane` (the topic's when none) at `now`, subscribers
  // or not; when the flush falls due, the topic is asked for (takeWants())
  // instead of flushed, and its frames wait for the value. released() comes
  // after the value was applied (a change flagged release), or in its place
  // when JS had none left: the topic's flush is made at once. `heldId`: JS's
  // number for the held value, which an ask names (0: the one held before).
  void hold(std::string_view topic, std::optional<Lane> lane, std::int64_t now, std::uint64_t heldId = 0);
  void released(std::string_view topic, std::int64_t now);
  // A change carrying the held value came before its flush asked (another
  // call on the topic released it early): the hold's flush still comes, as a
  // plain one (nothing is held any more). If the flush had asked already,
  // this is its release: released().
  void releasedEarly(std::string_view topic, std::int64_t now);
  // JS writes one hold() per window: publishes of a held value after it are
  // told with redate() when the flush asks (or before the value goes early).
  // `at`: the time of the latest (it moves a debounce back as a hold() then
  // would have); `position`: the bytes of records JS had written before it.
  // Asked for: the flush is paced again from the state it fell due in, and
  // asked for again at once, as due (takeDueWants), if it still is; the topic
  // removed since the last hold: that publish brings it back (the value is
  // applied) when it came after the removal's record. Not asked for: a
  // hold() at `at`. `releaseFollows`: JS sends the value right after (its
  // answer to a takeDueWants() ask): the removal is settled here, the
  // release does the rest.
  void redate(std::string_view topic, std::optional<Lane> lane, std::int64_t at, std::uint64_t position,
              std::int64_t now, bool releaseFollows = false);
  // True while the value JS holds for `topic` was published before the topic
  // was removed (gone()), with no hold since: a change carrying it (flagged
  // release or held) is not applied, as that value would have gone with the
  // topic had it been applied at its publish. released() ends it.
  bool heldValueDropped(std::string_view topic) const;
  // The time of the latest hold() of `topic` (while it has delivery state): a
  // change carrying the held value is the publish made then, and the store
  // dates it so (its TTL counts from the publish, not from the flush).
  std::optional<std::int64_t> lastHoldAt(std::string_view topic) const;
  // A held value asked for: its topic and the heldId of its latest hold().
  struct Want {
    std::string topic;
    std::uint64_t heldId = 0;
  };
  // Topics whose held value is asked for, in the order their flushes fell due.
  std::vector<Want> takeWants();
  // Topics whose held value must come now: asked for because the topic was
  // removed (gone()), or asked again after a redate() found the flush due.
  // JS answers each with its value at once (and a redate() first, flagged
  // releaseFollows, if it was published again since its last hold), never
  // with a redate() alone.
  std::vector<Want> takeDueWants();
  // Topics held or asked for and not yet released.
  std::size_t heldCount() const noexcept { return held_; }

  // Runs every flush due at or before `now`, earliest first; flushes due at
  // the same millisecond go out together.
  void advance(std::int64_t now);
  std::optional<std::int64_t> nextDeadline() const { return timers_.nextDeadline(); }
  // Sends every scheduled flush now (the hub is closing), then audits the close (1001) of every
  // open connection.
  void flushAllPending(std::int64_t now);
  Lane laneOf(std::string_view topic) const { return pacer_.laneOf(topic); }

  // True when a take*() below has something to give (a cheap check the
  // core makes after every request before taking anything).
  bool hasOutput() const noexcept {
    return !outgoing_.empty() || !closings_.empty() || !authRequests_.empty() || !audits_.empty() ||
           !oversized_.empty() || !wants_.empty() || !dueWants_.empty();
  }
  std::vector<Outgoing> takeOutgoing();
  std::vector<Closing> takeClosings();
  std::vector<AuthRequest> takeAuthRequests();
  // Audit events are kept only when enabled (the hub has an onAudit hook).
  void setAudit(bool enabled) { audit_ = enabled; }
  std::vector<AuditEvent> takeAudits();

  // The transport's socket is full (send() returned false) or has drained:
  // while congested, a connection gets no non-critical frames, as if over its window.
  void congestion(ConnectionId id, bool congested, std::int64_t now);

  std::size_t subscriptionCount() const;
  // Timer entries held: at most one per connection and one per topic.
  std::size_t timerEntries() const { return timers_.size(); }
  const DeliveryStats& stats() const { return stats_; }

 private:
  struct Subscription {
    std::string epoch;
    std::uint64_t version = 0;  // what the client holds; 0: nothing
    bool dirty = false;         // conflated: a newer version waits for credit
    // The last frame sent was a snapshot of (epoch, version), not acked yet
    // (without acks: handed to the transport): a `sub` holding nothing is
    // answered by it and costs nothing.
    bool snapshotInFlight = false;
    // The newest version ever sent on it (or found current on a resume): acks
    // up to it are valid even after a `sub` that says the client holds less
    // (frames may still be on their way), and no ack above it is.
    std::uint64_t newestSent = 0;
    // Holds (e, v) now, nothing in flight or waiting. `v` may be what a
    // resuming client claims: it says which frame brings it up to date, not
    // what it was sent, so it leaves newestSent alone (sent() raises it).
    void hold(std::string e, std::uint64_t v) {
      epoch = std::move(e);
      version = v;
      dirty = false;
      snapshotInFlight = false;
    }
    // Holds (e, v), the server's own state, sent to it (or already held).
    void holdSent(std::string e, std::uint64_t v) {
      hold(std::move(e), v);
      if (v > newestSent) newestSent = v;
    }
  };
  struct Connection {
    Connection(Principal who, InboundLimiter limiter, std::int64_t now, bool acks, std::int64_t expires,
               std::string carrier)
        : principal(std::move(who)),
          inbound(limiter),
          credit(acks),
          lastHeard(now),
          expiresAt(expires),
          transport(std::move(carrier)) {}
    Principal principal;
    std::unordered_map<std::string, Subscription> subscriptions;
    InboundLimiter inbound;
    CreditWindow credit;
    std::int64_t lastHeard = 0;
    std::int64_t nextPing = -1;   // when the next heartbeat is due; -1: none
    std::int64_t expiresAt = -1;  // when the identity expires; -1: never
    std::string transport;
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
    PacingState pacing;
    // The ids of the changes that had one since subscribers followed the
    // topic (this epoch), oldest first, at most kRecentIds: older ones are
    // dropped, and idsLostUpTo is the version of the newest dropped (0: none).
    std::deque<std::pair<std::uint64_t, std::string>> ids;
    std::uint64_t idsLostUpTo = 0;
    // Coalescing (hold()): a held value is paced (its flush will ask for
    // it), or asked for and not yet released. Either keeps the state when
    // the last subscriber leaves or the topic is removed. `dropped`: asked
    // for because the topic was removed while held (heldValueDropped()).
    bool held = false;
    bool asked = false;
    bool dropped = false;
    std::optional<std::int64_t> heldAt;  // the latest hold()
    std::uint64_t heldId = 0;            // and JS's number for its value (an ask names it)
    std::uint64_t droppedAt = 0;         // dropped: the removal's position (gone())
    PacingState askedPacing;             // asked: the pacing state before the flush that asked (redate())
  };
  static constexpr std::size_t kRecentIds = 256;
  // The change ids a patch from `from` to `to` contains.
  static frames::PatchIds idsBetween(const TopicState& state, std::uint64_t from, std::uint64_t to);

  // Charges one inbound message to the connection's rate limit: false when
  // it is refused (told once, then dropped; closed after rateViolations).
  bool admitted(ConnectionId id, Connection& connection, bool routine, std::int64_t now);
  void subscribe(ConnectionId id, Connection& connection, std::string_view topic, const std::string* epoch,
                 const std::uint64_t* version, std::int64_t now);
  void error(ConnectionId id, const char* code, std::string_view message, std::string_view topic = {});
  TopicState& state(std::string_view topic);
  // A topic's delivery state goes: its timer, its id, its frames.
  void dropState(std::unordered_map<std::string, TopicState>::iterator it);
  // A held value's publish, paced as a change on `lane` at `now` (hold()).
  void paceHold(TopicState& st, std::string_view topic, std::optional<Lane> lane, std::int64_t now);
  Frame snapshotFrame(std::string_view topic, const Snapshot& snapshot);
  // A patch frame from `from` to the current version: the change's own frame;
  // over several steps, the smaller of the history's steps concatenated and
  // one diff from the state last flushed (when `from` is that state); null
  // when neither is available or the patch would not be smaller than a snapshot.
  Frame patchFrom(std::string_view topic, TopicState& state, const Snapshot& snapshot, std::uint64_t from);
  // Brings every subscriber of these topics to the current version; a
  // connection that gets several frames gets them as one batch.
  void flush(const std::vector<std::string>& topics, std::int64_t now, bool critical);
  bool hasCredit(const Connection& connection) const { return connection.credit.hasCredit(credit_); }
  // Sends one catch-up frame per dirty subscription while credit lasts.
  void catchUpDirty(ConnectionId id, Connection& connection, std::int64_t now);
  // Counts a state frame against the connection's window.
  void charge(ConnectionId id, Connection& connection, std::string_view topic, const std::string& epoch,
              std::uint64_t version, std::size_t bytes, std::int64_t now);
  void unsubscribed(ConnectionId id, const std::string& topic);
  // The connection's one timer: due at its next heartbeat or at the end of
  // its stall timeout, whichever comes first.
  void armConnection(ConnectionId id, const Connection& connection);
  void connectionTimer(ConnectionId id, std::int64_t now);
  void overWindow(ConnectionId id, Connection& connection, std::int64_t now);
  // Closes the connections a frame over maxFrameBytes was meant for.
  void closeOversized();
  void acknowledged(ConnectionId id, Connection& connection, std::string_view topic, std::uint64_t version,
                    std::int64_t now);
  // The frame that brings a subscription from what it holds to `snapshot`.
  Frame catchUp(std::string_view topic, TopicState& state, const Snapshot& snapshot, const Subscription& sub,
                std::map<std::uint64_t, Frame>* shared);
  void sendAll(ConnectionId id, std::vector<Frame> frames) {
    for (Frame& frame : frames::batches(std::move(frames), limits_.maxFrameBytes)) send(id, std::move(frame));
  }
  void closeConnection(ConnectionId id, int code, std::string reason, std::int64_t now);
  // Drops a connection and its subscriptions (no audit, no close).
  void forget(ConnectionId id);
  void audit(const char* type, ConnectionId id, const Connection& connection, std::int64_t now,
             std::string_view topic = {}, const char* code = nullptr, int closeCode = 0);

  void send(ConnectionId id, Frame frame) {
    if (!oversized_.empty() && oversized_.count(id) != 0) return;  // being closed
    if (frame->size() > limits_.maxFrameBytes) {
      oversized_.emplace(id, frame->size());
      return;
    }
    stats_.framesSent.fetch_add(1, std::memory_order_relaxed);
    stats_.bytesSent.fetch_add(frame->size(), std::memory_order_relaxed);
    outgoing_.push_back({id, std::move(frame)});
  }

  const TopicStore& store_;
  AccessRules rules_;
  DeliveryLimits limits_;
  CreditLimits credit_;
  std::unordered_map<ConnectionId, Connection> connections_;
  std::unordered_map<std::string, std::set<ConnectionId>> subscribers_;  // ordered: deterministic fan-out
  Pacer pacer_;
  std::unordered_map<std::string, TopicState> topics_;
  std::unordered_map<std::uint64_t, std::string> topicById_;
  std::uint64_t nextTopicId_ = 1;
  TimerQueue timers_;
  std::vector<Outgoing> outgoing_;
  std::vector<Closing> closings_;
  std::vector<AuthRequest> authRequests_;
  std::vector<Want> wants_;     // hold(): topics whose held value is asked for
  std::vector<Want> dueWants_;  // the same, whose value must come now (takeDueWants)
  std::size_t held_ = 0;        // topics with held or asked set
  std::vector<AuditEvent> audits_;
  bool audit_ = false;
  std::int64_t lastNow_ = 0;  // the latest time given to an entry point (audit time of an oversized close)
  std::map<ConnectionId, std::size_t> oversized_;  // connection -> size of the frame it could not be sent
  DeliveryStats stats_;
};

}  // namespace deltacast
