// Small text helpers shared by the core's .cc files (private).
#pragma once

#include <cstring>
#include <string>
#include <string_view>

namespace deltacast {

// Whether `n` bytes at `a` and `b` are equal. Keys and values of small
// documents are a few bytes: compared here without a call into the C
// library (a call through the PLT cost more than the comparison); longer
// runs go to memcmp.
inline bool bytesEqual(const void* a, const void* b, std::size_t n) noexcept {
  if (n <= 16) {
    const auto* x = static_cast<const unsigned char*>(a);
    const auto* y = static_cast<const unsigned char*>(b);
    for (std::size_t i = 0; i < n; ++i) {
      if (x[i] != y[i]) return false;
    }
    return true;
  }
  return std::memcmp(a, b, n) == 0;
}
inline bool textEqual(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && bytesEqual(a.data(), b.data(), a.size());
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
