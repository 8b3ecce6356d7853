#include "deltacast/flow_control.h"

namespace deltacast {

template <class Drop>
void CreditWindow::release(Drop&& drop) {
  for (auto it = unacked_.begin(); it != unacked_.end();) {
    if (drop(*it)) {
      unackedBytes_ -= it->bytes;
      it = unacked_.erase(it);
    } else {
      ++it;
    }
  }
}

void CreditWindow::charge(std::string_view topic, std::string_view epoch, std::uint64_t version, std::size_t bytes) {
  // Without acks, frames count only while the transport is congested (the
  // critical frames it is still handed); a drain forgets them.
  if (!acks_ && !congested_) return;
  release([&](const Unacked& u) { return u.topic == topic && u.epoch != epoch; });
  unacked_.push_back({std::string(topic), std::string(epoch), version, bytes});
  unackedBytes_ += bytes;
}

void CreditWindow::acknowledge(std::string_view topic, std::uint64_t version) {
  release([&](const Unacked& u) { return u.topic == topic && u.version <= version; });
}

void CreditWindow::forget(std::string_view topic) {
  release([&](const Unacked& u) { return u.topic == topic; });
}

std::uint64_t CreditWindow::newestUnacked(std::string_view topic) const noexcept {
  std::uint64_t newest = 0;
  for (const Unacked& u : unacked_) {
    if (u.topic == topic && u.version > newest) newest = u.version;
  }
  return newest;
}

bool CreditWindow::congestion(bool congested) {
  if (congested_ == congested) return false;
  congested_ = congested;
  if (!congested && !acks_) release([](const Unacked&) { return true; });
  return true;
}

}  // namespace deltacast
