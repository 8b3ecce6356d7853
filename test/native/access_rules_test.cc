#include "deltacast/access_rules.h"

#include <gtest/gtest.h>

namespace deltacast {
namespace {

TEST(AccessRules, NoRulesMeansOpen) {
  AccessRules rules;
  EXPECT_TRUE(rules.open());
  EXPECT_TRUE(rules.allows({}, "anything/at/all"));
}

TEST(AccessRules, RolesPerPattern) {
  AccessRules rules({{"prices/*", {}}, {"admin/**", {"admin"}}, {"ops/**", {"ops", "admin"}}});
  const Principal anonymous;
  const Principal trader{"u1", {"trader"}};
  const Principal admin{"u2", {"admin"}};
  EXPECT_TRUE(rules.allows(anonymous, "prices/eu"));
  EXPECT_FALSE(rules.allows(anonymous, "admin/users"));
  EXPECT_FALSE(rules.allows(trader, "admin/users"));
  EXPECT_TRUE(rules.allows(admin, "admin/users"));
  EXPECT_TRUE(rules.allows(admin, "ops/x/y"));
  EXPECT_FALSE(rules.allows(trader, "ops/x"));
  EXPECT_FALSE(rules.allows(admin, "unlisted"));  // once there are rules, unlisted is refused
}

TEST(AccessRules, UserScopedTopics) {
  AccessRules rules(std::vector<AccessRule>{{"user/{userId}/**", {}}});
  const Principal alice{"alice", {}};
  const Principal bob{"bob", {}};
  EXPECT_TRUE(rules.allows(alice, "user/alice/orders"));
  EXPECT_FALSE(rules.allows(bob, "user/alice/orders"));
  EXPECT_FALSE(rules.allows({}, "user/alice/orders"));         // anonymous has no id
  EXPECT_FALSE(rules.allows({"*", {}}, "user/alice/orders"));  // an id cannot act as a pattern
  EXPECT_FALSE(rules.allows({"alice/x", {}}, "user/alice/x/orders"));
}

}  // namespace
}  // namespace deltacast
