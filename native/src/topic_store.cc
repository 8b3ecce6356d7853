#include "deltacast/topic_store.h"

#include <algorithm>
#include <mutex>

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
constexpr std::size_t kEpochLength = 12;

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

}  // namespace

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
  rejected_.fetch_add(1, std::memory_order_relaxed);
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
  const std::size_t bytes =
      baseBytes(topic.snapshot->json.size(), topic.tape.capacity(), topic.name->size()) + topic.historyBytes;
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
  historyByteCount_.fetch_sub(topic.historyBytes, std::memory_order_relaxed);
  lru_.erase(topic.lru);
  {
    std::unique_lock lock(mutex_);
    topics_.erase(it);
  }
  topicCount_.store(topics_.size(), std::memory_order_relaxed);
  byteCount_.store(bytes_, std::memory_order_relaxed);
}

void TopicStore::enforceBudget(const Topic* keep) {
  if (options_.memoryBudget == 0) return;
  while (bytes_ > options_.memoryBudget && !lru_.empty()) {
    Topic* victim = lru_.back();
    if (victim == keep) break;  // the newest topic alone is within the budget (checked before commit)
    eraseTopic(topics_.find(*victim->name), Removal::Evicted);
    evictions_.fetch_add(1, std::memory_order_relaxed);
  }
}

ChangeResult TopicStore::commit(std::string_view topicName, std::string json, std::string_view changeId,
                                std::int64_t now, const JsonTape* guide) {
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->json = std::move(json);
  JsonTape tape;
  if (Status s = tape.parse(snapshot->json, options_.limits, guide); !s) return reject(std::move(s));
  if (!tape.compact()) {
    std::string compact;
    compact.reserve(snapshot->json.size());
    appendMinified(snapshot->json, compact);
    snapshot->json = std::move(compact);
    if (Status s = tape.parse(snapshot->json, options_.limits, guide); !s) return reject(std::move(s));
  }
  tape.releaseSpareCapacity();
  const std::size_t estimate = baseBytes(snapshot->json.size(), tape.capacity(), topicName.size());
  if (options_.memoryBudget != 0 && estimate > options_.memoryBudget) {
    return reject(Status(ErrorCode::TooLarge, "topic " + quoted(topicName) + " would take " + std::to_string(estimate) +
                                                  " bytes, over the memory budget of " +
                                                  std::to_string(options_.memoryBudget) + " bytes"));
  }

  ChangeResult result;
  auto it = topics_.find(topicName);
  if (it != topics_.end()) {
    Topic& topic = it->second;
    std::string ops;
    (void)diffTapes(topic.tape, tape, diffOptions_, ops);
    topic.lastChange = now;
    touch(topic);
    remember(changeId, now);
    result.epoch = topic.snapshot->epoch;
    if (ops == "[]") {
      unchanged_.fetch_add(1, std::memory_order_relaxed);
      result.version = topic.snapshot->version;
      return result;
    }
    snapshot->version = topic.snapshot->version + 1;
    snapshot->epoch = topic.snapshot->epoch;
    // History: the newest patch at the back; the ring drops the oldest, also
    // when the topic alone would not fit the memory budget with it (history
    // only saves resuming clients a snapshot).
    topic.history.push_back(HistoryEntry{topic.snapshot->version, snapshot->version, ops});
    topic.historyBytes += ops.size();
    historyByteCount_.fetch_add(ops.size(), std::memory_order_relaxed);
    const auto overBudget = [&] {
      return options_.memoryBudget != 0 && estimate + topic.historyBytes > options_.memoryBudget;
    };
    while (!topic.history.empty() && (topic.history.size() > options_.historyCount ||
                                      topic.historyBytes > options_.historyBytes || overBudget())) {
      topic.historyBytes -= topic.history.front().ops.size();
      historyByteCount_.fetch_sub(topic.history.front().ops.size(), std::memory_order_relaxed);
      topic.history.erase(topic.history.begin());
    }
    {
      std::unique_lock lock(mutex_);
      topic.snapshot = snapshot;
    }
    topic.tape = std::move(tape);  // its text lives in the snapshot it now refers to
    result.changed = true;
    result.version = snapshot->version;
    result.ops = std::move(ops);
    account(topic);
    enforceBudget(&topic);
    changes_.fetch_add(1, std::memory_order_relaxed);
    return result;
  }

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
  changes_.fetch_add(1, std::memory_order_relaxed);
  result.changed = true;
  result.created = true;
  result.version = snapshot->version;
  result.epoch = snapshot->epoch;
  return result;
}

std::optional<ChangeResult> TopicStore::admit(std::string_view topic, std::string_view changeId, std::int64_t now) {
  if (Status s = validateTopic(topic, options_.maxTopicLength); !s) return reject(std::move(s));
  if (!seen(changeId, now)) return std::nullopt;
  duplicates_.fetch_add(1, std::memory_order_relaxed);
  ChangeResult result;
  result.duplicate = true;
  return result;
}

ChangeResult TopicStore::publishJson(std::string_view topic, std::string json, std::string_view changeId,
                                     std::int64_t now) {
  if (std::optional<ChangeResult> early = admit(topic, changeId, now)) return std::move(*early);
  const auto it = topics_.find(topic);
  return commit(topic, std::move(json), changeId, now, it == topics_.end() ? nullptr : &it->second.tape);
}

