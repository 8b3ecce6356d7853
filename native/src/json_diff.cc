#include "deltacast/json_diff.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <list>
#include <unordered_map>
#include <vector>

#include "deltacast/json_pointer.h"
#include "deltacast/row_key.h"
#include "text_util.h"

namespace deltacast {

namespace {

using Index = std::uint32_t;

bool spansEqual(const JsonTape& a, Index ia, const JsonTape& b, Index ib) {
  const TapeNode& na = a[ia];
  const TapeNode& nb = b[ib];
  const std::uint32_t length = na.end - na.begin;
  return length == nb.end - nb.begin && bytesEqual(a.text().data() + na.begin, b.text().data() + nb.begin, length);
}

// The content of a string node (without quotes): a view into the text when it
// has no escapes, otherwise decoded into `scratch`.
std::string_view stringContent(const JsonTape& tape, Index index, std::string& scratch) {
  const std::string_view raw = tape.raw(index);
  if ((tape[index].flags & TapeNode::kHasEscape) == 0) return raw.substr(1, raw.size() - 2);
  scratch.clear();
  decodeJsonString(raw, scratch);
  return scratch;
}

// "0" or "-0".
bool isZero(std::string_view number) {
  return number.size() == 1 ? number[0] == '0' : number.size() == 2 && number[0] == '-' && number[1] == '0';
}

// Two numbers' values, as doubles.
bool numberValuesEqual(std::string_view ra, std::string_view rb) {
  double da = 0;
  double db = 0;
  // Out of double range (1e400): not comparable by value; the texts differ.
  if (std::from_chars(ra.data(), ra.data() + ra.size(), da).ec != std::errc()) return false;
  if (std::from_chars(rb.data(), rb.data() + rb.size(), db).ec != std::errc()) return false;
  return da == db;
}

// Two numbers' texts; `integers`: neither has a fraction or an exponent.
bool numberTextsEqual(std::string_view ra, std::string_view rb, bool integers) {
  if (textEqual(ra, rb)) return true;
  // Integers in canonical form are equal only when their text is (this keeps
  // integers beyond 2^53 exact), except for -0 and 0.
  if (integers) return isZero(ra) && isZero(rb);
  return numberValuesEqual(ra, rb);
}

bool numbersEqual(const JsonTape& a, Index ia, const JsonTape& b, Index ib) {
  return numberTextsEqual(a.raw(ia), b.raw(ib), (a[ia].flags & b[ib].flags & TapeNode::kIsInteger) != 0);
}

// Two strings' raw texts (with quotes), decoded.
bool decodedStringsEqual(std::string_view ra, std::string_view rb) {
  std::string sa;
  std::string sb;
  decodeJsonString(ra, sa);
  decodeJsonString(rb, sb);
  return sa == sb;
}

// Two strings' raw texts (with quotes), by content; `escapes`: either has one.
bool stringTextsEqual(std::string_view ra, std::string_view rb, bool escapes) {
  return escapes ? decodedStringsEqual(ra, rb) : textEqual(ra, rb);
}

bool stringsEqual(const JsonTape& a, Index ia, const JsonTape& b, Index ib) {
  return stringTextsEqual(a.raw(ia), b.raw(ib), ((a[ia].flags | b[ib].flags) & TapeNode::kHasEscape) != 0);
}

// `{"op":"<op>","path":"<path>"` of the next operation of a patch (after a
// comma from the second on); the caller writes the rest and the closing brace.
// (ShapeWalker::emitReplace writes the same text for its `replace`.)
void appendOperationStart(const char* op, std::string_view path, std::size_t& operations, std::string& out) {
  if (operations++ > 0) out.push_back(',');
  out.append("{\"op\":\"");
  out.append(op);
  out.append("\",\"path\":\"");
  appendJsonEscaped(path, out);
  out.push_back('"');
}

// The length of a valid JSON text without its insignificant whitespace.
std::size_t minifiedLength(std::string_view json) {
  std::size_t length = 0;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (c == '"') {
      const std::size_t end = jsonStringEnd(json, i);
      length += end - i;
      i = end - 1;
    } else if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
      ++length;
    }
  }
  return length;
}

// An object's members as (key node, value node) pairs.
struct Member {
  Index key;
  Index value;
};

// Storage for up to N elements in place and more on the heap: the small
// objects most documents are made of are diffed without an allocation.
template <class T, std::size_t N>
class SmallBuffer {
 public:
  explicit SmallBuffer(std::size_t size, T fill = T{}) : size_(size) {
    if (size > N) {
      heap_.assign(size, fill);
      data_ = heap_.data();
    } else {
      // All N, a constant count: a few vector stores (a fill of `size`
      // elements became `rep stos`, whose start-up cost more than the rest
      // of a small object's diff).
      for (std::size_t i = 0; i < N; ++i) inline_[i] = fill;
    }
  }
  SmallBuffer(const SmallBuffer&) = delete;
  SmallBuffer& operator=(const SmallBuffer&) = delete;
  T& operator[](std::size_t i) noexcept { return data_[i]; }
  const T& operator[](std::size_t i) const noexcept { return data_[i]; }
  std::size_t size() const noexcept { return size_; }
  void shrink(std::size_t size) noexcept { size_ = std::min(size_, size); }

 private:
  T inline_[N];
  std::vector<T> heap_;
  T* data_ = inline_;
  std::size_t size_;
};

using Members = SmallBuffer<Member, 16>;

