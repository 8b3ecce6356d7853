#include "deltacast/topic_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "deltacast/json_diff.h"
#include "deltacast/json_patch.h"

namespace deltacast {
namespace {

StoreOptions smallHistory() {
  StoreOptions options;
  options.historyCount = 3;
  return options;
}

TEST(TopicStore, PublishCreatesThenDiffs) {
  TopicStore store({});
  ChangeResult first = store.publishJson("prices", R"({"a":1,"b":[1,2]})", "", 0);
  ASSERT_TRUE(first.status.isOk());
  EXPECT_TRUE(first.changed);
  EXPECT_TRUE(first.created);
  EXPECT_EQ(first.version, 1u);
  EXPECT_EQ(first.epoch.size(), 12u);

  ChangeResult second = store.publishJson("prices", R"({"a":2,"b":[1,2]})", "", 1);
  ASSERT_TRUE(second.status.isOk());
  EXPECT_TRUE(second.changed);
  EXPECT_FALSE(second.created);
  EXPECT_EQ(second.version, 2u);
  EXPECT_EQ(second.epoch, first.epoch);
  EXPECT_EQ(second.ops, R"([{"op":"replace","path":"/a","value":2}])");

  auto snapshot = store.get("prices");
  ASSERT_TRUE(snapshot);
  EXPECT_EQ(snapshot->json, R"({"a":2,"b":[1,2]})");
  EXPECT_EQ(snapshot->version, 2u);
  EXPECT_EQ(store.get("other"), nullptr);
}

TEST(TopicStore, NoChangeBumpsNothing) {
  TopicStore store({});
  ASSERT_TRUE(store.publishJson("t", R"({"a":1})", "", 0).changed);
  ChangeResult same = store.publishJson("t", "{ \"a\" : 1 }", "", 1);
  EXPECT_TRUE(same.status.isOk());
  EXPECT_FALSE(same.changed);
  EXPECT_EQ(same.version, 1u);
  EXPECT_EQ(store.stats().unchanged, 1u);
}

TEST(TopicStore, ByteEqualTextIsUnchangedLikeAnEquivalentOne) {
  TopicStore store({});
  ChangeResult first = store.publishJson("t", R"({"v":1,"s":"ok"})", "", 0);
  ASSERT_TRUE(first.changed);
  // The current text itself (no parse), then an equivalent text (parsed):
  // the same answer, each counted as unchanged, each change id remembered.
  ChangeResult same = store.publishJson("t", R"({"v":1,"s":"ok"})", "id-1", 1);
  ChangeResult equivalent = store.publishJson("t", R"({"s":"ok", "v":1})", "id-2", 2);
  for (const ChangeResult* r : {&same, &equivalent}) {
    EXPECT_TRUE(r->status.isOk());
    EXPECT_FALSE(r->changed);
    EXPECT_FALSE(r->duplicate);
    EXPECT_EQ(r->version, 1u);
    EXPECT_EQ(r->epoch, first.epoch);
    EXPECT_TRUE(r->ops.empty());
  }
  EXPECT_EQ(store.stats().unchanged, 2u);
  EXPECT_TRUE(store.publishJson("t", R"({"v":2,"s":"ok"})", "id-1", 3).duplicate);
  EXPECT_TRUE(store.publishJson("t", R"({"v":2,"s":"ok"})", "id-2", 3).duplicate);
  ChangeResult next = store.publishJson("t", R"({"v":2,"s":"ok"})", "", 4);
  EXPECT_TRUE(next.changed);
  EXPECT_EQ(next.version, 2u);
  EXPECT_EQ(next.ops, R"([{"op":"replace","path":"/v","value":2}])");
  EXPECT_EQ(store.historySince("t", 1).size(), 1u);
}

TEST(TopicStore, StoresCompactText) {
  TopicStore store({});
  ASSERT_TRUE(store.publishJson("t", "{ \"a\" : [ 1 , 2 ] }", "", 0).changed);
  EXPECT_EQ(store.get("t")->json, R"({"a":[1,2]})");
}

TEST(TopicStore, BadInputLosesNothing) {
  TopicStore store({});
  ASSERT_TRUE(store.publishJson("t", R"({"a":1})", "", 0).changed);
  EXPECT_EQ(store.publishJson("t", R"({"a":)", "", 1).status.code(), ErrorCode::InvalidJson);
  EXPECT_EQ(store.patch("t", R"([{"op":"remove","path":"/zzz"}])", "", 1).status.code(), ErrorCode::PathNotFound);
  EXPECT_EQ(store.patch("t", R"([{"op":"add","path":"/b","value":1},{"op":"test","path":"/a","value":9}])", "", 1)
                .status.code(),
            ErrorCode::PatchTestFailed);
  EXPECT_EQ(store.upsert("t", "1", R"({"id":1})", "", 1).status.code(), ErrorCode::NotKeyedArray);
  EXPECT_EQ(store.publishJson("", "1", "", 1).status.code(), ErrorCode::InvalidTopic);
  EXPECT_EQ(store.publishJson(std::string(300, 'x'), "1", "", 1).status.code(), ErrorCode::InvalidTopic);
  EXPECT_EQ(store.publishJson("a\nb", "1", "", 1).status.code(), ErrorCode::InvalidTopic);
  EXPECT_EQ(store.publishJson("a\xC3", "1", "", 1).status.code(), ErrorCode::InvalidTopic);
  auto snapshot = store.get("t");
  EXPECT_EQ(snapshot->json, R"({"a":1})");
  EXPECT_EQ(snapshot->version, 1u);
  EXPECT_EQ(store.stats().rejected, 8u);
  EXPECT_TRUE(store.publishJson("t", R"({"a":3})", "", 2).changed);  // still serving
}

TEST(TopicStore, PatchAppliesOperations) {
  TopicStore store({});
  ASSERT_TRUE(store.publishJson("t", R"({"list":[1,2]})", "", 0).changed);
  ChangeResult result = store.patch("t", R"([{"op":"add","path":"/list/-","value":3}])", "", 1);
  ASSERT_TRUE(result.status.isOk()) << result.status.message();
  EXPECT_EQ(result.version, 2u);
  EXPECT_EQ(store.get("t")->json, R"({"list":[1,2,3]})");
  // A missing topic is null: replacing the root creates it.
  ChangeResult created = store.patch("new", R"([{"op":"replace","path":"","value":{"x":1}}])", "", 1);
  ASSERT_TRUE(created.status.isOk()) << created.status.message();
  EXPECT_TRUE(created.created);
  EXPECT_EQ(store.get("new")->json, R"({"x":1})");
}

TEST(TopicStore, UpsertAndRemoveRows) {
  TopicStore store({});
  ASSERT_TRUE(store.upsert("rows", "\"a\"", R"({"id":"a","v":1})", "", 0).created);
  ASSERT_TRUE(store.upsert("rows", "\"b\"", R"({"id":"b","v":2})", "", 0).changed);
  ASSERT_TRUE(store.upsert("rows", "\"c\"", R"({ "id" : "c", "v" : 3 })", "", 0).changed);
  EXPECT_EQ(store.get("rows")->json, R"([{"id":"a","v":1},{"id":"b","v":2},{"id":"c","v":3}])");
  ChangeResult replaced = store.upsert("rows", "\"b\"", R"({"id":"b","v":20})", "", 0);
  EXPECT_EQ(replaced.ops, R"([{"op":"replace","path":"/1/v","value":20}])");
  EXPECT_FALSE(store.upsert("rows", "\"b\"", R"({"id":"b","v":20})", "", 0).changed);
  EXPECT_EQ(store.remove("rows", "\"b\"", "", 0).ops, R"([{"op":"remove","path":"/1"}])");
  EXPECT_EQ(store.get("rows")->json, R"([{"id":"a","v":1},{"id":"c","v":3}])");
  EXPECT_TRUE(store.remove("rows", "\"c\"", "", 0).changed);  // the last row
  EXPECT_EQ(store.get("rows")->json, R"([{"id":"a","v":1}])");
  EXPECT_FALSE(store.remove("rows", "\"zzz\"", "", 0).changed);
  EXPECT_TRUE(store.remove("rows", "\"a\"", "", 0).changed);  // the only row
  EXPECT_EQ(store.get("rows")->json, "[]");
  EXPECT_TRUE(store.upsert("rows", "7", R"({"id":7})", "", 0).changed);  // into an empty array
  EXPECT_EQ(store.get("rows")->json, R"([{"id":7}])");
  EXPECT_EQ(store.upsert("rows", "8", R"({"id":9})", "", 0).status.code(), ErrorCode::InvalidArgument);
  EXPECT_EQ(store.upsert("rows", "8", R"([8])", "", 0).status.code(), ErrorCode::InvalidArgument);
  ASSERT_TRUE(store.publishJson("mixed", R"([{"id":1},2])", "", 0).changed);
  EXPECT_EQ(store.upsert("mixed", "1", R"({"id":1,"x":1})", "", 0).status.code(), ErrorCode::NotKeyedArray);
}

TEST(TopicStore, HistoryRingIsBounded) {
  TopicStore store(smallHistory());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(store.publishJson("t", "{\"v\":" + std::to_string(i) + "}", "", i).changed);
  }
  EXPECT_EQ(store.get("t")->version, 10u);
  auto steps = store.historySince("t", 7);
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[0].from, 7u);
  EXPECT_EQ(steps[2].to, 10u);
  EXPECT_TRUE(store.historySince("t", 6).empty());   // fell out of the ring
  EXPECT_TRUE(store.historySince("t", 10).empty());  // already current
}

