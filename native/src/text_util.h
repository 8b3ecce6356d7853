// Small text helpers shared by the core's .cc files (private).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace deltacast {

// Whether `n` bytes at `a` and `b` are equal. Keys and values of small
// documents are a few bytes, and a tiny document a few dozen: up to 32 bytes
// are compared here, a word at a time, without a call into the C library (a
// call through the PLT cost more than the comparison); longer runs go to
// memcmp.
inline bool bytesEqual(const void* a, const void* b, std::size_t n) noexcept {
  const auto* x = static_cast<const unsigned char*>(a);
  const auto* y = static_cast<const unsigned char*>(b);
  if (n < 8) {
    if (n >= 4) {
      const auto half = [](const unsigned char* p) {
        std::uint32_t v;
        std::memcpy(&v, p, sizeof v);
        return v;
      };
      return half(x) == half(y) && half(x + n - 4) == half(y + n - 4);  // overlapping when n < 8
    }
    return n == 0 || (x[0] == y[0] && x[n / 2] == y[n / 2] && x[n - 1] == y[n - 1]);
  }
  if (n <= 32) {
    const auto word = [](const unsigned char* p) {
      std::uint64_t v;
      std::memcpy(&v, p, sizeof v);
      return v;
    };
    for (std::size_t i = 0; i + 8 <= n; i += 8) {
      if (word(x + i) != word(y + i)) return false;
    }
    return word(x + n - 8) == word(y + n - 8);  // the last word, overlapping the one before
  }
  return std::memcmp(a, b, n) == 0;
}
inline bool textEqual(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && bytesEqual(a.data(), b.data(), a.size());
}

// One past the closing quote of the string whose opening quote is at
// `quote` in `json`, a text already validated as JSON.
inline std::size_t jsonStringEnd(std::string_view json, std::size_t quote) noexcept {
  std::size_t i = quote + 1;
  while (json[i] != '"') i += json[i] == '\\' ? 2 : 1;
  return i + 1;
}

// `s` between double quotes, for error messages.
inline std::string quoted(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  out.append(s);
  out.push_back('"');
  return out;
}

}  // namespace deltacast