// An object's members, in order (the tape's count says how many).
void collectMembers(const JsonTape& tape, Index object, Members& out) {
  std::size_t n = 0;
  Index i = object + 1;
  const Index end = tape[object].next;
  while (i < end && n < out.size()) {
    const Index value = i + 1;
    out[n++] = {i, value};
    i = tape[value].next;
  }
  out.shrink(n);
}

// Finds members of one object by key: in the order of another object first
// (most producers keep member order), then through a hash index built on the
// first miss.
class MemberLookup {
 public:
  MemberLookup(const JsonTape& tape, const Members& members) : tape_(tape), members_(members) {}

  // The position in `members` of the member named `key`, or -1.
  std::int64_t find(std::string_view key, std::size_t hint) {
    std::string scratch;
    if (hint < members_.size() && textEqual(stringContent(tape_, members_[hint].key, scratch), key)) {
      return static_cast<std::int64_t>(hint);
    }
    if (members_.size() <= 8) {
      for (std::size_t i = 0; i < members_.size(); ++i) {
        if (textEqual(stringContent(tape_, members_[i].key, scratch), key)) return static_cast<std::int64_t>(i);
      }
      return -1;
    }
    if (index_.empty()) build();
    const auto it = index_.find(key);
    return it == index_.end() ? -1 : static_cast<std::int64_t>(it->second);
  }

 private:
  void build() {
    index_.reserve(members_.size());
    decoded_.reserve(members_.size());
    for (std::size_t i = 0; i < members_.size(); ++i) {
      const Index key = members_[i].key;
      std::string_view content;
      if ((tape_[key].flags & TapeNode::kHasEscape) == 0) {
        content = tape_.raw(key).substr(1, tape_.raw(key).size() - 2);
      } else {
        decoded_.emplace_back();
        decodeJsonString(tape_.raw(key), decoded_.back());
        content = decoded_.back();
      }
      index_.emplace(content, i);  // the first of duplicate names wins
    }
  }

  const JsonTape& tape_;
  const Members& members_;
  std::vector<std::string> decoded_;  // unescaped keys; reserved for all in build(), so never moved
  std::unordered_map<std::string_view, std::size_t> index_;
};

bool equalValues(const JsonTape& a, Index ia, const JsonTape& b, Index ib);

bool objectsEqual(const JsonTape& a, Index ia, const JsonTape& b, Index ib) {
  if (a[ia].count != b[ib].count) return false;
  Members am(a[ia].count);
  Members bm(b[ib].count);
  collectMembers(a, ia, am);
  collectMembers(b, ib, bm);
  MemberLookup lookup(b, bm);
  std::string scratch;
  for (std::size_t i = 0; i < am.size(); ++i) {
    const std::int64_t j = lookup.find(stringContent(a, am[i].key, scratch), i);
    if (j < 0 || !equalValues(a, am[i].value, b, bm[static_cast<std::size_t>(j)].value)) return false;
  }
  return true;
}

bool equalValues(const JsonTape& a, Index ia, const JsonTape& b, Index ib) {
  if (spansEqual(a, ia, b, ib)) return true;
  const JsonType type = a[ia].type;
  if (type != b[ib].type) return false;
  switch (type) {
    case JsonType::Null:
    case JsonType::False:
    case JsonType::True: return true;
    case JsonType::Number: return numbersEqual(a, ia, b, ib);
    case JsonType::String: return stringsEqual(a, ia, b, ib);
    case JsonType::Array: {
      if (a[ia].count != b[ib].count) return false;
      for (Index x = ia + 1, y = ib + 1; x < a[ia].next; x = a[x].next, y = b[y].next) {
        if (!equalValues(a, x, b, y)) return false;
      }
      return true;
    }
    case JsonType::Object: return objectsEqual(a, ia, b, ib);
  }
  return false;
}

// Fenwick tree over slot positions: which slots are occupied, and how many
// occupied slots come before a given one.
class Fenwick {
 public:
  explicit Fenwick(std::size_t size) : tree_(size + 1, 0) {}
  void add(std::size_t position, int delta) {
    for (std::size_t i = position + 1; i < tree_.size(); i += i & (~i + 1)) tree_[i] += delta;
  }
  // Occupied slots strictly before `position`.
  std::size_t before(std::size_t position) const {
    int sum = 0;
    for (std::size_t i = position; i > 0; i -= i & (~i + 1)) sum += tree_[i];
    return static_cast<std::size_t>(sum);
  }

 private:
  std::vector<int> tree_;
};

// Marks the elements of `sequence` that belong to one longest strictly
// increasing subsequence (patience sorting, O(n log n)).
std::vector<bool> longestIncreasingSubsequence(const std::vector<std::size_t>& sequence) {
  std::vector<std::size_t> tails;  // tails[k]: index of the smallest tail of an increasing run of length k+1
  std::vector<std::int64_t> previous(sequence.size(), -1);
  for (std::size_t i = 0; i < sequence.size(); ++i) {
    const auto it = std::lower_bound(tails.begin(), tails.end(), sequence[i],
                                     [&](std::size_t t, std::size_t value) { return sequence[t] < value; });
    const std::size_t k = static_cast<std::size_t>(it - tails.begin());
    if (k > 0) previous[i] = static_cast<std::int64_t>(tails[k - 1]);
    if (it == tails.end()) {
      tails.push_back(i);
    } else {
      *it = i;
    }
  }
  std::vector<bool> inSequence(sequence.size(), false);
  std::int64_t i = tails.empty() ? -1 : static_cast<std::int64_t>(tails.back());
  while (i >= 0) {
    inSequence[static_cast<std::size_t>(i)] = true;
    i = previous[static_cast<std::size_t>(i)];
  }
  return inSequence;
}

