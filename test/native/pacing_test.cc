#include "deltacast/pacing.h"

#include <gtest/gtest.h>

namespace deltacast {
namespace {

using Kind = Pacer::Decision::Kind;

TEST(Pacing, LaneOfIsTheFirstMatchingRule) {
  const Pacer pacer({{"alerts/**", Lane::Critical}, {"prices/*", Lane::High}, {"**", Lane::Low}});
  EXPECT_EQ(pacer.laneOf("alerts/a/b"), Lane::Critical);
  EXPECT_EQ(pacer.laneOf("prices/x"), Lane::High);
  EXPECT_EQ(pacer.laneOf("other"), Lane::Low);
  EXPECT_EQ(Pacer().laneOf("any"), Lane::Normal);
}

TEST(Pacing, CriticalFlushesNow) {
  const Pacer pacer;
  PacingState st;
  const auto d = pacer.changed(st, Lane::Critical, 7);
  EXPECT_EQ(d.kind, Kind::FlushNow);
  EXPECT_FALSE(st.pending);
}

TEST(Pacing, HighOpensAWindow) {
  const Pacer pacer({}, Pacing{});
  PacingState st;
  auto d = pacer.changed(st, Lane::High, 100);
  EXPECT_EQ(d.kind, Kind::Arm);
  EXPECT_EQ(d.deadline, 116);
  d = pacer.changed(st, Lane::High, 110);  // inside the window: it stays
  EXPECT_EQ(d.kind, Kind::Keep);
  EXPECT_TRUE(Pacer::fire(st, 116));
  EXPECT_FALSE(Pacer::fire(st, 117));  // nothing pending any more
}

TEST(Pacing, NormalDebouncesUpToTheMaxWait) {
  const Pacer pacer;
  PacingState st;
  std::int64_t deadline = 0;
  for (std::int64_t t = 0; t <= 300; t += 30) {  // a change every 30 ms: the debounce (50) never ends
    const auto d = pacer.changed(st, Lane::Normal, t);
    if (d.kind == Kind::Arm) deadline = d.deadline;
    if (t >= 250) break;
  }
  EXPECT_EQ(deadline, 250);  // maxWait from the first change
}

TEST(Pacing, LowIsThrottled) {
  const Pacer pacer;
  PacingState st;
  auto d = pacer.changed(st, Lane::Low, 0);
  EXPECT_EQ(d.deadline, 0);  // the first flush goes at once
  ASSERT_TRUE(Pacer::fire(st, 0));
  d = pacer.changed(st, Lane::Low, 10);
  EXPECT_EQ(d.kind, Kind::Arm);
  EXPECT_EQ(d.deadline, 1000);
}

TEST(Pacing, AFasterLaneBringsTheFlushForward) {
  const Pacer pacer;
  PacingState st;
  EXPECT_EQ(pacer.changed(st, Lane::Low, 0).deadline, 0);  // the first low flush goes at once
  ASSERT_TRUE(Pacer::fire(st, 0));
  EXPECT_EQ(pacer.changed(st, Lane::Low, 0).deadline, 1000);
  const auto d = pacer.changed(st, Lane::High, 20);
  EXPECT_EQ(d.kind, Kind::Arm);
  EXPECT_EQ(d.deadline, 36);
}

TEST(Pacing, LatencyIsFromTheOldestUnsentChangeOncePerFlush) {
  const Pacer pacer;
  PacingState st;
  pacer.changed(st, Lane::Normal, 100);
  pacer.changed(st, Lane::High, 120);
  const auto sent = Pacer::sending(st, 136);
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->lane, Lane::High);  // the most urgent lane among the changes
  EXPECT_EQ(sent->latencyMs, 36);
  EXPECT_FALSE(Pacer::sending(st, 140).has_value());
}

}  // namespace
}  // namespace deltacast
