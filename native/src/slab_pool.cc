#include "deltacast/slab_pool.h"

#include <cstdlib>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON_BLOCK(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON_BLOCK(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON_BLOCK(p, n) ((void)(p), (void)(n))
#define UNPOISON_BLOCK(p, n) ((void)(p), (void)(n))
#endif

namespace deltacast {

// The first line of a page; its blocks follow, each blockBytes long.
struct SlabPool::Page {
  Page* prev;
  Page* next;
  SlabPool* pool;
  void* free;                // released blocks of this page (a list through their first bytes)
  std::uint32_t blockBytes;  // 0 while spare
  std::uint32_t capacity;    // blocks in the page
  std::uint32_t live;        // blocks handed out
  std::uint32_t carved;      // blocks handed out at least once (the rest are untouched, past `carved`)
  char* blocks() noexcept { return reinterpret_cast<char*>(this) + kLineBytes; }
};
static_assert(sizeof(void*) * 4 + 16 <= SlabPool::kLineBytes, "a page's header fits its first line");

SlabPool::~SlabPool() {
  const auto freeAll = [](Page* page) {
    while (page != nullptr) {
      Page* next = page->next;
      UNPOISON_BLOCK(page, kPageBytes);
      std::free(page);
      page = next;
    }
  };
  for (std::size_t c = 0; c < kClasses; ++c) {
    freeAll(partial_[c]);
    freeAll(full_[c]);
  }
  freeAll(spare_);
}

void SlabPool::pushFront(Page*& head, SlabPool::Page* page) noexcept {
  page->prev = nullptr;
  page->next = head;
  if (head != nullptr) head->prev = page;
  head = page;
}

void SlabPool::unlink(Page*& head, Page* page) noexcept {
  if (page->prev != nullptr) {
    page->prev->next = page->next;
  } else {
    head = page->next;
  }
  if (page->next != nullptr) page->next->prev = page->prev;
  page->prev = page->next = nullptr;
}

SlabPool::Page* SlabPool::newPage(std::size_t sizeClass) {
  Page* page = spare_;
  if (page != nullptr) {
    unlink(spare_, page);
    --spareCount_;
  } else {
    void* memory = std::aligned_alloc(kPageBytes, kPageBytes);
    if (memory == nullptr) throw std::bad_alloc();
    page = static_cast<Page*>(memory);
    ++pages_;
    POISON_BLOCK(page->blocks(), kPageBytes - kLineBytes);
  }
  const auto blockBytes = static_cast<std::uint32_t>((sizeClass + 1) * kLineBytes);
  page->prev = page->next = nullptr;
  page->pool = this;
  page->free = nullptr;
  page->blockBytes = blockBytes;
  page->capacity = static_cast<std::uint32_t>((kPageBytes - kLineBytes) / blockBytes);
  page->live = 0;
  page->carved = 0;
  pushFront(partial_[sizeClass], page);
  return page;
}

void* SlabPool::allocate(std::size_t bytes) {
  if (!serves(bytes)) throw std::bad_alloc();
  const std::size_t sizeClass = classOf(bytes);
  Page* page = partial_[sizeClass];
  if (page == nullptr) page = newPage(sizeClass);
  void* block = nullptr;
  if (page->free != nullptr) {
    block = page->free;
    UNPOISON_BLOCK(block, sizeof(void*));
    page->free = *static_cast<void**>(block);
  } else {
    block = page->blocks() + std::size_t{page->carved} * page->blockBytes;
    ++page->carved;
  }
  UNPOISON_BLOCK(block, page->blockBytes);
  if (++page->live == page->capacity) {
    unlink(partial_[sizeClass], page);
    pushFront(full_[sizeClass], page);
  }
  return block;
}

void SlabPool::release(void* block) noexcept {
  if (block == nullptr) return;
  auto* page = reinterpret_cast<Page*>(reinterpret_cast<std::uintptr_t>(block) & ~(kPageBytes - 1));
  page->pool->giveBack(page, block);
}

void SlabPool::giveBack(Page* page, void* block) noexcept {
  const std::size_t sizeClass = classOf(page->blockBytes);
  if (page->live == page->capacity) {
    unlink(full_[sizeClass], page);
    pushFront(partial_[sizeClass], page);
  }
  POISON_BLOCK(block, page->blockBytes);
  UNPOISON_BLOCK(block, sizeof(void*));
  *static_cast<void**>(block) = page->free;
  POISON_BLOCK(block, sizeof(void*));
  page->free = block;
  if (--page->live == 0) retire(page);
}

// A page with no block in use: spare for any size, or freed.
void SlabPool::retire(Page* page) noexcept {
  unlink(partial_[classOf(page->blockBytes)], page);
  if (spareCount_ >= kSparePages) {
    --pages_;
    UNPOISON_BLOCK(page, kPageBytes);
    std::free(page);
    return;
  }
  page->blockBytes = 0;
  pushFront(spare_, page);
  ++spareCount_;
  POISON_BLOCK(page->blocks(), kPageBytes - kLineBytes);
}

}  // namespace deltacast
