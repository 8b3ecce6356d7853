// Topic patterns: how options name groups of topics (TTL rules now; lanes and
// permissions later). Topics are '/'-separated paths such as "prices/eu".
//   *    matches any run of characters within one segment ("prices/*")
//   **   matches anything, '/' included ("user/**")
// Everything else matches itself.
#pragma once

#include <string_view>

namespace deltacast {

bool topicMatches(std::string_view pattern, std::string_view topic) noexcept;

}  // namespace deltacast
