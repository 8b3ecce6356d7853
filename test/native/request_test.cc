// The request records of request.h: what lib/hub.js writes, the core reads.
#include "deltacast/request.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace deltacast {
namespace {

// Writes records the way lib/requests.js does (little-endian).
class Writer {
 public:
  Writer& u8(std::uint8_t v) {
    out_.push_back(static_cast<char>(v));
    return *this;
  }
  Writer& u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
    return *this;
  }
  Writer& f64(double v) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof bits);
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>(bits >> (8 * i)));
    return *this;
  }
  Writer& str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
    return *this;
  }
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

std::string everyKind() {
  Writer w;
  w.u8(0).u32(7).str("prices").str("{\"a\":1}").str("").u8(0);                            // PublishJson
  w.u8(1).u32(8).str("prices").str("[]").str("evt-1").u8(1);                              // Patch, critical
  w.u8(2).u32(9).str("rows").str("\"r1\"").str("{\"id\":\"r1\"}").str("").u8(4);          // Upsert, low
  w.u8(3).u32(10).str("rows").str("3").str("").u8(2);                                     // Remove, high
  w.u8(4).u32(11).str("gone");                                                            // Delete
  w.u8(5).u32(12).f64(250);                                                               // Advance
  w.u8(7).f64(5e12).str("u-1").u32(2).str("admin").str("ops").u8(0).f64(1500).str("ws");  // Connect, no acks
  w.u8(9).f64(5e12).str("{\"t\":\"pong\"}");                                              // Receive
  w.u8(10).f64(5e12).u8(1);                                                               // Congestion
  w.u8(11).f64(5e12).u8(1).str("u-1").u32(1).str("ops").f64(-1);                          // Reauth, refused
  w.u8(8).f64(5e12);                                                                      // Disconnect
  w.u8(6).u32(13);                                                                        // Close
  return w.bytes();
}

TEST(Request, ValidationListsTheIdsOfTheAnsweredRecordsInOrder) {
  std::size_t count = 0;
  std::vector<std::uint32_t> ids{99};  // replaced, not appended to
  ASSERT_TRUE(validateRequests(everyKind(), 0, count, &ids));
  EXPECT_EQ(ids, (std::vector<std::uint32_t>{7, 8, 9, 10, 11, 12, 13}));  // not Connect/Receive/Congestion/Disconnect
  const std::string truncated = everyKind().substr(0, 30);
  EXPECT_FALSE(validateRequests(truncated, 0, count, &ids));
  EXPECT_TRUE(ids.empty());
}

TEST(Request, DecodesEveryKind) {
  const std::string bytes = everyKind();
  std::size_t count = 0;
  ASSERT_TRUE(validateRequests(bytes, 0, count));
  EXPECT_EQ(count, 12u);
  std::vector<Request> out;
  std::vector<std::string> none;
  ASSERT_TRUE(decodeRequests(bytes, none, out));
  ASSERT_EQ(out.size(), 12u);

  EXPECT_EQ(out[0].kind, RequestKind::PublishJson);
  EXPECT_EQ(out[0].id, 7u);
  EXPECT_EQ(out[0].topic, "prices");
  EXPECT_EQ(out[0].payload, "{\"a\":1}");
  EXPECT_FALSE(out[0].lane.has_value());

  EXPECT_EQ(out[1].kind, RequestKind::Patch);
  EXPECT_EQ(out[1].changeId, "evt-1");
  EXPECT_EQ(out[1].lane, Lane::Critical);

  EXPECT_EQ(out[2].kind, RequestKind::Upsert);
  EXPECT_EQ(out[2].key, "\"r1\"");
  EXPECT_EQ(out[2].payload, "{\"id\":\"r1\"}");
  EXPECT_EQ(out[2].lane, Lane::Low);

  EXPECT_EQ(out[3].kind, RequestKind::Remove);
  EXPECT_EQ(out[3].key, "3");
  EXPECT_EQ(out[3].lane, Lane::High);

  EXPECT_EQ(out[4].kind, RequestKind::Delete);
  EXPECT_EQ(out[4].topic, "gone");
  EXPECT_EQ(out[5].kind, RequestKind::Advance);
  EXPECT_EQ(out[5].ms, 250);

  EXPECT_EQ(out[6].kind, RequestKind::Connect);
  EXPECT_EQ(out[6].connection, 5000000000000u);
  EXPECT_EQ(out[6].principal.id, "u-1");
  EXPECT_EQ(out[6].principal.roles, (std::vector<std::string>{"admin", "ops"}));
  EXPECT_FALSE(out[6].acks);
  EXPECT_EQ(out[6].expiresAt, 1500);
  EXPECT_EQ(out[6].key, "ws");
  EXPECT_EQ(out[7].kind, RequestKind::Receive);
  EXPECT_EQ(out[7].payload, "{\"t\":\"pong\"}");
  EXPECT_EQ(out[8].kind, RequestKind::Congestion);
  EXPECT_EQ(out[8].ms, 1);
  EXPECT_EQ(out[9].kind, RequestKind::Reauth);
  EXPECT_EQ(out[9].reauth, ReauthStatus::Refused);
  EXPECT_EQ(out[9].principal.roles, (std::vector<std::string>{"ops"}));
  EXPECT_EQ(out[9].expiresAt, -1);
  EXPECT_EQ(out[10].kind, RequestKind::Disconnect);
  EXPECT_EQ(out[11].kind, RequestKind::Close);
  EXPECT_EQ(out[11].id, 13u);
}

