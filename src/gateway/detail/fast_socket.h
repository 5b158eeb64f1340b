// FastSocket: the gateway's TCP stream socket, with two shortcuts for the reads and writes every
// proxied exchange makes (the keep-alive wait for a client's next request, the wait for an
// upstream's response, the request and response writes).
//
// async_read_drain — a read that remembers the socket is drained.
// Boost 1.74's epoll reactor tries every read at once (a "speculative" recv) and waits for
// readiness only when that recv returns EAGAIN. It remembers that a socket is drained only after
// a read of 0 bytes (EOF). After the gateway sends a request upstream, or answers a client, the
// next read on that socket almost always comes before the peer has written: about 1.4 recv per
// exchange returned EAGAIN, a quarter of the gateway's syscalls. nginx avoids them by keeping the
// readiness that edge-triggered epoll reports: a read that fills less than its buffer has taken
// everything, so the next read waits for the next edge.
// async_read_drain completes exactly like async_read_some (bytes read, or eof, or an error, or
// operation_aborted when the socket is closed or cancelled), through the same reactor and
// scheduler, and it does what nginx does: its reactor operation reports "done and exhausted"
// when the recv filled less than the buffer. The reactor then skips the speculative recv of the
// socket's next read and queues it for the next epoll event. That mark is set and cleared under
// the reactor's per-descriptor lock, in the same critical section as the recv that drained the
// socket, so data arriving after the recv always raises an event that finds the read (no lost
// wake-up). A read that filled its buffer leaves speculation on: more may be waiting.
// One thing arrives without raising a new edge: the peer's FIN when it came with the last bytes
// (the recv that drains the socket takes it in too, and nothing says so). So every other read
// (async_read_some: Beast's, TLS's, a tunnel's) re-arms the descriptor when it is the first
// after the mark (epoll_ctl MOD reports a socket readable now, EOF included), and a drain read
// left waiting is checked by the caller with peer_closed() (the gateway's watchdog, once a
// second): nginx learns the same from EPOLLRDHUP, which Asio does not register.
// This builds a reactor operation from Asio's detail layer (reactor_op, epoll_reactor::start_op),
// which differs between Boost versions. It is compiled for the epoll reactor of Boost 1.74 to
// 1.76 (Debian 12 ships 1.74; 1.77 added per-operation cancellation, which these operations
// would ignore); anywhere else async_read_drain is async_read_some.
//
// send_now — one non-blocking sendmsg from the caller, no operation, no trip round the scheduler.
// An async_write that the kernel takes at once (nearly every write of a proxied exchange: the
// socket's send buffer is empty) still allocates an operation and completes through a post. The
// caller sends what is left with async_write:
//
//   size_t sent = sock.send_now(buffers, ec);
//   if (!ec && sent < asio::buffer_size(buffers)) co_await asio::async_write(sock, rest, ...);
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstddef>
#include <type_traits>
#include <utility>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/version.hpp>

#if defined(BOOST_ASIO_HAS_EPOLL) && BOOST_VERSION >= 107400 && BOOST_VERSION < 107700
#define BERTH_DRAIN_READ 1
#else
#define BERTH_DRAIN_READ 0
#endif

namespace berth::gateway::detail {

// How many drain reads tried a recv that returned EAGAIN, on this thread (for tests: a read
// after a draining read must not try).
inline thread_local size_t drain_read_would_block = 0;

// What a FastSocket knows of its drain reads (see RecvOp).
struct DrainState {
  bool drained = false;  // the last read took everything the socket had
  bool pending = false;  // a drain read waits (cleared when its recv is done, before its handler)
};

#if BERTH_DRAIN_READ
// One recv when the socket is readable. `state` is the socket's: a drain read (non-null) sets
// the mark from its result and reports a short read as exhausted; a plain read (null) behaves
// as Asio's own (exhausted only at EOF).
template <class Handler>
class RecvOp final : public boost::asio::detail::reactor_op {
 public:
  RecvOp(int fd, boost::asio::mutable_buffer buf, DrainState* state, Handler&& handler)
      : reactor_op(boost::system::error_code(), &Perform, &Complete),
        fd_(fd),
        buf_(buf),
        state_(state),
        handler_(std::move(handler)) {}

 private:
  // Runs under the reactor's descriptor lock, only while the socket is open (closing it takes
  // the pending operations out first), so `state_` is alive.
  static status Perform(reactor_op* base) {
    auto* op = static_cast<RecvOp*>(base);
    status result;
    for (;;) {
      ssize_t n = ::recv(op->fd_, op->buf_.data(), op->buf_.size(), MSG_DONTWAIT);
      if (n > 0) {
        op->bytes_transferred_ = static_cast<size_t>(n);
        result = op->state_ && static_cast<size_t>(n) < op->buf_.size() ? done_and_exhausted
                                                                          : done;
        break;
      }
      if (n == 0) {
        op->ec_ = boost::asio::error::eof;
        result = done_and_exhausted;
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (op->state_) ++drain_read_would_block;
        return not_done;
      }
      op->ec_ = boost::system::error_code(errno, boost::asio::error::get_system_category());
      result = done;
      break;
    }
    if (op->state_) {
      op->state_->drained = result == done_and_exhausted;
      op->state_->pending = false;
    }
    return result;
  }

