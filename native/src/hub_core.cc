#include "deltacast/hub_core.h"

namespace deltacast {

HubCore::HubCore(HubOptions options, std::function<void()> notify)
    : options_(std::move(options)),
      notify_(std::move(notify)),
      store_(options_.store),
      delivery_(store_, AccessRules(options_.access), options_.delivery, options_.lanes, options_.pacing),
      work_(boost::asio::make_work_guard(io_)),
      sweep_(io_),
      pacing_(io_),
      start_(std::chrono::steady_clock::now()) {
  store_.reportRemovals(true);  // drained after every request and sweep (forwardRemovals)
  if (!options_.manualClock) scheduleSweep();
  thread_ = std::thread([this] {
    // An exception escaping a handler would end the thread and leave every
    // later request unanswered; handlers report errors as Completions, and
    // this loop keeps the thread alive whatever happens.
    for (;;) {
      try {
        io_.run();
        return;
      } catch (...) {
      }
    }
  });
}

HubCore::~HubCore() { stop(); }

void HubCore::stop() {
  std::call_once(stopped_, [this] {
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  });
}

std::int64_t HubCore::now() const {
  if (options_.manualClock) return manualNow_;
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start_).count();
}

void HubCore::scheduleSweep() {
  sweep_.expires_after(std::chrono::milliseconds(options_.sweepIntervalMs));
  sweep_.async_wait([this](const boost::system::error_code& error) {
    if (error) return;
    store_.advance(now());
    forwardRemovals();
    flushFrames();
    armPacing();
    scheduleSweep();
  });
}

void HubCore::armPacing() {
  if (options_.manualClock) return;
  const std::optional<std::int64_t> next = delivery_.nextDeadline();
  if (!next || (pacingArmedFor_ && *pacingArmedFor_ <= *next)) return;
  pacingArmedFor_ = *next;
  pacing_.expires_at(start_ + std::chrono::milliseconds(*next));
  pacing_.async_wait([this](const boost::system::error_code& error) {
    if (error) return;  // cancelled: re-armed earlier, or closing
    pacingArmedFor_.reset();
    delivery_.advance(now());
    flushFrames();
    armPacing();
  });
}

// Subscribers hear of topics the store dropped (delete, TTL, memory budget).
void HubCore::forwardRemovals() {
  for (const RemovedTopic& removed : store_.takeRemoved()) delivery_.gone(removed, now());
}

void HubCore::submit(Request request) {
  boost::asio::post(io_, [this, request = std::move(request)]() mutable { run(request); });
}

void HubCore::submitEncoded(std::string records, std::vector<std::string> staged) {
  boost::asio::post(io_, [this, records = std::move(records), staged = std::move(staged)]() mutable {
    std::vector<Request> requests;
    // Validated on the JS thread; a failure here would be a bug in the binding.
    if (!decodeRequests(records, staged, requests)) return;
    runningBatch_ = true;
    wakeAfterBatch_ = false;
    for (Request& request : requests) {
      run(request);
      if (request.kind == RequestKind::Close) break;  // io_ is stopping; nothing after close runs
    }
    runningBatch_ = false;
    if (wakeAfterBatch_) notify_();
  });
}

HubCore::Batch HubCore::take() {
  Batch taken;
  std::lock_guard lock(outboxMutex_);
  std::swap(taken, outbox_);
  return taken;
}

// Frames go to the outbox before the completion of the request that made
// them, so a caller awaiting that request finds them already sent.
void HubCore::flushFrames() {
  std::vector<Outgoing> frames = delivery_.takeOutgoing();
  std::vector<Closing> closings = delivery_.takeClosings();
  if (frames.empty() && closings.empty()) return;
  bool wasEmpty = false;
  {
    std::lock_guard lock(outboxMutex_);
    wasEmpty = outbox_.completions.empty() && outbox_.frames.empty() && outbox_.closings.empty();
    for (Outgoing& frame : frames) outbox_.frames.push_back(std::move(frame));
    for (Closing& closing : closings) outbox_.closings.push_back(std::move(closing));
  }
  if (wasEmpty) wake();
}

