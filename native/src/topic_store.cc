#include "deltacast/topic_store.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <mutex>
#include <new>

#include "deltacast/json_patch.h"
#include "deltacast/row_key.h"
#include "deltacast/topic_pattern.h"
#include "text_util.h"

namespace deltacast {

namespace {

// Fixed cost counted per topic on top of its text, tape and history: the map
// node, the Topic and Snapshot objects, the LRU node and allocator overhead.
// Measured: 1,000,000 topics of ~20 bytes grow the process by ~527 bytes each.
constexpr std::size_t kTopicOverhead = 384;
// The store's counters have one writer, the store's thread, and readers
// anywhere (stats()): a relaxed load and store, not a locked read-modify-write,
// which drains the store buffer (on a tiny publish it waited for the cache
// misses of the writes before it).
void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
void drop(std::atomic<std::uint64_t>& counter, std::uint64_t n) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
}

constexpr std::size_t kEpochLength = 12;

// Allocates on a cache line: a snapshot and its counts (112 bytes) then take
// two lines, not three.
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) noexcept {}  // NOLINT: rebinding is implicit
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{std::max<std::size_t>(64, alignof(T))}));
  }
  void deallocate(T* p, std::size_t) noexcept {
    ::operator delete (p, std::align_val_t{std::max<std::size_t>(64, alignof(T))});
  }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const noexcept {
    return true;
  }
  template <class U>
  bool operator!=(const CacheLineAllocator<U>&) const noexcept {
    return false;
  }
};

std::shared_ptr<Snapshot> newSnapshot() { return std::allocate_shared<Snapshot>(CacheLineAllocator<Snapshot>()); }

// What a topic counts against the memory budget, history aside.
std::size_t baseBytes(std::size_t jsonBytes, std::size_t tapeNodes, std::size_t nameBytes) {
  return jsonBytes + kEpochLength + tapeNodes * sizeof(TapeNode) + nameBytes + kTopicOverhead;
}

// The raw text of the key member of an object node, or empty.
std::string_view keyOf(const JsonTape& tape, std::uint32_t object, std::string_view arrayKey) {
  if (tape[object].type != JsonType::Object) return {};
  std::string scratch;
  for (std::uint32_t k = object + 1; k < tape[object].next; k = tape[k + 1].next) {
    std::string_view name = tape.raw(k);
    name = name.substr(1, name.size() - 2);
    if ((tape[k].flags & TapeNode::kHasEscape) != 0) {
      scratch.clear();
      decodeJsonString(tape.raw(k), scratch);
      name = scratch;
    }
    if (name != arrayKey) continue;
    const JsonType type = tape[k + 1].type;
    if (type != JsonType::String && type != JsonType::Number) return {};
    return tape.raw(k + 1);
  }
  return {};
}

// Finds the element whose key is `keyJson` in the root array of rows, and
// checks that every element is a keyed row. `node` is 0 when there is none;
// `previous` is the element before it (0 for the first).
Status findRow(const JsonTape& tape, std::string_view topic, std::string_view arrayKey, std::string_view keyJson,
               std::uint32_t& node, std::uint32_t& previous) {
  if (tape[0].type != JsonType::Array) {
    return Status(ErrorCode::NotKeyedArray,
                  "topic " + quoted(topic) + " holds " + jsonTypeName(tape[0].type) + ", not an array of rows");
  }
  node = 0;
  previous = 0;
  std::uint32_t index = 0;
  for (std::uint32_t e = 1, before = 0; e < tape[0].next; before = e, e = tape[e].next, ++index) {
    const std::string_view key = keyOf(tape, e, arrayKey);
    if (key.empty()) {
      return Status(ErrorCode::NotKeyedArray, "topic " + quoted(topic) + " element " + std::to_string(index) +
                                                  " is not an object with a string or number " + quoted(arrayKey));
    }
    if (node == 0 && sameRowKey(key, keyJson)) {
      node = e;
      previous = before;
    }
  }
  return Status::ok();
}

// One row of a topic kept as rows: its compact text, its key (canonical,
// row_key.h) and how many tape nodes it has.
struct Row {
  std::string text;
  std::string key;
  std::uint32_t nodes = 0;
  std::uint64_t slot = 0;  // rows only append, so row order is slot order (RowState::find)
};
using RowPtr = std::shared_ptr<const Row>;

// Rows in chunks, so a new version copies one chunk and the chunk list, not
// every row.
constexpr std::size_t kChunkRows = 64;
struct RowChunk {
  std::vector<RowPtr> rows;
};

void appendIndexPointer(std::size_t index, std::string& out) {
  char buffer[24];
  out.push_back('/');
  out.append(buffer, std::to_chars(buffer, buffer + sizeof buffer, index).ptr);
}

// The parse limits of a row inside the root array: one level less deep.
ParseLimits rowLimits(const ParseLimits& limits) {
  ParseLimits row = limits;
  row.maxDepth = limits.maxDepth > 0 ? limits.maxDepth - 1 : 0;
  return row;
}

// Values up to this size try the same-shape diff first (diffSameShape): a
// miss costs one pass over two small texts.
constexpr std::size_t kSameShapeBytes = 4096;

}  // namespace

// The rows of one version. Immutable once a snapshot refers to it; it writes
// that snapshot's text when a reader first needs it.
struct TopicStore::RowSeq final : TextSource {
  std::vector<std::shared_ptr<const RowChunk>> chunks;
  std::vector<std::size_t> start{0};  // the first row of each chunk, then the row count
  std::size_t bytes = 2;              // of the joined text

  std::size_t count() const { return start.back(); }
  std::pair<std::size_t, std::size_t> locate(std::size_t index) const {
    const auto it = std::upper_bound(start.begin(), start.end() - 1, index) - 1;
    const std::size_t c = static_cast<std::size_t>(it - start.begin());
    return {c, index - start[c]};
  }
  const Row& at(std::size_t index) const {
    const auto [c, offset] = locate(index);
    return *chunks[c]->rows[offset];
  }
  void write(std::string& out) const override {
    out.reserve(out.size() + bytes);
    out.push_back('[');
    bool first = true;
    for (const auto& chunk : chunks) {
      for (const RowPtr& row : chunk->rows) {
        if (!first) out.push_back(',');
        first = false;
        out.append(row->text);
      }
    }
    out.push_back(']');
  }
  // The chunk at `c`, copied into `next` (once per change) to be written.
  static RowChunk& writable(RowSeq& next, std::size_t c, std::vector<bool>& copied) {
    if (!copied[c]) {
      next.chunks[c] = std::make_shared<RowChunk>(*next.chunks[c]);
      copied[c] = true;
    }
    return const_cast<RowChunk&>(*next.chunks[c]);
  }
};

// What a topic kept as rows knows besides its rows: where each key is.
// Positions come from slots: a row gets the next slot when it is appended (a
// replaced row keeps its slot), rows only ever append, so row order is slot
// order and a key's position is a binary search over the chunks, then within
// one: a removal moves no index entries.
struct TopicStore::RowState {
  std::shared_ptr<const RowSeq> seq;
  std::unordered_map<std::string, std::uint64_t> slotOfKey;
  std::uint64_t nextSlot = 0;
  std::size_t nodes = 1;        // of the whole tape: the array's and every row's
  std::size_t escapedRows = 0;  // rows whose text has a backslash (a patch may rewrite them)