class Differ {
 public:
  Differ(const JsonTape& a, const JsonTape& b, const DiffOptions& options, std::string& out)
      : a_(a), b_(b), options_(options), out_(out), path_(options.pathPrefix) {}

  std::size_t run() {
    // One allocation for the patch of a small change, not one per doubling.
    if (out_.capacity() < out_.size() + 96) out_.reserve(out_.size() + 96);
    out_.push_back('[');
    diffValue(0, 0);
    out_.push_back(']');
    return operations_;
  }

 private:
  // ---- output ---------------------------------------------------------------

  void beginOperation(const char* op) { appendOperationStart(op, path_, operations_, out_); }

  void appendValue(Index ib) {
    out_.append(",\"value\":");
    if (b_.compact()) {
      out_.append(b_.raw(ib));
    } else {
      appendMinified(b_.raw(ib), out_);
    }
  }

  void emitReplace(Index ib, const char* op = "replace") {
    beginOperation(op);
    appendValue(ib);
    out_.push_back('}');
  }

  void emitRemove() {
    beginOperation("remove");
    out_.push_back('}');
  }

  // ---- paths ----------------------------------------------------------------

  std::size_t pushIndex(std::size_t index) {
    const std::size_t mark = path_.size();
    path_.push_back('/');
    char buffer[24];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, index);
    path_.append(buffer, result.ptr);
    return mark;
  }

  std::size_t pushKey(const JsonTape& tape, Index key) {
    const std::size_t mark = path_.size();
    appendPointerSegment(stringContent(tape, key, scratch_), path_);
    return mark;
  }

  void pop(std::size_t mark) { path_.resize(mark); }

  // ---- the walk -------------------------------------------------------------

  void diffValue(Index ia, Index ib) {
    if (spansEqual(a_, ia, b_, ib)) return;
    const JsonType ta = a_[ia].type;
    const JsonType tb = b_[ib].type;
    if (ta != tb) {
      emitReplace(ib);
      return;
    }
    switch (ta) {
      case JsonType::Object:
      case JsonType::Array: diffContainer(ia, ib); return;
      default:
        if (!equalValues(a_, ia, b_, ib)) emitReplace(ib);
        return;
    }
  }

  // Diffs two objects or two arrays; when the operations come out larger than
  // the new container's text, one `replace` of the container is sent instead.
  void diffContainer(Index ia, Index ib) {
    const std::size_t outMark = out_.size();
    const std::size_t operationsMark = operations_;
    if (a_[ia].type == JsonType::Object) {
      diffObject(ia, ib);
    } else {
      diffArray(ia, ib);
    }
    const std::size_t written = out_.size() - outMark;
    // kReplaceSlackBytes (json_diff.h). The value goes minified: a text with
    // whitespace gives the patch of its compact form (the compact length is
    // measured only when it decides).
    const std::size_t slack = path_.size() + kReplaceSlackBytes;
    if (operations_ > operationsMark && written > slack) {
      std::size_t length = b_[ib].end - b_[ib].begin;
      if (!b_.compact() && written <= length + slack) length = minifiedLength(b_.raw(ib));
      if (written > length + slack) {
        out_.resize(outMark);
        operations_ = operationsMark;
        emitReplace(ib);
      }
    }
  }

  void diffObject(Index ia, Index ib) {
    Members am(a_[ia].count);
    Members bm(b_[ib].count);
    collectMembers(a_, ia, am);
    collectMembers(b_, ib, bm);
    MemberLookup lookup(b_, bm);

    SmallBuffer<std::int64_t, 16> match(am.size(), -1);
    SmallBuffer<unsigned char, 16> bMatched(bm.size(), 0);  // not bool: std::vector<bool> has no data()
    std::size_t hint = 0;
    for (std::size_t i = 0; i < am.size(); ++i) {
      // A view into the text, or into scratch_ for a key with escapes (find
      // decodes into a scratch of its own).
      const std::string_view key = stringContent(a_, am[i].key, scratch_);
      const std::int64_t j = lookup.find(key, hint);
      if (j >= 0 && !bMatched[static_cast<std::size_t>(j)]) {
        match[i] = j;
        bMatched[static_cast<std::size_t>(j)] = true;
        hint = static_cast<std::size_t>(j) + 1;
      }
    }
    // Removals, then changes of kept members, then additions; object
    // operations do not depend on each other's order.
    for (std::size_t i = 0; i < am.size(); ++i) {
      if (match[i] >= 0) continue;
      const std::size_t mark = pushKey(a_, am[i].key);
      emitRemove();
      pop(mark);
    }
    for (std::size_t i = 0; i < am.size(); ++i) {
      if (match[i] < 0) continue;
      const Member& other = bm[static_cast<std::size_t>(match[i])];
      if (spansEqual(a_, am[i].value, b_, other.value)) continue;
      const std::size_t mark = pushKey(a_, am[i].key);
      diffValue(am[i].value, other.value);
      pop(mark);
    }
    for (std::size_t j = 0; j < bm.size(); ++j) {
      if (bMatched[j]) continue;
      const std::size_t mark = pushKey(b_, bm[j].key);
      emitReplace(bm[j].value, "add");
      pop(mark);
    }
  }

  // The key of an array element (canonical, see row_key.h: equal exactly when
  // upsert/remove would take them for the same row), or an empty view when
  // the element is not an object carrying the key with a string or number
  // value.
  std::string_view rowKey(const JsonTape& tape, Index element) {
    if (tape[element].type != JsonType::Object) return {};
    const Index end = tape[element].next;
    for (Index k = element + 1; k < end; k = tape[k + 1].next) {
      if (stringContent(tape, k, scratch_) != options_.arrayKey) continue;
      const JsonType type = tape[k + 1].type;
      if (type != JsonType::String && type != JsonType::Number) return {};
      // A string without escapes is its own canonical text (the tape knows; no need to look for a backslash).
      if (type == JsonType::String && (tape[k + 1].flags & TapeNode::kHasEscape) == 0) return tape.raw(k + 1);
      const std::string_view key = canonicalRowKey(tape.raw(k + 1), keyScratch_);
      if (key.data() != keyScratch_.data()) return key;
      return keyStorage_.emplace_back(keyScratch_);  // stable for the whole diff
    }
    return {};
  }

  // The elements of an array and, while every element has one, their row
  // keys, in one walk (a tape much larger than the cache is read once). True
  // when every element has a key.
  bool collectRows(const JsonTape& tape, Index array, std::vector<Index>& elements,
                   std::vector<std::string_view>* keys) {
    elements.clear();
    elements.reserve(tape[array].count);
    if (keys != nullptr) keys->reserve(tape[array].count);
    bool keyed = keys != nullptr;
    const Index end = tape[array].next;
    Index previous = array;
    for (Index i = array + 1; i < end; i = tape[i].next) {
      // Rows of a board are alike: the next few are about as far apart.
      const Index ahead = i + 4 * (i - previous);
      if (ahead < end) __builtin_prefetch(&tape[ahead]);
      previous = i;
      elements.push_back(i);
      if (!keyed) continue;
      const std::string_view key = rowKey(tape, i);
      if (key.empty()) {
        keyed = false;
        keys->clear();
      } else {
        keys->push_back(key);
      }
    }
    return keyed;
  }

  void diffArray(Index ia, Index ib) {
    std::vector<Index> ae;
    std::vector<Index> be;
    std::vector<std::string_view> ak;
    std::vector<std::string_view> bk;
    const bool keyed = !options_.arrayKey.empty() && a_[ia].count != 0 && b_[ib].count != 0;
    // B's keys are looked for only when A's rows all have one.
    const bool aKeyed = collectRows(a_, ia, ae, keyed ? &ak : nullptr);
    const bool bKeyed = collectRows(b_, ib, be, aKeyed ? &bk : nullptr);
    if (aKeyed && bKeyed && diffKeyedArray(ae, be, ak, bk)) return;
    diffUnkeyedArray(ae, be);
  }

  // Rows matched by key. Returns false (having written nothing) when keys are
  // not unique in the part that differs; the caller then diffs by position.
  bool diffKeyedArray(const std::vector<Index>& ae, const std::vector<Index>& be,
                      const std::vector<std::string_view>& ak, const std::vector<std::string_view>& bk) {
    // Rows at the same place with the same key at both ends are paired in place.
    std::size_t prefix = 0;
    const std::size_t shorter = std::min(ae.size(), be.size());
    while (prefix < shorter && ak[prefix] == bk[prefix]) ++prefix;
    std::size_t suffix = 0;
    while (suffix < shorter - prefix && ak[ae.size() - 1 - suffix] == bk[be.size() - 1 - suffix]) ++suffix;
    const std::size_t aMid = ae.size() - prefix - suffix;
    const std::size_t bMid = be.size() - prefix - suffix;

    // Within the middle: which A row each B row comes from. Rows are paired
    // by a walk that expects them in the same order and looks one row ahead
    // on either side (an inserted, deleted or moved row shifts the rest by
    // one); only the rows it leaves unpaired go through a hash index, which
    // finds the moved ones. Keys that repeat among those fall back to
    // positions (the caller's unkeyed diff).
    std::vector<std::int64_t> sourceOfB(bMid, -1);
    std::vector<bool> aKept(aMid, false);
    if (aMid > 0 && bMid > 0) {
      const std::string_view* a = ak.data() + prefix;
      const std::string_view* b = bk.data() + prefix;
      std::vector<std::size_t> looseA;
      std::vector<std::size_t> looseB;
      std::size_t i = 0;
      std::size_t j = 0;
      while (i < aMid && j < bMid) {
        if (a[i] == b[j]) {
          sourceOfB[j] = static_cast<std::int64_t>(i);
          aKept[i] = true;
          ++i;
          ++j;
        } else if (i + 1 < aMid && a[i + 1] == b[j]) {
          looseA.push_back(i++);
        } else if (j + 1 < bMid && a[i] == b[j + 1]) {
          looseB.push_back(j++);
        } else {
          looseA.push_back(i++);
          looseB.push_back(j++);
        }
      }
      for (; i < aMid; ++i) looseA.push_back(i);
      for (; j < bMid; ++j) looseB.push_back(j);
      if (!looseA.empty() && !looseB.empty()) {
        std::unordered_map<std::string_view, std::size_t> aIndex;
        aIndex.reserve(looseA.size());
        for (const std::size_t x : looseA) {
          if (!aIndex.emplace(a[x], x).second) return false;
        }
        std::unordered_map<std::string_view, std::size_t> seenB;
        seenB.reserve(looseB.size());
        for (const std::size_t y : looseB) {
          if (!seenB.emplace(b[y], y).second) return false;
          const auto it = aIndex.find(b[y]);
          if (it != aIndex.end()) {
            sourceOfB[y] = static_cast<std::int64_t>(it->second);
            aKept[it->second] = true;
          }
        }
      }
    }

    // 1. Removals, from the last to the first so indices stay valid.
    for (std::size_t i = aMid; i-- > 0;) {
      if (aKept[i]) continue;
      const std::size_t mark = pushIndex(prefix + i);
      emitRemove();
      pop(mark);
    }

    // 2. Moves. W: kept A rows in A order; C: the same rows in B order. Rows on
    // a longest increasing subsequence of B positions stay; each other row is
    // moved once, to just after its predecessor in C. Indices come from a
    // Fenwick tree over a slot order that contains every row's old slot and,
    // for moved rows, its new slot.
    std::vector<std::size_t> wOfA(aMid, 0);
    std::vector<std::size_t> bPosOfW;
    for (std::size_t i = 0; i < aMid; ++i) {
      if (!aKept[i]) continue;
      wOfA[i] = bPosOfW.size();
      bPosOfW.push_back(0);
    }
    std::vector<std::size_t> cOrder;  // W indices in B order
    cOrder.reserve(bPosOfW.size());
    for (std::size_t j = 0; j < bMid; ++j) {
      if (sourceOfB[j] < 0) continue;
      const std::size_t w = wOfA[static_cast<std::size_t>(sourceOfB[j])];
      bPosOfW[w] = j;
      cOrder.push_back(w);
    }
    const std::vector<bool> stays = longestIncreasingSubsequence(bPosOfW);
    const std::size_t wCount = bPosOfW.size();
    if (cOrder.size() != wCount) return false;  // unreachable with unique keys; keeps the invariant explicit
    std::size_t moveCount = 0;
    for (std::size_t w = 0; w < wCount; ++w) moveCount += stays[w] ? 0 : 1;
    if (moveCount > 0) {
      // Slot list: nodes 0..wCount-1 are old slots, wCount + w the new slot of
      // moved row w; node `head` is a sentinel.
      const std::size_t head = 2 * wCount;
      std::vector<std::size_t> next(2 * wCount + 1, SIZE_MAX);
      std::size_t tail = head;
      for (std::size_t w = 0; w < wCount; ++w) {
        next[tail] = w;
        tail = w;
      }
      std::size_t previous = head;
      for (const std::size_t w : cOrder) {
        if (!stays[w]) {
          const std::size_t slot = wCount + w;
          next[slot] = next[previous];
          next[previous] = slot;
          previous = slot;
        } else {
          previous = w;
        }
      }
      std::vector<std::size_t> ordinal(2 * wCount, 0);
      std::size_t position = 0;
      for (std::size_t node = next[head]; node != SIZE_MAX; node = next[node]) ordinal[node] = position++;
      Fenwick occupied(position);
      for (std::size_t w = 0; w < wCount; ++w) occupied.add(ordinal[w], 1);
      for (const std::size_t w : cOrder) {
        if (stays[w]) continue;
        const std::size_t from = occupied.before(ordinal[w]);
        occupied.add(ordinal[w], -1);
        const std::size_t to = occupied.before(ordinal[wCount + w]);
        occupied.add(ordinal[wCount + w], 1);
        emitMove(prefix + from, prefix + to);
      }
    }

    // 3. Additions in B order: the rows before each one are then exactly B's.
    for (std::size_t j = 0; j < bMid; ++j) {
      if (sourceOfB[j] >= 0) continue;
      const std::size_t mark = pushIndex(prefix + j);
      emitReplace(be[prefix + j], "add");
      pop(mark);
    }

    // 4. Changes inside paired rows, at their final index.
    for (std::size_t j = 0; j < be.size(); ++j) {
      Index source;
      if (j < prefix) {
        source = ae[j];
      } else if (j >= prefix + bMid) {
        source = ae[j - prefix - bMid + prefix + aMid];
      } else if (sourceOfB[j - prefix] >= 0) {
        source = ae[prefix + static_cast<std::size_t>(sourceOfB[j - prefix])];
      } else {
        continue;
      }
      if (spansEqual(a_, source, b_, be[j])) continue;
      const std::size_t mark = pushIndex(j);
      diffValue(source, be[j]);
      pop(mark);
    }
    return true;
  }

  void emitMove(std::size_t from, std::size_t to) {
    if (operations_++ > 0) out_.push_back(',');
    out_.append("{\"op\":\"move\",\"from\":\"");
    const std::size_t mark = pushIndex(from);
    appendJsonEscaped(path_, out_);
    pop(mark);
    out_.append("\",\"path\":\"");
    const std::size_t mark2 = pushIndex(to);
    appendJsonEscaped(path_, out_);
    pop(mark2);
    out_.append("\"}");
  }

  // Arrays without usable keys: equal ends are trimmed; the middle is aligned
  // by LCS when small enough, otherwise compared index by index.
  void diffUnkeyedArray(const std::vector<Index>& ae, const std::vector<Index>& be) {
    std::size_t prefix = 0;
    const std::size_t shorter = std::min(ae.size(), be.size());
    while (prefix < shorter && equalValues(a_, ae[prefix], b_, be[prefix])) ++prefix;
    std::size_t suffix = 0;
    while (suffix < shorter - prefix && equalValues(a_, ae[ae.size() - 1 - suffix], b_, be[be.size() - 1 - suffix])) {
      ++suffix;
    }
    const std::size_t n = ae.size() - prefix - suffix;
    const std::size_t m = be.size() - prefix - suffix;
    if (n == 0 && m == 0) return;

    // The edit script as runs: each Keep separated by (deletions, insertions).
    enum class Edit : std::uint8_t { Keep, Delete, Insert };
    std::vector<Edit> script;
    if (n > 0 && m > 0 && n * m <= options_.maxLcsCells) {
      std::vector<std::uint32_t> table((n + 1) * (m + 1), 0);
      auto at = [&](std::size_t i, std::size_t j) -> std::uint32_t& { return table[i * (m + 1) + j]; };
      for (std::size_t i = n; i-- > 0;) {
        for (std::size_t j = m; j-- > 0;) {
          at(i, j) = equalValues(a_, ae[prefix + i], b_, be[prefix + j]) ? at(i + 1, j + 1) + 1
                                                                         : std::max(at(i + 1, j), at(i, j + 1));
        }
      }
      std::size_t i = 0;
      std::size_t j = 0;
      while (i < n || j < m) {
        if (i < n && j < m && at(i, j) == at(i + 1, j + 1) + 1 && equalValues(a_, ae[prefix + i], b_, be[prefix + j])) {
          script.push_back(Edit::Keep);
          ++i;
          ++j;
        } else if (j < m && (i == n || at(i, j + 1) >= at(i + 1, j))) {
          script.push_back(Edit::Insert);
          ++j;
        } else {
          script.push_back(Edit::Delete);
          ++i;
        }
      }
    } else {
      // Index by index: pairs first, then the tail.
      script.assign(std::min(n, m), Edit::Delete);
      script.resize(2 * std::min(n, m), Edit::Insert);
      script.resize(script.size() + (n > m ? n - m : 0), Edit::Delete);
      script.resize(script.size() + (m > n ? m - n : 0), Edit::Insert);
    }

    // Replay the script. A run of d deletions and k insertions between two
    // keeps becomes min(d, k) in-place diffs, then removals or additions.
    std::size_t index = prefix;  // current position in the array being patched
    std::size_t ai = prefix;
    std::size_t bj = prefix;
    std::size_t s = 0;
    while (s < script.size()) {
      if (script[s] == Edit::Keep) {
        ++index;
        ++ai;
        ++bj;
        ++s;
        continue;
      }
      std::size_t deletions = 0;
      std::size_t insertions = 0;
      while (s < script.size() && script[s] != Edit::Keep) {
        (script[s] == Edit::Delete ? deletions : insertions)++;
        ++s;
      }
      const std::size_t paired = std::min(deletions, insertions);
      for (std::size_t k = 0; k < paired; ++k) {
        const std::size_t mark = pushIndex(index);
        diffValue(ae[ai + k], be[bj + k]);
        pop(mark);
        ++index;
      }
      for (std::size_t k = paired; k < deletions; ++k) {
        const std::size_t mark = pushIndex(index);
        emitRemove();
        pop(mark);
      }
      for (std::size_t k = paired; k < insertions; ++k) {
        const std::size_t mark = pushIndex(index);
        emitReplace(be[bj + k], "add");
        pop(mark);
        ++index;
      }
      ai += deletions;
      bj += insertions;
    }
  }

  const JsonTape& a_;
  const JsonTape& b_;
  const DiffOptions& options_;
  std::string& out_;
  std::string path_;     // the current pointer, unescaped for JSON
  std::string scratch_;  // for decoding escaped keys
  std::string keyScratch_;
  std::list<std::string>
      keyStorage_;  // row keys that are not their own text (a list: stable, and nothing allocated while empty)
  std::size_t operations_ = 0;
};