TEST(Request, EmptyBufferIsNoRequests) {
  std::size_t count = 1;
  EXPECT_TRUE(validateRequests("", 0, count));
  EXPECT_EQ(count, 0u);
}

TEST(Request, EveryTruncationIsRefused) {
  const std::string bytes = everyKind();
  std::vector<std::size_t> boundaries;
  // Cutting at a record boundary is a shorter valid buffer; anywhere else is malformed.
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    std::size_t count = 0;
    const Status s = validateRequests(std::string_view(bytes).substr(0, cut), 0, count);
    if (s) {
      boundaries.push_back(cut);
      continue;
    }
    EXPECT_EQ(s.code(), ErrorCode::InvalidArgument);
    EXPECT_NE(s.message().find("malformed request record"), std::string::npos) << s.message();
    std::vector<Request> out;
    std::vector<std::string> none;
    EXPECT_FALSE(decodeRequests(std::string_view(bytes).substr(0, cut), none, out));
  }
  EXPECT_EQ(boundaries.size(), 12u);  // 0 and the ends of the first eleven records
}

TEST(Request, RefusesUnknownKindsLanesAndIds) {
  std::size_t count = 0;
  EXPECT_FALSE(validateRequests(Writer().u8(16).str("t").bytes(), 0, count));                               // kind
  EXPECT_FALSE(validateRequests(Writer().u8(11).f64(1).u8(3).str("").u32(0).f64(-1).bytes(), 0, count));    // status
  EXPECT_FALSE(validateRequests(Writer().u8(11).f64(1).u8(0).str("").u32(0).f64(-2).bytes(), 0, count));    // expiry
  EXPECT_FALSE(validateRequests(Writer().u8(0).u32(1).str("t").str("1").str("").u8(5).bytes(), 0, count));  // lane
  EXPECT_FALSE(validateRequests(Writer().u8(8).f64(-1).bytes(), 0, count));          // connection
  EXPECT_FALSE(validateRequests(Writer().u8(8).f64(1.5).bytes(), 0, count));         // connection
  EXPECT_FALSE(validateRequests(Writer().u8(10).f64(1).u8(2).bytes(), 0, count));    // congestion
  EXPECT_FALSE(validateRequests(Writer().u8(4).u32(1).u32(100).bytes(), 0, count));  // a length past the end
}

