// Row keys: what makes two rows of a keyed array the same row.
//
// A row is an object in an array; its key is the value of its `arrayKey`
// member, a string or a number. `upsert`/`remove` find rows by key, and the
// diff pairs the rows of two versions by key: both use this one definition.
//
// Two keys are the same row when they are the same JSON value:
//  - strings after unescaping ("a" and "\u0061" are one key);
//  - numbers by exact decimal value: 1, 1.0, 1e0 and 10e-1 are one key,
//    -0 is 0, and 9007199254740993 and 9007199254740992 are two keys (no
//    rounding to double);
//  - a string is never a number ("1" and 1 are two keys).
// Numbers with an exponent beyond +-10^15 are compared by their text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "deltacast/json_tape.h"

namespace deltacast {

// A text that is equal for two validated JSON keys (a string or a number,
// as JSON text) exactly when they are the same row key. Returns `raw` itself
// when it already is canonical (strings without escapes, integers written
// plainly), otherwise a text written into `storage`.
inline std::string_view canonicalRowKey(std::string_view raw, std::string& storage) {
  if (raw.empty()) return raw;
  if (raw.front() == '"') {
    if (raw.find('\\') == std::string_view::npos) return raw;
    storage.assign(1, '"');
    decodeJsonString(raw, storage);
    storage.push_back('"');
    return storage;
  }
  constexpr std::size_t kPlainDigits = 40;  // integers up to this many digits are written plainly
  const bool integer = raw.find_first_of(".eE") == std::string_view::npos;
  if (integer && raw != "-0" && raw.size() <= kPlainDigits) return raw;

  // value = digits x 10^power, with no leading or trailing zero in digits.
  std::size_t i = 0;
  const bool negative = raw[i] == '-';
  if (negative) ++i;
  std::string digits;
  std::int64_t fractionDigits = 0;
  bool fraction = false;
  for (; i < raw.size() && raw[i] != 'e' && raw[i] != 'E'; ++i) {
    if (raw[i] == '.') {
      fraction = true;
      continue;
    }
    if (digits.empty() && raw[i] == '0') {
      if (fraction) ++fractionDigits;
      continue;
    }
    digits.push_back(raw[i]);
    if (fraction) ++fractionDigits;
  }
  std::int64_t exponent = 0;
  if (i < raw.size()) {
    ++i;
    bool negativeExponent = false;
    if (raw[i] == '+' || raw[i] == '-') negativeExponent = raw[i++] == '-';
    while (i < raw.size() && raw[i] == '0') ++i;
    if (raw.size() - i > 15) {  // an exponent beyond 10^15: compared by text
      storage.assign(1, '~');   // not assign("~"): GCC 12 warns -Wrestrict on it
      storage.append(raw);
      return storage;
    }
    for (; i < raw.size(); ++i) exponent = exponent * 10 + (raw[i] - '0');
    if (negativeExponent) exponent = -exponent;
  }
  std::int64_t power = exponent - fractionDigits;
  while (!digits.empty() && digits.back() == '0') {
    digits.pop_back();
    ++power;
  }
  if (digits.empty()) return "0";
  storage.clear();
  if (negative) storage.push_back('-');
  storage.append(digits);
  if (power >= 0 && digits.size() + static_cast<std::size_t>(power) <= kPlainDigits) {
    storage.append(static_cast<std::size_t>(power), '0');
  } else {
    storage.push_back('e');
    storage.append(std::to_string(power));
  }
  return storage;
}

// True when two row keys (validated JSON strings or numbers) are the same row.
inline bool sameRowKey(std::string_view a, std::string_view b) {
  if (a == b) return true;
  std::string sa;
  std::string sb;
  return canonicalRowKey(a, sa) == canonicalRowKey(b, sb);
}

}  // namespace deltacast
