#include "deltacast/timer_queue.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <utility>
#include <vector>

namespace deltacast {
namespace {

TEST(TimerQueue, FiresInDeadlineThenSchedulingOrder) {
  TimerQueue timers;
  timers.schedule(50, 1);
  timers.schedule(10, 2);
  timers.schedule(50, 3);
  timers.schedule(10, 4);
  std::vector<std::uint64_t> fired;
  EXPECT_EQ(timers.advance(9, [&](std::uint64_t id, std::uint64_t) { fired.push_back(id); }), 0u);
  EXPECT_EQ(timers.nextDeadline(), 10);
  timers.advance(50, [&](std::uint64_t id, std::uint64_t) { fired.push_back(id); });
  EXPECT_EQ(fired, (std::vector<std::uint64_t>{2, 4, 1, 3}));
  EXPECT_FALSE(timers.nextDeadline().has_value());
}

TEST(TimerQueue, LazyCancelByLatestSequence) {
  TimerQueue timers;
  std::uint64_t current = timers.schedule(100, 7);
  current = timers.schedule(150, 7);  // re-armed: the first entry is stale
  std::vector<std::int64_t> firedAt;
  std::int64_t now = 100;
  auto fire = [&](std::uint64_t, std::uint64_t seq) {
    if (seq == current) firedAt.push_back(now);
  };
  timers.advance(now, fire);
  now = 150;
  timers.advance(now, fire);
  EXPECT_EQ(firedAt, (std::vector<std::int64_t>{150}));
}

TEST(TimerQueue, TimersSetWhileFiringRunWhenDue) {
  TimerQueue timers;
  timers.schedule(10, 1);
  std::vector<std::uint64_t> fired;
  timers.advance(20, [&](std::uint64_t id, std::uint64_t) {
    fired.push_back(id);
    if (id == 1) {
      timers.schedule(15, 2);  // due within this advance
      timers.schedule(30, 3);  // not yet
    }
  });
  EXPECT_EQ(fired, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(timers.size(), 1u);
}

TEST(TimerQueue, ManyTimers) {
  TimerQueue timers;
  for (std::uint64_t i = 0; i < 100000; ++i) timers.schedule(static_cast<std::int64_t>(i % 250), i);
  std::int64_t last = -1;
  std::size_t count = 0;
  timers.advance(1000, [&](std::uint64_t id, std::uint64_t) {
    const auto deadline = static_cast<std::int64_t>(id % 250);
    EXPECT_GE(deadline, last);
    last = deadline;
    ++count;
  });
  EXPECT_EQ(count, 100000u);
}

TEST(TimerQueue, OneEntryPerIdWhateverTheReArms) {
  TimerQueue timers;
  for (std::int64_t i = 0; i < 1000; ++i) timers.schedule(1000 - i, 7);  // a debounce moved 1000 times
  timers.schedule(500, 8);
  EXPECT_EQ(timers.size(), 2u);
  std::vector<std::pair<std::uint64_t, std::int64_t>> fired;
  std::int64_t now = 0;
  for (now = 0; now <= 1000; ++now) {
    timers.advance(now, [&](std::uint64_t id, std::uint64_t) { fired.emplace_back(id, now); });
  }
  EXPECT_EQ(fired, (std::vector<std::pair<std::uint64_t, std::int64_t>>{{7, 1}, {8, 500}}));
  EXPECT_EQ(timers.size(), 0u);
}

TEST(TimerQueue, CancelRemovesTheEntry) {
  TimerQueue timers;
  for (std::uint64_t id = 1; id <= 100; ++id) timers.schedule(static_cast<std::int64_t>(id * 7 % 13), id);
  for (std::uint64_t id = 1; id <= 100; id += 2) timers.cancel(id);
  timers.cancel(12345);  // not armed: nothing happens
  EXPECT_EQ(timers.size(), 50u);
  EXPECT_FALSE(timers.armed(1));
  EXPECT_TRUE(timers.armed(2));
  std::vector<std::uint64_t> fired;
  std::int64_t last = -1;
  timers.advance(100, [&](std::uint64_t id, std::uint64_t) {
    const auto deadline = static_cast<std::int64_t>(id * 7 % 13);
    EXPECT_GE(deadline, last);
    last = deadline;
    fired.push_back(id);
  });
  EXPECT_EQ(fired.size(), 50u);
  for (const std::uint64_t id : fired) EXPECT_EQ(id % 2, 0u);
  EXPECT_EQ(timers.size(), 0u);
}

// The id -> place table against std::map, with ids that collide (multiples
// of a power of two, close together, the connection timers' high bit) and
// runs that wrap around the end of the table, through growth and erasure.
TEST(TimerPositions, AgreesWithAMapThroughInsertsAndErasures) {
  std::mt19937_64 random(20261202);
  for (const std::uint64_t stride : {std::uint64_t{1}, std::uint64_t{1} << 20, std::uint64_t{3}}) {
    TimerPositions table;
    std::map<std::uint64_t, std::size_t> model;
    for (int step = 0; step < 200000; ++step) {
      const std::uint64_t id = (random() % 3000) * stride | ((random() % 4 == 0) ? (std::uint64_t{1} << 63) : 0);
      const int op = static_cast<int>(random() % 3);
      if (op == 0) {
        const std::size_t at = random() % 1000;
        const auto [place, added] = table.emplace(id, at);
        const auto [it, modelAdded] = model.try_emplace(id, at);
        ASSERT_EQ(added, modelAdded) << step;
        ASSERT_EQ(*place, it->second) << step;
        if (!added && random() % 2 == 0) *place = it->second = at + 1;  // moved
      } else if (op == 1) {
        table.erase(id);
        model.erase(id);
      } else {
        const std::size_t* place = table.find(id);
        const auto it = model.find(id);
        ASSERT_EQ(place != nullptr, it != model.end()) << step;
        if (place != nullptr) ASSERT_EQ(*place, it->second) << step;
      }
      ASSERT_EQ(table.size(), model.size()) << step;
    }
    for (const auto& [id, at] : model) {
      ASSERT_NE(table.find(id), nullptr);
      EXPECT_EQ(*table.find(id), at);
    }
    for (const auto& entry : model) table.erase(entry.first);
    EXPECT_EQ(table.size(), 0u);
  }
}

}  // namespace
}  // namespace deltacast
