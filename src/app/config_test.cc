#include "app/config.h"

#include <gtest/gtest.h>

namespace berth {
namespace {

TEST(ConfigTest, DefaultsValidate) {
  ServerConfig c;
  ASSERT_TRUE(Validate(&c).ok());
  EXPECT_EQ(c.api_addr.host, "127.0.0.1");
  EXPECT_EQ(c.api_addr.port, 7070);
  EXPECT_EQ(c.sqlite_path, "./data/berth.db");
}

TEST(ConfigTest, LayersApplyInOrder) {
  ServerConfig c;
  ASSERT_TRUE(ApplyConfigText("# comment\napi = 127.0.0.2:9000\ndata=/tmp/x # trailing\n"
                              "sync = \"normal\"\n",
                              "berth.conf", &c)
                  .ok());
  EXPECT_EQ(c.api, "127.0.0.2:9000");
  EXPECT_EQ(c.data_dir, "/tmp/x");
  EXPECT_EQ(c.sync, "normal");
  std::map<std::string, std::string> env = {{"BERTH_API", "127.0.0.3:9001"}};
  ASSERT_TRUE(ApplyEnvironment(
                  [&](const char* k) -> const char* {
                    auto it = env.find(k);
                    return it == env.end() ? nullptr : it->second.c_str();
                  },
                  &c)
                  .ok());
  EXPECT_EQ(c.api, "127.0.0.3:9001");
  ASSERT_TRUE(ApplySetting("api", "127.0.0.4:0", "--api", &c).ok());
  ASSERT_TRUE(Validate(&c).ok());
  EXPECT_EQ(c.api_addr.host, "127.0.0.4");
  EXPECT_EQ(c.api_addr.port, 0);
  EXPECT_EQ(c.sqlite_path, "/tmp/x/berth.db");
}

TEST(ConfigTest, ErrorsNameTheSetting) {
  ServerConfig c;
  Status s = ApplyConfigText("api = 1\nbogus = 2\n", "berth.conf", &c);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("berth.conf:2"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("bogus"), std::string::npos);

  EXPECT_NE(ApplySetting("body_limit", "lots", "BERTH_BODY_LIMIT", &c).message().find("BERTH_BODY_LIMIT"),
            std::string::npos);
  EXPECT_FALSE(ApplySetting("sync", "sometimes", "--sync", &c).ok());
  EXPECT_FALSE(ApplyConfigText("just words\n", "f", &c).ok());

  ServerConfig bad;
  bad.api = "localhost";
  Status v = Validate(&bad);
  EXPECT_EQ(v.field(), "api");
  bad = ServerConfig{};
  bad.api = "127.0.0.1:70000";
  EXPECT_FALSE(Validate(&bad).ok());
  bad = ServerConfig{};
  bad.store = "postgres://db/berth";
  EXPECT_NE(Validate(&bad).message().find("PostgreSQL"), std::string::npos);
  bad = ServerConfig{};
  bad.log_level = "loud";
  EXPECT_EQ(Validate(&bad).field(), "log_level");
}

TEST(ConfigTest, DomainSuffix) {
  ServerConfig c;
  EXPECT_EQ(c.domain_suffix, "localhost");
  ASSERT_TRUE(ApplyConfigText("domain_suffix = Apps.Example.com\n", "berth.conf", &c).ok());
  EXPECT_EQ(c.domain_suffix, "apps.example.com");
  for (const char* bad : {"", "*.example.com", "bad_suffix", "a..b", "-x.com"}) {
    Status s = ApplySetting("domain_suffix", bad, "BERTH_DOMAIN_SUFFIX", &c);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.message().find("BERTH_DOMAIN_SUFFIX"), std::string::npos) << s.message();
  }
  EXPECT_EQ(c.domain_suffix, "apps.example.com");
}

}  // namespace
}  // namespace berth