  std::optional<std::size_t> find(std::string_view key) const {
    const auto it = slotOfKey.find(std::string(key));
    if (it == slotOfKey.end()) return std::nullopt;
    const std::uint64_t slot = it->second;
    const auto& chunks = seq->chunks;
    const auto chunk = std::upper_bound(chunks.begin(), chunks.end(), slot,
                                        [](std::uint64_t s, const auto& c) { return s < c->rows.front()->slot; }) -
                       1;
    const auto& rows = (*chunk)->rows;
    const auto row =
        std::lower_bound(rows.begin(), rows.end(), slot, [](const RowPtr& r, std::uint64_t s) { return r->slot < s; });
    return seq->start[static_cast<std::size_t>(chunk - chunks.begin())] + static_cast<std::size_t>(row - rows.begin());
  }
  // After the row (its slot nextSlot) was appended to seq.
  void append(const Row& row) {
    slotOfKey.emplace(row.key, row.slot);
    nextSlot = row.slot + 1;
    nodes += row.nodes;
    if (row.text.find('\\') != std::string::npos) ++escapedRows;
  }
  void erase(const Row& row) {
    slotOfKey.erase(row.key);
    nodes -= row.nodes;
    if (row.text.find('\\') != std::string::npos) --escapedRows;
  }
  void replace(const Row& before, const Row& after) {  // same key
    nodes = nodes - before.nodes + after.nodes;
    if (before.text.find('\\') != std::string::npos) --escapedRows;
    if (after.text.find('\\') != std::string::npos) ++escapedRows;
  }
};

SnapshotText& SnapshotText::operator=(std::string text) {
  std::unique_lock<std::mutex> lock;
  if (lazy_) {
    lock = std::unique_lock(lazy_->mutex);
    lazy_->source.reset();
  }
  text_ = std::move(text);
  size_ = text_.size();
  ready_.store(true, std::memory_order_release);
  return *this;
}

void SnapshotText::setLazy(std::shared_ptr<const TextSource> source, std::size_t size) {
  if (!lazy_) lazy_ = std::make_unique<Lazy>();
  std::lock_guard lock(lazy_->mutex);
  text_.clear();
  lazy_->source = std::move(source);
  size_ = size;
  ready_.store(false, std::memory_order_release);
}

void SnapshotText::materialize() const {
  std::lock_guard lock(lazy_->mutex);  // not ready: setLazy made lazy_
  if (ready_.load(std::memory_order_relaxed)) return;
  std::string text;
  lazy_->source->write(text);
  text_ = std::move(text);
  lazy_->source.reset();  // the rows of this version can go
  ready_.store(true, std::memory_order_release);
}

Status validateTopic(std::string_view topic, std::size_t maxLength) {
  if (topic.empty()) return Status(ErrorCode::InvalidTopic, "a topic name cannot be empty");
  if (topic.size() > maxLength) {
    return Status(ErrorCode::InvalidTopic, "topic name of " + std::to_string(topic.size()) +
                                               " bytes is over the limit of " + std::to_string(maxLength));
  }
  for (std::size_t i = 0; i < topic.size(); ++i) {
    const auto c = static_cast<unsigned char>(topic[i]);
    // C0 controls, DEL, and C1 controls (U+0080-U+009F: 0xC2 0x80-0x9F in UTF-8)
    const bool c1 = c == 0xC2 && i + 1 < topic.size() && static_cast<unsigned char>(topic[i + 1]) < 0xA0;
    if (c < 0x20 || c == 0x7F || c1) {
      return Status(ErrorCode::InvalidTopic, "topic name " + quoted(topic) + " contains a control character");
    }
  }
  if (!isValidUtf8(topic)) return Status(ErrorCode::InvalidTopic, "topic name is not valid UTF-8");
  return Status::ok();
}

TopicStore::TopicStore(StoreOptions options) : options_(std::move(options)), random_(std::random_device{}()) {
  diffOptions_.arrayKey = options_.arrayKey;
}

TopicStore::~TopicStore() = default;

std::string TopicStore::newEpoch() {
  static const char* const kHex = "0123456789abcdef";
  std::uint64_t value = random_();
  std::string epoch(kEpochLength, '0');
  for (char& c : epoch) {
    c = kHex[value & 0xF];
    value >>= 4;
  }
  return epoch;
}

ChangeResult TopicStore::reject(Status status) {
  bump(rejected_, 1);
  ChangeResult result;
  result.status = std::move(status);
  return result;
}

bool TopicStore::seen(std::string_view changeId, std::int64_t now) {
  if (changeId.empty()) return false;
  while (!recentIds_.empty() && recentIds_.front().second + options_.dedupWindowMs <= now) {
    recentIdSet_.erase(recentIds_.front().first);
    recentIds_.pop_front();
  }
  return recentIdSet_.count(std::string(changeId)) != 0;
}

void TopicStore::remember(std::string_view changeId, std::int64_t now) {
  if (changeId.empty() || options_.dedupCount == 0) return;
  if (!recentIdSet_.emplace(changeId).second) return;
  recentIds_.emplace_back(std::string(changeId), now);
  while (recentIds_.size() > options_.dedupCount) {
    recentIdSet_.erase(recentIds_.front().first);
    recentIds_.pop_front();
  }
}

std::int64_t TopicStore::ttlFor(std::string_view topic) const {
  for (const TtlRule& rule : options_.ttl) {
    if (topicMatches(rule.pattern, topic)) return rule.ms;
  }
  return 0;
}

void TopicStore::touch(Topic& topic) { lru_.splice(lru_.begin(), lru_, topic.lru); }

void TopicStore::account(Topic& topic) {
  const std::size_t nodes = topic.rows ? topic.rows->nodes : topic.tape.capacity();
  // The history counts as the memory its ring holds (its 64-byte slots and
  // the buffer of longer patches), not only its patches' bytes.
  const std::size_t bytes =
      baseBytes(topic.snapshot->json.size(), nodes, topic.name->size()) + topic.history.memoryBytes();
  bytes_ = bytes_ - topic.bytes + bytes;
  topic.bytes = bytes;
  byteCount_.store(bytes_, std::memory_order_relaxed);
}

const char* removalName(Removal reason) noexcept {
  switch (reason) {
    case Removal::Deleted: return "deleted";
    case Removal::Expired: return "expired";
    case Removal::Evicted: return "evicted";
  }
  return "deleted";
}

std::vector<RemovedTopic> TopicStore::takeRemoved() {
  std::vector<RemovedTopic> taken;
  taken.swap(removed_);
  return taken;
}

void TopicStore::eraseTopic(TopicMap::iterator it, Removal reason) {
  Topic& topic = it->second;
  if (reportRemovals_) removed_.push_back({it->first, topic.snapshot->epoch, topic.snapshot->version, reason});
  bytes_ -= topic.bytes;
  drop(historyByteCount_, topic.historyBytes);
  lru_.erase(topic.lru);
  {
    std::unique_lock lock(mutex_);
    topics_.erase(it);
  }
  ++erasures_;  // lookups made before this may point at the entry just freed
  topicCount_.store(topics_.size(), std::memory_order_relaxed);
  byteCount_.store(bytes_, std::memory_order_relaxed);
}