  // owner is null when the io_context is destroyed with the read pending: free, do not call.
  static void Complete(void* owner, boost::asio::detail::operation* base,
                       const boost::system::error_code&, size_t) {
    auto* op = static_cast<RecvOp*>(base);
    Handler handler(std::move(op->handler_));
    boost::system::error_code ec = op->ec_;
    size_t n = op->bytes_transferred_;
    delete op;
    if (!owner) return;
    // The handler's executor is the socket's io_context (checked at the start) and this runs
    // on it: the handler is called here, as Asio's own operations call theirs.
    std::move(handler)(ec, n);
  }

  int fd_;
  boost::asio::mutable_buffer buf_;
  DrainState* state_;
  Handler handler_;
};
#endif

// Moving a FastSocket with a read pending is not allowed (the read holds its mark).
template <class Executor>
class FastSocket : public boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor> {
  using Base = boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>;

 public:
  using Base::Base;

  // Sends what the kernel takes now of `buffers` (at most 16 pieces) and returns its size: 0
  // when the send buffer is full. `ec` is set on an error (as async_write would give it: a reset
  // or a closed peer, never SIGPIPE).
  template <class ConstBufferSequence>
  size_t send_now(const ConstBufferSequence& buffers, boost::system::error_code& ec) {
    ec = {};
    iovec iov[16];
    size_t count = 0;
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers) && count < 16; ++it) {
      boost::asio::const_buffer b(*it);
      if (b.size() == 0) continue;
      iov[count].iov_base = const_cast<void*>(b.data());
      iov[count].iov_len = b.size();
      ++count;
    }
    if (count == 0) return 0;
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    for (;;) {
      ssize_t n = ::sendmsg(this->native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        ec = boost::system::error_code(errno, boost::asio::error::get_system_category());
      }
      return 0;
    }
  }

  // Reads some bytes into `buf`, as async_read_some; see the file comment.
  template <class CompletionToken>
  auto async_read_drain(boost::asio::mutable_buffer buf, CompletionToken&& token) {
#if BERTH_DRAIN_READ
    if (buf.size() != 0) {
      drain_.pending = true;
      return StartRecv(buf, &drain_, true, token);
    }
#endif
    return Base::async_read_some(buf, std::forward<CompletionToken>(token));
  }

  // Every other read (Beast's, TLS's, a tunnel's) comes here. After a drain read left the
  // socket marked drained, the reactor would queue this read without trying it, and the one
  // thing that arrives without raising a new edge — the peer's FIN, taken in by the recv that
  // drained the socket — would never be seen (a close-delimited body would never end). So the
  // first read after the mark re-arms the descriptor (epoll_ctl MOD, which reports a socket
  // that is readable now) instead; later reads are Asio's own.
  template <class MutableBufferSequence, class CompletionToken>
  auto async_read_some(const MutableBufferSequence& buffers, CompletionToken&& token) {
#if BERTH_DRAIN_READ
    if (drain_.drained) {
      for (auto it = boost::asio::buffer_sequence_begin(buffers);
           it != boost::asio::buffer_sequence_end(buffers); ++it) {
        boost::asio::mutable_buffer b(*it);
        if (b.size() == 0) continue;
        drain_.drained = false;
        return StartRecv(b, nullptr, false, token);
      }
    }
#endif
    return Base::async_read_some(buffers, std::forward<CompletionToken>(token));
  }

  // What one recv would find now, without taking it (recv with MSG_PEEK, never blocking).
  enum class Peek { kNothing, kData, kClosed, kNotOpen };  // kClosed: EOF or an error
  Peek peek() {
    char c;
    ssize_t n = ::recv(this->native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) return Peek::kData;
    if (n == 0) return Peek::kClosed;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return Peek::kNothing;
    return errno == EBADF ? Peek::kNotOpen : Peek::kClosed;
  }

  // True when a drain read waits that was queued without a recv (the socket marked drained)
  // and the peer has closed its side or reset it. A FIN that came in with the last bytes
  // raises no new edge, so that read is not woken: the gateway's watchdog asks this once a
  // second. False once the read has done its recv, even before its handler runs: what that
  // recv took in (a request and the client's FIN) is the reader's to act on.
  // Not covered: bytes behind TCP urgent data (a recv stops short at the urgent mark, so the
  // socket is marked drained with bytes still in it); such a read waits for its deadline.
  bool peer_closed() {
    return drain_.pending && drain_.drained && peek() == Peek::kClosed;
  }

  bool drained() const { return drain_.drained; }

 private:
#if BERTH_DRAIN_READ
  template <class CompletionToken>
  auto StartRecv(boost::asio::mutable_buffer buf, DrainState* mark, bool speculative,
                 CompletionToken& token) {
    return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code, size_t)>(
        [this, mark, speculative](auto handler, boost::asio::mutable_buffer b) {
          using H = decltype(handler);
          static_assert(std::is_same_v<boost::asio::associated_executor_t<H, Executor>, Executor>,
                        "FastSocket reads complete on the socket's own executor");
          bool cont = boost_asio_handler_cont_helpers::is_continuation(handler);
          auto& impl = this->impl_.get_implementation();
          auto& reactor =
              boost::asio::use_service<boost::asio::detail::reactor>(this->get_executor().context());
          auto* op = new RecvOp<H>(impl.socket_, b, mark, std::move(handler));
          reactor.start_op(boost::asio::detail::reactor::read_op, impl.socket_, impl.reactor_data_,
                           op, cont, speculative);
        },
        token, buf);
  }
#endif

  DrainState drain_;
};

}  // namespace berth::gateway::detail