// ---- documents of the same shape ------------------------------------------------
//
// diffSameShape walks the current text (compact and valid) and the new one
// side by side, without tapes: the same members in the same order, values
// that are the same bytes skipped, scalars compared as the differ compares
// them. It writes what Differ writes for such a pair (same operations, same
// bytes, the same choice of one `replace` for a container), and gives up
// (Other) at anything else: arrays that differ, a member added, removed or
// renamed, a key with an escape, a new container, whitespace, or anything
// invalid. The new text's scalars are validated as JsonTape::parse validates
// them (scanJsonScalar); its other bytes are the current text's, whose
// scalars are known from their own bytes (extent, type, whether a number has
// a fraction or an exponent, whether a string has an escape) without a scan
// that validates. The patch of a tiny document goes through a buffer on the
// stack and reaches `out` in one append.
class ShapeWalker {
 public:
  ShapeWalker(std::string_view current, std::string_view next, std::string& out) : a_(current), b_(next), out_(out) {}

  ShapeDiff run() {
    const std::size_t start = out_.size();
    if (out_.capacity() < start + 96) out_.reserve(start + 96);
    // The roots are not compared byte for byte first: the caller has.
    const bool same = !a_.empty() && (a_[0] == '{' && !b_.empty() && b_[0] == '{' ? object() : value(false));
    if (!same || ia_ != a_.size() || ib_ != b_.size()) {
      used_ = 0;
      if (out_.size() != start) out_.resize(start);
      return ShapeDiff::Other;
    }
    if (used_ + 2 > kBufferBytes) flush();
    if (operations_ == 0) buffer_[used_++] = '[';  // the operations write their own '['
    buffer_[used_++] = ']';
    flush();
    return operations_ == 0 ? ShapeDiff::Unchanged : ShapeDiff::Changed;
  }