// One thread-safe function call per batch of requests, not per answer: a
// thousand publishes handed over together are answered in one drain.
void HubCore::wake() {
  if (runningBatch_) {
    wakeAfterBatch_ = true;
  } else {
    notify_();
  }
}

void HubCore::complete(Completion completion) {
  flushFrames();
  bool wasEmpty = false;
  {
    std::lock_guard lock(outboxMutex_);
    wasEmpty = outbox_.completions.empty() && outbox_.frames.empty() && outbox_.closings.empty();
    outbox_.completions.push_back(std::move(completion));
  }
  if (wasEmpty) wake();
}

namespace {

// Requests whose caller waits for a Completion (the others cause frames only).
// JS matches answers to calls by their order, so exactly these are answered.
bool answered(RequestKind kind) {
  switch (kind) {
    case RequestKind::Connect:
    case RequestKind::Disconnect:
    case RequestKind::Receive:
    case RequestKind::Congestion: return false;
    default: return true;
  }
}

}  // namespace

void HubCore::run(Request& request) {
  Completion completion;
  completion.id = request.id;
  ChangeResult result;
  const bool isChange = request.kind == RequestKind::PublishJson || request.kind == RequestKind::Patch ||
                        request.kind == RequestKind::Upsert || request.kind == RequestKind::Remove;
  // A failure the handlers did not expect: the caller gets an answer rather
  // than a promise that never settles (connection requests have nobody waiting).
  const auto fail = [&](ErrorCode code, std::string message) {
    if (!answered(request.kind)) return;
    completion.code = code;
    completion.message = std::move(message);
    complete(std::move(completion));
  };
  try {
    switch (request.kind) {
      case RequestKind::PublishJson:
        result = store_.publishJson(request.topic, std::move(request.payload), request.changeId, now());
        break;
      case RequestKind::Patch: result = store_.patch(request.topic, request.payload, request.changeId, now()); break;
      case RequestKind::Upsert:
        result = store_.upsert(request.topic, request.key, std::move(request.payload), request.changeId, now());
        break;
      case RequestKind::Remove: result = store_.remove(request.topic, request.key, request.changeId, now()); break;
      case RequestKind::Delete: completion.found = store_.erase(request.topic); break;
      case RequestKind::Advance:
        if (options_.manualClock) manualNow_ += request.ms;
        store_.advance(now());
        delivery_.advance(now());
        break;
      case RequestKind::Connect:
        delivery_.connect(request.connection, std::move(request.principal), now(), request.acks);
        break;
      case RequestKind::Disconnect: delivery_.disconnect(request.connection); break;
      case RequestKind::Receive: delivery_.receive(request.connection, request.payload, now()); break;
      case RequestKind::Congestion: delivery_.congestion(request.connection, request.ms != 0, now()); break;
      case RequestKind::Close:
        // Changes whose publish already resolved go out before the hub stops.
        delivery_.flushAllPending(now());
        sweep_.cancel();
        pacing_.cancel();
        complete(std::move(completion));
        io_.stop();  // run() returns; stop() on the JS thread then joins at once
        return;
    }
    forwardRemovals();
    if (isChange && result.changed) delivery_.changed(request.topic, result, now(), request.lane);
  } catch (const std::bad_alloc&) {
    fail(ErrorCode::TooLarge, "out of memory while handling the request");
    return;
  } catch (const std::exception& error) {
    fail(ErrorCode::Internal, std::string("internal error: ") + error.what());  // a bug
    return;
  } catch (...) {
    fail(ErrorCode::Internal, "internal error");
    return;
  }
  if (!answered(request.kind)) {
    flushFrames();  // what a connection request causes is frames
  } else {
    if (isChange) {
      completion.code = result.status.code();
      completion.message = result.status.message();
      completion.changed = result.changed;
      completion.duplicate = result.duplicate;
      completion.version = result.version;
      completion.epoch = std::move(result.epoch);
    }
    complete(std::move(completion));
  }
  armPacing();
}

}  // namespace deltacast