ChangeResult TopicStore::patch(std::string_view topic, std::string_view ops, std::string_view changeId,
                               std::int64_t now) {
  if (std::optional<ChangeResult> early = admit(topic, changeId, now)) return std::move(*early);
  const auto it = topics_.find(topic);
  // A topic that does not exist is the document `null`: `add`/`replace` at ""
  // creates it, anything else fails with DELTACAST_PATH_NOT_FOUND.
  const std::string_view current = it == topics_.end() ? std::string_view("null") : it->second.snapshot->json;
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
    unchanged_.fetch_add(1, std::memory_order_relaxed);
    return ChangeResult{};
  }
  return commit(topic, std::move(json), changeId, now, it == topics_.end() ? nullptr : &it->second.tape);
}

ChangeResult TopicStore::upsert(std::string_view topic, std::string_view keyJson, std::string rowJson,
                                std::string_view changeId, std::int64_t now) {
  if (std::optional<ChangeResult> early = admit(topic, changeId, now)) return std::move(*early);
  JsonTape row;
  if (Status s = row.parse(rowJson, options_.limits); !s) return reject(Status(s.code(), "row: " + s.message()));
  const std::string_view rowKey = keyOf(row, 0, options_.arrayKey);
  if (rowKey.empty() || !sameRowKey(rowKey, keyJson)) {
    return reject(Status(ErrorCode::InvalidArgument, "the row must be an object whose " + quoted(options_.arrayKey) +
                                                         " is " + std::string(keyJson)));
  }
  if (!row.compact()) {
    std::string compact;
    appendMinified(rowJson, compact);
    rowJson = std::move(compact);
  }
  const auto it = topics_.find(topic);
  if (it == topics_.end()) return commit(topic, "[" + rowJson + "]", changeId, now, nullptr);

  const JsonTape& tape = it->second.tape;
  std::uint32_t node = 0;
  std::uint32_t previous = 0;
  if (Status s = findRow(tape, topic, options_.arrayKey, keyJson, node, previous); !s) {
    return reject(std::move(s));
  }
  const std::string& current = it->second.snapshot->json;
  std::string json;
  json.reserve(current.size() + rowJson.size() + 1);
  if (node != 0) {
    json.append(current, 0, tape[node].begin);
    json.append(rowJson);
    json.append(current, tape[node].end, std::string::npos);
  } else {
    const std::uint32_t close = tape[0].end - 1;  // the root array's ']'
    json.append(current, 0, close);
    if (tape[0].count > 0) json.push_back(',');
    json.append(rowJson);
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
  const JsonTape& tape = it->second.tape;
  std::uint32_t node = 0;
  std::uint32_t previous = 0;
  if (Status s = findRow(tape, topic, options_.arrayKey, keyJson, node, previous); !s) {
    return reject(std::move(s));
  }
  if (node == 0) {  // no such row: nothing changes, but the producer touched the topic
    remember(changeId, now);
    it->second.lastChange = now;
    touch(it->second);
    unchanged_.fetch_add(1, std::memory_order_relaxed);
    ChangeResult result;
    result.version = it->second.snapshot->version;
    result.epoch = it->second.snapshot->epoch;
    return result;
  }
  const std::string& current = it->second.snapshot->json;
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
    ChangeResult result = commit(topic, payload, {}, now, &it->second.tape);
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
  std::uint64_t to = version - tape[0].count;
  for (std::uint32_t e = 1; e < tape[0].next; e = tape[e].next) {
    if (tape[e].type != JsonType::Array) return result;
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
  while (!entries.empty() && (entries.size() > options_.historyCount || bytes > options_.historyBytes)) {
    bytes -= entries.front().ops.size();
    entries.erase(entries.begin());
  }
  historyByteCount_.fetch_sub(topic.historyBytes, std::memory_order_relaxed);
  historyByteCount_.fetch_add(bytes, std::memory_order_relaxed);
  topic.history = std::move(entries);
  topic.historyBytes = bytes;
  account(topic);
  enforceBudget(&topic);
  return result;
}

bool TopicStore::erase(std::string_view topic) {
  const auto it = topics_.find(topic);
  if (it == topics_.end()) return false;
  eraseTopic(it, Removal::Deleted);
  return true;
}

void TopicStore::advance(std::int64_t now) {
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
      expirations_.fetch_add(1, std::memory_order_relaxed);
    } else {
      expiries_.push(Expiry{due, std::move(expiry.topic)});
    }
  }
}

std::vector<const HistoryEntry*> TopicStore::historySince(std::string_view topic, std::uint64_t version) const {
  std::vector<const HistoryEntry*> steps;
  const auto it = topics_.find(topic);
  if (it == topics_.end()) return steps;
  for (const HistoryEntry& entry : it->second.history) {
    if (entry.from >= version) steps.push_back(&entry);
  }
  if (steps.empty() || steps.front()->from != version) steps.clear();
  return steps;
}

bool TopicStore::diffFrom(const Snapshot& base, std::string_view topic, std::string& ops) const {
  const auto it = topics_.find(topic);
  if (it == topics_.end() || it->second.snapshot->epoch != base.epoch) return false;
  JsonTape baseTape;
  if (!baseTape.parse(base.json, options_.limits, &it->second.tape)) return false;
  return static_cast<bool>(diffTapes(baseTape, it->second.tape, diffOptions_, ops));
}

std::shared_ptr<const Snapshot> TopicStore::get(std::string_view topic) const {
  std::shared_lock lock(mutex_);
  const auto it = topics_.find(topic);
  if (it == topics_.end()) return nullptr;
  return it->second.snapshot;
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