TEST(TopicStore, HistoryRingIsBoundedByBytes) {
  StoreOptions options;
  options.historyBytes = 100;
  TopicStore store(options);
  for (int i = 0; i < 10; ++i) store.publishJson("t", "{\"v\":" + std::to_string(i) + "}", "", i);
  EXPECT_LE(store.stats().historyBytes, 100u);
  EXPECT_GT(store.stats().historyBytes, 0u);
}

TEST(TopicStore, DeduplicatesWithinTheWindow) {
  StoreOptions options;
  options.dedupWindowMs = 1000;
  options.dedupCount = 2;
  TopicStore store(options);
  EXPECT_TRUE(store.publishJson("t", "1", "e1", 0).changed);
  ChangeResult again = store.publishJson("t", "2", "e1", 10);
  EXPECT_FALSE(again.changed);
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(store.get("t")->json, "1");
  // A rejected change is not remembered: the producer may retry it fixed.
  EXPECT_FALSE(store.publishJson("t", "{", "e2", 20).status.isOk());
  EXPECT_TRUE(store.publishJson("t", "3", "e2", 30).changed);
  // Out of the time window.
  EXPECT_TRUE(store.publishJson("t", "4", "e1", 1000).changed);
  // Out of the count window: e1 (again), e3, e4 push e2 out.
  store.publishJson("t", "5", "e3", 1001);
  EXPECT_TRUE(store.publishJson("t", "6", "e2", 1002).changed);
  EXPECT_EQ(store.stats().duplicates, 1u);
}

