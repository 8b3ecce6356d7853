// The diff engine: RFC 6902 operations that turn one JSON text into another.
//
// It works on two JsonTapes (validated indexes of JSON texts). Subtrees whose
// text spans are byte-identical are skipped without being walked; the values
// that go into the patch are copied from the new text. Objects are compared
// member by member; arrays whose elements are all objects carrying
// `arrayKey` (with a string or number value) are matched by that key, so an
// inserted, removed or moved row costs one operation; other arrays use a
// bounded LCS or, above the bound, an index-by-index comparison. When the
// operations for a container would be larger than the container's new text,
// they are replaced by one `replace` of the whole container.
//
// The result is a JSON array of operations, sequentially applicable: each
// operation's indices account for the operations before it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "deltacast/json_tape.h"
#include "deltacast/status.h"

namespace deltacast {

// A container's operations give way to one `replace` of it when they are
// longer than its compact text, its path and these bytes: the replace's own
// frame (32) and 32 in favour of precise operations, which keep unchanged
// subtrees shared on the client.
inline constexpr std::size_t kReplaceSlackBytes = 64;

struct DiffOptions {
  std::string arrayKey = "id";         // empty: no keyed matching
  std::size_t maxLcsCells = 1u << 18;  // LCS table bound (rows x columns) for unkeyed arrays
  // A JSON pointer the two values sit at inside a larger document ("/12" for
  // a row of a root array): every path starts with it, and the choice of one
  // `replace` over precise operations counts it, so the operations are those
  // the diff of the whole documents gives for that value.
  std::string pathPrefix;
};

struct DiffStats {
  std::size_t operations = 0;
};

// Appends the operations turning a into b to `out`, as a JSON array text.
// Both tapes must be non-empty (parsed successfully). Never fails on valid
// tapes; the Status is for symmetry with the text entry point.
Status diffTapes(const JsonTape& a, const JsonTape& b, const DiffOptions& options, std::string& out,
                 DiffStats* stats = nullptr);

// The fast path for a new version of a small document of the same shape (a
// tiny topic's next value). `current`: compact, valid JSON (a topic's text);
// `next`: any text. When `next` is compact JSON with the same members in the
// same order (arrays the same bytes, objects walked member by member) and
// differs only in scalars, appends what diffTapes appends for the two with
// default options and no path prefix (Changed, or Unchanged for "[]"),
// having validated `next` as JsonTape::parse would. Anything else is Other,
// with `out` as it was: the caller parses and diffs. The walk stops at the
// first difference in shape, so Other costs at most one pass over both texts.
enum class ShapeDiff : std::uint8_t { Unchanged, Changed, Other };
ShapeDiff diffSameShape(std::string_view current, std::string_view next, std::string& out);

// Parses and validates both texts, then diffs them. DELTACAST_INVALID_JSON,
// DELTACAST_TOO_LARGE or DELTACAST_TOO_DEEP name the text at fault.
Status diffJson(std::string_view a, std::string_view b, const DiffOptions& options, std::string& out,
                const ParseLimits& limits = {}, DiffStats* stats = nullptr);

// JSON equality (RFC 6902 `test` semantics): numbers by value, objects
// regardless of member order, strings after unescaping.
bool jsonEqual(const JsonTape& a, std::uint32_t ia, const JsonTape& b, std::uint32_t ib);

}  // namespace deltacast
