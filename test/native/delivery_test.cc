#include "deltacast/delivery.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <string>

#include "deltacast/json_patch.h"

namespace deltacast {
namespace {

// The topics of asks for held values (Delivery::takeWants, takeDueWants).
std::vector<std::string> topicsOf(const std::vector<Delivery::Want>& wants) {
  std::vector<std::string> topics;
  for (const Delivery::Want& want : wants) topics.push_back(want.topic);
  return topics;
}

class DeliveryTest : public ::testing::Test {
 protected:
  // Every topic on the critical lane: each change is delivered at once.
  DeliveryTest() : store_(options()), delivery_(store_, AccessRules(), DeliveryLimits{}, {{"**", Lane::Critical}}) {}

  static StoreOptions options() {
    StoreOptions o;
    o.historyCount = 4;
    return o;
  }

  ChangeResult publish(const std::string& topic, const std::string& json) {
    ChangeResult r = store_.publishJson(topic, json, "", 0);
    delivery_.changed(topic, r, 0);
    return r;
  }

  // The frames sent to one connection since the last call.
  std::vector<std::string> framesFor(ConnectionId id) {
    for (Outgoing& o : delivery_.takeOutgoing()) pending_.push_back(std::move(o));
    std::vector<std::string> out;
    std::vector<Outgoing> rest;
    for (Outgoing& o : pending_) {
      if (o.connection == id) {
        out.push_back(*o.frame);
      } else {
        rest.push_back(std::move(o));
      }
    }
    pending_ = std::move(rest);
    return out;
  }

  TopicStore store_;
  Delivery delivery_;
  std::vector<Outgoing> pending_;
};

TEST_F(DeliveryTest, SubscribeGetsASnapshotThenPatches) {
  const ChangeResult v1 = publish("prices", R"({"a":1,"pad":"................................"})");
  delivery_.connect(1, {});
  delivery_.receive(1, R"({"t":"sub","topic":"prices"})");
  auto frames = framesFor(1);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0], R"({"t":"snap","topic":"prices","epoch":")" + v1.epoch +
                           R"(","version":1,"data":{"a":1,"pad":"................................"}})");
  publish("prices", R"({"a":2,"pad":"................................"})");
  frames = framesFor(1);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0], R"({"t":"patch","topic":"prices","epoch":")" + v1.epoch +
                           R"(","from":1,"to":2,"ops":[{"op":"replace","path":"/a","value":2}]})");
}

// A `sub` says what the client holds; the version it claims was never sent,
// so acks above what really was are still DELTACAST_INVALID_ACK.
TEST_F(DeliveryTest, AClaimedVersionDoesNotMakeAcksForIt) {
  const ChangeResult v1 = publish("t", R"({"a":1,"pad":"................................"})");
  delivery_.connect(1, {});
  const auto ackAnswer = [&](std::uint64_t version) {
    delivery_.receive(1, R"({"t":"ack","topic":"t","version":)" + std::to_string(version) + "}");
    const auto frames = framesFor(1);
    return frames.empty() ? std::string() : frames[0];
  };
  // another epoch, a huge version: answered with a snapshot of version 1
  delivery_.receive(1, R"({"t":"sub","topic":"t","epoch":"other","version":9007199254740992})");
  ASSERT_EQ(framesFor(1).size(), 1u);
  EXPECT_NE(ackAnswer(999999).find("DELTACAST_INVALID_ACK"), std::string::npos);
  EXPECT_EQ(ackAnswer(1), "");
  // the right epoch, a version past the newest: a snapshot again, and still no ack above 1
  delivery_.receive(1, R"({"t":"sub","topic":"t","epoch":")" + v1.epoch + R"(","version":500})");
  ASSERT_EQ(framesFor(1).size(), 1u);
  EXPECT_NE(ackAnswer(500).find("DELTACAST_INVALID_ACK"), std::string::npos);
  // an absent topic resumed with a claimed version: `gone`, and no ack for it
  delivery_.receive(1, R"({"t":"sub","topic":"absent","epoch":"e","version":7})");
  ASSERT_EQ(framesFor(1).size(), 1u);
  delivery_.receive(1, R"({"t":"ack","topic":"absent","version":7})");
  const auto frames = framesFor(1);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_NE(frames[0].find("DELTACAST_INVALID_ACK"), std::string::npos);
}

// Resume keeps working: a client current at (epoch, v) may ack v, and after a
// resume patch it may ack what the patch brought.
TEST_F(DeliveryTest, ResumeStillTakesAcksForWhatWasSentOrIsCurrent) {
  const ChangeResult v1 = publish("t", R"({"a":1,"pad":"................................"})");
  publish("t", R"({"a":2,"pad":"................................"})");
  delivery_.connect(1, {});
  delivery_.receive(1, R"({"t":"sub","topic":"t","epoch":")" + v1.epoch + R"(","version":2})");
  EXPECT_TRUE(framesFor(1).empty());  // current
  delivery_.receive(1, R"({"t":"ack","topic":"t","version":2})");
  EXPECT_TRUE(framesFor(1).empty());
  delivery_.connect(2, {});
  delivery_.receive(2, R"({"t":"sub","topic":"t","epoch":")" + v1.epoch + R"(","version":1})");
  auto frames = framesFor(2);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_NE(frames[0].find(R"("t":"patch")"), std::string::npos);
  delivery_.receive(2, R"({"t":"ack","topic":"t","version":2})");
  EXPECT_TRUE(framesFor(2).empty());
  delivery_.receive(2, R"({"t":"ack","topic":"t","version":3})");
  frames = framesFor(2);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_NE(frames[0].find("DELTACAST_INVALID_ACK"), std::string::npos);
}

TEST_F(DeliveryTest, FramesAreEncodedOnceAndShared) {
  publish("t", R"({"a":1,"pad":"................................"})");
  for (ConnectionId id = 1; id <= 3; ++id) {
    delivery_.connect(id, {});
    delivery_.receive(id, R"({"t":"sub","topic":"t"})");
  }
  std::vector<Outgoing> snaps = delivery_.takeOutgoing();
  ASSERT_EQ(snaps.size(), 3u);
  EXPECT_EQ(snaps[0].frame.get(), snaps[1].frame.get());
  EXPECT_EQ(snaps[1].frame.get(), snaps[2].frame.get());
  publish("t", R"({"a":2,"pad":"................................"})");
  std::vector<Outgoing> patches = delivery_.takeOutgoing();
  ASSERT_EQ(patches.size(), 3u);
  EXPECT_EQ(patches[0].frame.get(), patches[2].frame.get());
  EXPECT_NE(patches[0].frame->find("\"t\":\"patch\""), std::string::npos);
}

TEST_F(DeliveryTest, ResumeFromHistoryOrSnapshot) {
  const std::string pad = R"(,"pad":")" + std::string(200, '.') + "\"}";
  const ChangeResult v1 = publish("t", "{\"v\":0" + pad);
  for (int i = 1; i <= 6; ++i) publish("t", "{\"v\":" + std::to_string(i) + pad);
  delivery_.connect(1, {});
  // Current: nothing.
  delivery_.receive(1, R"({"t":"sub","topic":"t","epoch":")" + v1.epoch + R"(","version":7})");
  EXPECT_TRUE(framesFor(1).empty());
  // Inside the history window (4 patches: 3->7): one patch from 5 to 7, the
  // steps' operations one after the other.
  delivery_.receive(1, R"({"t":"unsub","topic":"t"})");
  delivery_.receive(1, R"({"t":"sub","topic":"t","epoch":")" + v1.epoch + R"(","version":5})");
  auto frames = framesFor(1);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_NE(
      frames[0].find(
          R"("from":5,"to":7,"ops":[{"op":"replace","path":"/v","value":5},{"op":"replace","path":"/v","value":6}]})"),
      std::string::npos)
      << frames[0];
  // Outside the window: a snapshot.
  delivery_.receive(1, R"({"t":"sub","topic":"t","epoch":")" + v1.epoch + R"(","version":1})");
  frames = framesFor(1);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_NE(frames[0].find(R"("t":"snap")"), std::string::npos);
  // Another epoch: a snapshot.
  delivery_.receive(1, R"({"t":"sub","topic":"t","epoch":"other","version":7})");
  frames = framesFor(1);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_NE(frames[0].find(R"("t":"snap")"), std::string::npos);
}

TEST_F(DeliveryTest, SubscribersHearWhenTheirTopicLeavesTheStore) {
  store_.reportRemovals(true);
  const ChangeResult v1 = publish("t", R"({"a":1,"pad":"................................"})");
  publish("other", R"({"b":1})");
  for (ConnectionId id = 1; id <= 2; ++id) {
    delivery_.connect(id, {});
    delivery_.receive(id, R"({"t":"sub","topic":"t"})");
  }
  delivery_.receive(2, R"({"t":"sub","topic":"other"})");
  publish("t", R"({"a":2,"pad":"................................"})");
  framesFor(1);
  framesFor(2);

  ASSERT_TRUE(store_.erase("t"));
  for (const RemovedTopic& removed : store_.takeRemoved()) delivery_.gone(removed, 0);
  const std::string gone = R"({"t":"gone","topic":"t","epoch":")" + v1.epoch + R"(","version":2,"reason":"deleted"})";
  EXPECT_EQ(framesFor(1), std::vector<std::string>{gone});
  EXPECT_EQ(framesFor(2), std::vector<std::string>{gone});
  EXPECT_EQ(delivery_.stats().goneSent.load(), 2u);

  // An ack sent before the client heard is not an error.
  delivery_.receive(1, R"({"t":"ack","topic":"t","version":2})");
  EXPECT_TRUE(framesFor(1).empty());
  // The subscription stays: the topic's next life arrives as a snapshot under a new epoch.
  const ChangeResult again = publish("t", R"({"a":3})");
  EXPECT_NE(again.epoch, v1.epoch);
  const auto frames = framesFor(1);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0], R"({"t":"snap","topic":"t","epoch":")" + again.epoch + R"(","version":1,"data":{"a":3}})");
  // The other topic was not touched.
  publish("other", R"({"b":2})");
  EXPECT_EQ(framesFor(2).size(), 2u);  // t's snapshot and other's patch
}

TEST_F(DeliveryTest, ResumingATopicThatWentMeanwhileIsToldItIsGone) {
  const ChangeResult v1 = publish("t", R"({"a":1})");
  delivery_.connect(1, {});
  // the client held (epoch, 1) before it went away; the topic was deleted since
  ASSERT_TRUE(store_.erase("t"));
  delivery_.receive(1, R"({"t":"sub","topic":"t","epoch":")" + v1.epoch + R"(","version":1})");
  EXPECT_EQ(framesFor(1), std::vector<std::string>{R"({"t":"gone","topic":"t","epoch":")" + v1.epoch +
                                                   R"(","version":1,"reason":"absent"})"});
  // A client that holds nothing is not told anything: it waits for a first version.
  delivery_.connect(2, {});
  delivery_.receive(2, R"({"t":"sub","topic":"t"})");
  EXPECT_TRUE(framesFor(2).empty());
}

