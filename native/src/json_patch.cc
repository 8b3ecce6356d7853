#include "deltacast/json_patch.h"

#include <rapidjson/internal/dtoa.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <vector>

#include "deltacast/json_pointer.h"
#include "text_util.h"

namespace deltacast {

namespace {

using rapidjson::Value;
using Segments = std::vector<std::string>;

// One entry of the undo log. Containers are found again by their path when
// undoing (addresses move when a parent array grows), so entries hold paths,
// never pointers.
struct UndoStep {
  enum class Kind : std::uint8_t {
    SetRoot,       // old: the previous document
    SetMember,     // parent/name: the member existed; old: its previous value
    AddedMember,   // parent/name: the member was added
    ErasedMember,  // parent/name/index: the member was removed from position index; old: its value
    InsertedItem,  // parent/index: an element was inserted
    ErasedItem,    // parent/index: an element was removed; old: it
    SetItem,       // parent/index: an element was replaced; old: the previous one
  };
  Kind kind;
  Segments parent;
  std::string name;
  std::size_t index = 0;
  Value old;
  std::size_t bytes = 0;  // the document's compact size before the step
  // The step added the value a `move` took out by the step before it: undoing
  // it hands the value back to that step (so a move copies nothing).
  bool moved = false;
};

constexpr char kNumberTag = '\xFF';  // first byte of a number kept as text (never in UTF-8)

bool isTextNumber(const Value& value) {
  return value.IsString() && value.GetStringLength() > 0 && value.GetString()[0] == kNumberTag;
}

// A JSON string (not a number kept as text).
bool isJsonString(const Value& value) { return value.IsString() && !isTextNumber(value); }

std::string_view stringOf(const Value& value) { return {value.GetString(), value.GetStringLength()}; }

// Moves the last member of `object` to position `index`, keeping the order of
// the others (one memmove: RapidJSON values are relocatable, and RapidJSON's
// own Erase moves them the same way).
void rotateLastMemberTo(Value& object, std::size_t index) {
  const std::size_t count = object.MemberCount();
  if (index + 1 >= count) return;
  auto* members = &*object.MemberBegin();
  alignas(Value::Member) unsigned char last[sizeof(Value::Member)];
  std::memcpy(static_cast<void*>(last), static_cast<void*>(members + count - 1), sizeof(Value::Member));
  std::memmove(static_cast<void*>(members + index + 1), static_cast<void*>(members + index),
               (count - 1 - index) * sizeof(Value::Member));
  std::memcpy(static_cast<void*>(members + index), static_cast<void*>(last), sizeof(Value::Member));
}

void rotateLastElementTo(Value& array, std::size_t index) {
  const std::size_t count = array.Size();
  if (index + 1 >= count) return;
  Value* elements = array.Begin();
  alignas(Value) unsigned char last[sizeof(Value)];
  std::memcpy(static_cast<void*>(last), static_cast<void*>(elements + count - 1), sizeof(Value));
  std::memmove(static_cast<void*>(elements + index + 1), static_cast<void*>(elements + index),
               (count - 1 - index) * sizeof(Value));
  std::memcpy(static_cast<void*>(elements + index), static_cast<void*>(last), sizeof(Value));
}

// Bytes of `s` written as the content of a JSON string by appendJsonEscaped.
std::size_t escapedLength(std::string_view s) {
  std::size_t length = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == 0xED && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0xA0) {
      length += 6;
      i += 2;
    } else if (c >= 0x20 && c != '"' && c != '\\') {
      length += 1;
    } else if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
      length += 2;
    } else {
      length += 6;
    }
  }
  return length;
}

void serialize(const Value& value, std::string& out);

// The compact text size of a value and its nesting (containers on the deepest
// path: 0 for a scalar, 1 for [] or {}).
struct Measure {
  std::size_t bytes = 0;
  std::uint32_t depth = 0;
};

void measureInto(const Value& value, std::uint32_t level, Measure& m) {
  switch (value.GetType()) {
    case rapidjson::kNullType: m.bytes += 4; return;
    case rapidjson::kFalseType: m.bytes += 5; return;
    case rapidjson::kTrueType: m.bytes += 4; return;
    case rapidjson::kStringType:
      m.bytes += isTextNumber(value) ? value.GetStringLength() - 1 : escapedLength(stringOf(value)) + 2;
      return;
    case rapidjson::kNumberType: {
      std::string text;
      serialize(value, text);
      m.bytes += text.size();
      return;
    }
    case rapidjson::kArrayType:
      m.depth = std::max(m.depth, level + 1);
      m.bytes += 2 + (value.Size() > 0 ? value.Size() - 1 : 0);
      for (const Value& element : value.GetArray()) measureInto(element, level + 1, m);
      return;
    case rapidjson::kObjectType:
      m.depth = std::max(m.depth, level + 1);
      m.bytes += 2 + (value.MemberCount() > 0 ? value.MemberCount() - 1 : 0);
      for (const auto& member : value.GetObject()) {
        m.bytes += escapedLength(stringOf(member.name)) + 3;
        measureInto(member.value, level + 1, m);
      }
      return;
  }
}

Measure measure(const Value& value) {
  Measure m;
  measureInto(value, 0, m);
  return m;
}