// A value held by coalescing is on its way: the topic's TTL counts from the hold.
TEST(TopicStore, AHoldRefreshesTheTtlWithoutChangingTheTopic) {
  StoreOptions options;
  options.ttl = {{"tmp/*", 100}};
  TopicStore store(options);
  store.publishJson("tmp/a", "1", "", 0);
  store.held("tmp/a", 90);
  store.held("tmp/none", 90);  // no such topic: nothing
  store.advance(150);
  ASSERT_NE(store.get("tmp/a"), nullptr);
  EXPECT_EQ(store.get("tmp/a")->version, 1u);
  EXPECT_EQ(store.stats().topics, 1u);
  store.advance(190);
  EXPECT_EQ(store.get("tmp/a"), nullptr);
}

// Coalescing: a held value for a topic the store does not hold creates it
// when applied, dated at its publish. expiredSince says whether a sweep has
// passed that topic's TTL since (it would have expired), and expire() removes
// it as an expiry.
TEST(TopicStore, AHeldValueForANewTopicKnowsWhetherItsTtlHasPassedASweep) {
  StoreOptions options;
  options.ttl = {{"tmp/*", 100}};
  TopicStore store(options);
  store.reportRemovals(true);
  EXPECT_FALSE(store.expiredSince("tmp/a", 0)) << "no sweep yet";
  store.advance(99);
  EXPECT_FALSE(store.expiredSince("tmp/a", 0));
  store.advance(100);
  EXPECT_TRUE(store.expiredSince("tmp/a", 0));
  EXPECT_FALSE(store.expiredSince("tmp/a", 1));
  EXPECT_FALSE(store.expiredSince("keep", 0)) << "no TTL";
  store.publishJson("tmp/a", "1", "", 0);
  EXPECT_FALSE(store.expiredSince("tmp/a", 0)) << "a topic the store holds expires on its own";
  EXPECT_TRUE(store.expire("tmp/a"));
  EXPECT_FALSE(store.expire("tmp/a"));
  EXPECT_EQ(store.get("tmp/a"), nullptr);
  const std::vector<RemovedTopic> removed = store.takeRemoved();
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].reason, Removal::Expired);
  EXPECT_EQ(removed[0].version, 1u);
  EXPECT_EQ(store.stats().expirations, 1u);
}

TEST(TopicStore, TtlPerPattern) {
  StoreOptions options;
  options.ttl = {{"tmp/*", 100}, {"**", 0}};
  TopicStore store(options);
  store.publishJson("tmp/a", "1", "", 0);
  store.publishJson("tmp/b", "1", "", 0);
  store.publishJson("keep", "1", "", 0);
  store.advance(50);
  store.publishJson("tmp/b", "1", "", 60);  // unchanged, but refreshes the TTL
  store.advance(100);
  EXPECT_EQ(store.get("tmp/a"), nullptr);
  EXPECT_NE(store.get("tmp/b"), nullptr);
  store.advance(160);
  EXPECT_EQ(store.get("tmp/b"), nullptr);
  EXPECT_NE(store.get("keep"), nullptr);
  EXPECT_EQ(store.stats().expirations, 2u);
  // The next change after expiry starts a new epoch.
  const std::string epoch = store.get("keep")->epoch;
  ChangeResult again = store.publishJson("tmp/a", "2", "", 200);
  EXPECT_TRUE(again.created);
  EXPECT_EQ(again.version, 1u);
  EXPECT_NE(again.epoch, epoch);
}

