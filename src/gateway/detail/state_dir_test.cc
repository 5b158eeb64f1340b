// The role's state directory (sealed snapshot, key, lock) and the control link's pure parts.
#include "gateway/detail/state_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gateway/detail/control_link.h"

namespace berth::gateway::detail {
namespace {

namespace fs = std::filesystem;

class StateDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-gwstate-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/gateway";
  }
  void TearDown() override { fs::remove_all(root_); }

  static std::string Read(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  static unsigned Mode(const std::string& path) {
    struct stat st {};
    ::stat(path.c_str(), &st);
    return st.st_mode & 0777;
  }

  std::string root_, dir_;
};

TEST_F(StateDirTest, SealsAndReopensTheSnapshot) {
  const std::string json =
      R"({"revision":7,"http_routes":[{"id":"a","domains":["secret.example"]}]})";
  {
    auto s = StateDir::Open(dir_);
    ASSERT_TRUE(s.ok()) << s.status().message();
    EXPECT_EQ(s->LoadSnapshot().status().code(), Code::kNotFound);
    ASSERT_TRUE(s->SaveSnapshot(json).ok());
    auto back = s->LoadSnapshot();
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(*back, json);
    EXPECT_EQ(Read(dir_ + "/gateway.pid"), std::to_string(::getpid()) + "\n");
  }
  EXPECT_EQ(Mode(dir_), 0700u);
  EXPECT_EQ(Mode(dir_ + "/snapshot.key"), 0600u);
  EXPECT_EQ(Mode(dir_ + "/snapshot.enc"), 0600u);
  std::string sealed = Read(dir_ + "/snapshot.enc");
  EXPECT_EQ(sealed.substr(0, 4), "BGS1");
  EXPECT_EQ(sealed.find("secret.example"), std::string::npos) << "stored in clear text";
  EXPECT_FALSE(fs::exists(dir_ + "/snapshot.enc.tmp"));

  // A restart (the lock was released) reads it with the same key.
  auto again = StateDir::Open(dir_);
  ASSERT_TRUE(again.ok()) << again.status().message();
  auto back = again->LoadSnapshot();
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, json);
}

TEST_F(StateDirTest, OneProcessPerDirectory) {
  auto first = StateDir::Open(dir_);
  ASSERT_TRUE(first.ok());
  auto second = StateDir::Open(dir_);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("another berth gateway (pid " +
                                           std::to_string(::getpid()) + ")"),
            std::string::npos)
      << second.status().message();
}

TEST_F(StateDirTest, TamperedOrForeignSnapshotsAreRefused) {
  {
    auto s = StateDir::Open(dir_);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(s->SaveSnapshot(R"({"revision":1})").ok());
  }
  std::string sealed = Read(dir_ + "/snapshot.enc");
  sealed[sealed.size() - 3] ^= 0x20;
  std::ofstream(dir_ + "/snapshot.enc", std::ios::binary | std::ios::trunc) << sealed;
  {
    auto s = StateDir::Open(dir_);
    ASSERT_TRUE(s.ok());
    auto back = s->LoadSnapshot();
    ASSERT_FALSE(back.ok());
    EXPECT_NE(back.status().message().find("does not decrypt"), std::string::npos);
  }
  std::ofstream(dir_ + "/snapshot.enc", std::ios::binary | std::ios::trunc) << "{\"plain\":1}";
  {
    auto s = StateDir::Open(dir_);
    ASSERT_TRUE(s.ok());
    EXPECT_FALSE(s->LoadSnapshot().ok());
  }
  // A lost key: the snapshot sealed with it is dropped rather than kept unreadable forever.
  fs::remove(dir_ + "/snapshot.key");
  {
    auto s = StateDir::Open(dir_);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->LoadSnapshot().status().code(), Code::kNotFound);
  }
  // A key file of the wrong size is an error, not a silent new key.
  std::ofstream(dir_ + "/snapshot.key", std::ios::binary | std::ios::trunc) << "short";
  auto bad = StateDir::Open(dir_);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("is not a key"), std::string::npos);
}

TEST(ControlUrlTest, Parses) {
  auto t = ParseControlUrl("http://127.0.0.1:7070");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->host, "127.0.0.1");
  EXPECT_EQ(t->port, "7070");
  EXPECT_EQ(t->base, "");
  t = ParseControlUrl("http://[::1]:81/berth/");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->host, "::1");
  EXPECT_EQ(t->port, "81");
  EXPECT_EQ(t->base, "/berth");
  t = ParseControlUrl("http://example");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->port, "80");
  for (const char* bad : {"https://x", "x:80", "http://", "http://h:0", "http://h:99999",
                          "http://h:8a", "http://h/p?q", "http://[::1"}) {
    EXPECT_FALSE(ParseControlUrl(bad).ok()) << bad;
  }
}

TEST(ControlLinkTest, RelevantKinds) {
  for (const char* k : {"component", "instance", "version", "app", "team", "http_rule", "tcp_rule",
                        "certificate"}) {
    EXPECT_TRUE(RelevantKind(k)) << k;
  }
  for (const char* k : {"user", "token", "member", "event", "dependency", "gateway_claim", ""}) {
    EXPECT_FALSE(RelevantKind(k)) << k;
  }
}

}  // namespace
}  // namespace berth::gateway::detail
