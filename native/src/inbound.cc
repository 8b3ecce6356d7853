#include "deltacast/inbound.h"

#include <charconv>

#include "deltacast/json_tape.h"
#include "deltacast/topic_store.h"
#include "text_util.h"

namespace deltacast {

namespace {

// What a `t` longer than this is quoted as in an `err` (the rest is cut).
constexpr std::size_t kEchoedTypeBytes = 64;

// Decodes a JSON string of a client message. A lone surrogate (an escaped
// \ud800 that no low surrogate follows) becomes U+FFFD, as it does when a JS
// string holding one is encoded to UTF-8 on its way here: both forms of a
// message mean the same (docs/protocol.md).
void decodeMessageString(std::string_view raw, std::string& out) {
  out.clear();
  decodeJsonString(raw, out);
  // decodeJsonString keeps a lone surrogate as WTF-8 (ED A0..BF xx); valid
  // UTF-8 (which the parser checked the raw text to be) never holds one.
  for (std::size_t i = 0; i + 2 < out.size(); ++i) {
    if (static_cast<unsigned char>(out[i]) == 0xED && static_cast<unsigned char>(out[i + 1]) >= 0xA0) {
      out[i] = static_cast<char>(0xEF);
      out[i + 1] = static_cast<char>(0xBF);
      out[i + 2] = static_cast<char>(0xBD);
      i += 2;
    }
  }
}

Refusal refuse(const char* code, std::string message, std::string topic = {}) {
  return Refusal{code, std::move(message), std::move(topic)};
}

// `s` cut to at most `bytes` on a UTF-8 boundary.
std::string_view cut(std::string_view s, std::size_t bytes) {
  if (s.size() <= bytes) return s;
  s = s.substr(0, bytes);
  while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0xC0) == 0x80) s.remove_suffix(1);
  if (!s.empty() && static_cast<unsigned char>(s.back()) >= 0xC0) s.remove_suffix(1);
  return s;
}

}  // namespace

Refusal parseClientMessage(std::string_view text, std::size_t maxBytes, std::size_t maxTopicLength,
                           ClientMessage& message) {
  if (text.size() > maxBytes) {
    return refuse(kMessageTooLarge, "a message of " + std::to_string(text.size()) + " bytes is over the limit of " +
                                        std::to_string(maxBytes));
  }
  ParseLimits limits;
  limits.maxBytes = maxBytes;
  limits.maxDepth = 16;
  JsonTape tape;
  if (Status s = tape.parse(text, limits); !s) return refuse(kInvalidMessage, s.message());
  if (tape[0].type != JsonType::Object)
    return refuse(kInvalidMessage, std::string("a message must be a JSON object, not ") + jsonTypeName(tape[0].type));
  // The tape index of each member's value; 0: absent. A repeated name: the
  // last one counts, as in JSON.parse.
  std::uint32_t t = 0, topic = 0, epoch = 0, version = 0, token = 0;
  std::string name;
  for (std::uint32_t k = 1; k < tape[0].next; k = tape[k + 1].next) {
    decodeMessageString(tape.raw(k), name);
    if (name == "t") {
      t = k + 1;
    } else if (name == "topic") {
      topic = k + 1;
    } else if (name == "epoch") {
      epoch = k + 1;
    } else if (name == "version") {
      version = k + 1;
    } else if (name == "token") {
      token = k + 1;
    }
  }
  if (t == 0) return refuse(kInvalidMessage, "missing \"t\"");
  if (tape[t].type != JsonType::String) return refuse(kInvalidMessage, "\"t\" must be a string");
  std::string type;
  decodeMessageString(tape.raw(t), type);
  if (type.empty()) return refuse(kInvalidMessage, "missing \"t\"");
  if (type == "sub") {
    message.type = MessageType::Sub;
  } else if (type == "unsub") {
    message.type = MessageType::Unsub;
  } else if (type == "ack") {
    message.type = MessageType::Ack;
  } else if (type == "pong") {
    message.type = MessageType::Pong;
    return {};  // uses no member
  } else if (type == "auth") {
    message.type = MessageType::Auth;
    if (token == 0) return refuse(kInvalidMessage, "\"auth\" needs a \"token\"");
    if (tape[token].type != JsonType::String) return refuse(kInvalidMessage, "\"token\" must be a string");
    decodeMessageString(tape.raw(token), message.token);
    if (message.token.empty()) return refuse(kInvalidMessage, "\"token\" must not be empty");
    return {};  // uses no other member
  } else {
    const std::string_view echoed = cut(type, kEchoedTypeBytes);
    return refuse(kUnknownMessage, "unknown message type " + quoted(echoed) +
                                       (echoed.size() < type.size() ? "..." : "") +
                                       " (expected sub, unsub, ack, pong or auth)");
  }
  // Only the members the type uses are read; any other is ignored, whatever it holds.
  if (topic != 0) {
    if (tape[topic].type != JsonType::String) return refuse(kInvalidMessage, "\"topic\" must be a string");
    // Decoded as is: a lone surrogate stays WTF-8, which validateTopic
    // refuses as not UTF-8 (DELTACAST_INVALID_TOPIC), as publish does. Mapped
    // to U+FFFD, \ud800 and \udfff would both name the same topic.
    message.topic.clear();
    decodeJsonString(tape.raw(topic), message.topic);
  }
  if (epoch != 0 && message.type == MessageType::Sub) {
    if (tape[epoch].type != JsonType::String) return refuse(kInvalidMessage, "\"epoch\" must be a string");
    decodeMessageString(tape.raw(epoch), message.epoch);
    message.hasEpoch = true;
  }
  if (version != 0 && message.type != MessageType::Unsub) {
    // Written as digits only, as every JSON encoder writes an integer up to
    // 2^53: -0, 1e2 and 100.0 are refused alike.
    const std::string_view raw = tape.raw(version);
    std::uint64_t value = 0;
    const auto result = std::from_chars(raw.data(), raw.data() + raw.size(), value);
    if (tape[version].type != JsonType::Number || (tape[version].flags & TapeNode::kIsInteger) == 0 ||
        result.ec != std::errc() || result.ptr != raw.data() + raw.size() || value > (1ull << 53)) {
      return refuse(kInvalidMessage, "\"version\" must be a non-negative integer");
    }
    message.version = value;
    message.hasVersion = true;
  }
  if (topic == 0) return refuse(kInvalidMessage, "\"" + type + "\" needs a \"topic\"");
  if (Status s = validateTopic(message.topic, maxTopicLength); !s) return refuse(s.codeName(), s.message());
  if (message.type == MessageType::Sub && message.hasVersion != message.hasEpoch) {
    return refuse(kInvalidMessage, "\"epoch\" and \"version\" go together", message.topic);
  }
  if (message.type == MessageType::Ack && !message.hasVersion) {
    return refuse(kInvalidMessage, "\"ack\" needs a \"version\"", message.topic);
  }
  return {};
}

InboundLimiter::Verdict InboundLimiter::admit(bool routine, std::int64_t now) {
  if (bucket_.take(now, routine ? 0.05 : 1.0)) {
    refusedInARow_ = 0;
    return Verdict::Admit;
  }
  if (++refusedInARow_ >= violations_) return Verdict::Close;
  return refusedInARow_ == 1 ? Verdict::RefuseAndTell : Verdict::Refuse;
}

}  // namespace deltacast