// A change rewrites the current snapshot in place only when nobody else
// holds it: a snapshot a reader holds never changes under it.
TEST(TopicStore, HeldSnapshotsNeverChange) {
  TopicStore store(StoreOptions{});
  ASSERT_TRUE(store.publishJson("t", R"({"v":1,"s":"ok"})", "", 0).changed);
  const auto held = store.get("t");
  ASSERT_TRUE(store.publishJson("t", R"({"v":2,"s":"ok"})", "", 0).changed);
  ASSERT_TRUE(store.publishJson("t", R"({"v":3,"s":"ok"})", "", 0).changed);  // the one after v1 is not held
  EXPECT_EQ(held->json, R"({"v":1,"s":"ok"})");
  EXPECT_EQ(held->version, 1u);
  const auto now = store.get("t");
  EXPECT_EQ(now->json, R"({"v":3,"s":"ok"})");
  EXPECT_EQ(now->version, 3u);
  EXPECT_EQ(now->epoch, held->epoch);
  // Longer and much shorter texts, each diffed against the one before.
  const std::string longer = R"({"v":4,"s":")" + std::string(300, 'x') + R"("})";
  ASSERT_TRUE(store.publishJson("t", longer, "", 0).changed);
  EXPECT_EQ(now->json, R"({"v":3,"s":"ok"})");
  EXPECT_EQ(store.get("t")->json, longer);
  ASSERT_TRUE(store.publishJson("t", R"({"v":5})", "", 0).changed);
  EXPECT_EQ(store.get("t")->json, R"({"v":5})");
  // Texts over 4 KiB are swapped into the snapshot, not copied.
  const std::string big6 = R"({"v":6,"s":")" + std::string(5000, 'y') + R"("})";
  const std::string big7 = R"({"v":7,"s":")" + std::string(5000, 'z') + R"("})";
  ASSERT_TRUE(store.publishJson("t", big6, "", 0).changed);
  const auto held6 = store.get("t");
  ASSERT_TRUE(store.publishJson("t", big7, "", 0).changed);
  ASSERT_TRUE(store.publishJson("t", big6, "", 0).changed);  // v6's text again, into an unheld snapshot
  EXPECT_EQ(held6->json, big6);
  EXPECT_EQ(held6->version, 6u);
  EXPECT_EQ(store.get("t")->json, big6);
  EXPECT_EQ(store.get("t")->version, 8u);
  const auto steps = store.historySince("t", 3);
  ASSERT_EQ(steps.size(), 5u);
  EXPECT_EQ(steps[1].ops, R"([{"op":"remove","path":"/s"},{"op":"replace","path":"/v","value":5}])");
}

// Values of the same shape are diffed on their texts (no tape is kept for
// them); every other kind of change after them parses the current text
// afresh, and the history replays to the current value.
TEST(TopicStore, SameShapeChangesThenEveryOtherKind) {
  TopicStore store(StoreOptions{});
  ASSERT_TRUE(store.publishJson("t", R"({"a":1,"b":"x"})", "", 0).changed);
  ChangeResult fast = store.publishJson("t", R"({"a":2,"b":"x"})", "", 0);
  ASSERT_TRUE(fast.changed);
  EXPECT_EQ(fast.ops, R"([{"op":"replace","path":"/a","value":2}])");
  EXPECT_FALSE(store.publishJson("t", R"({"a":2.0,"b":"x"})", "", 0).changed);  // equal by value
  ChangeResult patched = store.patch("t", R"([{"op":"add","path":"/c","value":[1,2]}])", "", 0);
  ASSERT_TRUE(patched.changed) << patched.status.message();
  ASSERT_TRUE(store.publishJson("t", R"({"a":3,"b":"y","c":[1,2]})", "", 0).changed);
  ChangeResult other = store.publishJson("t", R"({"a":3,"b":"y","c":[1,2,3]})", "", 0);  // an array changed
  EXPECT_EQ(other.ops, R"([{"op":"add","path":"/c/2","value":3}])");
  ASSERT_TRUE(store.publishJson("t", R"({"a":4,"b":"y","c":[1,2,3]})", "", 0).changed);
  ASSERT_TRUE(store.publishJson("t", R"([{"id":1,"p":1}])", "", 0).changed);  // another shape
  ASSERT_TRUE(store.publishJson("t", R"([{"id":1,"p":2}])", "", 0).changed);
  ChangeResult upserted = store.upsert("t", "2", R"({"id":2,"p":5})", "", 0);
  ASSERT_TRUE(upserted.changed) << upserted.status.message();
  ASSERT_TRUE(store.publishJson("t", R"([{"id":1,"p":3},{"id":2,"p":5}])", "", 0).changed);
  ASSERT_TRUE(store.remove("t", "1", "", 0).changed);
  const auto now = store.get("t");
  EXPECT_EQ(now->json, R"([{"id":2,"p":5}])");
  EXPECT_EQ(now->version, 11u);
  // The history from version 1 replays to it.
  std::string value = R"({"a":1,"b":"x"})";
  const auto steps = store.historySince("t", 1);
  ASSERT_EQ(steps.size(), 10u);
  for (const auto& step : steps) {
    std::string next;
    ASSERT_TRUE(applyPatchJson(value, step.ops, next).isOk()) << step.ops;
    value = next;
  }
  EXPECT_EQ(value, now->json);
}

// Two texts hold the same JSON value (RFC 6902 equality); both must parse.
::testing::AssertionResult sameValue(const std::string& a, const std::string& b) {
  JsonTape ta;
  JsonTape tb;
  if (!ta.parse(a).isOk() || !tb.parse(b).isOk())
    return ::testing::AssertionFailure() << "unparsable: " << a << " | " << b;
  if (!jsonEqual(ta, 0, tb, 0)) return ::testing::AssertionFailure() << a << " != " << b;
  return ::testing::AssertionSuccess();
}