void TopicStore::enforceBudget(const Topic* keep) {
  if (options_.memoryBudget == 0) return;
  while (bytes_ > options_.memoryBudget && !lru_.empty()) {
    Topic* victim = lru_.back();
    if (victim == keep) break;  // the newest topic alone is within the budget (checked before commit)
    eraseTopic(topics_.find(*victim->name), Removal::Evicted);
    bump(evictions_, 1);
  }
}

Status TopicStore::overBudget(std::string_view topicName, std::size_t estimate) const {
  if (options_.memoryBudget == 0 || estimate <= options_.memoryBudget) return Status::ok();
  return Status(ErrorCode::TooLarge, "topic " + quoted(topicName) + " would take " + std::to_string(estimate) +
                                         " bytes, over the memory budget of " + std::to_string(options_.memoryBudget) +
                                         " bytes");
}

void TopicStore::held(std::string_view topic, std::int64_t now) {
  const auto it = topics_.find(topic);
  if (it == topics_.end()) return;
  it->second.lastChange = now;
  touch(it->second);
}

void TopicStore::changedBy(Topic& topic, std::string_view changeId, std::int64_t now) {
  topic.lastChange = now;
  touch(topic);
  remember(changeId, now);
}

ChangeResult TopicStore::unchanged(Topic& topic, std::string_view changeId, std::int64_t now) {
  changedBy(topic, changeId, now);
  bump(unchanged_, 1);
  ChangeResult result;
  result.epoch = topic.snapshot->epoch;
  result.version = topic.snapshot->version;
  return result;
}

void TopicStore::recordStep(Topic& topic, std::uint64_t version, std::string_view ops, std::size_t estimate) {
  // History: the newest patch at the back; the ring drops the oldest, also
  // when the topic alone would not fit the memory budget with it (history
  // only saves resuming clients a snapshot). A full ring drops its oldest
  // step before the new one goes in, so it never holds historyCount + 1
  // steps (its slots come in powers of two: 32 steps would take 64 slots).
  const auto dropOldest = [&] {
    topic.historyBytes -= topic.history.front().ops.size();
    drop(historyByteCount_, topic.history.front().ops.size());
    topic.history.pop_front();
  };
  while (!topic.history.empty() && topic.history.size() >= options_.historyCount) dropOldest();
  if (options_.historyCount == 0) return;  // no history kept: no ring made
  topic.history.push_back(topic.snapshot->version, version, ops, options_.historyCount, &pool_);
  topic.historyBytes += ops.size();
  bump(historyByteCount_, ops.size());
  // The history counts against the budget as the memory its ring holds
  // (account()); a topic over the budget drops steps and gives back the
  // ring's memory they held.
  const auto overBudget = [&] {
    return options_.memoryBudget != 0 && estimate + topic.history.memoryBytes() > options_.memoryBudget;
  };
  while (!topic.history.empty() &&
         (topic.history.size() > options_.historyCount || topic.historyBytes > options_.historyBytes || overBudget())) {
    dropOldest();
    if (overBudget()) topic.history.shrink(&pool_);
  }
}

void TopicStore::afterInstall(Topic& topic, std::string& ops, ChangeResult& result) {
  result.changed = true;
  result.version = topic.snapshot->version;
  result.epoch = topic.snapshot->epoch;
  result.ops = std::move(ops);
  account(topic);
  enforceBudget(&topic);
  bump(changes_, 1);
}

void TopicStore::finishChange(Topic& topic, std::shared_ptr<Snapshot> snapshot, std::string ops, std::size_t estimate,
                              ChangeResult& result) {
  recordStep(topic, snapshot->version, ops, estimate);
  {
    std::unique_lock lock(mutex_);
    topic.snapshot = std::move(snapshot);
  }
  afterInstall(topic, ops, result);
}

void TopicStore::installText(Topic& topic, std::string& text, std::uint64_t version, bool tapeOfText) {
  {
    // Readers copy a topic's snapshot pointer under this lock, so while it is
    // held the count cannot grow; the store's own references are the topic's
    // and its tape's.
    std::unique_lock lock(mutex_);
    const long own = topic.tapeOwner == topic.snapshot ? 2 : 1;
    if (topic.snapshot.use_count() == own && topic.snapshot->json.materialized()) {
      // Whoever held it last released it (an acq_rel decrement); this fence
      // orders their last reads of it before the writes here.
      std::atomic_thread_fence(std::memory_order_acquire);
      // Created non-const (newSnapshot) and shared with no one.
      auto& snapshot = const_cast<Snapshot&>(*topic.snapshot);
      snapshot.json.assignUnshared(text);
      snapshot.version = version;
    } else {
      auto snapshot = newSnapshot();
      snapshot->json = std::move(text);
      snapshot->version = version;
      snapshot->epoch = topic.snapshot->epoch;
      topic.snapshot = std::move(snapshot);
    }
  }
  if (tapeOfText) {
    topic.tapeOwner = topic.snapshot;
    topic.tape.rebase(topic.snapshot->json.str());
  } else {
    // Stale, and nothing to guide a parse with: its offsets are of another
    // text. (Reset only when set: the owner's count pointer is on the entry's
    // fourth cache line, which a tiny publish otherwise does not touch.)
    if (topic.tapeOwner) topic.tapeOwner.reset();
    topic.tape.clear();
  }
}

ChangeResult TopicStore::commit(std::string_view topicName, std::string json, std::string_view changeId,
                                std::int64_t now, const JsonTape* guide, std::optional<Topic*> known) {
  // Parsed where the text lies, into the nodes buffer of the tape the last
  // change replaced; the text moves into a snapshot (or into the current one,
  // installText) once the change stands, and the tape is pointed at it then.
  JsonTape& tape = spareTape_;
  if (Status s = tape.parse(json, options_.limits, guide); !s) return reject(std::move(s));
  if (!tape.compact()) {
    std::string compact;
    compact.reserve(json.size());
    appendMinified(json, compact);
    json = std::move(compact);
    if (Status s = tape.parse(json, options_.limits, guide); !s) return reject(std::move(s));
  }
  tape.releaseSpareCapacity();
  const std::size_t estimate = baseBytes(json.size(), tape.capacity(), topicName.size());
  if (Status s = overBudget(topicName, estimate); !s) return reject(std::move(s));

  ChangeResult result;
  Topic* existing = nullptr;
  if (known) {
    existing = *known;
  } else if (const auto it = topics_.find(topicName); it != topics_.end()) {
    existing = &it->second;
  }
  if (existing != nullptr) {
    Topic& topic = *existing;
    const JsonTape& current = ensureTape(topic);
    std::string ops = takeSpareOps();
    (void)diffTapes(current, tape, diffOptions_, ops);
    if (ops == "[]") return unchanged(topic, changeId, now);
    changeText(topic, json, ops, estimate, changeId, now, &tape, result);
    return result;
  }

  auto snapshot = newSnapshot();
  snapshot->json = std::move(json);
  tape.rebase(snapshot->json.str());

  snapshot->version = forced_ ? forced_->version : 1;
  snapshot->epoch = forced_ ? std::string(forced_->epoch) : newEpoch();
  Topic* topic = nullptr;
  {
    std::unique_lock lock(mutex_);
    auto [inserted, ok] = topics_.emplace(std::string(topicName), Topic{});
    (void)ok;
    topic = &inserted->second;
    topic->name = &inserted->first;
    topic->snapshot = snapshot;
  }
  topic->tape = std::move(tape);
  topic->tapeOwner = snapshot;
  topic->lastChange = now;
  topic->ttlMs = ttlFor(topicName);
  lru_.push_front(topic);
  topic->lru = lru_.begin();
  topicCount_.store(topics_.size(), std::memory_order_relaxed);
  if (topic->ttlMs > 0) {
    expiries_.push(Expiry{now + topic->ttlMs, std::string(topicName)});
  }
  remember(changeId, now);
  account(*topic);
  enforceBudget(topic);
  bump(changes_, 1);
  result.changed = true;
  result.created = true;
  result.version = snapshot->version;
  result.epoch = snapshot->epoch;
  return result;
}

