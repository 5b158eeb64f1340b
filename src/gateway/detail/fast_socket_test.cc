#include "gateway/detail/fast_socket.h"

#include <gtest/gtest.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace berth::gateway::detail {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Executor = asio::io_context::executor_type;
using Socket = FastSocket<Executor>;
using boost::system::error_code;
using Task = asio::awaitable<void, Executor>;
#define EC(ec) asio::redirect_error(asio::use_awaitable_t<Executor>(), ec)

// A connected loopback pair: `reader` is a FastSocket on `io`, `writer` a blocking socket
// (its own io_context) that the test writes from any thread.
struct Pair {
  asio::io_context io;
  asio::io_context wio;
  Socket reader{io};
  tcp::socket writer{wio};
  Pair() {
    tcp::acceptor acc(wio, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    writer.connect(acc.local_endpoint());
    acc.accept(reader);
  }
  void Write(const std::string& s) { asio::write(writer, asio::buffer(s)); }
  // Writes `s` after `ms` from another thread (join the thread).
  std::thread WriteLater(int ms, std::string s) {
    return std::thread([this, ms, s = std::move(s)] {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      Write(s);
    });
  }
  // Runs `task` on `io`, from its next run or poll.
  template <class F>
  void Spawn(F&& task) {
    asio::co_spawn(io, std::forward<F>(task), asio::detached);
  }
  // Runs `io` until `done` or 10 s: a lost wake-up shows as a read that never completes.
  bool RunUntil(const bool& done) {
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done && std::chrono::steady_clock::now() < end) {
      io.run_for(std::chrono::milliseconds(20));
      io.restart();
    }
    return done;
  }
};

#if BERTH_DRAIN_READ
TEST(DrainRead, AReadThatDrainsTheSocketWaitsForTheNextEventInsteadOfTryingRecv) {
  Pair p;
  std::vector<std::string> got;
  size_t tried_empty = 0;
  bool done = false;
  // The peer writes after each read has started. The first read tries a recv (nothing is known
  // about the socket yet), finds nothing and waits; its event delivers "hello", 5 bytes into
  // 64: drained. The second read must then wait without trying a recv first.
  std::thread peer([&] {
    for (const char* s : {"hello", "world"}) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      p.Write(s);
    }
  });
  p.Spawn([&]() -> Task {
    char buf[64];
    error_code ec;
    size_t before = drain_read_would_block;
    for (int i = 0; i < 2; ++i) {
      size_t n = co_await p.reader.async_read_drain(asio::buffer(buf), EC(ec));
      got.emplace_back(buf, n);
    }
    tried_empty = drain_read_would_block - before;
    done = true;
  });
  bool finished = p.RunUntil(done);
  peer.join();
  ASSERT_TRUE(finished);
  EXPECT_EQ(got, (std::vector<std::string>{"hello", "world"}));
  EXPECT_EQ(tried_empty, 1u);
}

TEST(DrainRead, AReadThatFillsItsBufferKeepsTryingFirst) {
  Pair p;
  p.Write("abcdefgh");
  size_t tried_empty = 0;
  std::string got;
  bool done = false;
  p.Spawn([&]() -> Task {
    char buf[4];
    error_code ec;
    size_t before = drain_read_would_block;
    for (int i = 0; i < 2; ++i) {
      size_t n = co_await p.reader.async_read_drain(asio::buffer(buf), EC(ec));
      got.append(buf, n);
    }
    // 4 of 4 bytes twice: the socket may hold more, so the third read tries a recv, finds
    // nothing, and then waits.
    std::thread later = p.WriteLater(50, "ij");
    size_t n = co_await p.reader.async_read_drain(asio::buffer(buf), EC(ec));
    later.join();
    got.append(buf, n);
    tried_empty = drain_read_would_block - before;
    done = true;
  });
  ASSERT_TRUE(p.RunUntil(done));
  EXPECT_EQ(got, "abcdefghij");
  EXPECT_EQ(tried_empty, 1u);
}
// The peer's last bytes and its FIN arrive together (one epoll edge). The drain read takes the
// bytes (and the FIN with them, in the same recv) and marks the socket drained: no new edge
// will come. The next plain read must still see EOF: it re-arms the descriptor.
TEST(DrainRead, AFinThatCameWithTheLastBytesIsStillSeen) {
  Pair p;
  std::string got;
  error_code after;
  bool done = false;
  p.Spawn([&]() -> Task {
    char buf[64];
    error_code ec;
    size_t n = co_await p.reader.async_read_drain(asio::buffer(buf), EC(ec));
    got.assign(buf, n);
    co_await p.reader.async_read_some(asio::buffer(buf), EC(after));
    done = true;
  });
  p.io.poll();  // the drain read is waiting (nothing to read yet)
  ASSERT_FALSE(done);
  p.Write("last");
  p.writer.shutdown(tcp::socket::shutdown_send);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // both in before the next epoll_wait
  ASSERT_TRUE(p.RunUntil(done)) << "the read after the drained FIN never completed";
  EXPECT_EQ(got, "last");
  EXPECT_EQ(after, asio::error::eof);
}

