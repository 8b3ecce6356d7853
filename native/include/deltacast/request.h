// Requests from the JS thread to the core, and their wire form.
//
// The JS side queues requests in one byte buffer and hands the whole buffer
// over once per tick (one N-API call however many requests it holds); the
// core thread decodes it. Everything is little-endian:
//
//   record   := kind:u8 body
//   str      := length:u32 bytes[length]          (UTF-8)
//   payload  := str | 0xFFFFFFFF index:u32         (the latter: the index-th
//               staged payload, a large value handed over on its own so that
//               its bytes are copied once, not into the buffer and out again)
//   lane     := u8 (0: the topic's lane, 1 critical, 2 high, 3 normal, 4 low)
//   PublishJson, Patch := id:u32 topic:str payload changeId:str lane|flags
//               (0x80 set on the lane byte: the change releases the topic's
//               coalesced value, Delivery::released; 0x40: it carries a
//               coalesced value released before its flush asked for it.
//               Either is not applied while Delivery::heldValueDropped)
//   Upsert   := id:u32 topic:str key:str payload changeId:str lane
//   Remove   := id:u32 topic:str key:str changeId:str lane
//   Delete   := id:u32 topic:str
//   Advance  := id:u32 ms:f64
//   Close    := id:u32
//   Connect  := connection:f64 userId:str roleCount:u32 role:str... acks:u8
//               expiresAt:f64 transport:str
//               (acks 0: a connection without acks, delivery.h; expiresAt:
//               the hub's clock in ms, -1: never; transport: its name in audits)
//   Reauth   := connection:f64 status:u8 userId:str roleCount:u32 role:str...
//               expiresAt:f64   (status: ReauthStatus, delivery.h)
//   Disconnect := connection:f64
//   Receive  := connection:f64 message:payload
//   Congestion := connection:f64 congested:u8
//   Refuse   := connection:f64 code:u8 message:str
//               (a client message the transport could not hand over as text,
//               Delivery::refuse: code 0 DELTACAST_INVALID_MESSAGE, 1
//               DELTACAST_UNKNOWN_MESSAGE; internal, lib/adapters)
//   Hold     := topic:str lane heldId:f64
//               (JS holds an immutable value for the topic, to be serialized
//               when its lane flushes: Delivery::hold; pacing.coalesce.
//               heldId: JS's number for the held value, 1 to 2^53-1, the
//               one a flush asks for it by)
//   Release  := topic:str
//               (JS holds no value for the topic any more and sent none: its
//               serialization failed: Delivery::releasedEarly)
//   Redate   := topic:str lane|flags ago:u32 position:f64
//               (publishes of the held value came after its last Hold, the
//               latest `ago` ms before this record, when `position` bytes of
//               records had been written: Delivery::redate. JS writes one
//               Hold per window and this in answer to the flush that asks.
//               0x80 on the lane byte: the value's release follows)
//   Replicate := id:u32 topic:str epoch:str version:f64 mode:u8 payload
//               (an engine's replica, TopicStore::replicate: mode 0 state,
//               1 patch, 2 absent, 3 history; internal, lib/redis.js)
//
// `id` is the JS side's request id, echoed in the Completion; JS checks it
// (lib/requests.js BatchQueue.answer), so an answer can never settle another
// call. Exactly the kinds with an id are answered (isAnswered).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "deltacast/access_rules.h"
#include "deltacast/delivery.h"
#include "deltacast/status.h"
#include "deltacast/topic_store.h"

namespace deltacast {

enum class RequestKind : std::uint8_t {
  PublishJson,
  Patch,
  Upsert,
  Remove,
  Delete,
  Advance,
  Close,
  Connect,     // connection, principal
  Disconnect,  // connection
  Receive,     // connection, payload: one client message
  Congestion,  // connection, ms: 1 congested, 0 drained
  Reauth,      // connection, status, principal, expiresAt: the answer to an AuthRequest
  Replicate,   // topic, epoch (in key), version (in ms), mode, payload: a replica of an engine's state
  Refuse,      // connection, code (in ms), message (in payload): a client message refused by its transport
  Hold,        // topic, lane: a value held by JS until the topic's lane flushes
  Release,     // topic: the flush asked for a held value, and there was none
  Redate,      // topic, lane, ms (ago), position: later publishes of a held value (Delivery::redate)
};

struct Request {
  std::uint32_t id = 0;
  RequestKind kind = RequestKind::PublishJson;
  std::string topic;
  std::string payload;   // JSON text: the value, the patch, or the row
  std::string key;       // Upsert/Remove: the row key as JSON; Connect: the transport's name
  std::string changeId;  // dedup id, may be empty
  std::int64_t ms = 0;   // Advance
  ConnectionId connection = 0;
  Principal principal;                           // Connect, Reauth
  bool acks = true;                              // Connect
  std::int64_t expiresAt = -1;                   // Connect, Reauth
  ReauthStatus reauth = ReauthStatus::Verified;  // Reauth
  std::optional<Lane> lane;                      // a change's lane, overriding the topic's
  bool release = false;                          // PublishJson, Patch: releases a held value (Hold)
  bool held = false;                             // PublishJson, Patch: carries a held value (release or early)
  ReplicaMode replicaMode = ReplicaMode::State;  // Replicate
  std::uint64_t position = 0;                    // Redate: bytes of records written before the publish
  bool releaseFollows = false;                   // Redate: the held value's release is the next record for it
  std::uint64_t heldId = 0;                      // Hold: JS's number for the held value
  std::size_t offset = 0;                        // where the record starts in its batch (decoded records)
};

inline constexpr std::uint32_t kStagedPayload = 0xFFFFFFFFu;

// Requests whose caller waits for a Completion (the others cause frames only).
constexpr bool isAnswered(RequestKind kind) noexcept {
  switch (kind) {
    case RequestKind::Connect:
    case RequestKind::Disconnect:
    case RequestKind::Receive:
    case RequestKind::Congestion:
    case RequestKind::Refuse:
    case RequestKind::Hold:
    case RequestKind::Release:
    case RequestKind::Redate:
    case RequestKind::Reauth: return false;
    default: return true;
  }
}

// Checks that `bytes` is a well-formed sequence of records whose staged
// payloads are among the `staged` given; on success `count` is the number of
// records and `answeredIds` (when given) holds the id of every answered
// record, in order. Cheap: it reads lengths, copies nothing.
Status validateRequests(std::string_view bytes, std::size_t staged, std::size_t& count,
                        std::vector<std::uint32_t>* answeredIds = nullptr);

// Decodes records validated by validateRequests into `out` (appended); staged
// payloads are moved out of `staged`.
Status decodeRequests(std::string_view bytes, std::vector<std::string>& staged, std::vector<Request>& out);

// Decodes the records one at a time, each into the Request `slot()` returns
// (reset first; its strings keep their capacity, so a caller that reuses a
// few Requests decodes a batch without allocating for names), then calls
// `each` on it; `each` returns false to stop. Records before a malformed
// one have been handed to `each` when the error is returned.
Status forEachRequest(std::string_view bytes, std::vector<std::string>& staged, const std::function<Request&()>& slot,
                      const std::function<bool(Request&)>& each);

}  // namespace deltacast
