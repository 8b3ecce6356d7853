// NameMap (name_map.h): the topic store's map from names to topics. Checked
// against std::unordered_map over random inserts and erases on a small key
// space (long probe runs, erases inside and across runs, wrap-around at the
// end of the slots, growth), and for stable entry addresses.
#include "deltacast/name_map.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <unordered_map>
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
        if (found != map.end()) ASSERT_EQ(found->second, expected->second);
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

}  // namespace
}  // namespace deltacast
