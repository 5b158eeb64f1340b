#include "core/netns.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

namespace berth {
namespace {

namespace fs = std::filesystem;

class Netns : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "network namespaces need root";
    dir_ = fs::temp_directory_path() / ("berth-netns-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) {
      for (const char* n : {"a", "b"}) (void)RemoveNetns(dir_ + "/" + n);
      fs::remove_all(dir_);
    }
  }
  std::string dir_;
};

int Listen(int fd) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 4) != 0) return -1;
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

bool Connects(int fd, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

TEST_F(Netns, EnsureIsIdempotentAndSocketsStayInTheirNamespace) {
  std::string a = dir_ + "/a", b = dir_ + "/b";
  EXPECT_FALSE(IsNetns(a));
  ASSERT_TRUE(EnsureNetns(a).ok());
  ASSERT_TRUE(EnsureNetns(a).ok());  // already one: kept
  ASSERT_TRUE(EnsureNetns(b).ok());
  EXPECT_TRUE(IsNetns(a));
  int fa = *OpenNetns(a), fb = *OpenNetns(b);
  // A listener in a: reachable from a, not from b, not from the host.
  int la = *SocketIn(fa, AF_INET, SOCK_STREAM);
  int port = Listen(la);
  ASSERT_GT(port, 0);
  int from_a = *SocketIn(fa, AF_INET, SOCK_STREAM);
  int from_b = *SocketIn(fb, AF_INET, SOCK_STREAM);
  int from_host = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_TRUE(Connects(from_a, port));
  EXPECT_FALSE(Connects(from_b, port));
  // (the host may have something on that port by chance; it is not our listener then)
  int accepted_before = 0;
  (void)accepted_before;
  for (int fd : {la, from_a, from_b, from_host}) ::close(fd);
  // The thread is home again: a socket made now is the host's.
  int mine = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int hp = Listen(mine);
  int probe = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_TRUE(Connects(probe, hp));
  ::close(probe);
  ::close(mine);
  ::close(fa);
  ::close(fb);
  EXPECT_TRUE(RemoveNetns(a).ok());
  EXPECT_FALSE(IsNetns(a));
  EXPECT_FALSE(OpenNetns(a).ok());
}

TEST_F(Netns, ConcurrentEnsuresMakeOneNamespace) {
  std::string a = dir_ + "/a";
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i) ts.emplace_back([&] { EXPECT_TRUE(EnsureNetns(a).ok()); });
  for (auto& t : ts) t.join();
  EXPECT_TRUE(IsNetns(a));
  // One mount, not four stacked: after one removal nothing is left.
  EXPECT_TRUE(RemoveNetns(a).ok());
  EXPECT_FALSE(IsNetns(a));
}

}  // namespace
}  // namespace berth
