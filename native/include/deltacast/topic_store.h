// TopicStore: the latest JSON state of every topic, its version, its epoch and
// a short history of patches.
//
// Each topic holds its current value as compact JSON text plus the tape of
// that text, so a new version is validated with the old tape as its guide and
// diffed against it: the cost follows the change, not the document. The store
// is bounded: a memory budget over all topics (least recently used topics are
// evicted), TTL rules per topic pattern, a history ring per topic bounded by
// count and bytes, and a window of recent change ids for deduplication.
//
// Thread affinity: every mutating method runs on one thread (the core
// thread). get() and stats() may be called from any thread; they take a
// shared lock (get) or read atomics (stats).
//
// Time is passed in (milliseconds on the caller's clock), so a manual clock
// makes every time-based behaviour deterministic.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <queue>
#include <random>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "deltacast/json_diff.h"
#include "deltacast/json_tape.h"
#include "deltacast/status.h"

namespace deltacast {

struct TtlRule {
  std::string pattern;  // see topic_pattern.h
  std::int64_t ms = 0;  // a topic not published for this long is deleted
};

struct StoreOptions {
  std::string arrayKey = "id";            // rows of upsert/remove; keyed diff
  ParseLimits limits;                     // per value: bytes and depth (also while a patch applies)
  std::size_t maxPatchOps = 10000;        // operations per patch (DELTACAST_TOO_MANY_OPS above)
  std::size_t maxTopicLength = 256;       // bytes of a topic name
  std::size_t memoryBudget = 256u << 20;  // bytes for all topics; 0 = unbounded
  std::size_t historyCount = 32;          // patches kept per topic
  std::size_t historyBytes = 256u << 10;  // bytes of patches kept per topic
  std::size_t dedupCount = 10000;         // change ids remembered
  std::int64_t dedupWindowMs = 60000;     // and for how long
  std::vector<TtlRule> ttl;               // first matching rule wins
  // A root array of objects with unique `arrayKey`s is kept row by row, so
  // upsert, remove and patches of single rows cost the row (the same results
  // either way). false: every change re-splices and re-parses the whole text
  // (the reference for tests and benchmarks).
  bool keepRows = true;
};

// Writes a JSON text on demand (a topic kept as rows joins them).
class TextSource {
 public:
  virtual ~TextSource() = default;
  virtual void write(std::string& out) const = 0;
};

// The JSON text of a snapshot. Its size is always known; the text itself may
// be written on first use (a topic of keyed rows changed row by row joins its
// rows only when a reader needs the whole text), once, safely from any thread.
// Reads like a std::string_view (str() for the string itself).
class SnapshotText {
 public:
  SnapshotText() = default;
  SnapshotText(std::string text) : text_(std::move(text)), size_(text_.size()) {}  // NOLINT: implicit on purpose
  SnapshotText(const SnapshotText&) = delete;
  SnapshotText& operator=(const SnapshotText&) = delete;
  SnapshotText& operator=(std::string text);
  // The text is source->write(), of `size` bytes, written on first use.
  void setLazy(std::shared_ptr<const TextSource> source, std::size_t size);

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  // False until the text has been written (a lazy text before its first use).
  bool materialized() const noexcept { return ready_.load(std::memory_order_acquire); }
  const std::string& str() const {
    if (!ready_.load(std::memory_order_acquire)) materialize();
    return text_;
  }
  const char* data() const { return str().data(); }
  const char* c_str() const { return str().c_str(); }
  operator std::string_view() const { return str(); }  // NOLINT: reads like a string
  friend bool operator==(const SnapshotText& a, std::string_view b) { return std::string_view(a.str()) == b; }
  friend std::ostream& operator<<(std::ostream& out, const SnapshotText& text) { return out << text.str(); }

 private:
  void materialize() const;

