// RFC 6901 JSON Pointers: parsing, escaping, array indices.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "deltacast/status.h"

namespace deltacast {

// Splits a pointer ("/a/b~1c/0") into unescaped segments ({"a", "b/c", "0"}).
// "" is the whole document (no segments). DELTACAST_INVALID_POINTER when the
// pointer does not start with '/' or has a '~' not followed by '0' or '1'.
Status parsePointer(std::string_view pointer, std::vector<std::string>& segments);

// Appends one segment to a pointer under construction: '/', then the segment
// with '~' written as "~0" and '/' as "~1".
void appendPointerSegment(std::string_view segment, std::string& pointer);

// Reads an array index segment: decimal digits, no leading zero (except "0"),
// no sign. False for anything else, including "-" and values that overflow.
bool parseArrayIndex(std::string_view segment, std::size_t& index) noexcept;

}  // namespace deltacast
