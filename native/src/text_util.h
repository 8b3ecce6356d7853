// Small text helpers shared by the core's .cc files (private).
#pragma once

#include <string>
#include <string_view>

namespace deltacast {

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