 private:
  static constexpr std::size_t kBufferBytes = 256;

  static bool isDelimiter(char c) { return c == ',' || c == '}' || c == ']'; }
  static bool isDigit(char c) { return c >= '0' && c <= '9'; }
  bool delimitedAt(std::size_t i) const { return i == b_.size() || isDelimiter(b_[i]); }
  // The new text from ib_ (ib_ <= its size).
  std::string_view rest() const { return std::string_view(b_.data() + ib_, b_.size() - ib_); }

  // Whether the new text has the current text's `length` bytes at ib_ (from
  // ia_), followed by the end of a value.
  bool sameBytes(std::size_t length) const {
    return b_.size() - ib_ >= length && bytesEqual(a_.data() + ia_, b_.data() + ib_, length) &&
           delimitedAt(ib_ + length);
  }

  // One past the container of the current text at `i` (valid, compact).
  std::size_t skipContainer(std::size_t i) const {
    std::size_t depth = 0;
    do {
      const char d = a_[i];
      if (d == '"') {
        i = jsonStringEnd(a_, i);
        continue;
      }
      if (d == '{' || d == '[') ++depth;
      if (d == '}' || d == ']') --depth;
      ++i;
    } while (depth > 0);
    return i;
  }

  // ---- the patch: buffer_ holds its last bytes, out_ the ones before
  std::size_t position() const { return out_.size() + used_; }
  void truncate(std::size_t position) {
    if (position >= out_.size()) {
      used_ = position - out_.size();
    } else {
      out_.resize(position);
      used_ = 0;
    }
  }
  void flush() {
    if (used_ > 0) out_.append(buffer_, used_);
    used_ = 0;
  }