const JsonTape& TopicStore::ensureTape(const Topic& topic) const {
  if (topic.tapeOwner == topic.snapshot) return topic.tape;
  // The stale tape guides the parse: rows that did not change are copied.
  JsonTape fresh;
  const Status s = fresh.parse(topic.snapshot->json.str(), options_.limits, topic.tape.empty() ? nullptr : &topic.tape);
  (void)s;  // the rows were each validated, and the whole within the limits
  topic.tape = std::move(fresh);
  topic.tape.releaseSpareCapacity();
  topic.tapeOwner = topic.snapshot;
  return topic.tape;
}

bool TopicStore::keepAsRows(Topic& topic) {
  if (topic.rows) return true;
  if (!options_.keepRows) return false;
  const JsonTape& tape = ensureTape(topic);
  if (tape.empty() || tape[0].type != JsonType::Array || options_.arrayKey.empty()) return false;
  auto state = std::make_shared<RowState>();
  auto seq = std::make_shared<RowSeq>();
  state->slotOfKey.reserve(tape[0].count);
  std::string storage;
  std::shared_ptr<RowChunk> chunk;
  for (std::uint32_t e = 1; e < tape[0].next; e = tape[e].next) {
    const std::string_view raw = keyOf(tape, e, options_.arrayKey);
    if (raw.empty()) return false;
    auto row = std::make_shared<Row>();
    row->key = std::string(canonicalRowKey(raw, storage));
    if (state->slotOfKey.count(row->key) != 0) return false;  // keys repeat: the whole-text path
    row->text = std::string(tape.raw(e));
    row->nodes = tape[e].next - e;
    row->slot = state->nextSlot;
    state->append(*row);
    if (!chunk || chunk->rows.size() == kChunkRows) {
      chunk = std::make_shared<RowChunk>();
      chunk->rows.reserve(kChunkRows);
      seq->chunks.push_back(chunk);
      seq->start.push_back(seq->start.back());
    }
    chunk->rows.push_back(std::move(row));
    ++seq->start.back();
  }
  seq->bytes = topic.snapshot->json.size();
  state->seq = std::move(seq);
  topic.rows = std::move(state);
  return true;
}

ChangeResult TopicStore::commitRows(Topic& topic, std::shared_ptr<const RowSeq> seq, std::size_t nodes, std::string ops,
                                    std::string_view changeId, std::int64_t now) {
  const std::size_t estimate = baseBytes(seq->bytes, nodes, topic.name->size());
  if (Status s = overBudget(*topic.name, estimate); !s) return reject(std::move(s));
  auto snapshot = newSnapshot();
  snapshot->json.setLazy(seq, seq->bytes);
  // The whole-document diff sends one `replace` of the value when its
  // operations would be longer than the value.
  if (ops.size() - 2 > seq->bytes + kReplaceSlackBytes) {
    ops.assign("[{\"op\":\"replace\",\"path\":\"\",\"value\":");
    ops.append(snapshot->json.str());
    ops.append("}]");
  }
  changedBy(topic, changeId, now);
  snapshot->version = topic.snapshot->version + 1;
  snapshot->epoch = topic.snapshot->epoch;
  ChangeResult result;
  finishChange(topic, std::move(snapshot), std::move(ops), estimate, result);
  return result;
}

std::optional<ChangeResult> TopicStore::upsertRow(Topic& topic, std::string rowJson, const JsonTape& rowTape,
                                                  std::string_view changeId, std::int64_t now) {
  RowState& state = *topic.rows;
  const RowSeq& seq = *state.seq;
  auto row = std::make_shared<Row>();
  std::string storage;
  row->key = std::string(canonicalRowKey(keyOf(rowTape, 0, options_.arrayKey), storage));
  row->nodes = rowTape.size();
  row->slot = state.nextSlot;  // a new row's; a replaced row keeps its own
  const std::optional<std::size_t> index = state.find(row->key);
  std::string ops;
  if (index) {
    const Row& old = seq.at(*index);
    if (old.text == rowJson) return unchanged(topic, changeId, now);
    row->slot = old.slot;
    auto next = std::make_shared<RowSeq>(seq);
    next->bytes = seq.bytes - old.text.size() + rowJson.size();
    if (next->bytes > options_.limits.maxBytes) return std::nullopt;
    JsonTape oldTape;
    if (!oldTape.parse(old.text, options_.limits)) return std::nullopt;
    DiffOptions options = diffOptions_;
    appendIndexPointer(*index, options.pathPrefix);
    (void)diffTapes(oldTape, rowTape, options, ops);
    if (ops == "[]") return unchanged(topic, changeId, now);
    row->text = std::move(rowJson);
    const auto [c, offset] = seq.locate(*index);
    std::vector<bool> copied(next->chunks.size(), false);
    RowSeq::writable(*next, c, copied).rows[offset] = row;
    const std::size_t nodes = state.nodes - old.nodes + row->nodes;
    ChangeResult result = commitRows(topic, next, nodes, std::move(ops), changeId, now);
    if (result.changed) state.replace(old, *row);
    if (result.changed) state.seq = std::move(next);
    return result;
  }
  const std::size_t count = seq.count();
  auto next = std::make_shared<RowSeq>(seq);
  next->bytes = seq.bytes + rowJson.size() + (count > 0 ? 1 : 0);
  if (next->bytes > options_.limits.maxBytes) return std::nullopt;
  ops.assign("[{\"op\":\"add\",\"path\":\"");
  appendIndexPointer(count, ops);
  ops.append("\",\"value\":");
  ops.append(rowJson);
  ops.append("}]");
  row->text = std::move(rowJson);
  if (next->chunks.empty() || next->chunks.back()->rows.size() >= kChunkRows) {
    auto chunk = std::make_shared<RowChunk>();
    chunk->rows.reserve(kChunkRows);
    chunk->rows.push_back(row);
    next->chunks.push_back(std::move(chunk));
    next->start.push_back(count + 1);
  } else {
    std::vector<bool> copied(next->chunks.size(), false);
    RowSeq::writable(*next, next->chunks.size() - 1, copied).rows.push_back(row);
    ++next->start.back();
  }
  ChangeResult result = commitRows(topic, next, state.nodes + row->nodes, std::move(ops), changeId, now);
  if (result.changed) {
    state.append(*row);
    state.seq = std::move(next);
  }
  return result;
}