TEST(DeliveryRemovals, ExpiredAndEvictedTopicsSayWhy) {
  StoreOptions options;
  options.ttl = {{"tmp/*", 100}};
  options.memoryBudget = 4096;
  TopicStore store(options);
  store.reportRemovals(true);
  Delivery delivery(store, AccessRules(), DeliveryLimits{}, {{"**", Lane::Critical}});
  delivery.connect(1, {});
  (void)store.publishJson("tmp/a", "1", "", 0);
  (void)store.publishJson("big", "[" + std::string(1000, '1') + "]", "", 0);
  delivery.receive(1, R"({"t":"sub","topic":"tmp/a"})");
  delivery.receive(1, R"({"t":"sub","topic":"big"})");
  delivery.takeOutgoing();
  store.advance(100);
  // a topic that does not fit with "big": the least recently used goes
  (void)store.publishJson("bigger", "[" + std::string(3000, '2') + "]", "", 100);
  for (const RemovedTopic& removed : store.takeRemoved()) delivery.gone(removed, 100);
  std::vector<std::string> frames;
  for (Outgoing& o : delivery.takeOutgoing()) frames.push_back(*o.frame);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_NE(frames[0].find(R"("topic":"tmp/a")"), std::string::npos) << frames[0];
  EXPECT_NE(frames[0].find(R"("reason":"expired")"), std::string::npos) << frames[0];
  EXPECT_NE(frames[1].find(R"("topic":"big")"), std::string::npos) << frames[1];
  EXPECT_NE(frames[1].find(R"("reason":"evicted")"), std::string::npos) << frames[1];
}

TEST(DeliveryRemovals, NothingIsRecordedUnlessAsked) {
  TopicStore store(StoreOptions{});
  (void)store.publishJson("t", "1", "", 0);
  ASSERT_TRUE(store.erase("t"));
  EXPECT_TRUE(store.takeRemoved().empty());
}

TEST_F(DeliveryTest, SubscribingBeforeTheTopicExists) {
  delivery_.connect(1, {});
  delivery_.receive(1, R"({"t":"sub","topic":"later"})");
  EXPECT_TRUE(framesFor(1).empty());
  publish("later", "[1]");
  auto frames = framesFor(1);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_NE(frames[0].find(R"("t":"snap")"), std::string::npos);
  EXPECT_NE(frames[0].find(R"("data":[1])"), std::string::npos);
}

TEST_F(DeliveryTest, UnsubscribeAndDisconnectStopDelivery) {
  publish("t", "[1]");
  delivery_.connect(1, {});
  delivery_.connect(2, {});
  delivery_.receive(1, R"({"t":"sub","topic":"t"})");
  delivery_.receive(2, R"({"t":"sub","topic":"t"})");
  delivery_.takeOutgoing();
  delivery_.receive(1, R"({"t":"unsub","topic":"t"})");
  delivery_.receive(1, R"({"t":"unsub","topic":"t"})");  // idempotent
  delivery_.disconnect(2);
  publish("t", "[2]");
  EXPECT_TRUE(delivery_.takeOutgoing().empty());
  EXPECT_EQ(delivery_.subscriptionCount(), 0u);
}

TEST_F(DeliveryTest, MalformedMessagesGetErrorsAndChangeNothing) {
  publish("t", "[1]");
  delivery_.connect(1, {});
  delivery_.receive(1, R"({"t":"sub","topic":"t"})");
  framesFor(1);
  struct Case {
    std::string message;
    const char* code;
  };
  const Case cases[] = {
      {"not json", "DELTACAST_INVALID_MESSAGE"},
      {"[1]", "DELTACAST_INVALID_MESSAGE"},
      {R"({"topic":"t"})", "DELTACAST_INVALID_MESSAGE"},
      {R"({"t":1})", "DELTACAST_INVALID_MESSAGE"},
      {R"({"t":"jump","topic":"t"})", "DELTACAST_UNKNOWN_MESSAGE"},
      {R"({"t":"sub"})", "DELTACAST_INVALID_MESSAGE"},
      {R"({"t":"sub","topic":7})", "DELTACAST_INVALID_MESSAGE"},
      {R"({"t":"sub","topic":""})", "DELTACAST_INVALID_TOPIC"},
      {R"({"t":"sub","topic":"t","version":-1,"epoch":"e"})", "DELTACAST_INVALID_MESSAGE"},
      {R"({"t":"sub","topic":"t","version":1.5,"epoch":"e"})", "DELTACAST_INVALID_MESSAGE"},
      {R"({"t":"sub","topic":"t","version":3})", "DELTACAST_INVALID_MESSAGE"},
      {R"({"t":"ack","topic":"t"})", "DELTACAST_INVALID_MESSAGE"},
      {R"({"t":"ack","topic":"t","version":99})", "DELTACAST_INVALID_ACK"},
      {R"({"t":"ack","topic":"nope","version":1})", "DELTACAST_INVALID_ACK"},
      {std::string(70000, ' '), "DELTACAST_MESSAGE_TOO_LARGE"},
  };
  for (const Case& c : cases) {
    delivery_.receive(1, c.message);
    auto frames = framesFor(1);
    ASSERT_EQ(frames.size(), 1u) << c.message;
    EXPECT_NE(frames[0].find(std::string("\"code\":\"") + c.code + "\""), std::string::npos)
        << c.message.substr(0, 80) << " -> " << frames[0];
  }
  // The subscription is intact and delivery goes on.
  delivery_.receive(1, R"({"t":"ack","topic":"t","version":1})");
  delivery_.receive(1, R"({"t":"pong"})");
  EXPECT_TRUE(framesFor(1).empty());
  publish("t", "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,2]");
  EXPECT_EQ(framesFor(1).size(), 1u);
}

TEST(Delivery, AccessRulesAndSubscriptionLimit) {
  TopicStore store({});
  DeliveryLimits limits;
  limits.maxSubscriptions = 2;
  Delivery delivery(store, AccessRules(std::vector<AccessRule>{{"public/*", {}}, {"user/{userId}/**", {}}}), limits);
  delivery.connect(1, {"alice", {}});
  delivery.receive(1, R"({"t":"sub","topic":"secret"})");
  delivery.receive(1, R"({"t":"sub","topic":"user/bob/orders"})");
  delivery.receive(1, R"({"t":"sub","topic":"user/alice/orders"})");
  delivery.receive(1, R"({"t":"sub","topic":"public/a"})");
  delivery.receive(1, R"({"t":"sub","topic":"public/b"})");
  std::vector<Outgoing> out = delivery.takeOutgoing();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_NE(out[0].frame->find("DELTACAST_FORBIDDEN"), std::string::npos);
  EXPECT_NE(out[1].frame->find("DELTACAST_FORBIDDEN"), std::string::npos);
  EXPECT_NE(out[2].frame->find("DELTACAST_TOO_MANY_SUBSCRIPTIONS"), std::string::npos);
  EXPECT_EQ(delivery.subscriptionCount(), 2u);
}

}  // namespace
}  // namespace deltacast

namespace deltacast {
namespace {

// Pacing, on explicit time.
class LaneTest : public ::testing::Test {
 protected:
  LaneTest()
      : delivery_(store_, AccessRules(), DeliveryLimits{},
                  {{"crit/*", Lane::Critical}, {"high/*", Lane::High}, {"low/*", Lane::Low}}, Pacing{}) {
    delivery_.connect(1, {});
  }

  void publish(const std::string& topic, int value, std::int64_t now) {
    ChangeResult r = store_.publishJson(
        topic, R"({"v":)" + std::to_string(value) + R"(,"pad":")" + std::string(100, '.') + "\"}", "", now);
    delivery_.changed(topic, r, now);
  }
  void sub(const std::string& topic) {
    delivery_.receive(1, R"({"t":"sub","topic":")" + topic + "\"}");
    delivery_.takeOutgoing();
  }
  // Frames sent at exactly `now` (after advancing to it).
  std::vector<std::string> at(std::int64_t now) {
    delivery_.advance(now);
    std::vector<std::string> out;
    for (Outgoing& o : delivery_.takeOutgoing()) out.push_back(*o.frame);
    return out;
  }

  TopicStore store_{StoreOptions{}};
  Delivery delivery_;
};

TEST_F(LaneTest, CriticalIsImmediate) {
  publish("crit/a", 0, 0);
  sub("crit/a");
  publish("crit/a", 1, 5);
  EXPECT_EQ(delivery_.takeOutgoing().size(), 1u);
}

// Coalescing: a held value is paced as a change; its flush asks for the
// value (takeWants) and sends once it is released.
TEST_F(LaneTest, AHeldValueIsAskedForWhenItsFlushFallsDueAndSentWhenReleased) {
  publish("n", 0, 0);
  sub("n");
  delivery_.hold("n", std::nullopt, 100);
  delivery_.hold("n", std::nullopt, 130);  // the debounce counts from the last hold
  EXPECT_EQ(delivery_.heldCount(), 1u);
  EXPECT_TRUE(at(179).empty());
  EXPECT_TRUE(topicsOf(delivery_.takeWants()).empty());
  EXPECT_TRUE(at(180).empty());  // due: asked for, not flushed
  EXPECT_EQ(topicsOf(delivery_.takeWants()), std::vector<std::string>{"n"});
  delivery_.hold("n", std::nullopt, 181);  // while asked for: its release answers this one too
  EXPECT_TRUE(topicsOf(delivery_.takeWants()).empty());
  publish("n", 7, 182);  // the value, flagged release by the hub
  delivery_.released("n", 182);
  const std::vector<Outgoing> out = delivery_.takeOutgoing();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].frame->find(R"("to":2)"), std::string::npos) << *out[0].frame;
  EXPECT_EQ(delivery_.heldCount(), 0u);
  EXPECT_TRUE(at(1000).empty());  // nothing left scheduled
  EXPECT_TRUE(topicsOf(delivery_.takeWants()).empty());
  delivery_.released("n", 1001);  // a stray release changes nothing
  EXPECT_TRUE(delivery_.takeOutgoing().empty());
}

TEST_F(LaneTest, AHeldValueOutlivesItsLastSubscriber) {
  publish("n", 0, 0);
  sub("n");
  delivery_.hold("n", std::nullopt, 10);
  delivery_.receive(1, R"({"t":"unsub","topic":"n"})");
  at(60);
  EXPECT_EQ(topicsOf(delivery_.takeWants()), std::vector<std::string>{"n"}) << "asked for with nobody subscribed";
  delivery_.released("n", 61);
  EXPECT_EQ(delivery_.heldCount(), 0u);
}