// The same, with a second drain read: it waits for an edge that will not come, and
// peer_closed() tells whoever watches it (the gateway's watchdog) — after a FIN or a reset
// that came with the last bytes. While the peer is there, or once no drain read waits,
// peer_closed() is false.
TEST(DrainRead, AWaitingDrainReadIsToldThePeerClosed) {
  enum Peer { kThere, kFin, kReset };
  for (Peer peer : {kThere, kFin, kReset}) {
    Pair p;
    int reads = 0;
    error_code second;
    bool done = false;
    p.Spawn([&]() -> Task {
      char buf[64];
      error_code ec;
      co_await p.reader.async_read_drain(asio::buffer(buf), EC(ec));
      ++reads;
      co_await p.reader.async_read_drain(asio::buffer(buf), EC(second));
      done = true;
    });
    p.io.poll();
    EXPECT_FALSE(p.reader.peer_closed());  // nothing read yet: nothing known
    p.Write("last");
    if (peer == kFin) p.writer.shutdown(tcp::socket::shutdown_send);
    if (peer == kReset) {
      p.writer.set_option(asio::socket_base::linger(true, 0));
      p.writer.close();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (reads == 0 && std::chrono::steady_clock::now() < end) {
      p.io.run_for(std::chrono::milliseconds(10));
      p.io.restart();
    }
    ASSERT_EQ(reads, 1);
    p.io.run_for(std::chrono::milliseconds(50));  // the second read stays waiting
    p.io.restart();
    EXPECT_FALSE(done);
    EXPECT_EQ(p.reader.peer_closed(), peer != kThere) << peer;
    p.reader.close();
    ASSERT_TRUE(p.RunUntil(done));
    EXPECT_EQ(second, asio::error::operation_aborted);
    EXPECT_FALSE(p.reader.peer_closed());
  }
}

#endif

// Another thread writes pieces of random sizes with random pauses while the reader drains: every
// byte arrives, in order, and no read waits forever for an event it missed.
TEST(DrainRead, NoByteIsLostWhileAWriterRacesTheReader) {
  Pair p;
  constexpr size_t kTotal = 4 << 20;
  std::string sent;
  std::mt19937 rng(42);
  while (sent.size() < kTotal) sent.push_back(static_cast<char>('a' + rng() % 26));
  std::string got;
  bool done = false;
  error_code read_ec;
  p.Spawn([&]() -> Task {
    std::vector<char> buf(3000);
    while (got.size() < kTotal) {
      size_t n = co_await p.reader.async_read_drain(asio::buffer(buf), EC(read_ec));
      if (read_ec) break;
      got.append(buf.data(), n);
    }
    done = true;
  });
  std::thread writer([&] {
    std::mt19937 r(7);
    size_t at = 0;
    while (at < kTotal) {
      size_t n = std::min<size_t>(kTotal - at, 1 + r() % 6000);
      asio::write(p.writer, asio::buffer(sent.data() + at, n));
      at += n;
      if (r() % 8 == 0) std::this_thread::sleep_for(std::chrono::microseconds(r() % 200));
    }
  });
  bool finished = p.RunUntil(done);
  writer.join();
  ASSERT_TRUE(finished) << "read stalled after " << got.size() << " bytes";
  EXPECT_FALSE(read_ec) << read_ec.message();
  EXPECT_TRUE(got == sent);
}

TEST(DrainRead, EndOfStreamAndCloseCompleteAsAsyncReadSome) {
  Pair p;
  p.Write("x");
  std::vector<error_code> ecs;
  bool done = false;
  p.Spawn([&]() -> Task {
    char buf[16];
    error_code ec;
    co_await p.reader.async_read_drain(asio::buffer(buf), EC(ec));
    ecs.push_back(ec);
    p.writer.shutdown(tcp::socket::shutdown_send);
    size_t n = co_await p.reader.async_read_drain(asio::buffer(buf), EC(ec));
    ecs.push_back(ec);
    EXPECT_EQ(n, 0u);
    done = true;
  });
  ASSERT_TRUE(p.RunUntil(done));
  ASSERT_EQ(ecs.size(), 2u);
  EXPECT_FALSE(ecs[0]);
  EXPECT_EQ(ecs[1], asio::error::eof);

  // A pending read when the socket is closed completes with operation_aborted.
  Pair q;
  error_code ec;
  bool aborted = false;
  q.Spawn([&]() -> Task {
    char buf[16];
    co_await q.reader.async_read_drain(asio::buffer(buf), EC(ec));
    aborted = true;
  });
  q.io.poll();
  EXPECT_FALSE(aborted);
  q.reader.close();
  ASSERT_TRUE(q.RunUntil(aborted));
  EXPECT_EQ(ec, asio::error::operation_aborted);
}

TEST(DrainRead, APendingReadDiesWithItsIoContext) {
  // Destroying the io_context with the read pending frees it without calling it (ASan checks
  // the free).
  bool called = false;
  {
    Pair p;
    p.Spawn([&]() -> Task {
      char buf[16];
      error_code ec;
      co_await p.reader.async_read_drain(asio::buffer(buf), EC(ec));
      called = true;
    });
    p.io.poll();
  }
  EXPECT_FALSE(called);
}

TEST(SendNow, SendsAllPiecesAtOnceWhenTheyFit) {
  Pair p;
  std::string a = "GET / HTTP/1.1\r\n", b = "Host: x\r\n\r\n";
  std::array<asio::const_buffer, 3> pieces{asio::buffer(a), asio::const_buffer(), asio::buffer(b)};
  error_code ec;
  EXPECT_EQ(p.reader.send_now(pieces, ec), a.size() + b.size());
  EXPECT_FALSE(ec);
  std::string got(a.size() + b.size(), '\0');
  asio::read(p.writer, asio::buffer(got));
  EXPECT_EQ(got, a + b);
}

TEST(SendNow, TakesWhatTheKernelTakesAndNeverBlocks) {
  Pair p;
  p.reader.set_option(asio::socket_base::send_buffer_size(4096));
  std::string big(8 << 20, 'z');
  error_code ec;
  size_t sent = p.reader.send_now(asio::buffer(big), ec);
  EXPECT_FALSE(ec);
  EXPECT_GT(sent, 0u);
  EXPECT_LT(sent, big.size());
  // The peer reads nothing: soon a try takes nothing, and says so without an error.
  size_t took = 1;
  for (int i = 0; i < 100 && took != 0; ++i) took = p.reader.send_now(asio::buffer(big), ec);
  EXPECT_EQ(took, 0u);
  EXPECT_FALSE(ec);
}

TEST(SendNow, AClosedPeerIsAnErrorNotASignal) {
  Pair p;
  p.writer.set_option(asio::socket_base::linger(true, 0));
  p.writer.close();  // RST
  std::string s = "x";
  error_code ec;
  for (int i = 0; i < 100 && !ec; ++i) {
    p.reader.send_now(asio::buffer(s), ec);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(ec == asio::error::connection_reset || ec == asio::error::broken_pipe)
      << ec.message();
}

}  // namespace
}  // namespace berth::gateway::detail
