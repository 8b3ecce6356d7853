// Replays the saved inputs of one fuzz target (its seed corpus and every input
// that once found a fault, test/fuzz/regressions/<target>) through the same
// LLVMFuzzerTestOneInput, as a GoogleTest in the ordinary test build. Under the
// sanitizer build this also catches memory and UB faults.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

std::vector<std::filesystem::path> inputsUnder(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  if (!std::filesystem::is_directory(dir)) return out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file()) out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void replay(const std::filesystem::path& dir, bool required) {
  const auto inputs = inputsUnder(dir);
  if (required) {
    ASSERT_FALSE(inputs.empty()) << "no inputs in " << dir;
  }
  for (const auto& file : inputs) {
    std::string bytes;
    std::FILE* in = std::fopen(file.c_str(), "rb");
    ASSERT_NE(in, nullptr) << "cannot read " << file;
    char buffer[4096];
    for (std::size_t got; (got = std::fread(buffer, 1, sizeof buffer, in)) > 0;) bytes.append(buffer, got);
    std::fclose(in);
    try {
      LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    } catch (const std::exception& e) {
      ADD_FAILURE() << file << ": " << e.what();
    }
  }
}

TEST(FuzzReplay, SeedCorpus) {
  replay(std::filesystem::path(DELTACAST_FUZZ_DIR) / "corpus" / DELTACAST_FUZZ_TARGET, true);
}

TEST(FuzzReplay, Regressions) {
  replay(std::filesystem::path(DELTACAST_FUZZ_DIR) / "regressions" / DELTACAST_FUZZ_TARGET, false);
}

}  // namespace
