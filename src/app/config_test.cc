#include "app/config.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "app/gateway_process.h"

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

TEST(ConfigTest, GatewaySettings) {
  ServerConfig c;
  ASSERT_TRUE(Validate(&c).ok());
  EXPECT_TRUE(c.gateway);
  // By default a free port, chosen at start (ResolveAutoGatewayAdmin): two servers on one
  // machine must not both want the same one.
  EXPECT_EQ(c.gateway_admin, "auto");
  EXPECT_EQ(c.gateway_admin_addr.port, 0);
  ASSERT_TRUE(ApplySetting("gateway", "off", "--gateway", &c).ok());
  EXPECT_FALSE(c.gateway);
  Status s = ApplySetting("gateway", "maybe", "BERTH_GATEWAY", &c);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("BERTH_GATEWAY must be on or off"), std::string::npos) << s.message();
  ASSERT_TRUE(ApplySetting("gateway_admin", "127.0.0.1:0", "--gateway-admin", &c).ok());
  ASSERT_TRUE(Validate(&c).ok());
  EXPECT_EQ(c.gateway_admin_addr.port, 0);
  c.gateway_admin = "nowhere";
  EXPECT_EQ(Validate(&c).field(), "gateway_admin");

  // The gateway's threads: passed on to `berth gateway` (GatewayCommand).
  ServerConfig t;
  EXPECT_EQ(t.gateway_io_threads, 2);
  EXPECT_EQ(t.gateway_pin_io_threads, "auto");
  ASSERT_TRUE(ApplyConfigText("gateway_io_threads = 4\ngateway_pin_io_threads = off\n",
                              "berth.conf", &t).ok());
  EXPECT_EQ(t.gateway_io_threads, 4);
  EXPECT_EQ(t.gateway_pin_io_threads, "off");
  for (const char* bad : {"0", "257", "two"}) {
    Status e = ApplySetting("gateway_io_threads", bad, "--gateway-io-threads", &t);
    EXPECT_EQ(e.field(), "--gateway-io-threads") << bad;
  }
  Status e = ApplySetting("gateway_pin_io_threads", "sometimes", "BERTH_GATEWAY_PIN_IO_THREADS", &t);
  EXPECT_NE(e.message().find("BERTH_GATEWAY_PIN_IO_THREADS must be auto, on or off"),
            std::string::npos)
      << e.message();
  EXPECT_EQ(t.gateway_io_threads, 4);  // unchanged by refused values
  EXPECT_EQ(t.gateway_pin_io_threads, "off");
  GatewayProcessOptions go;
  go.data_dir = "/var/lib/berth";
  go.io_threads = t.gateway_io_threads;
  go.pin_io_threads = t.gateway_pin_io_threads;
  std::vector<std::string> cmd = GatewayCommand(go);
  auto after = [&](const std::string& flag) {
    auto it = std::find(cmd.begin(), cmd.end(), flag);
    return it == cmd.end() || it + 1 == cmd.end() ? std::string("<missing>") : *(it + 1);
  };
  EXPECT_EQ(after("--io-threads"), "4");
  EXPECT_EQ(after("--pin-io-threads"), "off");
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
