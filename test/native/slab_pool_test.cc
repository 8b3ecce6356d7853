// SlabPool: blocks of fixed sizes from 64 KiB pages (slab_pool.h).
#include "deltacast/slab_pool.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "deltacast/name_map.h"

namespace deltacast {
namespace {

struct Held {
  std::size_t bytes;
  unsigned char fill;
};

// Every live block keeps what was written into it (no two overlap), is
// aligned to a line, and lies in a page of its own size.
void checkLive(const std::map<unsigned char*, Held>& live) {
  unsigned char* lastEnd = nullptr;
  for (const auto& [block, held] : live) {
    ASSERT_EQ(reinterpret_cast<std::uintptr_t>(block) % SlabPool::kLineBytes, 0u);
    ASSERT_TRUE(lastEnd == nullptr || block >= lastEnd) << "blocks overlap";
    for (std::size_t i = 0; i < held.bytes; ++i) ASSERT_EQ(block[i], held.fill) << "block overwritten";
    lastEnd = block + held.bytes;
  }
}

TEST(SlabPool, RandomAllocationsAndReleasesKeepBlocksApartAndIntact) {
  for (std::uint32_t seed = 1; seed <= 8; ++seed) {
    std::mt19937 random(seed);
    std::map<unsigned char*, Held> live;
    {
      SlabPool pool;
      for (int step = 0; step < 4000; ++step) {
        if (live.empty() || random() % 5 < 3) {
          // Sizes across the classes, most of them few: pages of one size fill up.
          const std::size_t bytes =
              random() % 4 == 0 ? 1 + random() % SlabPool::kMaxBlockBytes : 64 * (1 + random() % 4) - random() % 64;
          auto* block = static_cast<unsigned char*>(pool.allocate(bytes));
          const auto fill = static_cast<unsigned char>(random());
          std::memset(block, fill, bytes);
          ASSERT_TRUE(live.emplace(block, Held{bytes, fill}).second) << "a live block handed out twice";
        } else {
          auto it = live.begin();
          std::advance(it, static_cast<long>(random() % live.size()));
          SlabPool::release(it->first);
          live.erase(it);
        }
        if (step % 97 == 0) checkLive(live);
      }
      checkLive(live);
      for (const auto& [block, held] : live) SlabPool::release(block);
      live.clear();
      // Every page is free: at most kSparePages are kept.
      EXPECT_LE(pool.pageCount(), SlabPool::kSparePages) << "seed " << seed;
      EXPECT_EQ(pool.pageCount(), pool.sparePageCount());
    }
  }
}

TEST(SlabPool, AFreedPageServesAnotherSize) {
  // Rings grow 4 -> 16 -> 32 slots: the pages of the smaller arrays, once
  // empty, hold the larger ones instead of staying reserved for their size.
  SlabPool pool;
  std::vector<void*> small;
  for (int i = 0; i < 2000; ++i) small.push_back(pool.allocate(256));
  const std::size_t pagesForSmall = pool.pageCount();
  EXPECT_GE(pagesForSmall, 2000u * 256 / SlabPool::kPageBytes);
  for (void* block : small) SlabPool::release(block);
  const std::size_t afterRelease = pool.pageCount();
  EXPECT_LE(afterRelease, SlabPool::kSparePages);
  std::vector<void*> large;
  for (int i = 0; i < 200; ++i) large.push_back(pool.allocate(2048));
  // The spare pages were taken: no page was added, and as many left spare
  // as the large blocks did not need (31 of 2,048 bytes fit in a page).
  const std::size_t pagesForLarge = (200 + 30) / 31;
  ASSERT_GE(afterRelease, pagesForLarge);
  EXPECT_EQ(pool.pageCount(), afterRelease);
  EXPECT_EQ(pool.sparePageCount(), afterRelease - pagesForLarge);
  for (void* block : large) SlabPool::release(block);
}

TEST(SlabPool, RefusesWhatItDoesNotServe) {
  SlabPool pool;
  EXPECT_FALSE(SlabPool::serves(0));
  EXPECT_FALSE(SlabPool::serves(SlabPool::kMaxBlockBytes + 1));
  EXPECT_TRUE(SlabPool::serves(SlabPool::kMaxBlockBytes));
  EXPECT_THROW((void)pool.allocate(SlabPool::kMaxBlockBytes + 1), std::bad_alloc);
  EXPECT_THROW((void)pool.allocate(0), std::bad_alloc);
  EXPECT_EQ(pool.pageCount(), 0u);
}

TEST(SlabPool, NameMapEntriesComeFromThePoolAndGoBack) {
  SlabPool pool;
  {
    NameMap<std::string> map(&pool);
    for (int i = 0; i < 1000; ++i) map.emplace("topic-" + std::to_string(i), std::string(40, 'v'));
    EXPECT_GT(pool.pageCount(), 0u);
    for (int i = 0; i < 1000; i += 2) map.erase(map.find("topic-" + std::to_string(i)));
    for (int i = 1; i < 1000; i += 2) {
      auto* entry = map.find("topic-" + std::to_string(i));
      ASSERT_NE(entry, nullptr);
      EXPECT_EQ(entry->second, std::string(40, 'v'));
    }
  }
  // The map gave every entry back.
  EXPECT_EQ(pool.pageCount(), pool.sparePageCount());
}

}  // namespace
}  // namespace deltacast
