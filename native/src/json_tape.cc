#include "deltacast/json_tape.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "text_util.h"

namespace deltacast {

const char* jsonTypeName(JsonType type) noexcept {
  switch (type) {
    case JsonType::Null: return "null";
    case JsonType::False:
    case JsonType::True: return "boolean";
    case JsonType::Number: return "number";
    case JsonType::String: return "string";
    case JsonType::Array: return "array";
    case JsonType::Object: return "object";
  }
  return "unknown";
}

namespace {

inline bool isWs(unsigned char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
inline bool isDigit(unsigned char c) { return c >= '0' && c <= '9'; }
inline int hexValue(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Length of the valid UTF-8 sequence starting at p (lead byte >= 0x80), or 0.
inline std::size_t utf8SequenceLength(const unsigned char* p, const unsigned char* end) {
  const unsigned char c = p[0];
  auto cont = [&](std::size_t i) { return p + i < end && (p[i] & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && p[1] < 0xA0) return 0;   // overlong
    if (c == 0xED && p[1] >= 0xA0) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && p[1] < 0x90) return 0;   // overlong
    if (c == 0xF4 && p[1] >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

// The grammar of scalars, shared by the parser and scanJsonScalar. Each
// takes `p` at the value's first byte and returns nullptr with `p` past the
// value, or what is wrong with `p` at the fault.

// A number (RFC 8259 section 6); `integer`: it has no fraction and no exponent.
inline const char* scanNumber(const unsigned char*& p, const unsigned char* end, bool& integer) {
  integer = true;
  if (*p == '-') ++p;
  if (p == end || !isDigit(*p)) return "invalid number, expected a digit";
  if (*p == '0') {
    ++p;
    if (p != end && isDigit(*p)) return "invalid number, leading zero";
  } else {
    while (p != end && isDigit(*p)) ++p;
  }
  if (p != end && *p == '.') {
    integer = false;
    ++p;
    if (p == end || !isDigit(*p)) return "invalid number, expected a digit after '.'";
    while (p != end && isDigit(*p)) ++p;
  }
  if (p != end && (*p == 'e' || *p == 'E')) {
    integer = false;
    ++p;
    if (p != end && (*p == '+' || *p == '-')) ++p;
    if (p == end || !isDigit(*p)) return "invalid number, expected an exponent";
    while (p != end && isDigit(*p)) ++p;
  }
  return nullptr;
}

// A string, from its opening quote (RFC 8259 section 7, UTF-8 checked);
// `flags`: TapeNode::kHasEscape when it has a backslash escape.
inline const char* scanString(const unsigned char*& p, const unsigned char* end, std::uint8_t& flags) {
  ++p;  // opening quote
  flags = 0;
  for (;;) {
    // Fast path: plain ASCII.
    while (p != end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') ++p;
    if (p == end) return "unterminated string";
    const unsigned char c = *p;
    if (c == '"') break;
    if (c == '\\') {
      flags = TapeNode::kHasEscape;
      if (end - p < 2) return "unterminated string";
      const unsigned char e = p[1];
      if (e == 'u') {
        if (end - p < 6 || hexValue(p[2]) < 0 || hexValue(p[3]) < 0 || hexValue(p[4]) < 0 || hexValue(p[5]) < 0) {
          return "invalid \\u escape, expected four hex digits";
        }
        p += 6;
      } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
        p += 2;
      } else {
        return "invalid escape in string";
      }
    } else if (c < 0x20) {
      return "control character in string (must be escaped)";
    } else {
      const std::size_t length = utf8SequenceLength(p, end);
      if (length == 0) return "invalid UTF-8 in string";
      p += length;
    }
  }
  ++p;  // closing quote
  return nullptr;
}

class TapeBuilder {
 public:
  static constexpr std::uint32_t kNoGuide = UINT32_MAX;

  TapeBuilder(std::string_view text, const ParseLimits& limits, std::vector<TapeNode>& nodes, const JsonTape* guide)
      : base_(reinterpret_cast<const unsigned char*>(text.data())),
        p_(base_),
        end_(base_ + text.size()),
        limits_(limits),
        nodes_(nodes),
        // A guide with whitespace is not used: whether a copied span had any
        // would be unknown, and the tape must say exactly whether the text is compact.
        guide_(guide != nullptr && !guide->empty() && guide->compact() ? guide : nullptr) {}

  Status run(bool& compact) {
    skipWs();
    if (!value(0, guide_ != nullptr ? 0 : kNoGuide, false)) return std::move(error_);
    skipWs();
    if (p_ != end_) {
      fail(ErrorCode::InvalidJson, "unexpected text after the JSON value");
      return std::move(error_);
    }
    compact = !sawWhitespace_;
    return Status::ok();
  }

 private:
  std::uint32_t offset() const { return static_cast<std::uint32_t>(p_ - base_); }

  bool fail(ErrorCode code, const char* what) {
    if (error_.isOk()) {
      std::string message = "invalid JSON at byte " + std::to_string(offset()) + ": " + what;
      if (code == ErrorCode::TooDeep) {
        message = "JSON nesting deeper than " + std::to_string(limits_.maxDepth) + " levels at byte " +
                  std::to_string(offset());
      }
      error_ = Status(code, std::move(message));
    }
    return false;
  }

  void skipWs() {
    const unsigned char* start = p_;
    while (p_ != end_ && isWs(*p_)) ++p_;
    if (p_ != start) sawWhitespace_ = true;
  }

  std::uint32_t push(JsonType type, std::uint32_t begin) {
    nodes_.push_back(TapeNode{begin, 0, 0, 0, type, 0});
    return static_cast<std::uint32_t>(nodes_.size() - 1);
  }

  void close(std::uint32_t index) {
    nodes_[index].end = offset();
    nodes_[index].next = static_cast<std::uint32_t>(nodes_.size());
  }

  // ---- guided copying ---------------------------------------------------------
  //
  // With a guide (the previous version of the document), a container whose
  // text is byte-identical to the guide's corresponding container is not
  // parsed: the guide's nodes are copied with their offsets shifted. This is
  // sound because the guide's span is a complete, validated value and
  // containers are self-delimiting, so the same bytes here are that same value.

  bool isContainer(std::uint32_t g) const {
    const JsonType type = (*guide_)[g].type;
    return type == JsonType::Object || type == JsonType::Array;
  }

  bool tryCopy(std::uint32_t g) {
    const TapeNode& source = (*guide_)[g];
    const std::size_t length = source.end - source.begin;
    if (static_cast<std::size_t>(end_ - p_) < length ||
        *p_ != static_cast<unsigned char>(guide_->text()[source.begin]) ||
        !bytesEqual(p_, guide_->text().data() + source.begin, length)) {
      return false;
    }
    copyNodes(g, source.next);
    p_ += length;
    return true;
  }

  // Appends the guide's nodes [g, stop) (whole subtrees, in the guide from
  // the value at the current position on), their offsets shifted to here: a
  // block copy, then the offsets fixed in place while the block is in cache.
  void copyNodes(std::uint32_t g, std::uint32_t stop) {
    const std::uint32_t first = static_cast<std::uint32_t>(nodes_.size());
    const TapeNode* from = &(*guide_)[g];
    nodes_.insert(nodes_.end(), from, from + (stop - g));
    shiftNodes(first, g, (*guide_)[g].begin);
  }

  // Nodes [first, end) were copied from the guide's [g, ...), whose first
  // value starts at byte `sourceBegin` of the guide and at the current
  // position here: their offsets and indices move by the same amounts.
  void shiftNodes(std::uint32_t first, std::uint32_t g, std::uint32_t sourceBegin) {
    const std::uint32_t shift = offset() - sourceBegin;  // modulo 2^32: adding it moves a guide offset here
    const std::uint32_t indexShift = first - g;
    TapeNode* to = nodes_.data() + first;
    const std::size_t count = nodes_.size() - first;
    for (std::size_t k = 0; k < count; ++k) {
      to[k].begin += shift;
      to[k].end += shift;
      to[k].next += indexShift;
    }
  }

  // Length of the common prefix of the text at the current position and
  // `other` (at most `limit` bytes): memcmp over blocks that double in size,
  // then bytes within the block that differs.
  std::size_t commonPrefix(const unsigned char* other, std::size_t limit) const {
    limit = std::min(limit, static_cast<std::size_t>(end_ - p_));
    std::size_t done = 0;
    std::size_t block = 64;
    while (done < limit) {
      const std::size_t n = std::min(block, limit - done);
      if (std::memcmp(p_ + done, other + done, n) != 0) {
        // The difference is within [done, done + n): halve down to 32 bytes.
        std::size_t width = n;
        while (width > 32) {
          const std::size_t half = width / 2;
          if (std::memcmp(p_ + done, other + done, half) == 0) {
            done += half;
            width -= half;
          } else {
            width = half;
          }
        }
        while (p_[done] == other[done]) ++done;
        return done;
      }
      done += n;
      if (block < 16384) block *= 2;
    }
    return done;
  }

  // Guided arrays: from guide element `g` on, the longest run of whole guide
  // elements whose bytes, and the byte after each, equal the text here is
  // copied at once (one comparison and one block copy for the run, not one
  // per element). The byte after an element (',' or ']' in a compact guide)
  // ends the element at the same place here, so a number is not taken for a
  // prefix of a longer one. Returns the elements copied (0: none), and
  // leaves `g` at the guide element after the run.
  std::uint32_t copyRun(std::uint32_t& g, std::uint32_t guideArray) {
    const TapeNode& array = (*guide_)[guideArray];
    const std::uint32_t runBegin = (*guide_)[g].begin;
    // Up to and including the guide array's closing bracket.
    const std::size_t matched =
        commonPrefix(reinterpret_cast<const unsigned char*>(guide_->text().data()) + runBegin, array.end - runBegin);
    if ((*guide_)[g].end - runBegin + 1 > matched) return 0;
    // The guide's nodes are in text order: those that start within the
    // matched bytes are [g, bound). Copied as a block first, the elements
    // are then walked in cache; the last one may reach past the matched
    // bytes, and is cut off with what follows it.
    const TapeNode* nodes = &(*guide_)[0];
    const std::uint32_t limit = runBegin + static_cast<std::uint32_t>(matched);
    const std::uint32_t bound = static_cast<std::uint32_t>(
        std::partition_point(nodes + g, nodes + array.next, [&](const TapeNode& n) { return n.begin < limit; }) -
        nodes);
    const std::uint32_t first = static_cast<std::uint32_t>(nodes_.size());
    nodes_.insert(nodes_.end(), nodes + g, nodes + bound);
    const TapeNode* copied = nodes_.data() + first;  // copied[k - g]: guide node k, not yet shifted
    std::uint32_t k = g;
    std::uint32_t stop = g;  // one past the last whole element
    std::uint32_t elements = 0;
    std::uint32_t runEnd = runBegin;
    while (k < bound && copied[k - g].end - runBegin + 1 <= matched) {
      stop = copied[k - g].next;
      runEnd = copied[k - g].end;
      ++elements;
      k = stop;
    }
    nodes_.resize(first + (stop - g));
    shiftNodes(first, g, runBegin);
    p_ += runEnd - runBegin;
    g = stop < array.next ? stop : kNoGuide;
    return elements;
  }

  // ---- grammar ------------------------------------------------------------------

  // `g`: the guide node expected to correspond to this value, or kNoGuide.
  // `tried`: the caller already attempted a copy of `g`.
  bool value(std::uint32_t depth, std::uint32_t g, bool tried) {
    if (p_ == end_) return fail(ErrorCode::InvalidJson, "unexpected end of input, expected a value");
    switch (*p_) {
      case '{':
        if (g != kNoGuide && !tried && (*guide_)[g].type == JsonType::Object && tryCopy(g)) return true;
        return object(depth, g != kNoGuide && (*guide_)[g].type == JsonType::Object ? g : kNoGuide);
      case '[':
        if (g != kNoGuide && !tried && (*guide_)[g].type == JsonType::Array && tryCopy(g)) return true;
        return array(depth, g != kNoGuide && (*guide_)[g].type == JsonType::Array ? g : kNoGuide);
      case '"': return string();
      case 't': return literal("true", 4, JsonType::True);
      case 'f': return literal("false", 5, JsonType::False);
      case 'n': return literal("null", 4, JsonType::Null);
      default:
        if (*p_ == '-' || isDigit(*p_)) return number();
        return fail(ErrorCode::InvalidJson, "unexpected character, expected a value");
    }
  }

  bool literal(const char* word, std::size_t length, JsonType type) {
    if (static_cast<std::size_t>(end_ - p_) < length || !bytesEqual(p_, word, length)) {
      return fail(ErrorCode::InvalidJson, "invalid literal, expected true, false or null");
    }
    const std::uint32_t index = push(type, offset());
    p_ += length;
    close(index);
    return true;
  }

  bool number() {
    const std::uint32_t index = push(JsonType::Number, offset());
    bool integer = true;
    if (const char* error = scanNumber(p_, end_, integer)) return fail(ErrorCode::InvalidJson, error);
    nodes_[index].flags = integer ? TapeNode::kIsInteger : 0;
    close(index);
    return true;
  }

  bool string() {
    const std::uint32_t index = push(JsonType::String, offset());
    std::uint8_t flags = 0;
    if (const char* error = scanString(p_, end_, flags)) return fail(ErrorCode::InvalidJson, error);
    nodes_[index].flags = flags;
    close(index);
    return true;
  }

  bool array(std::uint32_t depth, std::uint32_t g) {
    if (depth >= limits_.maxDepth) return fail(ErrorCode::TooDeep, "");
    const std::uint32_t index = push(JsonType::Array, offset());
    ++p_;
    skipWs();
    std::uint32_t count = 0;
    // Guide elements: `expected` is the one after the last element matched;
    // `previous` is the one last used for an element that matched nothing
    // (that element may have been inserted, not changed).
    const std::uint32_t guideEnd = g == kNoGuide ? 0 : (*guide_)[g].next;
    std::uint32_t expected = g == kNoGuide || (*guide_)[g].count == 0 ? kNoGuide : g + 1;
    std::uint32_t previous = kNoGuide;
    auto after = [&](std::uint32_t k) {
      return k == kNoGuide || (*guide_)[k].next >= guideEnd ? kNoGuide : (*guide_)[k].next;
    };
    // What follows an element (or a run of them): ',' goes on, ']' ends the
    // array; anything else has failed (fail() recorded why).
    enum class Separator { More, End, Failed };
    auto separator = [&] {
      skipWs();
      if (p_ == end_) {
        fail(ErrorCode::InvalidJson, "unexpected end of input in an array");
        return Separator::Failed;
      }
      if (*p_ == ',') {
        ++p_;
        skipWs();
        return Separator::More;
      }
      if (*p_ == ']') {
        ++p_;
        return Separator::End;
      }
      fail(ErrorCode::InvalidJson, "expected ',' or ']' after an array element");
      return Separator::Failed;
    };
    if (p_ != end_ && *p_ == ']') {
      ++p_;
    } else {
      for (;;) {
        // A run of unchanged elements.
        if (expected != kNoGuide) {
          if (const std::uint32_t run = copyRun(expected, g); run != 0) {
            count += run;
            previous = kNoGuide;
            const Separator next = separator();
            if (next == Separator::More) continue;
            if (next == Separator::End) break;
            return false;
          }
        }
        bool copied = false;
        if (expected != kNoGuide && p_ != end_ && (*p_ == '{' || *p_ == '[')) {
          const std::uint32_t second = after(expected);
          const std::uint32_t candidates[] = {expected, second, after(second), previous};
          for (const std::uint32_t c : candidates) {
            if (c != kNoGuide && isContainer(c) && tryCopy(c)) {
              expected = after(c);
              previous = kNoGuide;
              copied = true;
              break;
            }
          }
        }
        if (!copied) {
          if (!value(depth + 1, expected, true)) return false;
          previous = expected;
          expected = after(expected);
        }
        ++count;
        const Separator next = separator();
        if (next == Separator::More) continue;
        if (next == Separator::End) break;
        return false;
      }
    }
    nodes_[index].count = count;
    close(index);
    return true;
  }

  // The guide member with the same key: the one at the same position first,
  // else a short linear search.
  std::uint32_t guideMember(std::uint32_t g, std::uint32_t& cursor, std::uint32_t key) {
    const std::uint32_t end = (*guide_)[g].next;
    const TapeNode& k = nodes_[key];
    const std::string_view raw(reinterpret_cast<const char*>(base_) + k.begin, k.end - k.begin);
    auto same = [&](std::uint32_t c) { return guide_->raw(c) == raw; };
    if (cursor < end && same(cursor)) {
      const std::uint32_t value = cursor + 1;
      cursor = (*guide_)[value].next;
      return value;
    }
    if ((*guide_)[g].count > 32) return kNoGuide;
    for (std::uint32_t c = g + 1; c < end; c = (*guide_)[c + 1].next) {
      if (same(c)) {
        cursor = (*guide_)[c + 1].next;
        return c + 1;
      }
    }
    return kNoGuide;
  }

  // ---- duplicate member names ----------------------------------------------
  //
  // An object may not name a member twice ("a" and "\u0061" are the same
  // name): JSON.parse would keep the last, a diff or a patch would see the
  // first, and subscribers would be sent patches they cannot apply. Small
  // objects keep a 64-bit mask of (length, first byte, last byte) and compare
  // names only when a bit repeats; from kHashFrom members on, the names'
  // hashes are collected and sorted when the object closes, so the check
  // stays linear.

  static constexpr std::uint32_t kHashFrom = 16;

  struct NameCheck {
    std::uint64_t mask = 0;
    bool escaped = false;              // a name with an escape: small objects compare every name
    std::vector<std::uint64_t> names;  // large objects: hash << 32 | node
  };

  std::string_view nameOf(std::uint32_t key, std::string& scratch) const {
    const TapeNode& node = nodes_[key];
    const std::string_view raw(reinterpret_cast<const char*>(base_) + node.begin, node.end - node.begin);
    if ((node.flags & TapeNode::kHasEscape) == 0) return raw.substr(1, raw.size() - 2);
    scratch.clear();
    decodeJsonString(raw, scratch);
    return scratch;
  }

  bool sameName(std::uint32_t a, std::uint32_t b) const {
    const TapeNode& x = nodes_[a];
    const TapeNode& y = nodes_[b];
    if (((x.flags | y.flags) & TapeNode::kHasEscape) == 0) {
      return x.end - x.begin == y.end - y.begin && bytesEqual(base_ + x.begin, base_ + y.begin, x.end - x.begin);
    }
    std::string sa;
    std::string sb;
    return nameOf(a, sa) == nameOf(b, sb);
  }

  static std::uint32_t hashName(std::string_view name) {
    std::uint64_t h = 0x9E3779B97F4A7C15ull ^ name.size();
    std::size_t i = 0;
    for (; i + 8 <= name.size(); i += 8) {
      std::uint64_t chunk = 0;
      std::memcpy(&chunk, name.data() + i, 8);
      h = (h ^ chunk) * 0xFF51AFD7ED558CCDull;
      h ^= h >> 32;
    }
    std::uint64_t tail = 0;
    std::memcpy(&tail, name.data() + i, name.size() - i);
    h = (h ^ tail) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    return static_cast<std::uint32_t>(h);
  }

  // Large objects: the (hash, node) pairs of all names, checked when the
  // object closes (a radix sort on the hash, then equal neighbours compared):
  // sequential work, no table to miss in. The node of a repeated name, or 0.
  std::uint32_t repeatedName(std::vector<std::uint64_t>& names) {
    std::vector<std::uint64_t> sorted(names.size());
    for (int shift = 32; shift < 64; shift += 11) {  // 3 stable passes over the hash bits
      std::uint32_t counts[2049] = {};
      for (const std::uint64_t entry : names) ++counts[((entry >> shift) & 2047) + 1];
      for (int d = 0; d < 2048; ++d) counts[d + 1] += counts[d];
      for (const std::uint64_t entry : names) sorted[counts[(entry >> shift) & 2047]++] = entry;
      names.swap(sorted);
    }
    std::uint32_t found = 0;
    for (std::size_t i = 1; i < names.size(); ++i) {
      if ((names[i] >> 32) != (names[i - 1] >> 32)) continue;
      // Equal hashes: compare every pair in the run.
      std::size_t start = i - 1;
      while (i + 1 < names.size() && (names[i + 1] >> 32) == (names[start] >> 32)) ++i;
      for (std::size_t x = start; x <= i; ++x) {
        for (std::size_t y = x + 1; y <= i; ++y) {
          const auto a = static_cast<std::uint32_t>(names[x]);
          const auto b = static_cast<std::uint32_t>(names[y]);
          if (sameName(a, b) && (found == 0 || std::max(a, b) < found)) found = std::max(a, b);
        }
      }
    }
    return found;
  }

  std::uint64_t hashedName(std::uint32_t key) const {
    std::string scratch;
    return (std::uint64_t{hashName(nameOf(key, scratch))} << 32) | key;
  }

  // False when `key` (the name of member number `count`) repeats an earlier
  // name of the object at node `object`.
  bool uniqueName(std::uint32_t object, std::uint32_t key, std::uint32_t count, NameCheck& check) {
    if (count < kHashFrom) {
      const TapeNode& k = nodes_[key];
      if ((k.flags & TapeNode::kHasEscape) != 0) check.escaped = true;
      if (!check.escaped) {
        const std::uint32_t length = k.end - k.begin;  // with the quotes: >= 2
        const std::uint32_t mix =
            (length * 0x9E3779B1u) ^ (base_[k.begin + 1] * 0x85EBCA6Bu) ^ (base_[k.end - 2] * 0xC2B2AE35u);
        const std::uint64_t bit = std::uint64_t{1} << (mix >> 26);
        const bool seen = (check.mask & bit) != 0;
        check.mask |= bit;
        if (!seen) return true;
      }
      for (std::uint32_t c = object + 1; c < key; c = nodes_[c + 1].next) {
        if (sameName(c, key)) return false;
      }
      return true;
    }
    if (check.names.empty()) {
      for (std::uint32_t c = object + 1; c < key; c = nodes_[c + 1].next) check.names.push_back(hashedName(c));
    }
    check.names.push_back(hashedName(key));
    return true;  // checked when the object closes
  }

  bool object(std::uint32_t depth, std::uint32_t g) {
    if (depth >= limits_.maxDepth) return fail(ErrorCode::TooDeep, "");
    const std::uint32_t index = push(JsonType::Object, offset());
    ++p_;
    skipWs();
    std::uint32_t count = 0;
    NameCheck names;
    std::uint32_t cursor = g == kNoGuide ? 0 : g + 1;
    if (p_ != end_ && *p_ == '}') {
      ++p_;
    } else {
      for (;;) {
        if (p_ == end_ || *p_ != '"') return fail(ErrorCode::InvalidJson, "expected a string as object key");
        const std::uint32_t key = static_cast<std::uint32_t>(nodes_.size());
        const unsigned char* keyStart = p_;
        if (!string()) return false;
        if (!uniqueName(index, key, count, names)) {
          p_ = keyStart;
          return fail(ErrorCode::InvalidJson, "duplicate member name in an object");
        }
        skipWs();
        if (p_ == end_ || *p_ != ':') return fail(ErrorCode::InvalidJson, "expected ':' after an object key");
        ++p_;
        skipWs();
        const std::uint32_t member = g == kNoGuide ? kNoGuide : guideMember(g, cursor, key);
        if (!value(depth + 1, member, false)) return false;
        ++count;
        skipWs();
        if (p_ == end_) return fail(ErrorCode::InvalidJson, "unexpected end of input in an object");
        if (*p_ == ',') {
          ++p_;
          skipWs();
          continue;
        }
        if (*p_ == '}') {
          ++p_;
          break;
        }
        return fail(ErrorCode::InvalidJson, "expected ',' or '}' after an object member");
      }
    }
    if (!names.names.empty()) {
      if (const std::uint32_t repeated = repeatedName(names.names); repeated != 0) {
        p_ = base_ + nodes_[repeated].begin;
        return fail(ErrorCode::InvalidJson, "duplicate member name in an object");
      }
    }
    nodes_[index].count = count;
    close(index);
    return true;
  }

  const unsigned char* base_;
  const unsigned char* p_;
  const unsigned char* end_;
  const ParseLimits& limits_;
  std::vector<TapeNode>& nodes_;
  const JsonTape* guide_;  // the previous version of the document, or null
  Status error_;
  bool sawWhitespace_ = false;
};

void appendUtf8(std::uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::uint32_t readHex4(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 4) | static_cast<std::uint32_t>(hexValue(static_cast<unsigned char>(p[i])));
  return v;
}

}  // namespace

Status JsonTape::parse(std::string_view text, const ParseLimits& limits, const JsonTape* guide) {
  nodes_.clear();
  text_ = {};
  compact_ = true;
  if (text.size() > limits.maxBytes || text.size() >= 0xFFFFFFFFu) {
    return Status(ErrorCode::TooLarge, "JSON text of " + std::to_string(text.size()) + " bytes is over the limit of " +
                                           std::to_string(limits.maxBytes) + " bytes");
  }
  // One node per 8 bytes of text covers dense documents (a price board is
  // ~10 bytes a node); a guide, the previous version, is a closer guess.
  // Either way at most one reallocation.
  const std::size_t guess =
      guide != nullptr && !guide->empty() ? guide->size() + guide->size() / 8 + 16 : text.size() / 8 + 4;
  if (nodes_.capacity() < guess) nodes_.reserve(guess);
  TapeBuilder builder(text, limits, nodes_, guide);
  bool compact = true;
  Status status = builder.run(compact);
  if (!status) {
    nodes_.clear();
    return status;
  }
  text_ = text;
  compact_ = compact;
  return Status::ok();
}

std::size_t scanJsonScalar(std::string_view text, JsonType& type, std::uint8_t& flags) noexcept {
  const auto* begin = reinterpret_cast<const unsigned char*>(text.data());
  const unsigned char* end = begin + text.size();
  const unsigned char* p = begin;
  if (p == end) return 0;
  flags = 0;
  const auto literal = [&](std::string_view word, JsonType literalType) -> std::size_t {
    if (text.size() < word.size() || !bytesEqual(p, word.data(), word.size())) return 0;
    type = literalType;
    return word.size();
  };
  switch (*p) {
    case '"':
      type = JsonType::String;
      return scanString(p, end, flags) == nullptr ? static_cast<std::size_t>(p - begin) : 0;
    case 't': return literal("true", JsonType::True);
    case 'f': return literal("false", JsonType::False);
    case 'n': return literal("null", JsonType::Null);
    default: {
      if (*p != '-' && !isDigit(*p)) return 0;
      type = JsonType::Number;
      bool integer = true;
      if (scanNumber(p, end, integer) != nullptr) return 0;
      flags = integer ? TapeNode::kIsInteger : 0;
      return static_cast<std::size_t>(p - begin);
    }
  }
}

void decodeJsonString(std::string_view raw, std::string& out) {
  const char* p = raw.data() + 1;
  const char* end = raw.data() + raw.size() - 1;
  while (p < end) {
    const char* run = p;
    while (p < end && *p != '\\') ++p;
    out.append(run, p);
    if (p >= end) break;
    const char e = p[1];
    switch (e) {
      case 'b':
        out.push_back('\b');
        p += 2;
        break;
      case 'f':
        out.push_back('\f');
        p += 2;
        break;
      case 'n':
        out.push_back('\n');
        p += 2;
        break;
      case 'r':
        out.push_back('\r');
        p += 2;
        break;
      case 't':
        out.push_back('\t');
        p += 2;
        break;
      case 'u': {
        std::uint32_t cp = readHex4(p + 2);
        p += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
          const std::uint32_t low = readHex4(p + 2);
          if (low >= 0xDC00 && low <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            p += 6;
          }
        }
        appendUtf8(cp, out);
        break;
      }
      default:
        out.push_back(e);
        p += 2;
        break;  // \" \\ \/
    }
  }
}

void appendJsonEscaped(std::string_view s, std::string& out) {
  static const char* const kHex = "0123456789abcdef";
  std::size_t run = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == 0xED && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0xA0) {
      // A lone surrogate kept as WTF-8 by decodeJsonString: not valid UTF-8,
      // so it goes back out as a \u escape (as JSON.stringify writes it).
      out.append(s.data() + run, i - run);
      const std::uint32_t cp = 0xD000u | ((static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 6) |
                               (static_cast<unsigned char>(s[i + 2]) & 0x3Fu);
      out.append("\\u");
      out.push_back(kHex[(cp >> 12) & 0xF]);
      out.push_back(kHex[(cp >> 8) & 0xF]);
      out.push_back(kHex[(cp >> 4) & 0xF]);
      out.push_back(kHex[cp & 0xF]);
      i += 2;
      run = i + 1;
      continue;
    }
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      default:
        out.append("\\u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xF]);
    }
  }
  out.append(s.data() + run, s.size() - run);
}

bool isValidUtf8(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    if (*p < 0x80) {
      ++p;
      continue;
    }
    const std::size_t length = utf8SequenceLength(p, end);
    if (length == 0) return false;
    p += length;
  }
  return true;
}

void appendMinified(std::string_view json, std::string& out) {
  for (std::size_t i = 0; i < json.size();) {
    const char c = json[i];
    if (c == '"') {
      const std::size_t end = jsonStringEnd(json, i);
      out.append(json, i, end - i);
      i = end;
    } else {
      if (!isWs(static_cast<unsigned char>(c))) out.push_back(c);
      ++i;
    }
  }
}

}  // namespace deltacast
