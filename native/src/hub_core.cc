#include "deltacast/hub_core.h"

#include <algorithm>
#include <array>
#include <iterator>
#include <new>

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
  delivery_.setAudit(options_.audit);
  store_.reportRemovals(true);  // drained after every request and sweep (forwardRemovals)
  if (!options_.manualClock) scheduleSweep();
  thread_ = std::thread([this] {
    // Handlers catch what they throw (see Faults in the header); should an
    // exception escape one all the same, it is counted and the loop goes on,
    // so that the thread outlives it.
    for (;;) {
      try {
        io_.run();
        return;
      } catch (...) {
        countInternalError();
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
  const auto elapsed = std::chrono::steady_clock::now() - start_;
  return clockAdd(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(), 0);
}

void HubCore::scheduleSweep() {
  sweep_.expires_after(std::chrono::milliseconds(std::min(options_.sweepIntervalMs, kMaxDelayMs)));
  sweep_.async_wait([this](const boost::system::error_code& error) {
    if (error) return;
    // A fault in one sweep is counted; the next sweep is scheduled whatever happened.
    counting([this] {
      fault(FaultPoint::Sweep, 0);
      store_.advance(now());
      forwardRemovals();
      flushFrames();
    });
    counting([this] { armPacing(); });
    counting([this] { scheduleSweep(); });
  });
}

void HubCore::armPacing() {
  if (options_.manualClock) return;
  const std::optional<std::int64_t> next = delivery_.nextDeadline();
  if (!next) return;
  // At most kMaxDelayMs ahead: a later deadline is met by re-arming when this
  // timer fires, and the Asio deadline (nanoseconds) cannot overflow.
  const std::int64_t at = std::min(*next, clockAdd(now(), kMaxDelayMs));
  if (pacingArmedFor_ && *pacingArmedFor_ <= at) return;
  pacingArmedFor_ = at;
  pacing_.expires_at(start_ + std::chrono::milliseconds(at));
  pacing_.async_wait([this](const boost::system::error_code& error) {
    if (error) return;  // cancelled: re-armed earlier, or closing
    pacingArmedFor_.reset();
    counting([this] {
      fault(FaultPoint::Pacing, 0);
      delivery_.advance(now());
      flushFrames();
    });
    counting([this] { armPacing(); });
  });
}

// Subscribers hear of topics the store dropped (delete, TTL, memory budget).
void HubCore::forwardRemovals() {
  if (!store_.hasRemoved()) return;  // most requests remove nothing
  for (const RemovedTopic& removed : store_.takeRemoved()) delivery_.gone(removed, now(), position_);
}

void HubCore::submit(Request request) {
  boost::asio::post(io_, [this, request = std::move(request)]() mutable { run(request); });
}

void HubCore::submitEncoded(std::string records, std::vector<std::string> staged,
                            std::vector<std::uint32_t> answeredIds) {
  boost::asio::post(io_,
                    [this, records = std::move(records), staged = std::move(staged),
                     answeredIds = std::move(answeredIds)]() mutable { runEncoded(records, staged, answeredIds); });
}

void HubCore::runEncoded(const std::string& records, std::vector<std::string>& staged,
                         const std::vector<std::uint32_t>& answeredIds) {
  // One wake-up and one lock of the outbox for the answers of the whole
  // batch, however it ends.
  struct BatchScope {
    HubCore& core;
    std::size_t bytes;  // the batch's records, counted as run however it ends
    BatchScope(HubCore& c, std::size_t n) : core(c), bytes(n) {
      core.runningBatch_ = true;
      core.wakeAfterBatch_ = false;
    }
    ~BatchScope() {
      core.counting([this] { core.publishCompletions(); });
      core.runningBatch_ = false;
      core.bytesBase_ += bytes;
      core.position_ = core.bytesBase_;
      if (core.wakeAfterBatch_) core.notify_();
    }
  } scope(*this, records.size());
  batchCompletions_.reserve(answeredIds.size());
  // Decoded one record at a time and run a few records later: a batch of
  // 10,000 publishes is not first copied into 10,000 Requests, and the
  // records decoded but not yet run say which topics come next, so their
  // cache misses start early (TopicStore::prefetch, four stages: with
  // 100,000 topics each stage is otherwise a miss the run waits for).
  // Records are decoded straight into the ring's slots, which keep their
  // strings' capacity.
  constexpr std::size_t kAhead = 32;  // records decoded ahead of the one running; a power of two
  std::array<Request, kAhead> ring;
  std::array<TopicStore::Lookup, kAhead> lookups{};  // of each slot's topic, for the prefetch stages and the run
  std::size_t decodedCount = 0;
  std::size_t ran = 0;
  std::size_t answered = 0;  // answered requests run so far
  bool closed = false;
  // Only with many topics: below a few thousand they stay in the cache, and
  // the hints cost more than they save (measured: +12% a publish with one
  // topic, -4% with 100,000).
  const bool hint = store_.topicCount() >= kPrefetchTopics;
  const auto prefetch = [&](std::size_t index, int stage) {
    if (!hint || index >= decodedCount) return;
    const Request& ahead = ring[index % kAhead];
    if (!changesTopic(ahead.kind)) return;
    TopicStore::Lookup& lookup = lookups[index % kAhead];
    if (stage == 0) lookup = TopicStore::Lookup{nameHash(ahead.topic)};
    store_.prefetch(ahead.topic, lookup, stage);
  };
  // Stage distances, in records (about a microsecond each): a hint two
  // records ahead of the history slot it loads still left that load waiting
  // (perf, 100,000 topics: 17% of the core thread at it); six ahead, it no
  // longer shows.
  const auto runNext = [&] {
    prefetch(ran + kAhead / 2, 1);
    prefetch(ran + 6, 2);
    prefetch(ran + 3, 3);
    const std::size_t index = ran % kAhead;
    Request& request = ring[index];
    ++ran;
    position_ = bytesBase_ + request.offset;
    if (isAnswered(request.kind)) ++answered;
    // The hints' lookup of the topic, so the change does not look it up again.
    run(request, hint && changesTopic(request.kind) ? &lookups[index] : nullptr);
    closed = request.kind == RequestKind::Close;  // io_ is stopping; nothing after close runs
  };
  bool decoded = false;
  try {
    fault(FaultPoint::Decode, 0);
    decoded = static_cast<bool>(forEachRequest(
        records, staged, [&]() -> Request& { return ring[decodedCount % kAhead]; },
        [&](Request&) {
          ++decodedCount;
          prefetch(decodedCount - 1, 0);
          if (decodedCount - ran == kAhead) runNext();
          return !closed;
        }));
    while (decoded && !closed && ran < decodedCount) runNext();
  } catch (...) {
    decoded = false;
  }
  if (!decoded) {
    // Validated on the JS thread, so only a bug or a lack of memory gets
    // here. What was not run does not run; each call still waiting for an
    // answer gets one.
    countInternalError();
    for (std::size_t i = answered; i < answeredIds.size(); ++i) {
      Completion failed;
      failed.id = answeredIds[i];
      failed.code = ErrorCode::Internal;
      failed.message = "internal error: the hub could not decode this call's request";
      complete(std::move(failed));
    }
  }
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
  if (!delivery_.hasOutput()) return;  // most requests make no frames: nothing to take or lock
  std::vector<Outgoing> frames = delivery_.takeOutgoing();
  std::vector<Closing> closings = delivery_.takeClosings();  // after takeOutgoing: may close (and audit)
  std::vector<AuditEvent> audits = delivery_.takeAudits();
  std::vector<AuthRequest> auths = delivery_.takeAuthRequests();
  std::vector<Delivery::Want> wants = delivery_.takeWants();
  std::vector<Delivery::Want> dueWants = delivery_.takeDueWants();
  if (frames.empty() && closings.empty() && audits.empty() && auths.empty() && wants.empty() && dueWants.empty())
    return;
  bool wasEmpty = false;
  {
    std::lock_guard lock(outboxMutex_);
    wasEmpty = outbox_.empty();
    for (Outgoing& frame : frames) outbox_.frames.push_back(std::move(frame));
    for (Closing& closing : closings) outbox_.closings.push_back(std::move(closing));
    for (AuditEvent& event : audits) outbox_.audits.push_back(std::move(event));
    for (AuthRequest& auth : auths) outbox_.auths.push_back(std::move(auth));
    for (Delivery::Want& want : wants) outbox_.wants.push_back(std::move(want));
    for (Delivery::Want& want : dueWants) outbox_.dueWants.push_back(std::move(want));
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

// Frames first (see flushFrames); losing them to a fault does not lose the answer.
void HubCore::beforeAnswer(std::uint32_t id) noexcept {
  counting([&] {
    fault(FaultPoint::Complete, id);
    flushFrames();
  });
}

void HubCore::complete(Completion&& completion) noexcept {
  beforeAnswer(completion.id);
  counting([&] {
    if (runningBatch_) {
      // Kept until the batch ends (publishCompletions): JS is woken only
      // then anyway, and the outbox is locked once for all of them. Frames
      // made by later requests of the batch reach the outbox first, which
      // keeps the rule: a request's frames before its answer.
      batchCompletions_.push_back(std::move(completion));
      return;
    }
    bool wasEmpty = false;
    {
      std::lock_guard lock(outboxMutex_);
      wasEmpty = outbox_.empty();
      outbox_.completions.push_back(std::move(completion));
    }
    if (wasEmpty) wake();
  });
}

void HubCore::publishCompletions() {
  if (batchCompletions_.empty()) return;
  std::vector<Completion> completions;
  completions.swap(batchCompletions_);  // whatever happens, the next batch starts empty
  counting([this] { flushFrames(); });
  bool wasEmpty = false;
  {
    std::lock_guard lock(outboxMutex_);
    wasEmpty = outbox_.empty();
    if (outbox_.completions.empty()) {
      outbox_.completions.swap(completions);
    } else {
      outbox_.completions.insert(outbox_.completions.end(), std::make_move_iterator(completions.begin()),
                                 std::make_move_iterator(completions.end()));
    }
  }
  if (wasEmpty) wake();
}

bool HubCore::changesTopic(RequestKind kind) noexcept {
  return kind == RequestKind::PublishJson || kind == RequestKind::Patch || kind == RequestKind::Upsert ||
         kind == RequestKind::Remove || kind == RequestKind::Replicate;
}

void HubCore::run(Request& request, const TopicStore::Lookup* lookup) {
  const bool answers = isAnswered(request.kind);
  // Inside a batch the answer is written where it is kept until the batch
  // ends (batchCompletions_, reserved for the batch's answers), not moved
  // there afterwards; elsewhere (or should that fail) it is built here and
  // complete() appends it.
  Completion local;
  Completion* kept = nullptr;
  if (answers && runningBatch_ && request.kind != RequestKind::Close) {
    try {
      kept = &batchCompletions_.emplace_back();
    } catch (...) {
      countInternalError();
    }
  }
  Completion& completion = kept != nullptr ? *kept : local;
  completion.id = request.id;
  if (request.kind == RequestKind::Close) {
    // Changes whose publish already resolved go out before the hub stops;
    // the hub stops whatever happens while sending them.
    counting([&] { delivery_.flushAllPending(now()); });
    counting([&] {
      sweep_.cancel();
      pacing_.cancel();
    });
    complete(std::move(completion));
    io_.stop();  // run() returns; stop() on the JS thread then joins at once
    return;
  }
  ChangeResult result;
  const bool isChange = changesTopic(request.kind);
  bool expired = false;  // a held value applied and expired at once (below)
  // Before the commit: a throw is the caller's answer (nothing was committed).
  bool ran = false;
  try {
    fault(FaultPoint::Run, request.id);
    const auto change = [&](std::int64_t at) {
      if (request.kind == RequestKind::PublishJson) {
        store_.publishJsonFrom(request.topic, request.payload, request.changeId, at, result, lookup);
      } else {
        result = store_.patch(request.topic, request.payload, request.changeId, at);
      }
    };
    switch (request.kind) {
      case RequestKind::PublishJson:
      case RequestKind::Patch:
        if (!request.held) {
          change(now());
        } else if (delivery_.heldValueDropped(request.topic)) {
          // A value held by coalescing whose topic was removed after it was
          // published went with the topic: not applied, and answered as a
          // change that made nothing (flagged duplicate, so nobody takes it
          // for the store's state).
          result.duplicate = true;
        } else {
          // A held value is the publish its last hold stood for, dated then
          // (its topic's TTL counts from the publish, as without coalescing).
          // One that creates a topic whose TTL, so counted, a sweep has
          // passed since is expired at once: published then, it would have been.
          const std::int64_t at = std::min(now(), delivery_.lastHoldAt(request.topic).value_or(now()));
          const bool stale = store_.expiredSince(request.topic, at);
          change(at);
          expired = stale && result.created && store_.expire(request.topic);
        }
        break;
      case RequestKind::Upsert:
        result = store_.upsert(request.topic, request.key, std::move(request.payload), request.changeId, now());
        break;
      case RequestKind::Remove: result = store_.remove(request.topic, request.key, request.changeId, now()); break;
      case RequestKind::Replicate:
        result = store_.replicate(request.topic, request.key, static_cast<std::uint64_t>(request.ms),
                                  request.replicaMode, std::move(request.payload), now());
        break;
      case RequestKind::Delete: completion.found = store_.erase(request.topic); break;
      case RequestKind::Advance:
        if (options_.manualClock) manualNow_ = clockAdd(manualNow_, request.ms);
        store_.advance(now());
        delivery_.advance(now());
        break;
      case RequestKind::Connect:
        delivery_.connect(request.connection, std::move(request.principal), now(), request.acks, request.expiresAt,
                          std::move(request.key));
        break;
      case RequestKind::Disconnect: delivery_.disconnect(request.connection, now()); break;
      case RequestKind::Reauth:
        delivery_.reauth(request.connection, request.reauth, std::move(request.principal), request.expiresAt, now());
        break;
      case RequestKind::Receive: delivery_.receive(request.connection, request.payload, now()); break;
      case RequestKind::Congestion: delivery_.congestion(request.connection, request.ms != 0, now()); break;
      case RequestKind::Refuse:
        delivery_.refuse(request.connection, request.ms == 0 ? kInvalidMessage : kUnknownMessage, request.payload,
                         now());
        break;
      case RequestKind::Hold:
        if (validateTopic(request.topic, options_.store.maxTopicLength)) {
          store_.held(request.topic, now());  // its TTL and eviction order count from the publish, not the flush
          delivery_.hold(request.topic, request.lane, now(), request.heldId);
        }
        break;
      case RequestKind::Release: delivery_.releasedEarly(request.topic, now()); break;
      case RequestKind::Redate:
        if (validateTopic(request.topic, options_.store.maxTopicLength)) {
          const std::int64_t at = now() - std::min<std::int64_t>(request.ms, now());
          store_.held(request.topic, at);
          delivery_.redate(request.topic, request.lane, at, request.position, now(), request.releaseFollows);
        }
        break;
      case RequestKind::Close: break;  // above
    }
    ran = true;
  } catch (const std::bad_alloc&) {
    countInternalError();
    completion.code = ErrorCode::TooLarge;
    completion.message = "out of memory while handling the request";
  } catch (const std::exception& error) {
    countInternalError();
    completion.code = ErrorCode::Internal;
    completion.message = std::string("internal error: ") + error.what();  // a bug
  } catch (...) {
    countInternalError();
    completion.code = ErrorCode::Internal;
    completion.message = "internal error";
  }
  // After the commit: what the store did stands, and so does its answer; a
  // fault while telling subscribers is counted, not returned.
  counting([&] {
    fault(FaultPoint::AfterCommit, request.id);
    forwardRemovals();
    if (ran && isChange && result.changed && !expired) {
      delivery_.changed(request.topic, result, now(), request.lane, request.changeId, request.held);
    }
    // The held value asked for is in (or was refused): the topic's flush goes now.
    if (request.release) {
      delivery_.released(request.topic, now());
    } else if (request.held) {
      delivery_.releasedEarly(request.topic, now());
    }
  });
  if (ran && isChange) {  // after delivery, which reads result.epoch
    completion.code = result.status.code();
    completion.message = result.status.message();
    completion.changed = result.changed;
    completion.duplicate = result.duplicate;
    completion.version = result.version;
    completion.epoch = std::move(result.epoch);
    store_.recycle(std::move(result.ops));  // delivery has made its frames of it
  }
  if (kept != nullptr) {
    beforeAnswer(completion.id);  // the answer itself is already in its place
  } else if (answers) {
    complete(std::move(completion));
  } else {
    counting([this] { flushFrames(); });  // what a connection request causes is frames
  }
  counting([this] { armPacing(); });
}

}  // namespace deltacast
