// Inbound: what a client may send, and how fast.
//
// parseClientMessage reads and checks one client message (docs/protocol.md,
// "Client → server"); InboundLimiter is a connection's rate limit (a token
// bucket, and the count of refusals in a row that closes it). No I/O: the
// caller turns a refusal into an `err` frame and a close into a close.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "deltacast/token_bucket.h"

namespace deltacast {

// Stable codes of `err` frames (docs/protocol.md).
inline constexpr const char* kInvalidMessage = "DELTACAST_INVALID_MESSAGE";
inline constexpr const char* kUnknownMessage = "DELTACAST_UNKNOWN_MESSAGE";
inline constexpr const char* kMessageTooLarge = "DELTACAST_MESSAGE_TOO_LARGE";
inline constexpr const char* kForbidden = "DELTACAST_FORBIDDEN";
inline constexpr const char* kTooManySubscriptions = "DELTACAST_TOO_MANY_SUBSCRIPTIONS";
inline constexpr const char* kInvalidAck = "DELTACAST_INVALID_ACK";
inline constexpr const char* kRateLimited = "DELTACAST_RATE_LIMITED";
inline constexpr const char* kUnauthorized = "DELTACAST_UNAUTHORIZED";

enum class MessageType : std::uint8_t { Sub, Unsub, Ack, Pong, Auth };

// A client message that passed every check: `topic` is a valid topic name;
// a sub has both `epoch` and `version` or neither; an ack has a `version`;
// an auth has a non-empty `token` (and no topic).
struct ClientMessage {
  MessageType type = MessageType::Pong;
  std::string topic;
  bool hasEpoch = false;  // sub: resume from (epoch, version)
  std::string epoch;
  bool hasVersion = false;
  std::uint64_t version = 0;
  std::string token;  // auth: never echoed in an `err`, never audited
};

// Why a message was refused: the `err` frame's code, message and topic.
struct Refusal {
  const char* code = nullptr;  // null: accepted
  std::string message;
  std::string topic;
  explicit operator bool() const noexcept { return code != nullptr; }
};

// Reads one client message (JSON text of at most maxBytes). Only the members
// its type uses are read and must have their type; any other member is
// ignored. A lone surrogate in a string is U+FFFD. `version` is an integer
// from 0 to 2^53 (-0 is 0).
Refusal parseClientMessage(std::string_view text, std::size_t maxBytes, std::size_t maxTopicLength, ClientMessage& out);

// Acks and pongs are the steady traffic of a healthy client: they cost a
// twentieth of a token; everything else costs one.
class InboundLimiter {
 public:
  InboundLimiter(double perSecond, double burst, std::size_t violations, std::int64_t now)
      : bucket_(perSecond, burst, now), violations_(violations) {}

  enum class Verdict : std::uint8_t {
    Admit,
    RefuseAndTell,  // over the rate, the first of a run: tell the client once
    Refuse,         // over the rate again: dropped silently
    Close,          // `violations` refused in a row
  };
  Verdict admit(bool routine, std::int64_t now);

 private:
  TokenBucket bucket_;
  std::size_t violations_;
  std::size_t refusedInARow_ = 0;
};

}  // namespace deltacast
