#include "egress/egress.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "core/netns.h"

namespace berth::egress {
namespace {

namespace fs = std::filesystem;

TEST(EgressRequest, ParsesConnectAndAbsoluteForm) {
  auto c = ParseRequest("CONNECT registry.npmjs.org:443 HTTP/1.1\r\nHost: registry.npmjs.org:443\r\n\r\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->method, "CONNECT");
  EXPECT_EQ(c->host, "registry.npmjs.org");
  EXPECT_EQ(c->port, 443);

  auto g = ParseRequest("GET http://deb.debian.org/debian/dists?x=1 HTTP/1.1\r\nHost: deb.debian.org\r\n"
                        "Proxy-Authorization: secret\r\nProxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->host, "deb.debian.org");
  EXPECT_EQ(g->port, 80);
  EXPECT_EQ(g->origin_form, "/debian/dists?x=1");
  EXPECT_EQ(g->headers, "Host: deb.debian.org\r\nAccept: */*\r\n");  // proxy headers dropped

  auto v6 = ParseRequest("CONNECT [2001:db8::1]:8443 HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "2001:db8::1");
  EXPECT_EQ(v6->port, 8443);
}

TEST(EgressRequest, RefusesWhatIsNotAProxyRequest) {
  for (const char* bad : {"GET / HTTP/1.1\r\n\r\n",                        // origin form
                          "CONNECT host HTTP/1.1\r\n\r\n",                 // no port
                          "CONNECT host:99999 HTTP/1.1\r\n\r\n",           // bad port
                          "GET https://x/ HTTP/1.1\r\n\r\n",               // https without CONNECT
                          "GET http://user:pw@x/ HTTP/1.1\r\n\r\n",        // credentials
                          "GET http://x/ HTTP/2\r\n\r\n",                  // version
                          "get http://x/ HTTP/1.1\r\n\r\n",                // method case
                          "GET http://x y/ HTTP/1.1\r\n\r\n",              // space in host
                          "GET http://x/ HTTP/1.1\r\nBad Header: 1\r\n\r\n"}) {
    EXPECT_FALSE(ParseRequest(bad).ok()) << bad;
  }
}

TEST(EgressPolicy, RefusesLoopbackLinkLocalLocalAndDenied) {
  auto p = Proxy::Start({.deny = {"10.0.0.0/8"}, .allow = {"127.0.0.2/32"}});
  ASSERT_TRUE(p.ok());
  for (const char* ip : {"127.0.0.1", "127.9.9.9", "::1", "0.0.0.0", "169.254.169.254", "fe80::1",
                         "224.0.0.1", "10.1.2.3", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE((*p)->Refuses(ip)) << ip;
  }
  EXPECT_FALSE((*p)->Refuses("127.0.0.2"));  // allowed explicitly
  EXPECT_FALSE((*p)->Refuses("93.184.216.34"));
  EXPECT_FALSE((*p)->Refuses("2606:2800:220:1:248:1893:25c8:1946"));
  EXPECT_EQ(*InCidr("192.168.1.7", "192.168.0.0/16"), true);
  EXPECT_EQ(*InCidr("192.169.1.7", "192.168.0.0/16"), false);
  EXPECT_FALSE(Proxy::Start({.deny = {"not-a-cidr"}}).ok());
}

// A real proxy in a real namespace (root only): a tunnel to an allowed destination works, the
// host's own loopback is refused.
class EgressInNamespace : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "network namespaces need root";
    dir_ = fs::temp_directory_path() / ("berth-egress-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    ns_ = dir_ + "/net";
    ASSERT_TRUE(EnsureNetns(ns_).ok());
  }
  void TearDown() override {
    if (dir_.empty()) return;
    (void)RemoveNetns(ns_);
    fs::remove_all(dir_);
  }

  // One exchange through the proxy from inside the namespace: sends `request`, returns all
  // it reads until the proxy closes (or 2 s pass).
  std::string Through(const std::string& request) {
    int ns = *OpenNetns(ns_);
    int fd = *SocketIn(ns, AF_INET, SOCK_STREAM);
    ::close(ns);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(kPort);
    ::inet_pton(AF_INET, kAddress, &a.sin_addr);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)!::write(fd, request.data(), request.size());
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    ::close(fd);
    return out;
  }

  std::string dir_, ns_;
};

TEST_F(EgressInNamespace, TunnelsToAllowedDestinationsAndRefusesTheHost) {
  // An upstream on 127.0.0.2 (allowed for this test) and one on 127.0.0.1 (refused).
  int up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  ::inet_pton(AF_INET, "127.0.0.2", &a.sin_addr);
  ASSERT_EQ(::bind(up, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(up, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ASSERT_EQ(::listen(up, 8), 0);
  std::atomic<bool> stop{false};
  std::thread server([&] {
    for (int i = 0; i < 2 && !stop; ++i) {
      int c = ::accept(up, nullptr, nullptr);
      if (c < 0) return;
      char buf[1024];
      ssize_t n = ::read(c, buf, sizeof buf);
      std::string got(buf, n > 0 ? static_cast<size_t>(n) : 0);
      std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(got.size()) +
                          "\r\nConnection: close\r\n\r\n" + got;
      (void)!::write(c, reply.data(), reply.size());
      ::close(c);
    }
  });
  auto p = Proxy::Start({.allow = {"127.0.0.2/32"}});
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE((*p)->Serve(ns_, "t").ok());
  ASSERT_TRUE((*p)->Serve(ns_, "t").ok());  // idempotent

  std::string dest = "127.0.0.2:" + std::to_string(port);
  std::string tunnel = Through("CONNECT " + dest + " HTTP/1.1\r\n\r\nping");
  EXPECT_EQ(tunnel.rfind("HTTP/1.1 200 Connection established\r\n\r\n", 0), 0u) << tunnel;
  EXPECT_NE(tunnel.find("\r\n\r\nping"), std::string::npos) << tunnel;  // echoed by the upstream

  std::string plain = Through("GET http://" + dest + "/x?y HTTP/1.1\r\nHost: " + dest +
                              "\r\nProxy-Authorization: s\r\n\r\n");
  EXPECT_EQ(plain.rfind("HTTP/1.1 200 OK", 0), 0u) << plain;
  EXPECT_NE(plain.find("GET /x?y HTTP/1.1\r\n"), std::string::npos) << plain;
  EXPECT_EQ(plain.find("Proxy-Authorization"), std::string::npos) << plain;

  std::string refused = Through("CONNECT 127.0.0.1:" + std::to_string(port) + " HTTP/1.1\r\n\r\n");
  EXPECT_EQ(refused.rfind("HTTP/1.1 403", 0), 0u) << refused;
  std::string local = Through("CONNECT localhost:22 HTTP/1.1\r\n\r\n");
  EXPECT_EQ(local.rfind("HTTP/1.1 403", 0), 0u) << local;
  std::string bad = Through("GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(bad.rfind("HTTP/1.1 400", 0), 0u) << bad;

  stop = true;
  ::shutdown(up, SHUT_RDWR);
  ::close(up);
  server.join();
  (*p)->Stop();
}

}  // namespace
}  // namespace berth::egress
