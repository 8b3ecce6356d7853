// AccessRules: which connections may subscribe to which topics.
//
// A rule is a topic pattern (topic_pattern.h) plus the roles it admits. The
// segment "{userId}" in a pattern matches only the connecting user's own id,
// so "user/{userId}/**" admits each user to their own topics only. An empty
// role list admits every connection (authenticated or not) to the pattern.
//
// No rules at all: every topic is open (say so loudly in the docs). Once any
// rule is given, a topic that no rule admits is refused.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace deltacast {

struct AccessRule {
  std::string pattern;
  std::vector<std::string> roles;  // empty: anyone
};

struct Principal {
  std::string id;  // empty: anonymous
  std::vector<std::string> roles;
};

class AccessRules {
 public:
  AccessRules() = default;
  explicit AccessRules(std::vector<AccessRule> rules) : rules_(std::move(rules)) {}

  bool open() const noexcept { return rules_.empty(); }
  bool allows(const Principal& who, std::string_view topic) const;

 private:
  std::vector<AccessRule> rules_;
};

}  // namespace deltacast
