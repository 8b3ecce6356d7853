// A map from names to values for the topic store: open addressing over
// (hash, entry) slots with linear probing, entries allocated one by one.
//
// Why not std::unordered_map: with 100,000 topics a lookup there walks the
// bucket array, the node before the bucket's first node and the node itself,
// three cache misses in a row that no one can start early. Here a slot holds
// the full hash next to the entry's address, so a lookup is one miss for the
// slot and one for the entry, and a caller that knows which names come next
// (a batch of requests) can start both early: prefetchSlot(nameHash(name)) a
// few requests ahead, then prefetchEntry(hash) once the slot has arrived.
//
// Entries never move (the store keeps pointers to them: the LRU list, the
// name a topic points back to). Erasing shifts the following slots of the
// probe run back (no tombstones), so lookups stay short after churn. The
// table doubles at 3/4 full. Entries come from a SlabPool when one is given
// (the topic store's), else from operator new.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "deltacast/slab_pool.h"

namespace deltacast {

// The hash NameMap keys names by (and TopicStore::prefetch takes). Names of
// up to 16 bytes (most topic names) are read as two overlapping words and
// mixed by one 64x64->128-bit multiply (the folded multiply of wyhash);
// longer ones go to std::hash (MurmurHash2, as before). Like std::hash it is
// unseeded: the store's names are chosen by the application, not by clients.
inline std::uint64_t nameHash(std::string_view name) noexcept {
  const std::size_t n = name.size();
  if (n > 16) return std::hash<std::string_view>{}(name);
  const auto* p = reinterpret_cast<const unsigned char*>(name.data());
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  if (n >= 8) {
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + n - 8, 8);
  } else if (n >= 4) {
    std::uint32_t x = 0;
    std::uint32_t y = 0;
    std::memcpy(&x, p, 4);
    std::memcpy(&y, p + n - 4, 4);
    a = x;
    b = y;
  } else if (n > 0) {
    a = std::uint64_t{p[0]} << 16 | std::uint64_t{p[n / 2]} << 8 | p[n - 1];
  }
  __extension__ typedef unsigned __int128 Wide;  // GCC and Clang's 128-bit integer (__extension__: no -Wpedantic note)
  const auto mix = [](std::uint64_t x, std::uint64_t y) {
    const Wide product = static_cast<Wide>(x) * y;
    return static_cast<std::uint64_t>(product) ^ static_cast<std::uint64_t>(product >> 64);
  };
  constexpr std::uint64_t k0 = 0xa0761d6478bd642fULL;
  constexpr std::uint64_t k1 = 0xe7037ed1a0b428dbULL;
  constexpr std::uint64_t k2 = 0x8ebc6af09c88c6e3ULL;
  return mix(mix(a ^ k1, b ^ k0 ^ n) ^ k2, k1 ^ n);
}

template <class Value>
class NameMap {
 public:
  using Entry = std::pair<const std::string, Value>;
  using iterator = Entry*;  // nullptr is end()

  // `pool`: where entries are allocated (it must outlive the map); nullptr: operator new.
  explicit NameMap(SlabPool* pool = nullptr) : slots_(kMinSlots), pool_(pool) {}
  NameMap(const NameMap&) = delete;
  NameMap& operator=(const NameMap&) = delete;
  ~NameMap() {
    for (Slot& slot : slots_) destroy(slot.entry);
  }

  std::size_t size() const noexcept { return size_; }
  iterator end() const noexcept { return nullptr; }

  iterator find(std::string_view name) const noexcept { return find(name, nameHash(name)); }
  // With the name's hash (nameHash) already known.
  iterator find(std::string_view name, std::uint64_t hash) const noexcept {
    for (std::size_t i = hash & mask(); slots_[i].entry != nullptr; i = (i + 1) & mask()) {
      if (slots_[i].hash == hash && slots_[i].entry->first == name) return slots_[i].entry;
    }
    return nullptr;
  }

