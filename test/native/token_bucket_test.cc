#include "deltacast/token_bucket.h"

#include <gtest/gtest.h>

namespace deltacast {
namespace {

TEST(TokenBucket, BurstThenRate) {
  TokenBucket bucket(10, 5, 0);  // 10 per second, burst 5
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(bucket.take(0));
  EXPECT_FALSE(bucket.take(0));
  EXPECT_FALSE(bucket.take(99));  // 0.99 tokens
  EXPECT_TRUE(bucket.take(100));  // one token after 100 ms
  EXPECT_FALSE(bucket.take(100));
  EXPECT_NEAR(bucket.tokens(10000), 5.0, 1e-9);  // never above the burst
}

TEST(TokenBucket, TimeGoingBackwardsTakesNothingBack) {
  TokenBucket bucket(1, 1, 1000);
  EXPECT_TRUE(bucket.take(1000));
  EXPECT_FALSE(bucket.take(500));
  EXPECT_FALSE(bucket.take(1999));
  EXPECT_TRUE(bucket.take(2000));
}

}  // namespace
}  // namespace deltacast