// A held value was published before its topic was removed (a TTL, an
// eviction): published at once it would have gone with the topic. It is
// asked for at once, so that JS settles its publishes, and dropped: its
// flush is not made, and a change carrying it is not applied.
TEST_F(LaneTest, AHeldValueWhoseTopicIsRemovedIsAskedForAtOnceAndDropped) {
  store_.reportRemovals(true);
  const auto remove = [&](std::int64_t now) {
    ASSERT_TRUE(store_.erase("n"));
    for (const RemovedTopic& removed : store_.takeRemoved()) delivery_.gone(removed, now);
  };
  publish("n", 0, 0);
  sub("n");
  delivery_.hold("n", std::nullopt, 100);
  EXPECT_EQ(delivery_.lastHoldAt("n"), 100);
  EXPECT_FALSE(delivery_.heldValueDropped("n"));
  remove(120);
  const std::vector<Outgoing> gone = delivery_.takeOutgoing();
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_NE(gone[0].frame->find(R"("t":"gone")"), std::string::npos);
  EXPECT_TRUE(topicsOf(delivery_.takeWants()).empty());
  EXPECT_EQ(topicsOf(delivery_.takeDueWants()), std::vector<std::string>{"n"}) << "asked for at the removal";
  EXPECT_TRUE(delivery_.heldValueDropped("n"));
  EXPECT_EQ(delivery_.heldCount(), 1u);
  EXPECT_TRUE(at(2000).empty()) << "no flush: the hold's window went with the topic";
  EXPECT_TRUE(topicsOf(delivery_.takeWants()).empty()) << "asked for once";
  delivery_.released("n", 2001);
  EXPECT_FALSE(delivery_.heldValueDropped("n"));
  EXPECT_EQ(delivery_.heldCount(), 0u);
  EXPECT_TRUE(delivery_.takeOutgoing().empty()) << "nothing of the dropped value is sent";
  EXPECT_EQ(delivery_.lastHoldAt("n"), 100);
  EXPECT_FALSE(delivery_.lastHoldAt("never held").has_value());

  // Asked for by its flush, then removed before the value came: asked for
  // once, and dropped all the same.
  publish("n", 1, 3000);
  delivery_.takeOutgoing();
  delivery_.hold("n", std::nullopt, 3010);
  at(3060);
  EXPECT_EQ(topicsOf(delivery_.takeWants()), std::vector<std::string>{"n"});
  remove(3061);
  delivery_.takeOutgoing();
  EXPECT_TRUE(topicsOf(delivery_.takeWants()).empty());
  EXPECT_TRUE(delivery_.heldValueDropped("n"));
  // A hold before the release is a publish after the removal: the release
  // carries its value, applied as usual, and flushed at once.
  delivery_.hold("n", std::nullopt, 3062);
  EXPECT_FALSE(delivery_.heldValueDropped("n"));
  EXPECT_EQ(delivery_.lastHoldAt("n"), 3062);
  publish("n", 2, 3063);
  delivery_.released("n", 3063);
  const std::vector<Outgoing> back = delivery_.takeOutgoing();
  ASSERT_EQ(back.size(), 1u);
  EXPECT_NE(back[0].frame->find(R"("t":"snap")"), std::string::npos) << *back[0].frame;
  EXPECT_EQ(delivery_.heldCount(), 0u);
}

// JS writes one hold per window; publishes after it are told by redate()
// when the flush asks. On the normal lane the latest moves the debounce back
// (within the max wait, which counts from the first); on the other lanes the
// flush was due anyway and is asked for again at once.
TEST_F(LaneTest, ARedateMovesADebounceBackWithinTheMaxWait) {
  publish("n", 0, 0);
  sub("n");
  delivery_.hold("n", std::nullopt, 100);
  EXPECT_TRUE(at(150).empty());
  EXPECT_EQ(topicsOf(delivery_.takeWants()), std::vector<std::string>{"n"});
  delivery_.redate("n", std::nullopt, 140, 0, 150);  // published again at 140: due at 190
  EXPECT_TRUE(topicsOf(delivery_.takeWants()).empty());
  EXPECT_EQ(delivery_.heldCount(), 1u);
  EXPECT_TRUE(at(189).empty());
  EXPECT_TRUE(topicsOf(delivery_.takeWants()).empty());
  // Published again 5 ms before each ask: moved back each time, up to the
  // max wait (100 + 250).
  for (const std::int64_t due : {190, 235, 280, 325}) {
    EXPECT_TRUE(at(due - 1).empty());
    EXPECT_TRUE(topicsOf(delivery_.takeWants()).empty()) << due;
    at(due);
    EXPECT_EQ(topicsOf(delivery_.takeWants()), std::vector<std::string>{"n"}) << due;
    delivery_.redate("n", std::nullopt, due - 5, 0, due);
    EXPECT_TRUE(topicsOf(delivery_.takeWants()).empty()) << due;
  }
  at(349);
  EXPECT_TRUE(topicsOf(delivery_.takeWants()).empty());
  at(350);
  EXPECT_EQ(topicsOf(delivery_.takeWants()), std::vector<std::string>{"n"});
  delivery_.redate("n", std::nullopt, 345, 0, 400);  // due at 350 (the max wait), before now: asked again at once
  EXPECT_TRUE(topicsOf(delivery_.takeWants()).empty());
  EXPECT_EQ(topicsOf(delivery_.takeDueWants()), std::vector<std::string>{"n"})
      << "as due: the value, not another redate";
  publish("n", 1, 401);
  delivery_.released("n", 401);
  ASSERT_EQ(delivery_.takeOutgoing().size(), 1u);
  // Published after the flush fell due (JS answered late): it goes with that
  // flush, not in a window of its own.
  delivery_.hold("n", std::nullopt, 500);
  at(550);
  EXPECT_EQ(topicsOf(delivery_.takeWants()), std::vector<std::string>{"n"});
  delivery_.redate("n", std::nullopt, 560, 0, 570);
  EXPECT_EQ(topicsOf(delivery_.takeDueWants()), std::vector<std::string>{"n"});
  publish("n", 2, 571);
  delivery_.released("n", 571);
  ASSERT_EQ(delivery_.takeOutgoing().size(), 1u);
  EXPECT_EQ(delivery_.heldCount(), 0u);
}

TEST_F(LaneTest, ARedateOnAHighOrLowLaneAsksAgainAtOnce) {
  publish("high/a", 0, 0);
  sub("high/a");
  delivery_.hold("high/a", std::nullopt, 100);  // a window from 100 to 116
  at(116);
  EXPECT_EQ(topicsOf(delivery_.takeWants()), std::vector<std::string>{"high/a"});
  delivery_.redate("high/a", std::nullopt, 110, 0, 117);
  EXPECT_EQ(topicsOf(delivery_.takeDueWants()), std::vector<std::string>{"high/a"}) << "the window ran from the first";
  publish("high/a", 1, 117);
  delivery_.released("high/a", 117);
  EXPECT_EQ(delivery_.takeOutgoing().size(), 1u);

  sub("low/a");
  publish("low/a", 0, 0);
  EXPECT_EQ(at(0).size(), 1u);  // flushed at 0: the next at 1000 at the earliest
  delivery_.hold("low/a", std::nullopt, 500);
  at(1000);
  EXPECT_EQ(topicsOf(delivery_.takeWants()), std::vector<std::string>{"low/a"});
  delivery_.redate("low/a", std::nullopt, 900, 0, 1200);  // answered late
  EXPECT_EQ(topicsOf(delivery_.takeDueWants()), std::vector<std::string>{"low/a"});
  publish("low/a", 1, 1200);
  delivery_.released("low/a", 1200);
  EXPECT_EQ(delivery_.takeOutgoing().size(), 1u);
  // The next interval counts from when the flush fell due (1000), not from the answer.
  delivery_.hold("low/a", std::nullopt, 1300);
  at(1999);
  EXPECT_TRUE(topicsOf(delivery_.takeWants()).empty());
  at(2000);
  EXPECT_EQ(topicsOf(delivery_.takeWants()), std::vector<std::string>{"low/a"});
}

TEST_F(LaneTest, ARedateBeforeTheFlushAsksIsAHoldThen) {
  publish("n", 0, 0);
  sub("n");
  delivery_.hold("n", std::nullopt, 100);
  delivery_.redate("n", std::nullopt, 130, 0, 131);  // the value goes early: its publish at 130 is told
  EXPECT_EQ(delivery_.lastHoldAt("n"), 130);
  at(179);
  EXPECT_TRUE(topicsOf(delivery_.takeWants()).empty());
  at(180);
  EXPECT_EQ(topicsOf(delivery_.takeWants()), std::vector<std::string>{"n"});
}

// A topic removed while held: a publish JS told of by redate() was made
// before or after the record that removed it (`position`, bytes of records).
TEST_F(LaneTest, ARedateOrdersALaterPublishAgainstTheRemoval) {
  store_.reportRemovals(true);
  for (const bool after : {false, true}) {
    publish("n", 0, 0);
    sub("n");
    delivery_.hold("n", std::nullopt, 100);
    ASSERT_TRUE(store_.erase("n"));
    for (const RemovedTopic& removed : store_.takeRemoved()) delivery_.gone(removed, 110, 500);
    delivery_.takeOutgoing();
    EXPECT_TRUE(topicsOf(delivery_.takeWants()).empty());
    EXPECT_EQ(topicsOf(delivery_.takeDueWants()), std::vector<std::string>{"n"});
    delivery_.redate("n", std::nullopt, 105, after ? 501 : 500, 111, true);
    EXPECT_TRUE(topicsOf(delivery_.takeWants()).empty()) << "the release follows: not asked again";
    EXPECT_EQ(delivery_.heldValueDropped("n"), !after);
    EXPECT_EQ(delivery_.lastHoldAt("n"), 105);
    if (after) publish("n", 1, 111);
    delivery_.released("n", 111);
    EXPECT_EQ(delivery_.heldCount(), 0u);
    const std::vector<Outgoing> out = delivery_.takeOutgoing();
    ASSERT_EQ(out.size(), after ? 1u : 0u);
    if (after) EXPECT_NE(out[0].frame->find(R"("t":"snap")"), std::string::npos) << *out[0].frame;
    delivery_.receive(1, R"({"t":"unsub","topic":"n"})");
    ASSERT_TRUE(!after || store_.erase("n"));
    store_.takeRemoved();
  }
  // Asked by its flush, removed before the answer came: a redate without the
  // release asks again (the answer then releases).
  publish("n", 2, 1000);
  sub("n");
  delivery_.hold("n", std::nullopt, 1000);
  at(1050);
  EXPECT_EQ(topicsOf(delivery_.takeWants()), std::vector<std::string>{"n"});
  ASSERT_TRUE(store_.erase("n"));
  for (const RemovedTopic& removed : store_.takeRemoved()) delivery_.gone(removed, 1051, 900);
  EXPECT_TRUE(topicsOf(delivery_.takeDueWants()).empty()) << "asked for already";
  delivery_.redate("n", std::nullopt, 1052, 901, 1053);
  EXPECT_EQ(topicsOf(delivery_.takeDueWants()), std::vector<std::string>{"n"});
  EXPECT_FALSE(delivery_.heldValueDropped("n"));
}

// A change carrying the held value before its flush asked (another call on
// the topic released it early): nothing is held any more, the hold's flush
// comes as a plain one, and the change does not move it. One that comes
// while the flush is asked for is its release.
TEST_F(LaneTest, AnEarlyReleaseLeavesTheHoldsFlushAsItWas) {
  publish("n", 0, 0);
  sub("n");
  delivery_.hold("n", std::nullopt, 0);  // due at 50
  ChangeResult r = store_.publishJson("n", R"({"v":1})", "", 40);
  delivery_.changed("n", r, 40, std::nullopt, {}, true);
  delivery_.releasedEarly("n", 40);
  EXPECT_EQ(delivery_.heldCount(), 0u);
  EXPECT_TRUE(at(49).empty());
  EXPECT_EQ(at(50).size(), 1u) << "flushed at the hold's time, not 50 ms after the release";
  EXPECT_TRUE(topicsOf(delivery_.takeWants()).empty()) << "nothing held: not asked for";

  delivery_.hold("n", std::nullopt, 100);
  at(150);
  EXPECT_EQ(topicsOf(delivery_.takeWants()), std::vector<std::string>{"n"});
  r = store_.publishJson("n", R"({"v":2})", "", 151);
  delivery_.changed("n", r, 151, std::nullopt, {}, true);
  delivery_.releasedEarly("n", 151);  // while asked for: its release
  EXPECT_EQ(delivery_.takeOutgoing().size(), 1u);
  EXPECT_EQ(delivery_.heldCount(), 0u);
  delivery_.released("n", 152);  // JS's answer to the ask, with nothing left: changes nothing
  EXPECT_TRUE(delivery_.takeOutgoing().empty());
}

