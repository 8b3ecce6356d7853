// TokenBucket: the inbound rate limit of a connection. `rate` tokens per
// second refill a bucket of at most `burst` tokens; each message takes one.
// Time is passed in (milliseconds), so a manual clock makes it deterministic.
#pragma once

#include <algorithm>
#include <cstdint>

namespace deltacast {

class TokenBucket {
 public:
  TokenBucket(double ratePerSecond, double burst, std::int64_t now)
      : rate_(ratePerSecond), burst_(burst), tokens_(burst), last_(now) {}

  // Takes `cost` tokens if there are enough; false (and nothing taken) otherwise.
  bool take(std::int64_t now, double cost = 1) {
    refill(now);
    if (tokens_ < cost) return false;
    tokens_ -= cost;
    return true;
  }

  double tokens(std::int64_t now) {
    refill(now);
    return tokens_;
  }

 private:
  void refill(std::int64_t now) {
    if (now > last_) {
      tokens_ = std::min(burst_, tokens_ + rate_ * static_cast<double>(now - last_) / 1000.0);
      last_ = now;
    }
  }

  double rate_;
  double burst_;
  double tokens_;
  std::int64_t last_;
};

}  // namespace deltacast