  mutable std::mutex mutex_;
  mutable std::atomic<bool> ready_{true};
  mutable std::string text_;
  mutable std::shared_ptr<const TextSource> source_;
  std::size_t size_ = 0;
};

// The value of a topic at one version. Immutable once published, shared with
// readers on other threads.
struct Snapshot {
  SnapshotText json;
  std::uint64_t version = 0;
  std::string epoch;
};

// A topic that left the store, and why: subscribers are told (a `gone` frame).
enum class Removal : std::uint8_t { Deleted, Expired, Evicted };
const char* removalName(Removal reason) noexcept;  // "deleted", "expired", "evicted"

struct RemovedTopic {
  std::string topic;
  std::string epoch;
  std::uint64_t version = 0;  // the last version it had
  Removal reason = Removal::Deleted;
};

// One step of a topic's history: the patch from `from` to `to`.
struct HistoryEntry {
  std::uint64_t from = 0;
  std::uint64_t to = 0;
  std::string ops;  // JSON array of RFC 6902 operations
};

// A topic's history steps, oldest first, in a ring: dropping the oldest
// step moves nothing (a vector's erase at the front moved every step, which
// cost a publish of a tiny topic more than its parse and diff together).
// Grows on demand, so a topic that changes twice holds two slots, not
// historyCount.
class HistoryRing {
 public:
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  // i = 0 is the oldest step.
  const HistoryEntry& operator[](std::size_t i) const noexcept { return slots_[(head_ + i) % slots_.size()]; }
  const HistoryEntry& front() const noexcept { return slots_[head_]; }
  void push_back(HistoryEntry entry) {
    if (size_ == slots_.size()) grow();
    slots_[(head_ + size_) % slots_.size()] = std::move(entry);
    ++size_;
  }
  void pop_front() noexcept {
    slots_[head_].ops = std::string();  // frees the text now, not when the slot is reused
    head_ = (head_ + 1) % slots_.size();
    --size_;
  }
  // Replaces every step (oldest first).
  void assign(std::vector<HistoryEntry> entries) noexcept {
    slots_ = std::move(entries);
    head_ = 0;
    size_ = slots_.size();
  }

 private:
  void grow() {
    std::vector<HistoryEntry> bigger;
    bigger.reserve(std::max<std::size_t>(2, slots_.size() * 2));
    for (std::size_t i = 0; i < size_; ++i) bigger.push_back(std::move(slots_[(head_ + i) % slots_.size()]));
    bigger.resize(bigger.capacity());
    slots_ = std::move(bigger);
    head_ = 0;
  }
  std::vector<HistoryEntry> slots_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

// What a change did. With status not ok nothing changed. `changed` false with
// an ok status: the value was already current, or the change id was a
// duplicate (`duplicate`).
struct ChangeResult {
  Status status;
  bool changed = false;
  bool duplicate = false;
  bool created = false;  // a new topic (or a new epoch after eviction/expiry)
  std::uint64_t version = 0;
  std::string epoch;
  std::string ops;  // the patch from version - 1 (empty when created)
};

struct StoreStats {
  std::uint64_t topics = 0;
  std::uint64_t bytes = 0;
  std::uint64_t memoryBudget = 0;
  std::uint64_t changes = 0;       // accepted changes (versions created)
  std::uint64_t unchanged = 0;     // changes that changed nothing
  std::uint64_t duplicates = 0;    // changes dropped by the dedup window
  std::uint64_t rejected = 0;      // changes refused with an error
  std::uint64_t evictions = 0;     // topics evicted by the memory budget
  std::uint64_t expirations = 0;   // topics deleted by TTL
  std::uint64_t historyBytes = 0;  // bytes held in history rings
};

// How TopicStore::replicate takes an engine's state (lib/redis.js).
enum class ReplicaMode : std::uint8_t {
  State,    // payload: the whole value as JSON text at (epoch, version)
  Patch,    // payload: RFC 6902 operations from version - 1 to version
  Absent,   // the engine has no such topic: the local copy goes (subscribers hear `gone`)
  History,  // payload: a JSON array of the patches (each an array of operations) ending at version
};

// Validates a topic name: 1..maxLength bytes of UTF-8, no control characters.
Status validateTopic(std::string_view topic, std::size_t maxLength);

class TopicStore {
 public:
  explicit TopicStore(StoreOptions options);
  ~TopicStore();
  TopicStore(const TopicStore&) = delete;
  TopicStore& operator=(const TopicStore&) = delete;

  // ---- core thread only --------------------------------------------------------