TEST_F(LaneTest, AHeldValueOfATopicNobodyFollowsIsDroppedWithTheTopic) {
  store_.reportRemovals(true);
  publish("n", 0, 0);
  delivery_.hold("n", std::nullopt, 10);
  ASSERT_TRUE(store_.erase("n"));
  for (const RemovedTopic& removed : store_.takeRemoved()) delivery_.gone(removed, 20);
  EXPECT_TRUE(delivery_.takeOutgoing().empty());
  EXPECT_EQ(topicsOf(delivery_.takeDueWants()), std::vector<std::string>{"n"});
  EXPECT_TRUE(delivery_.heldValueDropped("n"));
  EXPECT_TRUE(at(1000).empty());
  EXPECT_TRUE(topicsOf(delivery_.takeWants()).empty());
  delivery_.released("n", 1001);
  EXPECT_EQ(delivery_.heldCount(), 0u);
  EXPECT_FALSE(delivery_.heldValueDropped("n"));
}

TEST_F(LaneTest, AHeldValueOnTheCriticalLaneIsAskedForAtOnce) {
  delivery_.hold("crit/a", std::nullopt, 5);
  EXPECT_EQ(topicsOf(delivery_.takeWants()), std::vector<std::string>{"crit/a"});
  delivery_.hold("n", Lane::Critical, 5);  // the publish's own lane
  EXPECT_EQ(topicsOf(delivery_.takeWants()), std::vector<std::string>{"n"});
  EXPECT_EQ(delivery_.heldCount(), 2u);
}

TEST_F(LaneTest, NormalDebouncesWithAMaxWait) {
  publish("n", 0, 0);
  sub("n");
  publish("n", 1, 100);
  EXPECT_TRUE(at(149).empty());
  auto frames = at(150);  // 50 ms after the last change
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_NE(frames[0].find(R"("from":1,"to":2)"), std::string::npos) << frames[0];
  // A steady stream every 20 ms: the trailing debounce keeps moving, the max
  // wait (250 ms after the stream's first change, at 200) caps it.
  for (int t = 200; t <= 440; t += 20) {
    publish("n", t, t);
    EXPECT_TRUE(at(t).empty()) << t;
  }
  EXPECT_TRUE(at(449).empty());
  frames = at(450);
  ASSERT_EQ(frames.size(), 1u);
  // versions 3..15 came in the stream; the subscriber held 2
  EXPECT_TRUE(frames[0].find(R"("to":15)") != std::string::npos ||
              frames[0].find(R"("version":15)") != std::string::npos)
      << frames[0];
}

// A paced flush over several changes sends the net change: one diff from
// the state last flushed, not the steps one after another.
TEST_F(LaneTest, APacedFlushSquashesTheWindowIntoOneDiff) {
  publish("n", 0, 0);
  sub("n");
  for (int i = 1; i <= 5; ++i) publish("n", i, 10 * i);  // "v" ticks five times
  const auto frames = at(100);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].substr(frames[0].find("\"from\"")),
            R"("from":1,"to":6,"ops":[{"op":"replace","path":"/v","value":5}]})");
  EXPECT_EQ(delivery_.stats().squashed.load(), 1u);
}

TEST_F(LaneTest, MoreChangesThanTheHistoryHoldsStillGiveAPatch) {
  publish("n", 0, 0);
  sub("n");
  // 100 changes within one max wait (the history keeps 32 steps)
  for (int i = 1; i <= 100; ++i) publish("n", i, 2 * i);
  const auto frames = at(250);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_NE(frames[0].find(R"("t":"patch")"), std::string::npos) << frames[0];
  EXPECT_NE(frames[0].find(R"("from":1,"to":101,"ops":[{"op":"replace","path":"/v","value":100}]})"), std::string::npos)
      << frames[0];
}

TEST_F(LaneTest, TheNextWindowSquashesFromTheLastFlush) {
  publish("n", 0, 0);
  sub("n");
  publish("n", 1, 10);
  publish("n", 2, 20);
  ASSERT_EQ(at(70).size(), 1u);  // brought to version 3
  publish("n", 3, 100);
  publish("n", 4, 110);
  const auto frames = at(160);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].substr(frames[0].find("\"from\"")),
            R"("from":3,"to":5,"ops":[{"op":"replace","path":"/v","value":4}]})");
  EXPECT_EQ(delivery_.stats().squashed.load(), 2u);
}

TEST_F(LaneTest, HighBatchesWithinItsWindow) {
  publish("high/a", 0, 0);
  sub("high/a");
  publish("high/a", 1, 10);
  publish("high/a", 2, 20);
  EXPECT_TRUE(at(25).empty());
  auto frames = at(26);  // 16 ms after the first change
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_NE(frames[0].find(R"("from":1,"to":3)"), std::string::npos) << frames[0];
}

TEST_F(LaneTest, LowIsThrottled) {
  publish("low/a", 0, 0);
  sub("low/a");
  publish("low/a", 1, 10);
  EXPECT_EQ(at(10).size(), 1u);  // the first change goes at once
  publish("low/a", 2, 20);
  publish("low/a", 3, 500);
  EXPECT_TRUE(at(1009).empty());
  auto frames = at(1010);  // one second after the last flush
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_NE(frames[0].find(R"("from":2,"to":4)"), std::string::npos) << frames[0];
}

TEST_F(LaneTest, TopicsDueTogetherGoAsOneBatch) {
  publish("x", 0, 0);
  publish("y", 0, 0);
  sub("x");
  sub("y");
  publish("x", 1, 100);
  publish("y", 1, 100);
  auto frames = at(150);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].rfind(R"({"t":"batch","items":[{"t":"patch","topic":"x")", 0), 0u) << frames[0];
  EXPECT_NE(frames[0].find(R"("topic":"y")"), std::string::npos);
}

TEST_F(LaneTest, APerChangeLaneOverridesTheTopics) {
  publish("n", 0, 0);
  sub("n");
  ChangeResult r = store_.publishJson("n", R"({"v":9})", "", 5);
  delivery_.changed("n", r, 5, Lane::Critical);
  EXPECT_EQ(delivery_.takeOutgoing().size(), 1u);
  EXPECT_TRUE(at(1000).empty());  // the pending flush was cancelled by the immediate one
}

}  // namespace
}  // namespace deltacast

namespace deltacast {
namespace {

TEST(DeliveryLiveness, PingsAndClosesASilentConnection) {
  TopicStore store({});
  DeliveryLimits limits;
  limits.heartbeatIntervalMs = 100;
  limits.heartbeatTimeoutMs = 250;
  Delivery delivery(store, AccessRules(), limits);
  delivery.connect(1, {}, 0);
  delivery.connect(2, {}, 0);
  std::size_t pings = 0;
  for (std::int64_t t = 0; t <= 400; t += 50) {
    delivery.advance(t);
    if (t == 200) delivery.receive(2, R"({"t":"pong"})", t);  // 2 answers; 1 stays silent
    for (const Outgoing& o : delivery.takeOutgoing()) pings += *o.frame == R"({"t":"ping"})" ? 1 : 0;
  }
  // pings at 100 and 200 for both; at 300 connection 1 has been silent 300 ms
  // and is closed; 2 (heard at 200) is pinged at 300 and 400: 6 pings
  const std::vector<Closing> closed = delivery.takeClosings();
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].connection, 1u);
  EXPECT_EQ(closed[0].code, kCloseHeartbeatTimeout);
  EXPECT_FALSE(delivery.connected(1));
  EXPECT_TRUE(delivery.connected(2));
  EXPECT_EQ(pings, 6u);
}

TEST(DeliveryLiveness, FloodsAreRefusedThenClosed) {
  TopicStore store({});
  DeliveryLimits limits;
  limits.messagesPerSecond = 10;
  limits.messageBurst = 5;
  limits.rateViolations = 20;
  Delivery delivery(store, AccessRules(), limits);
  delivery.connect(1, {}, 0);
  for (int i = 0; i < 5; ++i) delivery.receive(1, R"({"t":"unsub","topic":"x"})", 0);  // the burst
  EXPECT_TRUE(delivery.takeOutgoing().empty());
  delivery.receive(1, R"({"t":"unsub","topic":"x"})", 0);
  std::vector<Outgoing> out = delivery.takeOutgoing();
  ASSERT_EQ(out.size(), 1u);  // one err, not one per dropped message
  EXPECT_NE(out[0].frame->find("DELTACAST_RATE_LIMITED"), std::string::npos);
  delivery.receive(1, R"({"t":"unsub","topic":"x"})", 100);  // a token came back: accepted, the count restarts
  EXPECT_TRUE(delivery.takeOutgoing().empty());
  for (int i = 0; i < 19; ++i) delivery.receive(1, R"({"t":"unsub","topic":"x"})", 100);
  EXPECT_TRUE(delivery.takeClosings().empty());
  delivery.receive(1, R"({"t":"unsub","topic":"x"})", 100);
  const std::vector<Closing> closed = delivery.takeClosings();
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].code, kCloseRateLimited);
  EXPECT_FALSE(delivery.connected(1));
}

// Messages the transport refuses (a binary frame, extra Socket.IO arguments)
// cost a token each as any message does: answered while the rate allows, then
// refused once with DELTACAST_RATE_LIMITED, then closed 1008.
TEST(DeliveryLiveness, TransportRefusalsCountAgainstTheRate) {
  TopicStore store({});
  DeliveryLimits limits;
  limits.messagesPerSecond = 10;
  limits.messageBurst = 5;
  limits.rateViolations = 3;
  Delivery delivery(store, AccessRules(), limits);
  delivery.connect(1, {}, 0);
  for (int i = 0; i < 5; ++i) delivery.refuse(1, kInvalidMessage, "binary frames are not protocol messages", 0);
  std::vector<Outgoing> out = delivery.takeOutgoing();
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(*out[0].frame,
            R"({"t":"err","code":"DELTACAST_INVALID_MESSAGE","message":"binary frames are not protocol messages"})");
  delivery.refuse(1, kUnknownMessage, "other event", 0);
  out = delivery.takeOutgoing();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].frame->find("DELTACAST_RATE_LIMITED"), std::string::npos);
  delivery.refuse(1, kUnknownMessage, "other event", 0);
  EXPECT_TRUE(delivery.takeClosings().empty());
  delivery.receive(1, R"({"t":"unsub","topic":"x"})", 0);  // refusals and messages share one bucket
  const std::vector<Closing> closed = delivery.takeClosings();
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].code, kCloseRateLimited);
  EXPECT_EQ(delivery.stats().closedFlooding.load(), 1u);
  delivery.refuse(1, kInvalidMessage, "after the close", 0);  // a closed connection: nothing
  EXPECT_TRUE(delivery.takeOutgoing().empty());
}

TEST(DeliveryLiveness, AcksAndPongsAreCheap) {
  TopicStore store({});
  DeliveryLimits limits;
  limits.messagesPerSecond = 10;
  limits.messageBurst = 5;
  Delivery delivery(store, AccessRules(), limits);
  delivery.connect(1, {}, 0);
  for (int i = 0; i < 90; ++i) delivery.receive(1, R"({"t":"pong"})", 0);  // 4.5 tokens
  EXPECT_TRUE(delivery.takeOutgoing().empty());
  EXPECT_TRUE(delivery.connected(1));
}

}  // namespace
}  // namespace deltacast