std::optional<ChangeResult> TopicStore::removeRow(Topic& topic, std::string_view keyJson, std::string_view changeId,
                                                  std::int64_t now) {
  RowState& state = *topic.rows;
  const RowSeq& seq = *state.seq;
  std::string storage;
  const std::optional<std::size_t> index = state.find(canonicalRowKey(keyJson, storage));
  if (!index) return unchanged(topic, changeId, now);  // no such row: the producer still touched the topic
  const auto [c, offset] = seq.locate(*index);
  const RowPtr old = seq.chunks[c]->rows[offset];
  auto next = std::make_shared<RowSeq>(seq);
  next->bytes = seq.bytes - old->text.size() - (seq.count() > 1 ? 1 : 0);
  std::vector<bool> copied(next->chunks.size(), false);
  RowChunk& chunk = RowSeq::writable(*next, c, copied);
  chunk.rows.erase(chunk.rows.begin() + static_cast<std::ptrdiff_t>(offset));
  for (std::size_t k = c + 1; k < next->start.size(); ++k) --next->start[k];
  if (chunk.rows.empty()) {
    next->chunks.erase(next->chunks.begin() + static_cast<std::ptrdiff_t>(c));
    next->start.erase(next->start.begin() + static_cast<std::ptrdiff_t>(c));
  } else if (next->chunks.size() > 8 + 4 * (next->count() / kChunkRows)) {
    // Removals left many short chunks: pack them again.
    std::vector<std::shared_ptr<const RowChunk>> packed;
    std::vector<std::size_t> start{0};
    std::shared_ptr<RowChunk> fresh;
    for (const auto& each : next->chunks) {
      for (const RowPtr& r : each->rows) {
        if (!fresh || fresh->rows.size() == kChunkRows) {
          fresh = std::make_shared<RowChunk>();
          packed.push_back(fresh);
          start.push_back(start.back());
        }
        fresh->rows.push_back(r);
        ++start.back();
      }
    }
    next->chunks = std::move(packed);
    next->start = std::move(start);
  }
  std::string ops("[{\"op\":\"remove\",\"path\":\"");
  appendIndexPointer(*index, ops);
  ops.append("\"}]");
  ChangeResult result = commitRows(topic, next, state.nodes - old->nodes, std::move(ops), changeId, now);
  if (result.changed) {
    state.erase(*old);
    state.seq = std::move(next);
  }
  return result;
}

std::optional<ChangeResult> TopicStore::patchRows(TopicMap::iterator it, std::string_view opsText,
                                                  std::string_view changeId, std::int64_t now) {
  // Operations that each stay inside one row ("/<index>/..."; `replace` and
  // `test` also at "/<index>"), no `copy`: those apply row by row, and the
  // whole-document diff of the result is the rows' diffs in index order as
  // long as no row changes its key. Anything else takes the whole-text path.
  PatchLimits limits{options_.limits, options_.maxPatchOps, options_.limits};
  limits.patchText.maxBytes = options_.limits.maxBytes * 2 + 4096;
  limits.patchText.maxDepth = std::max<std::uint32_t>(options_.limits.maxDepth + 2, ParseLimits{}.maxDepth);
  rapidjson::Document ops;
  if (!parseDocument(opsText, ops, limits.patchText, Numbers::AsText)) return std::nullopt;
  if (!ops.IsArray() || ops.Empty() || ops.Size() > options_.maxPatchOps) return std::nullopt;
  Topic& topic = it->second;
  if (!topic.rows && ensureTape(topic)[0].type != JsonType::Array) return std::nullopt;
  const std::size_t rowCount = topic.rows ? topic.rows->seq->count() : ensureTape(topic)[0].count;
  // Each row's operations, their paths made relative to the row.
  std::map<std::size_t, std::string> perRow;
  const auto rowOf = [&](const rapidjson::Value& pointer, std::size_t& index, std::string_view& rest) {
    if (!pointer.IsString()) return false;
    const std::string_view p(pointer.GetString(), pointer.GetStringLength());
    if (p.size() < 2 || p[0] != '/') return false;
    std::size_t end = p.find('/', 1);
    if (end == std::string_view::npos) end = p.size();
    const std::string_view digits = p.substr(1, end - 1);
    if (digits.empty() || digits.size() > 9 || (digits.size() > 1 && digits[0] == '0')) return false;
    index = 0;
    for (const char ch : digits) {
      if (ch < '0' || ch > '9') return false;
      index = index * 10 + static_cast<std::size_t>(ch - '0');
    }
    rest = p.substr(end);
    return index < rowCount;
  };
  for (const rapidjson::Value& op : ops.GetArray()) {
    if (!op.IsObject()) return std::nullopt;
    const auto name = op.FindMember("op");
    const auto path = op.FindMember("path");
    if (name == op.MemberEnd() || path == op.MemberEnd() || !name->value.IsString()) return std::nullopt;
    const std::string_view kind(name->value.GetString(), name->value.GetStringLength());
    std::size_t index = 0;
    std::string_view rest;
    if (!rowOf(path->value, index, rest)) return std::nullopt;
    std::string_view fromRest;
    if (kind == "move") {
      const auto from = op.FindMember("from");
      std::size_t fromIndex = 0;
      if (from == op.MemberEnd() || !rowOf(from->value, fromIndex, fromRest) || fromIndex != index ||
          fromRest.empty()) {
        return std::nullopt;
      }
    } else if (kind != "add" && kind != "remove" && kind != "replace" && kind != "test") {
      return std::nullopt;
    }
    if (rest.empty() && kind != "replace" && kind != "test") return std::nullopt;
    std::string& out = perRow[index];
    out.push_back(out.empty() ? '[' : ',');
    out.push_back('{');
    bool first = true;
    for (const auto& member : op.GetObject()) {
      if (!first) out.push_back(',');
      first = false;
      const std::string_view key(member.name.GetString(), member.name.GetStringLength());
      out.push_back('"');
      appendJsonEscaped(key, out);
      out.append("\":");
      if (key == "path" || (key == "from" && kind == "move")) {
        out.push_back('"');
        appendJsonEscaped(key == "path" ? rest : fromRest, out);
        out.push_back('"');
      } else {
        serializeDocument(member.value, out);
      }
    }
    out.push_back('}');
  }
  if (!topic.rows && !keepAsRows(topic)) return std::nullopt;
  RowState& state = *topic.rows;
  const RowSeq& seq = *state.seq;
  // A patch rewrites the whole text (escapes come out decoded), which rows
  // with a backslash would not survive unchanged; and sizes while it applies
  // are bounded by the value plus the patch only when nothing is copied.
  if (state.escapedRows != 0 || seq.bytes + opsText.size() > options_.limits.maxBytes) return std::nullopt;
  PatchLimits inRow = limits;
  inRow.value = rowLimits(options_.limits);
  auto next = std::make_shared<RowSeq>(seq);
  std::vector<bool> copied(next->chunks.size(), false);
  std::vector<std::pair<RowPtr, RowPtr>> replaced;  // (old, new)
  std::size_t nodes = state.nodes;
  std::string diff = "[";
  std::string storage;
  for (auto& [index, rowOps] : perRow) {
    rowOps.push_back(']');
    const auto [c, offset] = seq.locate(index);
    const RowPtr& old = seq.chunks[c]->rows[offset];
    auto row = std::make_shared<Row>();
    if (!applyPatchJson(old->text, rowOps, row->text, inRow)) return std::nullopt;
    if (row->text == old->text) continue;
    JsonTape newTape;
    JsonTape oldTape;
    if (!newTape.parse(row->text, inRow.value) || !oldTape.parse(old->text, options_.limits)) return std::nullopt;
    const std::string_view raw = keyOf(newTape, 0, options_.arrayKey);
    if (raw.empty() || canonicalRowKey(raw, storage) != old->key) return std::nullopt;  // the key changes
    row->key = old->key;
    row->nodes = newTape.size();
    row->slot = old->slot;
    DiffOptions options = diffOptions_;
    appendIndexPointer(index, options.pathPrefix);
    std::string rowDiff;
    (void)diffTapes(oldTape, newTape, options, rowDiff);
    if (rowDiff.size() > 2) {
      if (diff.size() > 1) diff.push_back(',');
      diff.append(rowDiff, 1, rowDiff.size() - 2);
    }
    next->bytes = next->bytes - old->text.size() + row->text.size();
    nodes = nodes - old->nodes + row->nodes;
    RowSeq::writable(*next, c, copied).rows[offset] = row;
    replaced.emplace_back(old, std::move(row));
  }
  diff.push_back(']');
  if (diff == "[]") return unchanged(topic, changeId, now);
  ChangeResult result = commitRows(topic, next, nodes, std::move(diff), changeId, now);
  if (result.changed) {
    for (const auto& [before, after] : replaced) state.replace(*before, *after);
    state.seq = std::move(next);
  }
  return result;
}

