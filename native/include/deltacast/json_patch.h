// Native RFC 6902 patch application on a RapidJSON document.
//
// All six operations (add, remove, replace, move, copy, test). Application is
// atomic: every change is recorded in an undo log (old values are moved, not
// copied), and a failing operation rolls the document back to exactly where
// it was. Cost is proportional to the change, not to the document.
#pragma once

#include <string>
#include <string_view>

#include "deltacast/json_tape.h"
#include "deltacast/rapidjson.h"
#include "deltacast/status.h"

namespace deltacast {

// Applies `ops` (a JSON array of operations) to `doc`. On failure `doc` is
// unchanged and the status names the operation (by index) and what was wrong:
// DELTACAST_INVALID_PATCH, DELTACAST_INVALID_POINTER, DELTACAST_PATH_NOT_FOUND,
// DELTACAST_PATCH_TEST_FAILED.
Status applyPatch(rapidjson::Document& doc, const rapidjson::Value& ops);

// Text in, text out: parses `doc` and `ops`, applies, serializes into `out`.
Status applyPatchJson(std::string_view doc, std::string_view ops, std::string& out, const ParseLimits& limits = {});

// Parses JSON text into a document, with deltacast's error codes and limits.
// Strings may hold lone surrogates (from \uD800-style escapes, which
// JSON.stringify writes); they are kept and written back as escapes.
Status parseDocument(std::string_view text, rapidjson::Document& doc, const ParseLimits& limits = {});

// Appends a value as compact JSON text (valid UTF-8: lone surrogates escaped).
void serializeDocument(const rapidjson::Value& value, std::string& out);

}  // namespace deltacast
