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
#include <cstring>
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
#include <utility>
#include <vector>

#include "deltacast/json_diff.h"
#include "deltacast/json_tape.h"
#include "deltacast/name_map.h"
#include "deltacast/slab_pool.h"
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
  SnapshotText(std::string text) : size_(text.size()), text_(std::move(text)) {}  // NOLINT: implicit on purpose
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
  // Replaces the text. Only for a text nobody else can be reading
  // (TopicStore::installText checks).
  // A small text is copied into the capacity the string has (no
  // allocation); a large one, or one much smaller than that capacity, is
  // swapped in (no copy), and `text` gets the old bytes.
  void assignUnshared(std::string& text) {
    if (text.size() > 4096 || text_.capacity() > 2 * text.size() + 64) {
      text_.swap(text);
    } else {
      text_.clear();  // then append: assign's path also handles overlap, which two strings cannot have
      text_.append(text.data(), text.size());
    }
    size_ = text_.size();
  }
  // A hint: starts loading the text, when it is written.
  void prefetch() const noexcept {
    if (ready_.load(std::memory_order_relaxed)) __builtin_prefetch(text_.data());
  }
  friend bool operator==(const SnapshotText& a, std::string_view b) { return std::string_view(a.str()) == b; }
  friend std::ostream& operator<<(std::ostream& out, const SnapshotText& text) { return out << text.str(); }

 private:
  void materialize() const;

  // What only a lazy text needs, apart: a tiny topic's snapshot (the text,
  // its size and the flag, then the version and the epoch) stays within two
  // cache lines.
  struct Lazy {
    std::mutex mutex;
    std::shared_ptr<const TextSource> source;  // until the text is written
  };

  mutable std::atomic<bool> ready_{true};
  std::size_t size_ = 0;
  mutable std::string text_;
  // Made by setLazy, before the snapshot is shared, and kept for its mutex
  // while the snapshot lives.
  std::unique_ptr<Lazy> lazy_;
};

// The value of a topic at one version, shared with readers on other
// threads. Never changed while anyone but the store holds it: the store
// rewrites the current one in place for the next version only when its use
// count shows no other holder (TopicStore::installText).
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

// One step of a topic's history as read back: the patch from `from` to `to`,
// a view valid until the topic next changes.
struct HistoryStep {
  std::uint64_t from = 0;
  std::uint64_t to = 0;
  std::string_view ops;  // JSON array of RFC 6902 operations
};

// A topic's history, oldest step first: the steps in a ring of 64-byte
// slots. A patch of up to kInlineBytes (a tiny topic's, 45 bytes) is kept in
// its slot, so appending it writes one cache line; a longer one goes to a
// buffer of texts back to back, made on the first such patch, which
// allocates only when it doubles and is compacted when its dropped front
// outgrows the rest (dropping a step moves nothing). At most three
// allocations a topic, however many steps; 32 bytes in the topic itself.
// Slot arrays of up to SlabPool::kMaxBlockBytes come from the pool the
// mutators are given (the store's), when one is.
class HistoryRing {
 public:
  static constexpr std::size_t kInlineBytes = 48;

