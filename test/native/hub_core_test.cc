#include "deltacast/hub_core.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace deltacast {
namespace {

// Collects completions the way the binding does: notify wakes the "JS
// thread" (here the test thread), which takes everything in the outbox.
class Harness {
 public:
  explicit Harness(HubOptions options)
      : core_(std::move(options), [this] {
          std::lock_guard lock(mutex_);
          ++notifications_;
          cv_.notify_all();
        }) {}

  Completion call(Request request) {
    const std::uint32_t id = request.id;
    core_.submit(std::move(request));
    return waitFor(id);
  }

  // The answer to `id`; a lost answer fails the test after `timeout` instead of
  // hanging it (the returned completion then has code Internal, message "lost").
  Completion waitFor(std::uint32_t id, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      for (auto it = received_.begin(); it != received_.end(); ++it) {
        if (it->id == id) {
          Completion found = *it;
          received_.erase(it);
          return found;
        }
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        ADD_FAILURE() << "no answer to request " << id << " within " << timeout.count() << " ms";
        Completion lost;
        lost.id = id;
        lost.code = ErrorCode::Internal;
        lost.message = "lost";
        return lost;
      }
      std::unique_lock lock(mutex_);
      cv_.wait_for(lock, std::chrono::milliseconds(10));
      lock.unlock();
      for (Completion& c : core_.take().completions) received_.push_back(std::move(c));
    }
  }

