#include "deltacast/inbound.h"

#include <gtest/gtest.h>

#include <string>

namespace deltacast {
namespace {

Refusal parse(const std::string& text, ClientMessage& m) { return parseClientMessage(text, 1024, 256, m); }

std::string codeOf(const std::string& text) {
  ClientMessage m;
  const Refusal r = parse(text, m);
  return r ? r.code : "";
}

TEST(Inbound, ReadsEachType) {
  ClientMessage m;
  ASSERT_FALSE(parse(R"({"t":"sub","topic":"prices","epoch":"e1","version":41})", m));
  EXPECT_EQ(m.type, MessageType::Sub);
  EXPECT_EQ(m.topic, "prices");
  EXPECT_TRUE(m.hasEpoch && m.hasVersion);
  EXPECT_EQ(m.epoch, "e1");
  EXPECT_EQ(m.version, 41u);
  ClientMessage u;
  ASSERT_FALSE(parse(R"({"t":"unsub","topic":"prices"})", u));
  EXPECT_EQ(u.type, MessageType::Unsub);
  ClientMessage a;
  ASSERT_FALSE(parse(R"({"t":"ack","topic":"prices","version":42})", a));
  EXPECT_EQ(a.type, MessageType::Ack);
  EXPECT_EQ(a.version, 42u);
  ClientMessage p;
  ASSERT_FALSE(parse(R"({"t":"pong"})", p));
  EXPECT_EQ(p.type, MessageType::Pong);
}

TEST(Inbound, RefusalsHaveStableCodes) {
  EXPECT_EQ(codeOf("not json"), kInvalidMessage);
  EXPECT_EQ(codeOf("[1]"), kInvalidMessage);
  EXPECT_EQ(codeOf(R"({"topic":"t"})"), kInvalidMessage);
  EXPECT_EQ(codeOf(R"({"t":1})"), kInvalidMessage);
  EXPECT_EQ(codeOf(R"({"t":"jump"})"), kUnknownMessage);
  EXPECT_EQ(codeOf(R"({"t":"sub"})"), kInvalidMessage);
  EXPECT_EQ(codeOf(R"({"t":"sub","topic":7})"), kInvalidMessage);
  EXPECT_EQ(codeOf(R"({"t":"sub","topic":""})"), "DELTACAST_INVALID_TOPIC");
  EXPECT_EQ(codeOf(R"({"t":"sub","topic":"t","version":3})"), kInvalidMessage);
  EXPECT_EQ(codeOf(R"({"t":"sub","topic":"t","version":-1,"epoch":"e"})"), kInvalidMessage);
  EXPECT_EQ(codeOf(R"({"t":"sub","topic":"t","version":9007199254740993,"epoch":"e"})"), kInvalidMessage);
  EXPECT_EQ(codeOf(R"({"t":"ack","topic":"t"})"), kInvalidMessage);
  EXPECT_EQ(codeOf(std::string(2000, ' ')), kMessageTooLarge);
}

TEST(Inbound, MembersTheTypeDoesNotUseAreIgnored) {
  EXPECT_EQ(codeOf(R"({"t":"pong","topic":5})"), "");
  EXPECT_EQ(codeOf(R"({"t":"pong","version":"x","epoch":[]})"), "");
  EXPECT_EQ(codeOf(R"({"t":"unsub","topic":"t","version":-5,"epoch":1})"), "");
  EXPECT_EQ(codeOf(R"({"t":"ack","topic":"t","version":1,"epoch":{}})"), "");
  EXPECT_EQ(codeOf(R"({"t":"sub","topic":"t","extra":{"deep":[1]}})"), "");
  // A repeated name is refused whole (as every JSON text the core reads).
  EXPECT_EQ(codeOf(R"({"t":"sub","topic":5,"topic":"b"})"), kInvalidMessage);
}

TEST(Inbound, ATopicWithALoneSurrogateIsRefused) {
  // Mapped to U+FFFD, "a\ud800b" and "a\udfffb" would alias one topic.
  EXPECT_EQ(codeOf(R"({"t":"sub","topic":"a\ud800b"})"), std::string("DELTACAST_INVALID_TOPIC"));
  EXPECT_EQ(codeOf(R"({"t":"sub","topic":"a\udfffb"})"), std::string("DELTACAST_INVALID_TOPIC"));
  EXPECT_EQ(codeOf(R"({"t":"unsub","topic":"\udbff"})"), std::string("DELTACAST_INVALID_TOPIC"));
  EXPECT_EQ(codeOf(R"({"t":"ack","topic":"x\ude00","version":1})"), std::string("DELTACAST_INVALID_TOPIC"));
  // Raw invalid UTF-8 is not a JSON text: the whole message is refused.
  EXPECT_EQ(codeOf("{\"t\":\"sub\",\"topic\":\"a\xED\xA0\x80"
                   "b\"}"),
            kInvalidMessage);
  EXPECT_EQ(codeOf("{\"t\":\"sub\",\"topic\":\"a\xFF"
                   "b\"}"),
            kInvalidMessage);
  ClientMessage raw, pair;
  // U+FFFD itself is a character like any other.
  ASSERT_FALSE(
      parse("{\"t\":\"sub\",\"topic\":\"a\xEF\xBF\xBD"
            "b\"}",
            raw));
  EXPECT_EQ(raw.topic,
            "a\xEF\xBF\xBD"
            "b");
  ASSERT_FALSE(parse(R"({"t":"sub","topic":"\ud83d\ude00"})", pair));  // a pair stays itself
  EXPECT_EQ(pair.topic, "\xF0\x9F\x98\x80");
}

TEST(Inbound, AVersionIsWrittenAsDigitsOnly) {
  ClientMessage m;
  ASSERT_FALSE(parse(R"({"t":"ack","topic":"t","version":100})", m));
  EXPECT_EQ(m.version, 100u);
  for (const char* spelling : {"-0", "-0.0", "1e2", "100.0", "1E2", "0.1e3"}) {
    EXPECT_EQ(codeOf(std::string(R"({"t":"ack","topic":"t","version":)") + spelling + "}"), kInvalidMessage)
        << spelling;
  }
}

TEST(Inbound, AnUnknownTypeIsEchoedCut) {
  ClientMessage m;
  const Refusal r = parseClientMessage(R"({"t":")" + std::string(500, 'z') + R"("})", 4096, 256, m);
  ASSERT_TRUE(r);
  EXPECT_EQ(r.code, std::string(kUnknownMessage));
  EXPECT_LT(r.message.size(), 150u);
}

TEST(Inbound, TheLimiterRefusesTellsOnceAndCloses) {
  InboundLimiter limiter(10, 3, 5, 0);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.admit(false, 0), InboundLimiter::Verdict::Admit);
  EXPECT_EQ(limiter.admit(false, 0), InboundLimiter::Verdict::RefuseAndTell);
  EXPECT_EQ(limiter.admit(false, 0), InboundLimiter::Verdict::Refuse);
  EXPECT_EQ(limiter.admit(false, 100), InboundLimiter::Verdict::Admit);  // one token back after 100 ms
  for (int i = 0; i < 4; ++i) EXPECT_NE(limiter.admit(false, 100), InboundLimiter::Verdict::Close);
  EXPECT_EQ(limiter.admit(false, 100), InboundLimiter::Verdict::Close);  // five refused in a row
}

TEST(Inbound, RoutineMessagesCostATwentieth) {
  InboundLimiter limiter(1, 1, 100, 0);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(limiter.admit(true, 0), InboundLimiter::Verdict::Admit) << i;
  EXPECT_NE(limiter.admit(false, 0), InboundLimiter::Verdict::Admit);  // half a token left: not enough for a sub
  for (int i = 0; i < 9; ++i) EXPECT_EQ(limiter.admit(true, 0), InboundLimiter::Verdict::Admit) << i;
}

}  // namespace
}  // namespace deltacast