std::optional<ChangeResult> TopicStore::admit(std::string_view topic, std::string_view changeId, std::int64_t now,
                                              bool exists) {
  // A name the store holds was checked when its topic was made.
  if (!exists) {
    if (Status s = validateTopic(topic, options_.maxTopicLength); !s) return reject(std::move(s));
  }
  if (!seen(changeId, now)) return std::nullopt;
  bump(duplicates_, 1);
  ChangeResult result;
  result.duplicate = true;
  return result;
}

void TopicStore::publishJsonFrom(std::string_view topic, std::string& json, std::string_view changeId, std::int64_t now,
                                 ChangeResult& result, const Lookup* lookup) {
  TopicMap::iterator it = lookup == nullptr ? topics_.find(topic) : found(*lookup);
  if (it == topics_.end() && lookup != nullptr) it = topics_.find(topic, lookup->hash);
  if (std::optional<ChangeResult> early = admit(topic, changeId, now, it != topics_.end())) {
    result = std::move(*early);
    return;
  }
  if (it == topics_.end()) {
    result = commit(topic, std::move(json), changeId, now, nullptr, nullptr);
    return;
  }
  Topic& current = it->second;
  // The same text as the current one (always compact and valid): nothing to
  // parse or diff.
  if (!current.rows && current.snapshot->json.materialized() && current.snapshot->json.size() == json.size() &&
      textEqual(current.snapshot->json.str(), json)) {
    result = unchanged(current, changeId, now);
    return;
  }
  // A small value of the same shape (a tiny topic's next value): diffed
  // against the current text as it is, without parsing either into a tape.
  if (!current.rows && json.size() <= kSameShapeBytes && json.size() <= options_.limits.maxBytes &&
      current.snapshot->json.materialized() && current.snapshot->json.size() <= kSameShapeBytes) {
    if (changeSameShape(current, json, changeId, now, result)) return;
  }
  result = commit(topic, std::move(json), changeId, now, &ensureTape(current), &current);
}

bool TopicStore::changeSameShape(Topic& topic, std::string& json, std::string_view changeId, std::int64_t now,
                                 ChangeResult& result) {
  std::string ops = takeSpareOps();
  const ShapeDiff diff = diffSameShape(topic.snapshot->json.str(), json, ops);
  if (diff != ShapeDiff::Changed) {
    recycle(std::move(ops));
    if (diff == ShapeDiff::Other) return false;
    result = unchanged(topic, changeId, now);
    return true;
  }
  const std::size_t estimate = baseBytes(json.size(), topic.tape.capacity(), topic.name->size());
  if (Status s = overBudget(*topic.name, estimate); !s) {
    recycle(std::move(ops));
    result = reject(std::move(s));
    return true;
  }
  // No tape: ensureTape() parses the text if one is ever needed.
  changeText(topic, json, ops, estimate, changeId, now, nullptr, result);
  return true;
}

void TopicStore::changeText(Topic& topic, std::string& json, std::string& ops, std::size_t estimate,
                            std::string_view changeId, std::int64_t now, JsonTape* tape, ChangeResult& result) {
  changedBy(topic, changeId, now);
  const std::uint64_t version = topic.snapshot->version + 1;
  recordStep(topic, version, ops, estimate);
  topic.rows.reset();                                 // kept as one text again, until the next row change
  if (tape != nullptr) std::swap(topic.tape, *tape);  // the old tape's buffer is the spare
  installText(topic, json, version, tape != nullptr);
  afterInstall(topic, ops, result);
}

std::string TopicStore::takeSpareOps() noexcept {
  std::string ops = std::move(spareOps_);  // the buffer of an earlier change's patch (recycle), if any
  ops.clear();
  return ops;
}

ChangeResult TopicStore::patch(std::string_view topic, std::string_view ops, std::string_view changeId,
                               std::int64_t now) {
  if (std::optional<ChangeResult> early = admit(topic, changeId, now)) return std::move(*early);
  const auto it = topics_.find(topic);
  if (it != topics_.end() && options_.keepRows) {
    if (std::optional<ChangeResult> done = patchRows(it, ops, changeId, now)) return std::move(*done);
  }
  // A topic that does not exist is the document `null`: `add`/`replace` at ""
  // creates it, anything else fails with DELTACAST_PATH_NOT_FOUND.
  const std::string_view current =
      it == topics_.end() ? std::string_view("null") : std::string_view(it->second.snapshot->json.str());
  // Applied on the text with numbers kept as text, so what the patch does not
  // touch is written back byte for byte (the diff then finds only the change).
  // The limits hold while applying, not only on the result.
  PatchLimits limits{options_.limits, options_.maxPatchOps, options_.limits};
  // A patch may carry a value of the full size and depth inside its
  // operation objects.
  limits.patchText.maxBytes = options_.limits.maxBytes * 2 + 4096;
  limits.patchText.maxDepth = std::max<std::uint32_t>(options_.limits.maxDepth + 2, ParseLimits{}.maxDepth);
  std::string json;
  if (Status s = applyPatchJson(current, ops, json, limits); !s) {
    return reject(std::move(s));
  }
  if (it == topics_.end() && json == "null") {  // a patch that leaves a missing topic null creates nothing
    remember(changeId, now);
    bump(unchanged_, 1);
    return ChangeResult{};
  }
  return commit(topic, std::move(json), changeId, now, it == topics_.end() ? nullptr : &ensureTape(it->second));
}

