// NameMap (name_map.h): the topic store's map from names to topics. Checked
// against std::unordered_map over random inserts and erases on a small key
// space (long probe runs, erases inside and across runs, wrap-around at the
// end of the slots, growth), and for stable entry addresses.
#include "deltacast/name_map.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace deltacast {
namespace {

TEST(NameMap, EmptyFindsNothing) {
  NameMap<int> map;
  EXPECT_EQ(map.size(), 0u);
  EXPECT_EQ(map.find("a"), map.end());
  EXPECT_EQ(map.find(""), map.end());
  map.erase(map.end());  // erasing end() does nothing
  EXPECT_EQ(map.size(), 0u);
}

TEST(NameMap, EmplaceKeepsTheFirstValueAndEntriesNeverMove) {
  NameMap<int> map;
  auto [first, inserted] = map.emplace("topic", 1);
  ASSERT_TRUE(inserted);
  auto [again, insertedAgain] = map.emplace("topic", 2);
  EXPECT_FALSE(insertedAgain);
  EXPECT_EQ(again, first);
  EXPECT_EQ(first->second, 1);
  // Growth (16 slots at first, doubling at 3/4) moves slots, not entries.
  std::vector<std::pair<std::string, const void*>> addresses;
  for (int i = 0; i < 5000; ++i) {
    auto [entry, ok] = map.emplace("t" + std::to_string(i), i);
    ASSERT_TRUE(ok);
    addresses.emplace_back(entry->first, entry);
  }
  EXPECT_EQ(map.find("topic"), first);
  for (const auto& [name, address] : addresses) ASSERT_EQ(static_cast<const void*>(map.find(name)), address) << name;
  EXPECT_EQ(map.size(), 5001u);
}

TEST(NameMap, MatchesUnorderedMapOverRandomInsertsAndErases) {
  for (std::uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 random(seed);
    // Few names, so that most operations hit names that are there, and the
    // map shrinks and refills around the same slots.
    const int names = 40 + static_cast<int>(seed) * 25;
    NameMap<int> map;
    std::unordered_map<std::string, int> oracle;
    for (int step = 0; step < 20000; ++step) {
      const std::string name = "n" + std::to_string(random() % static_cast<std::uint32_t>(names));
      const int op = static_cast<int>(random() % 3);
      if (op == 0) {
        const auto [entry, inserted] = map.emplace(name, step);
        const bool expected = oracle.emplace(name, step).second;
        ASSERT_EQ(inserted, expected) << "seed " << seed << " step " << step;
        ASSERT_EQ(entry->second, oracle.at(name));
      } else if (op == 1) {
        map.erase(map.find(name));
        oracle.erase(name);
      } else {
        const auto found = map.find(name);
        const auto expected = oracle.find(name);
        ASSERT_EQ(found == map.end(), expected == oracle.end()) << "seed " << seed << " step " << step << " " << name;
        if (found != map.end()) {
          ASSERT_EQ(found->second, expected->second);
        }
      }
      ASSERT_EQ(map.size(), oracle.size());
    }
    // Every name the oracle has is found, every other one is not.
    for (int i = 0; i < names; ++i) {
      const std::string name = "n" + std::to_string(i);
      ASSERT_EQ(map.find(name) == map.end(), oracle.count(name) == 0) << "seed " << seed << " " << name;
    }
  }
}

TEST(NameMap, NamesAreComparedWhole) {
  NameMap<int> map;
  map.emplace("ab", 1);
  map.emplace(std::string("a\0b", 3), 2);
  EXPECT_EQ(map.find("a"), map.end());
  EXPECT_EQ(map.find("abc"), map.end());
  ASSERT_NE(map.find(std::string_view("a\0b", 3)), map.end());
  EXPECT_EQ(map.find(std::string_view("a\0b", 3))->second, 2);
  EXPECT_EQ(map.find("ab")->second, 1);
}

// Names whose hashes share their low bits share a home slot in every table
// up to that size: long runs, wrap-around past the last slot, erases from
// any place in a run, and growth in the middle of churn.
std::vector<std::string> namesWithLowBits(std::uint64_t mask, std::uint64_t bits, std::size_t count, int& next) {
  std::vector<std::string> names;
  while (names.size() < count) {
    std::string name = "n" + std::to_string(next++);
    if ((nameHash(name) & mask) == bits) names.push_back(std::move(name));
  }
  return names;
}

TEST(NameMap, RunsThatWrapPastTheLastSlotSurviveEveryErase) {
  int next = 0;
  // 16 slots: homes 14 and 15 run past the end into 0 and 1, which have names of their own.
  std::vector<std::string> names;
  for (const auto& [bits, count] :
       std::vector<std::pair<std::uint64_t, std::size_t>>{{15, 4}, {14, 2}, {0, 3}, {1, 2}}) {
    for (std::string& n : namesWithLowBits(15, bits, count, next)) names.push_back(std::move(n));
  }
  ASSERT_EQ(names.size(), 11u);  // under 3/4 of 16: no growth
  for (std::uint32_t seed = 1; seed <= 300; ++seed) {
    std::mt19937 random(seed);
    std::vector<std::string> order = names;
    std::shuffle(order.begin(), order.end(), random);
    NameMap<int> map;
    std::unordered_map<std::string, int> model;
    for (std::size_t i = 0; i < order.size(); ++i) {
      map.emplace(order[i], static_cast<int>(i));
      model.emplace(order[i], static_cast<int>(i));
    }
    std::shuffle(order.begin(), order.end(), random);
    for (std::size_t k = 0; k < order.size(); ++k) {
      map.erase(map.find(order[k]));
      model.erase(order[k]);
      ASSERT_EQ(map.size(), model.size());
      for (const std::string& n : names) {
        const auto it = map.find(n);
        const auto m = model.find(n);
        ASSERT_EQ(it != map.end(), m != model.end()) << "seed " << seed << " after erasing " << k + 1 << ": " << n;
        if (it != map.end()) {
          ASSERT_EQ(it->second, m->second);
        }
      }
      // Re-insert now and then: the hole left by the shift is reused.
      if (random() % 3 == 0) {
        map.emplace(order[k], -1);
        model.emplace(order[k], -1);
        ASSERT_NE(map.find(order[k]), map.end());
        map.erase(map.find(order[k]));
        model.erase(order[k]);
      }
    }
    EXPECT_EQ(map.size(), 0u);
  }
}

TEST(NameMap, ChurnOfCollidingNamesAcrossGrowth) {
  int next = 0;
  // 60 names with the same home in tables up to 1024 slots, plus 200 spread ones.
  std::vector<std::string> names = namesWithLowBits(1023, 1023, 60, next);
  for (int i = 0; i < 200; ++i) names.push_back("s" + std::to_string(i));
  std::mt19937 random(7);
  NameMap<int> map;
  std::unordered_map<std::string, int> model;
  std::unordered_map<std::string, const void*> address;
  for (int step = 0; step < 20000; ++step) {
    const std::string& name = names[random() % names.size()];
    if (random() % 2 == 0) {
      auto [entry, inserted] = map.emplace(name, step);
      ASSERT_EQ(inserted, model.emplace(name, step).second);
      if (inserted) address[name] = entry;
      ASSERT_EQ(static_cast<const void*>(entry), address[name]);  // entries never move
    } else {
      map.erase(map.find(name));
      model.erase(name);
    }
    if (step % 97 == 0) {
      for (const std::string& n : names) {
        const auto it = map.find(n);
        const auto m = model.find(n);
        ASSERT_EQ(it != map.end(), m != model.end()) << "step " << step << ": " << n;
        if (it != map.end()) {
          ASSERT_EQ(it->second, m->second);
          ASSERT_EQ(static_cast<const void*>(it), address[n]);
        }
        // The prefetch hints read only slots, whatever is there.
        map.prefetchSlot(nameHash(n));
        map.prefetchEntry(nameHash(n));
      }
    }
  }
  ASSERT_EQ(map.size(), model.size());
}

TEST(NameHash, SequentialShortNamesSpreadOverTheTable) {
  // Names that differ in a byte or two, at every length up to the 16 bytes
  // of the short path and past it: no two hashes equal, and the low bits (a
  // table's slot) spread evenly.
  std::unordered_set<std::uint64_t> seen;
  std::vector<std::uint32_t> buckets(1 << 16, 0);
  std::size_t count = 0;
  for (std::size_t length = 0; length <= 20; ++length) {
    for (std::uint32_t i = 0; i < (length == 0 ? 1u : 20000u); ++i) {
      std::string name = std::to_string(i);
      if (name.size() > length) continue;
      name = std::string(length - name.size(), 't') + name;
      ASSERT_TRUE(seen.insert(nameHash(name)).second) << "a second name hashes as " << name;
      ++buckets[nameHash(name) & (buckets.size() - 1)];
      ++count;
    }
  }
  ASSERT_GT(count, 300000u);
  // About 5 a bucket on average; a good hash puts at most ~20 in one.
  EXPECT_LE(*std::max_element(buckets.begin(), buckets.end()), 24u);
  EXPECT_EQ(nameHash("t1"), nameHash(std::string_view("t12", 2)));  // the view's bytes only
}

}  // namespace
}  // namespace deltacast