TEST(Request, DecodesReplicate) {
  Writer w;
  w.u8(12).u32(4).str("prices").str("e1").f64(42).u8(1).str("[]");  // Replicate, patch mode
  std::vector<std::string> staged;
  std::vector<Request> out;
  ASSERT_TRUE(decodeRequests(w.bytes(), staged, out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, RequestKind::Replicate);
  EXPECT_EQ(out[0].id, 4u);
  EXPECT_EQ(out[0].topic, "prices");
  EXPECT_EQ(out[0].key, "e1");
  EXPECT_EQ(out[0].ms, 42);
  EXPECT_EQ(out[0].replicaMode, ReplicaMode::Patch);
  EXPECT_EQ(out[0].payload, "[]");
  EXPECT_TRUE(isAnswered(RequestKind::Replicate));
  std::size_t count = 0;
  EXPECT_FALSE(validateRequests(Writer().u8(12).u32(1).str("t").str("e").f64(1).u8(4).str("").bytes(), 0, count));
  EXPECT_FALSE(validateRequests(Writer().u8(12).u32(1).str("t").str("e").f64(1.5).u8(0).str("").bytes(), 0, count));
  EXPECT_FALSE(validateRequests(Writer().u8(12).u32(1).str("t").str("e").f64(1).u8(0).bytes(), 0, count));
}

TEST(Request, DecodesRefuse) {
  Writer w;
  w.u8(13).f64(6).u8(0).str("binary frames are not protocol messages");  // Refuse, DELTACAST_INVALID_MESSAGE
  w.u8(13).f64(7).u8(1).str("other event");                              // Refuse, DELTACAST_UNKNOWN_MESSAGE
  std::vector<std::string> staged;
  std::vector<Request> out;
  ASSERT_TRUE(decodeRequests(w.bytes(), staged, out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].kind, RequestKind::Refuse);
  EXPECT_EQ(out[0].connection, 6u);
  EXPECT_EQ(out[0].ms, 0);
  EXPECT_EQ(out[0].payload, "binary frames are not protocol messages");
  EXPECT_EQ(out[1].ms, 1);
  EXPECT_FALSE(isAnswered(RequestKind::Refuse));
  std::size_t count = 0;
  EXPECT_FALSE(validateRequests(Writer().u8(13).f64(1).u8(2).str("x").bytes(), 0, count));  // code
  EXPECT_FALSE(validateRequests(Writer().u8(13).f64(1).u8(0).bytes(), 0, count));           // no message
}

TEST(Request, DecodesRedate) {
  Writer w;
  w.u8(16).str("prices").u8(3).u32(40).f64(123456);                // Redate, normal lane
  w.u8(16).str("prices").u8(0x80).u32(0).f64(9007199254740991.0);  // the topic's lane, its release follows
  w.u8(0).u32(3).str("prices").str("[1]").str("").u8(0);           // a change after it starts afresh
  std::vector<std::string> staged;
  std::vector<Request> out;
  ASSERT_TRUE(decodeRequests(w.bytes(), staged, out));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].kind, RequestKind::Redate);
  EXPECT_EQ(out[0].topic, "prices");
  EXPECT_EQ(out[0].lane, Lane::Normal);
  EXPECT_EQ(out[0].ms, 40);
  EXPECT_EQ(out[0].position, 123456u);
  EXPECT_FALSE(out[0].releaseFollows);
  EXPECT_FALSE(out[0].release) << "not the change flag: no release of its own";
  EXPECT_FALSE(out[1].lane.has_value());
  EXPECT_TRUE(out[1].releaseFollows);
  EXPECT_FALSE(out[1].release);
  EXPECT_EQ(out[1].position, 9007199254740991u);
  EXPECT_FALSE(out[2].releaseFollows);
  EXPECT_EQ(out[2].position, 0u);
  EXPECT_EQ(out[2].offset, w.bytes().size() - (1 + 4 + 4 + 6 + 4 + 3 + 4 + 1));
  EXPECT_EQ(out[0].offset, 0u);
  EXPECT_FALSE(isAnswered(RequestKind::Redate));
  std::size_t count = 0;
  EXPECT_FALSE(validateRequests(Writer().u8(16).str("t").u8(5).u32(0).f64(0).bytes(), 0, count));     // lane
  EXPECT_FALSE(validateRequests(Writer().u8(16).str("t").u8(0x40).u32(0).f64(0).bytes(), 0, count));  // flag
  EXPECT_FALSE(validateRequests(Writer().u8(16).str("t").u8(0).u32(0).f64(-1).bytes(), 0, count));    // position
  EXPECT_FALSE(validateRequests(Writer().u8(16).str("t").u8(0).u32(0).f64(0.5).bytes(), 0, count));
  EXPECT_FALSE(validateRequests(Writer().u8(16).str("t").u8(0).u32(0).bytes(), 0, count));  // truncated
  EXPECT_FALSE(validateRequests(Writer().u8(17).str("t").bytes(), 0, count));               // no such kind
}

