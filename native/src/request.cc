#include "deltacast/request.h"

#include <cstring>

namespace deltacast {

namespace {

// Reads one buffer of records; with Decode the fields land in a Request,
// without it the pass only checks bounds.
template <bool Decode>
class Reader {
 public:
  Reader(std::string_view bytes, std::vector<std::string>* staged, std::size_t stagedCount)
      : bytes_(bytes), staged_(staged), stagedCount_(stagedCount) {}

  bool done() const { return pos_ == bytes_.size(); }
  std::size_t offset() const { return pos_; }

  bool u8(std::uint8_t& out) {
    if (bytes_.size() - pos_ < 1) return false;
    out = static_cast<std::uint8_t>(bytes_[pos_++]);
    return true;
  }
  bool u32(std::uint32_t& out) {
    if (bytes_.size() - pos_ < 4) return false;
    const auto* p = reinterpret_cast<const unsigned char*>(bytes_.data() + pos_);
    out = static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
          static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
    pos_ += 4;
    return true;
  }
  bool f64(double& out) {
    if (bytes_.size() - pos_ < 8) return false;
    std::uint64_t bits = 0;
    for (int i = 7; i >= 0; --i) bits = bits << 8 | static_cast<unsigned char>(bytes_[pos_ + i]);
    std::memcpy(&out, &bits, sizeof out);
    pos_ += 8;
    return true;
  }
  bool str(std::string* out) {
    std::uint32_t length = 0;
    if (!u32(length) || bytes_.size() - pos_ < length) return false;
    if constexpr (Decode) {
      // Appended, not assigned: the string is empty (reset), and append is
      // the shorter path (no overlap to handle).
      out->clear();
      out->append(bytes_.data() + pos_, length);
    }
    pos_ += length;
    return true;
  }
  // A str, or a staged payload (each may be taken once).
  bool payload(std::string* out) {
    const std::size_t at = pos_;
    std::uint32_t length = 0;
    if (!u32(length)) return false;
    if (length != kStagedPayload) {
      pos_ = at;
      return str(out);
    }
    std::uint32_t index = 0;
    if (!u32(index) || index >= stagedCount_) return false;
    if (used_.size() < stagedCount_) used_.resize(stagedCount_, false);
    if (used_[index]) return false;
    used_[index] = true;
    if constexpr (Decode) *out = std::move((*staged_)[index]);
    return true;
  }
  bool count(double value, double max) const {
    return value >= 0 && value <= max && value == static_cast<std::uint64_t>(value);
  }