// The decimal exponent of a valid JSON number's first significant digit
// (1234 gives 3, 0.05 gives -2, 5e-400 gives -400), saturated far beyond
// any double's range; only its sign matters to the caller, for a number
// from_chars found out of range (which is never zero).
std::int64_t decimalMagnitude(std::string_view raw) {
  constexpr std::int64_t kFar = std::int64_t{1} << 40;
  std::size_t i = raw.empty() || raw.front() != '-' ? 0 : 1;
  std::int64_t magnitude = 0;
  bool significant = false;
  for (; i < raw.size() && raw[i] >= '0' && raw[i] <= '9'; ++i) {
    if (significant)
      ++magnitude;
    else if (raw[i] != '0')
      significant = true;
  }
  if (i < raw.size() && raw[i] == '.') {
    for (++i; i < raw.size() && raw[i] >= '0' && raw[i] <= '9'; ++i) {
      if (!significant) {
        --magnitude;
        if (raw[i] != '0') significant = true;
      }
    }
  }
  if (i < raw.size() && (raw[i] == 'e' || raw[i] == 'E')) {
    ++i;
    const bool negative = i < raw.size() && raw[i] == '-';
    if (i < raw.size() && (raw[i] == '-' || raw[i] == '+')) ++i;
    std::int64_t exponent = 0;
    for (; i < raw.size() && raw[i] >= '0' && raw[i] <= '9'; ++i)
      exponent = std::min(kFar, exponent * 10 + (raw[i] - '0'));
    magnitude += negative ? -exponent : exponent;
  }
  return magnitude;
}

// A JSON number's text as a double. Out of range, it is what JSON.parse gives
// (+-Infinity, or 0 for an underflow) made finite: +-DBL_MAX, since JSON
// carries neither Infinity nor NaN. Numbers held as text (`test` comparisons)
// and parsed ones (the document form) go through here alike, so both forms
// compare 5e-400 equal to 0 and 1e400 equal to 2e400, as a JavaScript client
// applying the patch does.
double doubleOfNumberText(std::string_view raw) {
  double d = 0;
  const auto result = std::from_chars(raw.data(), raw.data() + raw.size(), d);
  if (result.ec == std::errc::result_out_of_range) {
    d = decimalMagnitude(raw) > 0
            ? (raw.front() == '-' ? -std::numeric_limits<double>::max() : std::numeric_limits<double>::max())
            : 0.0;
  }
  return d;
}

// A number's value for `test` comparisons.
double numberValue(const Value& value) {
  return isTextNumber(value) ? doubleOfNumberText(stringOf(value).substr(1)) : value.GetDouble();
}

bool isIntegerText(std::string_view text) { return text.find_first_of(".eE") == std::string_view::npos; }

bool isZeroText(std::string_view text) {
  if (!text.empty() && text.front() == '-') text.remove_prefix(1);
  return text == "0";
}

// JSON equality (RFC 6902 `test`): numbers by value (integers beyond double
// precision exactly), objects regardless of member order.
bool jsonEqual(const Value& a, const Value& b);

bool numbersEqual(const Value& a, const Value& b) {
  if (isTextNumber(a) && isTextNumber(b)) {
    const std::string_view ta = stringOf(a).substr(1);
    const std::string_view tb = stringOf(b).substr(1);
    if (ta == tb) return true;
    if (isIntegerText(ta) && isIntegerText(tb)) return isZeroText(ta) && isZeroText(tb);
  }
  return numberValue(a) == numberValue(b);
}

bool isNumber(const Value& value) { return value.IsNumber() || isTextNumber(value); }

bool jsonEqual(const Value& a, const Value& b) {
  if (isNumber(a) || isNumber(b)) return isNumber(a) && isNumber(b) && numbersEqual(a, b);
  if (a.GetType() != b.GetType()) return false;
  switch (a.GetType()) {
    case rapidjson::kStringType: return stringOf(a) == stringOf(b);
    case rapidjson::kArrayType: {
      if (a.Size() != b.Size()) return false;
      for (rapidjson::SizeType i = 0; i < a.Size(); ++i) {
        if (!jsonEqual(a[i], b[i])) return false;
      }
      return true;
    }
    case rapidjson::kObjectType: {
      if (a.MemberCount() != b.MemberCount()) return false;
      std::unordered_map<std::string_view, const Value*> members;
      members.reserve(b.MemberCount());
      for (const auto& member : b.GetObject()) members.emplace(stringOf(member.name), &member.value);
      for (const auto& member : a.GetObject()) {
        const auto it = members.find(stringOf(member.name));
        if (it == members.end() || !jsonEqual(member.value, *it->second)) return false;
      }
      return true;
    }
    default: return true;  // null, true, false
  }
}

class Patcher {
 public:
  Patcher(rapidjson::Document& doc, const PatchLimits& limits)
      : doc_(doc), allocator_(doc.GetAllocator()), limits_(limits) {}

  Status apply(const Value& ops) {
    if (!ops.IsArray()) return Status(ErrorCode::InvalidPatch, "a patch must be an array of operations");
    if (ops.Size() > limits_.maxOps) {
      return Status(ErrorCode::TooManyOps, "a patch of " + std::to_string(ops.Size()) +
                                               " operations is over the limit of " + std::to_string(limits_.maxOps) +
                                               " (limits.maxPatchOps)");
    }
    // The whole patch is checked for shape first, so a malformed operation is
    // reported whatever the document holds.
    for (rapidjson::SizeType i = 0; i < ops.Size(); ++i) {
      operation_ = i;
      if (Status status = check(ops[i]); !status) return status;
    }
    bytes_ = measure(doc_).bytes;
    budget_ = budgetFor(bytes_, measure(ops).bytes);
    for (rapidjson::SizeType i = 0; i < ops.Size(); ++i) {
      operation_ = i;
      Status status = applyOne(ops[i]);
      if (status && work_ > budget_) status = overBudget();
      if (!status) {
        rollback();
        return status;
      }
    }
    return Status::ok();
  }

