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
// Either way the clock saturates at kMaxClockMs (timer_queue.h).
//
// Faults: an exception on the core thread never ends the thread, never stops
// the sweep or the pacing timer, and never leaves a request unanswered or
// answered twice. A request that throws before the store has committed it
// is answered with the error (DELTACAST_INTERNAL, or DELTACAST_TOO_LARGE for
// std::bad_alloc); a throw after the commit (telling subscribers) leaves the
// change's answer as it is. Every such exception is counted in
// internalErrors() (stats().internalErrors).
#pragma once

#include <atomic>
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
#include "deltacast/timer_queue.h"
#include "deltacast/topic_store.h"

namespace deltacast {

// Test-only fault injection (test/native/hub_core_faults_test.cc): the hook
// is called on the core thread at each of these points, with the id of the
// request being run (0 for none); a hook that throws stands for a fault there.
// Production code leaves it empty.
enum class FaultPoint : std::uint8_t {
  Decode,       // before a submitted buffer is decoded
  Run,          // before a request is run (nothing committed yet)
  AfterCommit,  // after the store ran a request, before subscribers hear of it
  Complete,     // while the answer of a request is being completed
  Sweep,        // in the periodic sweep (real clock)
  Pacing,       // when the pacing timer fires (real clock)
};
using FaultHook = std::function<void(FaultPoint, std::uint32_t requestId)>;

struct HubOptions {
  StoreOptions store;
  std::vector<AccessRule> access;  // no rules: every topic open
  DeliveryLimits delivery;
  std::vector<LaneRule> lanes;  // no rule for a topic: normal
  Pacing pacing;
  bool manualClock = false;
  bool audit = false;                   // keep audit events (the hub has an onAudit hook)
  std::int64_t sweepIntervalMs = 1000;  // real clock: how often TTLs and dedup windows are checked
  FaultHook faultHook;                  // tests only (above)
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
  // on the core thread. `answeredIds` (from validateRequests) are the ids of
  // the answered records: should the buffer fail to decode on the core
  // thread after all, each of them is answered with DELTACAST_INTERNAL.
  void submitEncoded(std::string records, std::vector<std::string> staged = {},
                     std::vector<std::uint32_t> answeredIds = {});
  // Everything answered and everything to send since the last call, in the
  // order it was produced.
  struct Batch {
    std::vector<Completion> completions;
    std::vector<Outgoing> frames;
    std::vector<Closing> closings;         // connections the engine closed, after their last frames
    std::vector<AuditEvent> audits;        // in the order the engine decided them
    std::vector<AuthRequest> auths;        // tokens for the transport to verify (answered with Reauth)
    std::vector<Delivery::Want> wants;     // held values a flush asks for (answered with a release)
    std::vector<Delivery::Want> dueWants;  // the same, due now (Delivery::takeDueWants)
    bool empty() const {
      return completions.empty() && frames.empty() && closings.empty() && audits.empty() && auths.empty() &&
             wants.empty() && dueWants.empty();
    }
  };
  Batch take();
  // Stops the core thread and joins it; requests not yet run are dropped.
  // Idempotent; the destructor calls it.
  void stop();

  // ---- any thread ----------------------------------------------------------------
  std::shared_ptr<const Snapshot> get(std::string_view topic) const { return store_.get(topic); }
  StoreStats stats() const { return store_.stats(); }
  std::uint64_t evictions() const noexcept { return store_.evictions(); }
  const DeliveryStats& deliveryStats() const { return delivery_.stats(); }
  bool manualClock() const { return options_.manualClock; }
  // Exceptions caught on the core thread (see Faults above).
  std::uint64_t internalErrors() const { return internalErrors_.load(std::memory_order_relaxed); }

 private:
  // ---- core thread ---------------------------------------------------------------
  // `lookup`: the topic's lookup from the batch's prefetch stages, if it ran them.
  void run(Request& request, const TopicStore::Lookup* lookup = nullptr);
  // The kinds of request that change a topic (and are answered with a ChangeResult).
  static bool changesTopic(RequestKind kind) noexcept;
  // Topics from which on a batch prefetches the topics of the records ahead.
  static constexpr std::size_t kPrefetchTopics = 16384;
  void runEncoded(const std::string& records, std::vector<std::string>& staged,
                  const std::vector<std::uint32_t>& answeredIds);
  // Appends an answer to the outbox. Never throws: a failure while doing so
  // is counted, and JS fails a call whose answer is missing when it sees
  // the next one (answers carry their request's id).
  void complete(Completion&& completion) noexcept;
  // What answering a request does before the answer is appended: its frames
  // go to the outbox (a fault there is counted).
  void beforeAnswer(std::uint32_t id) noexcept;
  // Moves the answers kept while a batch ran into the outbox (one lock).
  void publishCompletions();
  void fault(FaultPoint point, std::uint32_t requestId) const {
    if (options_.faultHook) options_.faultHook(point, requestId);
  }
  void countInternalError() noexcept { internalErrors_.fetch_add(1, std::memory_order_relaxed); }
  // Runs `body`; an exception it throws is counted, not propagated (a fault
  // after the point where the caller could be told of it).
  template <class Body>
  void counting(Body&& body) noexcept {
    try {
      body();
    } catch (...) {
      countInternalError();
    }
  }
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
  // Bytes of encoded records run before the batch being run (every batch
  // submitEncoded took, in order: what JS counts as handed over), and where
  // the record being run starts on that count: a removal is dated there
  // (Delivery::gone), so a later publish JS never told of (Redate) is
  // ordered against it exactly.
  std::uint64_t bytesBase_ = 0;
  std::uint64_t position_ = 0;
  TopicStore store_;
  Delivery delivery_;  // core thread only
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::steady_timer sweep_;
  boost::asio::steady_timer pacing_;
  std::optional<std::int64_t> pacingArmedFor_;  // core thread only
  std::chrono::steady_clock::time_point start_;
  std::int64_t manualNow_ = 0;   // core thread only; 0 to kMaxClockMs
  bool runningBatch_ = false;    // core thread only: inside submitEncoded's handler
  bool wakeAfterBatch_ = false;  // core thread only

  // Core thread only: the answers of the batch being run (publishCompletions).
  std::vector<Completion> batchCompletions_;

  std::atomic<std::uint64_t> internalErrors_{0};

  std::mutex outboxMutex_;
  Batch outbox_;

  std::once_flag stopped_;
  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace deltacast