 private:
  std::string_view bytes_;
  std::size_t pos_ = 0;
  std::vector<std::string>* staged_;
  std::size_t stagedCount_;
  std::vector<bool> used_;
};

// Back to a fresh request, keeping what its strings and vectors allocated
// (a batch of publishes decodes into one Request, not one each).
void reset(Request& r) {
  r.id = 0;
  r.kind = RequestKind::PublishJson;
  r.topic.clear();
  r.payload.clear();
  r.key.clear();
  r.changeId.clear();
  r.ms = 0;
  r.connection = 0;
  r.principal.id.clear();
  r.principal.roles.clear();
  r.acks = true;
  r.expiresAt = -1;
  r.reauth = ReauthStatus::Verified;
  r.lane.reset();
  r.release = false;
  r.held = false;
  r.replicaMode = ReplicaMode::State;
  r.position = 0;
  r.releaseFollows = false;
  r.heldId = 0;
  r.offset = 0;
}

// Each record decoded (Decode) or only checked, in order; `each(request)`
// gets every decoded one and returns false to stop.
template <bool Decode, class Slot, class Each>
Status walk(std::string_view bytes, std::vector<std::string>* staged, std::size_t stagedCount, Slot&& slot, Each&& each,
            std::size_t& count, std::vector<std::uint32_t>* answeredIds) {
  Reader<Decode> in(bytes, staged, stagedCount);
  count = 0;
  while (!in.done()) {
    const std::size_t at = in.offset();
    Request& r = slot();  // checked only (not Decode): nothing is written into its strings
    if constexpr (Decode) {
      reset(r);
      r.offset = at;
    }
    std::uint8_t kind = 0;
    bool ok = in.u8(kind) && kind <= static_cast<std::uint8_t>(RequestKind::Redate);
    if (ok) r.kind = static_cast<RequestKind>(kind);
    // `releases`: the byte may carry the release flag (0x80) or the held flag
    // (0x40), PublishJson and Patch.
    const auto lane = [&](bool releases = false) {
      std::uint8_t value = 0;
      if (!in.u8(value)) return false;
      if (releases && (value & 0xC0) != 0) {
        r.release = (value & 0x80) != 0;
        r.held = true;
        value &= 0x3F;
      }
      if (value > 4) return false;
      if (Decode && value != 0) r.lane = static_cast<Lane>(value - 1);
      return true;
    };
    // expiresAt: -1 (never) or a time on the hub's clock, in ms
    const auto expiry = [&]() {
      double value = 0;
      if (!in.f64(value) || (value != -1 && !in.count(value, 9007199254740991.0))) return false;
      r.expiresAt = static_cast<std::int64_t>(value);
      return true;
    };
    const auto principal = [&]() {
      std::uint32_t roles = 0;
      bool good = in.str(&r.principal.id) && in.u32(roles);
      for (std::uint32_t i = 0; good && i < roles; ++i) {
        std::string* role = Decode ? &r.principal.roles.emplace_back() : nullptr;
        good = in.str(role);
      }
      return good;
    };
    const auto connection = [&]() {
      double value = 0;
      if (!in.f64(value) || !in.count(value, 9007199254740991.0)) return false;
      r.connection = static_cast<ConnectionId>(value);
      return true;
    };
    if (ok) {
      switch (r.kind) {
        case RequestKind::PublishJson:
        case RequestKind::Patch:
          ok = in.u32(r.id) && in.str(&r.topic) && in.payload(&r.payload) && in.str(&r.changeId) && lane(true);
          break;
        case RequestKind::Hold: {
          double heldId = 0;
          ok = in.str(&r.topic) && lane() && in.f64(heldId) && in.count(heldId, 9007199254740991.0) && heldId >= 1;
          if (ok) r.heldId = static_cast<std::uint64_t>(heldId);
          break;
        }
        case RequestKind::Release: ok = in.str(&r.topic); break;
        case RequestKind::Redate: {
          std::uint8_t laneByte = 0;  // 0x80: the release follows
          std::uint32_t ago = 0;
          double position = 0;
          ok = in.str(&r.topic) && in.u8(laneByte) && (laneByte & 0x7F) <= 4 && in.u32(ago) && in.f64(position) &&
               in.count(position, 9007199254740991.0);
          if (ok) {
            if (Decode && (laneByte & 0x7F) != 0) r.lane = static_cast<Lane>((laneByte & 0x7F) - 1);
            r.releaseFollows = (laneByte & 0x80) != 0;
            r.ms = ago;
            r.position = static_cast<std::uint64_t>(position);
          }
          break;
        }
        case RequestKind::Upsert:
          ok = in.u32(r.id) && in.str(&r.topic) && in.str(&r.key) && in.payload(&r.payload) && in.str(&r.changeId) &&
               lane();
          break;
        case RequestKind::Remove:
          ok = in.u32(r.id) && in.str(&r.topic) && in.str(&r.key) && in.str(&r.changeId) && lane();
          break;
        case RequestKind::Delete: ok = in.u32(r.id) && in.str(&r.topic); break;
        case RequestKind::Advance: {
          double ms = 0;
          ok = in.u32(r.id) && in.f64(ms) && in.count(ms, 9007199254740991.0);
          if (ok) r.ms = static_cast<std::int64_t>(ms);  // out of range: not converted (UB)
          break;
        }
        case RequestKind::Close: ok = in.u32(r.id); break;
        case RequestKind::Connect: {
          ok = connection() && principal();
          std::uint8_t acks = 1;
          ok = ok && in.u8(acks) && acks <= 1;
          r.acks = acks == 1;
          ok = ok && expiry() && in.str(&r.key);
          break;
        }
        case RequestKind::Reauth: {
          std::uint8_t status = 0;
          ok = connection() && in.u8(status) && status <= 2 && principal() && expiry();
          r.reauth = static_cast<ReauthStatus>(status);
          break;
        }
        case RequestKind::Disconnect: ok = connection(); break;
        case RequestKind::Receive: ok = connection() && in.payload(&r.payload); break;
        case RequestKind::Replicate: {
          double version = 0;
          std::uint8_t mode = 0;
          ok = in.u32(r.id) && in.str(&r.topic) && in.str(&r.key) && in.f64(version) &&
               in.count(version, 9007199254740991.0) && in.u8(mode) && mode <= 3 && in.payload(&r.payload);
          if (ok) {
            r.ms = static_cast<std::int64_t>(version);
            r.replicaMode = static_cast<ReplicaMode>(mode);
          }
          break;
        }
        case RequestKind::Refuse: {
          std::uint8_t code = 0;
          ok = connection() && in.u8(code) && code <= 1 && in.str(&r.payload);
          r.ms = code;
          break;
        }
        case RequestKind::Congestion: {
          std::uint8_t congested = 0;
          ok = connection() && in.u8(congested) && congested <= 1;
          r.ms = congested;
          break;
        }
      }
    }
    if (!ok) {
      return Status(ErrorCode::InvalidArgument,
                    "malformed request record " + std::to_string(count) + " at byte " + std::to_string(at));
    }
    if (answeredIds != nullptr && isAnswered(r.kind)) answeredIds->push_back(r.id);
    ++count;
    if constexpr (Decode) {
      if (!each(r)) break;
    }
  }
  return Status::ok();
}

}  // namespace

Status validateRequests(std::string_view bytes, std::size_t staged, std::size_t& count,
                        std::vector<std::uint32_t>* answeredIds) {
  if (answeredIds != nullptr) answeredIds->clear();
  Request scratch;
  const Status status = walk<false>(
      bytes, nullptr, staged, [&]() -> Request& { return scratch; }, [](Request&) { return true; }, count, answeredIds);
  if (!status && answeredIds != nullptr) answeredIds->clear();
  return status;
}

Status decodeRequests(std::string_view bytes, std::vector<std::string>& staged, std::vector<Request>& out) {
  std::size_t count = 0;
  const std::size_t before = out.size();
  Status status = walk<true>(
      bytes, &staged, staged.size(), [&]() -> Request& { return out.emplace_back(); }, [](Request&) { return true; },
      count, nullptr);
  if (!status) out.resize(before);  // all or nothing
  return status;
}

Status forEachRequest(std::string_view bytes, std::vector<std::string>& staged, const std::function<Request&()>& slot,
                      const std::function<bool(Request&)>& each) {
  std::size_t count = 0;
  return walk<true>(bytes, &staged, staged.size(), slot, each, count, nullptr);
}

}  // namespace deltacast
