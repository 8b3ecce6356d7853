// Frames: the server messages of docs/protocol.md, encoded as JSON text.
//
// A Frame is immutable and shared: one encoding of a snapshot or a patch
// goes, by pointer, to every connection that needs it. Every function here
// is pure (no state, no clock), so the encodings are tested on their own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace deltacast {

using Frame = std::shared_ptr<const std::string>;

namespace frames {

// The change ids (publish/patch/upsert/remove `{ id }`) a patch frame
// contains: at most kMaxFrameIds; past that, or when some of the versions it
// spans are not known here, `ids` is left out and `idsTruncated` is true.
inline constexpr std::size_t kMaxFrameIds = 64;
struct PatchIds {
  std::vector<std::string_view> ids;
  bool truncated = false;
};

// {"t":"snap","topic":…,"epoch":…,"version":…,"data":<json>}
Frame snapshot(std::string_view topic, std::string_view epoch, std::uint64_t version, std::string_view json);

// {"t":"patch","topic":…,"epoch":…,"from":…,"to":…,"ops":<ops>[,"ids":[…]][,"idsTruncated":true]};
// `ops` is a JSON array text; `ids` only when there are some.
Frame patch(std::string_view topic, std::string_view epoch, std::uint64_t from, std::uint64_t to, std::string_view ops,
            const PatchIds& ids = {});

// A patch whose ops are those of several steps (each a JSON array text), in order.
Frame patchOfSteps(std::string_view topic, std::string_view epoch, std::uint64_t from, std::uint64_t to,
                   const std::vector<std::string_view>& steps, const PatchIds& ids = {});

// {"t":"gone","topic":…,"epoch":…,"version":…,"reason":…}
Frame gone(std::string_view topic, std::string_view epoch, std::uint64_t version, std::string_view reason);

// {"t":"err","code":…,"message":…[,"topic":…]}; no topic member when `topic` is empty.
Frame error(std::string_view code, std::string_view message, std::string_view topic = {});

// {"t":"ping"}, one shared frame.
const Frame& ping();

bool isSnapshot(const Frame& frame);

// The frames for one connection, as few as possible: one goes alone, several
// as `batch` frames of at most `maxBytes` each (an item that does not fit in
// the current batch starts the next; one too large for any batch goes alone).
std::vector<Frame> batches(std::vector<Frame> items, std::size_t maxBytes);

}  // namespace frames
}  // namespace deltacast
