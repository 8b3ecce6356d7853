#include "deltacast/frames.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace deltacast {
namespace {

Frame text(const std::string& s) { return std::make_shared<const std::string>(s); }

TEST(Frames, EachMessageAsTheProtocolWritesIt) {
  EXPECT_EQ(*frames::snapshot("prices", "e1", 42, R"({"a":1})"),
            R"({"t":"snap","topic":"prices","epoch":"e1","version":42,"data":{"a":1}})");
  EXPECT_EQ(*frames::patch("prices", "e1", 42, 43, R"([{"op":"remove","path":"/a"}])"),
            R"({"t":"patch","topic":"prices","epoch":"e1","from":42,"to":43,"ops":[{"op":"remove","path":"/a"}]})");
  EXPECT_EQ(*frames::gone("prices", "e1", 42, "deleted"),
            R"({"t":"gone","topic":"prices","epoch":"e1","version":42,"reason":"deleted"})");
  EXPECT_EQ(*frames::error("DELTACAST_FORBIDDEN", "no", "prices"),
            R"({"t":"err","code":"DELTACAST_FORBIDDEN","message":"no","topic":"prices"})");
  EXPECT_EQ(*frames::error("DELTACAST_INVALID_MESSAGE", "bad"),
            R"({"t":"err","code":"DELTACAST_INVALID_MESSAGE","message":"bad"})");
  EXPECT_EQ(*frames::ping(), R"({"t":"ping"})");
  EXPECT_EQ(frames::ping().get(), frames::ping().get());  // one shared frame
}

TEST(Frames, StringsAreEscaped) {
  EXPECT_EQ(*frames::error("C", "a \"quoted\" \\ and\na newline", "t\"x"),
            R"({"t":"err","code":"C","message":"a \"quoted\" \\ and\na newline","topic":"t\"x"})");
}

TEST(Frames, StepsAreConcatenatedSkippingEmptyOnes) {
  const std::vector<std::string_view> steps = {R"([{"op":"add","path":"/a","value":1}])", "[]",
                                               R"([{"op":"remove","path":"/b"}])"};
  EXPECT_EQ(
      *frames::patchOfSteps("t", "e", 1, 4, steps),
      R"({"t":"patch","topic":"t","epoch":"e","from":1,"to":4,"ops":[{"op":"add","path":"/a","value":1},{"op":"remove","path":"/b"}]})");
  EXPECT_EQ(*frames::patchOfSteps("t", "e", 1, 2, {"[]"}),
            R"({"t":"patch","topic":"t","epoch":"e","from":1,"to":2,"ops":[]})");
}

TEST(Frames, IsSnapshot) {
  EXPECT_TRUE(frames::isSnapshot(frames::snapshot("t", "e", 1, "1")));
  EXPECT_FALSE(frames::isSnapshot(frames::patch("t", "e", 1, 2, "[]")));
  EXPECT_FALSE(frames::isSnapshot(text("{}")));
}

TEST(Frames, OneFrameGoesAloneSeveralAsABatch) {
  EXPECT_TRUE(frames::batches({}, 1000).empty());
  const Frame a = text(R"({"t":"snap","x":1})");
  std::vector<Frame> one = frames::batches({a}, 1000);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].get(), a.get());  // the same shared frame, not a copy
  std::vector<Frame> two = frames::batches({a, text("[2]")}, 1000);
  ASSERT_EQ(two.size(), 1u);
  EXPECT_EQ(*two[0], R"({"t":"batch","items":[{"t":"snap","x":1},[2]]})");
}

TEST(Frames, BatchesStayUnderTheBound) {
  std::vector<Frame> items;
  for (int i = 0; i < 20; ++i) items.push_back(text(std::string(40, static_cast<char>('a' + i))));
  const std::size_t bound = 150;  // 24 bytes of batch, then 40 a frame plus a comma: three a batch
  const std::vector<Frame> out = frames::batches(items, bound);
  std::string all;
  for (const Frame& f : out) {
    EXPECT_LE(f->size(), bound) << *f;
    all.append(*f);
  }
  EXPECT_EQ(out.size(), 7u);  // 20 items, three to a batch
  for (int i = 0; i < 20; ++i) EXPECT_NE(all.find(std::string(40, static_cast<char>('a' + i))), std::string::npos);
  // An item too large for any batch goes alone (the caller decides about it).
  const std::vector<Frame> big = frames::batches({text("x"), text(std::string(500, 'y')), text("z")}, bound);
  ASSERT_EQ(big.size(), 3u);
  EXPECT_EQ(big[1]->size(), 500u);
}

}  // namespace
}  // namespace deltacast