// Random sequences of every kind of change, most of them publishes of values
// of the same shape (valid or not, some over the limits), on a store with
// small limits, a TTL, rows kept or not, a memory budget that evicts or none.
// Checked at every step: a publish
// answers as the full diff of the current text and the payload does (the same
// patch byte for byte, the same refusal, unchanged when that diff is empty);
// every change's patch turns the value before into the value after; the
// current text is compact and valid under the limits; held snapshots never
// change; the history (complete without a budget) and diffFrom take any held
// version of the epoch to the current value; a replica fed the patches (ReplicaMode::Patch) keeps up.
TEST(TopicStore, SameShapeAmongEveryKindOfChangeKeepsEveryInvariant) {
  static const std::string scalars[] = {"0", "-0", "1", "1.0", "2", "-3.5", "1e400", "12345678901234567890", "null",
                                        "true", "false", "\"a\"", "\"\\u0061\"", "\"\\ud800\"", "\"\\u00e9\"",
                                        "\"\xc3\xa9\"", "\"x/y~z\"", "\"\"", "\"" + std::string(40, 'w') + "\"",
                                        // invalid, over the limits, or of another shape
                                        "01", "1.", "-", "tru", "nulll", "\"\\q\"", "\"\\u12\"", "\"\xc3\x28\"",
                                        "\"\xed\xa0\x80\"", "\"a\x01\"", std::string("\"a\0b\"", 5), "\"open", " 1",
                                        "1 ", "{}", "{\"z\":1}", "[1]", "{\"q\":{\"r\":{\"s\":{\"t\":1}}}}",
                                        "\"" + std::string(700, 'L') + "\"", "{\"c\":1,\"d\":2,\"k~/\":3}"};
  const std::size_t kValid = 19;  // the first kValid scalars are valid JSON scalars
  struct Setup {
    bool keepRows;
    std::size_t memoryBudget;
  };
  for (const Setup setup : {Setup{true, 0}, Setup{false, 0}, Setup{true, 3500}}) {
    const bool keepRows = setup.keepRows;
    StoreOptions options;
    options.keepRows = keepRows;
    options.memoryBudget = setup.memoryBudget;
    options.limits = ParseLimits{600, 5};
    options.historyCount = 10000;
    options.historyBytes = 1u << 24;
    options.ttl = {TtlRule{"u", 40}};
    TopicStore store(options);
    StoreOptions replicaOptions = options;
    replicaOptions.ttl.clear();  // it follows the engine's expiries and evictions (ReplicaMode::Absent)
    replicaOptions.memoryBudget = 0;
    TopicStore replica(replicaOptions);
    DiffOptions diffOptions;
    diffOptions.arrayKey = options.arrayKey;
    std::mt19937 rng(static_cast<unsigned>(7 + setup.memoryBudget + (keepRows ? 1 : 0)));
    const auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
    const auto scalar = [&](bool valid) -> const std::string& {
      return scalars[valid || pick(16) != 0 ? pick(kValid) : pick(sizeof scalars / sizeof scalars[0])];
    };
    const auto shaped = [&] {
      // A long member name with '~' and '/': its pointer's length counts in the choice of one `replace`.
      return "{\"a\":" + scalar(false) + ",\"b~/" + std::string(20, 'b') + "\":{\"c\":" + scalar(false) +
             ",\"d\":" + scalar(false) + ",\"k~/\":" + scalar(false) + ",\"m\":" + scalar(false) +
             "},\"e\":[1,{\"x\":2}],\"f\":" + scalar(false) + "}";
    };
    const auto row = [&](const std::string& key) { return "{\"id\":" + key + ",\"p\":" + scalar(true) + "}"; };
    struct Held {
      std::string topic;
      std::shared_ptr<const Snapshot> snapshot;
      std::string text;
      std::uint64_t version;
      std::string epoch;
    };
    std::vector<Held> held;
    std::int64_t now = 0;
    std::size_t sameShapeChanges = 0;
    for (int step = 0; step < 3000 && !HasFailure(); ++step) {
      const std::string topic = pick(3) == 0 ? "u" : "t";
      const auto before = store.get(topic);
      const std::string previous = before ? before->json.str() : "";
      std::string payload;
      ChangeResult result;
      bool published = false;
      switch (pick(16)) {
        case 0:
          payload = "[" + row("1") + "," + row("2") + "]";
          published = true;
          break;
        case 1:
          payload = scalar(false);
          published = true;
          break;
        case 2: {
          payload = shaped();
          const char c = std::string_view(" \"\\{}[],:0\0x", 12)[pick(12)];
          if (pick(2) == 0) {
            payload.insert(pick(payload.size() + 1), 1, c);
          } else {
            payload[pick(payload.size())] = c;
          }
          published = true;
          break;
        }
        case 3: {
          static const std::string paths[] = {"/a",   "/b~0~1" + std::string(20, 'b') + "/c", "/f", "/g",
                                              "/0/p", "/b~0~1" + std::string(20, 'b')};
          static const char* const kinds[] = {"replace", "add", "remove"};
          const char* const kind = kinds[pick(3)];
          std::string op = std::string("[{\"op\":\"") + kind + "\",\"path\":\"" + paths[pick(6)] + "\"";
          if (std::string(kind) != "remove") op += ",\"value\":" + scalar(true);
          result = store.patch(topic, op + "}]", "", now);
          break;
        }
        case 4: {
          const std::string key = std::to_string(1 + pick(3));
          result = store.upsert(topic, key, row(key), "", now);
          break;
        }
        case 5: result = store.remove(topic, std::to_string(1 + pick(3)), "", now); break;
        case 6:
          if (pick(8) == 0) {
            store.erase(topic);
            replica.replicate(topic, "", 0, ReplicaMode::Absent, "", now);
          }
          break;
        default:
          payload = shaped();
          published = true;
          break;
      }
      if (published) {
        result = store.publishJson(topic, payload, "", now);
        if (before) {
          // The store keeps texts compact: the diff of the compact payload
          // (whitespace would count in the choice of one `replace`).
          std::string compact = payload;
          if (JsonTape parsed; parsed.parse(payload, options.limits).isOk() && !parsed.compact()) {
            compact.clear();
            appendMinified(payload, compact);
          }
          std::string expected;
          const Status full = diffJson(previous, compact, diffOptions, expected, options.limits);
          ASSERT_EQ(result.status.code(), full.code()) << previous << "\n"
                                                       << payload << "\n"
                                                       << result.status.message();
          if (full.isOk()) {
            ASSERT_EQ(result.changed, expected != "[]") << previous << "\n" << payload;
            if (result.changed) {
              EXPECT_EQ(result.ops, expected) << previous << "\n" << payload;
            }
            std::string fast;
            if (result.changed && diffSameShape(previous, payload, fast) == ShapeDiff::Changed) ++sameShapeChanges;
          }
        }
      }
      const auto after = store.get(topic);
      if (after) {
        JsonTape tape;
        ASSERT_TRUE(tape.parse(after->json.str(), options.limits).isOk()) << after->json.str();
        EXPECT_TRUE(tape.compact()) << after->json.str();
      }
      if (result.changed && !result.created) {
        ASSERT_TRUE(before);
        ASSERT_EQ(after->version, before->version + 1);
        std::string applied;
        ASSERT_TRUE(applyPatchJson(previous, result.ops, applied).isOk()) << previous << "\n" << result.ops;
        ASSERT_TRUE(sameValue(applied, after->json.str())) << result.ops;
        const ChangeResult copied =
            replica.replicate(topic, result.epoch, result.version, ReplicaMode::Patch, result.ops, now);
        ASSERT_EQ(copied.version, result.version) << copied.status.message() << "\n" << result.ops;
      } else if (result.changed) {
        replica.replicate(topic, result.epoch, result.version, ReplicaMode::State, after->json.str(), now);
      } else if (before && after) {
        ASSERT_EQ(after->version, before->version);
        ASSERT_EQ(after->json.str(), previous);
      }
      if (after) {
        const auto copy = replica.get(topic);
        ASSERT_TRUE(copy);
        EXPECT_EQ(copy->version, after->version);
        EXPECT_TRUE(sameValue(copy->json.str(), after->json.str()));
        if (pick(4) == 0) {
          held.push_back(Held{topic, after, after->json.str(), after->version, after->epoch});
          if (held.size() > 24) held.erase(held.begin());
        }
      }
      // Held snapshots never change; any of this epoch reaches the current value.
      for (const Held& each : held) {
        ASSERT_EQ(each.snapshot->json.str(), each.text);
        ASSERT_EQ(each.snapshot->version, each.version);
      }
      const Held* h = held.empty() ? nullptr : &held[pick(held.size())];
      if (after && h != nullptr && h->topic == topic && h->epoch == after->epoch && h->version < after->version) {
        std::string value = h->text;
        const auto steps = store.historySince(topic, h->version);
        // A budget drops the oldest steps of a topic's history.
        ASSERT_TRUE(!steps.empty() || setup.memoryBudget != 0);
        for (const HistoryStep& s : steps) {
          std::string next;
          ASSERT_TRUE(applyPatchJson(value, s.ops, next).isOk()) << value << "\n" << s.ops;
          value = next;
        }
        if (!steps.empty()) {
          EXPECT_TRUE(sameValue(value, after->json.str()));
        }
        std::string squashed;
        ASSERT_TRUE(store.diffFrom(*h->snapshot, topic, squashed));
        std::string net;
        ASSERT_TRUE(applyPatchJson(h->text, squashed, net).isOk()) << squashed;
        EXPECT_TRUE(sameValue(net, after->json.str()));
      }
      // Time passes; "u" expires when it is left alone for 40 ms.
      now += static_cast<std::int64_t>(pick(12));
      store.advance(now);
      for (const char* name : {"t", "u"}) {
        if (!store.get(name)) replica.replicate(name, "", 0, ReplicaMode::Absent, "", now);
      }
    }
    EXPECT_GT(sameShapeChanges, 500u) << "keepRows " << keepRows << ", budget " << setup.memoryBudget;
    if (setup.memoryBudget != 0) {
      EXPECT_GT(store.stats().evictions, 50u);
    }
  }
}