 private:
  // ---- errors ---------------------------------------------------------------

  Status error(ErrorCode code, const std::string& what) const {
    return Status(
        code, "operation " + std::to_string(operation_) + (opName_.empty() ? "" : " (" + opName_ + ")") + ": " + what);
  }

  // ---- limits ---------------------------------------------------------------
  //
  // Work: the bytes of existing values an operation walks or copies (a
  // replaced, removed or moved value is measured once, a copied one measured
  // and built), plus what shifting array elements and members costs (a
  // memmove: 2 units per element, 4 per member, and renumbering a member
  // index). A patch whose work passes kWorkFactor times the size of the
  // document and the patch, plus kMinWorkBudget, is refused with
  // DELTACAST_TOO_LARGE, before a copy that would pass it is built: so one
  // patch costs at most about what publishing the whole document a few times
  // costs, where maxOps operations that each copy or shift a large part of
  // the document would otherwise hold the core thread for minutes.

  static constexpr std::size_t kWorkFactor = 2;
  static constexpr std::size_t kMinWorkBudget = std::size_t{32} << 20;

  static std::size_t budgetFor(std::size_t documentBytes, std::size_t patchBytes) {
    const std::size_t base = documentBytes + patchBytes;
    if (base < documentBytes || base > (SIZE_MAX - kMinWorkBudget) / kWorkFactor) return SIZE_MAX;
    return base * kWorkFactor + kMinWorkBudget;
  }

  void spend(std::size_t units) { work_ = units > SIZE_MAX - work_ ? SIZE_MAX : work_ + units; }

  Status overBudget() const {
    return error(ErrorCode::TooLarge,
                 "the patch would walk, copy or shift more than " + std::to_string(budget_) + " bytes (" +
                     std::to_string(kWorkFactor) +
                     " times the document and the patch, plus 32 MiB); split it into smaller patches");
  }

  // measure() of a value already in the document, counted as work.
  Measure walk(const Value& value) {
    const Measure m = measure(value);
    spend(m.bytes);
    return m;
  }
  //
  // bytes_ is the compact text size of the document as it stands. Every
  // change is checked against the limits before it is made (and before a
  // `copy` builds its value).

  // Refuses a value of nesting `depth` placed under `segments`, or a change
  // that would make the document `growth` bytes larger.
  Status admit(const Segments& segments, std::uint32_t depth, std::size_t growth) const {
    if (segments.size() + depth > limits_.value.maxDepth) {
      return error(ErrorCode::TooDeep, "the result would nest " + std::to_string(segments.size() + depth) +
                                           " levels, over the limit of " + std::to_string(limits_.value.maxDepth));
    }
    if (growth > limits_.value.maxBytes || bytes_ > limits_.value.maxBytes - growth) {
      return error(ErrorCode::TooLarge,
                   "the result would be over the limit of " + std::to_string(limits_.value.maxBytes) + " bytes");
    }
    return Status::ok();
  }

  // ---- member lookup --------------------------------------------------------
  //
  // Objects of kIndexFrom members or more are searched through a hash index,
  // built on first use and kept up to date by the changes below, so N adds to
  // one object cost O(N), not O(N^2). An index is keyed by the object's member
  // array: the document's pool allocator never reuses an address while the
  // document lives, so an array address names one object, wherever its Value
  // is moved to. `count` tells whether the index still describes the array.
  //
  // The index is a flat open-addressing table of member positions (the names
  // stay in the object), so renumbering after a member is inserted or removed
  // in the middle is one pass over an array of integers.

  static constexpr rapidjson::SizeType kIndexFrom = 32;

  class MemberIndex {
   public:
    rapidjson::SizeType count = 0;  // members of the object it describes

    std::size_t slots() const { return slots_.size(); }

    void build(const Value& object) {
      count = object.MemberCount();
      std::size_t size = 64;
      while (size < 4 * static_cast<std::size_t>(count)) size *= 2;
      slots_.assign(size, kEmpty);
      used_ = 0;
      for (rapidjson::SizeType k = 0; k < count; ++k) place(stringOf(object.MemberBegin()[k].name), k);
    }

    // The position of `name`, or count when there is none.
    rapidjson::SizeType find(const Value& object, std::string_view name) const {
      const std::size_t slot = slotOf(object, name);
      return slot == kNone ? count : slots_[slot] - 1;
    }

    // After a member was added at `position` (the object holds it already).
    void inserted(const Value& object, rapidjson::SizeType position) {
      shift(position, +1);
      ++count;
      if (2 * (used_ + 1) > slots_.size()) {
        build(object);
      } else {
        place(stringOf(object.MemberBegin()[position].name), position);
      }
    }

    // Before the member at `position` is erased from the object.
    void erasing(const Value& object, rapidjson::SizeType position) {
      const std::size_t slot = slotOf(object, stringOf(object.MemberBegin()[position].name));
      if (slot != kNone) slots_[slot] = kTombstone;
      shift(position + 1, -1);
      --count;
    }

