#include "deltacast/topic_pattern.h"

namespace deltacast {

bool topicMatches(std::string_view pattern, std::string_view topic) noexcept {
  // Iterative glob matching with one backtrack point per star kind; patterns
  // are short, so the worst case (many stars) stays small.
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t starP = std::string_view::npos;
  std::size_t starT = 0;
  bool starCrossesSegments = false;
  while (t < topic.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      starCrossesSegments = p + 1 < pattern.size() && pattern[p + 1] == '*';
      p += starCrossesSegments ? 2 : 1;
      starP = p;
      starT = t;
      continue;
    }
    if (p < pattern.size() && pattern[p] == topic[t]) {
      ++p;
      ++t;
      continue;
    }
    if (starP != std::string_view::npos && (starCrossesSegments || topic[starT] != '/')) {
      ++starT;
      t = starT;
      p = starP;
      continue;
    }
    return false;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace deltacast
