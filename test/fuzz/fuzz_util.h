// Shared by the libFuzzer targets: a finding is a crash (abort) with a message.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include "deltacast/json_tape.h"

namespace deltacast::fuzz {

// Under libFuzzer a finding aborts (the fuzzer saves the input); in the
// GoogleTest replay of saved inputs (replay_test.cc) it throws.
[[noreturn]] inline void finding(const char* what, std::string_view detail = {}) {
#ifdef DELTACAST_FUZZ_REPLAY
  throw std::runtime_error(std::string(what) + ": " + std::string(detail));
#else
  std::fprintf(stderr, "deltacast fuzz finding: %s\n%.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
#endif
}

// Every text the core hands out must be JSON a client can parse.
inline void requireJson(std::string_view text, const char* what) {
  JsonTape tape;
  if (!tape.parse(text, ParseLimits{1u << 30, 100000}).isOk()) finding(what, text);
}

// Splits the fuzzer's input at the first "\n\n" (or in the middle when there is none).
inline void splitInTwo(std::string_view input, std::string_view& a, std::string_view& b) {
  const std::size_t cut = input.find("\n\n");
  if (cut == std::string_view::npos) {
    a = input.substr(0, input.size() / 2);
    b = input.substr(input.size() / 2);
  } else {
    a = input.substr(0, cut);
    b = input.substr(cut + 2);
  }
}

}  // namespace deltacast::fuzz