TEST(Request, DecodesHoldReleaseAndTheReleaseFlag) {
  Writer w;
  w.u8(14).str("prices").u8(2).f64(9007199254740991.0);          // Hold, high lane, heldId
  w.u8(15).str("prices");                                        // Release
  w.u8(0).u32(3).str("prices").str("[1]").str("").u8(0x80 | 3);  // PublishJson, normal, releasing
  w.u8(1).u32(4).str("prices").str("[]").str("").u8(0x80);       // Patch, the topic's lane, releasing
  w.u8(0).u32(5).str("prices").str("[2]").str("").u8(0);         // PublishJson
  w.u8(0).u32(6).str("prices").str("[3]").str("").u8(0x40 | 4);  // PublishJson, low, a held value released early
  w.u8(1).u32(7).str("prices").str("[]").str("").u8(0x40);       // Patch, the topic's lane, the same
  std::vector<std::string> staged;
  std::vector<Request> out;
  ASSERT_TRUE(decodeRequests(w.bytes(), staged, out));
  ASSERT_EQ(out.size(), 7u);
  EXPECT_TRUE(out[2].held);
  EXPECT_TRUE(out[3].held);
  EXPECT_FALSE(out[4].held);
  EXPECT_TRUE(out[5].held);
  EXPECT_FALSE(out[5].release);
  EXPECT_EQ(out[5].lane, Lane::Low);
  EXPECT_TRUE(out[6].held);
  EXPECT_FALSE(out[6].release);
  EXPECT_FALSE(out[6].lane.has_value());
  EXPECT_EQ(out[0].kind, RequestKind::Hold);
  EXPECT_EQ(out[0].topic, "prices");
  EXPECT_EQ(out[0].lane, Lane::High);
  EXPECT_EQ(out[0].heldId, 9007199254740991u);
  EXPECT_FALSE(out[0].release);
  EXPECT_EQ(out[1].kind, RequestKind::Release);
  EXPECT_EQ(out[1].topic, "prices");
  EXPECT_TRUE(out[2].release);
  EXPECT_EQ(out[2].lane, Lane::Normal);
  EXPECT_TRUE(out[3].release);
  EXPECT_FALSE(out[3].lane.has_value());
  EXPECT_FALSE(out[4].release);  // the decoder's reused slot starts afresh
  EXPECT_FALSE(isAnswered(RequestKind::Hold));
  EXPECT_FALSE(isAnswered(RequestKind::Release));
  std::size_t count = 0;
  std::vector<std::uint32_t> ids;
  ASSERT_TRUE(validateRequests(w.bytes(), 0, count, &ids));
  EXPECT_EQ(ids, (std::vector<std::uint32_t>{3, 4, 5, 6, 7}));
  // The flags only where a change may carry a held value; a lane past low with one is still refused.
  EXPECT_FALSE(validateRequests(Writer().u8(14).str("t").u8(0x80).f64(1).bytes(), 0, count));
  EXPECT_FALSE(validateRequests(Writer().u8(14).str("t").u8(0x40).f64(1).bytes(), 0, count));
  // A Hold names its value by a whole number from 1 to 2^53-1.
  EXPECT_TRUE(validateRequests(Writer().u8(14).str("t").u8(0).f64(1).bytes(), 0, count));
  EXPECT_FALSE(validateRequests(Writer().u8(14).str("t").u8(0).bytes(), 0, count));  // truncated
  EXPECT_FALSE(validateRequests(Writer().u8(14).str("t").u8(0).f64(0).bytes(), 0, count));
  EXPECT_FALSE(validateRequests(Writer().u8(14).str("t").u8(0).f64(1.5).bytes(), 0, count));
  EXPECT_FALSE(validateRequests(Writer().u8(14).str("t").u8(0).f64(9007199254740992.0).bytes(), 0, count));
  EXPECT_FALSE(validateRequests(Writer().u8(2).u32(1).str("t").str("1").str("{}").str("").u8(0x80).bytes(), 0, count));
  EXPECT_FALSE(validateRequests(Writer().u8(2).u32(1).str("t").str("1").str("{}").str("").u8(0x40).bytes(), 0, count));
  EXPECT_FALSE(validateRequests(Writer().u8(0).u32(1).str("t").str("1").str("").u8(0x85).bytes(), 0, count));
  EXPECT_FALSE(validateRequests(Writer().u8(0).u32(1).str("t").str("1").str("").u8(0x45).bytes(), 0, count));
  EXPECT_FALSE(validateRequests(Writer().u8(14).str("t").bytes(), 0, count));  // no lane
}

TEST(Request, StagedPayloadsAreMovedInOnceEach) {
  Writer w;
  w.u8(0).u32(1).str("big").u32(kStagedPayload).u32(1).str("").u8(0);  // PublishJson, the second staged
  w.u8(9).f64(4).u32(kStagedPayload).u32(0);                           // Receive, the first staged
  std::size_t count = 0;
  ASSERT_TRUE(validateRequests(w.bytes(), 2, count));
  EXPECT_EQ(count, 2u);
  EXPECT_FALSE(validateRequests(w.bytes(), 1, count));  // index 1 not staged
  std::vector<std::string> staged{R"({"t":"pong"})", std::string(100000, '7')};
  std::vector<Request> out;
  ASSERT_TRUE(decodeRequests(w.bytes(), staged, out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].payload, std::string(100000, '7'));
  EXPECT_EQ(out[1].payload, R"({"t":"pong"})");

  Writer twice;
  twice.u8(9).f64(4).u32(kStagedPayload).u32(0);
  twice.u8(9).f64(4).u32(kStagedPayload).u32(0);
  EXPECT_FALSE(validateRequests(twice.bytes(), 1, count));  // one staged payload, named twice
}

}  // namespace
}  // namespace deltacast
