#include "deltacast/background_free.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace {

using deltacast::BackgroundFree;

// Records, when destroyed, which thread destroyed it and in which place.
struct Recorder {
  Recorder(std::mutex* m, std::vector<int>* o, std::vector<std::thread::id>* t, int i, int sleep)
      : mutex(m), order(o), threads(t), index(i), sleepMs(sleep) {}
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;
  std::mutex* mutex;
  std::vector<int>* order;
  std::vector<std::thread::id>* threads;
  int index;
  int sleepMs;
  ~Recorder() {
    if (sleepMs > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleepMs));
    std::lock_guard lock(*mutex);
    order->push_back(index);
    threads->push_back(std::this_thread::get_id());
  }
};

struct Log {
  std::mutex mutex;
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  std::unique_ptr<Recorder> make(int index, int sleepMs = 0) {
    return std::make_unique<Recorder>(&mutex, &order, &threads, index, sleepMs);
  }
};

// Waits, when destroyed, until `release` is set; then counts itself in `destroyed`.
struct Gate {
  Gate(std::atomic<bool>* r, std::atomic<int>* d) : release(r), destroyed(d) {}
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;
  std::atomic<bool>* release;
  std::atomic<int>* destroyed;
  ~Gate() {
    while (!release->load()) std::this_thread::yield();
    destroyed->fetch_add(1);
  }
};

TEST(BackgroundFree, DestroysOnAnotherThreadInTheOrderHandedOver) {
  Log log;
  BackgroundFree reaper;
  // The first one sleeps, so the rest queue behind it while the thread runs.
  reaper.free(log.make(0, 30));
  for (int i = 1; i < 1000; ++i) reaper.free(log.make(i));
  reaper.drain();
  ASSERT_EQ(log.order.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(log.order[i], i);
  for (const auto& id : log.threads) EXPECT_NE(id, std::this_thread::get_id());
  EXPECT_EQ(reaper.freed(), 1000u);
}

TEST(BackgroundFree, FreeReturnsBeforeTheObjectIsDestroyed) {
  Log log;
  BackgroundFree reaper;
  std::atomic<bool> release{false};
  std::atomic<int> destroyed{0};
  reaper.free(std::make_unique<Gate>(&release, &destroyed));
  // free() returned while the destructor still waits: it did not run here.
  EXPECT_EQ(destroyed.load(), 0);
  release = true;
  reaper.drain();
  EXPECT_EQ(destroyed.load(), 1);
}

TEST(BackgroundFree, StartsAgainAfterItsThreadEnded) {
  Log log;
  BackgroundFree reaper;
  reaper.free(log.make(0));
  reaper.drain();
  reaper.free(log.make(1));
  reaper.free(std::unique_ptr<Recorder>());  // nothing: ignored
  reaper.drain();
  ASSERT_EQ(log.order, (std::vector<int>{0, 1}));
  EXPECT_EQ(reaper.freed(), 2u);
}

TEST(BackgroundFree, ItsDestructorWaitsForEverythingHandedOver) {
  Log log;
  {
    BackgroundFree reaper;
    for (int i = 0; i < 5; ++i) reaper.free(log.make(i, 5));
  }
  EXPECT_EQ(log.order.size(), 5u);
}

TEST(BackgroundFree, ItsDestructorWaitsNoLongerThanItWasToldThenLeavesTheThreadToFinish) {
  std::atomic<bool> release{false};
  std::atomic<int> destroyed{0};
  {
    BackgroundFree reaper(std::chrono::milliseconds(20));
    reaper.free(std::make_unique<Gate>(&release, &destroyed));
    reaper.free(std::make_unique<Gate>(&release, &destroyed));
  }
  // The instance is gone and its thread still waits at the first gate.
  EXPECT_EQ(destroyed.load(), 0);
  release = true;
  for (int i = 0; i < 10000 && destroyed.load() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(destroyed.load(), 2) << "the thread left to finish destroys what it was given";
}

TEST(BackgroundFree, ManyThreadsHandOverAtOnce) {
  Log log;
  BackgroundFree reaper;
  std::vector<std::thread> givers;
  for (int t = 0; t < 4; ++t) {
    givers.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) reaper.free(log.make(t * 1000 + i));
    });
  }
  for (auto& giver : givers) giver.join();
  reaper.drain();
  EXPECT_EQ(log.order.size(), 2000u);
  EXPECT_EQ(reaper.freed(), 2000u);
}

}  // namespace