  HistoryRing() = default;
  HistoryRing(HistoryRing&& other) noexcept
      : slots_(std::exchange(other.slots_, nullptr)),
        overflow_(std::move(other.overflow_)),
        capacity_(std::exchange(other.capacity_, 0)),
        head_(std::exchange(other.head_, 0)),
        size_(std::exchange(other.size_, 0)),
        pooled_(std::exchange(other.pooled_, false)) {}
  HistoryRing& operator=(HistoryRing&& other) noexcept {
    if (this != &other) {
      releaseSlots(slots_, pooled_);
      slots_ = std::exchange(other.slots_, nullptr);
      overflow_ = std::move(other.overflow_);
      capacity_ = std::exchange(other.capacity_, 0);
      head_ = std::exchange(other.head_, 0);
      size_ = std::exchange(other.size_, 0);
      pooled_ = std::exchange(other.pooled_, false);
    }
    return *this;
  }
  ~HistoryRing() { releaseSlots(slots_, pooled_); }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  // The memory the ring holds: its slots (a patch of up to kInlineBytes is
  // in its slot) and the buffer of longer patches, with what it has reserved;
  // never less than the bytes of the patches it holds.
  std::size_t memoryBytes() const noexcept {
    return std::size_t{capacity_} * sizeof(Slot) + (overflow_ ? sizeof(Overflow) + overflow_->text.capacity() : 0);
  }
  // i = 0 is the oldest step.
  HistoryStep operator[](std::size_t i) const noexcept {
    const Slot& slot = slots_[(head_ + i) & (capacity_ - 1)];
    const std::string_view ops =
        slot.length <= kInlineBytes
            ? std::string_view(slot.text.bytes, slot.length)
            : std::string_view(overflow_->text).substr(slot.text.offset - overflow_->dropped, slot.length);
    return HistoryStep{slot.to - slot.span, slot.to, ops};
  }
  HistoryStep front() const noexcept { return (*this)[0]; }
  // `maxSteps`: how many steps the ring will ever hold at once, which bounds
  // its growth (it grows fourfold, from four slots: two reallocations up to
  // 32 steps, not four). `pool`: where a new slot array comes from (nullptr:
  // operator new).
  void push_back(std::uint64_t from, std::uint64_t to, std::string_view ops, std::size_t maxSteps = SIZE_MAX,
                 SlabPool* pool = nullptr) {
    if (size_ == capacity_) grow(maxSteps, pool);
    if (ops.size() > kInlineBytes && !overflow_) overflow_ = std::make_unique<Overflow>();
    Slot& slot = slots_[(head_ + size_) & (capacity_ - 1)];
    slot.to = to;
    slot.span = static_cast<std::uint32_t>(to - from);
    slot.length = static_cast<std::uint32_t>(ops.size());
    if (ops.size() <= kInlineBytes) {
      if (!ops.empty()) std::memcpy(slot.text.bytes, ops.data(), ops.size());
    } else {
      overflow_->text.append(ops);
      slot.text.offset = overflow_->end;
      overflow_->end += ops.size();
    }
    ++size_;
  }
  void pop_front() noexcept {
    const Slot& slot = slots_[head_];
    head_ = (head_ + 1) & (capacity_ - 1);
    --size_;
    if (slot.length <= kInlineBytes) return;
    // Texts in the buffer are the out-of-slot steps' in order: the oldest
    // step's, if it has one there, is the first not yet dropped.
    overflow_->unused += slot.length;
    // Compact when the dropped text is more than what is kept: amortized O(1) a step.
    if (overflow_->unused > overflow_->text.size() / 2) overflow_->compact();
  }
  // Gives back what the kept steps do not need: the slots down to the
  // smallest power of two that holds them (none for no step), and the buffer
  // of longer patches down to theirs. For a topic over the memory budget.
  void shrink(SlabPool* pool = nullptr) {
    std::uint32_t capacity = 0;
    if (size_ > 0) {
      capacity = 1;
      while (capacity < size_) capacity <<= 1;
    }
    if (capacity < capacity_) reslot(capacity, pool);
    if (overflow_) {
      overflow_->compact();
      if (overflow_->text.empty()) {
        overflow_.reset();  // no kept step has its text there; a new buffer counts from 0
      } else {
        overflow_->text.shrink_to_fit();
      }
    }
  }
  // Replaces every step (oldest first).
  void assign(const std::vector<HistoryEntry>& entries, SlabPool* pool = nullptr) {
    HistoryRing fresh;
    for (const HistoryEntry& entry : entries) fresh.push_back(entry.from, entry.to, entry.ops, SIZE_MAX, pool);
    *this = std::move(fresh);
  }
  // Starts loading what the next push_back writes (its slot, and the end of
  // the text buffer for a longer patch), and the oldest step, which a full
  // ring drops first.
  void prefetchNext() const noexcept {
    if (capacity_ == 0) return;
    __builtin_prefetch(&slots_[(head_ + size_) & (capacity_ - 1)], 1);
    if (size_ == capacity_) __builtin_prefetch(&slots_[head_]);
    if (overflow_ && !overflow_->text.empty())
      __builtin_prefetch(overflow_->text.data() + overflow_->text.size() - 1, 1);
  }

