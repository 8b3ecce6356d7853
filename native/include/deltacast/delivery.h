// Delivery: connections, their subscriptions, and the frames they are sent.
//
// This is the first slice of the delivery engine: subscribing (with resume
// from an epoch and version), unsubscribing, fan-out of each change, access
// rules, and strict handling of malformed client messages. Frames are encoded
// once per topic version and shared (by pointer) by every connection that
// receives them. Pacing lanes, credit windows and conflation, heartbeats and
// rate limits build on this and are not here yet.
//
// Thread affinity: the core thread only. It reads the TopicStore it is given
// (same thread) and never calls out: what must be sent is collected and taken
// by the caller with takeOutgoing().
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "deltacast/access_rules.h"
#include "deltacast/topic_store.h"

namespace deltacast {

using ConnectionId = std::uint64_t;
using Frame = std::shared_ptr<const std::string>;

struct DeliveryLimits {
  std::size_t maxSubscriptions = 1000;      // per connection
  std::size_t maxMessageBytes = 64u << 10;  // one client message
  std::size_t maxTopicLength = 256;
};

struct Outgoing {
  ConnectionId connection;
  Frame frame;
};

class Delivery {
 public:
  Delivery(const TopicStore& store, AccessRules rules, DeliveryLimits limits);

  void connect(ConnectionId id, Principal principal);
  void disconnect(ConnectionId id);
  bool connected(ConnectionId id) const { return connections_.count(id) != 0; }

  // One client message (JSON text). Anything malformed gets an `err` frame
  // with a stable code; nothing else changes.
  void receive(ConnectionId id, std::string_view message);

  // After a change accepted by the store (result.changed): sends the shared
  // patch frame to subscribers at the previous version, a snapshot to the others.
  void changed(std::string_view topic, const ChangeResult& result);

  std::vector<Outgoing> takeOutgoing();

  std::size_t subscriptionCount() const;

 private:
  struct Subscription {
    std::string epoch;
    std::uint64_t version = 0;  // what the client holds; 0: nothing
  };
  struct Connection {
    Principal principal;
    std::unordered_map<std::string, Subscription> subscriptions;
  };
  // The snapshot frame of a topic's latest version, built on first use and
  // shared by every connection that needs it.
  struct TopicFrames {
    std::uint64_t version = 0;
    std::string epoch;
    Frame snapshot;
  };

  void subscribe(ConnectionId id, Connection& connection, std::string_view topic, const std::string* epoch,
                 const std::uint64_t* version);
  void error(ConnectionId id, const char* code, std::string_view message, std::string_view topic = {});
  Frame snapshotFrame(std::string_view topic, const Snapshot& snapshot);
  void send(ConnectionId id, Frame frame) { outgoing_.push_back({id, std::move(frame)}); }

  const TopicStore& store_;
  AccessRules rules_;
  DeliveryLimits limits_;
  std::unordered_map<ConnectionId, Connection> connections_;
  std::unordered_map<std::string, std::set<ConnectionId>> subscribers_;  // ordered: deterministic fan-out
  std::unordered_map<std::string, TopicFrames> frames_;
  std::vector<Outgoing> outgoing_;
};

}  // namespace deltacast
