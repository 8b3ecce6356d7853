// Row-level changes on a topic of keyed rows: what one upsert, remove or
// single-row patch costs the core thread at 1,000 and at 10,000 rows, with
// the topic kept as rows (StoreOptions::keepRows, the default) and with the
// whole-text path (keepRows = false, how every change was made before), in
// one run. Rows are price-board rows of ~225 bytes (the shape bench/data.js
// writes). The figure that matters is the ratio 10,000 / 1,000 rows: 1 when a
// change costs the row, 10 when it costs the topic.
//
//   cmake -S . -B build/bench -DDELTACAST_BUILD_BENCHMARKS=ON -DDELTACAST_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release
//   cmake --build build/bench --target store_rows_bench -j2
//   ./build/bench/bench/native/store_rows_bench [--quick]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "deltacast/topic_store.h"

namespace {

using deltacast::StoreOptions;
using deltacast::TopicStore;

const char* const kMaterials[] = {"HDPE film pellets", "PET flakes, clear", "PP copolymer", "LDPE regrind",
                                  "ABS granulate"};
const char* const kLocations[] = {"Ningbo, CN", "Rotterdam, NL", "Houston, US", "Antwerp, BE", "Busan, KR"};
const char* const kCurrencies[] = {"EUR", "USD", "JPY", "GBP"};

std::string rowId(std::size_t n) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "\"r%06zu\"", n);
  return buffer;
}

std::string row(std::size_t n, std::mt19937_64& random, int tick = 0) {
  char buffer[512];
  std::snprintf(
      buffer, sizeof buffer,
      "{\"id\":%s,\"material\":\"%s\",\"location\":\"%s\",\"price\":%llu.%02llu,\"currency\":\"%s\","
      "\"change24h\":-0.%02llu,\"updatedAt\":\"2024-10-31T20:%02llu:56.139Z\",\"supplier\":{\"id\":\"s%04llu\","
      "\"name\":\"Pioneer Co., Ltd.\",\"rating\":4.%llu}}",
      rowId(n).c_str(), kMaterials[n % 5], kLocations[(n / 5) % 5],
      static_cast<unsigned long long>(1000 + random() % 1000 + tick), static_cast<unsigned long long>(random() % 100),
      kCurrencies[n % 4], static_cast<unsigned long long>(random() % 100),
      static_cast<unsigned long long>(random() % 60), static_cast<unsigned long long>(n % 300),
      static_cast<unsigned long long>(random() % 10));
  return buffer;
}

std::string board(std::size_t rows, std::mt19937_64& random) {
  std::string doc = "[";
  for (std::size_t i = 0; i < rows; ++i) {
    if (i > 0) doc.push_back(',');
    doc += row(i, random);
  }
  return doc + "]";
}

// Microseconds per call of `step` (after a warm-up), the median of 5 runs.
double measure(int calls, const std::function<void(int)>& step) {
  std::vector<double> runs;
  int i = 0;
  for (int w = 0; w < calls / 10 + 1; ++w) step(i++);
  for (int run = 0; run < 5; ++run) {
    const auto start = std::chrono::steady_clock::now();
    for (int c = 0; c < calls; ++c) step(i++);
    const std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
    runs.push_back(took.count() / calls);
  }
  std::sort(runs.begin(), runs.end());
  return runs[2];
}

struct Case {
  const char* name;
  // One change to `store` (topic "t" of `rows` rows), the i-th of the run.
  std::function<void(TopicStore&, std::size_t rows, std::mt19937_64&, int)> step;
};

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const std::size_t sizes[] = {1000, 10000};
  std::int64_t now = 0;
  const std::vector<Case> cases = {
      {"upsert (a price tick of one row)",
       [&](TopicStore& store, std::size_t rows, std::mt19937_64& random, int i) {
         const std::size_t n = random() % rows;
         store.upsert("t", rowId(n), row(n, random, i), "", ++now);
       }},
      {"upsert of a new row, then remove it",
       [&](TopicStore& store, std::size_t rows, std::mt19937_64& random, int) {
         store.upsert("t", rowId(rows), row(rows, random), "", ++now);
         store.remove("t", rowId(rows), "", ++now);
       }},
      {"remove of a middle row, then upsert it back (at the end)",
       [&](TopicStore& store, std::size_t rows, std::mt19937_64& random, int) {
         const std::size_t n = random() % rows;
         store.remove("t", rowId(n), "", ++now);
         store.upsert("t", rowId(n), row(n, random), "", ++now);
       }},
      {"patch: replace \"/<index>\" with the whole row",
       [&](TopicStore& store, std::size_t rows, std::mt19937_64& random, int i) {
         const std::size_t index = random() % rows;
         const auto snapshot = store.get("t");
         (void)snapshot;
         // Row ids move with remove/upsert above: this case runs on a fresh topic, where row i is r<i>.
         store.patch("t",
                     "[{\"op\":\"replace\",\"path\":\"/" + std::to_string(index) +
                         "\",\"value\":" + row(index, random, i) + "}]",
                     "", ++now);
       }},
      {"upsert, then the whole text read (a snapshot for a new subscriber)",
       [&](TopicStore& store, std::size_t rows, std::mt19937_64& random, int i) {
         const std::size_t n = random() % rows;
         store.upsert("t", rowId(n), row(n, random, i), "", ++now);
         (void)store.get("t")->json.size();
         (void)store.get("t")->json.str().size();
       }},
  };
  std::printf("Core-thread cost of row-level changes, microseconds per change (median of 5 runs)\n\n");
  std::printf("%-68s %10s %10s %8s %10s %10s %8s\n", "", "rows 1k", "rows 10k", "10k/1k", "whole 1k", "whole 10k",
              "10k/1k");
  for (const Case& c : cases) {
    double us[2][2] = {};  // [keepRows][size]
    for (int keep = 1; keep >= 0; --keep) {
      for (int s = 0; s < 2; ++s) {
        StoreOptions options;
        options.keepRows = keep == 1;
        TopicStore store(options);
        std::mt19937_64 random(42);
        store.publishJson("t", board(sizes[s], random), "", ++now);
        const int calls = quick ? 50 : (keep == 1 ? 4000 : (sizes[s] > 1000 ? 100 : 1000));
        us[keep][s] = measure(calls, [&](int i) { c.step(store, sizes[s], random, i); });
      }
    }
    std::printf("%-68s %10.2f %10.2f %7.2fx %10.1f %10.1f %7.2fx\n", c.name, us[1][0], us[1][1], us[1][1] / us[1][0],
                us[0][0], us[0][1], us[0][1] / us[0][0]);
    std::printf("%-68s %10s %9.0fx faster at 10k rows than the whole-text path\n", "", "", us[0][1] / us[1][1]);
  }
  return 0;
}
