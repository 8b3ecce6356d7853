// Tiny topics in the store alone: TopicStore::publishJson of `{"v":<n>,"s":"ok"}`
// to 100,000 topics round-robin (the shape of bench/hub.js change-cost, row d,
// without the hub's request hand-over), with and without the prefetch hints
// the hub core gives a few requests ahead (it gives them from 16,384 topics
// on). Prints thread-CPU µs per publish and heap allocations per publish
// (operator new).
//
//   cmake -S . -B build/bench -DDELTACAST_BUILD_BENCHMARKS=ON -DDELTACAST_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release
//   cmake --build build/bench --target store_tiny_bench -j2
//   ./build/bench/bench/native/store_tiny_bench [topics (100000)] [publishes per pass (1000000)]
#include <array>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <new>
#include <string>
#include <vector>

#include "deltacast/topic_store.h"

namespace {
std::size_t allocations = 0;
}  // namespace

void* operator new(std::size_t n) {
  ++allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

double threadMicros() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

}  // namespace

int main(int argc, char** argv) {
  using deltacast::nameHash;
  using deltacast::TopicStore;
  const std::size_t topics = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100000;
  const std::size_t calls = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1000000;
  if (topics == 0 || calls == 0) return 2;
  TopicStore store(deltacast::StoreOptions{});
  std::vector<std::string> names;
  std::vector<std::uint64_t> hashes;
  for (std::size_t i = 0; i < topics; ++i) {
    names.push_back("t" + std::to_string(i));
    hashes.push_back(nameHash(names.back()));
  }
  // Texts made before the clock starts: the loop times the store only.
  std::vector<std::string> texts;
  std::size_t v = 100000;
  const auto text = [&] { return "{\"v\":" + std::to_string(v++) + ",\"s\":\"ok\"}"; };
  for (int pass = 0; pass < 2; ++pass) {  // creates them, then a first change each
    for (std::size_t i = 0; i < topics; ++i) store.publishJson(names[i], text(), "", 0);
  }
  std::printf("%zu topics, %zu publishJson a pass\n", topics, calls);
  for (int pass = 0; pass < 4; ++pass) {
    const bool hints = pass % 2 == 1;
    texts.clear();
    for (std::size_t i = 0; i < calls; ++i) texts.push_back(text());
    const std::size_t before = allocations;
    const double t0 = threadMicros();
    std::size_t changed = 0;
    std::array<deltacast::TopicStore::Lookup, 32> lookups{};  // as HubCore::runEncoded keeps them
    for (std::size_t i = 0; i < 16; ++i) lookups[i] = deltacast::TopicStore::Lookup{hashes[i % topics]};
    for (std::size_t i = 0; i < calls; ++i) {
      if (hints) {  // as HubCore::runEncoded gives them
        const std::size_t a = (i + 8) % topics, b = (i + 2) % topics, c = (i + 1) % topics;
        lookups[(i + 16) % 32] = deltacast::TopicStore::Lookup{hashes[(i + 16) % topics]};
        store.prefetch(names[(i + 16) % topics], lookups[(i + 16) % 32], 0);
        store.prefetch(names[a], lookups[(i + 8) % 32], 1);
        store.prefetch(names[b], lookups[(i + 2) % 32], 2);
        store.prefetch(names[c], lookups[(i + 1) % 32], 3);
      }
      deltacast::ChangeResult result;
      store.publishJsonFrom(names[i % topics], texts[i], "", 0, result, hints ? &lookups[i % 32] : nullptr);
      changed += result.changed ? 1 : 0;
      store.recycle(std::move(result.ops));  // as the hub core does once delivery has its frames
    }
    const double us = threadMicros() - t0;
    std::printf("%-16s %.3f µs a publish, %.2f allocations a publish, %zu changed\n",
                hints ? "with prefetch" : "without prefetch", us / static_cast<double>(calls),
                static_cast<double>(allocations - before) / static_cast<double>(calls), changed);
  }
  return 0;
}
