// Black-box tests of the Beast HttpServer over loopback, with a plain POSIX socket client (no
// Beast here, to keep this file cheap to compile). Every server binds 127.0.0.1 port 0.
// Timing: waits are bounded by a 10 s socket receive timeout; no test asserts a tight
// wall-clock bound.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "api/http.h"

namespace berth {
namespace {

using namespace std::chrono_literals;

// ---- a minimal HTTP/1.1 client

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class Conn {
 public:
  explicit Conn(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Conn() { Close(); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  bool connected() const { return connected_; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool Send(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  // Reads one response (1xx included). nullopt on EOF, timeout or garbage.
  std::optional<Response> Read(bool head_request = false) {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    Response r;
    size_t line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    if (status_line.size() < 12 || status_line.compare(0, 5, "HTTP/") != 0) return std::nullopt;
    r.status = std::stoi(status_line.substr(9, 3));
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t e = head.find("\r\n", pos);
      if (e == std::string::npos) e = head.size();
      std::string line = head.substr(pos, e - pos);
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        r.headers[Lower(line.substr(0, colon))] = value;
      }
      pos = e + 2;
    }
    if (head_request || r.status < 200 || r.status == 204 || r.status == 304) return r;
    if (r.headers.count("content-length")) {
      size_t n = std::stoul(r.headers["content-length"]);
      while (buf_.size() < n) {
        if (!Fill()) return std::nullopt;
      }
      r.body = buf_.substr(0, n);
      buf_.erase(0, n);
    } else if (Lower(r.headers["transfer-encoding"]) == "chunked") {
      for (;;) {
        auto chunk = ReadChunk();
        if (!chunk) return std::nullopt;
        if (chunk->empty()) break;
        r.body += *chunk;
      }
    } else {
      while (Fill()) {
      }
      r.body = std::move(buf_);
      buf_.clear();
    }
    return r;
  }

  // One chunk of a chunked body: its data, "" for the last chunk, nullopt on EOF/timeout.
  std::optional<std::string> ReadChunk() {
    size_t e;
    while ((e = buf_.find("\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    size_t n = std::stoul(buf_.substr(0, e), nullptr, 16);
    buf_.erase(0, e + 2);
    while (buf_.size() < n + 2) {
      if (!Fill()) return std::nullopt;
    }
    std::string data = buf_.substr(0, n);
    buf_.erase(0, n + 2);  // data and CRLF (no trailers after the last chunk)
    return data;
  }

  // True when the server closes the connection (EOF or reset) within the receive timeout.
  bool WaitClosed() {
    char c[4096];
    for (;;) {
      ssize_t n = ::recv(fd_, c, sizeof c, 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
  }

 private:
  bool Fill() {
    char tmp[16384];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

std::string Get(const std::string& target, const std::string& extra = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n" + extra + "\r\n";
}

// ---- a test handler

struct StreamFeed {
  std::mutex mu;
  std::string pending;  // guarded by mu
  bool ended = false;   // guarded by mu
  std::atomic<bool> destroyed{false};

  void Push(const std::string& s, bool end = false) {
    std::lock_guard<std::mutex> l(mu);
    pending += s;
    ended = ended || end;
  }
};

class FeedSource : public StreamSource {
 public:
  explicit FeedSource(std::shared_ptr<StreamFeed> feed) : feed_(std::move(feed)) {}
  ~FeedSource() override { feed_->destroyed = true; }
  bool Poll(std::string* out) override {
    std::lock_guard<std::mutex> l(feed_->mu);
    out->append(feed_->pending);
    feed_->pending.clear();
    return !feed_->ended;
  }
  std::string Heartbeat() override { return ":hb\n"; }

 private:
  std::shared_ptr<StreamFeed> feed_;
};

class TestHandler : public Handler {
 public:
  HttpResponse Handle(const HttpRequest& r) override {
    HttpResponse res;
    if (r.path == "/hello") {
      res.content_type = "text/plain";
      res.headers.emplace_back("X-Test", "yes");
      res.body = "hello " + r.Query("name", "world");
    } else if (r.path.rfind("/echo", 0) == 0) {
      res.content_type = "text/plain";
      res.body = "method=" + r.method + "\npath=" + r.path + "\ntarget=" + r.target + "\n";
      for (const auto& [k, v] : r.query) res.body += "q:" + k + "=" + v + "\n";
      res.body += "x-custom=" + r.Header("x-custom") + "\nremote=" + r.remote_addr +
                  "\nbody=" + r.body;
    } else if (r.path == "/block") {
      std::unique_lock<std::mutex> l(mu_);
      block_entered_ = true;
      cv_.notify_all();
      cv_.wait_for(l, 20s, [&] { return block_released_; });
      res.body = "unblocked";
    } else if (r.path == "/stream") {
      res.content_type = "text/event-stream";
      res.stream = std::make_shared<FeedSource>(feed);
    } else if (r.path == "/throw") {
      throw std::runtime_error("boom");
    } else {
      res.status = 404;
      res.body = R"({"code":"not_found","message":"no such path"})";
    }
    return res;
  }
  bool IsBlocking(const HttpRequest& r) const override { return r.path == "/block"; }

  bool WaitBlockEntered() {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, 10s, [&] { return block_entered_; });
  }
  void ReleaseBlock() {
    std::lock_guard<std::mutex> l(mu_);
    block_released_ = true;
    cv_.notify_all();
  }

  std::shared_ptr<StreamFeed> feed = std::make_shared<StreamFeed>();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool block_entered_ = false;   // guarded by mu_
  bool block_released_ = false;  // guarded by mu_
};

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpServerOptions o = {}) {
    o.address = "127.0.0.1";
    o.port = 0;
    server_ = NewHttpServer(o, &handler_);
    auto port = server_->Start();
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    port_ = *port;
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }

  TestHandler handler_;
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
};

// ---- helpers

TEST(HttpUtilTest, PercentDecode) {
  EXPECT_EQ(PercentDecode("a%20b%2Fc", false), "a b/c");
  EXPECT_EQ(PercentDecode("a+b", false), "a+b");
  EXPECT_EQ(PercentDecode("a+b", true), "a b");
  EXPECT_EQ(PercentDecode("%41%zz%4", false), "A%zz%4");
  EXPECT_EQ(PercentDecode("%", false), "%");
  EXPECT_EQ(PercentDecode("%e2%9C%93", false), "\xe2\x9c\x93");
}

TEST(HttpUtilTest, ParseQuery) {
  auto q = ParseQuery("a=1&b=x%20y&a=2&flag&&c=p+q&=skip&d=%3D");
  EXPECT_EQ(q["a"], "2");
  EXPECT_EQ(q["b"], "x y");
  EXPECT_EQ(q["flag"], "");
  EXPECT_EQ(q["c"], "p q");
  EXPECT_EQ(q["d"], "=");
  EXPECT_EQ(q.count(""), 0u);
  EXPECT_TRUE(ParseQuery("").empty());
}

TEST(HttpUtilTest, RequestAccessors) {
  HttpRequest r;
  r.headers["x-a"] = "1";
  r.query["q"] = "v";
  EXPECT_EQ(r.Header("x-a"), "1");
  EXPECT_EQ(r.Header("x-b"), "");
  EXPECT_EQ(r.Query("q"), "v");
  EXPECT_EQ(r.Query("z", "dflt"), "dflt");
}

// ---- server

TEST_F(HttpServerTest, GetRoundTrip) {
  StartServer();
  Conn c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send(Get("/hello?name=berth")));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello berth");
  EXPECT_EQ(r->headers["content-type"], "text/plain");
  EXPECT_EQ(r->headers["x-test"], "yes");
  EXPECT_EQ(r->headers["server"], "berth");
  EXPECT_EQ(r->headers["content-length"], "11");

  ASSERT_TRUE(c.Send(Get("/nope")));
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->headers["content-type"], "application/json");
}

TEST_F(HttpServerTest, QueryHeadersBodyAndPercentDecoding) {
  StartServer();
  Conn c(port_);
  std::string body = "payload";
  ASSERT_TRUE(c.Send("POST /echo/a%20b?x=1&y=a%2Bb+c&x=2&flag HTTP/1.1\r\nHost: h\r\n"
                     "X-Custom: v1\r\nContent-Length: 7\r\n\r\n" + body));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("method=POST\n"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("path=/echo/a b\n"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("target=/echo/a%20b?x=1&y=a%2Bb+c&x=2&flag\n"), std::string::npos);
  EXPECT_NE(r->body.find("q:x=2\n"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("q:y=a+b c\n"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("q:flag=\n"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("x-custom=v1\n"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("remote=127.0.0.1\n"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("body=payload"), std::string::npos) << r->body;
}

TEST_F(HttpServerTest, KeepAliveAndPipelining) {
  StartServer();
  Conn c(port_);
  ASSERT_TRUE(c.Send(Get("/hello?name=1")));
  auto r1 = c.Read();
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->body, "hello 1");
  ASSERT_TRUE(c.Send(Get("/hello?name=2")));
  auto r2 = c.Read();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->body, "hello 2");
  // Two requests in one segment are answered in order.
  ASSERT_TRUE(c.Send(Get("/hello?name=3") + Get("/hello?name=4")));
  auto r3 = c.Read();
  auto r4 = c.Read();
  ASSERT_TRUE(r3 && r4);
  EXPECT_EQ(r3->body, "hello 3");
  EXPECT_EQ(r4->body, "hello 4");
  // Connection: close is honoured.
  ASSERT_TRUE(c.Send(Get("/hello", "Connection: close\r\n")));
  auto r5 = c.Read();
  ASSERT_TRUE(r5);
  EXPECT_EQ(Lower(r5->headers["connection"]), "close");
  EXPECT_TRUE(c.WaitClosed());
}

TEST_F(HttpServerTest, HeadHasLengthButNoBody) {
  StartServer();
  Conn c(port_);
  ASSERT_TRUE(c.Send("HEAD /hello HTTP/1.1\r\nHost: h\r\n\r\n"));
  auto r = c.Read(/*head_request=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-length"], "11");
  // If a body had been sent, it would be read as the next response's start.
  ASSERT_TRUE(c.Send(Get("/hello?name=after")));
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello after");
}

TEST_F(HttpServerTest, ExpectContinue) {
  StartServer();
  Conn c(port_);
  ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                     "Content-Length: 5\r\n\r\n"));
  auto cont = c.Read();
  ASSERT_TRUE(cont);
  EXPECT_EQ(cont->status, 100);
  ASSERT_TRUE(c.Send("hello"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("body=hello"), std::string::npos);
}

TEST_F(HttpServerTest, ChunkedRequestBodyUnderLimit) {
  StartServer();
  Conn c(port_);
  ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("body=abcdefg"), std::string::npos);
}

TEST_F(HttpServerTest, BodyOverLimitByContentLength) {
  HttpServerOptions o;
  o.body_limit = 1024;
  StartServer(o);
  Conn c(port_);
  // Only the header is sent: the limit must be enforced before any body byte arrives.
  ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->headers["content-type"], "application/json");
  EXPECT_EQ(r->body,
            R"({"code":"payload_too_large","message":"request body is larger than the limit of 1024 bytes"})");
  EXPECT_TRUE(c.WaitClosed());
}

TEST_F(HttpServerTest, BodyOverLimitChunked) {
  HttpServerOptions o;
  o.body_limit = 1024;
  StartServer(o);
  Conn c(port_);
  std::string req = "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::string piece(4096, 'x');
  for (int i = 0; i < 16; ++i) req += "1000\r\n" + piece + "\r\n";
  req += "0\r\n\r\n";
  c.Send(req);  // may fail part-way once the server has answered; the answer still arrives
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find(R"("code":"payload_too_large")"), std::string::npos);
  EXPECT_TRUE(c.WaitClosed());
}

TEST_F(HttpServerTest, HeaderOverLimit) {
  HttpServerOptions o;
  o.header_limit = 1024;
  StartServer(o);
  Conn c(port_);
  ASSERT_TRUE(c.Send(Get("/hello", "X-Big: " + std::string(4000, 'a') + "\r\n")));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_NE(r->body.find(R"("code":"header_too_large")"), std::string::npos) << r->body;
  EXPECT_TRUE(c.WaitClosed());
}

TEST_F(HttpServerTest, MalformedRequests) {
  StartServer();
  for (const std::string& bad :
       {std::string("NOT A REQUEST\r\n\r\n"),
        std::string("GET /hello HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n"),
        std::string("GET /hello HTTP/1.1\r\nBad Header\r\n\r\n")}) {
    Conn c(port_);
    ASSERT_TRUE(c.Send(bad));
    auto r = c.Read();
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(r->status, 400) << bad;
    EXPECT_NE(r->body.find(R"("code":"bad_request")"), std::string::npos) << r->body;
    EXPECT_TRUE(c.WaitClosed());
  }
}

TEST_F(HttpServerTest, HandlerExceptionBecomes500) {
  StartServer();
  Conn c(port_);
  ASSERT_TRUE(c.Send(Get("/throw")));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_NE(r->body.find(R"("code":"internal")"), std::string::npos);
}

TEST_F(HttpServerTest, BlockingHandlerDoesNotStallIoThread) {
  HttpServerOptions o;
  o.io_threads = 1;  // a blocked io thread would stall every other connection
  o.blocking_threads = 1;
  StartServer(o);
  Conn blocked(port_);
  ASSERT_TRUE(blocked.Send(Get("/block")));
  ASSERT_TRUE(handler_.WaitBlockEntered());
  Conn other(port_);
  ASSERT_TRUE(other.Send(Get("/hello")));
  auto r = other.Read();  // answered while /block is still blocked
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  handler_.ReleaseBlock();
  auto rb = blocked.Read();
  ASSERT_TRUE(rb);
  EXPECT_EQ(rb->body, "unblocked");
  // The connection stays usable after a response posted back from the blocking pool.
  ASSERT_TRUE(blocked.Send(Get("/hello?name=again")));
  rb = blocked.Read();
  ASSERT_TRUE(rb);
  EXPECT_EQ(rb->body, "hello again");
}

TEST_F(HttpServerTest, StreamDeliversChunksWakesAndEnds) {
  HttpServerOptions o;
  o.heartbeat = std::chrono::seconds(60);  // a missed wake-up would stall past the 10 s timeout
  o.stream_poll = std::chrono::seconds(60);  // ... and not be hidden by the periodic poll
  StartServer(o);
  handler_.feed->Push("first\n");
  Conn c(port_);
  ASSERT_TRUE(c.Send(Get("/stream")));
  auto head = c.Read(/*head_request=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(Lower(head->headers["transfer-encoding"]), "chunked");
  EXPECT_EQ(head->headers["content-type"], "text/event-stream");
  EXPECT_EQ(head->headers.count("content-length"), 0u);
  auto chunk = c.ReadChunk();
  ASSERT_TRUE(chunk);
  EXPECT_EQ(*chunk, "first\n");

  for (int i = 0; i < 30; ++i) {
    if (i % 2 == 0) std::this_thread::sleep_for(5ms);  // let the stream reach its wait
    std::string msg = "event " + std::to_string(i) + "\n";
    auto start = std::chrono::steady_clock::now();
    handler_.feed->Push(msg);
    server_->WakeStreams();
    chunk = c.ReadChunk();
    ASSERT_TRUE(chunk) << "no data after WakeStreams, iteration " << i;
    EXPECT_EQ(*chunk, msg);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);  // far below the 60 s heartbeat
  }

  handler_.feed->Push("bye\n", /*end=*/true);
  server_->WakeStreams();
  chunk = c.ReadChunk();
  ASSERT_TRUE(chunk);
  EXPECT_EQ(*chunk, "bye\n");
  chunk = c.ReadChunk();
  ASSERT_TRUE(chunk);
  EXPECT_EQ(*chunk, "");  // last chunk
  EXPECT_TRUE(c.WaitClosed());
}

TEST_F(HttpServerTest, AWaitingStreamIsPolledWithoutAWake) {
  // A source may end by itself (its caller's token expired): it is polled every stream_poll
  // even when nothing wakes it and no heartbeat is due.
  HttpServerOptions o;
  o.heartbeat = std::chrono::seconds(60);
  o.stream_poll = std::chrono::milliseconds(200);
  StartServer(o);
  Conn c(port_);
  ASSERT_TRUE(c.Send(Get("/stream")));
  ASSERT_TRUE(c.Read(/*head_request=*/true));
  std::this_thread::sleep_for(50ms);  // the stream reaches its wait
  auto start = std::chrono::steady_clock::now();
  handler_.feed->Push("unwoken\n");  // no WakeStreams
  auto chunk = c.ReadChunk();
  ASSERT_TRUE(chunk);
  EXPECT_EQ(*chunk, "unwoken\n");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);  // far below the 60 s heartbeat
}

TEST_F(HttpServerTest, StreamHeartbeatWhenIdle) {
  HttpServerOptions o;
  o.heartbeat = std::chrono::seconds(1);
  StartServer(o);
  Conn c(port_);
  ASSERT_TRUE(c.Send(Get("/stream")));
  ASSERT_TRUE(c.Read(/*head_request=*/true));
  for (int i = 0; i < 2; ++i) {
    auto chunk = c.ReadChunk();
    ASSERT_TRUE(chunk);
    EXPECT_EQ(*chunk, ":hb\n");
  }
  handler_.feed->Push("data\n");
  server_->WakeStreams();
  auto chunk = c.ReadChunk();
  ASSERT_TRUE(chunk);
  // A heartbeat may have been in flight; data follows it at the latest.
  if (*chunk == ":hb\n") chunk = c.ReadChunk();
  ASSERT_TRUE(chunk);
  EXPECT_EQ(*chunk, "data\n");
}

TEST_F(HttpServerTest, FrequentWakesDoNotStarveTheHeartbeat) {
  // Wakes that bring this stream nothing (changes of other teams, log ticks) must not keep
  // postponing its heartbeat.
  HttpServerOptions o;
  o.heartbeat = std::chrono::seconds(1);
  StartServer(o);
  Conn c(port_);
  ASSERT_TRUE(c.Send(Get("/stream")));
  ASSERT_TRUE(c.Read(/*head_request=*/true));
  std::atomic<bool> stop{false};
  std::thread waker([&] {
    while (!stop) {
      server_->WakeStreams();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  auto chunk = c.ReadChunk();  // Conn's read timeout (well above 1 s) bounds the wait
  stop = true;
  waker.join();
  ASSERT_TRUE(chunk);
  EXPECT_EQ(*chunk, ":hb\n");
}

TEST_F(HttpServerTest, StreamEndsWhenClientDisconnects) {
  HttpServerOptions o;
  o.heartbeat = std::chrono::seconds(60);
  StartServer(o);
  {
    Conn c(port_);
    ASSERT_TRUE(c.Send(Get("/stream")));
    ASSERT_TRUE(c.Read(/*head_request=*/true));
  }
  // The server notices via its pending read, long before a heartbeat write would fail.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!handler_.feed->destroyed && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(handler_.feed->destroyed);
}

TEST_F(HttpServerTest, StopWithOpenStreamReturnsPromptly) {
  HttpServerOptions o;
  o.heartbeat = std::chrono::seconds(60);
  StartServer(o);
  handler_.feed->Push("x\n");
  Conn c(port_);
  ASSERT_TRUE(c.Send(Get("/stream")));
  ASSERT_TRUE(c.Read(/*head_request=*/true));
  ASSERT_TRUE(c.ReadChunk());
  Conn idle(port_);  // an idle keep-alive connection is closed too
  ASSERT_TRUE(idle.Send(Get("/hello")));
  ASSERT_TRUE(idle.Read());
  auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_TRUE(handler_.feed->destroyed);
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_TRUE(idle.WaitClosed());
  server_->Stop();  // idempotent
  server_->WakeStreams();  // harmless after Stop
}

TEST_F(HttpServerTest, MaxConnections) {
  HttpServerOptions o;
  o.max_connections = 2;
  StartServer(o);
  auto c1 = std::make_unique<Conn>(port_);
  Conn c2(port_);
  for (Conn* c : {c1.get(), &c2}) {
    ASSERT_TRUE(c->Send(Get("/hello")));
    auto r = c->Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  Conn c3(port_);
  auto r = c3.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, R"({"code":"unavailable","message":"too many connections"})");
  EXPECT_TRUE(c3.WaitClosed());

  c1.reset();  // frees a slot (asynchronously)
  bool served = false;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!served && std::chrono::steady_clock::now() < deadline) {
    Conn c(port_);
    c.Send(Get("/hello"));
    auto rr = c.Read();
    served = rr && rr->status == 200;
    if (!served) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(served);
}

TEST_F(HttpServerTest, RequestAndIdleTimeouts) {
  HttpServerOptions o;
  o.request_timeout = std::chrono::seconds(1);
  o.idle_timeout = std::chrono::seconds(1);
  StartServer(o);
  Conn partial(port_);
  ASSERT_TRUE(partial.Send("GET /hello HTTP/1.1\r\n"));  // never finished
  EXPECT_TRUE(partial.WaitClosed());
  Conn idle(port_);
  ASSERT_TRUE(idle.Send(Get("/hello")));
  ASSERT_TRUE(idle.Read());
  EXPECT_TRUE(idle.WaitClosed());
}

TEST_F(HttpServerTest, StartFailsOnBusyPort) {
  StartServer();
  HttpServerOptions o;
  o.address = "127.0.0.1";
  o.port = port_;
  auto other = NewHttpServer(o, &handler_);
  auto r = other->Start();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_EQ(r.status().reason(), "unavailable");
  EXPECT_EQ(r.status().message(),
            "cannot listen on 127.0.0.1:" + std::to_string(port_) + ": Address already in use");
  other->Stop();  // harmless after a failed Start
}

TEST_F(HttpServerTest, DestructorStops) {
  StartServer();
  Conn c(port_);
  ASSERT_TRUE(c.Send(Get("/hello")));
  ASSERT_TRUE(c.Read());
  server_.reset();
  EXPECT_TRUE(c.WaitClosed());
}

// ---- bodies streamed to files (Handler::BodyToFile)

class UploadHandler : public Handler {
 public:
  explicit UploadHandler(std::string dir) : dir_(std::move(dir)) {}
  HttpResponse Handle(const HttpRequest& r) override {
    std::lock_guard<std::mutex> l(mu);
    file = r.body_file;
    std::error_code ec;
    size = r.body_file.empty() ? r.body.size() : std::filesystem::file_size(r.body_file, ec);
    in_memory = r.body.size();
    HttpResponse out;
    out.body = "{}";
    return out;
  }
  bool IsBlocking(const HttpRequest& r) const override { return r.path == "/upload-blocking"; }
  std::optional<BodyFile> BodyToFile(const HttpRequest& h) const override {
    if (h.path != "/upload" && h.path != "/upload-blocking") return std::nullopt;
    BodyFile b;
    b.dir = dir_;
    b.limit = 100000;
    if (h.Header("authorization") != "ok") {
      HttpResponse r;
      r.status = 401;
      r.body = R"({"code":"unauthenticated","message":"no"})";
      b.reject = r;
    }
    return b;
  }

  std::mutex mu;
  std::string file;
  uintmax_t size = 0;
  size_t in_memory = 0;

 private:
  const std::string dir_;
};

class UploadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("berth-upload-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    handler_ = std::make_unique<UploadHandler>(dir_.string());
    HttpServerOptions o;
    o.address = "127.0.0.1";
    o.port = 0;
    o.body_limit = 1024;
    server_ = NewHttpServer(o, handler_.get());
    auto port = server_->Start();
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    port_ = *port;
  }
  void TearDown() override {
    if (server_) server_->Stop();
    std::filesystem::remove_all(dir_);
  }
  // Files left in the upload directory once the server had time to clean up.
  size_t Leftovers() {
    for (int i = 0; i < 100; ++i) {
      size_t n = 0;
      for (auto it = std::filesystem::directory_iterator(dir_); it != std::filesystem::directory_iterator(); ++it) ++n;
      if (n == 0) return 0;
      std::this_thread::sleep_for(20ms);
    }
    size_t n = 0;
    for (auto it = std::filesystem::directory_iterator(dir_); it != std::filesystem::directory_iterator(); ++it) ++n;
    return n;
  }
  static std::string Chunked(const std::string& body) {
    std::string out;
    for (size_t i = 0; i < body.size(); i += 7000) {
      std::string part = body.substr(i, 7000);
      char len[32];
      std::snprintf(len, sizeof len, "%zx\r\n", part.size());
      out += len + part + "\r\n";
    }
    return out + "0\r\n\r\n";
  }

  std::filesystem::path dir_;
  std::unique_ptr<UploadHandler> handler_;
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
};

TEST_F(UploadTest, BodyGoesToAFileAndIsRemovedAfterTheHandler) {
  const std::string body(50000, 'x');  // 50x the in-memory limit
  for (const char* path : {"/upload", "/upload-blocking"}) {
    Conn c(port_);
    ASSERT_TRUE(c.Send(std::string("POST ") + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: ok\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n" + body));
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    {
      std::lock_guard<std::mutex> l(handler_->mu);
      EXPECT_EQ(handler_->size, body.size());
      EXPECT_EQ(handler_->in_memory, 0u);
      EXPECT_EQ(handler_->file.rfind(dir_.string() + "/upload-", 0), 0u) << handler_->file;
    }
    EXPECT_EQ(Leftovers(), 0u) << path;
  }
  // Chunked, and then a second request on the same connection.
  Conn c(port_);
  ASSERT_TRUE(c.Send("POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: ok\r\nTransfer-Encoding: chunked\r\n\r\n" +
                     Chunked(body)));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(handler_->size, body.size());
  ASSERT_TRUE(c.Send("POST /other HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"));
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(handler_->in_memory, 3u);
  EXPECT_EQ(Leftovers(), 0u);
}

TEST_F(UploadTest, OverTheLimitOrRejectedLeavesNothing) {
  {  // announced too large: 413 before the body is read
    Conn c(port_);
    ASSERT_TRUE(c.Send("POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: ok\r\nContent-Length: 200000\r\n\r\n"));
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    EXPECT_NE(r->body.find("payload_too_large"), std::string::npos);
    EXPECT_NE(r->body.find("100000"), std::string::npos);
  }
  EXPECT_EQ(Leftovers(), 0u);
  {  // chunked past the limit: 413 once it is crossed, the partial file removed
    Conn c(port_);
    c.Send("POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: ok\r\nTransfer-Encoding: chunked\r\n\r\n" +
           Chunked(std::string(150000, 'y')));
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
  }
  EXPECT_EQ(Leftovers(), 0u);
  {  // the handler refuses from the header: nothing is written
    Conn c(port_);
    c.Send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n" + std::string(50000, 'z'));
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401);
  }
  EXPECT_EQ(Leftovers(), 0u);
  {  // other routes keep the in-memory limit
    Conn c(port_);
    c.Send("POST /other HTTP/1.1\r\nHost: x\r\nAuthorization: ok\r\nContent-Length: 50000\r\n\r\n");
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    EXPECT_NE(r->body.find("1024"), std::string::npos);
  }
  {  // a client that goes away mid-upload leaves no partial file
    Conn c(port_);
    c.Send("POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: ok\r\nContent-Length: 90000\r\n\r\n" +
           std::string(40000, 'w'));
    std::this_thread::sleep_for(100ms);
    c.Close();
  }
  EXPECT_EQ(Leftovers(), 0u);
}

}  // namespace
}  // namespace berth
