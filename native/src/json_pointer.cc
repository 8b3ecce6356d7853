#include "deltacast/json_pointer.h"

#include <limits>

namespace deltacast {

Status parsePointer(std::string_view pointer, std::vector<std::string>& segments) {
  segments.clear();
  if (pointer.empty()) return Status::ok();
  if (pointer.front() != '/') {
    return Status(ErrorCode::InvalidPointer,
                  "JSON pointer \"" + std::string(pointer) + "\" must be empty or start with '/'");
  }
  std::string segment;
  for (std::size_t i = 1; i <= pointer.size(); ++i) {
    if (i == pointer.size() || pointer[i] == '/') {
      segments.push_back(std::move(segment));
      segment.clear();
      continue;
    }
    const char c = pointer[i];
    if (c != '~') {
      segment.push_back(c);
      continue;
    }
    const char e = i + 1 < pointer.size() ? pointer[i + 1] : '\0';
    if (e != '0' && e != '1') {
      return Status(ErrorCode::InvalidPointer, "JSON pointer \"" + std::string(pointer) + "\" has '~' at offset " +
                                                   std::to_string(i) + " not followed by '0' or '1'");
    }
    segment.push_back(e == '0' ? '~' : '/');
    ++i;
  }
  return Status::ok();
}

void appendPointerSegment(std::string_view segment, std::string& pointer) {
  pointer.push_back('/');
  for (const char c : segment) {
    if (c == '~') {
      pointer.append("~0");
    } else if (c == '/') {
      pointer.append("~1");
    } else {
      pointer.push_back(c);
    }
  }
}

bool parseArrayIndex(std::string_view segment, std::size_t& index) noexcept {
  if (segment.empty() || (segment.size() > 1 && segment.front() == '0')) return false;
  std::size_t value = 0;
  for (const char c : segment) {
    if (c < '0' || c > '9') return false;
    const std::size_t digit = static_cast<std::size_t>(c - '0');
    if (value > (std::numeric_limits<std::size_t>::max() - digit) / 10) return false;
    value = value * 10 + digit;
  }
  index = value;
  return true;
}

}  // namespace deltacast