namespace deltacast {
namespace {

TEST(DeliveryCredit, ConflatesOverTheWindowAndCatchesUpOnAck) {
  TopicStore store({});
  DeliveryLimits limits;
  limits.creditFrames = 2;
  limits.heartbeatIntervalMs = 0;
  Delivery delivery(store, AccessRules(), limits);
  const std::string pad = R"(,"pad":")" + std::string(200, '.') + "\"}";
  auto publish = [&](const std::string& topic, int v, std::int64_t now) {
    delivery.changed(topic, store.publishJson(topic, "{\"v\":" + std::to_string(v) + pad, "", now), now);
  };
  publish("a", 1, 0);
  publish("b", 1, 0);
  delivery.connect(1, {}, 0);
  delivery.receive(1, R"({"t":"sub","topic":"a"})", 0);
  delivery.receive(1, R"({"t":"sub","topic":"b"})", 0);
  EXPECT_EQ(delivery.takeOutgoing().size(), 2u);  // two snapshots: the window (2) is full
  for (int v = 2; v <= 20; ++v) {
    publish("a", v, v * 100);
    publish("b", v, v * 100);
    delivery.advance(v * 100 + 50);
  }
  EXPECT_TRUE(delivery.takeOutgoing().empty());  // nothing while over the window
  EXPECT_EQ(delivery.stats().conflated.load(), 38u);
  // Each ack frees one slot: one frame per dirty topic, at its latest version.
  std::vector<std::string> sent;
  delivery.receive(1, R"({"t":"ack","topic":"a","version":1})", 2100);
  for (const Outgoing& o : delivery.takeOutgoing()) sent.push_back(*o.frame);
  ASSERT_EQ(sent.size(), 1u);
  const bool aFirst = sent[0].find(R"("topic":"a")") != std::string::npos;
  delivery.receive(1, std::string(R"({"t":"ack","topic":")") + (aFirst ? "a" : "b") + R"(","version":20})", 2100);
  for (const Outgoing& o : delivery.takeOutgoing()) sent.push_back(*o.frame);
  ASSERT_EQ(sent.size(), 2u);
  for (const char* topic : {"a", "b"}) {
    const auto it = std::find_if(sent.begin(), sent.end(), [&](const std::string& f) {
      return f.find(std::string("\"topic\":\"") + topic + "\"") != std::string::npos;
    });
    ASSERT_NE(it, sent.end()) << topic;
    EXPECT_TRUE(it->find(R"("version":20)") != std::string::npos || it->find(R"("to":20)") != std::string::npos) << *it;
  }
  EXPECT_TRUE(delivery.takeOutgoing().empty());
}

TEST(DeliveryCredit, StalledConnectionIsClosed) {
  TopicStore store({});
  DeliveryLimits limits;
  limits.creditFrames = 1;
  limits.heartbeatIntervalMs = 100;
  limits.stallTimeoutMs = 300;
  Delivery delivery(store, AccessRules(), limits);
  delivery.changed("t", store.publishJson("t", "[1]", "", 0), 0);
  delivery.connect(1, {}, 0);
  delivery.receive(1, R"({"t":"sub","topic":"t"})", 0);  // over the window from now on
  for (std::int64_t t = 100; t <= 300; t += 100) {
    delivery.receive(1, R"({"t":"pong"})", t);  // alive, but never acks
    delivery.advance(t);
  }
  const std::vector<Closing> closed = delivery.takeClosings();
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].code, kCloseStalled);
  EXPECT_EQ(delivery.stats().closedSlow.load(), 1u);
}

}  // namespace
}  // namespace deltacast

namespace deltacast {
namespace {

// Regressions found in review.
class CreditRegressions : public ::testing::Test {
 protected:
  CreditRegressions() : delivery_(store_, AccessRules(), limits(), {{"c/*", Lane::Critical}}) {
    delivery_.connect(1, {}, 0);
  }
  static DeliveryLimits limits() {
    DeliveryLimits l;
    l.creditFrames = 2;
    l.heartbeatIntervalMs = 0;  // no heartbeats: the stall check must not depend on them
    l.stallTimeoutMs = 5000;
    return l;
  }
  void publish(const std::string& topic, int v, std::int64_t now) {
    delivery_.changed(topic, store_.publishJson(topic, "[" + std::to_string(v) + "]", "", now), now);
  }
  TopicStore store_{StoreOptions{}};
  Delivery delivery_;
};

TEST_F(CreditRegressions, UnsubscribedFramesCountUntilAcked) {
  publish("a", 1, 0);
  publish("b", 1, 0);
  publish("c", 1, 0);
  delivery_.receive(1, R"({"t":"sub","topic":"a"})", 0);
  delivery_.receive(1, R"({"t":"unsub","topic":"a"})", 0);
  delivery_.receive(1, R"({"t":"sub","topic":"b"})", 0);
  delivery_.receive(1, R"({"t":"unsub","topic":"b"})", 0);
  ASSERT_EQ(delivery_.takeOutgoing().size(), 2u);
  // Both snapshots still count: unsubscribing frees no credit.
  delivery_.receive(1, R"({"t":"sub","topic":"c"})", 0);
  EXPECT_TRUE(delivery_.takeOutgoing().empty());
  EXPECT_EQ(delivery_.stats().conflated.load(), 1u);
  // An ack past what was sent for an unsubscribed topic is refused.
  delivery_.receive(1, R"({"t":"ack","topic":"a","version":2})", 0);
  auto refused = delivery_.takeOutgoing();
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_NE(refused[0].frame->find("DELTACAST_INVALID_ACK"), std::string::npos);
  // Acks for the unsubscribed topics' frames give the credit back.
  delivery_.receive(1, R"({"t":"ack","topic":"a","version":1})", 0);
  delivery_.receive(1, R"({"t":"ack","topic":"b","version":1})", 0);
  auto frames = delivery_.takeOutgoing();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_NE(frames[0].frame->find("\"t\":\"snap\",\"topic\":\"c\""), std::string::npos);
  delivery_.receive(1, R"({"t":"ack","topic":"c","version":1})", 0);
  publish("c", 2, 10);
  delivery_.advance(1000);
  EXPECT_EQ(delivery_.takeOutgoing().size(), 1u);
  delivery_.advance(10000);
  EXPECT_TRUE(delivery_.takeClosings().empty());
}

TEST_F(CreditRegressions, ANewEpochRetiresTheOldEpochsFrames) {
  publish("c/x", 1, 0);
  delivery_.receive(1, R"({"t":"sub","topic":"c/x"})", 0);  // 1 unacked
  publish("c/x", 2, 1);                                     // 2 unacked: at the window
  ASSERT_TRUE(store_.erase("c/x"));
  publish("c/x", 7, 2);  // a new epoch, version 1 again: the old frames can never be acked
  delivery_.receive(1, R"({"t":"ack","topic":"c/x","version":1})", 3);
  publish("n", 1, 3);
  delivery_.receive(1, R"({"t":"sub","topic":"n"})", 3);
  delivery_.takeOutgoing();
  publish("n", 2, 4);
  delivery_.advance(1000);
  EXPECT_EQ(delivery_.takeOutgoing().size(), 1u);
  EXPECT_EQ(delivery_.stats().conflated.load(), 0u);
}

TEST_F(CreditRegressions, StallsCloseWithoutHeartbeats) {
  publish("a", 1, 0);
  publish("b", 1, 0);
  delivery_.receive(1, R"({"t":"sub","topic":"a"})", 0);
  delivery_.receive(1, R"({"t":"sub","topic":"b"})", 0);  // over the window at t=0
  delivery_.advance(4999);
  EXPECT_TRUE(delivery_.takeClosings().empty());
  delivery_.advance(5000);
  const std::vector<Closing> closed = delivery_.takeClosings();
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].code, kCloseStalled);
}

TEST(LaneRegressions, AFasterLaneBringsAScheduledFlushForward) {
  TopicStore store({});
  DeliveryLimits limits;
  limits.heartbeatIntervalMs = 0;
  Delivery delivery(store, AccessRules(), limits, {{"t", Lane::Low}});
  delivery.changed("t", store.publishJson("t", "[0]", "", 0), 0);
  delivery.connect(1, {}, 0);
  delivery.receive(1, R"({"t":"sub","topic":"t"})", 0);
  delivery.receive(1, R"({"t":"ack","topic":"t","version":1})", 0);
  delivery.takeOutgoing();
  delivery.changed("t", store.publishJson("t", "[1]", "", 0), 0);  // low: the first flush goes at once
  delivery.advance(0);
  delivery.takeOutgoing();
  delivery.changed("t", store.publishJson("t", "[2]", "", 10), 10);              // low: due at 1000
  delivery.changed("t", store.publishJson("t", "[3]", "", 20), 20, Lane::High);  // high: due at 36
  delivery.advance(35);
  EXPECT_TRUE(delivery.takeOutgoing().empty());
  delivery.advance(36);
  EXPECT_EQ(delivery.takeOutgoing().size(), 1u);
  EXPECT_EQ(delivery.stats().latency[static_cast<std::size_t>(Lane::High)].count.load(), 1u);
}

}  // namespace
}  // namespace deltacast

namespace deltacast {
namespace {

// A protocol client holding the state of each topic it was sent: applies
// snap, patch and batch frames as docs/protocol.md says, and fails the test
// on a patch that does not apply to what it holds.
struct HeldTopic {
  std::string epoch;
  std::uint64_t version = 0;
  std::string json;
};
class ProtocolClient {
 public:
  void apply(const std::string& text) {
    rapidjson::Document doc;
    ASSERT_TRUE(parseDocument(text, doc)) << text;
    apply(doc);
  }
  const std::map<std::string, HeldTopic>& held() const { return held_; }

 private:
  void apply(const rapidjson::Value& frame) {
    const std::string t = frame["t"].GetString();
    if (t == "batch") {
      for (const auto& item : frame["items"].GetArray()) apply(item);
      return;
    }
    if (t == "snap") {
      HeldTopic& h = held_[frame["topic"].GetString()];
      h.epoch = frame["epoch"].GetString();
      h.version = frame["version"].GetUint64();
      h.json.clear();
      serializeDocument(frame["data"], h.json);
    } else if (t == "patch") {
      HeldTopic& h = held_[frame["topic"].GetString()];
      ASSERT_EQ(h.epoch, frame["epoch"].GetString());
      ASSERT_EQ(h.version, frame["from"].GetUint64());
      rapidjson::Document doc;
      ASSERT_TRUE(parseDocument(h.json, doc));
      ASSERT_TRUE(applyPatch(doc, frame["ops"]));
      h.json.clear();
      serializeDocument(doc, h.json);
      h.version = frame["to"].GetUint64();
    }
  }
  std::map<std::string, HeldTopic> held_;
};

// The state a client should hold for `topic`, in the serializer's form.
std::string canonical(const TopicStore& store, const std::string& topic) {
  rapidjson::Document doc;
  EXPECT_TRUE(parseDocument(store.get(topic)->json, doc));
  std::string out;
  serializeDocument(doc, out);
  return out;
}

class WithoutAcks : public ::testing::Test {
 protected:
  WithoutAcks() : delivery_(store_, AccessRules(), limits()) { delivery_.connect(1, {}, 0, false); }
  static DeliveryLimits limits() {
    DeliveryLimits l;
    l.creditFrames = 2;  // an acking client would be over it after two frames
    l.heartbeatIntervalMs = 100;
    l.heartbeatTimeoutMs = 200;
    l.stallTimeoutMs = 100000;
    return l;
  }
  void publish(const std::string& topic, int v, std::int64_t now) {
    delivery_.changed(
        topic,
        store_.publishJson(topic, "{\"v\":" + std::to_string(v) + ",\"pad\":\"" + std::string(100, '.') + "\"}", "",
                           now),
        now);
  }
  // Hands every frame to the client; the number of frames.
  std::size_t deliver() {
    std::size_t n = 0;
    for (const Outgoing& o : delivery_.takeOutgoing()) {
      EXPECT_EQ(o.connection, 1u);
      if (o.frame->find("\"t\":\"ping\"") != std::string::npos) continue;
      client_.apply(*o.frame);
      ++n;
    }
    return n;
  }
  TopicStore store_{StoreOptions{}};
  Delivery delivery_;
  ProtocolClient client_;
};

TEST_F(WithoutAcks, FramesFlowWithoutAcks) {
  publish("a", 1, 0);
  publish("b", 1, 0);
  delivery_.receive(1, R"({"t":"sub","topic":"a"})", 0);
  delivery_.receive(1, R"({"t":"sub","topic":"b"})", 0);
  EXPECT_EQ(deliver(), 2u);
  for (int v = 2; v <= 10; ++v) {  // many more frames than an acking client's window (2)
    publish("a", v, v * 100);
    publish("b", v, v * 100);
    delivery_.advance(v * 100 + 60);
    EXPECT_EQ(deliver(), 1u) << v;  // one batch of both topics
  }
  EXPECT_EQ(delivery_.stats().conflated.load(), 0u);
  EXPECT_EQ(client_.held().at("a").version, 10u);
  EXPECT_EQ(client_.held().at("b").json, canonical(store_, "b"));
  // Never closed for silence: it may have no upstream.
  EXPECT_TRUE(delivery_.takeClosings().empty());
  EXPECT_TRUE(delivery_.connected(1));
}

TEST_F(WithoutAcks, AcksAreCheckedForFormThenIgnored) {
  publish("a", 1, 0);
  delivery_.receive(1, R"({"t":"sub","topic":"a"})", 0);
  deliver();
  delivery_.receive(1, R"({"t":"ack","topic":"a","version":99})", 0);  // past what was sent: still ignored
  delivery_.receive(1, R"({"t":"ack","topic":"nope","version":1})", 0);
  EXPECT_TRUE(delivery_.takeOutgoing().empty());
  delivery_.receive(1, R"({"t":"ack","topic":"a"})", 0);
  const std::vector<Outgoing> out = delivery_.takeOutgoing();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].frame->find("DELTACAST_INVALID_MESSAGE"), std::string::npos) << *out[0].frame;
}