  // The whole new value as JSON text.
  ChangeResult publishJson(std::string_view topic, std::string json, std::string_view changeId, std::int64_t now);
  // RFC 6902 operations (JSON text) applied to the current value.
  ChangeResult patch(std::string_view topic, std::string_view ops, std::string_view changeId, std::int64_t now);
  // Inserts or replaces the row whose `arrayKey` is `keyJson` (the key as JSON:
  // "\"a1\"" or "12") in a topic holding an array of rows. A missing topic is
  // created as [row].
  ChangeResult upsert(std::string_view topic, std::string_view keyJson, std::string rowJson, std::string_view changeId,
                      std::int64_t now);
  // Removes that row; unchanged when there is none.
  ChangeResult remove(std::string_view topic, std::string_view keyJson, std::string_view changeId, std::int64_t now);
  // Makes the local topic a replica of an engine's (Redis's) copy, which holds
  // the epoch and the versions (see ReplicaMode). State: at (epoch, local + 1)
  // it is an ordinary change (a patch for subscribers); at an older or equal
  // version of the same epoch nothing happens; otherwise the topic is reset
  // to (epoch, version) with an empty history (subscribers get the net change
  // or a snapshot). Patch: applied only when the topic is at (epoch,
  // version - 1). History: fills the history ring when the topic is at
  // (epoch, version). The result always carries the local (epoch, version)
  // afterwards (0 and "" when absent): a caller asking for a version it does
  // not get back is stale and sends the state.
  ChangeResult replicate(std::string_view topic, std::string_view epoch, std::uint64_t version, ReplicaMode mode,
                         std::string payload, std::int64_t now);
  // Deletes a topic; false when there was none.
  bool erase(std::string_view topic);
  // Expires topics whose TTL has passed and forgets change ids older than the
  // dedup window.
  void advance(std::int64_t now);
  // Patches between two versions of a topic, squashed in order, when the
  // history still has every step; empty otherwise.
  std::vector<const HistoryEntry*> historySince(std::string_view topic, std::uint64_t version) const;
  // One patch from `base` (an earlier snapshot of the topic, same epoch) to
  // the topic's current value, by diffing the two (the base is parsed with the
  // current tape as its guide, so the cost follows what changed). False when
  // the topic is gone or has another epoch.
  bool diffFrom(const Snapshot& base, std::string_view topic, std::string& ops) const;
  // Topics deleted, expired or evicted since the last call, in that order;
  // recorded only after reportRemovals(true) (whoever turns it on drains it).
  std::vector<RemovedTopic> takeRemoved();
  void reportRemovals(bool on) { reportRemovals_ = on; }

  // ---- any thread ----------------------------------------------------------------

  std::shared_ptr<const Snapshot> get(std::string_view topic) const;
  StoreStats stats() const;

 private:
  struct RowState;  // a root array of keyed rows kept row by row (topic_store.cc)
  struct RowSeq;    // the rows of one version, shared with its snapshot

  struct Topic {
    std::shared_ptr<const Snapshot> snapshot;  // written under the lock
    // The tape of tapeOwner->json. Current (tapeOwner == snapshot) unless the
    // topic is kept as rows and changed since; then ensureTape() rebuilds it,
    // with the stale one as its guide.
    mutable JsonTape tape;
    mutable std::shared_ptr<const Snapshot> tapeOwner;
    // Set while the value is a root array of objects with unique keys and it
    // changes row by row (upsert, remove, patches of single rows): a change
    // then costs the row; the whole text is joined when a reader needs it.
    std::shared_ptr<RowState> rows;
    HistoryRing history;
    std::size_t historyBytes = 0;
    std::size_t bytes = 0;  // what this topic counts against the budget
    std::int64_t lastChange = 0;
    std::int64_t ttlMs = 0;           // 0: no TTL
    std::list<Topic*>::iterator lru;  // position in lru_ (front: most recent)
    const std::string* name = nullptr;
  };

  struct Expiry {
    std::int64_t at;
    std::string topic;
    bool operator>(const Expiry& other) const { return at > other.at; }
  };

  // Lookups by string_view without building a std::string.
  // Not noexcept on purpose: libstdc++ then keeps each node's hash, so a
  // lookup walking a bucket compares hashes instead of hashing every name it
  // passes (with 100,000 topics that walk was a quarter of a tiny publish).
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view name) const { return std::hash<std::string_view>{}(name); }
  };
  using TopicMap = std::unordered_map<std::string, Topic, NameHash, std::equal_to<>>;

