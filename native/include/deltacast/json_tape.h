// JsonTape: a validated, flat index of a JSON text.
//
// The diff engine works on JSON text, not on a DOM: one validating pass over
// the text records every value as a TapeNode (its type, its byte span and the
// index just past its subtree). Comparing two subtrees then starts with a
// memcmp of their spans, so unchanged parts of a document cost almost nothing,
// and values that go into a patch are copied from the text as they are.
//
// Layout: values in document order. A container node is followed by its
// children; an object's children alternate key (a String node) and value.
// `next` is the index of the first node after the subtree, so siblings are
// reached without walking into children.
//
// A tape does not own its text: the caller keeps the text alive and unchanged
// for as long as the tape is used.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "deltacast/status.h"

namespace deltacast {

enum class JsonType : std::uint8_t { Null, False, True, Number, String, Array, Object };

const char* jsonTypeName(JsonType type) noexcept;

struct TapeNode {
  std::uint32_t begin;  // first byte of the value (the quote of a string)
  std::uint32_t end;    // one past the last byte
  std::uint32_t next;   // index of the node after this subtree
  std::uint32_t count;  // members of an object, elements of an array; 0 otherwise
  JsonType type;
  std::uint8_t flags;  // kHasEscape for strings, kIsInteger for numbers

  static constexpr std::uint8_t kHasEscape = 1;  // the string contains a backslash escape
  static constexpr std::uint8_t kIsInteger = 2;  // the number has no fraction and no exponent
};

struct ParseLimits {
  std::size_t maxBytes = 64u << 20;  // DELTACAST_TOO_LARGE above this
  std::uint32_t maxDepth = 512;      // DELTACAST_TOO_DEEP above this
};

class JsonTape {
 public:
  // Validates `text` as one JSON value (RFC 8259, UTF-8) and indexes it.
  // An object that names a member twice (after unescaping: "a" and "\u0061"
  // are one name) is refused with DELTACAST_INVALID_JSON, so every reader of a
  // tape sees the same members JSON.parse would. On failure the tape is empty
  // and the status says what was wrong and at which byte.
  //
  // `guide`, when given, is a tape of a previous version of the document
  // (another tape, whose text is still alive). Containers whose bytes are
  // identical to the guide's corresponding container are copied from the
  // guide instead of being scanned, and so are runs of unchanged array
  // elements, so a new version that differs in a few places costs little
  // more than a memcmp and a copy of the guide's nodes. The result is the
  // same tape as without a guide (the same nodes, the same compact()). A
  // guide that is not compact (has whitespace) is not used.
  Status parse(std::string_view text, const ParseLimits& limits = {}, const JsonTape* guide = nullptr);

  bool empty() const noexcept { return nodes_.empty(); }
  // Empty again, keeping the nodes' memory for the next parse.
  void clear() noexcept {
    nodes_.clear();
    text_ = {};
    compact_ = true;
  }
  std::string_view text() const noexcept { return text_; }
  // Points the tape at another copy of the same bytes (node offsets are
  // relative to the text's start), e.g. after the text moved into a snapshot.
  void rebase(std::string_view sameText) noexcept { text_ = sameText; }
  std::uint32_t size() const noexcept { return static_cast<std::uint32_t>(nodes_.size()); }
  // Nodes allocated (what the tape costs in memory).
  std::size_t capacity() const noexcept { return nodes_.capacity(); }
  // Gives back the reserve when it is more than the nodes themselves: for
  // tapes that are kept (a topic's state), not for scratch tapes.
  void releaseSpareCapacity() {
    if (nodes_.capacity() > 2 * nodes_.size() + 16) nodes_.shrink_to_fit();
  }
  const TapeNode& operator[](std::uint32_t index) const noexcept { return nodes_[index]; }
  // The raw text of a value (for a string, with its quotes and escapes).
  std::string_view raw(std::uint32_t index) const noexcept {
    return text_.substr(nodes_[index].begin, nodes_[index].end - nodes_[index].begin);
  }
  // True when the text has no whitespace outside strings, so raw spans are
  // already minified.
  bool compact() const noexcept { return compact_; }

 private:
  std::string_view text_;
  std::vector<TapeNode> nodes_;
  bool compact_ = true;
};

// The JSON scalar (a string, number, true, false or null) at the start of
// `text`, validated exactly as JsonTape::parse validates one: its length in
// bytes, or 0 when `text` does not start with a valid scalar. Sets `type`, and
// `flags` as a TapeNode's (kHasEscape, kIsInteger). What follows the scalar is
// not looked at ("12," gives 2).
std::size_t scanJsonScalar(std::string_view text, JsonType& type, std::uint8_t& flags) noexcept;

// Decodes the raw text of a JSON string (with its quotes) into UTF-8.
// Lone surrogates from \u escapes are kept as their 3-byte (WTF-8) form.
// The input must have been validated by JsonTape.
void decodeJsonString(std::string_view raw, std::string& out);

// Appends `s` to `out` as the content of a JSON string (no quotes), escaping
// what JSON requires.
void appendJsonEscaped(std::string_view s, std::string& out);

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or values above U+10FFFF).
bool isValidUtf8(std::string_view s) noexcept;

// Appends a validated JSON text to `out` without insignificant whitespace.
void appendMinified(std::string_view json, std::string& out);

}  // namespace deltacast