TEST_F(WithoutAcks, CongestionStopsFramesAndDrainedCatchesUpOncePerTopic) {
  publish("a", 1, 0);
  publish("b", 1, 0);
  publish("c", 1, 0);
  for (const char* t : {"a", "b", "c"}) delivery_.receive(1, std::string(R"({"t":"sub","topic":")") + t + "\"}", 0);
  deliver();
  delivery_.congestion(1, true, 0);  // send() returned false
  for (int v = 2; v <= 30; ++v) {
    publish("a", v, v * 100);
    if (v % 2 == 0) publish("b", v, v * 100);
    delivery_.advance(v * 100 + 60);
  }
  EXPECT_EQ(deliver(), 0u);  // nothing while congested
  EXPECT_GT(delivery_.stats().conflated.load(), 0u);
  delivery_.congestion(1, false, 3100);  // drained()
  const std::vector<Outgoing> out = delivery_.takeOutgoing();
  ASSERT_EQ(out.size(), 1u);  // one batch: one frame for a, one for b, nothing for c
  const std::string& batch = *out[0].frame;
  EXPECT_EQ(batch.rfind("{\"t\":\"batch\"", 0), 0u) << batch;
  EXPECT_NE(batch.find(R"("topic":"a")"), std::string::npos);
  EXPECT_NE(batch.find(R"("topic":"b")"), std::string::npos);
  EXPECT_EQ(batch.find(R"("topic":"c")"), std::string::npos);
  client_.apply(batch);
  for (const char* t : {"a", "b", "c"}) {
    EXPECT_EQ(client_.held().at(t).version, store_.get(t)->version) << t;
    EXPECT_EQ(client_.held().at(t).json, canonical(store_, t)) << t;
  }
  // Flowing again.
  publish("c", 2, 3200);
  delivery_.advance(3300);
  EXPECT_EQ(deliver(), 1u);
  EXPECT_EQ(client_.held().at("c").json, canonical(store_, "c"));
}

TEST_F(WithoutAcks, CongestedPastTheStallTimeoutIsClosed) {
  TopicStore store{StoreOptions{}};
  DeliveryLimits l = limits();
  l.heartbeatIntervalMs = 0;
  l.stallTimeoutMs = 500;
  Delivery delivery(store, AccessRules(), l);
  delivery.connect(7, {}, 0, false);
  delivery.congestion(7, true, 0);
  delivery.advance(499);
  EXPECT_TRUE(delivery.takeClosings().empty());
  delivery.advance(500);
  const std::vector<Closing> closed = delivery.takeClosings();
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].code, kCloseStalled);
}

}  // namespace
}  // namespace deltacast

namespace deltacast {
namespace {

// Bytes handed to the transport for one connection.
std::size_t bytesFor(Delivery& delivery, ConnectionId id, std::size_t* frames = nullptr) {
  std::size_t bytes = 0;
  for (const Outgoing& o : delivery.takeOutgoing()) {
    if (o.connection != id) continue;
    bytes += o.frame->size();
    if (frames != nullptr) ++*frames;
  }
  return bytes;
}

class RepeatedSub : public ::testing::Test {
 protected:
  RepeatedSub() : delivery_(store_, AccessRules(), limits()) {}
  static DeliveryLimits limits() {
    DeliveryLimits l;
    l.heartbeatIntervalMs = 0;
    l.messageBurst = 1e6;  // the rate limit is not what is tested
    return l;
  }
  static StoreOptions storeOptions() {
    StoreOptions o;
    o.limits.maxBytes = 8u << 20;
    return o;
  }
  TopicStore store_{storeOptions()};
  Delivery delivery_;
};

TEST_F(RepeatedSub, ASubForTheStateInFlightCostsNothing) {
  // The attack: a client that never acks, whose socket is full, repeats `sub`
  // of a 4 MiB topic it already holds.
  const std::string big = "\"" + std::string(4u << 20, 'x') + "\"";
  delivery_.changed("big", store_.publishJson("big", big, "", 0), 0);
  const std::string epoch = store_.get("big")->epoch;
  delivery_.connect(1, {}, 0);
  std::size_t received = 0, handed = 0;
  const std::string sub = R"({"t":"sub","topic":"big"})";
  delivery_.receive(1, sub, 0);
  received += sub.size();
  handed += bytesFor(delivery_, 1);
  delivery_.congestion(1, true, 0);  // send() returned false
  const std::string resume = R"({"t":"sub","topic":"big","epoch":")" + epoch + R"(","version":0})";
  for (int i = 0; i < 200; ++i) {
    const std::string& message = i % 2 ? sub : resume;
    delivery_.receive(1, message, 0);
    received += message.size();
  }
  handed += bytesFor(delivery_, 1);
  EXPECT_LT(handed, big.size() + 200) << "one snapshot";
  EXPECT_LT(received, 10000u);
  // Not congested, still never acking: the same.
  delivery_.congestion(1, false, 0);
  handed = bytesFor(delivery_, 1);  // the resume subs' catch-up: nothing, one window is out
  for (int i = 0; i < 200; ++i) delivery_.receive(1, sub, 0);
  EXPECT_EQ(handed + bytesFor(delivery_, 1), 0u);
}

TEST_F(RepeatedSub, SubsObeyTheCreditWindow) {
  // Many small topics, and subs that claim another epoch: each answer is a
  // snapshot, charged to the window; past it, they wait.
  const std::string value = "\"" + std::string(1000, 'v') + "\"";
  for (int t = 0; t < 10; ++t) {
    const std::string topic = "t" + std::to_string(t);
    delivery_.changed(topic, store_.publishJson(topic, value, "", 0), 0);
  }
  delivery_.connect(1, {}, 0);
  std::size_t frames = 0, handed = 0, received = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::string message = R"({"t":"sub","topic":"t)" + std::to_string(i % 10) +
                                R"(","epoch":"other","version":)" + std::to_string(i) + "}";
    delivery_.receive(1, message, 0);
    received += message.size();
    handed += bytesFor(delivery_, 1, &frames);
  }
  const DeliveryLimits l = limits();
  EXPECT_EQ(frames, l.creditFrames);  // one window, then conflated
  EXPECT_LE(handed, l.creditBytes + 1100);
  EXPECT_GT(delivery_.stats().conflated.load(), 0u);
  // An ack brings credit back: each dirty topic gets one frame, nothing more.
  delivery_.receive(1, R"({"t":"ack","topic":"t0","version":1})", 0);
  frames = 0;
  bytesFor(delivery_, 1, &frames);
  EXPECT_LE(frames, 1u);  // one batch
}

TEST_F(RepeatedSub, AfterAnAckASubHoldingNothingGetsASnapshotAgain) {
  delivery_.changed("t", store_.publishJson("t", "[1,2,3]", "", 0), 0);
  delivery_.connect(1, {}, 0);
  delivery_.receive(1, R"({"t":"sub","topic":"t"})", 0);
  EXPECT_GT(bytesFor(delivery_, 1), 0u);
  delivery_.receive(1, R"({"t":"sub","topic":"t"})", 0);
  EXPECT_EQ(bytesFor(delivery_, 1), 0u);  // in flight
  delivery_.receive(1, R"({"t":"ack","topic":"t","version":1})", 0);
  delivery_.receive(1, R"({"t":"sub","topic":"t"})", 0);
  std::size_t frames = 0;
  bytesFor(delivery_, 1, &frames);
  EXPECT_EQ(frames, 1u);  // the client said it holds nothing
}

TEST_F(RepeatedSub, AResumeFromAnOlderVersionIsAnsweredEvenWithAFrameInFlight) {
  // A client whose patch failed re-subscribes from the version it holds,
  // while the server still counts that patch in flight: it must get a frame.
  StoreOptions o = storeOptions();
  TopicStore store(o);
  Delivery delivery(store, AccessRules(), limits(), {{"**", Lane::Critical}});
  const std::string pad = std::string(200, '.');
  delivery.changed("t", store.publishJson("t", R"({"v":1,"pad":")" + pad + "\"}", "", 0), 0);
  delivery.connect(1, {}, 0);
  delivery.receive(1, R"({"t":"sub","topic":"t"})", 0);
  delivery.changed("t", store.publishJson("t", R"({"v":2,"pad":")" + pad + "\"}", "", 0), 0);
  bytesFor(delivery, 1);
  const std::string epoch = store.get("t")->epoch;
  delivery.receive(1, R"({"t":"sub","topic":"t","epoch":")" + epoch + R"(","version":1})", 0);
  const std::vector<Outgoing> out = delivery.takeOutgoing();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].frame->find(R"("from":1,"to":2)"), std::string::npos) << *out[0].frame;
}

TEST_F(DeliveryTest, MembersATypeDoesNotUseAreIgnored) {
  publish("t", "[1]");
  delivery_.connect(1, {});
  delivery_.receive(1, R"({"t":"sub","topic":"t"})");
  framesFor(1);
  for (const char* message : {
           R"({"t":"pong","topic":5})",
           R"({"t":"pong","version":"x","epoch":[]})",
           R"({"t":"ack","topic":"t","version":1,"epoch":7})",
           R"({"t":"pong","t2":{"deep":[1,2]}})",
       }) {
    delivery_.receive(1, message);
    EXPECT_TRUE(framesFor(1).empty()) << message;
  }
  delivery_.receive(1, R"({"t":"unsub","topic":"t","version":-5})");
  EXPECT_TRUE(framesFor(1).empty());
  EXPECT_EQ(delivery_.subscriptionCount(), 0u);
  // A member the type uses still needs its type.
  delivery_.receive(1, R"({"t":"sub","topic":5})");
  const auto frames = framesFor(1);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_NE(frames[0].find("DELTACAST_INVALID_MESSAGE"), std::string::npos);
}