  // Checks the topic name and the change id: an early result (an error, or a
  // duplicate) or nullopt to go on.
  std::optional<ChangeResult> admit(std::string_view topic, std::string_view changeId, std::int64_t now);
  // `known`: the topic as the caller found it (nullptr: absent), saving a
  // second lookup; nullopt: looked up here.
  ChangeResult commit(std::string_view topic, std::string json, std::string_view changeId, std::int64_t now,
                      const JsonTape* guide, std::optional<Topic*> known = std::nullopt);
  // The new version of an existing topic (its version and epoch set): its
  // history step `ops`, then the snapshot, the accounting and the budget.
  // `estimate`: what the topic takes without its history.
  void finishChange(Topic& topic, std::shared_ptr<Snapshot> snapshot, std::string ops, std::size_t estimate,
                    ChangeResult& result);
  // A change that changed nothing: the producer still touched the topic.
  ChangeResult unchanged(Topic& topic, std::string_view changeId, std::int64_t now);
  Status overBudget(std::string_view topic, std::size_t estimate) const;
  // Makes topic.tape the tape of the current text (a topic kept as rows).
  const JsonTape& ensureTape(const Topic& topic) const;
  // Starts keeping a topic as rows; false when its value is not a root array
  // of objects with unique keys.
  bool keepAsRows(Topic& topic);
  // The row paths: nullopt when the change must take the whole-text path
  // (which then gives the same result or the same error, at O(topic)).
  std::optional<ChangeResult> upsertRow(Topic& topic, std::string rowJson, const JsonTape& row,
                                        std::string_view changeId, std::int64_t now);
  std::optional<ChangeResult> removeRow(Topic& topic, std::string_view keyJson, std::string_view changeId,
                                        std::int64_t now);
  std::optional<ChangeResult> patchRows(TopicMap::iterator it, std::string_view ops, std::string_view changeId,
                                        std::int64_t now);
  // Commits the rows in `next` as the new version, with `ops` (a row-level
  // patch; replaced by one `replace` of the whole value when that is
  // shorter, as the whole-document diff does).
  ChangeResult commitRows(Topic& topic, std::shared_ptr<const RowSeq> seq, std::size_t nodes, std::string ops,
                          std::string_view changeId, std::int64_t now);
  bool seen(std::string_view changeId, std::int64_t now);
  void remember(std::string_view changeId, std::int64_t now);
  void touch(Topic& topic);
  void account(Topic& topic);
  void enforceBudget(const Topic* keep);
  void eraseTopic(TopicMap::iterator it, Removal reason);
  std::int64_t ttlFor(std::string_view topic) const;
  std::string newEpoch();
  ChangeResult reject(Status status);
  ChangeResult replicaHistory(std::string_view topic, std::uint64_t version, std::string_view payload);

  // replicate(): the (epoch, version) a topic commit() creates takes, instead of a new epoch at 1.
  struct Forced {
    std::string_view epoch;
    std::uint64_t version = 0;
  };
  std::optional<Forced> forced_;

  const StoreOptions options_;
  DiffOptions diffOptions_;
  std::vector<RemovedTopic> removed_;  // core thread only: until takeRemoved()
  bool reportRemovals_ = false;

  mutable std::shared_mutex mutex_;  // guards topics_ (structure) and each Topic::snapshot
  TopicMap topics_;
  std::list<Topic*> lru_;
  std::priority_queue<Expiry, std::vector<Expiry>, std::greater<>> expiries_;
  std::size_t bytes_ = 0;

  std::deque<std::pair<std::string, std::int64_t>> recentIds_;
  std::unordered_set<std::string> recentIdSet_;

  std::mt19937_64 random_;

  std::atomic<std::uint64_t> topicCount_{0};
  std::atomic<std::uint64_t> byteCount_{0};
  std::atomic<std::uint64_t> historyByteCount_{0};
  std::atomic<std::uint64_t> changes_{0};
  std::atomic<std::uint64_t> unchanged_{0};
  std::atomic<std::uint64_t> duplicates_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<std::uint64_t> evictions_{0};
  std::atomic<std::uint64_t> expirations_{0};
};

}  // namespace deltacast
