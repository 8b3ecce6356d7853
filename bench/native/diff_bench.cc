// Micro-benchmarks of the diff core on the price-board fixtures that
// bench/data.js writes (`node bench/data.js --write-fixtures DIR`).
//
// For every pair <stem>-a.json / <stem>-b.json found in the fixture directory
// (env DELTACAST_FIXTURES, else build/bench-fixtures under the working
// directory, else under the source tree), four benchmarks are registered:
//
//   diffJson/<stem>   parse and validate both texts, then diff: what
//                     `diffJson(aText, bText)` costs in JS, minus the binding
//   held/<stem>       a's tape parsed once outside the loop; each iteration
//                     parses b (guided by a: unchanged containers are copied,
//                     not scanned) and diffs the tapes: the hub's publish path,
//                     which keeps the previous state's tape
//   parse/<stem>      JsonTape::parse of b alone, for reference
//   rapidjson/<stem>  rapidjson::Document::Parse of b alone, for reference
//
// Tapes and documents are built fresh in every iteration, as they would be
// for each published state; the output string keeps its capacity.
#include <benchmark/benchmark.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "deltacast/json_diff.h"
#include "deltacast/json_tape.h"

namespace {

namespace fs = std::filesystem;

struct Fixture {
  std::string stem;
  std::string a;
  std::string b;
};

bool readFile(const fs::path& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream buffer;
  buffer << in.rdbuf();
  out = buffer.str();
  return static_cast<bool>(in) || in.eof();
}

fs::path fixtureDirectory() {
  if (const char* env = std::getenv("DELTACAST_FIXTURES"); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  if (fs::is_directory("build/bench-fixtures", ec)) return "build/bench-fixtures";
#ifdef DELTACAST_DEFAULT_FIXTURES
  return DELTACAST_DEFAULT_FIXTURES;
#else
  return "build/bench-fixtures";
#endif
}

// Sort key of a stem such as "board-1000-10pct-insdel": its numbers in order
// (size, then percentage), then the kind as bench/data.js lists them, so the
// output runs from small to large rather than in lexicographic order.
struct StemOrder {
  std::vector<unsigned long> numbers;
  int kind = 3;
  std::string stem;

  explicit StemOrder(const std::string& s) : stem(s) {
    for (std::size_t i = 0; i < s.size();) {
      if (s[i] >= '0' && s[i] <= '9') {
        std::size_t j = i;
        while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
        numbers.push_back(std::strtoul(s.substr(i, j - i).c_str(), nullptr, 10));
        i = j;
      } else {
        ++i;
      }
    }
    const std::string_view tail = std::string_view(s).substr(s.rfind('-') + 1);
    kind = tail == "values" ? 0 : tail == "insdel" ? 1 : tail == "move" ? 2 : 3;
  }

  bool operator<(const StemOrder& other) const {
    if (numbers != other.numbers) return numbers < other.numbers;
    if (kind != other.kind) return kind < other.kind;
    return stem < other.stem;
  }
};

std::vector<std::unique_ptr<Fixture>> loadFixtures(const fs::path& dir) {
  std::vector<std::unique_ptr<Fixture>> fixtures;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return fixtures;
  constexpr std::string_view kSuffixA = "-a.json";
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= kSuffixA.size() || name.compare(name.size() - kSuffixA.size(), kSuffixA.size(), kSuffixA) != 0) {
      continue;
    }
    auto fixture = std::make_unique<Fixture>();
    fixture->stem = name.substr(0, name.size() - kSuffixA.size());
    const fs::path pathB = dir / (fixture->stem + "-b.json");
    if (!readFile(entry.path(), fixture->a) || !readFile(pathB, fixture->b)) {
      std::fprintf(stderr, "diff_bench: skipping %s (no readable %s)\n", name.c_str(), pathB.string().c_str());
      continue;
    }
    fixtures.push_back(std::move(fixture));
  }
  std::sort(fixtures.begin(), fixtures.end(),
            [](const auto& x, const auto& y) { return StemOrder(x->stem) < StemOrder(y->stem); });
  return fixtures;
}

void setCommonCounters(benchmark::State& state, std::size_t bytesPerIteration, const std::string& patch,
                       const deltacast::DiffStats& stats) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytesPerIteration));
  state.counters["patch_bytes"] = benchmark::Counter(static_cast<double>(patch.size()));
  state.counters["ops"] = benchmark::Counter(static_cast<double>(stats.operations));
}

void benchDiffJson(benchmark::State& state, const Fixture* fixture) {
  const deltacast::DiffOptions options;
  deltacast::DiffStats stats;
  std::string out;
  for (auto _ : state) {
    out.clear();
    stats = {};
    deltacast::Status status = deltacast::diffJson(fixture->a, fixture->b, options, out, {}, &stats);
    if (!status) {
      state.SkipWithError(status.message().c_str());
      return;
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  setCommonCounters(state, fixture->a.size() + fixture->b.size(), out, stats);
}

void benchHeld(benchmark::State& state, const Fixture* fixture) {
  const deltacast::DiffOptions options;
  deltacast::JsonTape held;
  if (deltacast::Status status = held.parse(fixture->a); !status) {
    state.SkipWithError(status.message().c_str());
    return;
  }
  deltacast::DiffStats stats;
  std::string out;
  for (auto _ : state) {
    deltacast::JsonTape next;
    deltacast::Status status = next.parse(fixture->b, {}, &held);  // guided by the held state
    if (!status) {
      state.SkipWithError(status.message().c_str());
      return;
    }
    out.clear();
    stats = {};
    status = deltacast::diffTapes(held, next, options, out, &stats);
    if (!status) {
      state.SkipWithError(status.message().c_str());
      return;
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  setCommonCounters(state, fixture->b.size(), out, stats);
}

void benchParse(benchmark::State& state, const Fixture* fixture) {
  for (auto _ : state) {
    deltacast::JsonTape tape;
    deltacast::Status status = tape.parse(fixture->b);
    if (!status) {
      state.SkipWithError(status.message().c_str());
      return;
    }
    benchmark::DoNotOptimize(tape.size());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(fixture->b.size()));
}

void benchRapidJson(benchmark::State& state, const Fixture* fixture) {
  for (auto _ : state) {
    rapidjson::Document document;
    document.Parse(fixture->b.data(), fixture->b.size());
    if (document.HasParseError()) {
      state.SkipWithError("rapidjson: parse error");
      return;
    }
    benchmark::DoNotOptimize(document.Size());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(fixture->b.size()));
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  const fs::path dir = fixtureDirectory();
  // Registered benchmarks keep raw pointers into these; they live until exit.
  static std::vector<std::unique_ptr<Fixture>> fixtures = loadFixtures(dir);
  if (fixtures.empty()) {
    std::fprintf(stderr,
                 "diff_bench: no fixture pairs (*-a.json + *-b.json) in %s\n"
                 "  write them with:  node bench/data.js --write-fixtures %s\n"
                 "  or point DELTACAST_FIXTURES at a directory that has them.\n",
                 dir.string().c_str(), dir.string().c_str());
    return 1;
  }

  for (const auto& fixture : fixtures) {
    const Fixture* f = fixture.get();
    benchmark::RegisterBenchmark(("diffJson/" + f->stem).c_str(), benchDiffJson, f)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("held/" + f->stem).c_str(), benchHeld, f)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("parse/" + f->stem).c_str(), benchParse, f)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("rapidjson/" + f->stem).c_str(), benchRapidJson, f)->Unit(benchmark::kMicrosecond);
  }

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