   private:
    static constexpr std::uint32_t kEmpty = 0;  // else position + 1
    static constexpr std::uint32_t kTombstone = UINT32_MAX;
    static constexpr std::size_t kNone = SIZE_MAX;

    std::size_t start(std::string_view name) const { return std::hash<std::string_view>{}(name) & (slots_.size() - 1); }

    std::size_t slotOf(const Value& object, std::string_view name) const {
      for (std::size_t slot = start(name);; slot = (slot + 1) & (slots_.size() - 1)) {
        const std::uint32_t entry = slots_[slot];
        if (entry == kEmpty) return kNone;
        if (entry != kTombstone && stringOf(object.MemberBegin()[entry - 1].name) == name) return slot;
      }
    }

    void place(std::string_view name, rapidjson::SizeType position) {
      std::size_t slot = start(name);
      while (slots_[slot] != kEmpty && slots_[slot] != kTombstone) slot = (slot + 1) & (slots_.size() - 1);
      if (slots_[slot] == kEmpty) ++used_;
      slots_[slot] = position + 1;
    }

    // Positions from `from` on move by `delta`.
    void shift(rapidjson::SizeType from, int delta) {
      if (from >= count) return;
      for (std::uint32_t& entry : slots_) {
        if (entry != kEmpty && entry != kTombstone && entry - 1 >= from) entry += static_cast<std::uint32_t>(delta);
      }
    }

    std::vector<std::uint32_t> slots_;
    std::size_t used_ = 0;  // slots not empty (live or tombstone)
  };

  static const void* keyOf(Value& object) { return static_cast<const void*>(&*object.MemberBegin()); }

  Value::MemberIterator findMember(Value& object, std::string_view name) {
    const rapidjson::SizeType count = object.MemberCount();
    if (count < kIndexFrom) {
      for (auto it = object.MemberBegin(); it != object.MemberEnd(); ++it) {
        if (stringOf(it->name) == name) return it;
      }
      return object.MemberEnd();
    }
    MemberIndex& index = indexes_[keyOf(object)];
    if (index.count != count || index.slots() == 0) {
      spend(16 * static_cast<std::size_t>(count));
      index.build(object);
    }
    return object.MemberBegin() + index.find(object, name);
  }

  // Adds a member at `position` (the end when it is the member count).
  void addMember(Value& object, const std::string& name, Value& value, std::size_t position) {
    const rapidjson::SizeType count = object.MemberCount();
    const void* before = count > 0 ? keyOf(object) : nullptr;
    object.AddMember(Value(name.data(), static_cast<rapidjson::SizeType>(name.size()), allocator_), value, allocator_);
    rotateLastMemberTo(object, position);
    spend(4 * (count - position));
    if (before == nullptr) return;
    const auto it = indexes_.find(before);
    if (it == indexes_.end()) return;
    MemberIndex index = std::move(it->second);
    indexes_.erase(it);
    if (index.count != count) return;  // stale
    if (position != count) spend(index.slots() / 2);
    index.inserted(object, static_cast<rapidjson::SizeType>(position));
    indexes_[keyOf(object)] = std::move(index);
  }

  void eraseMember(Value& object, Value::MemberIterator member) {
    const rapidjson::SizeType count = object.MemberCount();
    const auto position = static_cast<rapidjson::SizeType>(member - object.MemberBegin());
    spend(4 * (count - 1 - position));
    const auto it = indexes_.find(keyOf(object));
    if (it != indexes_.end()) {
      if (it->second.count != count) {
        indexes_.erase(it);  // stale
      } else {
        if (position + 1 != count) spend(it->second.slots() / 2);
        it->second.erasing(object, position);
      }
    }
    object.EraseMember(member);
  }

  // ---- pointers -------------------------------------------------------------

  Status parse(const Value& op, const char* field, std::string& pointer, Segments& segments) const {
    const auto it = op.FindMember(field);
    if (it == op.MemberEnd()) return error(ErrorCode::InvalidPatch, std::string("missing \"") + field + "\"");
    if (!isJsonString(it->value)) {
      return error(ErrorCode::InvalidPatch, std::string("\"") + field + "\" must be a string");
    }
    pointer.assign(it->value.GetString(), it->value.GetStringLength());
    Status status = parsePointer(pointer, segments);
    if (!status) return error(status.code(), status.message());
    return Status::ok();
  }

  // Resolves the first `count` segments of a pointer.
  Value* resolve(const Segments& segments, std::size_t count, const std::string& pointer, Status& status) {
    Value* node = &doc_;
    for (std::size_t k = 0; k < count; ++k) {
      const std::string& segment = segments[k];
      if (node->IsObject()) {
        const auto it = findMember(*node, segment);
        if (it == node->MemberEnd()) {
          status =
              error(ErrorCode::PathNotFound, "path " + quoted(pointer) + " not found: no member " + quoted(segment));
          return nullptr;
        }
        node = &it->value;
      } else if (node->IsArray()) {
        std::size_t index = 0;
        if (!parseArrayIndex(segment, index)) {
          status = error(ErrorCode::PathNotFound,
                         "path " + quoted(pointer) + " not found: " + quoted(segment) + " is not an array index");
          return nullptr;
        }
        if (index >= node->Size()) {
          status = error(ErrorCode::PathNotFound, "path " + quoted(pointer) + " not found: index " +
                                                      std::to_string(index) + " is out of range (array length " +
                                                      std::to_string(node->Size()) + ")");
          return nullptr;
        }
        node = &(*node)[static_cast<rapidjson::SizeType>(index)];
      } else {
        status = error(ErrorCode::PathNotFound,
                       "path " + quoted(pointer) + " not found: cannot look up " + quoted(segment) + " in a scalar");
        return nullptr;
      }
    }
    return node;
  }

