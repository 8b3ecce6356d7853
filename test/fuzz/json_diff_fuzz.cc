// The JSON diff: two documents (split at the first blank line). Oracle: when
// both parse, the patch is JSON, applies to the first with the native applier,
// and the result equals the second (RFC 6902 equality). And: the second
// parsed with the first as its guide gives the very tape (or error) of a
// plain parse. And: the same-shape diff, when it answers, gives the full
// diff's patch for a text the parser accepts. And: the second text
// minified gives the same patch.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "deltacast/json_diff.h"
#include "deltacast/json_patch.h"
#include "fuzz_util.h"

using namespace deltacast;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view a;
  std::string_view b;
  fuzz::splitInTwo(std::string_view(reinterpret_cast<const char*>(data), size), a, b);
  const ParseLimits limits{1u << 20, 64};
  DiffOptions options;
  options.maxLcsCells = 1u << 12;
  {
    JsonTape guide;
    JsonTape plain;
    JsonTape guided;
    if (guide.parse(a, limits).isOk()) {
      const Status plainStatus = plain.parse(b, limits);
      const Status guidedStatus = guided.parse(b, limits, &guide);
      if (plainStatus.message() != guidedStatus.message())
        fuzz::finding("a guided parse fails otherwise", guidedStatus.message());
      bool same = plain.size() == guided.size() && plain.compact() == guided.compact();
      for (std::uint32_t i = 0; same && i < plain.size(); ++i) {
        same = plain[i].begin == guided[i].begin && plain[i].end == guided[i].end && plain[i].next == guided[i].next &&
               plain[i].count == guided[i].count && plain[i].type == guided[i].type &&
               plain[i].flags == guided[i].flags;
      }
      if (!same) fuzz::finding("a guided parse gives another tape than a plain one");
    }
  }
  {
    // The same-shape path (on a compact, valid first text): when it answers,
    // the second text is valid and its patch is the full diff's, byte for byte.
    JsonTape first;
    if (first.parse(a, limits).isOk() && first.compact()) {
      std::string fast = "kept";
      const ShapeDiff shape = diffSameShape(a, b, fast);
      if (shape == ShapeDiff::Other) {
        if (fast != "kept") fuzz::finding("the same-shape diff gave up and left output behind", fast);
      } else {
        JsonTape second;
        const Status parsed = second.parse(b, limits);
        if (!parsed.isOk()) fuzz::finding("the same-shape diff took a text the parser refuses", parsed.message());
        std::string full;
        (void)diffTapes(first, second, DiffOptions{}, full);
        if ("kept" + full != fast) fuzz::finding("the same-shape diff differs from the full diff", fast + "\n" + full);
        if ((shape == ShapeDiff::Unchanged) != (full == "[]")) fuzz::finding("the same-shape diff's verdict is wrong");
      }
    }
  }
  std::string ops;
  if (!diffJson(a, b, options, ops, limits).isOk()) return 0;
  fuzz::requireJson(ops, "a patch that is not JSON");
  {
    // Whitespace changes nothing: the second text minified gives the same patch.
    std::string compact;
    appendMinified(b, compact);
    std::string compactOps;
    if (!diffJson(a, compact, options, compactOps, limits).isOk() || compactOps != ops)
      fuzz::finding("whitespace changes the patch", ops + "\n" + compactOps);
  }
  std::string applied;
  const Status status = applyPatchJson(
      a, ops, applied, PatchLimits{ParseLimits{1u << 24, 128}, kDefaultMaxPatchOps, ParseLimits{1u << 24, 128}});
  if (!status.isOk()) fuzz::finding("the diff's patch does not apply", status.message() + "\npatch: " + ops);
  JsonTape result;
  JsonTape expected;
  if (!result.parse(applied, ParseLimits{1u << 24, 128}).isOk()) fuzz::finding("applied text is not JSON", applied);
  if (!expected.parse(b, limits).isOk()) fuzz::finding("the second text parsed once and not twice");
  if (!jsonEqual(result, 0, expected, 0)) fuzz::finding("diff then apply does not give the second text", applied);
  return 0;
}
