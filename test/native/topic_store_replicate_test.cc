// TopicStore::replicate: the local store as a replica of an engine's copy.
#include <gtest/gtest.h>

#include <string>

#include "deltacast/topic_store.h"

namespace deltacast {
namespace {

TEST(TopicStoreReplicate, StateCreatesAtTheEnginesEpochAndVersion) {
  TopicStore store({});
  ChangeResult r = store.replicate("t", "e1", 7, ReplicaMode::State, R"({"a":1})", 0);
  ASSERT_TRUE(r.status.isOk());
  EXPECT_TRUE(r.changed);
  EXPECT_TRUE(r.created);
  EXPECT_EQ(r.version, 7u);
  EXPECT_EQ(r.epoch, "e1");
  auto snapshot = store.get("t");
  ASSERT_TRUE(snapshot);
  EXPECT_EQ(snapshot->json, R"({"a":1})");
  EXPECT_EQ(snapshot->version, 7u);
  EXPECT_EQ(snapshot->epoch, "e1");
}

TEST(TopicStoreReplicate, NextVersionIsAnOrdinaryChange) {
  TopicStore store({});
  store.replicate("t", "e1", 7, ReplicaMode::State, R"({"a":1})", 0);
  ChangeResult r = store.replicate("t", "e1", 8, ReplicaMode::State, R"({"a":2})", 0);
  EXPECT_TRUE(r.changed);
  EXPECT_FALSE(r.created);
  EXPECT_EQ(r.version, 8u);
  EXPECT_EQ(r.ops, R"([{"op":"replace","path":"/a","value":2}])");
  auto steps = store.historySince("t", 7);
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0].to, 8u);
}

TEST(TopicStoreReplicate, OlderOrEqualVersionsChangeNothing) {
  TopicStore store({});
  store.replicate("t", "e1", 7, ReplicaMode::State, R"({"a":1})", 0);
  for (std::uint64_t version : {3u, 7u}) {
    ChangeResult r = store.replicate("t", "e1", version, ReplicaMode::State, R"({"a":9})", 0);
    EXPECT_FALSE(r.changed);
    EXPECT_EQ(r.version, 7u);
    EXPECT_EQ(store.get("t")->json, R"({"a":1})");
  }
}

TEST(TopicStoreReplicate, AJumpOrAnotherEpochResets) {
  TopicStore store({});
  store.replicate("t", "e1", 7, ReplicaMode::State, R"({"a":1})", 0);
  store.replicate("t", "e1", 8, ReplicaMode::State, R"({"a":2})", 0);
  ChangeResult jump = store.replicate("t", "e1", 12, ReplicaMode::State, R"({"a":5})", 0);
  EXPECT_TRUE(jump.changed);
  EXPECT_TRUE(jump.created);  // subscribers get the net change or a snapshot
  EXPECT_EQ(jump.version, 12u);
  EXPECT_TRUE(store.historySince("t", 7).empty());  // the history no longer reaches back
  ChangeResult other = store.replicate("t", "e2", 1, ReplicaMode::State, R"({"b":1})", 0);
  EXPECT_TRUE(other.created);
  EXPECT_EQ(other.epoch, "e2");
  EXPECT_EQ(other.version, 1u);
  EXPECT_EQ(store.stats().topics, 1u);
}

TEST(TopicStoreReplicate, SameValueAtTheNextVersionStillTakesTheVersion) {
  TopicStore store({});
  store.replicate("t", "e1", 1, ReplicaMode::State, R"({"a":1})", 0);
  ChangeResult r = store.replicate("t", "e1", 2, ReplicaMode::State, R"({"a":1})", 0);
  EXPECT_EQ(r.version, 2u);
  EXPECT_EQ(store.get("t")->version, 2u);
}

TEST(TopicStoreReplicate, PatchAppliesOnlyOnItsBase) {
  TopicStore store({});
  store.replicate("t", "e1", 4, ReplicaMode::State, R"({"a":1})", 0);
  ChangeResult r = store.replicate("t", "e1", 5, ReplicaMode::Patch, R"([{"op":"add","path":"/b","value":2}])", 0);
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.version, 5u);
  EXPECT_EQ(store.get("t")->json, R"({"a":1,"b":2})");
  // A gap (6 missing), a repeat, another epoch, a missing topic: stale, nothing applied.
  for (auto [epoch, version] : {std::pair<const char*, std::uint64_t>{"e1", 7}, {"e1", 5}, {"e2", 6}}) {
    ChangeResult stale =
        store.replicate("t", epoch, version, ReplicaMode::Patch, R"([{"op":"remove","path":"/a"}])", 0);
    EXPECT_FALSE(stale.changed);
    EXPECT_EQ(stale.version, 5u);
    EXPECT_EQ(stale.epoch, "e1");
  }
  EXPECT_EQ(store.get("t")->json, R"({"a":1,"b":2})");
  ChangeResult missing = store.replicate("u", "e1", 2, ReplicaMode::Patch, "[]", 0);
  EXPECT_EQ(missing.version, 0u);
  EXPECT_EQ(store.get("u"), nullptr);
  // A patch that fails to apply leaves the topic as it was.
  ChangeResult failed = store.replicate("t", "e1", 6, ReplicaMode::Patch, R"([{"op":"remove","path":"/zz"}])", 0);
  EXPECT_EQ(failed.version, 5u);
}

TEST(TopicStoreReplicate, AbsentRemovesAndReports) {
  TopicStore store({});
  store.reportRemovals(true);
  store.replicate("t", "e1", 4, ReplicaMode::State, R"({"a":1})", 0);
  ChangeResult r = store.replicate("t", "", 0, ReplicaMode::Absent, "", 0);
  EXPECT_EQ(r.version, 0u);
  EXPECT_EQ(store.get("t"), nullptr);
  auto removed = store.takeRemoved();
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].version, 4u);
}

TEST(TopicStoreReplicate, AResetIsNotReportedAsARemoval) {
  TopicStore store({});
  store.reportRemovals(true);
  store.replicate("t", "e1", 4, ReplicaMode::State, R"({"a":1})", 0);
  store.replicate("t", "e2", 9, ReplicaMode::State, R"({"a":2})", 0);
  EXPECT_TRUE(store.takeRemoved().empty());
}

TEST(TopicStoreReplicate, HistoryFillsTheRing) {
  StoreOptions options;
  options.historyCount = 2;
  TopicStore store(options);
  store.replicate("t", "e1", 10, ReplicaMode::State, R"({"a":3})", 0);
  ChangeResult r =
      store.replicate("t", "e1", 10, ReplicaMode::History,
                      R"([[{"op":"add","path":"/a","value":1}], [ {"op":"replace","path":"/a","value":2} ],)"
                      R"([{"op":"replace","path":"/a","value":3}]])",
                      0);
  EXPECT_EQ(r.version, 10u);
  auto steps = store.historySince("t", 8);  // the ring keeps the last two
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[0].from, 8u);
  EXPECT_EQ(steps[0].ops, R"([{"op":"replace","path":"/a","value":2}])");
  EXPECT_EQ(steps[1].to, 10u);
  EXPECT_TRUE(store.historySince("t", 7).empty());
  // At another version, or a malformed payload: ignored.
  store.replicate("t", "e1", 9, ReplicaMode::History, "[[]]", 0);
  store.replicate("t", "e1", 10, ReplicaMode::History, "{}", 0);
  EXPECT_EQ(store.historySince("t", 8).size(), 2u);
}

}  // namespace
}  // namespace deltacast