  // Copies n bytes (sizeof(Word) <= n <= 2 * sizeof(Word)) as two words
  // that overlap in the middle.
  template <class Word>
  static void copyEnds(char* to, const char* from, std::size_t n) {
    Word head;
    Word tail;
    std::memcpy(&head, from, sizeof(Word));
    std::memcpy(&tail, from + n - sizeof(Word), sizeof(Word));
    std::memcpy(to, &head, sizeof(Word));
    std::memcpy(to + n - sizeof(Word), &tail, sizeof(Word));
  }

  // Copies `s` to `to` (without a call for up to 16 bytes); one past the copy.
  static char* put(char* to, std::string_view s) {
    const char* from = s.data();
    const std::size_t n = s.size();
    if (n <= 16) {
      if (n >= 8) {
        copyEnds<std::uint64_t>(to, from, n);
      } else if (n >= 4) {
        copyEnds<std::uint32_t>(to, from, n);
      } else if (n > 0) {
        to[0] = from[0];
        to[n / 2] = from[n / 2];
        to[n - 1] = from[n - 1];
      }
    } else {
      std::memcpy(to, from, n);
    }
    return to + n;
  }

  // `{"op":"replace","path":"<path>","value":<value>}` (appendOperationStart's
  // text, then the value), after '[' or ','. The path is path_, then, when
  // `withKey`, key_ as its pointer segment. Keys with an escape are not
  // walked, and a valid text has no control character in a string: nothing in
  // the path needs a JSON escape.
  void emitReplace(std::string_view value, bool withKey) {
    static constexpr std::string_view kStart = "{\"op\":\"replace\",\"path\":\"";
    static constexpr std::string_view kValue = "\",\"value\":";
    const char lead = operations_++ > 0 ? ',' : '[';
    const std::size_t most =
        1 + kStart.size() + path_.size() + (withKey ? 1 + 2 * key_.size() : 0) + kValue.size() + value.size() + 1;
    if (used_ + most > kBufferBytes) {
      flush();
      if (most > kBufferBytes) {
        out_.push_back(lead);
        out_.append(kStart);
        out_.append(path_);
        if (withKey) appendPointerSegment(key_, out_);
        out_.append(kValue);
        out_.append(value);
        out_.push_back('}');
        return;
      }
    }
    char* p = buffer_ + used_;
    *p++ = lead;
    std::memcpy(p, kStart.data(), kStart.size());
    p += kStart.size();
    p = put(p, path_);
    if (withKey) {
      *p++ = '/';
      for (const char c : key_) {
        if (c == '~' || c == '/') {
          *p++ = '~';
          *p++ = c == '~' ? '0' : '1';
        } else {
          *p++ = c;
        }
      }
    }
    std::memcpy(p, kValue.data(), kValue.size());
    p += kValue.size();
    p = put(p, value);
    *p++ = '}';
    used_ = static_cast<std::size_t>(p - buffer_);
  }

