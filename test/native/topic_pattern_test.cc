#include "deltacast/topic_pattern.h"

#include <gtest/gtest.h>

namespace deltacast {
namespace {

TEST(TopicPattern, Literal) {
  EXPECT_TRUE(topicMatches("prices", "prices"));
  EXPECT_FALSE(topicMatches("prices", "prices/eu"));
  EXPECT_FALSE(topicMatches("prices/eu", "prices"));
}

TEST(TopicPattern, StarStaysInOneSegment) {
  EXPECT_TRUE(topicMatches("prices/*", "prices/eu"));
  EXPECT_FALSE(topicMatches("prices/*", "prices/eu/de"));
  EXPECT_TRUE(topicMatches("user/*/orders", "user/42/orders"));
  EXPECT_FALSE(topicMatches("user/*/orders", "user/42/x/orders"));
  EXPECT_TRUE(topicMatches("a*c", "abc"));
  EXPECT_TRUE(topicMatches("a*", "a"));
}

TEST(TopicPattern, DoubleStarCrossesSegments) {
  EXPECT_TRUE(topicMatches("**", "anything/at/all"));
  EXPECT_TRUE(topicMatches("user/**", "user/42/orders"));
  EXPECT_TRUE(topicMatches("**/orders", "user/42/orders"));
  EXPECT_FALSE(topicMatches("**/orders", "user/42/order"));
}

}  // namespace
}  // namespace deltacast