ChangeResult TopicStore::upsert(std::string_view topic, std::string_view keyJson, std::string rowJson,
                                std::string_view changeId, std::int64_t now) {
  if (std::optional<ChangeResult> early = admit(topic, changeId, now)) return std::move(*early);
  JsonTape row;
  // A row one level less deep than the limit fits in the array; one that
  // does not is parsed again with the full limit, for the error it had
  // before (or the whole-text path, whose parse then refuses the value).
  bool fitsInArray = true;
  if (Status s = row.parse(rowJson, rowLimits(options_.limits)); !s) {
    fitsInArray = false;
    if (s.code() != ErrorCode::TooDeep) return reject(Status(s.code(), "row: " + s.message()));
    if (Status full = row.parse(rowJson, options_.limits); !full) {
      return reject(Status(full.code(), "row: " + full.message()));
    }
  }
  const std::string_view rowKey = keyOf(row, 0, options_.arrayKey);
  if (rowKey.empty() || !sameRowKey(rowKey, keyJson)) {
    return reject(Status(ErrorCode::InvalidArgument, "the row must be an object whose " + quoted(options_.arrayKey) +
                                                         " is " + std::string(keyJson)));
  }
  const char* const parsed = rowJson.data();
  if (!row.compact()) {
    std::string compact;
    appendMinified(rowJson, compact);
    rowJson = std::move(compact);
  }
  // The tape must index the text kept (compacted, or moved: a short string's
  // bytes move with it).
  std::string rowText = std::move(rowJson);
  if (rowText.data() != parsed || !row.compact()) (void)row.parse(rowText, options_.limits);
  const auto it = topics_.find(topic);
  if (it == topics_.end()) return commit(topic, "[" + rowText + "]", changeId, now, nullptr);
  if (fitsInArray && keepAsRows(it->second)) {
    if (std::optional<ChangeResult> done = upsertRow(it->second, rowText, row, changeId, now)) {
      return std::move(*done);
    }
  }

  const JsonTape& tape = ensureTape(it->second);
  std::uint32_t node = 0;
  std::uint32_t previous = 0;
  if (Status s = findRow(tape, topic, options_.arrayKey, keyJson, node, previous); !s) {
    return reject(std::move(s));
  }
  const std::string& current = it->second.snapshot->json.str();
  std::string json;
  json.reserve(current.size() + rowText.size() + 1);
  if (node != 0) {
    json.append(current, 0, tape[node].begin);
    json.append(rowText);
    json.append(current, tape[node].end, std::string::npos);
  } else {
    const std::uint32_t close = tape[0].end - 1;  // the root array's ']'
    json.append(current, 0, close);
    if (tape[0].count > 0) json.push_back(',');
    json.append(rowText);
    json.append(current, close, std::string::npos);
  }
  return commit(topic, std::move(json), changeId, now, &tape);
}

ChangeResult TopicStore::remove(std::string_view topic, std::string_view keyJson, std::string_view changeId,
                                std::int64_t now) {
  if (std::optional<ChangeResult> early = admit(topic, changeId, now)) return std::move(*early);
  const auto it = topics_.find(topic);
  if (it == topics_.end()) {
    return reject(Status(ErrorCode::NotKeyedArray, "topic " + quoted(topic) + " does not exist"));
  }
  if (keepAsRows(it->second)) {
    if (std::optional<ChangeResult> done = removeRow(it->second, keyJson, changeId, now)) return std::move(*done);
  }
  const JsonTape& tape = ensureTape(it->second);
  std::uint32_t node = 0;
  std::uint32_t previous = 0;
  if (Status s = findRow(tape, topic, options_.arrayKey, keyJson, node, previous); !s) {
    return reject(std::move(s));
  }
  if (node == 0) return unchanged(it->second, changeId, now);  // no such row: the producer touched the topic
  const std::string& current = it->second.snapshot->json.str();
  std::string json;
  json.reserve(current.size());
  const std::uint32_t next = tape[node].next;
  if (next < tape[0].next) {  // not the last row: drop "row,"
    json.append(current, 0, tape[node].begin);
    json.append(current, tape[next].begin, std::string::npos);
  } else if (previous != 0) {  // the last of several: drop ",row"
    json.append(current, 0, tape[previous].end);
    json.append(current, tape[node].end, std::string::npos);
  } else {  // the only row
    json.append(current, 0, tape[node].begin);
    json.append(current, tape[node].end, std::string::npos);
  }
  return commit(topic, std::move(json), changeId, now, &tape);
}

ChangeResult TopicStore::replicate(std::string_view topic, std::string_view epoch, std::uint64_t version,
                                   ReplicaMode mode, std::string payload, std::int64_t now) {
  if (Status s = validateTopic(topic, options_.maxTopicLength); !s) return reject(std::move(s));
  const auto here = [&] {  // the local (epoch, version), which is what every answer carries
    ChangeResult result;
    if (const auto it = topics_.find(topic); it != topics_.end()) {
      result.version = it->second.snapshot->version;
      result.epoch = it->second.snapshot->epoch;
    }
    return result;
  };
  auto it = topics_.find(topic);
  const bool sameEpoch = it != topics_.end() && it->second.snapshot->epoch == epoch;
  const std::uint64_t local = sameEpoch ? it->second.snapshot->version : 0;
  switch (mode) {
    case ReplicaMode::Absent:
      if (it != topics_.end()) eraseTopic(it, Removal::Deleted);
      return here();
    case ReplicaMode::History: return replicaHistory(topic, sameEpoch ? version : 0, payload);
    case ReplicaMode::Patch: {
      if (!sameEpoch || version != local + 1) return here();  // stale: the caller sends the state
      ChangeResult result = patch(topic, payload, {}, now);
      if (!result.status || result.version != version) return here();
      return result;
    }
    case ReplicaMode::State: break;
  }
  if (sameEpoch && version <= local) return here();
  if (sameEpoch && version == local + 1) {
    ChangeResult result = commit(topic, payload, {}, now, &ensureTape(it->second));
    if (!result.status || result.version == version) return result;
    it = topics_.find(topic);  // the same value at another version: reset below
  }
  // A reset: the topic is made again at (epoch, version), unreported (its
  // subscribers stay and get the net change or a snapshot).
  if (it != topics_.end()) {
    const bool report = reportRemovals_;
    reportRemovals_ = false;
    eraseTopic(it, Removal::Deleted);
    reportRemovals_ = report;
  }
  forced_ = Forced{epoch, version};
  ChangeResult result = commit(topic, std::move(payload), {}, now, nullptr);
  forced_.reset();
  return result;
}