TEST_F(DeliveryTest, AnEscapedLoneSurrogateInATopicIsRefused) {
  // Read as U+FFFD, "a\ud800" and "a\udfff" would alias the topic "a\uFFFD".
  const std::string replaced = "a\xEF\xBF\xBD";
  publish(replaced, "[1]");
  delivery_.connect(1, {});
  delivery_.connect(2, {});
  delivery_.receive(1, R"({"t":"sub","topic":"a\ud800"})");
  delivery_.receive(2, "{\"t\":\"sub\",\"topic\":\"" + replaced + "\"}");
  const auto one = framesFor(1);
  const auto two = framesFor(2);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_NE(one[0].find("DELTACAST_INVALID_TOPIC"), std::string::npos) << one[0];
  ASSERT_EQ(two.size(), 1u);
  EXPECT_NE(two[0].find("\"t\":\"snap\""), std::string::npos) << two[0];
  delivery_.receive(2, R"({"t":"unsub","topic":"a\udfff"})");
  EXPECT_EQ(framesFor(2).size(), 1u);            // refused too
  EXPECT_EQ(delivery_.subscriptionCount(), 1u);  // connection 2 still holds "a\uFFFD"
}

TEST_F(DeliveryTest, AVersionIsWrittenAsDigitsOnly) {
  publish("t", "[1]");
  delivery_.connect(1, {});
  delivery_.receive(1, R"({"t":"sub","topic":"t"})");
  framesFor(1);
  delivery_.receive(1, R"({"t":"ack","topic":"t","version":1})");
  EXPECT_TRUE(framesFor(1).empty());
  for (const char* bad : {R"({"t":"ack","topic":"t","version":-1})", R"({"t":"ack","topic":"t","version":-0})",
                          R"({"t":"ack","topic":"t","version":-0.0})", R"({"t":"ack","topic":"t","version":-00})",
                          R"({"t":"ack","topic":"t","version":1e0})"}) {
    delivery_.receive(1, bad);
    const auto frames = framesFor(1);
    ASSERT_EQ(frames.size(), 1u) << bad;
    EXPECT_NE(frames[0].find("DELTACAST_INVALID_MESSAGE"), std::string::npos) << bad;
  }
}

TEST_F(DeliveryTest, AnUnknownTypeIsEchoedShort) {
  delivery_.connect(1, {});
  delivery_.receive(1, R"({"t":")" + std::string(10000, 'z') + R"("})");
  const auto frames = framesFor(1);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_NE(frames[0].find("DELTACAST_UNKNOWN_MESSAGE"), std::string::npos);
  EXPECT_LT(frames[0].size(), 300u);
}

TEST(DeliveryTimers, ConnectAndCloseLeaveNoTimerEntry) {
  TopicStore store({});
  DeliveryLimits limits;  // heartbeats on: every connection has a timer
  Delivery delivery(store, AccessRules(), limits);
  delivery.changed("t", store.publishJson("t", "[1]", "", 0), 0);
  for (ConnectionId id = 1; id <= 10000; ++id) {
    delivery.connect(id, {}, 0);
    delivery.receive(id, R"({"t":"sub","topic":"t"})", 0);
    delivery.congestion(id, true, 0);  // and a stall check
    delivery.disconnect(id);
  }
  EXPECT_EQ(delivery.timerEntries(), 0u);
  delivery.connect(1, {}, 0);
  EXPECT_EQ(delivery.timerEntries(), 1u);
  for (int i = 0; i < 100; ++i) {  // over and under its window, again and again
    delivery.congestion(1, true, i);
    delivery.congestion(1, false, i);
  }
  delivery.congestion(1, true, 100);
  EXPECT_EQ(delivery.timerEntries(), 1u);  // heartbeat and stall check share it
  delivery.advance(limits.stallTimeoutMs + 100);
  const std::vector<Closing> closed = delivery.takeClosings();
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].code, kCloseStalled);
  EXPECT_EQ(delivery.timerEntries(), 0u);
}

TEST(DeliveryTimers, OneTimerEntryPerTopicWhateverTheChanges) {
  TopicStore store({});
  DeliveryLimits limits;
  limits.heartbeatIntervalMs = 0;
  Delivery delivery(store, AccessRules(), limits);  // normal lane: every change moves the debounce
  delivery.changed("t", store.publishJson("t", "[0]", "", 0), 0);
  delivery.connect(1, {}, 0);
  delivery.receive(1, R"({"t":"sub","topic":"t"})", 0);
  for (int i = 1; i <= 1000; ++i)
    delivery.changed("t", store.publishJson("t", "[" + std::to_string(i) + "]", "", 0), 0);
  EXPECT_EQ(delivery.timerEntries(), 1u);
  delivery.advance(1000);
  EXPECT_EQ(delivery.timerEntries(), 0u);
  delivery.changed("t", store.publishJson("t", "[-1]", "", 2000), 2000);
  EXPECT_EQ(delivery.timerEntries(), 1u);
  delivery.disconnect(1);  // nobody follows the topic: its pending flush goes
  EXPECT_EQ(delivery.timerEntries(), 0u);
}

TEST(DeliveryFrameBound, BatchesAreSplitToStayUnderTheBound) {
  TopicStore store({});
  DeliveryLimits limits;
  limits.heartbeatIntervalMs = 0;
  limits.maxFrameBytes = 400;
  Delivery delivery(store, AccessRules(), limits);
  const std::string value = "\"" + std::string(80, 'x') + "\"";  // a snapshot frame of about 150 bytes
  delivery.connect(1, {}, 0);
  for (int t = 0; t < 7; ++t) {
    const std::string topic = "t" + std::to_string(t);
    delivery.receive(1, R"({"t":"sub","topic":")" + topic + "\"}", 0);  // before the topics exist
  }
  for (int t = 0; t < 7; ++t) {
    const std::string topic = "t" + std::to_string(t);
    delivery.changed(topic, store.publishJson(topic, value, "", 0), 0);
  }
  delivery.advance(1000);  // all seven due together
  const std::vector<Outgoing> out = delivery.takeOutgoing();
  ASSERT_GT(out.size(), 1u);
  std::size_t items = 0;
  for (const Outgoing& o : out) {
    EXPECT_LE(o.frame->size(), limits.maxFrameBytes) << *o.frame;
    ProtocolClient client;
    client.apply(*o.frame);
    items += client.held().size();
  }
  EXPECT_EQ(items, 7u);
  EXPECT_TRUE(delivery.takeClosings().empty());
}

TEST(DeliveryFrameBound, AConnectionWhoseFrameIsOverTheBoundIsClosedWith1009) {
  TopicStore store({});
  DeliveryLimits limits;
  limits.heartbeatIntervalMs = 0;
  limits.maxFrameBytes = 400;
  Delivery delivery(store, AccessRules(), limits, {{"**", Lane::Critical}});
  delivery.changed("small", store.publishJson("small", "[1]", "", 0), 0);
  delivery.changed("big", store.publishJson("big", "\"" + std::string(500, 'x') + "\"", "", 0), 0);
  delivery.connect(1, {}, 0);
  delivery.connect(2, {}, 0);
  delivery.receive(1, R"({"t":"sub","topic":"small"})", 0);
  delivery.receive(2, R"({"t":"sub","topic":"small"})", 0);
  delivery.receive(1, R"({"t":"sub","topic":"big"})", 0);
  delivery.changed("small", store.publishJson("small", "[2]", "", 0), 0);
  const std::vector<Outgoing> out = delivery.takeOutgoing();
  const std::vector<Closing> closed = delivery.takeClosings();
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].connection, 1u);
  EXPECT_EQ(closed[0].code, kCloseTooLarge);
  std::size_t toOne = 0, toTwo = 0;
  for (const Outgoing& o : out) (o.connection == 1 ? toOne : toTwo) += 1;
  EXPECT_EQ(toOne, 1u);  // the snapshot of small, sent before the frame that could not be
  EXPECT_EQ(toTwo, 2u);  // untouched: its snapshot and its patch
  EXPECT_FALSE(delivery.connected(1));
  EXPECT_TRUE(delivery.connected(2));
}

// ---- identity: expiry, refresh (auth), audit ------------------------------------

class AuthTest : public ::testing::Test {
 protected:
  AuthTest()
      : store_(StoreOptions{}),
        delivery_(
            store_,
            AccessRules(std::vector<AccessRule>{{"admin/*", {"admin"}}, {"ops/*", {"ops"}}, {"root/*", {"root"}}}),
            limits(), {{"**", Lane::Critical}}) {
    delivery_.setAudit(true);
  }
  static DeliveryLimits limits() {
    DeliveryLimits l;
    l.heartbeatIntervalMs = 0;  // the expiry is the connection's only timer
    return l;
  }
  std::vector<std::string> frames(ConnectionId id) {
    std::vector<std::string> out;
    for (const Outgoing& o : delivery_.takeOutgoing())
      if (o.connection == id) out.push_back(*o.frame);
    return out;
  }
  std::vector<std::string> audits() {
    std::vector<std::string> out;
    for (const AuditEvent& e : delivery_.takeAudits()) {
      std::string line = std::string(e.type) + " " + std::to_string(e.connection) + " " + e.user + " " + e.transport +
                         " t=" + std::to_string(e.time);
      if (!e.topic.empty()) line += " " + e.topic;
      if (e.code != nullptr) line += " " + std::string(e.code);
      if (e.closeCode != 0) line += " " + std::to_string(e.closeCode);
      out.push_back(line);
    }
    return out;
  }
  TopicStore store_;
  Delivery delivery_;
};

TEST_F(AuthTest, ExpiryClosesWith4003AtExactlyExpiresAt) {
  delivery_.connect(1, {"u1", {"admin"}}, 0, true, 1000, "ws");
  EXPECT_EQ(delivery_.timerEntries(), 1u);
  delivery_.advance(999);
  EXPECT_TRUE(delivery_.connected(1));
  EXPECT_TRUE(delivery_.takeClosings().empty());
  delivery_.advance(1000);
  EXPECT_FALSE(delivery_.connected(1));
  const std::vector<Closing> closed = delivery_.takeClosings();
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].code, kCloseExpired);
  EXPECT_EQ(delivery_.timerEntries(), 0u);
  EXPECT_EQ(audits(), (std::vector<std::string>{"connect 1 u1 ws t=0", "expired 1 u1 ws t=1000 4003",
                                                "close 1 u1 ws t=1000 4003"}));
}

TEST_F(AuthTest, OneTimerEntryPerConnectionWithHeartbeatAndExpiry) {
  DeliveryLimits l;
  l.heartbeatIntervalMs = 100;
  l.heartbeatTimeoutMs = 100000;
  Delivery delivery(store_, AccessRules(), l);
  delivery.connect(1, {"u1", {}}, 0, true, 250, "ws");
  EXPECT_EQ(delivery.timerEntries(), 1u);
  delivery.advance(200);  // two pings
  EXPECT_TRUE(delivery.connected(1));
  EXPECT_EQ(delivery.timerEntries(), 1u);
  delivery.advance(250);
  EXPECT_FALSE(delivery.connected(1));
  EXPECT_EQ(delivery.timerEntries(), 0u);
}

