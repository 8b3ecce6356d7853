// Topic patterns: how options name groups of topics (TTL rules, lanes,
// permissions). Topics are '/'-separated paths such as "prices/eu"; a pattern
// is matched segment by segment:
//   **   as a whole segment: any number of whole segments, zero included, so
//        "user/**" matches "user", "user/42" and "user/42/orders", and
//        "a/**/b" matches "a/b" and "a/x/y/b"
//   *    within a segment: any run of characters, none included, but never a
//        '/' ("prices/*" matches "prices/eu" and "prices/", not "prices/eu/de";
//        "eu-*" matches "eu-de"). Stars that are not a whole "**" segment
//        ("a**b") are such stars.
// Everything else matches itself. An empty topic has one empty segment.
//
// Cost: at most (pattern segments) x (topic segments) segment comparisons, each
// at most (segment pattern length) x (segment length) character steps; no
// backtracking across more than one "**" at a time and no allocation.
#pragma once

#include <string_view>

namespace deltacast {

bool topicMatches(std::string_view pattern, std::string_view topic) noexcept;

// One segment (no '/' in either) against a segment pattern where '*' matches any
// run of characters. Exposed for tests.
bool segmentMatches(std::string_view pattern, std::string_view segment) noexcept;

}  // namespace deltacast
