#include "deltacast/json_pointer.h"

#include <gtest/gtest.h>

namespace deltacast {
namespace {

TEST(JsonPointer, ParsesAndUnescapes) {
  std::vector<std::string> segments;
  ASSERT_TRUE(parsePointer("/a~1b/m~0n/0/", segments).isOk());
  EXPECT_EQ(segments, (std::vector<std::string>{"a/b", "m~n", "0", ""}));
  ASSERT_TRUE(parsePointer("", segments).isOk());
  EXPECT_TRUE(segments.empty());
  ASSERT_TRUE(parsePointer("/", segments).isOk());
  EXPECT_EQ(segments, (std::vector<std::string>{""}));
}

TEST(JsonPointer, RejectsBadPointers) {
  std::vector<std::string> segments;
  EXPECT_EQ(parsePointer("a/b", segments).code(), ErrorCode::InvalidPointer);
  EXPECT_EQ(parsePointer("/a~2", segments).code(), ErrorCode::InvalidPointer);
  EXPECT_EQ(parsePointer("/a~", segments).code(), ErrorCode::InvalidPointer);
}

TEST(JsonPointer, EscapesSegments) {
  std::string pointer;
  appendPointerSegment("a/b~c", pointer);
  appendPointerSegment("", pointer);
  EXPECT_EQ(pointer, "/a~1b~0c/");
}

TEST(JsonPointer, ArrayIndices) {
  std::size_t index = 0;
  EXPECT_TRUE(parseArrayIndex("0", index));
  EXPECT_EQ(index, 0u);
  EXPECT_TRUE(parseArrayIndex("123", index));
  EXPECT_EQ(index, 123u);
  EXPECT_FALSE(parseArrayIndex("01", index));
  EXPECT_FALSE(parseArrayIndex("-", index));
  EXPECT_FALSE(parseArrayIndex("-1", index));
  EXPECT_FALSE(parseArrayIndex("1e2", index));
  EXPECT_FALSE(parseArrayIndex("", index));
  EXPECT_FALSE(parseArrayIndex("99999999999999999999999", index));
}

}  // namespace
}  // namespace deltacast