  // The values at ia_ and ib_, the value of member key_ when `withKey`;
  // false: not the same shape (or not valid).
  bool value(bool withKey) {
    if (ib_ >= b_.size()) return false;
    const char ca = a_[ia_];
    const char cb = b_[ib_];
    if (ca == '{' || ca == '[') {
      const std::size_t aEnd = skipContainer(ia_);
      const std::size_t length = aEnd - ia_;
      if (sameBytes(length)) {
        ia_ = aEnd;
        ib_ += length;
        return true;
      }
      if (ca == '{' && cb == '{') {
        const std::size_t mark = path_.size();
        if (withKey) appendPointerSegment(key_, path_);
        if (!object()) return false;
        path_.resize(mark);
        return true;
      }
      if (ca == '[' || cb == '[' || cb == '{') return false;  // arrays and new containers: the full diff
      JsonType tb = JsonType::Null;
      std::uint8_t fb = 0;
      const std::size_t lb = scanJsonScalar(rest(), tb, fb);
      if (lb == 0 || !delimitedAt(ib_ + lb)) return false;
      emitReplace(std::string_view(b_.data() + ib_, lb), withKey);  // an object becomes a scalar
      ia_ = aEnd;
      ib_ += lb;
      return true;
    }
    // A scalar of the current text: its end and type from its own bytes.
    // `marked`: a number with a fraction or an exponent, a string with an escape.
    std::size_t aEnd = ia_ + 1;
    bool marked = false;
    JsonType ta = JsonType::Number;
    switch (ca) {
      case '"':
        ta = JsonType::String;
        while (a_[aEnd] != '"') {
          if (a_[aEnd] == '\\') {
            marked = true;
            aEnd += 2;
          } else {
            ++aEnd;
          }
        }
        ++aEnd;
        break;
      case 't':
        ta = JsonType::True;
        aEnd = ia_ + 4;
        break;
      case 'n':
        ta = JsonType::Null;
        aEnd = ia_ + 4;
        break;
      case 'f':
        ta = JsonType::False;
        aEnd = ia_ + 5;
        break;
      default:  // '-' or a digit, then digits, then maybe '.', 'e' or 'E'
        while (aEnd < a_.size() && isDigit(a_[aEnd])) ++aEnd;
        if (aEnd < a_.size() && !isDelimiter(a_[aEnd])) {
          marked = true;
          while (aEnd < a_.size() && !isDelimiter(a_[aEnd])) ++aEnd;
        }
        break;
    }
    const std::size_t length = aEnd - ia_;
    if (sameBytes(length)) {
      ia_ = aEnd;
      ib_ += length;
      return true;
    }
    if (cb == '[' || cb == '{') return false;  // new containers: the full diff
    JsonType tb = JsonType::Null;
    std::uint8_t fb = 0;
    const std::size_t lb = scanJsonScalar(rest(), tb, fb);
    if (lb == 0 || !delimitedAt(ib_ + lb)) return false;
    const std::string_view ra(a_.data() + ia_, length);
    const std::string_view rb(b_.data() + ib_, lb);
    // The texts differ (the same bytes were skipped above): what is left of
    // numberTextsEqual and stringTextsEqual after their textEqual.
    bool equal = false;
    if (ta == tb) {
      if (ta == JsonType::Number) {
        equal = !marked && (fb & TapeNode::kIsInteger) != 0 ? isZero(ra) && isZero(rb) : numberValuesEqual(ra, rb);
      } else if (ta == JsonType::String) {
        equal = (marked || (fb & TapeNode::kHasEscape) != 0) && decodedStringsEqual(ra, rb);
      } else {
        equal = true;  // null, true, false
      }
    }
    if (!equal) emitReplace(rb, withKey);
    ia_ = aEnd;
    ib_ += lb;
    return true;
  }

