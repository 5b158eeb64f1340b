// The control link against a fake control plane on a loopback socket: the snapshot is fetched
// with the token, a 410 on the watch leads to a fresh fetch, and a relevant change in the feed
// leads to another fetch, an irrelevant one does not.
#include "gateway/detail/control_link.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace berth::gateway::detail {
namespace {

// Answers: GET /api/v1/gateway/snapshot with {"revision":N} (N counts fetches); the first
// GET /api/v1/watch with 410, later ones with a chunked stream of `feed` lines, left open.
class FakeControlPlane {
 public:
  explicit FakeControlPlane(std::vector<std::string> feed) : feed_(std::move(feed)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeControlPlane() {
    stopping_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
    for (int c : open_) ::close(c);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (!stopping_) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      std::string line = req.substr(0, req.find("\r\n"));
      bool authorized = req.find("Authorization: Bearer tok-1\r\n") != std::string::npos;
      {
        std::lock_guard<std::mutex> l(mu_);
        requests_.push_back(line + (authorized ? " +token" : ""));
      }
      std::string out;
      if (line.rfind("GET /api/v1/gateway/snapshot ", 0) == 0) {
        std::string body = "{\"revision\":" + std::to_string(++fetches_) + "}";
        out = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
              std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
      } else if (line.rfind("GET /api/v1/watch", 0) == 0 && ++watches_ == 1) {
        std::string body = R"({"code":"revision_compacted","message":"gone"})";
        out = "HTTP/1.1 410 Gone\r\nContent-Length: " + std::to_string(body.size()) +
              "\r\nConnection: close\r\n\r\n" + body;
      } else {
        out = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: "
              "chunked\r\n\r\n";
        for (const std::string& l : feed_) {
          std::string chunk = l + "\n";
          char size[16];
          std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
          out += size + chunk + "\r\n";
        }
        (void)!::write(c, out.data(), out.size());
        open_.push_back(c);  // the stream stays open, as the server's does
        continue;
      }
      (void)!::write(c, out.data(), out.size());
      ::close(c);
    }
  }

  std::vector<std::string> feed_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  int fetches_ = 0, watches_ = 0;
  std::vector<int> open_;
  std::mutex mu_;
  std::vector<std::string> requests_;  // guarded by mu_
};

TEST(ControlLinkTest, FetchesWatchesAndRefetchesOnRelevantChanges) {
  char tmpl[] = "/tmp/berth-gwlink-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string token = std::string(tmpl) + "/token";
  FILE* f = std::fopen(token.c_str(), "w");
  std::fputs("tok-1\n", f);
  std::fclose(f);

  FakeControlPlane cp({R"({"type":"heartbeat","revision":2})",
                       R"({"revision":3,"type":"put","kind":"user","name":"x"})",
                       R"({"revision":4,"type":"put","kind":"instance","name":"web-1"})"});
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> got;
  ControlLinkOptions o;
  o.control_url = cp.url();
  o.token_file = token;
  o.debounce = std::chrono::milliseconds(10);
  ControlLink link(o, [&](const std::string& json) -> Result<int64_t> {
    std::lock_guard<std::mutex> l(mu);
    got.push_back(json);
    cv.notify_all();
    return static_cast<int64_t>(got.size());
  });
  link.Start();
  {
    std::unique_lock<std::mutex> l(mu);
    // fetch, 410 → fetch again, watch → one relevant change → a third fetch
    ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(20), [&] { return got.size() >= 3; }))
        << got.size();
  }
  // No fourth fetch: the heartbeat and the user change are not relevant.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  link.Stop();
  std::lock_guard<std::mutex> l(mu);
  EXPECT_EQ(got, (std::vector<std::string>{R"({"revision":1})", R"({"revision":2})",
                                           R"({"revision":3})"}));
  std::vector<std::string> reqs = cp.requests();
  ASSERT_GE(reqs.size(), 5u);
  EXPECT_EQ(reqs[0], "GET /api/v1/gateway/snapshot HTTP/1.1 +token");
  EXPECT_EQ(reqs[1], "GET /api/v1/watch?from=1 HTTP/1.1 +token");
  EXPECT_EQ(reqs[2], "GET /api/v1/gateway/snapshot HTTP/1.1 +token");
  EXPECT_EQ(reqs[3], "GET /api/v1/watch?from=2 HTTP/1.1 +token");
  EXPECT_EQ(reqs[4], "GET /api/v1/gateway/snapshot HTTP/1.1 +token");
  std::remove(token.c_str());
  ::rmdir(tmpl);
}

}  // namespace
}  // namespace berth::gateway::detail
