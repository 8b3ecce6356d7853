// The request decoder (request.h): the byte records the JS side hands over.
// The first byte says how many staged payloads there are. Oracle: validation
// never crashes, and records it accepts decode, one request per record.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "deltacast/request.h"
#include "fuzz_util.h"

using namespace deltacast;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t stagedCount = data[0] % 4;
  std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  std::size_t count = 0;
  if (!validateRequests(bytes, stagedCount, count).isOk()) return 0;
  std::vector<std::string> staged;
  for (std::size_t i = 0; i < stagedCount; ++i) staged.push_back("{\"staged\":" + std::to_string(i) + "}");
  std::vector<Request> out;
  if (!decodeRequests(bytes, staged, out).isOk()) fuzz::finding("validated records that do not decode");
  if (out.size() != count) fuzz::finding("decoded a different number of requests than validated");
  return 0;
}