TEST(TopicStore, ReadersOnAnotherThreadSeeWholeVersions) {
  TopicStore store(StoreOptions{});
  ASSERT_TRUE(store.publishJson("t", R"({"v":1})", "", 0).changed);
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::atomic<int> torn{0};
  std::thread reader([&] {
    while (!done.load()) {
      const auto snapshot = store.get("t");
      // The text must be the one of its version, whatever the writer does meanwhile.
      if (snapshot->json != "{\"v\":" + std::to_string(snapshot->version) + "}") ++torn;
      ++reads;
    }
  });
  while (reads.load() == 0) std::this_thread::yield();
  for (int v = 2; v < 200000 && (v < 20000 || reads.load() < 1000); ++v) {
    ASSERT_TRUE(store.publishJson("t", "{\"v\":" + std::to_string(v) + "}", "", 0).changed);
  }
  done = true;
  reader.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_GT(reads.load(), 0);
}

// prefetch is a hint: every stage, on topics that exist, never existed or
// were erased, changes nothing (ASan/valgrind check that it reads only live
// memory), and a stale hash finds nothing.
TEST(TopicStore, PrefetchStagesAreHintsOnly) {
  TopicStore store(StoreOptions{});
  ASSERT_TRUE(store.publishJson("a", R"({"v":1})", "", 0).changed);
  ASSERT_TRUE(store.publishJson("a", R"({"v":2})", "", 0).changed);
  ASSERT_TRUE(store.publishJson("b", R"([1,2,3])", "", 0).changed);
  const auto stages = [&](std::string_view name, std::uint64_t hash) {
    TopicStore::Lookup lookup{hash};
    for (int stage = 0; stage <= 3; ++stage) store.prefetch(name, lookup, stage);
    return lookup;
  };
  for (const char* name : {"a", "b", "missing", ""}) stages(name, nameHash(name));
  // A lookup made before its topic is erased is not used after it: stage 3
  // and the change look the topic up again (ASan: no read of the freed entry).
  TopicStore::Lookup stale{nameHash("a")};
  for (int stage = 0; stage <= 2; ++stage) store.prefetch("a", stale, stage);
  ASSERT_NE(stale.entry, nullptr);
  ASSERT_TRUE(store.erase("a"));
  store.prefetch("a", stale, 3);
  std::string json = R"({"v":3})";
  ChangeResult made;
  store.publishJsonFrom("a", json, "", 0, made, &stale);
  EXPECT_TRUE(made.created);
  EXPECT_EQ(made.version, 1u);
  // A lookup made after is used, and gives the same result as none.
  const TopicStore::Lookup fresh = stages("a", nameHash("a"));
  ASSERT_NE(fresh.entry, nullptr);
  json = R"({"v":4})";
  ChangeResult changed;
  store.publishJsonFrom("a", json, "", 0, changed, &fresh);
  EXPECT_TRUE(changed.changed);
  EXPECT_EQ(changed.version, 2u);
  EXPECT_EQ(store.get("a")->json, R"({"v":4})");
  ASSERT_TRUE(store.erase("a"));
  stages("a", nameHash("a"));
  stages("b", nameHash("a"));  // wrong hash
  EXPECT_EQ(store.get("a"), nullptr);
  EXPECT_EQ(store.get("b")->json, "[1,2,3]");
  EXPECT_EQ(store.get("b")->version, 1u);
  EXPECT_EQ(store.stats().topics, 1u);
}

