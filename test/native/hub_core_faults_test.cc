// HubCore under faults: exceptions thrown on the core thread at the points a
// test names (HubOptions::faultHook). Every call is answered exactly once, in
// order and under its own id; the sweep and the pacing timer survive; a
// committed change is reported as committed; every fault is counted.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

#include "deltacast/hub_core.h"

namespace deltacast {
namespace {

using namespace std::chrono_literals;

// The test thread plays the JS thread: it takes the outbox only when the core
// notifies, so a lost notification (a batch left "running") fails the test
// by timing out instead of being hidden by polling.
class Harness {
 public:
  explicit Harness(HubOptions options)
      : core_(std::move(options), [this] {
          std::lock_guard lock(mutex_);
          ++notifications_;
          cv_.notify_all();
        }) {}

  // The next `n` answers, in the order the core gave them; fails after 10 s.
  std::vector<Completion> answers(std::size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (received_.size() < n) {
      std::unique_lock lock(mutex_);
      if (!cv_.wait_until(lock, deadline, [this] { return notifications_ > seen_; })) break;
      seen_ = notifications_;
      lock.unlock();
      HubCore::Batch batch = core_.take();
      for (Completion& c : batch.completions) received_.push_back(std::move(c));
      for (Outgoing& f : batch.frames) frames_.push_back(*f.frame);
    }
    EXPECT_GE(received_.size(), n) << "answers missing after 10 s";
    std::vector<Completion> out;
    for (std::size_t i = 0; i < n && !received_.empty(); ++i) {
      out.push_back(std::move(received_.front()));
      received_.erase(received_.begin());
    }
    return out;
  }

  // Waits (at most 10 s) until `done()` holds, taking the outbox meanwhile.
  template <class Done>
  bool eventually(Done done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(2ms);
      HubCore::Batch batch = core_.take();
      for (Completion& c : batch.completions) received_.push_back(std::move(c));
      for (Outgoing& f : batch.frames) frames_.push_back(*f.frame);
    }
    return true;
  }

  HubCore& core() { return core_; }
  const std::vector<std::string>& frames() const { return frames_; }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int notifications_ = 0;
  int seen_ = 0;
  std::vector<Completion> received_;
  std::vector<std::string> frames_;
  HubCore core_;  // last: its thread may call notify as soon as it exists
};

// Records in their wire form (request.h), as lib/requests.js writes them.
class Records {
 public:
  Records& publish(std::uint32_t id, std::string_view topic, std::string_view json) {
    u8(0);
    u32(id);
    str(topic);
    str(json);
    str("");
    u8(0);
    return *this;
  }
  Records& connect(double connection) {
    u8(7);
    f64(connection);
    str("");
    u32(0);
    u8(1);    // acks
    f64(-1);  // no expiry
    str("");  // transport
    return *this;
  }
  Records& receive(double connection, std::string_view message) {
    u8(9);
    f64(connection);
    str(message);
    return *this;
  }
  Records& erase(std::uint32_t id, std::string_view topic) {
    u8(4);
    u32(id);
    str(topic);
    return *this;
  }
  Records& close(std::uint32_t id) {
    u8(6);
    u32(id);
    return *this;
  }
  // A publish whose value is the `index`-th staged payload.
  Records& publishStaged(std::uint32_t id, std::string_view topic, std::uint32_t index) {
    u8(0);
    u32(id);
    str(topic);
    u32(kStagedPayload);
    u32(index);
    str("");
    u8(0);
    return *this;
  }
  // Submits the records as the binding does: validated, with the answered ids.
  void submitTo(HubCore& core, std::vector<std::string> staged = {}) {
    std::size_t count = 0;
    std::vector<std::uint32_t> ids;
    ASSERT_TRUE(validateRequests(bytes_, staged.size(), count, &ids));
    core.submitEncoded(bytes_, std::move(staged), ids);
  }

 private:
  void u8(std::uint8_t v) { bytes_.push_back(static_cast<char>(v)); }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) bytes_.push_back(static_cast<char>(v >> (8 * i) & 0xff));
  }
  void f64(double v) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof bits);
    for (int i = 0; i < 8; ++i) bytes_.push_back(static_cast<char>(bits >> (8 * i) & 0xff));
  }
  void str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    bytes_.append(s);
  }
  std::string bytes_;
};