  // ---- primitive changes, each logged and checked against the limits -------

  // `size`: the measure of `value`.
  Status add(const Segments& segments, const std::string& pointer, Value& value, const Measure& size) {
    if (segments.empty()) {
      const std::size_t old = bytes_;
      bytes_ = 0;
      if (Status s = admit(segments, size.depth, size.bytes); !s) {
        bytes_ = old;
        return s;
      }
      bytes_ = size.bytes;
      undo_.push_back({UndoStep::Kind::SetRoot, {}, {}, 0, Value(), old});
      undo_.back().old.Swap(doc_);
      static_cast<Value&>(doc_).Swap(value);
      return Status::ok();
    }
    Status status;
    Value* parent = resolve(segments, segments.size() - 1, pointer, status);
    if (parent == nullptr) return status;
    const std::string& last = segments.back();
    Segments parentPath(segments.begin(), segments.end() - 1);
    if (parent->IsObject()) {
      const auto it = findMember(*parent, last);
      if (it != parent->MemberEnd()) {
        const std::size_t old = walk(it->value).bytes;
        const std::size_t saved = bytes_;
        bytes_ -= old;
        if (Status s = admit(segments, size.depth, size.bytes); !s) {
          bytes_ = saved;
          return s;
        }
        bytes_ += size.bytes;
        undo_.push_back({UndoStep::Kind::SetMember, std::move(parentPath), last, 0, Value(), saved});
        undo_.back().old.Swap(it->value);
        it->value.Swap(value);
      } else {
        const std::size_t growth = size.bytes + escapedLength(last) + 3 + (parent->MemberCount() > 0 ? 1 : 0);
        if (Status s = admit(segments, size.depth, growth); !s) return s;
        const std::size_t saved = bytes_;
        bytes_ += growth;
        addMember(*parent, last, value, parent->MemberCount());
        undo_.push_back({UndoStep::Kind::AddedMember, std::move(parentPath), last, 0, Value(), saved});
      }
      return Status::ok();
    }
    if (parent->IsArray()) {
      std::size_t index = parent->Size();
      if (last != "-") {
        if (!parseArrayIndex(last, index)) {
          return error(ErrorCode::PathNotFound,
                       "path " + quoted(pointer) + " not found: " + quoted(last) + " is not an array index");
        }
        if (index > parent->Size()) {
          return error(ErrorCode::PathNotFound, "path " + quoted(pointer) + " not found: index " +
                                                    std::to_string(index) + " is out of range (array length " +
                                                    std::to_string(parent->Size()) + ")");
        }
      }
      const std::size_t growth = size.bytes + (parent->Size() > 0 ? 1 : 0);
      if (Status s = admit(segments, size.depth, growth); !s) return s;
      const std::size_t saved = bytes_;
      bytes_ += growth;
      spend(2 * (parent->Size() - index));
      parent->PushBack(value, allocator_);
      rotateLastElementTo(*parent, index);
      undo_.push_back({UndoStep::Kind::InsertedItem, std::move(parentPath), {}, index, Value(), saved});
      return Status::ok();
    }
    return error(ErrorCode::PathNotFound, "path " + quoted(pointer) + " not found: its parent is not a container");
  }

  // Removes the value at a non-root pointer. With `removed`, hands the value
  // back (the caller puts it somewhere, and marks that step `moved`, or gives
  // it back to this step); without, the undo log keeps it. `known`: the
  // value's measure when the caller has it.
  Status remove(const Segments& segments, const std::string& pointer, Value* removed, const Measure* known = nullptr) {
    Status status;
    Value* parent = resolve(segments, segments.size() - 1, pointer, status);
    if (parent == nullptr) return status;
    const std::string& last = segments.back();
    Segments parentPath(segments.begin(), segments.end() - 1);
    const std::size_t saved = bytes_;
    if (parent->IsObject()) {
      const auto it = findMember(*parent, last);
      if (it == parent->MemberEnd()) {
        return error(ErrorCode::PathNotFound, "path " + quoted(pointer) + " not found: no member " + quoted(last));
      }
      const std::size_t index = static_cast<std::size_t>(it - parent->MemberBegin());
      const std::size_t size = known != nullptr ? known->bytes : walk(it->value).bytes;
      bytes_ -= size + escapedLength(last) + 3 + (parent->MemberCount() > 1 ? 1 : 0);
      undo_.push_back({UndoStep::Kind::ErasedMember, std::move(parentPath), last, index, Value(), saved});
      keep(it->value, removed);
      eraseMember(*parent, it);
      return Status::ok();
    }
    if (parent->IsArray()) {
      std::size_t index = 0;
      if (!parseArrayIndex(last, index)) {
        return error(ErrorCode::PathNotFound,
                     "path " + quoted(pointer) + " not found: " + quoted(last) + " is not an array index");
      }
      if (index >= parent->Size()) {
        return error(ErrorCode::PathNotFound, "path " + quoted(pointer) + " not found: index " + std::to_string(index) +
                                                  " is out of range (array length " + std::to_string(parent->Size()) +
                                                  ")");
      }
      Value& element = (*parent)[static_cast<rapidjson::SizeType>(index)];
      const std::size_t size = known != nullptr ? known->bytes : walk(element).bytes;
      bytes_ -= size + (parent->Size() > 1 ? 1 : 0);
      spend(2 * (parent->Size() - 1 - index));
      undo_.push_back({UndoStep::Kind::ErasedItem, std::move(parentPath), {}, index, Value(), saved});
      keep(element, removed);
      parent->Erase(parent->Begin() + index);
      return Status::ok();
    }
    return error(ErrorCode::PathNotFound, "path " + quoted(pointer) + " not found: its parent is not a container");
  }

