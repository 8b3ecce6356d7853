#include "deltacast/topic_pattern.h"

namespace deltacast {

namespace {

constexpr std::size_t kEnd = std::string_view::npos;

// A walk over the '/'-separated segments of a text: `at` is the offset of the
// current segment, kEnd once every segment has been visited. "" has one empty
// segment, "a/" has "a" and "".
std::string_view segmentAt(std::string_view text, std::size_t at) noexcept {
  const std::size_t slash = text.find('/', at);
  return text.substr(at, slash == kEnd ? kEnd : slash - at);
}

std::size_t nextSegment(std::string_view text, std::size_t at) noexcept {
  const std::size_t slash = text.find('/', at);
  return slash == kEnd ? kEnd : slash + 1;
}

bool isGlobstar(std::string_view pattern, std::size_t at) noexcept {
  return at != kEnd && segmentAt(pattern, at) == "**";
}

}  // namespace

bool segmentMatches(std::string_view pattern, std::string_view segment) noexcept {
  // One kind of star, so the classic greedy walk with one backtrack point is
  // exact: a later star can always take over what an earlier one would.
  std::size_t p = 0;
  std::size_t s = 0;
  std::size_t starP = kEnd;
  std::size_t starS = 0;
  while (s < segment.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      starP = ++p;
      starS = s;
    } else if (p < pattern.size() && pattern[p] == segment[s]) {
      ++p;
      ++s;
    } else if (starP != kEnd) {
      p = starP;
      s = ++starS;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool topicMatches(std::string_view pattern, std::string_view topic) noexcept {
  // The same walk one level up: the elements are segments, "**" is the only
  // star, and a segment pattern is a predicate on one segment. Greedy matching
  // with one backtrack point (the latest "**") is exact for one kind of star,
  // and bounded by (pattern segments) x (topic segments) comparisons.
  std::size_t p = 0;
  std::size_t t = 0;
  bool starred = false;
  std::size_t starP = 0;
  std::size_t starT = 0;
  while (t != kEnd) {
    if (isGlobstar(pattern, p)) {
      starred = true;
      starP = p = nextSegment(pattern, p);
      starT = t;
    } else if (p != kEnd && segmentMatches(segmentAt(pattern, p), segmentAt(topic, t))) {
      p = nextSegment(pattern, p);
      t = nextSegment(topic, t);
    } else if (starred) {
      // The latest "**" takes one more segment; everything after it starts over.
      p = starP;
      t = starT = nextSegment(topic, starT);
    } else {
      return false;
    }
  }
  while (isGlobstar(pattern, p)) p = nextSegment(pattern, p);
  return p == kEnd;
}

}  // namespace deltacast