  HubCore& core() { return core_; }
  int notifications() {
    std::lock_guard lock(mutex_);
    return notifications_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int notifications_ = 0;
  std::vector<Completion> received_;
  HubCore core_;  // last: its thread may call notify as soon as it exists
};

Request publish(std::uint32_t id, std::string topic, std::string json) {
  Request r;
  r.id = id;
  r.kind = RequestKind::PublishJson;
  r.topic = std::move(topic);
  r.payload = std::move(json);
  return r;
}

TEST(HubCore, RunsRequestsInOrderOnItsThread) {
  Harness hub({});
  for (std::uint32_t i = 1; i <= 100; ++i) hub.core().submit(publish(i, "t", "{\"v\":" + std::to_string(i) + "}"));
  Completion last = hub.waitFor(100);
  EXPECT_EQ(last.version, 100u);
  EXPECT_EQ(hub.core().get("t")->json, R"({"v":100})");
  EXPECT_GE(hub.notifications(), 1);
}

TEST(HubCore, ErrorsComeBackAsCompletions) {
  Harness hub({});
  Completion bad = hub.call(publish(1, "t", "{"));
  EXPECT_EQ(bad.code, ErrorCode::InvalidJson);
  EXPECT_NE(bad.message.find("at byte"), std::string::npos);
  Completion good = hub.call(publish(2, "t", "1"));
  EXPECT_EQ(good.code, ErrorCode::Ok);
  EXPECT_TRUE(good.changed);
}

TEST(HubCore, ManualClockMovesOnlyWithAdvance) {
  HubOptions options;
  options.manualClock = true;
  options.store.ttl = {{"**", 1000}};
  Harness hub(options);
  hub.call(publish(1, "t", "1"));
  Request advance;
  advance.id = 2;
  advance.kind = RequestKind::Advance;
  advance.ms = 999;
  hub.call(advance);
  EXPECT_NE(hub.core().get("t"), nullptr);
  advance.id = 3;
  advance.ms = 1;
  hub.call(advance);
  EXPECT_EQ(hub.core().get("t"), nullptr);
}

TEST(HubCore, RealClockSweepsTtl) {
  HubOptions options;
  options.sweepIntervalMs = 5;
  options.store.ttl = {{"**", 20}};
  Harness hub(options);
  hub.call(publish(1, "t", "1"));
  for (int i = 0; i < 400 && hub.core().get("t") != nullptr; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(hub.core().get("t"), nullptr);
}

// Coalescing: a held value is the publish its last hold stood for. Its
// topic's TTL counts from that hold, and a removal after it drops the value.
TEST(HubCore, AHeldValueIsDatedAtItsHoldAndDroppedWhenItsTopicWentFirst) {
  HubOptions options;
  options.manualClock = true;
  options.store.ttl = {{"**", 100}};
  Harness hub(options);
  std::uint32_t id = 0;
  const auto advance = [&](std::int64_t ms) {
    Request r;
    r.id = ++id;
    r.kind = RequestKind::Advance;
    r.ms = ms;
    hub.call(r);
  };
  const auto hold = [&](const char* topic) {
    Request r;
    r.kind = RequestKind::Hold;
    r.topic = topic;
    hub.core().submit(std::move(r));  // not answered: the next call runs after it
  };
  const auto release = [&](const char* topic, std::string json, bool asked = true) {
    Request r = publish(++id, topic, std::move(json));
    r.release = asked;  // else released early (another call on the topic)
    r.held = true;
    return hub.call(std::move(r));
  };
  ASSERT_EQ(hub.call(publish(++id, "t", "0")).version, 1u);
  advance(10);
  hold("t");  // the publish at 10
  advance(50);
  Completion applied = release("t", "1");  // its flush asked for it at 60
  EXPECT_TRUE(applied.changed);
  EXPECT_EQ(applied.version, 2u);
  advance(49);
  EXPECT_NE(hub.core().get("t"), nullptr);
  advance(1);  // 110: 100 ms after the publish, not after the flush
  EXPECT_EQ(hub.core().get("t"), nullptr);

  // Held, then expired before its flush: the value went with the topic.
  ASSERT_EQ(hub.call(publish(++id, "u", "0")).version, 1u);
  hold("u");
  advance(150);
  Completion dropped = release("u", "1");
  EXPECT_EQ(dropped.code, ErrorCode::Ok);
  EXPECT_FALSE(dropped.changed);
  EXPECT_TRUE(dropped.duplicate) << "answered as a change that made nothing";
  EXPECT_EQ(dropped.version, 0u);
  EXPECT_EQ(hub.core().get("u"), nullptr) << "not brought back";
  // The release ended it: the next held value is applied.
  hold("u");
  EXPECT_TRUE(release("u", "2", false).changed);
  EXPECT_EQ(hub.core().get("u")->json, "2");

  // Held for a topic the store does not hold, and asked for after a sweep
  // passed its TTL: created and expired at once, as the publish would have been.
  hold("v");
  advance(100);
  Completion stale = release("v", "1");
  EXPECT_TRUE(stale.changed);
  EXPECT_EQ(stale.version, 1u);
  EXPECT_EQ(hub.core().get("v"), nullptr);
  EXPECT_EQ(hub.core().stats().expirations, 4u);  // t, u twice, v
}

TEST(HubCore, CloseAnswersThenStops) {
  Harness hub({});
  hub.core().submit(publish(1, "t", "1"));
  Request close;
  close.id = 2;
  close.kind = RequestKind::Close;
  EXPECT_EQ(hub.call(close).code, ErrorCode::Ok);
  hub.core().stop();
  hub.core().stop();  // idempotent
  EXPECT_EQ(hub.core().get("t")->json, "1");
}

TEST(HubCore, ALostAnswerFailsInsteadOfHanging) {
  Harness hub({});
  Completion lost;
  EXPECT_NONFATAL_FAILURE(lost = hub.waitFor(77, std::chrono::milliseconds(50)), "no answer to request 77");
  EXPECT_EQ(lost.id, 77u);
  EXPECT_EQ(lost.code, ErrorCode::Internal);
  EXPECT_EQ(lost.message, "lost");
}

// Runs `stop` on another thread; false when it has not returned within `timeout`.
// A stop that hangs ends the test process (abort) rather than the test hanging.
bool stopsWithin(HubCore& core, std::chrono::seconds timeout) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> stopped = done->get_future();
  std::thread stopper([&core, done] {
    core.stop();
    done->set_value();
  });
  if (stopped.wait_for(timeout) != std::future_status::ready) {
    std::fprintf(stderr, "HubCore::stop did not return within %lld s\n", static_cast<long long>(timeout.count()));
    std::abort();
  }
  stopper.join();
  return true;
}

TEST(HubCore, StopWithWorkQueuedDoesNotHang) {
  for (int round = 0; round < 20; ++round) {
    HubCore core({}, [] {});
    constexpr std::uint32_t kQueued = 1000;
    for (std::uint32_t i = 0; i < kQueued; ++i) core.submit(publish(i, "t" + std::to_string(i % 7), "[1,2,3]"));
    ASSERT_TRUE(stopsWithin(core, std::chrono::seconds(20))) << "round " << round;
    // Requests not yet run are dropped; those that ran were answered in order, once each.
    const HubCore::Batch left = core.take();
    ASSERT_LE(left.completions.size(), kQueued) << "round " << round;
    for (std::size_t k = 0; k < left.completions.size(); ++k) {
      EXPECT_EQ(left.completions[k].id, k) << "round " << round;
      EXPECT_EQ(left.completions[k].code, ErrorCode::Ok) << "round " << round;
    }
    // Every topic holds what its answered publishes wrote, and nothing else.
    const std::size_t ran = left.completions.size();
    for (std::uint32_t topic = 0; topic < 7; ++topic) {
      const bool published = ran > topic;
      EXPECT_EQ(core.get("t" + std::to_string(topic)) != nullptr, published) << "round " << round;
    }
    // Stopped means stopped: a later request is not run.
    core.submit(publish(kQueued, "late", "1"));
    EXPECT_EQ(core.get("late"), nullptr);
    EXPECT_TRUE(core.take().completions.empty());
  }
}

// PublishJson records in their wire form (request.h).
std::string publishRecord(std::uint32_t id, std::string_view topic, std::string_view json) {
  std::string out;
  const auto u32 = [&](std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i) & 0xff));
  };
  out.push_back(0);  // PublishJson
  u32(id);
  u32(static_cast<std::uint32_t>(topic.size()));
  out.append(topic);
  u32(static_cast<std::uint32_t>(json.size()));
  out.append(json);
  u32(0);            // no change id
  out.push_back(0);  // the topic's lane
  return out;
}