  // Inserts (name, value) unless the name is there; the entry and whether it is new.
  std::pair<iterator, bool> emplace(std::string name, Value value) {
    if (iterator found = find(name)) return {found, false};
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();
    const std::uint64_t hash = nameHash(name);
    Entry* placed = make(std::move(name), std::move(value));
    place(Slot{hash, placed});
    ++size_;
    return {placed, true};
  }

  void erase(iterator entry) noexcept {
    if (entry == nullptr) return;
    std::size_t i = nameHash(entry->first) & mask();
    while (slots_[i].entry != entry) i = (i + 1) & mask();
    destroy(entry);
    slots_[i] = Slot{};
    --size_;
    // Backward shift: move later members of the run into the hole when their
    // home slot is at or before it (cyclically), so no lookup stops early.
    for (std::size_t hole = i, j = (i + 1) & mask(); slots_[j].entry != nullptr; j = (j + 1) & mask()) {
      const std::size_t home = slots_[j].hash & mask();
      const bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
      if (!movable) continue;
      slots_[hole] = slots_[j];
      slots_[j] = Slot{};
      hole = j;
    }
  }

  // Starts loading the slots where a lookup of `name` begins (two cache
  // lines: a probe run may cross into the next).
  void prefetchSlot(std::uint64_t hash) const noexcept {
    __builtin_prefetch(&slots_[hash & mask()]);
    __builtin_prefetch(&slots_[(hash + 4) & mask()]);
  }
  // Starts loading the entry whose hash is `hash` (found by hash alone along
  // its probe run, which is short and mostly in the slot's cache line);
  // touches only slots, so call it once prefetchSlot's load has had time to
  // arrive.
  void prefetchEntry(std::uint64_t hash) const noexcept {
    std::size_t i = hash & mask();
    for (int probes = 0; probes < 16 && slots_[i].entry != nullptr && slots_[i].hash != hash; ++probes) {
      i = (i + 1) & mask();
    }
    const Slot& slot = slots_[i];
    if (slot.entry == nullptr || slot.hash != hash) return;
    const char* bytes = reinterpret_cast<const char*>(slot.entry);
    for (std::size_t line = 0; line < sizeof(Entry); line += 64) __builtin_prefetch(bytes + line);
  }

 private:
  struct Slot {
    std::uint64_t hash = 0;
    Entry* entry = nullptr;
  };
  static constexpr std::size_t kMinSlots = 16;
  // Entries start on a cache line, so an entry of n lines' bytes takes n
  // lines, not n + 1.
  static constexpr std::align_val_t kEntryAlignment{64};

  static constexpr bool kPooled = SlabPool::serves(sizeof(Entry));
  void* allocateEntry() {
    if (kPooled && pool_ != nullptr) return pool_->allocate(sizeof(Entry));
    return ::operator new(sizeof(Entry), kEntryAlignment);
  }
  void releaseEntry(void* memory) noexcept {
    if (kPooled && pool_ != nullptr) {
      SlabPool::release(memory);
    } else {
      ::operator delete(memory, kEntryAlignment);
    }
  }
  Entry* make(std::string name, Value value) {
    void* memory = allocateEntry();
    try {
      return new (memory) Entry(std::move(name), std::move(value));
    } catch (...) {
      releaseEntry(memory);
      throw;
    }
  }
  void destroy(Entry* entry) noexcept {
    if (entry == nullptr) return;
    entry->~Entry();
    releaseEntry(entry);
  }

  std::size_t mask() const noexcept { return slots_.size() - 1; }

  void place(Slot slot) noexcept {
    std::size_t i = slot.hash & mask();
    while (slots_[i].entry != nullptr) i = (i + 1) & mask();
    slots_[i] = slot;
  }

  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    for (const Slot& slot : old) {
      if (slot.entry != nullptr) place(slot);
    }
  }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
  SlabPool* pool_;
};

}  // namespace deltacast
