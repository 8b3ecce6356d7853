#include "deltacast/json_patch.h"

#include <rapidjson/internal/dtoa.h>

#include <charconv>
#include <cstring>
#include <limits>
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
};

// Moves the last member of `object` to position `index`, keeping the order of the others.
void rotateLastMemberTo(Value& object, std::size_t index) {
  auto members = object.MemberBegin();
  for (std::size_t k = object.MemberCount() - 1; k > index; --k) {
    members[k].name.Swap(members[k - 1].name);
    members[k].value.Swap(members[k - 1].value);
  }
}

void rotateLastElementTo(Value& array, std::size_t index) {
  for (std::size_t k = array.Size() - 1; k > index; --k)
    array[static_cast<rapidjson::SizeType>(k)].Swap(array[static_cast<rapidjson::SizeType>(k - 1)]);
}

Value::MemberIterator findMember(Value& object, const std::string& name) {
  return object.FindMember(Value(rapidjson::StringRef(name.data(), static_cast<rapidjson::SizeType>(name.size()))));
}

class Patcher {
 public:
  explicit Patcher(rapidjson::Document& doc) : doc_(doc), allocator_(doc.GetAllocator()) {}

  Status apply(const Value& ops) {
    if (!ops.IsArray()) return Status(ErrorCode::InvalidPatch, "a patch must be an array of operations");
    // The whole patch is checked for shape first, so a malformed operation is
    // reported whatever the document holds.
    for (rapidjson::SizeType i = 0; i < ops.Size(); ++i) {
      operation_ = i;
      if (Status status = check(ops[i]); !status) return status;
    }
    for (rapidjson::SizeType i = 0; i < ops.Size(); ++i) {
      operation_ = i;
      Status status = applyOne(ops[i]);
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

  // ---- pointers -------------------------------------------------------------

  Status parse(const Value& op, const char* field, std::string& pointer, Segments& segments) const {
    const auto it = op.FindMember(field);
    if (it == op.MemberEnd()) return error(ErrorCode::InvalidPatch, std::string("missing \"") + field + "\"");
    if (!it->value.IsString()) return error(ErrorCode::InvalidPatch, std::string("\"") + field + "\" must be a string");
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

  // ---- primitive changes, each logged -----------------------------------------

  Status add(const Segments& segments, const std::string& pointer, Value& value) {
    if (segments.empty()) {
      undo_.push_back({UndoStep::Kind::SetRoot, {}, {}, 0, Value()});
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
        undo_.push_back({UndoStep::Kind::SetMember, std::move(parentPath), last, 0, Value()});
        undo_.back().old.Swap(it->value);
        it->value.Swap(value);
      } else {
        parent->AddMember(Value(last.data(), static_cast<rapidjson::SizeType>(last.size()), allocator_), value,
                          allocator_);
        undo_.push_back({UndoStep::Kind::AddedMember, std::move(parentPath), last, 0, Value()});
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
      parent->PushBack(value, allocator_);
      rotateLastElementTo(*parent, index);
      undo_.push_back({UndoStep::Kind::InsertedItem, std::move(parentPath), {}, index, Value()});
      return Status::ok();
    }
    return error(ErrorCode::PathNotFound, "path " + quoted(pointer) + " not found: its parent is not a container");
  }

  // Removes the value at a non-root pointer. With `removed`, hands the value
  // back (and the undo log keeps a copy); without, the undo log keeps it.
  Status remove(const Segments& segments, const std::string& pointer, Value* removed) {
    Status status;
    Value* parent = resolve(segments, segments.size() - 1, pointer, status);
    if (parent == nullptr) return status;
    const std::string& last = segments.back();
    Segments parentPath(segments.begin(), segments.end() - 1);
    if (parent->IsObject()) {
      const auto it = findMember(*parent, last);
      if (it == parent->MemberEnd()) {
        return error(ErrorCode::PathNotFound, "path " + quoted(pointer) + " not found: no member " + quoted(last));
      }
      const std::size_t index = static_cast<std::size_t>(it - parent->MemberBegin());
      undo_.push_back({UndoStep::Kind::ErasedMember, std::move(parentPath), last, index, Value()});
      keep(it->value, removed);
      parent->EraseMember(it);
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
      undo_.push_back({UndoStep::Kind::ErasedItem, std::move(parentPath), {}, index, Value()});
      keep((*parent)[static_cast<rapidjson::SizeType>(index)], removed);
      parent->Erase(parent->Begin() + index);
      return Status::ok();
    }
    return error(ErrorCode::PathNotFound, "path " + quoted(pointer) + " not found: its parent is not a container");
  }

  void keep(Value& value, Value* removed) {
    if (removed != nullptr) {
      undo_.back().old.CopyFrom(value, allocator_);
      removed->Swap(value);
    } else {
      undo_.back().old.Swap(value);
    }
  }

  Status replace(const Segments& segments, const std::string& pointer, Value& value) {
    if (segments.empty()) return add(segments, pointer, value);
    Status status;
    Value* target = resolve(segments, segments.size(), pointer, status);
    if (target == nullptr) return status;
    Value* parent = resolve(segments, segments.size() - 1, pointer, status);
    Segments parentPath(segments.begin(), segments.end() - 1);
    if (parent->IsObject()) {
      undo_.push_back({UndoStep::Kind::SetMember, std::move(parentPath), segments.back(), 0, Value()});
    } else {
      std::size_t index = 0;
      parseArrayIndex(segments.back(), index);
      undo_.push_back({UndoStep::Kind::SetItem, std::move(parentPath), {}, index, Value()});
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
    if (opIt == op.MemberEnd() || !opIt->value.IsString()) {
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
    if (opIt == op.MemberEnd() || !opIt->value.IsString()) {
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
      return name == "add" ? add(segments, pointer, value) : replace(segments, pointer, value);
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
      if (!(*target == it->value)) {
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
      if (name == "copy") {
        Value copy(*source, allocator_);
        return add(segments, pointer, copy);
      }
      if (fromPointer == pointer) return Status::ok();
      if (pointer.size() > fromPointer.size() && pointer.compare(0, fromPointer.size(), fromPointer) == 0 &&
          pointer[fromPointer.size()] == '/') {
        return error(ErrorCode::InvalidPatch,
                     "cannot move " + quoted(fromPointer) + " into its own child " + quoted(pointer));
      }
      if (from.empty()) return error(ErrorCode::InvalidPatch, "cannot move the whole document");
      Value moved;
      if (Status s = remove(from, fromPointer, &moved); !s) return s;
      return add(segments, pointer, moved);
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
  void rollback() {
    while (!undo_.empty()) {
      UndoStep& step = undo_.back();
      switch (step.kind) {
        case UndoStep::Kind::SetRoot: static_cast<Value&>(doc_).Swap(step.old); break;
        case UndoStep::Kind::SetMember: findMember(container(step.parent), step.name)->value.Swap(step.old); break;
        case UndoStep::Kind::AddedMember: {
          Value& object = container(step.parent);
          object.EraseMember(findMember(object, step.name));
          break;
        }
        case UndoStep::Kind::ErasedMember: {
          Value& object = container(step.parent);
          object.AddMember(Value(step.name.data(), static_cast<rapidjson::SizeType>(step.name.size()), allocator_),
                           step.old, allocator_);
          rotateLastMemberTo(object, step.index);
          break;
        }
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
      undo_.pop_back();
    }
  }

  rapidjson::Document& doc_;
  rapidjson::Document::AllocatorType& allocator_;
  std::vector<UndoStep> undo_;
  rapidjson::SizeType operation_ = 0;
  std::string opName_;
};

}  // namespace

namespace {

// Builds DOM values from a validated tape. Numbers: integers that fit become
// int64/uint64, everything else a correctly rounded double. Strings are
// unescaped; a lone surrogate from a \u escape is kept (as WTF-8) and escaped
// again on output, as JSON.stringify does.
class DomBuilder {
 public:
  DomBuilder(const JsonTape& tape, rapidjson::Document::AllocatorType& allocator)
      : tape_(tape), allocator_(allocator) {}

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
    double d = 0;
    const auto result = std::from_chars(first, last, d);
    if (result.ec == std::errc::result_out_of_range) {
      // JSON.parse gives +-Infinity or 0 here; JSON has neither Infinity nor
      // NaN, so the closest value it can carry is kept.
      d = (raw.find_first_of("eE") != std::string_view::npos && raw.find("e-") == std::string_view::npos &&
           raw.find("E-") == std::string_view::npos)
              ? (raw.front() == '-' ? -std::numeric_limits<double>::max() : std::numeric_limits<double>::max())
              : 0.0;
    }
    out.SetDouble(d);
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
  std::string scratch_;
};

void serialize(const Value& value, std::string& out) {
  switch (value.GetType()) {
    case rapidjson::kNullType: out.append("null"); return;
    case rapidjson::kFalseType: out.append("false"); return;
    case rapidjson::kTrueType: out.append("true"); return;
    case rapidjson::kStringType:
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

Status parseDocument(std::string_view text, rapidjson::Document& doc, const ParseLimits& limits) {
  // The tape validates (with deltacast's limits, messages and UTF-8 checks);
  // the DOM is then built from it without a second parse.
  JsonTape tape;
  if (Status s = tape.parse(text, limits); !s) return s;
  doc.SetNull();
  DomBuilder(tape, doc.GetAllocator()).build(0, doc);
  return Status::ok();
}

void serializeDocument(const rapidjson::Value& value, std::string& out) { serialize(value, out); }

Status applyPatch(rapidjson::Document& doc, const rapidjson::Value& ops) { return Patcher(doc).apply(ops); }

Status applyPatchJson(std::string_view docText, std::string_view opsText, std::string& out, const ParseLimits& limits) {
  rapidjson::Document doc;
  if (Status s = parseDocument(docText, doc, limits); !s) return Status(s.code(), "document: " + s.message());
  rapidjson::Document ops;
  if (Status s = parseDocument(opsText, ops, limits); !s) return Status(s.code(), "patch: " + s.message());
  if (Status s = applyPatch(doc, ops); !s) return s;
  out.clear();
  serialize(doc, out);
  return Status::ok();
}

}  // namespace deltacast