TEST(HubCore, ABatchIsAnsweredOnceEachInOrderAfterEarlierAnswers) {
  HubOptions options;
  options.manualClock = true;
  HubCore core(options, [] {});
  // An answer already waiting in the outbox when the batch ends.
  core.submit(publish(1, "first", "1"));
  constexpr std::uint32_t kBatch = 1000;
  std::string records;
  for (std::uint32_t i = 0; i < kBatch; ++i) {
    records += publishRecord(2 + i, "t" + std::to_string(i % 10), "{\"v\":" + std::to_string(i) + "}");
  }
  std::size_t count = 0;
  std::vector<std::uint32_t> ids;
  ASSERT_TRUE(validateRequests(records, 0, count, &ids));
  ASSERT_EQ(count, kBatch);
  core.submitEncoded(records, {}, ids);
  std::vector<Completion> answers;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (answers.size() < kBatch + 1 && std::chrono::steady_clock::now() < deadline) {
    for (Completion& c : core.take().completions) answers.push_back(std::move(c));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (Completion& c : core.take().completions) answers.push_back(std::move(c));  // none more
  ASSERT_EQ(answers.size(), kBatch + 1);
  for (std::uint32_t k = 0; k < answers.size(); ++k) {
    EXPECT_EQ(answers[k].id, k + 1);
    EXPECT_EQ(answers[k].code, ErrorCode::Ok) << answers[k].message;
  }
  // Topic t<j> got publishes j, j + 10, ...: its version counts them.
  EXPECT_EQ(answers.back().version, kBatch / 10);
  EXPECT_EQ(core.get("t9")->json, "{\"v\":" + std::to_string(kBatch - 1) + "}");
}

}  // namespace
}  // namespace deltacast