// A hook that throws at `point` for request `id` (0: any), `times` times.
FaultHook throwAt(FaultPoint point, std::uint32_t id, int times = 1) {
  auto left = std::make_shared<std::atomic<int>>(times);
  return [=](FaultPoint at, std::uint32_t requestId) {
    if (at == point && (id == 0 || requestId == id) && left->fetch_sub(1) > 0) throw std::runtime_error("injected");
  };
}

TEST(HubCoreFaults, AThrowBeforeARequestAnswersThatRequestAndNoOther) {
  HubOptions options;
  options.faultHook = throwAt(FaultPoint::Run, 2);
  Harness hub(options);
  Records().publish(1, "t", "1").publish(2, "t", "2").publish(3, "t", "3").submitTo(hub.core());
  const std::vector<Completion> a = hub.answers(3);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].id, 1u);
  EXPECT_EQ(a[0].code, ErrorCode::Ok);
  EXPECT_EQ(a[0].version, 1u);
  EXPECT_EQ(a[1].id, 2u);
  EXPECT_EQ(a[1].code, ErrorCode::Internal);
  EXPECT_NE(a[1].message.find("injected"), std::string::npos);
  EXPECT_EQ(a[2].id, 3u);
  EXPECT_EQ(a[2].code, ErrorCode::Ok);
  EXPECT_EQ(a[2].version, 2u);  // request 2 committed nothing
  EXPECT_EQ(hub.core().get("t")->json, "3");
  EXPECT_EQ(hub.core().internalErrors(), 1u);
}

TEST(HubCoreFaults, AThrowWhileCompletingLeavesNoBatchStateBehind) {
  HubOptions options;
  options.faultHook = throwAt(FaultPoint::Complete, 2);
  Harness hub(options);
  Records().publish(1, "t", "1").publish(2, "t", "2").publish(3, "t", "3").submitTo(hub.core());
  const std::vector<Completion> a = hub.answers(3);
  ASSERT_EQ(a.size(), 3u);
  for (std::uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(a[i].id, i + 1);
    EXPECT_EQ(a[i].code, ErrorCode::Ok);
    EXPECT_EQ(a[i].version, i + 1);
  }
  // The next batch is answered and notified as usual (nothing left "running").
  Records().publish(4, "u", "4").submitTo(hub.core());
  const std::vector<Completion> b = hub.answers(1);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].id, 4u);
  EXPECT_EQ(b[0].code, ErrorCode::Ok);
  EXPECT_EQ(hub.core().internalErrors(), 1u);
}

TEST(HubCoreFaults, AChangeTheStoreCommittedIsNeverReportedFailed) {
  HubOptions options;
  options.faultHook = throwAt(FaultPoint::AfterCommit, 2);
  options.manualClock = true;
  options.lanes = {{"**", Lane::Critical}};
  Harness hub(options);
  Records()
      .connect(1)
      .receive(1, R"({"t":"sub","topic":"t"})")
      .publish(1, "t", "1")
      .publish(2, "t", "2")
      .submitTo(hub.core());
  const std::vector<Completion> a = hub.answers(2);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[1].id, 2u);
  EXPECT_EQ(a[1].code, ErrorCode::Ok);
  EXPECT_TRUE(a[1].changed);
  EXPECT_EQ(a[1].version, 2u);
  EXPECT_EQ(hub.core().get("t")->version, 2u);
  EXPECT_EQ(hub.core().internalErrors(), 1u);
  // Later changes reach the subscriber.
  Records().publish(3, "t", "3").submitTo(hub.core());
  EXPECT_EQ(hub.answers(1).at(0).version, 3u);
  bool sawVersion3 = false;
  for (const std::string& frame : hub.frames())
    sawVersion3 = sawVersion3 || frame.find("\"version\":3") != std::string::npos;
  EXPECT_TRUE(sawVersion3);
}

TEST(HubCoreFaults, ADecodeFailureAnswersEveryCallOfTheBatch) {
  HubOptions options;
  options.faultHook = throwAt(FaultPoint::Decode, 0);
  Harness hub(options);
  Records().publish(1, "t", "1").connect(9).publish(2, "t", "2").submitTo(hub.core());
  const std::vector<Completion> a = hub.answers(2);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].id, 1u);
  EXPECT_EQ(a[0].code, ErrorCode::Internal);
  EXPECT_EQ(a[1].id, 2u);
  EXPECT_EQ(a[1].code, ErrorCode::Internal);
  EXPECT_EQ(hub.core().get("t"), nullptr);
  Records().publish(3, "t", "3").submitTo(hub.core());
  EXPECT_EQ(hub.answers(1).at(0).code, ErrorCode::Ok);
  EXPECT_EQ(hub.core().internalErrors(), 1u);
}

