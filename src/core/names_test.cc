#include "core/names.h"

#include <gtest/gtest.h>

#include "core/clock.h"

namespace berth {
namespace {

TEST(NamesTest, DnsLabelAcceptsValidNames) {
  for (const char* n : {"a", "shop", "web-1", "a0", "x123456789-abcdefghij"}) {
    EXPECT_TRUE(ValidateDnsLabel(n, "app name").ok()) << n;
  }
  EXPECT_TRUE(ValidateDnsLabel(std::string(63, 'a'), "app name").ok());
}

TEST(NamesTest, DnsLabelRejectsWithStableCodeAndField) {
  for (const char* n : {"", "Shop", "1web", "web-", "we_b", "we.b", "-a", "a b", "ä"}) {
    Status s = ValidateDnsLabel(n, "app name");
    EXPECT_FALSE(s.ok()) << n;
    EXPECT_EQ(s.reason(), "invalid_name");
    EXPECT_EQ(s.field(), "name");
    EXPECT_NE(s.message().find("app name"), std::string::npos);
  }
  EXPECT_FALSE(ValidateDnsLabel(std::string(64, 'a'), "app name").ok());
}

TEST(NamesTest, UserNames) {
  EXPECT_TRUE(ValidateUserName("alice").ok());
  EXPECT_TRUE(ValidateUserName("alice.smith_2").ok());
  EXPECT_FALSE(ValidateUserName("alice.").ok());
  EXPECT_FALSE(ValidateUserName("Alice").ok());
  EXPECT_FALSE(ValidateUserName("_alice").ok());
}

TEST(NamesTest, EnvNames) {
  EXPECT_TRUE(ValidateEnvName("DATABASE_URL", "env").ok());
  EXPECT_TRUE(ValidateEnvName("_x1", "env").ok());
  EXPECT_FALSE(ValidateEnvName("1X", "env").ok());
  EXPECT_FALSE(ValidateEnvName("A-B", "env").ok());
  EXPECT_FALSE(ValidateEnvName("", "env").ok());
}

TEST(NamesTest, RelativePathsCannotEscape) {
  EXPECT_TRUE(ValidateRelativePath("config/app.ini", "path").ok());
  EXPECT_TRUE(ValidateRelativePath("a..b/c", "path").ok());
  EXPECT_FALSE(ValidateRelativePath("/etc/passwd", "path").ok());
  EXPECT_FALSE(ValidateRelativePath("../x", "path").ok());
  EXPECT_FALSE(ValidateRelativePath("a/../../x", "path").ok());
  EXPECT_FALSE(ValidateRelativePath("a/..", "path").ok());
  EXPECT_FALSE(ValidateRelativePath("", "path").ok());
}

TEST(ClockTest, FormatsRfc3339Utc) {
  EXPECT_EQ(FormatTime(FromUnixMillis(0)), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatTime(FromUnixMillis(1795432706123)), "2026-11-23T11:18:26.123Z");
}

}  // namespace
}  // namespace berth
