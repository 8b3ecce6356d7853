// Native RFC 6902 patch application on a RapidJSON document.
//
// All six operations (add, remove, replace, move, copy, test). Application is
// atomic: every change is recorded in an undo log (old values are moved, not
// copied), and a failing operation rolls the document back to exactly where
// it was. Cost is proportional to the change, not to the document.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "deltacast/json_tape.h"
#include "deltacast/rapidjson.h"
#include "deltacast/status.h"

namespace deltacast {

// The default of PatchLimits::maxOps (the hub's limits.maxPatchOps).
inline constexpr std::size_t kDefaultMaxPatchOps = 10000;

struct PatchLimits {
  // The document, before, while and after applying: its compact text stays
  // within value.maxBytes (DELTACAST_TOO_LARGE) and its nesting within
  // value.maxDepth (DELTACAST_TOO_DEEP). Checked at every operation, before the
  // operation builds anything, so a few `copy` operations cannot build a huge
  // document first.
  ParseLimits value;
  // Operations in one patch; DELTACAST_TOO_MANY_OPS above this (checked before
  // anything is applied).
  std::size_t maxOps = kDefaultMaxPatchOps;
  // The patch text (applyPatchJson): DELTACAST_TOO_LARGE / DELTACAST_TOO_DEEP.
  ParseLimits patchText;
};

// Applies `ops` (a JSON array of operations) to `doc`. On failure `doc` is
// unchanged and the status names the operation (by index) and what was wrong:
// DELTACAST_INVALID_PATCH, DELTACAST_INVALID_POINTER, DELTACAST_PATH_NOT_FOUND,
// DELTACAST_PATCH_TEST_FAILED, DELTACAST_TOO_LARGE, DELTACAST_TOO_DEEP,
// DELTACAST_TOO_MANY_OPS.
//
// Cost: linear in the operations and the values they carry or copy. Members
// of large objects are found through an index, so N `add`s to one object cost
// O(N); inserting into or removing from the middle of an array or object
// shifts what follows (a memmove).
Status applyPatch(rapidjson::Document& doc, const rapidjson::Value& ops, const PatchLimits& limits = {});

// Text in, text out: parses `doc` and `ops`, applies, serializes into `out`.
// Numbers are kept as their text: every value the patch does not touch is
// written back byte for byte (1e400, 1.0 and 123456789012345678901234567890
// included), and values the patch carries are written as the patch gives
// them. `test` compares numbers by value.
Status applyPatchJson(std::string_view doc, std::string_view ops, std::string& out, const PatchLimits& limits = {});

// How parseDocument stores numbers: as int64/uint64/double (Typed, for
// reading options) or as their exact text (AsText: serializeDocument writes
// them back unchanged; they are string values tagged with a leading 0xFF byte,
// which valid UTF-8 never holds, and are meant only for applyPatch and
// serializeDocument).
enum class Numbers : std::uint8_t { Typed, AsText };

// Parses JSON text into a document, with deltacast's error codes and limits.
// Strings may hold lone surrogates (from \uD800-style escapes, which
// JSON.stringify writes); they are kept and written back as escapes.
Status parseDocument(std::string_view text, rapidjson::Document& doc, const ParseLimits& limits = {},
                     Numbers numbers = Numbers::Typed);

// Appends a value as compact JSON text (valid UTF-8: lone surrogates escaped).
void serializeDocument(const rapidjson::Value& value, std::string& out);

}  // namespace deltacast