TEST(HubCoreFaults, AThrowInTheSweepDoesNotStopSweeping) {
  HubOptions options;
  options.sweepIntervalMs = 1;
  options.store.ttl = {{"**", 1}};
  options.faultHook = throwAt(FaultPoint::Sweep, 0, 3);
  Harness hub(options);
  Records().publish(1, "t", "1").submitTo(hub.core());
  EXPECT_EQ(hub.answers(1).at(0).code, ErrorCode::Ok);
  EXPECT_TRUE(hub.eventually([&] { return hub.core().get("t") == nullptr; })) << "the topic never expired";
  EXPECT_EQ(hub.core().internalErrors(), 3u);
}

TEST(HubCoreFaults, AThrowWhenThePacingTimerFiresDoesNotStopDelivery) {
  HubOptions options;
  options.pacing.normalDebounceMs = 1;
  options.pacing.normalMaxWaitMs = 1;
  options.faultHook = throwAt(FaultPoint::Pacing, 0, 1);
  Harness hub(options);
  Records().connect(1).receive(1, R"({"t":"sub","topic":"t"})").publish(1, "t", "1").submitTo(hub.core());
  hub.answers(1);
  Records().publish(2, "t", "2").submitTo(hub.core());
  hub.answers(1);
  EXPECT_TRUE(hub.eventually([&] {
    // v2 arrives as a snap (v1 and v2 flushed together) or as a patch to 2
    // (flushed apart), depending on when the timer fired
    for (const std::string& frame : hub.frames())
      if (frame.find("\"version\":2") != std::string::npos || frame.find("\"to\":2") != std::string::npos) return true;
    return false;
  })) << "the paced change was never sent";
  EXPECT_GE(hub.core().internalErrors(), 1u);
}

TEST(HubCoreFaults, TheManualClockSaturatesInsteadOfOverflowing) {
  HubOptions options;
  options.manualClock = true;
  options.store.ttl = {{"**", 1000}};
  Harness hub(options);
  Records().publish(1, "t", "1").submitTo(hub.core());
  hub.answers(1);
  // 2^53 - 1 ms, 1100 times: about 2^63 ms, past any signed 64-bit clock
  // (UBSan fails this test if the addition overflows).
  for (std::uint32_t i = 0; i < 1100; ++i) {
    Request advance;
    advance.id = 100 + i;
    advance.kind = RequestKind::Advance;
    advance.ms = 9007199254740991;
    hub.core().submit(std::move(advance));
  }
  const std::vector<Completion> a = hub.answers(1100);
  ASSERT_EQ(a.size(), 1100u);
  EXPECT_EQ(a.back().id, 1199u);
  EXPECT_EQ(a.back().code, ErrorCode::Ok);
  EXPECT_EQ(hub.core().get("t"), nullptr);  // expired on the first advance
  EXPECT_EQ(hub.core().internalErrors(), 0u);
}

TEST(ClockAdd, SaturatesAtBothEnds) {
  EXPECT_EQ(clockAdd(0, 5), 5);
  EXPECT_EQ(clockAdd(kMaxClockMs - 1, 5), kMaxClockMs);
  EXPECT_EQ(clockAdd(kMaxClockMs, kMaxDelayMs), kMaxClockMs);
  EXPECT_EQ(clockAdd(std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::max()), kMaxClockMs);
  EXPECT_EQ(clockAdd(3, -5), 0);
  EXPECT_EQ(clockAdd(std::numeric_limits<std::int64_t>::min(), -1), 0);
}

// ---- the ring of decoded requests (runEncoded) ------------------------------------

