// SlabPool: blocks of a few fixed sizes for the topic store's records (map
// entries, history slots), carved from 64 KiB pages, one size per page.
//
// Why not operator new: with 100,000 tiny topics a publish touches the
// topic's entry and a history slot of a different allocation each, and the
// general-purpose heap spreads them over more pages (an aligned allocation
// leaves fragments that later small allocations fill), so more of the
// publish's loads miss the TLB, where software prefetch helps least on this
// class of machine. Blocks of one size packed in their own pages: measured
// about 15% less core-thread time a publish at 100,000 tiny topics (README,
// bench/hub.js section d).
//
// Rules:
// - One thread: a pool is used by the thread that owns its store (the hub's
//   core thread); nothing here is synchronized.
// - A block is kLineBytes-aligned and a multiple of kLineBytes; sizes up to
//   kMaxBlockBytes. Larger requests are the caller's (operator new).
// - A page whose blocks are all free goes back to the pool's spare pages,
//   which any size reuses; beyond kSparePages spare pages, it is freed. So a
//   store whose rings grew (4 -> 16 -> 32 slots) reuses the pages of the
//   smaller rings for the larger ones instead of keeping both.
// - Every block must be released before the pool is destroyed (the pool's
//   owner declares it before the containers using it); the destructor frees
//   every page it still has.
// - ASan builds poison free blocks, so a use after release is reported.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

namespace deltacast {

class SlabPool {
 public:
  static constexpr std::size_t kLineBytes = 64;
  static constexpr std::size_t kPageBytes = std::size_t{64} * 1024;
  static constexpr std::size_t kMaxBlockBytes = std::size_t{8} * 1024;
  static constexpr std::size_t kSparePages = 16;  // kept for reuse (1 MiB); more are freed

  SlabPool() = default;
  ~SlabPool();
  SlabPool(const SlabPool&) = delete;
  SlabPool& operator=(const SlabPool&) = delete;

  // Whether a request of `bytes` is served here (else the caller uses operator new).
  static constexpr bool serves(std::size_t bytes) noexcept { return bytes > 0 && bytes <= kMaxBlockBytes; }
  // A block of at least `bytes` (serves(bytes)), kLineBytes-aligned. Throws std::bad_alloc.
  void* allocate(std::size_t bytes);
  // Gives back a block allocate() returned (nullptr: nothing), to the pool
  // it came from: the block's page says which, and the block's size.
  static void release(void* block) noexcept;

  // Pages held (in use or spare), for tests and accounting.
  std::size_t pageCount() const noexcept { return pages_; }
  std::size_t sparePageCount() const noexcept { return spareCount_; }

 private:
  struct Page;
  static constexpr std::size_t kClasses = kMaxBlockBytes / kLineBytes;
  static std::size_t classOf(std::size_t bytes) noexcept { return (bytes + kLineBytes - 1) / kLineBytes - 1; }
  static void pushFront(Page*& head, Page* page) noexcept;
  static void unlink(Page*& head, Page* page) noexcept;
  Page* newPage(std::size_t sizeClass);
  void giveBack(Page* page, void* block) noexcept;
  void retire(Page* page) noexcept;

  // Per size class, its pages with a free block (each page is in exactly one
  // list: its class's `partial`, its class's `full`, or `spare`).
  Page* partial_[kClasses] = {};
  Page* full_[kClasses] = {};
  Page* spare_ = nullptr;
  std::size_t spareCount_ = 0;
  std::size_t pages_ = 0;
};

}  // namespace deltacast
