// The client-message parser: what a remote client sends through
// connection.receive(text). Each input line is one message from one of two
// connections (the first byte of the line picks which), with topics changing
// in between. Oracle: nothing crashes, and every frame sent is valid JSON.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "deltacast/delivery.h"
#include "deltacast/topic_store.h"
#include "fuzz_util.h"

using namespace deltacast;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  StoreOptions storeOptions;
  storeOptions.historyCount = 4;
  TopicStore store(storeOptions);
  DeliveryLimits limits;
  limits.maxSubscriptions = 8;
  limits.maxMessageBytes = 4096;
  limits.creditFrames = 4;
  limits.creditBytes = 1024;
  AccessRules rules({{"**", {}}, {"secret/**", {"admin"}}});
  Delivery delivery(store, std::move(rules), limits, {{"c/**", Lane::Critical}, {"l/**", Lane::Low}});

  std::int64_t now = 0;
  auto publish = [&](std::string_view topic, std::string json) {
    ChangeResult r = store.publishJson(topic, std::move(json), "", now);
    delivery.changed(topic, r, now);
  };
  publish("t", R"({"a":1,"rows":[{"id":1,"v":"x"}]})");
  publish("c/1", "[1,2,3]");
  publish("secret/x", "true");
  delivery.setAudit(true);
  delivery.connect(1, {}, now);
  delivery.connect(2, {"alice", {"admin"}}, now, true, 5000, "fuzz");

  auto drain = [&] {
    // Tokens are answered as a transport would: "admin" verifies with the
    // admin role and a later expiry, "other" names another user, the rest is refused.
    for (const AuthRequest& auth : delivery.takeAuthRequests()) {
      const std::string id = auth.connection == 2 ? "alice" : "";
      if (auth.token == "admin") {
        delivery.reauth(auth.connection, ReauthStatus::Verified, {id, {"admin"}}, now + 5000, now);
      } else if (auth.token == "other") {
        delivery.reauth(auth.connection, ReauthStatus::Verified, {"mallory", {}}, -1, now);
      } else if (auth.token == "none") {
        delivery.reauth(auth.connection, ReauthStatus::Verified, {id, {}}, -1, now);
      } else {
        delivery.reauth(auth.connection, ReauthStatus::Refused, {}, -1, now);
      }
    }
    for (const Outgoing& out : delivery.takeOutgoing()) fuzz::requireJson(*out.frame, "a frame that is not JSON");
    delivery.takeClosings();
    for (const AuditEvent& event : delivery.takeAudits()) {
      if (event.user.find("mallory") != std::string::npos)
        fuzz::finding("an audit event names the user a refresh was refused for", event.user);
    }
  };
  std::size_t line = 0;
  while (!input.empty()) {
    const std::size_t end = input.find('\n');
    std::string_view message = input.substr(0, end);
    input = end == std::string_view::npos ? std::string_view{} : input.substr(end + 1);
    ConnectionId who = 1;
    if (!message.empty() && message.front() == '\x02') {
      who = 2;
      message.remove_prefix(1);
    }
    delivery.receive(who, message, now);
    ++line;
    now += 7;
    if (line % 3 == 0) publish("t", R"({"a":)" + std::to_string(line) + R"(,"rows":[{"id":1,"v":"y"}]})");
    if (line % 5 == 0) publish("c/1", "[" + std::to_string(line) + "]");
    if (line % 4 == 0) delivery.advance(now);
    drain();
  }
  delivery.flushAllPending(now + 100000);
  drain();
  delivery.disconnect(1);
  delivery.disconnect(2);
  drain();
  return 0;
}