  void keep(Value& value, Value* removed) { (removed != nullptr ? *removed : undo_.back().old).Swap(value); }

  Status replace(const Segments& segments, const std::string& pointer, Value& value, const Measure& size) {
    if (segments.empty()) return add(segments, pointer, value, size);
    Status status;
    Value* target = resolve(segments, segments.size(), pointer, status);
    if (target == nullptr) return status;
    Value* parent = resolve(segments, segments.size() - 1, pointer, status);
    const std::size_t saved = bytes_;
    bytes_ -= walk(*target).bytes;
    if (Status s = admit(segments, size.depth, size.bytes); !s) {
      bytes_ = saved;
      return s;
    }
    bytes_ += size.bytes;
    Segments parentPath(segments.begin(), segments.end() - 1);
    if (parent->IsObject()) {
      undo_.push_back({UndoStep::Kind::SetMember, std::move(parentPath), segments.back(), 0, Value(), saved});
    } else {
      std::size_t index = 0;
      parseArrayIndex(segments.back(), index);
      undo_.push_back({UndoStep::Kind::SetItem, std::move(parentPath), {}, index, Value(), saved});
    }
    undo_.back().old.Swap(*target);
    target->Swap(value);
    return Status::ok();
  }

  // ---- operations -------------------------------------------------------------

  // Shape of one operation, independent of the document.
  Status check(const Value& op) {
    opName_.clear();
    if (!op.IsObject()) return error(ErrorCode::InvalidPatch, "an operation must be an object");
    const auto opIt = op.FindMember("op");
    if (opIt == op.MemberEnd() || !isJsonString(opIt->value)) {
      return error(ErrorCode::InvalidPatch, "missing or non-string \"op\"");
    }
    opName_.assign(opIt->value.GetString(), opIt->value.GetStringLength());
    const bool needsValue = opName_ == "add" || opName_ == "replace" || opName_ == "test";
    const bool needsFrom = opName_ == "move" || opName_ == "copy";
    if (!needsValue && !needsFrom && opName_ != "remove") {
      return error(ErrorCode::InvalidPatch,
                   "unknown op " + quoted(opName_) + " (expected add, remove, replace, move, copy or test)");
    }
    std::string pointer;
    Segments segments;
    if (Status s = parse(op, "path", pointer, segments); !s) return s;
    if (needsValue && !op.HasMember("value")) return error(ErrorCode::InvalidPatch, "missing \"value\"");
    if (opName_ == "remove" && segments.empty()) {
      return error(ErrorCode::InvalidPatch, "cannot remove the whole document (path \"\")");
    }
    if (needsFrom) {
      std::string fromPointer;
      Segments from;
      if (Status s = parse(op, "from", fromPointer, from); !s) return s;
      if (opName_ == "move" && pointer.size() > fromPointer.size() &&
          pointer.compare(0, fromPointer.size(), fromPointer) == 0 && pointer[fromPointer.size()] == '/') {
        return error(ErrorCode::InvalidPatch,
                     "cannot move " + quoted(fromPointer) + " into its own child " + quoted(pointer));
      }
    }
    return Status::ok();
  }

  Status applyOne(const Value& op) {
    opName_.clear();
    if (!op.IsObject()) return error(ErrorCode::InvalidPatch, "an operation must be an object");
    const auto opIt = op.FindMember("op");
    if (opIt == op.MemberEnd() || !isJsonString(opIt->value)) {
      return error(ErrorCode::InvalidPatch, "missing or non-string \"op\"");
    }
    const std::string name(opIt->value.GetString(), opIt->value.GetStringLength());
    opName_ = name;
    std::string pointer;
    Segments segments;
    if (Status s = parse(op, "path", pointer, segments); !s) return s;

    auto valueOf = [&](Value& into) -> Status {
      const auto it = op.FindMember("value");
      if (it == op.MemberEnd()) return error(ErrorCode::InvalidPatch, "missing \"value\"");
      into.CopyFrom(it->value, allocator_);
      return Status::ok();
    };

    if (name == "add" || name == "replace") {
      Value value;
      if (Status s = valueOf(value); !s) return s;
      const Measure size = measure(value);
      return name == "add" ? add(segments, pointer, value, size) : replace(segments, pointer, value, size);
    }
    if (name == "remove") {
      if (segments.empty()) return error(ErrorCode::InvalidPatch, "cannot remove the whole document (path \"\")");
      return remove(segments, pointer, nullptr);
    }
    if (name == "test") {
      const auto it = op.FindMember("value");
      if (it == op.MemberEnd()) return error(ErrorCode::InvalidPatch, "missing \"value\"");
      Status status;
      const Value* target = resolve(segments, segments.size(), pointer, status);
      if (target == nullptr) return status;
      if (!jsonEqual(*target, it->value)) {
        return error(ErrorCode::PatchTestFailed, "the value at " + quoted(pointer) + " is not the expected value");
      }
      return Status::ok();
    }
    if (name == "move" || name == "copy") {
      std::string fromPointer;
      Segments from;
      if (Status s = parse(op, "from", fromPointer, from); !s) return s;
      Status status;
      Value* source = resolve(from, from.size(), fromPointer, status);
      if (source == nullptr) return status;
      const Measure size = walk(*source);
      if (name == "copy") {
        // A copy is built: counted, and checked before it is made.
        spend(size.bytes);
        if (work_ > budget_) return overBudget();
        // Checked before the copy is built: doubling a document a few times
        // must fail before it allocates.
        if (Status s = admit(segments, size.depth, size.bytes); !s) return s;
        Value copy(*source, allocator_);
        return add(segments, pointer, copy, size);
      }
      if (fromPointer == pointer) return Status::ok();
      if (pointer.size() > fromPointer.size() && pointer.compare(0, fromPointer.size(), fromPointer) == 0 &&
          pointer[fromPointer.size()] == '/') {
        return error(ErrorCode::InvalidPatch,
                     "cannot move " + quoted(fromPointer) + " into its own child " + quoted(pointer));
      }
      if (from.empty()) return error(ErrorCode::InvalidPatch, "cannot move the whole document");
      Value moved;
      if (Status s = remove(from, fromPointer, &moved, &size); !s) return s;
      const std::size_t steps = undo_.size();
      Status s = add(segments, pointer, moved, size);
      if (!s) {
        undo_.back().old.Swap(moved);  // the removal's step gets the value back for the rollback
        return s;
      }
      if (undo_.size() > steps) undo_.back().moved = true;
      return Status::ok();
    }
    return error(ErrorCode::InvalidPatch,
                 "unknown op " + quoted(name) + " (expected add, remove, replace, move, copy or test)");
  }