TEST(TopicStore, MemoryBudgetEvictsLeastRecentlyUsed) {
  StoreOptions options;
  options.memoryBudget = 4000;
  TopicStore store(options);
  const std::string value = "\"" + std::string(500, 'x') + "\"";
  for (int i = 0; i < 10; ++i) store.publishJson("t" + std::to_string(i), value, "", i);
  const StoreStats stats = store.stats();
  EXPECT_LE(stats.bytes, 4000u);
  EXPECT_GT(stats.evictions, 0u);
  EXPECT_EQ(stats.topics + stats.evictions, 10u);
  EXPECT_EQ(store.get("t0"), nullptr);  // the oldest went first
  EXPECT_NE(store.get("t9"), nullptr);
  // One value over the whole budget is refused, and evicts nothing.
  const std::uint64_t before = store.stats().evictions;
  ChangeResult huge = store.publishJson("huge", "\"" + std::string(5000, 'y') + "\"", "", 20);
  EXPECT_EQ(huge.status.code(), ErrorCode::TooLarge);
  EXPECT_EQ(store.stats().evictions, before);
  // An evicted topic comes back with a new epoch.
  ChangeResult back = store.publishJson("t0", value, "", 30);
  EXPECT_TRUE(back.created);
}

TEST(TopicStore, EraseAndStats) {
  TopicStore store({});
  store.publishJson("a", "[1]", "", 0);
  store.publishJson("b", "[2]", "", 0);
  EXPECT_EQ(store.stats().topics, 2u);
  EXPECT_TRUE(store.erase("a"));
  EXPECT_FALSE(store.erase("a"));
  EXPECT_EQ(store.stats().topics, 1u);
  EXPECT_EQ(store.get("a"), nullptr);
  EXPECT_TRUE(store.erase("b"));
  EXPECT_EQ(store.stats().bytes, 0u);
}

