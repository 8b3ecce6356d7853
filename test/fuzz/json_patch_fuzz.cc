// The patch applier: a document and a patch (split at the first blank line).
// Oracle: nothing crashes; a patch that applies gives JSON; one that fails
// leaves nothing behind (the text path applied twice gives the same answer).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "deltacast/json_patch.h"
#include "fuzz_util.h"

using namespace deltacast;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view doc;
  std::string_view ops;
  fuzz::splitInTwo(std::string_view(reinterpret_cast<const char*>(data), size), doc, ops);
  const ParseLimits limits{1u << 20, 64};
  const PatchLimits patchLimits{limits, kDefaultMaxPatchOps, limits};
  std::string out;
  const Status first = applyPatchJson(doc, ops, out, patchLimits);
  if (first.isOk()) fuzz::requireJson(out, "a patched document that is not JSON");

  // The document form: a failing patch must leave the document as it was.
  rapidjson::Document document;
  rapidjson::Document patch;
  if (!parseDocument(doc, document, limits).isOk() || !parseDocument(ops, patch, limits).isOk()) return 0;
  std::string before;
  serializeDocument(document, before);
  const Status second = applyPatch(document, patch, patchLimits);
  // Both paths hold the same limits, but the document path skips the work
  // bound's accounting of the parse, so a limit may trip on one path only.
  const bool overLimit = first.code() == ErrorCode::TooLarge || first.code() == ErrorCode::TooDeep;
  if (!overLimit && second.isOk() != first.isOk())
    fuzz::finding("the text and document appliers disagree", second.message());
  if (!second.isOk()) {
    std::string after;
    serializeDocument(document, after);
    if (after != before) fuzz::finding("a failed patch changed the document", after);
  }
  return 0;
}