  // ---- rollback -----------------------------------------------------------------

  Value& container(const Segments& path) {
    Value* node = &doc_;
    for (const std::string& segment : path) {
      if (node->IsObject()) {
        node = &findMember(*node, segment)->value;
      } else {
        std::size_t index = 0;
        parseArrayIndex(segment, index);
        node = &(*node)[static_cast<rapidjson::SizeType>(index)];
      }
    }
    return *node;
  }

  // Undoes every logged step, newest first. Each step's container exists again
  // once the steps after it are undone.
  // The value a step put in place (for a `moved` step, handed back).
  Value& placed(UndoStep& step) {
    switch (step.kind) {
      case UndoStep::Kind::SetRoot: return doc_;
      case UndoStep::Kind::SetMember:
      case UndoStep::Kind::AddedMember: return findMember(container(step.parent), step.name)->value;
      default: return container(step.parent)[static_cast<rapidjson::SizeType>(step.index)];
    }
  }

  void rollback() {
    while (!undo_.empty()) {
      UndoStep& step = undo_.back();
      if (step.moved) undo_[undo_.size() - 2].old.Swap(placed(step));
      switch (step.kind) {
        case UndoStep::Kind::SetRoot: static_cast<Value&>(doc_).Swap(step.old); break;
        case UndoStep::Kind::SetMember: findMember(container(step.parent), step.name)->value.Swap(step.old); break;
        case UndoStep::Kind::AddedMember: {
          Value& object = container(step.parent);
          eraseMember(object, findMember(object, step.name));
          break;
        }
        case UndoStep::Kind::ErasedMember: addMember(container(step.parent), step.name, step.old, step.index); break;
        case UndoStep::Kind::InsertedItem: {
          Value& array = container(step.parent);
          array.Erase(array.Begin() + step.index);
          break;
        }
        case UndoStep::Kind::ErasedItem: {
          Value& array = container(step.parent);
          array.PushBack(step.old, allocator_);
          rotateLastElementTo(array, step.index);
          break;
        }
        case UndoStep::Kind::SetItem:
          container(step.parent)[static_cast<rapidjson::SizeType>(step.index)].Swap(step.old);
          break;
      }
      bytes_ = step.bytes;
      undo_.pop_back();
    }
  }

  rapidjson::Document& doc_;
  rapidjson::Document::AllocatorType& allocator_;
  const PatchLimits& limits_;
  std::size_t bytes_ = 0;   // compact text size of the document as it stands
  std::size_t budget_ = 0;  // of work_
  std::size_t work_ = 0;    // see spend()
  std::unordered_map<const void*, MemberIndex> indexes_;
  std::vector<UndoStep> undo_;
  rapidjson::SizeType operation_ = 0;
  std::string opName_;
};

}  // namespace

namespace {

// Builds DOM values from a validated tape. Numbers, Typed: integers that fit
// become int64/uint64, everything else a correctly rounded double; AsText: a
// string holding kNumberTag and the number's text. Strings are
// unescaped; a lone surrogate from a \u escape is kept (as WTF-8) and escaped
// again on output, as JSON.stringify does.
class DomBuilder {
 public:
  DomBuilder(const JsonTape& tape, rapidjson::Document::AllocatorType& allocator, Numbers numbers)
      : tape_(tape), allocator_(allocator), numbers_(numbers) {}