TEST_F(AuthTest, AuthMessageIsHandedToTheTransportAndNeverEchoed) {
  delivery_.connect(1, {"u1", {"admin"}}, 0, true, 1000, "ws");
  delivery_.receive(1, R"({"t":"auth","token":"secret-token"})", 10);
  const std::vector<AuthRequest> auths = delivery_.takeAuthRequests();
  ASSERT_EQ(auths.size(), 1u);
  EXPECT_EQ(auths[0].connection, 1u);
  EXPECT_EQ(auths[0].token, "secret-token");
  EXPECT_TRUE(frames(1).empty());
  delivery_.receive(1, R"({"t":"auth","token":""})", 10);
  delivery_.receive(1, R"({"t":"auth","token":5})", 10);
  delivery_.receive(1, R"({"t":"auth"})", 10);
  for (const std::string& f : frames(1)) {
    EXPECT_NE(f.find("DELTACAST_INVALID_MESSAGE"), std::string::npos) << f;
  }
  EXPECT_TRUE(delivery_.takeAuthRequests().empty());
}

TEST_F(AuthTest, RefreshMovesTheExpiryAndEndsSubscriptionsTheNewRolesRefuse) {
  ASSERT_TRUE(store_.publishJson("admin/a", "1", "", 0).changed);
  delivery_.connect(1, {"u1", {"admin", "ops"}}, 0, true, 1000, "sse");
  delivery_.receive(1, R"({"t":"sub","topic":"admin/a"})", 1);
  delivery_.receive(1, R"({"t":"sub","topic":"ops/b"})", 2);
  delivery_.receive(1, R"({"t":"sub","topic":"root/c"})", 3);
  (void)frames(1);
  delivery_.reauth(1, ReauthStatus::Refused, {}, -1, 400);
  delivery_.reauth(1, ReauthStatus::Verified, {"u1", {"ops"}}, 2000, 500);
  std::vector<std::string> sent = frames(1);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_NE(sent[0].find("DELTACAST_UNAUTHORIZED"), std::string::npos) << sent[0];
  EXPECT_EQ(sent[1].find(R"({"t":"err","code":"DELTACAST_FORBIDDEN")"), 0u) << sent[1];
  EXPECT_NE(sent[1].find(R"("topic":"admin/a")"), std::string::npos) << sent[1];
  EXPECT_EQ(delivery_.subscriptionCount(), 1u);
  // admin/a is no longer followed: a change reaches nobody.
  const ChangeResult r = store_.publishJson("admin/a", "2", "", 600);
  delivery_.changed("admin/a", r, 600);
  EXPECT_TRUE(frames(1).empty());
  delivery_.advance(1500);  // the old expiry: moved
  EXPECT_TRUE(delivery_.connected(1));
  delivery_.advance(2000);
  EXPECT_FALSE(delivery_.connected(1));
  EXPECT_EQ(audits(), (std::vector<std::string>{
                          "connect 1 u1 sse t=0",
                          "sub 1 u1 sse t=1 admin/a",
                          "sub 1 u1 sse t=2 ops/b",
                          "forbidden 1 u1 sse t=3 root/c DELTACAST_FORBIDDEN",
                          "auth-failed 1 u1 sse t=400 DELTACAST_UNAUTHORIZED",
                          "auth 1 u1 sse t=500",
                          "forbidden 1 u1 sse t=500 admin/a DELTACAST_FORBIDDEN",
                          "expired 1 u1 sse t=2000 4003",
                          "close 1 u1 sse t=2000 4003",
                      }));
}

TEST_F(AuthTest, RefreshNamingAnotherUserIsForbiddenAndCloses) {
  delivery_.connect(1, {"u1", {"admin"}}, 0, true, -1, "ws");
  delivery_.reauth(1, ReauthStatus::Verified, {"u2", {"admin"}}, -1, 5);
  const std::vector<std::string> sent = frames(1);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_NE(sent[0].find("DELTACAST_FORBIDDEN"), std::string::npos);
  EXPECT_FALSE(delivery_.connected(1));
  const std::vector<Closing> closed = delivery_.takeClosings();
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].code, kCloseExpired);
}

TEST_F(AuthTest, NoAuditEventsUnlessEnabled) {
  Delivery delivery(store_, AccessRules(), DeliveryLimits{});
  delivery.connect(1, {"u1", {}}, 0);
  delivery.receive(1, R"({"t":"sub","topic":"x"})", 0);
  delivery.disconnect(1, 0);
  EXPECT_TRUE(delivery.takeAudits().empty());
}

// ---- ids: the publishers' change ids in patch frames -----------------------------

TEST_F(DeliveryTest, PatchFramesCarryTheChangeIds) {
  publish("t", R"({"a":1,"pad":"................................"})");
  delivery_.connect(1, {});
  delivery_.receive(1, R"({"t":"sub","topic":"t"})");
  (void)framesFor(1);
  const ChangeResult r = store_.publishJson("t", R"({"a":2,"pad":"................................"})", "evt-9", 0);
  delivery_.changed("t", r, 0, std::nullopt, "evt-9");
  std::vector<std::string> frames = framesFor(1);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_NE(frames[0].find(R"("ops":[{"op":"replace","path":"/a","value":2}],"ids":["evt-9"]})"), std::string::npos)
      << frames[0];
  publish("t", R"({"a":3,"pad":"................................"})");  // no id: no ids member
  frames = framesFor(1);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].find("ids"), std::string::npos) << frames[0];
}

TEST(DeliveryIds, SquashedPatchesCarryTheUnionBoundedBy64) {
  StoreOptions o;
  o.historyCount = 200;
  TopicStore store(o);
  Pacing pacing;
  Delivery delivery(store, AccessRules(), DeliveryLimits{}, {{"**", Lane::Normal}}, pacing);
  const std::string pad = R"(,"pad":")" + std::string(2000, '.') + "\"}";  // patches stay smaller than snapshots
  ChangeResult r = store.publishJson("t", R"({"a":0)" + pad, "", 0);
  delivery.connect(1, {});
  delivery.receive(1, R"({"t":"sub","topic":"t"})");
  (void)delivery.takeOutgoing();
  const auto change = [&](int i, std::string id) {
    r = store.publishJson("t", R"({"a":)" + std::to_string(i) + pad, id, 0);
    delivery.changed("t", r, 0, std::nullopt, id);
  };
  change(1, "x1");
  change(2, "");
  change(3, "x3");
  delivery.advance(10000);
  std::vector<Outgoing> out = delivery.takeOutgoing();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].frame->find(R"("ids":["x1","x3"]})"), std::string::npos) << *out[0].frame;
  for (int i = 0; i < 65; ++i) change(10 + i, "y" + std::to_string(i));
  delivery.advance(20000);
  out = delivery.takeOutgoing();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].frame->find(R"("ids")"), std::string::npos) << *out[0].frame;
  EXPECT_NE(out[0].frame->find(R"(,"idsTruncated":true})"), std::string::npos) << *out[0].frame;
}

TEST(DeliveryIds, AResumePatchReachingPastTheKeptIdsSaysSo) {
  StoreOptions o;
  o.historyCount = 400;
  TopicStore store(o);
  Delivery delivery(store, AccessRules(), DeliveryLimits{}, {{"**", Lane::Critical}});
  const std::string pad = R"(,"pad":")" + std::string(40000, '.') + "\"}";
  ChangeResult r = store.publishJson("t", R"({"a":0)" + pad, "", 0);
  const std::string epoch = r.epoch;
  delivery.connect(1, {}, 0, false);  // no acks: follows every change without closing for credit
  delivery.receive(1, R"({"t":"sub","topic":"t"})");
  for (int i = 1; i <= 300; ++i) {
    r = store.publishJson("t", R"({"a":)" + std::to_string(i) + pad, "id" + std::to_string(i), 0);
    delivery.changed("t", r, 0, std::nullopt, "id" + std::to_string(i));
    (void)delivery.takeOutgoing();
  }
  // The last 256 ids are kept (versions 46 to 301): from 290, the ids; from 2, truncated.
  delivery.connect(2, {});
  delivery.receive(2, R"({"t":"sub","topic":"t","epoch":")" + epoch + R"(","version":299})");
  std::vector<Outgoing> out = delivery.takeOutgoing();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].frame->find(R"("ids":["id299","id300"]})"), std::string::npos) << out[0].frame->substr(0, 200);
  delivery.connect(3, {});
  delivery.receive(3, R"({"t":"sub","topic":"t","epoch":")" + epoch + R"(","version":2})");
  out = delivery.takeOutgoing();
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].frame->find(R"({"t":"patch")"), 0u) << out[0].frame->substr(0, 200);
  EXPECT_NE(out[0].frame->find(R"(,"idsTruncated":true})"), std::string::npos);
  EXPECT_EQ(out[0].frame->find(R"("ids")"), std::string::npos);
}

// The amplification bound: a client that never acks is handed at most the
// credit window in bytes plus one frame (and one err frame per message it
// sends), whatever sequence of sub/unsub/ack/pong it sends.
void amplificationBound(bool acks) {
  constexpr unsigned kSeed = 20261130;
  std::printf("amplification property seed %u (acks %d)\n", kSeed, acks ? 1 : 0);
  std::mt19937 random(kSeed);
  const char* topics[] = {"big", "s1", "s2"};
  for (int round = 0; round < 20; ++round) {
    TopicStore store{StoreOptions{}};
    DeliveryLimits limits;
    limits.creditBytes = 64 * 1024;
    limits.creditFrames = 1000;
    limits.heartbeatIntervalMs = 0;
    limits.stallTimeoutMs = 1000000000;
    limits.messagesPerSecond = 1e9;
    Delivery delivery(store, AccessRules(), limits, {{"**", Lane::Critical}});
    std::string big = "[";
    for (int k = 0; k < 2000; ++k) big += std::string(k ? "," : "") + "\"" + std::string(100, 'x') + "\"";
    big += "]";
    store.publishJson("big", big, "", 0);
    store.publishJson("s1", "[1]", "", 0);
    store.publishJson("s2", "[2]", "", 0);
    delivery.connect(1, {}, 0, acks);
    std::size_t stateBytes = 0, largest = 0;
    bool congested = false;
    for (int step = 0; step < 400; ++step) {
      const std::string topic = topics[random() % 3];
      std::string message;
      switch (random() % 6) {
        case 0:
        case 1: message = R"({"t":"sub","topic":")" + topic + "\"}"; break;
        case 2: message = R"({"t":"unsub","topic":")" + topic + "\"}"; break;
        case 3: message = R"({"t":"ack","topic":")" + topic + R"(","version":0})"; break;   // acks nothing
        case 4: message = R"({"t":"ack","topic":")" + topic + R"(","version":99})"; break;  // never sent
        default: message = R"({"t":"pong"})"; break;
      }
      delivery.receive(1, message, step);
      if (random() % 4 == 0) delivery.advance(step);
      for (const Outgoing& o : delivery.takeOutgoing()) {
        if (o.frame->find("\"t\":\"err\"") != std::string::npos) continue;  // the per-message allowance
        stateBytes += o.frame->size();
        largest = std::max(largest, o.frame->size());
        // Without acks, send() returned false and the transport says so. With
        // acks, the worst case: the transport has not said so yet, and only
        // the window bounds what is handed over.
        if (!acks && !congested) {
          delivery.congestion(1, true, step);
          congested = true;
        }
      }
    }
    EXPECT_LE(stateBytes, limits.creditBytes + largest) << "round " << round << " seed " << kSeed;
    EXPECT_GT(stateBytes, 0u);
  }
}

TEST(Amplification, NeverAckingClientIsHandedAtMostTheWindowPlusOneFrame) { amplificationBound(true); }

TEST(Amplification, CongestedConnectionWithoutAcksIsHandedAtMostOneFrame) { amplificationBound(false); }

}  // namespace
}  // namespace deltacast