TEST(TopicStore, RowKeysAreEqualByJsonValue) {
  TopicStore store({});
  ASSERT_TRUE(store.upsert("rows", "9007199254740992", R"({"id":9007199254740992,"v":1})", "", 0).created);
  // 2^53 + 1 is another row (as doubles the two keys were equal).
  ChangeResult other = store.upsert("rows", "9007199254740993", R"({"id":9007199254740993,"v":2})", "", 0);
  ASSERT_TRUE(other.status.isOk()) << other.status.message();
  EXPECT_EQ(other.ops, R"([{"op":"add","path":"/1","value":{"id":9007199254740993,"v":2}}])");
  // 1 and 1.0 are one row; "1" is another.
  ASSERT_TRUE(store.upsert("rows", "1", R"({"id":1,"v":1})", "", 0).changed);
  ChangeResult same = store.upsert("rows", "1.0", R"({"id":1.0,"v":3})", "", 0);
  ASSERT_TRUE(same.status.isOk()) << same.status.message();
  EXPECT_EQ(same.ops, R"([{"op":"replace","path":"/2/v","value":3}])");
  ChangeResult text = store.upsert("rows", R"("1")", R"({"id":"1","v":4})", "", 0);
  EXPECT_EQ(text.ops, R"([{"op":"add","path":"/3","value":{"id":"1","v":4}}])");
  EXPECT_EQ(store.get("rows")->json,
            R"([{"id":9007199254740992,"v":1},{"id":9007199254740993,"v":2},{"id":1.0,"v":3},{"id":"1","v":4}])");
  EXPECT_EQ(store.remove("rows", "9007199254740993", "", 0).ops, R"([{"op":"remove","path":"/1"}])");
  EXPECT_EQ(store.remove("rows", "1e0", "", 0).ops, R"([{"op":"remove","path":"/1"}])");
  EXPECT_EQ(store.get("rows")->json, R"([{"id":9007199254740992,"v":1},{"id":"1","v":4}])");
}

TEST(TopicStore, PatchKeepsUntouchedNumbersAndSendsOnlyTheChange) {
  TopicStore store({});
  const std::string doc =
      R"({"big":1e400,"tiny":1e-400,"u":18446744073709551616,"long":123456789012345678901234567890,"f":1.0,"w":1})";
  ASSERT_TRUE(store.publishJson("n", doc, "", 0).changed);
  ChangeResult result = store.patch("n", R"([{"op":"replace","path":"/w","value":2}])", "", 1);
  ASSERT_TRUE(result.status.isOk()) << result.status.message();
  EXPECT_EQ(result.ops, R"([{"op":"replace","path":"/w","value":2}])");
  EXPECT_EQ(
      store.get("n")->json,
      R"({"big":1e400,"tiny":1e-400,"u":18446744073709551616,"long":123456789012345678901234567890,"f":1.0,"w":2})");
  // upsert and remove splice the text: the other rows keep theirs.
  ASSERT_TRUE(store.publishJson("r", R"([{"id":1,"x":1e400},{"id":2,"x":0.10}])", "", 0).changed);
  EXPECT_EQ(store.upsert("r", "2", R"({"id":2,"x":5})", "", 1).ops, R"([{"op":"replace","path":"/1/x","value":5}])");
  EXPECT_EQ(store.remove("r", "2", "", 1).ops, R"([{"op":"remove","path":"/1"}])");
  EXPECT_EQ(store.get("r")->json, R"([{"id":1,"x":1e400}])");
}

TEST(TopicStore, PatchLimitsHoldWhileApplying) {
  StoreOptions options;
  options.limits.maxBytes = 4096;
  options.maxPatchOps = 5;
  TopicStore store(options);
  ASSERT_TRUE(store.publishJson("t", R"({"pad":")" + std::string(1000, 'x') + "\"}", "", 0).changed);
  std::string ops = "[";
  for (int i = 0; i < 5; ++i)
    ops += std::string(i ? "," : "") + R"({"op":"copy","from":"","path":"/c)" + std::to_string(i) + "\"}";
  ChangeResult large = store.patch("t", ops + "]", "", 1);
  EXPECT_EQ(large.status.code(), ErrorCode::TooLarge) << large.status.message();
  ChangeResult many = store.patch("t", ops + R"(,{"op":"remove","path":"/pad"}])", "", 1);
  EXPECT_EQ(many.status.code(), ErrorCode::TooManyOps) << many.status.message();
  EXPECT_EQ(store.get("t")->version, 1u);
  EXPECT_EQ(store.stats().rejected, 2u);
}

TEST(TopicStore, DuplicateNamesNeverReachSubscribers) {
  // Refused on the way in, so no patch is computed from an object that names
  // a member twice (that once produced [remove /a, replace /a]).
  TopicStore store({});
  EXPECT_EQ(store.publishJson("t", R"({"a":1,"a":2})", "", 0).status.code(), ErrorCode::InvalidJson);
  ASSERT_TRUE(store.publishJson("t", R"({"a":1})", "", 0).changed);
  EXPECT_EQ(store.publishJson("t", R"({"a":1,"a":3})", "", 1).status.code(), ErrorCode::InvalidJson);
  EXPECT_EQ(store.patch("t", R"([{"op":"add","path":"/b","value":{"x":1,"x":2}}])", "", 1).status.code(),
            ErrorCode::InvalidJson);
  EXPECT_EQ(store.upsert("r", "1", R"({"id":1,"id":2})", "", 1).status.code(), ErrorCode::InvalidJson);
  ChangeResult next = store.publishJson("t", R"({"a":5})", "", 2);
  EXPECT_EQ(next.ops, R"([{"op":"replace","path":"/a","value":5}])");
}

}  // namespace
}  // namespace deltacast