  // The objects at ia_ and ib_ (both '{').
  bool object() {
    const std::size_t outMark = position();
    const std::size_t operationsMark = operations_;
    const std::size_t begin = ib_;
    ++ia_;
    ++ib_;
    if (a_[ia_] == '}') {
      if (ib_ >= b_.size() || b_[ib_] != '}') return false;
      ++ia_;
      ++ib_;
      return true;
    }
    for (;;) {
      // The same key, byte for byte, without escapes (its pointer segment is its text).
      std::size_t keyEnd = ia_ + 1;
      while (a_[keyEnd] != '"') {
        if (a_[keyEnd] == '\\') return false;
        ++keyEnd;
      }
      const std::size_t keyLength = keyEnd + 1 - ia_;  // with both quotes
      if (b_.size() - ib_ < keyLength + 1 || !bytesEqual(a_.data() + ia_, b_.data() + ib_, keyLength) ||
          b_[ib_ + keyLength] != ':') {
        return false;
      }
      key_ = std::string_view(a_.data() + ia_ + 1, keyLength - 2);
      ia_ += keyLength + 1;
      ib_ += keyLength + 1;
      if (!value(true)) return false;
      if (ib_ >= b_.size() || a_[ia_] != b_[ib_]) return false;  // a member more or fewer
      const char separator = a_[ia_];
      ++ia_;
      ++ib_;
      if (separator == '}') break;
    }
    // As Differ::diffContainer: one `replace` when the operations come out
    // larger (not counting the patch's '[' that the first operation writes).
    if (operations_ > operationsMark) {
      const std::size_t written = position() - outMark - (operationsMark == 0 ? 1 : 0);
      const std::size_t span = ib_ - begin;
      if (written > span + path_.size() + kReplaceSlackBytes) {
        truncate(outMark);
        operations_ = operationsMark;
        emitReplace(std::string_view(b_.data() + begin, span), false);
      }
    }
    return true;
  }

  std::string_view a_;
  std::string_view b_;
  std::string& out_;
  std::string path_;      // the pointer to the object being walked
  std::string_view key_;  // the key of the member being walked
  std::size_t ia_ = 0;
  std::size_t ib_ = 0;
  std::size_t operations_ = 0;
  std::size_t used_ = 0;       // bytes of buffer_ in use
  char buffer_[kBufferBytes];  // not initialized: written before it is read
};

}  // namespace

bool jsonEqual(const JsonTape& a, std::uint32_t ia, const JsonTape& b, std::uint32_t ib) {
  return equalValues(a, ia, b, ib);
}

Status diffTapes(const JsonTape& a, const JsonTape& b, const DiffOptions& options, std::string& out, DiffStats* stats) {
  if (a.empty() || b.empty()) return Status(ErrorCode::InvalidArgument, "diffTapes needs two parsed tapes");
  const std::size_t operations = Differ(a, b, options, out).run();
  if (stats != nullptr) stats->operations = operations;
  return Status::ok();
}

ShapeDiff diffSameShape(std::string_view current, std::string_view next, std::string& out) {
  return ShapeWalker(current, next, out).run();
}

Status diffJson(std::string_view a, std::string_view b, const DiffOptions& options, std::string& out,
                const ParseLimits& limits, DiffStats* stats) {
  JsonTape ta;
  JsonTape tb;
  if (Status s = ta.parse(a, limits); !s) return Status(s.code(), "first document: " + s.message());
  // The second text is parsed with the first as its guide: the parts they
  // share are copied rather than scanned.
  if (Status s = tb.parse(b, limits, &ta); !s) return Status(s.code(), "second document: " + s.message());
  return diffTapes(ta, tb, options, out, stats);
}

}  // namespace deltacast
