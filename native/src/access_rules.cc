#include "deltacast/access_rules.h"

#include "deltacast/topic_pattern.h"

namespace deltacast {

namespace {

constexpr std::string_view kUserId = "{userId}";

// Substitutes the principal's id for every "{userId}"; false when the pattern
// needs an id and there is none, or the id could escape its segment.
bool bindUser(std::string_view pattern, const Principal& who, std::string& out) {
  out.clear();
  std::size_t at = 0;
  for (;;) {
    const std::size_t found = pattern.find(kUserId, at);
    if (found == std::string_view::npos) break;
    if (who.id.empty() || who.id.find_first_of("/*") != std::string::npos) return false;
    out.append(pattern.substr(at, found - at));
    out.append(who.id);
    at = found + kUserId.size();
  }
  out.append(pattern.substr(at));
  return true;
}

}  // namespace

bool AccessRules::allows(const Principal& who, std::string_view topic) const {
  if (rules_.empty()) return true;
  std::string bound;
  for (const AccessRule& rule : rules_) {
    if (!bindUser(rule.pattern, who, bound) || !topicMatches(bound, topic)) continue;
    if (rule.roles.empty()) return true;
    for (const std::string& role : rule.roles) {
      for (const std::string& held : who.roles) {
        if (role == held) return true;
      }
    }
  }
  return false;
}

}  // namespace deltacast
