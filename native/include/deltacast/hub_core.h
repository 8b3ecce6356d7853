// HubCore: the topic store on its own thread.
//
// The JS thread hands requests over (submit) and returns at once; the core
// thread, driven by a Boost.Asio io_context, parses, diffs and keeps the
// books, then appends a Completion to an outbox. When the outbox goes from
// empty to non-empty the core calls `notify` (the binding wires it to one
// thread-safe function), and the JS thread takes every completion at once.
// The core thread never waits for JS.
//
// Time: with a real clock, milliseconds since the core started (steady
// clock), and a periodic sweep for TTLs and the dedup window. With a manual
// clock, time moves only with Advance requests and nothing runs on its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "deltacast/asio.h"
#include "deltacast/delivery.h"
#include "deltacast/request.h"
#include "deltacast/topic_store.h"

namespace deltacast {

struct HubOptions {
  StoreOptions store;
  std::vector<AccessRule> access;  // no rules: every topic open
  DeliveryLimits delivery;
  std::vector<LaneRule> lanes;  // no rule for a topic: normal
  Pacing pacing;
  bool manualClock = false;
  std::int64_t sweepIntervalMs = 1000;  // real clock: how often TTLs and dedup windows are checked
};

struct Completion {
  std::uint32_t id = 0;
  ErrorCode code = ErrorCode::Ok;
  std::string message;  // when code != Ok
  bool changed = false;
  bool duplicate = false;
  bool found = false;  // Delete: there was a topic
  std::uint64_t version = 0;
  std::string epoch;
};

class HubCore {
 public:
  // `notify` runs on the core thread; it must not block.
  HubCore(HubOptions options, std::function<void()> notify);
  ~HubCore();
  HubCore(const HubCore&) = delete;
  HubCore& operator=(const HubCore&) = delete;

  // ---- JS thread -----------------------------------------------------------------
  void submit(Request request);
  // Requests in their wire form (request.h), already checked with
  // validateRequests, and the payloads staged for them; they run in order,
  // on the core thread.
  void submitEncoded(std::string records, std::vector<std::string> staged = {});
  // Everything answered and everything to send since the last call, in the
  // order it was produced.
  struct Batch {
    std::vector<Completion> completions;
    std::vector<Outgoing> frames;
    std::vector<Closing> closings;  // connections the engine closed, after their last frames
  };
  Batch take();
  // Stops the core thread and joins it; requests not yet run are dropped.
  // Idempotent; the destructor calls it.
  void stop();

  // ---- any thread ----------------------------------------------------------------
  std::shared_ptr<const Snapshot> get(std::string_view topic) const { return store_.get(topic); }
  StoreStats stats() const { return store_.stats(); }
  const DeliveryStats& deliveryStats() const { return delivery_.stats(); }
  bool manualClock() const { return options_.manualClock; }

 private:
  // ---- core thread ---------------------------------------------------------------
  void run(Request& request);
  void complete(Completion completion);
  void flushFrames();
  void forwardRemovals();
  // The outbox became non-empty: tell JS now, or after the batch being run.
  void wake();
  std::int64_t now() const;
  void scheduleSweep();
  // Real clock: keeps one Asio timer at the delivery engine's next deadline.
  void armPacing();

  const HubOptions options_;
  std::function<void()> notify_;
  TopicStore store_;
  Delivery delivery_;  // core thread only
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::steady_timer sweep_;
  boost::asio::steady_timer pacing_;
  std::optional<std::int64_t> pacingArmedFor_;  // core thread only
  std::chrono::steady_clock::time_point start_;
  std::int64_t manualNow_ = 0;   // core thread only
  bool runningBatch_ = false;    // core thread only: inside submitEncoded's handler
  bool wakeAfterBatch_ = false;  // core thread only

  std::mutex outboxMutex_;
  Batch outbox_;

  std::once_flag stopped_;
  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace deltacast
