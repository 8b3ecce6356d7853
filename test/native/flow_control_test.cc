#include "deltacast/flow_control.h"

#include <gtest/gtest.h>

namespace deltacast {
namespace {

TEST(FlowControl, TheWindowCountsFramesAndBytes) {
  const CreditLimits limits{2, 1000, 4};
  CreditWindow w;
  EXPECT_TRUE(w.hasCredit(limits));
  w.charge("a", "e", 1, 10);
  EXPECT_TRUE(w.hasCredit(limits));
  w.charge("a", "e", 2, 10);
  EXPECT_FALSE(w.hasCredit(limits));  // two frames
  w.acknowledge("a", 1);
  EXPECT_TRUE(w.hasCredit(limits));
  EXPECT_EQ(w.frames(), 1u);
  w.charge("b", "e", 1, 2000);
  EXPECT_FALSE(w.hasCredit(limits));  // bytes
  w.forget("b");
  EXPECT_TRUE(w.hasCredit(limits));
  EXPECT_EQ(w.bytes(), 10u);
}

TEST(FlowControl, ANewEpochRetiresTheOldEpochsFrames) {
  const CreditLimits limits{2, 1000, 4};
  CreditWindow w;
  w.charge("a", "e1", 5, 10);
  w.charge("a", "e1", 6, 10);
  w.charge("a", "e2", 1, 10);  // versions start again: 5 and 6 can never be acked
  EXPECT_EQ(w.frames(), 1u);
  EXPECT_TRUE(w.hasCredit(limits));
}

TEST(FlowControl, CongestionTakesTheCredit) {
  const CreditLimits limits;
  CreditWindow w;
  EXPECT_TRUE(w.congestion(true));
  EXPECT_FALSE(w.congestion(true));  // no change
  EXPECT_FALSE(w.hasCredit(limits));
  EXPECT_TRUE(w.congestion(false));
  EXPECT_TRUE(w.hasCredit(limits));
}

TEST(FlowControl, WithoutAcksOnlyTheTransportCounts) {
  const CreditLimits limits{2, 1000, 2};
  CreditWindow w(false);
  for (std::uint64_t v = 1; v <= 100; ++v) w.charge("a", "e", v, 100);
  EXPECT_TRUE(w.hasCredit(limits));  // no window
  EXPECT_EQ(w.frames(), 0u);
  w.congestion(true);
  EXPECT_FALSE(w.hasCredit(limits));
  for (std::uint64_t v = 101; v <= 105; ++v) w.charge("c", "e", v, 1);  // critical frames while congested
  EXPECT_EQ(w.frames(), 5u);
  EXPECT_TRUE(w.overflowing(limits));  // past two windows of frames
  w.acknowledge("c", 200);             // acks do not open anything...
  w.congestion(false);                 // ...a drain does
  EXPECT_EQ(w.frames(), 0u);
  EXPECT_TRUE(w.hasCredit(limits));
}

TEST(FlowControl, CriticalOverflow) {
  const CreditLimits limits{2, 1000, 4};
  CreditWindow w;
  for (std::uint64_t v = 1; v <= 8; ++v) w.charge("c", "e", v, 1);
  EXPECT_FALSE(w.overflowing(limits));  // four windows exactly
  w.charge("c", "e", 9, 1);
  EXPECT_TRUE(w.overflowing(limits));
}

TEST(FlowControl, OverSinceIsTheCallersMark) {
  CreditWindow w;
  EXPECT_EQ(w.overSince(), -1);
  w.setOverSince(42);
  EXPECT_EQ(w.overSince(), 42);
}

}  // namespace
}  // namespace deltacast