ChangeResult TopicStore::replicaHistory(std::string_view topicName, std::uint64_t version, std::string_view payload) {
  const auto it = topics_.find(topicName);
  ChangeResult result;
  if (it == topics_.end()) return result;
  Topic& topic = it->second;
  result.version = topic.snapshot->version;
  result.epoch = topic.snapshot->epoch;
  if (version == 0 || version != topic.snapshot->version) return result;
  JsonTape tape;
  if (Status s = tape.parse(payload, options_.limits); !s || tape[0].type != JsonType::Array) return result;
  std::vector<HistoryEntry> entries;
  std::size_t bytes = 0;
  // Steps end at `version`, so at most version - 1 of them (from 1): the
  // oldest of a longer list would start below version 1 (before: the count
  // wrapped, a step from 2^64 - 1 stood first and hid every other one from
  // historySince); they are dropped.
  const std::uint64_t count = tape[0].count;
  const std::uint64_t skip = count >= version ? count - (version - 1) : 0;
  std::uint64_t to = version - (count - skip);
  std::uint64_t index = 0;
  for (std::uint32_t e = 1; e < tape[0].next; e = tape[e].next) {
    if (tape[e].type != JsonType::Array) return result;
    if (index++ < skip) continue;
    ++to;
    entries.push_back(HistoryEntry{to - 1, to, std::string(tape.raw(e))});
    if (!tape.compact()) {
      std::string compact;
      appendMinified(entries.back().ops, compact);
      entries.back().ops = std::move(compact);
    }
    bytes += entries.back().ops.size();
  }
  if (entries.size() <= topic.history.size()) return result;  // what it has covers as much
  std::size_t dropped = 0;  // the oldest steps over the count or the bytes, erased at once
  while (dropped < entries.size() &&
         (entries.size() - dropped > options_.historyCount || bytes > options_.historyBytes)) {
    bytes -= entries[dropped++].ops.size();
  }
  entries.erase(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(dropped));
  drop(historyByteCount_, topic.historyBytes);
  bump(historyByteCount_, bytes);
  topic.history.assign(entries, &pool_);
  topic.historyBytes = bytes;
  account(topic);
  enforceBudget(&topic);
  return result;
}

void TopicStore::recycle(std::string ops) noexcept {
  if (ops.capacity() <= kSpareOpsBytes) spareOps_ = std::move(ops);
}

bool TopicStore::erase(std::string_view topic) {
  const auto it = topics_.find(topic);
  if (it == topics_.end()) return false;
  eraseTopic(it, Removal::Deleted);
  return true;
}

bool TopicStore::expiredSince(std::string_view topic, std::int64_t changedAt) const {
  if (!advancedTo_ || topics_.find(topic) != topics_.end()) return false;
  const std::int64_t ttl = ttlFor(topic);
  return ttl > 0 && *advancedTo_ >= changedAt + ttl;  // as the expiry a change makes (commit)
}

bool TopicStore::expire(std::string_view topic) {
  const auto it = topics_.find(topic);
  if (it == topics_.end()) return false;
  eraseTopic(it, Removal::Expired);
  bump(expirations_, 1);
  return true;
}

void TopicStore::advance(std::int64_t now) {
  advancedTo_ = now;
  while (!recentIds_.empty() && recentIds_.front().second + options_.dedupWindowMs <= now) {
    recentIdSet_.erase(recentIds_.front().first);
    recentIds_.pop_front();
  }
  while (!expiries_.empty() && expiries_.top().at <= now) {
    Expiry expiry = expiries_.top();
    expiries_.pop();
    const auto it = topics_.find(expiry.topic);
    if (it == topics_.end()) continue;
    Topic& topic = it->second;
    const std::int64_t due = topic.lastChange + topic.ttlMs;
    if (due <= now) {
      eraseTopic(it, Removal::Expired);
      bump(expirations_, 1);
    } else {
      expiries_.push(Expiry{due, std::move(expiry.topic)});
    }
  }
}

std::vector<HistoryStep> TopicStore::historySince(std::string_view topic, std::uint64_t version) const {
  std::vector<HistoryStep> steps;
  const auto it = topics_.find(topic);
  if (it == topics_.end()) return steps;
  const HistoryRing& history = it->second.history;
  for (std::size_t i = 0; i < history.size(); ++i) {
    if (history[i].from >= version) steps.push_back(history[i]);
  }
  if (steps.empty() || steps.front().from != version) steps.clear();
  return steps;
}

bool TopicStore::diffFrom(const Snapshot& base, std::string_view topic, std::string& ops) const {
  const auto it = topics_.find(topic);
  if (it == topics_.end() || it->second.snapshot->epoch != base.epoch) return false;
  const JsonTape& current = ensureTape(it->second);
  JsonTape baseTape;
  if (!baseTape.parse(base.json.str(), options_.limits, &current)) return false;
  return static_cast<bool>(diffTapes(baseTape, current, diffOptions_, ops));
}

std::shared_ptr<const Snapshot> TopicStore::get(std::string_view topic) const {
  std::shared_lock lock(mutex_);
  const auto it = topics_.find(topic);
  if (it == topics_.end()) return nullptr;
  return it->second.snapshot;
}

void TopicStore::prefetch(std::string_view topic, Lookup& lookup, int stage) const noexcept {
  // No lock: hints read only what the core thread itself writes (readers on
  // other threads take the lock; the core thread is the only writer).
  switch (stage) {
    case 0: topics_.prefetchSlot(lookup.hash); return;
    case 1: topics_.prefetchEntry(lookup.hash); return;
    default: break;
  }
  if (stage == 2) {
    lookup.entry = topics_.find(topic, lookup.hash);
    lookup.erasures = erasures_;
    if (lookup.entry == nullptr) return;
    const Topic& t = static_cast<TopicMap::iterator>(lookup.entry)->second;  // (found() now: erasures were just read)
    // Both lines of the snapshot: its version is in the second.
    __builtin_prefetch(t.snapshot.get());
    __builtin_prefetch(reinterpret_cast<const char*>(t.snapshot.get()) + sizeof(Snapshot) - 1);
    if (!t.tape.empty()) __builtin_prefetch(&t.tape[0]);
    t.history.prefetchNext();
    __builtin_prefetch(&*t.lru, 1);
    return;
  }
  // Stage 3: what stage 2 loaded points further. The text is freed when the
  // snapshot is replaced; the LRU neighbours are written when the topic
  // moves to the front.
  const auto it = found(lookup);
  if (it == topics_.end()) return;
  const Topic& t = it->second;
  t.snapshot->json.prefetch();
  if (t.lru != lru_.begin()) __builtin_prefetch(&*std::prev(t.lru), 1);
  if (std::next(t.lru) != lru_.end()) __builtin_prefetch(&*std::next(t.lru), 1);
}

StoreStats TopicStore::stats() const {
  StoreStats stats;
  stats.topics = topicCount_.load(std::memory_order_relaxed);
  stats.bytes = byteCount_.load(std::memory_order_relaxed);
  stats.memoryBudget = options_.memoryBudget;
  stats.changes = changes_.load(std::memory_order_relaxed);
  stats.unchanged = unchanged_.load(std::memory_order_relaxed);
  stats.duplicates = duplicates_.load(std::memory_order_relaxed);
  stats.rejected = rejected_.load(std::memory_order_relaxed);
  stats.evictions = evictions_.load(std::memory_order_relaxed);
  stats.expirations = expirations_.load(std::memory_order_relaxed);
  stats.historyBytes = historyByteCount_.load(std::memory_order_relaxed);
  return stats;
}

}  // namespace deltacast
