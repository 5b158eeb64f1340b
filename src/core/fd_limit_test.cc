#include "core/fd_limit.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include <gtest/gtest.h>

namespace berth {
namespace {

TEST(FdLimitTest, RaisesTheSoftLimitToTheHardOne) {
  struct rlimit before {};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &before), 0);
  if (before.rlim_max == RLIM_INFINITY || before.rlim_max < 64) GTEST_SKIP() << "unusual limits";
  struct rlimit low = before;
  low.rlim_cur = 64;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  OpenFileLimit l = RaiseOpenFileLimit();
  EXPECT_TRUE(l.raised);
  EXPECT_EQ(l.soft, before.rlim_max);
  EXPECT_EQ(l.hard, before.rlim_max);
  struct rlimit now {};
  ::getrlimit(RLIMIT_NOFILE, &now);
  EXPECT_EQ(now.rlim_cur, before.rlim_max);
  EXPECT_FALSE(RaiseOpenFileLimit().raised);  // nothing left to raise
  ::setrlimit(RLIMIT_NOFILE, &before);
}

// Out of descriptors, the waiting connections are taken and closed at once.
TEST(FdLimitTest, SpareFdAcceptsAndClosesWhenOutOfDescriptors) {
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  ASSERT_EQ(::listen(lfd, 16), 0);
  std::vector<int> clients;
  for (int i = 0; i < 3; ++i) {
    int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    clients.push_back(c);
  }
  SpareFd spare;
  // Exhaust the descriptor table: the soft limit becomes the lowest free descriptor.
  int probe = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(probe, 0);
  ::close(probe);
  struct rlimit before {};
  ::getrlimit(RLIMIT_NOFILE, &before);
  std::vector<int> filler;
  struct rlimit low = before;
  low.rlim_cur = static_cast<rlim_t>(probe) + 1;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) filler.push_back(fd);
  int got = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  int err = errno;
  EXPECT_EQ(got, -1);
  EXPECT_EQ(err, EMFILE);
  EXPECT_EQ(spare.AcceptAndClose(lfd), 3);
  ::setrlimit(RLIMIT_NOFILE, &before);
  for (int fd : filler) ::close(fd);
  for (int c : clients) {
    char b;
    EXPECT_EQ(::recv(c, &b, 1, 0), 0) << "the client was not closed";
    ::close(c);
  }
  EXPECT_EQ(spare.AcceptAndClose(lfd), 0);  // nothing waiting
  ::close(lfd);
}

}  // namespace
}  // namespace berth