// Batches of every length around the ring's 16, mixing publishes, deletes a
// few records after a publish to the same topic (whose prefetch stages then
// find it gone), re-creations, connections and subscriptions, and staged
// payloads: each answer is what running the records one by one gives (a map
// of versions as the model).
TEST(HubCoreRing, BatchesOfEveryLengthMatchAModel) {
  HubOptions options;
  options.manualClock = true;
  options.lanes = {{"**", Lane::Critical}};
  Harness hub(options);
  std::mt19937 random(3);
  std::map<std::string, std::pair<std::string, std::uint64_t>> model;  // topic: (value, version)
  std::uint32_t id = 0;
  double connection = 0;
  for (const std::size_t length : {1u, 2u, 7u, 15u, 16u, 17u, 31u, 32u, 33u, 100u}) {
    Records records;
    std::vector<std::string> staged;
    struct Expect {
      std::uint32_t id;
      bool isDelete;
      bool found;
      bool changed;
      std::uint64_t version;
    };
    std::vector<Expect> expected;
    for (std::size_t k = 0; k < length; ++k) {
      const std::string topic = "t" + std::to_string(random() % 5);
      const int action = static_cast<int>(random() % 10);
      if (action < 6) {
        const std::string value = "{\"v\":" + std::to_string(random() % 4) + "}";
        ++id;
        if (action == 5) {
          records.publishStaged(id, topic, static_cast<std::uint32_t>(staged.size()));
          staged.push_back(value);
        } else {
          records.publish(id, topic, value);
        }
        auto it = model.find(topic);
        bool changed = true;
        if (it == model.end()) {
          model[topic] = {value, 1};
        } else if (it->second.first == value) {
          changed = false;
        } else {
          it->second = {value, it->second.second + 1};
        }
        expected.push_back({id, false, false, changed, model[topic].second});
      } else if (action < 8) {
        ++id;
        records.erase(id, topic);
        expected.push_back({id, true, model.erase(topic) == 1, false, 0});
      } else {
        records.connect(++connection);
        records.receive(connection, R"({"t":"sub","topic":")" + topic + "\"}");
      }
    }
    records.submitTo(hub.core(), std::move(staged));
    const std::vector<Completion> answers = hub.answers(expected.size());
    ASSERT_EQ(answers.size(), expected.size());
    for (std::size_t k = 0; k < answers.size(); ++k) {
      const Completion& a = answers[k];
      const Expect& e = expected[k];
      ASSERT_EQ(a.id, e.id) << "batch of " << length;
      ASSERT_EQ(a.code, ErrorCode::Ok) << a.message;
      if (e.isDelete) {
        EXPECT_EQ(a.found, e.found) << "request " << e.id;
      } else {
        EXPECT_EQ(a.changed, e.changed) << "request " << e.id;
        EXPECT_EQ(a.version, e.version) << "request " << e.id;
      }
    }
    for (int t = 0; t < 5; ++t) {
      const std::string topic = "t" + std::to_string(t);
      const auto snapshot = hub.core().get(topic);
      const auto it = model.find(topic);
      ASSERT_EQ(snapshot != nullptr, it != model.end()) << topic;
      if (snapshot) {
        EXPECT_EQ(snapshot->json, it->second.first);
        EXPECT_EQ(snapshot->version, it->second.second);
      }
    }
  }
}

// Close in the middle of a batch: what came before runs and is answered
// (close last), nothing after it runs.
TEST(HubCoreRing, CloseInTheMiddleOfABatch) {
  for (const std::uint32_t before : {0u, 3u, 15u, 16u, 20u}) {
    HubOptions options;
    options.manualClock = true;
    Harness hub(options);
    Records records;
    std::uint32_t id = 0;
    for (std::uint32_t k = 0; k < before; ++k) records.publish(++id, "a" + std::to_string(k % 4), std::to_string(k));
    const std::uint32_t closeId = ++id;
    records.close(closeId);
    for (std::uint32_t k = 0; k < 20; ++k) records.publish(++id, "after" + std::to_string(k), "1");
    records.submitTo(hub.core());
    const std::vector<Completion> answers = hub.answers(before + 1);
    ASSERT_EQ(answers.size(), before + 1);
    for (std::uint32_t k = 0; k < answers.size(); ++k) EXPECT_EQ(answers[k].id, k + 1);
    EXPECT_EQ(answers.back().id, closeId);
    for (std::uint32_t k = 0; k < 20; ++k) {
      EXPECT_EQ(hub.core().get("after" + std::to_string(k)), nullptr) << "before " << before << " k " << k;
    }
    if (before > 0) {
      EXPECT_NE(hub.core().get("a0"), nullptr);
    }
  }
}

}  // namespace
}  // namespace deltacast