 private:
  struct alignas(64) Slot {  // one cache line each (allocated aligned)
    std::uint64_t to;
    std::uint32_t span;    // to - from (1, or more for a replica's step)
    std::uint32_t length;  // of the patch text
    union {
      char bytes[kInlineBytes];  // the text itself, when length <= kInlineBytes
      std::uint64_t offset;      // else: where it is in the overflow text, counted from the first byte ever appended
    } text;
  };
  static_assert(sizeof(Slot) == 64, "a slot is one cache line");
  // The patches longer than kInlineBytes.
  struct Overflow {
    std::string text;           // the out-of-slot texts of the kept steps, and dropped ones not yet compacted away
    std::uint64_t dropped = 0;  // bytes compacted away from the front of text so far
    std::uint64_t unused = 0;   // bytes at the front of text of steps already dropped
    std::uint64_t end = 0;      // bytes ever appended to text
    // Erases the dropped steps' texts from the front.
    void compact() {
      text.erase(0, unused);
      dropped += unused;
      unused = 0;
    }
  };
  void grow(std::size_t maxSteps, SlabPool* pool) {
    // A power of two: four times as many slots, but no more than maxSteps
    // needs (rounded up to a power of two), and always at least twice as many.
    std::size_t limit = 1;
    while (limit < maxSteps && limit < (std::size_t{1} << 31)) limit <<= 1;
    const auto capacity =
        static_cast<std::uint32_t>(std::max<std::size_t>(std::max<std::size_t>(4, std::size_t{capacity_} * 2),
                                                         std::min<std::size_t>(std::size_t{capacity_} * 4, limit)));
    reslot(capacity, pool);
  }
  // Moves the steps, oldest first, into `capacity` new slots (a power of two, or 0 for none).
  void reslot(std::uint32_t capacity, SlabPool* pool) {
    const bool pooled = capacity != 0 && pool != nullptr && SlabPool::serves(capacity * sizeof(Slot));
    Slot* slots = capacity == 0 ? nullptr
                  : pooled      ? static_cast<Slot*>(pool->allocate(capacity * sizeof(Slot)))
                                : new Slot[capacity];
    for (std::uint32_t i = 0; i < size_; ++i) slots[i] = slots_[(head_ + i) & (capacity_ - 1)];
    releaseSlots(slots_, pooled_);
    slots_ = slots;
    capacity_ = capacity;
    pooled_ = pooled;
    head_ = 0;
  }
  static void releaseSlots(Slot* slots, bool pooled) noexcept {
    if (slots == nullptr) return;
    if (pooled) {
      SlabPool::release(slots);
    } else {
      delete[] slots;
    }
  }
  Slot* slots_ = nullptr;  // capacity_ of them, from a SlabPool when pooled_
  std::unique_ptr<Overflow> overflow_;
  std::uint32_t capacity_ = 0;  // slots; a power of two (or 0)
  std::uint32_t head_ = 0;
  std::uint32_t size_ = 0;
  bool pooled_ = false;
};
static_assert(sizeof(HistoryRing) == 32, "a ring is 32 bytes in its topic");

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

  // A topic's lookup, carried from the prefetch stages (prefetch()) to its
  // change (publishJsonFrom), which then does not look the topic up again.
  struct Lookup {
    std::uint64_t hash = 0;      // nameHash(topic)
    void* entry = nullptr;       // the topic prefetch stage 2 found (nullptr: none)
    std::uint64_t erasures = 0;  // erasures_ then: the entry is valid while no topic has been erased since
  };

  // ---- core thread only --------------------------------------------------------

  // The whole new value as JSON text.
  ChangeResult publishJson(std::string_view topic, std::string json, std::string_view changeId, std::int64_t now) {
    ChangeResult result;
    publishJsonFrom(topic, json, changeId, now, result);
    return result;
  }
  // The same, taking the text from `json` and leaving it holding bytes of no
  // meaning (perhaps the old text's), whose capacity the caller may reuse: the
  // core decodes the next request into it without allocating. The outcome is
  // written into `result` (a fresh one), which is not moved about on the way.
  // `lookup`: the topic's prefetch stages' lookup, when the caller ran them.
  void publishJsonFrom(std::string_view topic, std::string& json, std::string_view changeId, std::int64_t now,
                       ChangeResult& result, const Lookup* lookup = nullptr);
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
  // Coalescing: a value held since `changedAt` would create `topic` (there is
  // no such topic). True when that topic would have expired already: an
  // advance() ran at or after `changedAt` + its TTL.
  bool expiredSince(std::string_view topic, std::int64_t changedAt) const;
  // Expires `topic` now (recorded as an expiry); false when there is none.
  bool expire(std::string_view topic);
  // Patches between two versions of a topic, squashed in order, when the
  // history still has every step; empty otherwise.
  std::vector<HistoryStep> historySince(std::string_view topic, std::uint64_t version) const;
  // One patch from `base` (an earlier snapshot of the topic, same epoch) to
  // the topic's current value, by diffing the two (the base is parsed with the
  // current tape as its guide, so the cost follows what changed). False when
  // the topic is gone or has another epoch.
  bool diffFrom(const Snapshot& base, std::string_view topic, std::string& ops) const;
  // Topics deleted, expired or evicted since the last call, in that order;
  // recorded only after reportRemovals(true) (whoever turns it on drains it).
  std::vector<RemovedTopic> takeRemoved();
  bool hasRemoved() const noexcept { return !removed_.empty(); }
  void reportRemovals(bool on) { reportRemovals_ = on; }

  // ---- any thread ----------------------------------------------------------------

  std::shared_ptr<const Snapshot> get(std::string_view topic) const;
  // A change to `topic` is on its way (a value held by coalescing): its TTL
  // and its place in the eviction order count from `now`, as a change's do.
  // Nothing when there is no such topic.
  void held(std::string_view topic, std::int64_t now);
  // Hands back a ChangeResult's ops once the caller is done with them: the
  // next change writes its patch into that buffer (a tiny publish then
  // allocates nothing for its patch). Buffers over 4 KiB are let go.
  void recycle(std::string ops) noexcept;
  // A hint, for a caller that knows which topics its next requests change:
  // starts loading what a change of `topic` reads first, in three stages a
  // few requests apart (0: the map's slot; 1: the topic; 2: its snapshot,
  // tape, history and LRU node; 3: the snapshot's text and the LRU
  // neighbours), each reading only what the stage before loaded.
  // 100,000 topics do not fit the cache: each stage is a miss otherwise.
  // `lookup.hash`: nameHash(topic) (name_map.h), computed once for all the
  // stages; stage 2 records there the topic it found (Lookup, above).
  void prefetch(std::string_view topic, Lookup& lookup, int stage) const noexcept;
  StoreStats stats() const;
  // Topics evicted by the memory budget so far (any thread: an atomic read).
  std::uint64_t evictions() const noexcept { return evictions_.load(std::memory_order_relaxed); }
  std::size_t topicCount() const noexcept { return topics_.size(); }  // the store's thread only

 private:
  struct RowState;  // a root array of keyed rows kept row by row (topic_store.cc)
  struct RowSeq;    // the rows of one version, shared with its snapshot

  // What a tiny publish reads and writes comes first, so it fits four cache
  // lines with the name before it (NameMap aligns entries to a line); the
  // TTL, read only when the topic is made or expires, is last.
  struct Topic {
    std::shared_ptr<const Snapshot> snapshot;  // written under the lock
    HistoryRing history;
    std::size_t historyBytes = 0;
    std::size_t bytes = 0;  // what this topic counts against the budget
    std::int64_t lastChange = 0;
    std::list<Topic*>::iterator lru;  // position in lru_ (front: most recent)
    const std::string* name = nullptr;
    // Set while the value is a root array of objects with unique keys and it
    // changes row by row (upsert, remove, patches of single rows): a change
    // then costs the row; the whole text is joined when a reader needs it.
    std::shared_ptr<RowState> rows;
    // The tape of tapeOwner->json. Current (tapeOwner == snapshot) unless the
    // topic is kept as rows and changed since (then ensureTape() rebuilds it,
    // with the stale one as its guide), or its last change was a same-shape
    // publish (then it is empty, tapeOwner null, and ensureTape() parses the
    // text). Its nodes are read only through ensureTape() (capacity() is its
    // memory either way).
    mutable JsonTape tape;
    mutable std::shared_ptr<const Snapshot> tapeOwner;
    std::int64_t ttlMs = 0;  // 0: no TTL
  };

  struct Expiry {
    std::int64_t at;
    std::string topic;
    bool operator>(const Expiry& other) const { return at > other.at; }
  };

  // Topics by name (name_map.h): found by string_view, with a lookup that a
  // batch can start early (prefetch).
  using TopicMap = NameMap<Topic>;

  // The topic a Lookup found, while it is still valid (no topic erased
  // since); nullptr otherwise.
  TopicMap::iterator found(const Lookup& lookup) const noexcept {
    return lookup.erasures == erasures_ ? static_cast<TopicMap::iterator>(lookup.entry) : nullptr;
  }
  // Checks the topic name and the change id: an early result (an error, or a
  // duplicate) or nullopt to go on.
  // `exists`: the caller found the topic (its name needs no check).
  std::optional<ChangeResult> admit(std::string_view topic, std::string_view changeId, std::int64_t now,
                                    bool exists = false);
  // `known`: the topic as the caller found it (nullptr: absent), saving a
  // second lookup; nullopt: looked up here.
  ChangeResult commit(std::string_view topic, std::string json, std::string_view changeId, std::int64_t now,
                      const JsonTape* guide, std::optional<Topic*> known = std::nullopt);
  // The new version of an existing topic (its version and epoch set): its
  // history step `ops`, then the snapshot, the accounting and the budget.
  // `estimate`: what the topic takes without its history.
  // The parts of finishChange, for a caller that installs the new value
  // itself (installText): the history step to `version`, then (after the
  // install) the result, accounting and budget.
  void recordStep(Topic& topic, std::uint64_t version, std::string_view ops, std::size_t estimate);
  void afterInstall(Topic& topic, std::string& ops, ChangeResult& result);
  // Makes `text` the topic's value at `version` (same epoch): rewritten into
  // the current snapshot when nobody else holds it (no reader, no delivery
  // base), so a change of a small value allocates no snapshot and no text;
  // otherwise into a new snapshot. `tapeOfText`: topic.tape (just swapped in)
  // indexes `text`, and is pointed at it; otherwise the tape is dropped, for
  // ensureTape() to make when it is needed.
  void installText(Topic& topic, std::string& text, std::uint64_t version, bool tapeOfText = true);
  // publishJson of a small value: the same-shape diff against the current
  // text (json_diff.h), its outcome written into `result`; false when the
  // shape differs (parse and diff), and `result` is untouched.
  bool changeSameShape(Topic& topic, std::string& json, std::string_view changeId, std::int64_t now,
                       ChangeResult& result);
  void finishChange(Topic& topic, std::shared_ptr<Snapshot> snapshot, std::string ops, std::size_t estimate,
                    ChangeResult& result);
  // A change that changed nothing: the producer still touched the topic.
  ChangeResult unchanged(Topic& topic, std::string_view changeId, std::int64_t now);
  // A producer touched the topic (changed or not): its time, its LRU place, the change id.
  void changedBy(Topic& topic, std::string_view changeId, std::int64_t now);
  // A whole-text change of an existing topic to `json` (compact, valid), its
  // patch `ops`: the history step, the text installed, the result. `tape`:
  // the tape of `json`, swapped in; nullptr: none is kept (ensureTape()).
  void changeText(Topic& topic, std::string& json, std::string& ops, std::size_t estimate, std::string_view changeId,
                  std::int64_t now, JsonTape* tape, ChangeResult& result);
  // spareOps_ (an earlier patch's buffer), emptied.
  std::string takeSpareOps() noexcept;
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
  // The map's entries and the history rings' slots (slab_pool.h); before
  // topics_, which gives everything back to it when destroyed. Used by the
  // thread that changes the store, like everything it holds.
  SlabPool pool_;
  TopicMap topics_{&pool_};
  // The nodes buffer of the tape a change last replaced, parsed into by the
  // next change: a publish allocates no tape (its text view is stale until
  // then, and never read).
  JsonTape spareTape_;
  static constexpr std::size_t kSpareOpsBytes = 4096;
  std::string spareOps_;  // recycle()
  std::list<Topic*> lru_;
  std::priority_queue<Expiry, std::vector<Expiry>, std::greater<>> expiries_;
  std::size_t bytes_ = 0;

  std::deque<std::pair<std::string, std::int64_t>> recentIds_;
  std::unordered_set<std::string> recentIdSet_;
  std::optional<std::int64_t> advancedTo_;  // the latest advance()

  std::mt19937_64 random_;

  std::uint64_t erasures_ = 0;  // topics erased so far (Lookup::erasures)

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