  void build(std::uint32_t index, Value& out) {
    const TapeNode& node = tape_[index];
    switch (node.type) {
      case JsonType::Null: out.SetNull(); return;
      case JsonType::False: out.SetBool(false); return;
      case JsonType::True: out.SetBool(true); return;
      case JsonType::Number: number(tape_.raw(index), (node.flags & TapeNode::kIsInteger) != 0, out); return;
      case JsonType::String: string(index, out); return;
      case JsonType::Array: {
        out.SetArray();
        out.Reserve(node.count, allocator_);
        for (std::uint32_t k = index + 1; k < node.next; k = tape_[k].next) {
          Value element;
          build(k, element);
          out.PushBack(element, allocator_);
        }
        return;
      }
      case JsonType::Object: {
        out.SetObject();
        for (std::uint32_t k = index + 1; k < node.next; k = tape_[k + 1].next) {
          Value name;
          Value value;
          string(k, name);
          build(k + 1, value);
          out.AddMember(name, value, allocator_);
        }
        return;
      }
    }
  }

 private:
  void number(std::string_view raw, bool integer, Value& out) {
    if (numbers_ == Numbers::AsText) {
      scratch_.assign(1, kNumberTag);
      scratch_.append(raw);
      out.SetString(scratch_.data(), static_cast<rapidjson::SizeType>(scratch_.size()), allocator_);
      return;
    }
    const char* first = raw.data();
    const char* last = raw.data() + raw.size();
    if (integer) {
      std::int64_t i = 0;
      if (std::from_chars(first, last, i).ec == std::errc()) {
        out.SetInt64(i);
        return;
      }
      std::uint64_t u = 0;
      if (raw.front() != '-' && std::from_chars(first, last, u).ec == std::errc()) {
        out.SetUint64(u);
        return;
      }
    }
    out.SetDouble(doubleOfNumberText(raw));
  }

  void string(std::uint32_t index, Value& out) {
    const std::string_view raw = tape_.raw(index);
    if ((tape_[index].flags & TapeNode::kHasEscape) == 0) {
      out.SetString(raw.data() + 1, static_cast<rapidjson::SizeType>(raw.size() - 2), allocator_);
      return;
    }
    scratch_.clear();
    decodeJsonString(raw, scratch_);
    out.SetString(scratch_.data(), static_cast<rapidjson::SizeType>(scratch_.size()), allocator_);
  }

  const JsonTape& tape_;
  rapidjson::Document::AllocatorType& allocator_;
  Numbers numbers_;
  std::string scratch_;
};

void serialize(const Value& value, std::string& out) {
  switch (value.GetType()) {
    case rapidjson::kNullType: out.append("null"); return;
    case rapidjson::kFalseType: out.append("false"); return;
    case rapidjson::kTrueType: out.append("true"); return;
    case rapidjson::kStringType:
      if (isTextNumber(value)) {
        out.append(value.GetString() + 1, value.GetStringLength() - 1);
        return;
      }
      out.push_back('"');
      appendJsonEscaped(std::string_view(value.GetString(), value.GetStringLength()), out);
      out.push_back('"');
      return;
    case rapidjson::kNumberType: {
      char buffer[32];
      char* end = buffer;
      if (value.IsInt64()) {
        end = std::to_chars(buffer, buffer + sizeof buffer, value.GetInt64()).ptr;
      } else if (value.IsUint64()) {
        end = std::to_chars(buffer, buffer + sizeof buffer, value.GetUint64()).ptr;
      } else {
        end = rapidjson::internal::dtoa(value.GetDouble(), buffer);
      }
      out.append(buffer, end);
      return;
    }
    case rapidjson::kArrayType: {
      out.push_back('[');
      bool first = true;
      for (const Value& element : value.GetArray()) {
        if (!first) out.push_back(',');
        first = false;
        serialize(element, out);
      }
      out.push_back(']');
      return;
    }
    case rapidjson::kObjectType: {
      out.push_back('{');
      bool first = true;
      for (const auto& member : value.GetObject()) {
        if (!first) out.push_back(',');
        first = false;
        out.push_back('"');
        appendJsonEscaped(std::string_view(member.name.GetString(), member.name.GetStringLength()), out);
        out.append("\":");
        serialize(member.value, out);
      }
      out.push_back('}');
      return;
    }
  }
}

}  // namespace

Status parseDocument(std::string_view text, rapidjson::Document& doc, const ParseLimits& limits, Numbers numbers) {
  // The tape validates (with deltacast's limits, messages and UTF-8 checks);
  // the DOM is then built from it without a second parse.
  JsonTape tape;
  if (Status s = tape.parse(text, limits); !s) return s;
  doc.SetNull();
  DomBuilder(tape, doc.GetAllocator(), numbers).build(0, doc);
  return Status::ok();
}

void serializeDocument(const rapidjson::Value& value, std::string& out) { serialize(value, out); }

Status applyPatch(rapidjson::Document& doc, const rapidjson::Value& ops, const PatchLimits& limits) {
  return Patcher(doc, limits).apply(ops);
}

Status applyPatchJson(std::string_view docText, std::string_view opsText, std::string& out, const PatchLimits& limits) {
  rapidjson::Document doc;
  if (Status s = parseDocument(docText, doc, limits.value, Numbers::AsText); !s) {
    return Status(s.code(), "document: " + s.message());
  }
  rapidjson::Document ops;
  if (Status s = parseDocument(opsText, ops, limits.patchText, Numbers::AsText); !s) {
    return Status(s.code(), "patch: " + s.message());
  }
  if (Status s = applyPatch(doc, ops, limits); !s) return s;
  out.clear();
  out.reserve(docText.size() + opsText.size());
  serialize(doc, out);
  return Status::ok();
}

}  // namespace deltacast
