// The DataPlane of gateway/gateway.h on Boost.Beast + Asio + OpenSSL. The only translation unit
// of the gateway that includes Beast (one Beast TU is expensive to build).
//
// Threads
//   `io_threads` workers, each with its own io_context run by one thread, its own HTTP and HTTPS
//   acceptors (SO_REUSEPORT: the kernel spreads connections), its own upstream connection pool
//   and its own metrics slot. A connection lives on the worker that accepted it, so nothing on
//   the request path takes a lock or shares a cache line with the other workers, except the
//   round-robin counters and endpoint health atomics of the pools. The admin listener and TCP
//   route listeners run on worker 0 (TCP routes) / worker 0 (admin).
//
// Snapshots
//   Apply compiles a Snapshot into an immutable State (route table, pools with balancers, TLS
//   contexts, rate limiters, metrics handles) and publishes it by bumping a generation counter
//   under a mutex. A connection re-reads the State only between requests when the generation
//   moved, and keeps its shared_ptr for the whole exchange: a request finishes on the snapshot
//   it started with, and no request is dropped by a swap. Endpoint health (ejections, active
//   counts) lives in a registry keyed by "ip:port" so it survives swaps.
//
// Per-exchange cost (docs/gateway.md "Performance")
//   The hot path is measured in CPU time and syscalls per proxied request against nginx:
//   typed io_context executors (no any_io_executor), header fields from a per-exchange arena,
//   headers serialised into one buffer that leaves with the first body piece in one sendmsg,
//   the coarse monotonic clock for deadlines, and no per-exchange timer re-arming (the
//   watchdog wakes at most once a second).
//
// Timeouts
//   Every connection has one deadline and a watchdog timer that wakes at most once a second
//   (or at the deadline) and closes the sockets when it passed. Phases move the deadline: TLS
//   handshake and request header (client_header_timeout_ms, from the first byte), keep-alive
//   wait (client_idle_timeout_ms), upstream connect (route connect_ms), upstream response header
//   (header_ms), each body chunk (idle_ms), capped by total_ms.
#include <openssl/ssl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>
#include <time.h>

// clang-format off
#include <utility>  // first: Boost 1.74's asio/awaitable.hpp uses std::exchange without it
// clang-format on

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <chrono>
#include <csignal>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/fd_limit.h"
#include "core/log.h"
#include "core/netns.h"
#include "gateway/detail/balancer.h"
#include "gateway/detail/cpu_pin.h"
#include "gateway/detail/fast_socket.h"
#include "gateway/detail/observe.h"
#include "gateway/gateway.h"
#include "gateway/match.h"
#include "gateway/request_rules.h"

namespace berth::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
// Everything of a worker runs on its io_context: naming that executor type, instead of the
// type-erased any_io_executor Asio defaults to, takes polymorphic copies, calls and destroys
// off every async operation and coroutine resumption.
using Executor = asio::io_context::executor_type;
// Its hot reads and writes take shortcuts (detail/fast_socket.h): no recv that finds nothing,
// no operation for a write the kernel takes at once.
using Socket = detail::FastSocket<Executor>;
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                         asio::wait_traits<std::chrono::steady_clock>, Executor>;
template <class T = void>
using awaitable = asio::awaitable<T, Executor>;
using beast::error_code;
using detail::EndpointHealth;
using detail::PoolBalancer;
using detail::RouteMetrics;
using SteadyTime = std::chrono::steady_clock::time_point;

#define BERTH_EC(ec) asio::redirect_error(asio::use_awaitable_t<Executor>(), ec)

constexpr size_t kBodyChunk = 64 * 1024;
constexpr size_t kUpstreamHeaderLimit = 64 * 1024;
constexpr size_t kMaxIdlePerEndpoint = 256;
constexpr int kMaxAttempts = 3;
// A request body up to this size (with a Content-Length) is read whole before it is sent, so
// the request can be sent again when a pooled upstream connection turns out to be closed.
constexpr uint64_t kRetryBodyMax = kBodyChunk;
// A pooled connection idle for longer than this is peeked at (one recv) before reuse.
constexpr int64_t kPeekIdleMs = 20;
constexpr const char* kCipherList =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// Before Beast's http::async_read_header / http::async_read_some: when the bytes are already
// buffered (a request read by the keep-alive wait, a response body that came with its header),
// Beast's operations parse them and still complete through a post and a trip round the
// scheduler (an epoll_wait may come first); parsing them here saves that:
//
//   if (!ParseBuffered(b, p, header, ec)) co_await http::async_read_header(s, b, p, ...);
//
// Parses what `b` holds. True when that decided the read, with `ec` its outcome as Beast's
// operation would have given it: `header` true, the header is parsed (or an error); false,
// one put made progress (need_buffer when a buffer_body is full) or failed. False when the
// parser needs bytes from the stream: the caller reads with Beast, which parses what is left.
// (A loop of our own reading in a nested coroutine would cost a coroutine frame per read,
// which for a streamed body is one per 512-byte read.)
template <class Parser>
bool ParseBuffered(beast::flat_buffer& b, Parser& p, bool header, error_code& ec) {
  ec = {};
  if (header && p.is_header_done()) return true;
  while (b.size() != 0) {
    size_t used = p.put(b.data(), ec);
    b.consume(used);
    if (ec == http::error::need_more) break;
    if (ec || !header || p.is_header_done()) return true;
    if (used == 0) break;  // no progress without an error: let Beast read more
  }
  ec = {};
  return false;
}

// Before an async_write of `rest` on the hot path: sends what the kernel takes at once
// (FastSocket::send_now), so a write that fits in the send buffer costs one sendmsg and no
// operation or trip round the scheduler. True when that finished the write (`ec` its outcome);
// false when async_write must send `rest`, which then holds what is left (all of it on TLS).
template <class Stream, class Buffers>
bool SendNow(Stream& s, beast::buffers_suffix<Buffers>& rest, error_code& ec) {
  ec = {};
  if constexpr (std::is_same_v<Stream, Socket>) {
    size_t n = s.send_now(rest, ec);
    if (ec) return true;
    rest.consume(n);
    return asio::buffer_size(rest) == 0;
  }
  return false;
}

// Deadlines, ejections, rate limits and pool idle times need milliseconds, not nanoseconds:
// CLOCK_MONOTONIC_COARSE is a plain read of the vDSO page (no TSC read), and an exchange asks
// for the time about ten times. Durations for metrics and the access log use steady_clock.
int64_t SteadyMs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

Result<tcp::endpoint> ParseAddress(const std::string& addr, const char* what) {
  size_t colon = addr.rfind(':');
  auto bad = [&] {
    return Status(Code::kInvalidArgument, "invalid_argument",
                  std::string(what) + " must be host:port, got \"" + addr + "\"", what);
  };
  if (colon == std::string::npos) return bad();
  std::string host = addr.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") host = "127.0.0.1";
  error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  if (ec) return bad();
  int port = 0;
  try {
    port = std::stoi(addr.substr(colon + 1));
  } catch (...) {
    return bad();
  }
  if (port < 0 || port > 65535) return bad();
  return tcp::endpoint(ip, static_cast<unsigned short>(port));
}

std::string FormatEndpoint(const tcp::endpoint& ep) {
  if (ep.address().is_v6())
    return "[" + ep.address().to_string() + "]:" + std::to_string(ep.port());
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

// Sockets are opened and accepted close-on-exec (SOCK_CLOEXEC, accept4): Asio (Boost 1.74) sets
// it on neither, and a process started meanwhile would inherit them.
error_code OpenCloexec(int family, int* fd) {
  *fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
  return *fd < 0 ? error_code(errno, boost::system::system_category()) : error_code();
}

template <class AsioSocket>
void OpenCloexec(AsioSocket& s, const tcp& protocol, error_code& ec) {
  int fd = -1;
  ec = OpenCloexec(protocol.family(), &fd);
  if (!ec) s.assign(protocol, fd, ec);
  if (ec && fd >= 0) ::close(fd);
}

// accept4 with SOCK_CLOEXEC on a non-blocking acceptor: a try first, then a wait for
// readiness, as Asio's own accept does (same syscalls).
awaitable<void> AcceptCloexec(Acceptor& acc, const tcp& protocol, Socket& s, error_code& ec) {
  for (;;) {
    int fd = ::accept4(acc.native_handle(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      s.assign(protocol, fd, ec);
      if (ec) ::close(fd);
      co_return;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      ec = error_code(errno, boost::system::system_category());
      co_return;
    }
    co_await acc.async_wait(Acceptor::wait_read, BERTH_EC(ec));
    if (ec) co_return;
  }
}

Result<std::shared_ptr<Acceptor>> Listen(asio::io_context& io, const tcp::endpoint& ep,
                                         bool reuse_port, const std::string& what) {
  auto acc = std::make_shared<Acceptor>(io);
  error_code ec;
  OpenCloexec(*acc, ep.protocol(), ec);
  if (!ec) acc->non_blocking(true, ec);
  if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && reuse_port) {
    int one = 1;
    if (::setsockopt(acc->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
      ec = error_code(errno, boost::system::system_category());
    }
  }
  if (!ec) acc->bind(ep, ec);
  if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status(Code::kUnavailable, "listen_failed",
                  "cannot listen on " + FormatEndpoint(ep) + " (" + what + "): " + ec.message(),
                  what);
  }
  return acc;
}

// ---------------------------------------------------------------------------------------------
// The compiled snapshot.

// An instance's network namespace, opened once per snapshot that names it (core/netns.h).
struct NetnsFd {
  explicit NetnsFd(int f) : fd(f) {}
  ~NetnsFd() {
    if (fd >= 0) ::close(fd);
  }
  NetnsFd(const NetnsFd&) = delete;
  NetnsFd& operator=(const NetnsFd&) = delete;
  int fd;
};

struct EpRt {
  tcp::endpoint addr;
  std::string key;  // "[netns|]ip:port": the upstream pool and health key
  const Endpoint* ep;
  std::shared_ptr<NetnsFd> netns;  // null: this host's network
};

// Opens `sock` (close-on-exec) for async_connect: inside the endpoint's team network when it
// has one (host_unreachable when that namespace is gone), else in this host's network.
error_code OpenUpstreamSocket(Socket& sock, const EpRt& ep) {
  error_code ec;
  if (!ep.netns) {
    OpenCloexec(sock, ep.addr.protocol(), ec);
    return ec;
  }
  if (ep.netns->fd < 0) return asio::error::host_unreachable;
  auto fd = SocketIn(ep.netns->fd, ep.addr.protocol().family(), SOCK_STREAM | SOCK_NONBLOCK);
  if (!fd.ok()) return asio::error::host_unreachable;
  sock.assign(ep.addr.protocol(), *fd, ec);
  if (ec) ::close(*fd);
  return ec;
}

struct PoolRt {
  const Pool* pool = nullptr;
  std::vector<EpRt> eps;
  std::unique_ptr<PoolBalancer> balancer;
};

struct RouteRt {
  const HttpRoute* route = nullptr;
  std::vector<PoolRt*> pools;  // per backend
  std::vector<int> weights;    // per backend; 0 when its pool is empty
  std::string reason;          // for 503 when every weight is 0
  std::atomic<uint64_t> rr{0};
  std::shared_ptr<RouteMetrics> metrics;
  std::unique_ptr<detail::RateLimiter> limiter;
  int64_t max_body = 0;
};

struct TcpRt {
  const TcpRoute* route = nullptr;
  PoolRt* pool = nullptr;
  std::shared_ptr<RouteMetrics> metrics;
};

struct State {
  Snapshot snap;
  RouteTable table;
  std::map<std::string, PoolRt> pools;
  std::vector<std::unique_ptr<RouteRt>> routes;
  std::map<int, TcpRt> tcp;  // by listen port
  // SNI: domain → context, wildcard suffix (".example.com") → context, and the default.
  std::vector<std::shared_ptr<ssl::context>> contexts;
  std::map<std::string, SSL_CTX*, std::less<>> sni_exact;
  std::map<std::string, SSL_CTX*, std::less<>> sni_wildcard;
  SSL_CTX* sni_default = nullptr;
};

Status ConfigureTls(ssl::context& ctx) {
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                  ssl::context::single_dh_use | SSL_OP_NO_COMPRESSION |
                  SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX* c = ctx.native_handle();
  if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(c, kCipherList) != 1) {
    return Internal("cannot configure TLS 1.2+ with the modern cipher list");
  }
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
  return Status::Ok();
}

Result<std::shared_ptr<ssl::context>> LoadCertificate(const Certificate& cert, size_t index) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  BERTH_RETURN_IF_ERROR(ConfigureTls(*ctx));
  std::string field = "certificates[" + std::to_string(index) + "]";
  error_code ec;
  ctx->use_certificate_chain(asio::buffer(cert.cert_pem), ec);
  if (ec) {
    return InvalidArgument("certificate \"" + cert.name + "\" does not load: " + ec.message(),
                           field + ".cert_pem");
  }
  ctx->use_private_key(asio::buffer(cert.key_pem), ssl::context::pem, ec);
  if (ec) {
    return InvalidArgument(
        "the key of certificate \"" + cert.name + "\" does not load: " + ec.message(),
        field + ".key_pem");
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    return InvalidArgument(
        "the key of certificate \"" + cert.name + "\" does not match its certificate",
        field + ".key_pem");
  }
  return ctx;
}

SSL_CTX* SelectContext(const State& st, std::string_view server_name) {
  if (!server_name.empty()) {
    char buf[256];
    std::string_view h = NormalizeHost(server_name, buf);
    if (!h.empty()) {
      if (auto it = st.sni_exact.find(h); it != st.sni_exact.end()) return it->second;
      for (size_t dot = h.find('.'); dot != std::string_view::npos; dot = h.find('.', dot + 1)) {
        if (auto it = st.sni_wildcard.find(h.substr(dot)); it != st.sni_wildcard.end()) {
          return it->second;
        }
      }
    }
  }
  return st.sni_default;
}

// ---------------------------------------------------------------------------------------------
// Workers and upstream connections.

// Memory for the header fields of one exchange's messages. Beast allocates every field (and the
// start line) separately, about a dozen times per proxied exchange; here they come from one
// block bumped forward, returned whole when the last of them is freed. The block is borrowed
// from the worker for the exchange only, so idle keep-alive connections hold none. What does
// not fit (huge headers) comes from the heap. One io thread uses it: no lock.
class FieldArena {
 public:
  static constexpr size_t kBlock = 8 * 1024;
  void Attach(std::unique_ptr<char[]> block) {
    if (!block_) {
      block_ = std::move(block);
      used_ = 0;
    }
  }
  // Gives the block back once nothing allocated from it is alive (else keeps it).
  std::unique_ptr<char[]> Detach() {
    if (live_ != 0) return nullptr;
    used_ = 0;
    return std::move(block_);
  }
  void* Allocate(size_t n) {
    size_t rounded = (n + 15) & ~size_t{15};
    if (block_ && kBlock - used_ >= rounded) {
      void* p = block_.get() + used_;
      used_ += rounded;
      ++live_;
      return p;
    }
    return ::operator new(n);
  }
  void Deallocate(void* p, size_t n) {
    char* c = static_cast<char*>(p);
    if (block_ && c >= block_.get() && c < block_.get() + kBlock) {
      if (--live_ == 0) used_ = 0;
      return;
    }
    ::operator delete(p, n);
  }

 private:
  std::unique_ptr<char[]> block_;  // aligned by operator new[] for any field element
  size_t used_ = 0;
  size_t live_ = 0;
};

template <class T>
struct ArenaAllocator {
  using value_type = T;
  explicit ArenaAllocator(FieldArena* a) : arena(a) {}
  template <class U>
  ArenaAllocator(const ArenaAllocator<U>& o) : arena(o.arena) {}  // NOLINT: rebinding
  T* allocate(size_t n) { return static_cast<T*>(arena->Allocate(n * sizeof(T))); }
  void deallocate(T* p, size_t n) { arena->Deallocate(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const ArenaAllocator<U>& o) const {
    return arena == o.arena;
  }
  template <class U>
  bool operator!=(const ArenaAllocator<U>& o) const {
    return arena != o.arena;
  }
  FieldArena* arena;
};
using FieldAllocator = ArenaAllocator<char>;

struct UpConn {
  explicit UpConn(asio::io_context& io) : sock(io) {}
  Socket sock;
  beast::flat_buffer buf;
  int64_t idle_since_ms = 0;
};

// Idle keep-alive connections to upstream endpoints, owned by one worker (no lock).
class UpstreamPool {
 public:
  // `peek_always`: for a request that cannot be sent again (its body streams), look at every
  // connection before reuse, not only at those idle for a while.
  std::unique_ptr<UpConn> Take(const std::string& key, int64_t now_ms, bool peek_always) {
    auto it = idle_.find(key);
    if (it == idle_.end()) return nullptr;
    auto& v = it->second;
    while (!v.empty()) {
      std::unique_ptr<UpConn> c = std::move(v.back());
      v.pop_back();
      // A connection idle for a while may have been closed by the upstream: peek without
      // blocking (EOF or an error; data = protocol garbage) rather than failing the request
      // later.
      if ((peek_always || now_ms - c->idle_since_ms > kPeekIdleMs) &&
          c->sock.peek() != Socket::Peek::kNothing) {
        continue;
      }
      return c;
    }
    return nullptr;
  }
  void Put(const std::string& key, std::unique_ptr<UpConn> c, int64_t now_ms) {
    auto& v = idle_[key];
    if (v.size() >= kMaxIdlePerEndpoint) return;
    c->idle_since_ms = now_ms;
    v.push_back(std::move(c));
  }
  void Clear() { idle_.clear(); }

 private:
  std::unordered_map<std::string, std::vector<std::unique_ptr<UpConn>>> idle_;
};

class Impl;

struct Worker {
  Worker(Impl& dp, int index) : dp(dp), index(index), io(1), rng(std::random_device{}() + index) {}
  Impl& dp;
  int index;
  asio::io_context io;
  std::thread thread;
  std::shared_ptr<Acceptor> http_acc, https_acc;
  UpstreamPool upstreams;
  std::mt19937_64 rng;
  // The access log's "time" up to the second, formatted once per second (gmtime and printf
  // per line cost more than the rest of the line).
  int64_t log_second = INT64_MIN;
  std::string log_time_prefix;
  std::vector<std::unique_ptr<char[]>> spare_bufs;
  std::vector<std::unique_ptr<char[]>> spare_arenas;

  std::unique_ptr<char[]> TakeArena() {
    if (spare_arenas.empty()) return std::unique_ptr<char[]>(new char[FieldArena::kBlock]);
    auto b = std::move(spare_arenas.back());
    spare_arenas.pop_back();
    return b;
  }
  void GiveArena(std::unique_ptr<char[]> b) {
    if (b && spare_arenas.size() < 256) spare_arenas.push_back(std::move(b));
  }

  std::unique_ptr<char[]> TakeBuf() {
    if (spare_bufs.empty()) return std::unique_ptr<char[]>(new char[kBodyChunk]);
    auto b = std::move(spare_bufs.back());
    spare_bufs.pop_back();
    return b;
  }
  void GiveBuf(std::unique_ptr<char[]> b) {
    if (b && spare_bufs.size() < 64) spare_bufs.push_back(std::move(b));
  }
  // 32 hex digits of the worker's PRNG into `s` (its capacity is reused: no allocation).
  void RequestId(std::string* s) {
    static const char* kHex = "0123456789abcdef";
    uint64_t a = rng(), b = rng();
    s->resize(32);
    for (int i = 0; i < 16; ++i) {
      (*s)[i] = kHex[(a >> (i * 4)) & 15];
      (*s)[16 + i] = kHex[(b >> (i * 4)) & 15];
    }
  }
};

class Impl final : public DataPlane {
 public:
  explicit Impl(const Options& o)
      : opts_(o), metrics_(std::max(1, o.io_threads)), base_tls_(ssl::context::tls_server) {}
  ~Impl() override { Stop(0); }

  Status Init();
  Status Apply(const Snapshot& snapshot) override;
  std::vector<TcpListenerStatus> TcpListeners() const override {
    std::lock_guard<std::mutex> l(tcp_status_mu_);
    return tcp_status_;
  }
  // Binds the TCP route ports that could not be bound so far (every second, on worker 0).
  void RetryTcpListeners();
  int64_t revision() const override { return metrics_.revision.load(); }
  std::string http_address() const override { return http_addr_; }
  std::string https_address() const override { return https_addr_; }
  std::string admin_address() const override { return admin_addr_; }
  std::vector<int> io_cpus() const override { return io_cpus_; }
  void Stop(int drain_ms) override;

  // Hot path: the current state (callers cache it with its generation).
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  std::shared_ptr<const State> state() const {
    std::lock_guard<std::mutex> l(state_mu_);
    return state_;
  }

  const Options& opts() const { return opts_; }
  detail::Metrics& metrics() { return metrics_; }
  detail::AccessLog* access_log() { return access_log_.get(); }
  ssl::context& base_tls() { return base_tls_; }
  int https_port() const { return https_port_; }
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }
  std::atomic<int>& connections() { return connections_; }

 private:
  static int ServerName(SSL* ssl, int* alert, void* arg);
  Result<std::shared_ptr<State>> Compile(const Snapshot& snap);

  Options opts_;
  detail::Metrics metrics_;
  std::unique_ptr<detail::AccessLog> access_log_;
  ssl::context base_tls_;
  std::string http_addr_, https_addr_, admin_addr_;
  int https_port_ = 0;
  std::vector<int> io_cpus_;  // set by Init
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<int> connections_{0};

  std::mutex apply_mu_;  // serializes Apply and Stop
  mutable std::mutex state_mu_;
  std::shared_ptr<const State> state_;  // guarded by state_mu_
  std::atomic<uint64_t> generation_{0};
  std::mutex health_mu_;
  std::map<std::string, std::weak_ptr<EndpointHealth>> health_;  // guarded by health_mu_
  std::map<std::string, std::weak_ptr<NetnsFd>> netns_;           // guarded by health_mu_
  std::map<int, std::shared_ptr<Acceptor>> tcp_listeners_;       // guarded by apply_mu_
  // The TCP routes of the current snapshot by listen port, with their bind error ("" = bound).
  struct TcpWant {
    std::string route_id;
    tcp::endpoint ep;
    std::string error;
  };
  std::map<int, TcpWant> tcp_wanted_;  // guarded by apply_mu_
  // Starts accepting on a newly bound TCP route listener; apply_mu_ held.
  void StartTcpListener(int port, std::shared_ptr<Acceptor> acc);
  // Copies tcp_wanted_ to tcp_status_; apply_mu_ held.
  void PublishTcpStatus();
  mutable std::mutex tcp_status_mu_;
  std::vector<TcpListenerStatus> tcp_status_;  // guarded by tcp_status_mu_
  std::shared_ptr<Acceptor> admin_acc_;

  // Last: destroyed first, so sessions dying with their io_context still see the rest.
  std::vector<std::unique_ptr<Worker>> workers_;
};

// ---------------------------------------------------------------------------------------------
// Connections.

// A client connection: its deadline, the watchdog enforcing it, and the upstream connection in
// use (closed with it on a timeout).
class ConnBase : public std::enable_shared_from_this<ConnBase> {
 public:
  explicit ConnBase(Worker& w) : w_(w), dp_(w.dp), timer_(w.io) {
    dp_.connections().fetch_add(1, std::memory_order_relaxed);
    auto& a = dp_.metrics().active(w.index);
    a.store(a.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  virtual ~ConnBase() {
    dp_.connections().fetch_sub(1, std::memory_order_relaxed);
    auto& a = dp_.metrics().active(w_.index);
    a.store(a.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }

 protected:
  virtual void CloseClient() = 0;
  // The client closed its side after its last request (see the watchdog).
  virtual bool ClientClosed() = 0;

  void CloseAll() {
    closed_ = true;
    CloseClient();
    if (up_) {
      error_code ec;
      up_->sock.close(ec);
    }
  }
  // Deadline `ms` from now (0 = none), never past the exchange's total deadline.
  void SetDeadline(int ms) {
    int64_t d = ms > 0 ? SteadyMs() + ms : INT64_MAX;
    deadline_ms_ = std::min(d, total_deadline_ms_);
  }
  void StartWatchdog() { asio::co_spawn(w_.io, Watchdog(shared_from_this()), asio::detached); }
  void StopWatchdog() {
    closed_ = true;
    timer_.cancel();
  }

  static awaitable<void> Watchdog(std::shared_ptr<ConnBase> self) {
    while (!self->closed_) {
      int64_t now = SteadyMs();
      if (self->deadline_ms_ <= now && self->upstream_wait_ && self->up_) {
        // Waiting on the upstream only (connect, response header): fail that upstream, the
        // client still gets an answer (next endpoint or 504).
        error_code ec;
        self->up_->sock.close(ec);
        self->upstream_timed_out_ = true;
        self->deadline_ms_ = INT64_MAX;
        continue;
      }
      if (self->deadline_ms_ <= now || (self->idle_ && self->dp_.stopping())) {
        self->timed_out_ = true;
        self->CloseAll();
        break;
      }
      // A drain read waiting on a socket whose peer closed right after its last bytes is not
      // woken (FastSocket::peer_closed): look once a second. A client gone between requests
      // is closed; an upstream that closed before answering reads as EOF.
      if (self->idle_ && self->ClientClosed()) {
        self->CloseAll();
        break;
      }
      if (self->upstream_wait_ && self->up_ && self->up_->sock.peer_closed()) {
        error_code ec;
        self->upstream_eof_ = true;
        self->up_->sock.close(ec);
        continue;
      }
      int64_t wait = std::min<int64_t>(self->deadline_ms_ - now, 1000);
      self->timer_.expires_after(std::chrono::milliseconds(wait));
      error_code ec;
      co_await self->timer_.async_wait(BERTH_EC(ec));
    }
  }

  Worker& w_;
  Impl& dp_;
  Timer timer_;
  int64_t deadline_ms_ = INT64_MAX;
  int64_t total_deadline_ms_ = INT64_MAX;
  bool closed_ = false;
  bool timed_out_ = false;
  bool idle_ = false;                // waiting for the next request: closed at once when stopping
  bool upstream_wait_ = false;       // the deadline is the upstream's (connect, header)
  bool upstream_timed_out_ = false;  // ... and it passed
  bool upstream_eof_ = false;        // ... or the upstream closed without a word (watchdog)
  std::unique_ptr<UpConn> up_;
};

// Copies bytes from `from` to `to` until EOF or an error; each chunk moves the deadline.
template <class From, class To>
awaitable<void> CopyStream(From& from, To& to, std::shared_ptr<ConnBase> keep,
                           std::function<void(size_t)> on_chunk) {
  std::unique_ptr<char[]> buf(new char[16 * 1024]);
  for (;;) {
    error_code ec;
    size_t n = co_await from.async_read_some(asio::buffer(buf.get(), 16 * 1024), BERTH_EC(ec));
    if (n > 0) {
      on_chunk(n);
      error_code wec;
      co_await asio::async_write(to, asio::buffer(buf.get(), n), BERTH_EC(wec));
      if (wec) break;
    }
    if (ec) break;
  }
}

template <class Fields>
class HeaderView final : public RequestHeaders {
 public:
  explicit HeaderView(const Fields& f) : f_(f) {}
  bool Find(std::string_view name, std::string_view* value) const override {
    auto it = f_.find(name);
    if (it == f_.end()) return false;
    *value = it->value();
    return true;
  }

 private:
  const Fields& f_;
};

template <class Fields>
void StripHopByHop(Fields& f, bool keep_upgrade) {
  auto hop = [keep_upgrade](http::field name) {
    switch (name) {
      case http::field::connection:
      case http::field::keep_alive:
      case http::field::proxy_connection:
      case http::field::te:
      case http::field::trailer:
      case http::field::proxy_authenticate:
        return true;
      case http::field::upgrade:
        return !keep_upgrade;
      default:
        return false;
    }
  };
  // Passes over the fields comparing enums: cheaper than seven lookups and erases by name.
  bool any = false;
  for (const auto& fld : f) {
    if (hop(fld.name())) {
      any = true;
      break;
    }
  }
  if (!any) return;
  // Headers named by Connection are hop-by-hop too (RFC 9110 §7.6.1). It nearly always names
  // only close, keep-alive or upgrade, which the pass below handles.
  auto conn = f.find(http::field::connection);
  if (conn != f.end()) {
    std::vector<std::string> named;
    for (auto tok : http::token_list(conn->value())) {
      std::string_view t(tok.data(), tok.size());
      if (EqualsIgnoreCase(t, "close") || EqualsIgnoreCase(t, "keep-alive") ||
          EqualsIgnoreCase(t, "upgrade")) {
        continue;
      }
      // The framing (and Host) the gateway forwards are its own decision: "Connection:
      // Content-Length" must not make it send a body the app cannot delimit.
      if (EqualsIgnoreCase(t, "content-length") || EqualsIgnoreCase(t, "transfer-encoding") ||
          EqualsIgnoreCase(t, "host")) {
        continue;
      }
      named.emplace_back(t);
    }
    for (const auto& n : named) f.erase(n);
  }
  for (auto it = f.begin(); it != f.end();) it = hop(it->name()) ? f.erase(it) : std::next(it);
}

template <class Message>
bool IsUpgrade(const Message& req) {
  if (req.find(http::field::upgrade) == req.end()) return false;
  auto conn = req.find(http::field::connection);
  return conn != req.end() && http::token_list(conn->value()).exists("upgrade");
}

// What the gateway answers itself to a request its rules refuse.
struct Refusal {
  int status = 0;  // 0: none
  const char* title = "";
  std::string reason;
};

// The request rules of docs/gateway.md "Request framing" (gateway/request_rules.h), in one pass
// over the parsed header's fields: refuses a request whose framing or Host the app could read
// otherwise than the gateway, and rewrites what the gateway decided — an absolute-form target to
// origin form with Host set to its authority, a Content-Length list or repeat to one value, the
// Transfer-Encoding to "chunked" (the gateway re-chunks the body). Sets `host` to the host the
// request is routed by.
template <class Parser>
Refusal CheckRequest(Parser& parser, std::string* host) {
  auto& req = parser.get();
  host->clear();
  int hosts = 0, te_lines = 0, cl_lines = 0;
  std::string_view host_value, te_value, cl_value;
  for (const auto& f : req) {
    switch (f.name()) {
      case http::field::host:
        if (hosts++ == 0) host_value = f.value();
        break;
      case http::field::transfer_encoding:
        if (te_lines++ == 0) te_value = f.value();
        break;
      case http::field::content_length:
        if (cl_lines++ == 0) cl_value = f.value();
        break;
      default:
        break;
    }
  }
  auto bad = [](std::string reason) { return Refusal{400, "Bad Request", std::move(reason)}; };
  if (hosts > 1) return bad("more than one Host header");
  if (hosts == 0 && req.version() >= 11) return bad("no Host header (HTTP/1.1 requires one)");
  if (!ValidHostValue(host_value)) return bad("invalid Host header");
  std::string_view target = req.target();
  std::string_view authority, origin;
  bool absolute = false;
  if (target.empty() || target.front() != '/') {
    if (SplitAbsoluteTarget(target, &authority, &origin)) {
      if (authority.empty() || !ValidHostValue(authority)) {
        return bad("invalid authority in the request target");
      }
      absolute = true;
    } else if (!(target == "*" && req.method() == http::verb::options)) {
      return bad("invalid request target");
    }
  }
  if (te_lines > 0) {
    // RFC 9112 §6.1 and §6.3: the body's end would be guessed; nginx and haproxy refuse too.
    if (req.version() < 11) return bad("Transfer-Encoding in an HTTP/1.0 request");
    if (cl_lines > 0) return bad("Transfer-Encoding and Content-Length together");
    TransferCodingList codings;
    for (const auto& f : req) {
      if (f.name() == http::field::transfer_encoding) codings.Add(f.value());
    }
    switch (codings.Verdict()) {
      case TransferCodings::kChunked:
        // The body is read by the parser: it must have taken the request as chunked too, or
        // the gateway would send a chunked header and leave the chunks to be read as the next
        // request.
        if (!parser.chunked()) return bad("the final transfer coding is not chunked");
        break;
      case TransferCodings::kNotFinal:
        return bad("the final transfer coding is not chunked");
      case TransferCodings::kChunkedTwice:
        return bad("chunked is applied more than once");
      case TransferCodings::kUnsupported:
        return Refusal{501, "Not Implemented",
                       "transfer coding " + std::string(codings.unsupported()) +
                           " is not supported"};
    }
    if (te_lines > 1 || te_value != "chunked") {
      req.set(http::field::transfer_encoding, "chunked");
    }
  }
  if (absolute) {
    host->assign(authority);
    std::string path = origin.empty() || origin.front() != '/' ? "/" + std::string(origin)
                                                                : std::string(origin);
    req.set(http::field::host, *host);  // RFC 9112 §3.2.2: the target's authority wins
    req.target(path);
  } else {
    host->assign(host_value);
  }
  if (cl_lines > 1 || cl_value.find(',') != std::string_view::npos) {
    // The parser took a list or repeat only when its values agree: the app gets one value.
    auto len = parser.content_length();
    req.set(http::field::content_length, std::to_string(len ? *len : 0));
  }
  return {};
}

// Fields the gateway consumes never reach the app: the hop-by-hop ones, those Connection names,
// Expect: 100-continue (the gateway answers it). Returns whether the client expects a 100.
template <class Message>
bool ConsumeHopFields(Message& req, bool upgrade) {
  bool expect_continue = false;
  auto expect = req.find(http::field::expect);
  if (expect != req.end() && EqualsIgnoreCase(expect->value(), "100-continue")) {
    expect_continue = true;
    req.erase(http::field::expect);
  }
  StripHopByHop(req, upgrade);
  if (upgrade) req.set(http::field::connection, "Upgrade");
  return expect_continue;
}

std::string HtmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string SafeHeaderValue(std::string_view s) {
  std::string out;
  for (char c : s) out.push_back((static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c);
  return out;
}

// The start line and fields of a message as one contiguous piece of text, so the header and
// the first body piece leave in one sendmsg with one iovec (Beast's serializer hands the kernel
// one iovec per field, and its buffer iterators cost more CPU than this copy).
template <class Fields>
void AppendFields(std::string* out, const Fields& f) {
  for (const auto& fld : f) {
    out->append(fld.name_string());
    out->append(": ", 2);
    out->append(fld.value());
    out->append("\r\n", 2);
  }
  out->append("\r\n", 2);
}

void AppendVersion(std::string* out, unsigned version) {
  out->append("HTTP/", 5);
  out->push_back(static_cast<char>('0' + version / 10 % 10));
  out->push_back('.');
  out->push_back(static_cast<char>('0' + version % 10));
}

template <class Message>
void RequestHead(std::string* out, const Message& req) {
  out->assign(req.method_string());
  out->push_back(' ');
  out->append(req.target());
  out->push_back(' ');
  AppendVersion(out, req.version());
  out->append("\r\n", 2);
  AppendFields(out, req);
}

template <class Message>
void ResponseHead(std::string* out, const Message& res) {
  out->clear();
  AppendVersion(out, res.version());
  char code[4];
  unsigned c = res.result_int() % 1000;
  code[0] = static_cast<char>('0' + c / 100);
  code[1] = static_cast<char>('0' + c / 10 % 10);
  code[2] = static_cast<char>('0' + c % 10);
  code[3] = ' ';
  out->push_back(' ');
  out->append(code, 4);
  out->append(res.reason());
  out->append("\r\n", 2);
  AppendFields(out, res);
}

// Body pieces up to this size are copied behind the header (or chunk framing) so a piece
// leaves as one buffer: one iovec, and one TLS record on HTTPS.
constexpr size_t kCoalesceMax = 16 * 1024;
constexpr size_t kNotBuffered = static_cast<size_t>(-1);

void AppendNumber(std::string* out, uint64_t v) {
  char b[24];
  auto r = std::to_chars(b, b + sizeof b, v);
  out->append(b, r.ptr);
}

// ".ddd": three decimals of a value below 1000.
void AppendMillis(std::string* out, uint64_t v) {
  char b[4] = {'.', static_cast<char>('0' + v / 100 % 10), static_cast<char>('0' + v / 10 % 10),
               static_cast<char>('0' + v % 10)};
  out->append(b, 4);
}

enum Listener { kHttp = 0, kHttps = 1, kAdmin = 2 };

template <class Stream>
class HttpSession final : public ConnBase {
 public:
  HttpSession(Worker& w, Stream stream, bool tls)
      : ConnBase(w), stream_(std::move(stream)), tls_(tls) {}

  static awaitable<void> Run(std::shared_ptr<HttpSession> self) { co_await self->Serve(); }

 private:
  using ReqParser = http::request_parser<http::buffer_body, FieldAllocator>;
  using ResParser = http::response_parser<http::buffer_body, FieldAllocator>;
  using Pieces = std::array<asio::const_buffer, 3>;

  // The buffers that send, in this order: head_ (the message header when not sent yet, else
  // empty), `n` body bytes at `data` (as one chunk when `chunked`), and the last chunk when
  // `chunked` and `last`. Small pieces are copied into head_, so most writes are one buffer.
  Pieces PreparePiece(const char* data, size_t n, bool chunked, bool last) {
    std::string& h = head_;
    if (chunked && n) {
      char hex[20];
      auto r = std::to_chars(hex, hex + sizeof hex, n, 16);
      h.append(hex, r.ptr);
      h.append("\r\n", 2);
    }
    tail_.clear();
    if (chunked && n) tail_.append("\r\n", 2);
    if (chunked && last) tail_.append("0\r\n\r\n", 5);
    if (n <= kCoalesceMax) {
      h.append(data, n);
      h.append(tail_);
      return {asio::buffer(h), asio::const_buffer(), asio::const_buffer()};
    }
    return {asio::buffer(h), asio::buffer(data, n), asio::buffer(tail_)};
  }

  static bool Empty(const Pieces& p) {
    return p[0].size() == 0 && p[1].size() == 0 && p[2].size() == 0;
  }

  void CloseClient() override {
    error_code ec;
    beast::get_lowest_layer(stream_).close(ec);
  }
  bool ClientClosed() override { return beast::get_lowest_layer(stream_).peer_closed(); }

  awaitable<void> Serve() {
    error_code ec;
    client_ip_ = beast::get_lowest_layer(stream_).remote_endpoint(ec).address().to_string();
    StartWatchdog();
    SetDeadline(dp_.opts().client_header_timeout_ms);
    if constexpr (!std::is_same_v<Stream, Socket>) {
      co_await stream_.async_handshake(ssl::stream_base::server, BERTH_EC(ec));
      if (ec) co_return Finish();
    }
    bool first = true;
    for (;;) {
      if (buf_.size() == 0) {
        // Keep-alive wait: the idle timeout until the first byte of the next request.
        idle_ = !first;
        SetDeadline(first ? dp_.opts().client_header_timeout_ms
                          : dp_.opts().client_idle_timeout_ms);
        size_t n;
        if constexpr (std::is_same_v<Stream, Socket>) {
          n = co_await stream_.async_read_drain(buf_.prepare(4096), BERTH_EC(ec));
        } else {
          n = co_await stream_.async_read_some(buf_.prepare(4096), BERTH_EC(ec));
        }
        idle_ = false;
        if (ec) break;
        buf_.commit(n);
      }
      first = false;
      total_deadline_ms_ = INT64_MAX;
      SetDeadline(dp_.opts().client_header_timeout_ms);
      // The previous exchange's messages are gone: the field arena starts empty.
      res_.reset();
      req_.reset();
      arena_.Attach(w_.TakeArena());
      req_.emplace(std::piecewise_construct, std::make_tuple(),
                   std::make_tuple(FieldAllocator(&arena_)));
      req_->header_limit(static_cast<uint32_t>(dp_.opts().max_header_bytes));
      req_->body_limit(std::numeric_limits<uint64_t>::max());
      if (!ParseBuffered(buf_, *req_, true, ec)) {
        co_await http::async_read_header(stream_, buf_, *req_, BERTH_EC(ec));
      }
      if (ec) {
        if (ec == http::error::header_limit) {
          co_await Local(431, "Request Header Fields Too Large", "request header too large", false);
        } else if (!closed_ && ec != http::error::end_of_stream) {
          co_await Local(400, "Bad Request", "malformed request", false);
        }
        break;
      }
      bool keep = co_await Exchange();
      res_.reset();
      req_.reset();
      w_.GiveArena(arena_.Detach());  // idle connections hold no arena
      if (!keep || closed_) break;
    }
    if (linger_ && !closed_) co_await Linger();
    Finish();
  }

  // After an error answer to a request whose body (or header) we did not read: closing at once
  // would reset the connection and the client could lose the answer while still sending. Shut
  // our side, then discard what the client still sends for up to 2 s / 32 MiB.
  awaitable<void> Linger() {
    error_code ec;
    auto& sock = beast::get_lowest_layer(stream_);
    sock.shutdown(Socket::shutdown_send, ec);
    SetDeadline(2000);
    auto tmp = w_.TakeBuf();
    size_t total = 0;
    while (total < (32u << 20)) {
      size_t n = co_await sock.async_read_some(asio::buffer(tmp.get(), kBodyChunk), BERTH_EC(ec));
      if (ec) break;
      total += n;
    }
    w_.GiveBuf(std::move(tmp));
  }

  void Finish() {
    if (!timed_out_ && !closed_) {
      // FIN before close: the client reads our last response before the connection ends.
      error_code ec;
      beast::get_lowest_layer(stream_).shutdown(Socket::shutdown_send, ec);
    }
    StopWatchdog();
    CloseClient();
  }

  // Answers from the gateway itself (404, 503, 429, ...). Returns whether the connection can
  // carry another request.
  awaitable<bool> Local(int status, std::string_view title, std::string reason, bool keep,
                        std::string location = {}) {
    http::response<http::string_body> res{static_cast<http::status>(status), 11};
    res.set(http::field::server, "berth");
    if (!reason.empty()) res.set("X-Berth-Reason", SafeHeaderValue(reason));
    if (!request_id_.empty()) res.set("X-Request-Id", request_id_);
    if (!location.empty()) res.set(http::field::location, location);
    if (status == 404) {
      res.set(http::field::content_type, "text/html; charset=utf-8");
      res.body() =
          "<!doctype html><html><head><title>404 Not Found</title></head><body>"
          "<h1>404 Not Found</h1><p>No route on this berth gateway for host <code>" +
          HtmlEscape(host_) +
          "</code> and this path.</p><p>Check the domain and the routes of your app "
          "(<code>berth domain list</code>).</p></body></html>\n";
    } else {
      res.set(http::field::content_type, "text/plain; charset=utf-8");
      res.body() = std::to_string(status) + " " + std::string(title) +
                   (reason.empty() ? "" : ": " + SafeHeaderValue(reason)) + "\n";
    }
    // A request body we did not read would be parsed as the next request: close instead.
    if (req_ && (!req_->is_header_done() || !req_->is_done())) {
      keep = false;
      linger_ = true;
    }
    if (req_ && req_->is_header_done() && !req_->get().keep_alive()) keep = false;
    res.keep_alive(keep);
    res.prepare_payload();
    status_ = status;
    bytes_out_ += res.body().size();
    SetDeadline(dp_.opts().client_header_timeout_ms);
    error_code ec;
    co_await http::async_write(stream_, res, BERTH_EC(ec));
    co_return keep && !ec;
  }

  // One request: route, balance, proxy. Returns whether the connection stays open.
  awaitable<bool> Exchange() {
    start_ = std::chrono::steady_clock::now();
    status_ = 0;
    bytes_in_ = bytes_out_ = 0;
    instance_ = nullptr;
    route_ = nullptr;
    request_id_.clear();
    set_cookie_.clear();
    if (!state_ || state_gen_ != dp_.generation()) {
      state_gen_ = dp_.generation();
      state_ = dp_.state();
    }
    std::shared_ptr<const State> st = state_;  // this exchange's snapshot
    auto& req = req_->get();
    bool keep;
    if (Refusal no = CheckRequest(*req_, &host_); no.status != 0) {
      // Whatever the client sent after this header cannot be trusted to be a request: answer,
      // then discard the rest and close.
      linger_ = true;
      co_await Local(no.status, no.title, std::move(no.reason), false);
      keep = false;
    } else {
      keep = co_await Route(*st, req);
    }
    Log();
    co_return keep;
  }

  awaitable<bool> Route(const State& st, ReqParser::value_type& req) {
    auto rid = req.find("X-Request-Id");
    if (rid != req.end() && !rid->value().empty() && rid->value().size() <= 200) {
      request_id_ = std::string(rid->value());
    } else {
      w_.RequestId(&request_id_);
      req.insert("X-Request-Id", request_id_);
    }
    HeaderView<std::decay_t<decltype(req)>> hv(req);
    int ri = st.table.Match(host_, req.target(), hv);
    if (ri < 0) co_return co_await Local(404, "Not Found", "no route for host", true);
    RouteRt& rt = *st.routes[ri];
    route_ = &rt;
    const HttpRoute& r = *rt.route;
    if (r.redirect_https && !tls_) {
      char buf[256];
      std::string host(NormalizeHost(host_, buf));
      int port = dp_.https_port();
      std::string loc = "https://" + host +
                        (port && port != 443 ? ":" + std::to_string(port) : "") +
                        std::string(req.target());
      co_return co_await Local(308, "Permanent Redirect", "", true, loc);
    }
    if (rt.limiter && !rt.limiter->Allow(client_ip_, SteadyMs())) {
      co_return co_await Local(429, "Too Many Requests", "rate limit of route " + r.id, true);
    }
    if (rt.max_body > 0) {
      auto len = req_->content_length();
      if (len && *len > static_cast<uint64_t>(rt.max_body)) {
        co_return co_await Local(413, "Payload Too Large",
                                 "body larger than " + std::to_string(rt.max_body) + " bytes",
                                 false);
      }
      req_->body_limit(static_cast<uint64_t>(rt.max_body));
    }
    if (r.timeouts.total_ms > 0) {
      total_deadline_ms_ = SteadyMs() + r.timeouts.total_ms;
    }

    // Backend (weighted), then endpoint (balanced).
    uint64_t hash = 0;
    bool hashed = r.balance == Balance::kHashCookie || r.balance == Balance::kHashIp;
    if (r.balance == Balance::kHashCookie) {
      std::string_view cookies, v;
      if (hv.Find("cookie", &cookies) && FindCookie(cookies, r.hash_cookie, &v) && !v.empty()) {
        hash = detail::HashBytes(v);
      } else {
        std::string token;
        w_.RequestId(&token);
        hash = detail::HashBytes(token);
        set_cookie_ = r.hash_cookie + "=" + token + "; Path=/; HttpOnly; SameSite=Lax";
      }
    } else if (r.balance == Balance::kHashIp) {
      hash = detail::HashBytes(client_ip_);
    }
    int bi = detail::PickWeighted(rt.weights,
                                  hashed ? hash : rt.rr.fetch_add(1, std::memory_order_relaxed));
    if (bi < 0) co_return co_await Local(503, "Service Unavailable", rt.reason, true);
    PoolRt& pool = *rt.pools[bi];

    PrepareUpstreamRequest(req);
    bool upgrade = IsUpgrade(req);
    bool has_body = !req_->is_done();
    auto body = w_.TakeBuf();
    struct GiveBack {
      Worker& w;
      std::unique_ptr<char[]>& b;
      ~GiveBack() { w.GiveBuf(std::move(b)); }
    } give_back{w_, body};
    // A small body is read whole first, so the request can be sent again on a new upstream
    // connection when a pooled one turns out closed. Bigger (or chunked) bodies stream.
    size_t buffered = kNotBuffered;
    if (has_body && !upgrade) {
      auto len = req_->content_length();
      if (len && *len <= kRetryBodyMax) {
        if (!co_await ReadWholeBody(r, req, body.get(), &buffered)) co_return false;
      }
    }
    bool retriable = !has_body || buffered != kNotBuffered;

    std::vector<int> tried;
    bool fresh_only = false;
    for (int attempt = 0; attempt < kMaxAttempts + 1; ++attempt) {
      int ei = pool.balancer->Pick(r.balance, hash, SteadyMs(), tried);
      if (ei < 0) break;
      const EpRt& ep = pool.eps[ei];
      EndpointHealth& health = pool.balancer->health(ei);
      bool reused = false;
      if (!fresh_only) {
        up_ = w_.upstreams.Take(ep.key, SteadyMs(), !retriable);
        reused = up_ != nullptr;
      }
      if (!up_) {
        up_ = std::make_unique<UpConn>(w_.io);
        SetDeadline(r.timeouts.connect_ms);
        error_code ec;
        upstream_wait_ = true;
        upstream_timed_out_ = false;
        ec = OpenUpstreamSocket(up_->sock, ep);
        if (!ec) co_await up_->sock.async_connect(ep.addr, BERTH_EC(ec));
        upstream_wait_ = false;
        if (ec || closed_) {
          up_.reset();
          if (closed_) co_return false;
          health.OnConnectFailure(SteadyMs());
          rt.metrics->UpstreamError(w_.index);
          tried.push_back(ei);
          continue;
        }
        health.OnConnectSuccess();
        up_->sock.set_option(tcp::no_delay(true), ec);
      }
      instance_ = ep.ep;
      instance_key_ = ep.key;
      health.active.fetch_add(1, std::memory_order_relaxed);
      Outcome o = co_await Forward(r, req, upgrade, reused, body.get(), buffered);
      health.active.fetch_sub(1, std::memory_order_relaxed);
      if (o == Outcome::kRetryFresh && retriable) {
        // A pooled connection the upstream had closed: nothing reached the upstream
        // application, try again on a new connection (same balancing).
        up_.reset();
        fresh_only = true;
        continue;
      }
      if (o == Outcome::kDone) co_return keep_client_;
      if (o == Outcome::kClosed) co_return false;
      rt.metrics->UpstreamError(w_.index);
      up_.reset();
      if (o == Outcome::kTimeout) {
        co_return co_await Local(504, "Gateway Timeout",
                                 "upstream " + ep.key + " did not answer in time", false);
      }
      co_return co_await Local(502, "Bad Gateway", "upstream " + ep.key + " failed " + up_error_,
                               false);
    }
    co_return co_await Local(502, "Bad Gateway", "no endpoint of pool accepted the connection",
                             retriable);
  }

  // Reads a body of known size (at most kBodyChunk) whole into `body`. Returns false when the
  // connection cannot go on (the client went away, or it was answered 413).
  awaitable<bool> ReadWholeBody(const HttpRoute& r, ReqParser::value_type& req, char* body,
                                size_t* size) {
    error_code ec;
    if (expect_continue_) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      SetDeadline(r.timeouts.idle_ms);
      co_await asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                                 BERTH_EC(ec));
      if (ec) co_return false;
      expect_continue_ = false;
    }
    size_t got = 0;
    while (!req_->is_done()) {
      if (got == kBodyChunk) co_return false;  // cannot happen: the length was checked
      req.body().data = body + got;
      req.body().size = kBodyChunk - got;
      SetDeadline(r.timeouts.idle_ms);
      if (!ParseBuffered(buf_, *req_, false, ec)) {
        co_await http::async_read_some(stream_, buf_, *req_, BERTH_EC(ec));
      }
      if (ec == http::error::need_buffer) ec = {};
      if (ec == http::error::body_limit) {
        co_await Local(413, "Payload Too Large", "body larger than the route's limit", false);
        co_return false;
      }
      if (ec) {
        status_ = 0;
        co_return false;
      }
      got = kBodyChunk - req.body().size;
    }
    bytes_in_ += got;
    *size = got;
    co_return true;
  }

  void PrepareUpstreamRequest(ReqParser::value_type& req) {
    bool upgrade = IsUpgrade(req);
    keep_client_ = req.keep_alive();
    expect_continue_ = ConsumeHopFields(req, upgrade);
    client_version_ = req.version();
    auto xff = req.find("X-Forwarded-For");
    if (xff != req.end()) {
      std::string v(xff->value());
      v += ", ";
      v += client_ip_;
      req.set("X-Forwarded-For", v);
    } else {
      req.insert("X-Forwarded-For", client_ip_);
    }
    req.set("X-Forwarded-Proto", tls_ ? "https" : "http");
    if (req.find("X-Forwarded-Host") == req.end() && !host_.empty()) {
      req.insert("X-Forwarded-Host", host_);
    }
    req.version(11);
  }

  enum class Outcome { kDone, kClosed, kRetryFresh, kFailed, kTimeout };

  // Sends the request on up_ and the response back. `body` is the exchange's body buffer;
  // `buffered` is the size of a body already read whole into it, or kNotBuffered when the
  // body (if any) streams from the client piece by piece.
  awaitable<Outcome> Forward(const HttpRoute& r, ReqParser::value_type& req, bool upgrade,
                             bool reused, char* body, size_t buffered) {
    error_code ec;

    // Request: header, then the body streamed piece by piece (the header leaves with the
    // first piece).
    if (expect_continue_) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      SetDeadline(r.timeouts.idle_ms);
      co_await asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                                 BERTH_EC(ec));
      if (ec) co_return Outcome::kClosed;
      expect_continue_ = false;
    }
    RequestHead(&head_, req);
    bool req_chunked = req.chunked();
    if (buffered != kNotBuffered || req_->is_done()) {
      // No body, or one read whole: one write. Nothing of the client's is lost if it fails.
      Pieces p = PreparePiece(body, buffered == kNotBuffered ? 0 : buffered, req_chunked, true);
      SetDeadline(r.timeouts.idle_ms);
      beast::buffers_suffix<Pieces> rest(p);
      if (!SendNow(up_->sock, rest, ec)) co_await asio::async_write(up_->sock, rest, BERTH_EC(ec));
      head_.clear();
      if (ec) {
        if (closed_) co_return Outcome::kClosed;
        up_error_ = "sending the request: " + ec.message();
        co_return reused ? Outcome::kRetryFresh : Outcome::kFailed;
      }
    } else {
      for (;;) {
        req.body().data = body;
        req.body().size = kBodyChunk;
        SetDeadline(r.timeouts.idle_ms);
        if (!ParseBuffered(buf_, *req_, false, ec)) {
          co_await http::async_read_some(stream_, buf_, *req_, BERTH_EC(ec));
        }
        if (ec == http::error::need_buffer) ec = {};
        if (ec == http::error::body_limit) {
          up_.reset();
          co_await Local(413, "Payload Too Large", "body larger than the route's limit", false);
          co_return Outcome::kClosed;
        }
        if (ec) {
          up_.reset();
          status_ = 0;
          co_return Outcome::kClosed;
        }
        size_t n = kBodyChunk - req.body().size;
        bool done = req_->is_done();
        bytes_in_ += n;
        Pieces p = PreparePiece(body, n, req_chunked, done);
        if (!Empty(p)) {
          SetDeadline(r.timeouts.idle_ms);
          beast::buffers_suffix<Pieces> rest(p);
          if (!SendNow(up_->sock, rest, ec)) {
            co_await asio::async_write(up_->sock, rest, BERTH_EC(ec));
          }
          head_.clear();
          if (ec) {
            // Part of the body is consumed from the client: this request cannot be sent again.
            if (closed_) co_return Outcome::kClosed;
            up_error_ = "sending the request: " + ec.message();
            co_return Outcome::kFailed;
          }
        }
        if (done) break;
      }
    }

    // Response header.
    res_.emplace(std::piecewise_construct, std::make_tuple(),
                 std::make_tuple(FieldAllocator(&arena_)));
    res_->header_limit(kUpstreamHeaderLimit);
    res_->body_limit(std::numeric_limits<uint64_t>::max());
    if (req.method() == http::verb::head) res_->skip(true);
    SetDeadline(r.timeouts.header_ms);
    upstream_wait_ = true;
    upstream_timed_out_ = false;
    upstream_eof_ = false;
    // The response header, read here rather than by http::async_read_header: its composed
    // operations cost more than the read itself for a header that comes in one piece. The
    // first read waits for the answer to the request just sent (a drain read: no recv before
    // the socket is readable); the rest of a header in pieces is read as any read.
    for (bool first = true; !ParseBuffered(up_->buf, *res_, true, ec); first = false) {
      size_t size = beast::read_size(up_->buf, kUpstreamHeaderLimit);
      if (size == 0) {
        ec = http::error::buffer_overflow;
        break;
      }
      auto into = up_->buf.prepare(size);
      size_t n = first ? co_await up_->sock.async_read_drain(into, BERTH_EC(ec))
                       : co_await up_->sock.async_read_some(into, BERTH_EC(ec));
      if (ec == asio::error::operation_aborted && upstream_eof_) ec = asio::error::eof;
      up_->buf.commit(n);
      if (ec == asio::error::eof) {
        // As Beast: EOF after part of a header is a partial message, before any byte the end
        // of the stream.
        if (res_->got_some()) {
          ec = {};
          res_->put_eof(ec);
        } else {
          ec = http::error::end_of_stream;
        }
        break;
      }
      if (ec) break;
    }
    upstream_wait_ = false;
    if (ec) {
      if (closed_) co_return Outcome::kClosed;
      if (upstream_timed_out_) co_return Outcome::kTimeout;
      bool nothing = !res_->got_some();
      up_error_ = "reading the response header: " + ec.message();
      co_return (reused && nothing) ? Outcome::kRetryFresh : Outcome::kFailed;
    }
    auto& res = res_->get();
    bool up_keep = res.keep_alive() && !res_->need_eof();

    if (upgrade && res.result() == http::status::switching_protocols) {
      co_return co_await Tunnel(r, res);
    }

    StripHopByHop(res, false);
    if (res_->need_eof() && !res_->is_done()) {
      // A close-delimited upstream body goes to an HTTP/1.1 client chunked so its connection
      // stays; an HTTP/1.0 client reads it to the close.
      if (client_version_ >= 11) {
        res.chunked(true);
      } else {
        keep_client_ = false;
      }
    }
    res.keep_alive(keep_client_);
    if (res.find("X-Request-Id") == res.end()) res.insert("X-Request-Id", request_id_);
    if (!set_cookie_.empty()) res.insert(http::field::set_cookie, set_cookie_);
    status_ = res.result_int();
    // No body follows the header of these, whatever the header says (RFC 9112 §6.3).
    bool bodyless =
        req.method() == http::verb::head || status_ / 100 == 1 || status_ == 204 || status_ == 304;
    bool res_chunked = res.chunked() && !bodyless;

    // Response body: streamed; the header goes out with the first piece.
    ResponseHead(&head_, res);
    for (;;) {
      size_t n = 0;
      bool done = res_->is_done();
      if (!done) {
        res.body().data = body;
        res.body().size = kBodyChunk;
        SetDeadline(r.timeouts.idle_ms);
        if (!ParseBuffered(up_->buf, *res_, false, ec)) {
          co_await http::async_read_some(up_->sock, up_->buf, *res_, BERTH_EC(ec));
        }
        if (ec == http::error::need_buffer) ec = {};
        if (ec) {
          // The upstream broke mid-body: the client cannot be told by a status any more.
          up_.reset();
          co_return Outcome::kClosed;
        }
        n = kBodyChunk - res.body().size;
        done = res_->is_done();
        bytes_out_ += n;
      }
      Pieces p = PreparePiece(body, n, res_chunked, done);
      if (!Empty(p)) {
        SetDeadline(r.timeouts.idle_ms);
        beast::buffers_suffix<Pieces> rest(p);
        if (!SendNow(stream_, rest, ec)) co_await asio::async_write(stream_, rest, BERTH_EC(ec));
        head_.clear();
        if (ec) {
          up_.reset();
          co_return Outcome::kClosed;
        }
      }
      if (done) break;
    }
    if (up_keep && up_->buf.size() == 0) {
      w_.upstreams.Put(pool_key(), std::move(up_), SteadyMs());
    }
    up_.reset();
    keep_client_ = keep_client_ && res.keep_alive();
    co_return Outcome::kDone;
  }

  const std::string& pool_key() const { return instance_key_; }

  // After 101 Switching Protocols: bytes both ways until either side closes.
  awaitable<Outcome> Tunnel(const HttpRoute& r, ResParser::value_type& res) {
    error_code ec;
    status_ = 101;
    ResponseHead(&head_, res);
    co_await asio::async_write(stream_, asio::buffer(head_), BERTH_EC(ec));
    head_.clear();
    if (ec) co_return Outcome::kClosed;
    if (up_->buf.size()) {
      co_await asio::async_write(stream_, up_->buf.data(), BERTH_EC(ec));
      if (ec) co_return Outcome::kClosed;
      up_->buf.consume(up_->buf.size());
    }
    if (buf_.size()) {
      co_await asio::async_write(up_->sock, buf_.data(), BERTH_EC(ec));
      if (ec) co_return Outcome::kClosed;
      buf_.consume(buf_.size());
    }
    int idle = r.timeouts.idle_ms;
    total_deadline_ms_ = INT64_MAX;  // streams and WebSockets are not bounded by total_ms
    SetDeadline(idle);
    auto self = std::static_pointer_cast<HttpSession>(shared_from_this());
    auto done = std::make_shared<Timer>(w_.io, SteadyTime::max());
    auto finished = std::make_shared<bool>(false);
    asio::co_spawn(
        w_.io,
        [](std::shared_ptr<HttpSession> s, std::shared_ptr<Timer> done,
           std::shared_ptr<bool> finished, int idle) -> awaitable<void> {
          co_await CopyStream(s->stream_, s->up_->sock, s, [s = s.get(), idle](size_t n) {
            s->bytes_in_ += n;
            s->SetDeadline(idle);
          });
          *finished = true;
          s->CloseAll();
          done->cancel();
        }(self, done, finished, idle),
        asio::detached);
    co_await CopyStream(up_->sock, stream_, self, [this, idle](size_t n) {
      bytes_out_ += n;
      SetDeadline(idle);
    });
    CloseAll();
    if (!*finished) co_await done->async_wait(BERTH_EC(ec));
    up_.reset();
    co_return Outcome::kClosed;
  }

  void Log() {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::steady_clock::now() - start_)
                  .count();
    RouteMetrics& m = route_ ? *route_->metrics : dp_.metrics().unmatched();
    m.Record(w_.index, status_, bytes_in_, bytes_out_, static_cast<uint64_t>(us));
    detail::AccessLog* log = dp_.access_log();
    if (!log) return;
    std::string& l = log_line_;
    l.clear();
    l += "{\"time\":\"";
    int64_t now_ms = UnixMillis(std::chrono::system_clock::now());
    int64_t second = now_ms >= 0 ? now_ms / 1000 : (now_ms - 999) / 1000;
    if (second != w_.log_second) {
      w_.log_second = second;
      w_.log_time_prefix = FormatTime(FromUnixMillis(second * 1000)).substr(0, 19);
    }
    l += w_.log_time_prefix;
    AppendMillis(&l, static_cast<uint64_t>(now_ms - second * 1000));
    l += 'Z';
    l += "\",\"route\":\"";
    detail::AppendJsonEscaped(&l, m.route);
    l += "\",\"team\":\"";
    detail::AppendJsonEscaped(&l, m.team);
    l += "\",\"app\":\"";
    detail::AppendJsonEscaped(&l, m.app);
    l += "\",\"component\":\"";
    detail::AppendJsonEscaped(&l, m.component);
    l += "\",\"instance\":\"";
    if (instance_) detail::AppendJsonEscaped(&l, instance_->instance);
    l += "\",\"client\":\"";
    l += client_ip_;
    l += "\",\"method\":\"";
    detail::AppendJsonEscaped(&l, req_->get().method_string());
    l += "\",\"host\":\"";
    detail::AppendJsonEscaped(&l, host_);
    l += "\",\"path\":\"";
    detail::AppendJsonEscaped(&l, req_->get().target().substr(0, 2048));
    l += "\",\"status\":";
    AppendNumber(&l, static_cast<uint64_t>(status_));
    l += ",\"bytes_in\":";
    AppendNumber(&l, bytes_in_);
    l += ",\"bytes_out\":";
    AppendNumber(&l, bytes_out_);
    l += ",\"duration_ms\":";
    AppendNumber(&l, static_cast<uint64_t>(us) / 1000);
    AppendMillis(&l, static_cast<uint64_t>(us) % 1000);  // microseconds as ms with 3 decimals
    l += ",\"tls\":";
    l += tls_ ? "true" : "false";
    l += ",\"request_id\":\"";
    detail::AppendJsonEscaped(&l, request_id_);
    l += "\"}\n";
    log->Append(w_.index, l);
  }

  Stream stream_;
  bool tls_;
  beast::flat_buffer buf_;
  FieldArena arena_;  // before the parsers: they free into it when destroyed
  std::optional<ReqParser> req_;
  std::optional<ResParser> res_;
  std::shared_ptr<const State> state_;
  uint64_t state_gen_ = 0;
  std::string client_ip_, host_, request_id_, set_cookie_, log_line_, up_error_;
  std::string head_, tail_;  // a message header being sent, chunk framing (PreparePiece)
  std::string instance_key_;
  const Endpoint* instance_ = nullptr;
  RouteRt* route_ = nullptr;
  bool keep_client_ = true;
  unsigned client_version_ = 11;  // of the request (the upstream request is always 1.1)
  bool expect_continue_ = false;
  bool linger_ = false;
  int status_ = 0;
  uint64_t bytes_in_ = 0, bytes_out_ = 0;
  std::chrono::steady_clock::time_point start_;
};

// A TCP route connection: balanced like HTTP, then bytes both ways with half-close.
class TcpSession final : public ConnBase {
 public:
  TcpSession(Worker& w, Socket s, int port) : ConnBase(w), client_(std::move(s)), port_(port) {}
  static awaitable<void> Run(std::shared_ptr<TcpSession> self) { co_await self->Serve(); }

 private:
  void CloseClient() override {
    error_code ec;
    client_.close(ec);
  }
  bool ClientClosed() override { return false; }  // a tunnel ends with its EOF

  awaitable<void> Serve() {
    auto start = std::chrono::steady_clock::now();
    std::shared_ptr<const State> st = dp_.state();
    auto it = st->tcp.find(port_);
    if (it == st->tcp.end()) co_return CloseClient();
    const TcpRt& t = it->second;
    error_code ec;
    client_.set_option(tcp::no_delay(true), ec);
    std::string ip = client_.remote_endpoint(ec).address().to_string();
    uint64_t hash = detail::HashBytes(ip);
    StartWatchdog();
    std::vector<int> tried;
    PoolRt& pool = *t.pool;
    EndpointHealth* health = nullptr;
    for (int attempt = 0; attempt <= kMaxAttempts; ++attempt) {
      int ei = pool.balancer->Pick(t.route->balance, hash, SteadyMs(), tried);
      if (ei < 0) break;
      up_ = std::make_unique<UpConn>(w_.io);
      SetDeadline(t.route->connect_timeout_ms);
      // A connect timeout fails this endpoint only (the watchdog closes the upstream socket):
      // the client stays and the next endpoint is tried.
      upstream_wait_ = true;
      ec = OpenUpstreamSocket(up_->sock, pool.eps[ei]);
      if (!ec) co_await up_->sock.async_connect(pool.eps[ei].addr, BERTH_EC(ec));
      upstream_wait_ = false;
      if (closed_) break;
      if (ec) {
        pool.balancer->health(ei).OnConnectFailure(SteadyMs());
        t.metrics->UpstreamError(w_.index);
        tried.push_back(ei);
        up_.reset();
        continue;
      }
      health = &pool.balancer->health(ei);
      health->OnConnectSuccess();
      break;
    }
    if (!up_ || closed_) {
      t.metrics->Record(w_.index, 502, 0, 0, 0);
      StopWatchdog();
      CloseAll();
      co_return;
    }
    up_->sock.set_option(tcp::no_delay(true), ec);
    // Idle timeout: every chunk either way moves the deadline; when it passes the watchdog
    // closes both sockets, which ends both copies.
    idle_ms_ = t.route->idle_timeout_ms;
    SetDeadline(idle_ms_);
    health->active.fetch_add(1, std::memory_order_relaxed);
    auto self = std::static_pointer_cast<TcpSession>(shared_from_this());
    auto done = std::make_shared<Timer>(w_.io, SteadyTime::max());
    auto finished = std::make_shared<bool>(false);
    asio::co_spawn(
        w_.io,
        [](std::shared_ptr<TcpSession> s, std::shared_ptr<Timer> done,
           std::shared_ptr<bool> finished) -> awaitable<void> {
          co_await CopyStream(s->client_, s->up_->sock, s, [s = s.get()](size_t n) {
            s->in_ += n;
            s->SetDeadline(s->idle_ms_);
          });
          error_code ec;
          if (s->up_) s->up_->sock.shutdown(Socket::shutdown_send, ec);
          *finished = true;
          done->cancel();
        }(self, done, finished),
        asio::detached);
    co_await CopyStream(up_->sock, client_, self, [this](size_t n) {
      out_ += n;
      SetDeadline(idle_ms_);
    });
    client_.shutdown(Socket::shutdown_send, ec);
    if (!*finished) co_await done->async_wait(BERTH_EC(ec));
    health->active.fetch_sub(1, std::memory_order_relaxed);
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
    t.metrics->Record(w_.index, 200, in_, out_, static_cast<uint64_t>(us));
    StopWatchdog();
    CloseAll();
  }

  Socket client_;
  int port_;
  int idle_ms_ = 0;  // the route's idle timeout, once connected
  uint64_t in_ = 0, out_ = 0;
};

awaitable<void> AdminSession(Impl& dp, Socket s) {
  beast::flat_buffer b;
  for (;;) {
    http::request_parser<http::string_body> p;
    p.header_limit(8192);
    p.body_limit(65536);
    error_code ec;
    co_await http::async_read(s, b, p, BERTH_EC(ec));
    if (ec) break;
    auto& req = p.get();
    http::response<http::string_body> res{http::status::ok, 11};
    res.set(http::field::server, "berth");
    std::string_view target = req.target();
    if (target == "/metrics") {
      res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      res.body() = dp.metrics().Render();
    } else if (target == "/healthz") {
      res.set(http::field::content_type, "application/json");
      // The TCP routes whose port does not listen (DataPlane::TcpListeners), for whoever
      // watches the gateway from outside.
      std::string failed;
      for (const TcpListenerStatus& t : dp.TcpListeners()) {
        if (t.listening) continue;
        failed += failed.empty() ? "{\"route\":\"" : ",{\"route\":\"";
        detail::AppendJsonEscaped(&failed, t.route_id);
        failed += "\",\"address\":\"" + t.address + "\",\"error\":\"";
        detail::AppendJsonEscaped(&failed, t.error);
        failed += "\"}";
      }
      res.body() = "{\"status\":\"ok\",\"revision\":" + std::to_string(dp.revision()) +
                   ",\"tcp_failed\":[" + failed + "]}\n";
    } else {
      res.result(http::status::not_found);
      res.set(http::field::content_type, "text/plain");
      res.body() = "not found: the admin port serves /metrics and /healthz\n";
    }
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    co_await http::async_write(s, res, BERTH_EC(ec));
    if (ec || !req.keep_alive()) break;
  }
  error_code ec;
  s.shutdown(Socket::shutdown_send, ec);
}

// Out of descriptors (EMFILE/ENFILE) on an accept: the waiting connections are taken with the
// loop's spare descriptor and closed at once (core/fd_limit.h) — clients see a close, not a
// hang — and the process logs it once per episode. True when some were closed (accept again at
// once); false when the loop should back off.
std::atomic<bool> g_out_of_fds{false};

bool OnAcceptError(const error_code& ec, Acceptor& acc, SpareFd& spare) {
  if (ec != asio::error::no_descriptors && ec.value() != ENFILE) return false;
  if (!g_out_of_fds.exchange(true)) {
    Logger("gateway")->warn("msg=\"out of file descriptors: new connections are closed at once "
                            "until some are free\" error=\"{}\"", ec.message());
  }
  error_code nb;
  acc.native_non_blocking(true, nb);
  return spare.AcceptAndClose(acc.native_handle()) > 0;
}

void OnAccepted() {
  if (g_out_of_fds.load(std::memory_order_relaxed) && g_out_of_fds.exchange(false)) {
    Logger("gateway")->info("msg=\"descriptors are available again: accepting connections\"");
  }
}

awaitable<void> AcceptLoop(Worker& w, std::shared_ptr<Acceptor> acc, int kind) {
  Impl& dp = w.dp;
  Timer backoff(w.io);
  SpareFd spare;
  error_code pec;
  const tcp protocol = acc->local_endpoint(pec).protocol();
  for (;;) {
    error_code ec;
    Socket s(w.io);
    co_await AcceptCloexec(*acc, protocol, s, ec);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acc->is_open()) break;
      if (OnAcceptError(ec, *acc, spare)) continue;
      // Any other failure, or nothing to close: back off instead of spinning.
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(BERTH_EC(ec));
      continue;
    }
    OnAccepted();
    if (kind == kAdmin) {
      asio::co_spawn(w.io, AdminSession(dp, std::move(s)), asio::detached);
      continue;
    }
    if (dp.connections().load(std::memory_order_relaxed) >= dp.opts().max_connections) {
      s.close(ec);
      continue;
    }
    s.set_option(tcp::no_delay(true), ec);
    if (kind == kHttp) {
      auto session = std::make_shared<HttpSession<Socket>>(w, std::move(s), false);
      asio::co_spawn(w.io, HttpSession<Socket>::Run(std::move(session)), asio::detached);
    } else {
      using TlsStream = ssl::stream<Socket>;
      auto session =
          std::make_shared<HttpSession<TlsStream>>(w, TlsStream(std::move(s), dp.base_tls()), true);
      asio::co_spawn(w.io, HttpSession<TlsStream>::Run(std::move(session)), asio::detached);
    }
  }
}

awaitable<void> TcpAcceptLoop(std::vector<Worker*> workers, std::shared_ptr<Acceptor> acc,
                              int port) {
  Impl& dp = workers[0]->dp;
  size_t next = 0;
  Timer backoff(workers[0]->io);
  SpareFd spare;
  error_code pec;
  const tcp protocol = acc->local_endpoint(pec).protocol();
  for (;;) {
    // Connections are spread over the workers; each runs on the worker it was given to.
    Worker& w = *workers[next++ % workers.size()];
    error_code ec;
    Socket s(w.io);
    co_await AcceptCloexec(*acc, protocol, s, ec);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acc->is_open()) break;
      if (OnAcceptError(ec, *acc, spare)) continue;
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(BERTH_EC(ec));
      continue;
    }
    OnAccepted();
    if (dp.connections().load(std::memory_order_relaxed) >= dp.opts().max_connections) {
      s.close(ec);
      continue;
    }
    // The session is made on its worker: ConnBase updates the worker's metrics slot with plain
    // stores, which only that worker's thread may do.
    asio::post(w.io, [&w, s = std::move(s), port]() mutable {
      auto session = std::make_shared<TcpSession>(w, std::move(s), port);
      asio::co_spawn(w.io, TcpSession::Run(std::move(session)), asio::detached);
    });
  }
}

// Retries the TCP route ports that could not be bound, once a second, until the plane stops.
awaitable<void> RetryListenersLoop(Impl& dp, Worker& w) {
  Timer t(w.io);
  while (!dp.stopping()) {
    t.expires_after(std::chrono::seconds(1));
    error_code ec;
    co_await t.async_wait(BERTH_EC(ec));
    if (ec || dp.stopping()) break;
    dp.RetryTcpListeners();
  }
}

// ---------------------------------------------------------------------------------------------
// Impl.

int Impl::ServerName(SSL* ssl, int* alert, void* arg) {
  auto* self = static_cast<Impl*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  std::shared_ptr<const State> st = self->state();
  SSL_CTX* ctx = SelectContext(*st, name ? name : "");
  if (!ctx) {
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  SSL_set_SSL_CTX(ssl, ctx);  // takes a reference: the context outlives a swap mid-handshake
  return SSL_TLSEXT_ERR_OK;
}

Status Impl::Init() {
  int n = std::max(1, opts_.io_threads);
  for (int i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>(*this, i));
  if (!opts_.access_log.empty()) {
    BERTH_ASSIGN_OR_RETURN(access_log_, detail::AccessLog::Open(opts_.access_log, n));
  }
  BERTH_RETURN_IF_ERROR(ConfigureTls(base_tls_));
  SSL_CTX_set_tlsext_servername_callback(base_tls_.native_handle(), &Impl::ServerName);
  SSL_CTX_set_tlsext_servername_arg(base_tls_.native_handle(), this);

  auto listen_all = [&](const std::string& addr, const char* what, int kind,
                        std::string* bound) -> Status {
    if (addr.empty()) return Status::Ok();
    BERTH_ASSIGN_OR_RETURN(tcp::endpoint ep, ParseAddress(addr, what));
    if (ep.port() != 0) {
      // SO_REUSEPORT would let this gateway silently share a port with another process that
      // also set it; a plain bind first proves the port is free.
      BERTH_ASSIGN_OR_RETURN(auto probe, Listen(workers_[0]->io, ep, /*reuse_port=*/false, what));
      error_code ec;
      probe->close(ec);
    }
    for (auto& w : workers_) {
      BERTH_ASSIGN_OR_RETURN(auto acc, Listen(w->io, ep, /*reuse_port=*/true, what));
      if (ep.port() == 0) {
        error_code ec;
        ep = acc->local_endpoint(ec);  // the other workers share the port the kernel chose
      }
      (kind == kHttp ? w->http_acc : w->https_acc) = acc;
    }
    *bound = FormatEndpoint(ep);
    return Status::Ok();
  };
  BERTH_RETURN_IF_ERROR(listen_all(opts_.http, "http", kHttp, &http_addr_));
  BERTH_RETURN_IF_ERROR(listen_all(opts_.https, "https", kHttps, &https_addr_));
  if (!https_addr_.empty()) https_port_ = std::stoi(https_addr_.substr(https_addr_.rfind(':') + 1));
  if (!opts_.admin.empty()) {
    BERTH_ASSIGN_OR_RETURN(tcp::endpoint ep, ParseAddress(opts_.admin, "admin"));
    BERTH_ASSIGN_OR_RETURN(admin_acc_, Listen(workers_[0]->io, ep, false, "admin"));
    error_code ec;
    admin_addr_ = FormatEndpoint(admin_acc_->local_endpoint(ec));
  }
  BERTH_ASSIGN_OR_RETURN(auto empty, Compile(Snapshot{}));
  state_ = std::move(empty);
  generation_.store(1);

  for (auto& w : workers_) {
    if (w->http_acc) asio::co_spawn(w->io, AcceptLoop(*w, w->http_acc, kHttp), asio::detached);
    if (w->https_acc) asio::co_spawn(w->io, AcceptLoop(*w, w->https_acc, kHttps), asio::detached);
  }
  if (admin_acc_) {
    asio::co_spawn(workers_[0]->io, AcceptLoop(*workers_[0], admin_acc_, kAdmin), asio::detached);
  }
  asio::co_spawn(workers_[0]->io, RetryListenersLoop(*this, *workers_[0]), asio::detached);
  std::vector<int> cpus = detail::PinPlan(opts_.pin_io_threads, detail::AllowedCpus(),
                                          static_cast<int>(workers_.size()));
  for (auto& w : workers_) {
    Worker* wp = w.get();
    wp->thread = std::thread([wp] {
      auto guard = asio::make_work_guard(wp->io);
      wp->io.run();
    });
    if (!cpus.empty()) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpus[static_cast<size_t>(wp->index)], &one);
      // Best effort: a refused pin leaves the thread where the scheduler puts it.
      if (pthread_setaffinity_np(wp->thread.native_handle(), sizeof one, &one) == 0) {
        io_cpus_.push_back(cpus[static_cast<size_t>(wp->index)]);
      }
    }
  }
  return Status::Ok();
}

Result<std::shared_ptr<State>> Impl::Compile(const Snapshot& snap) {
  auto st = std::make_shared<State>();
  st->snap = snap;
  const Snapshot& s = st->snap;
  st->table = RouteTable(s.http_routes);
  {
    std::lock_guard<std::mutex> l(health_mu_);
    for (auto it = health_.begin(); it != health_.end();) {
      it = it->second.expired() ? health_.erase(it) : std::next(it);
    }
    for (auto it = netns_.begin(); it != netns_.end();) {
      // A namespace that could not be opened is tried again at the next snapshot.
      auto held = it->second.lock();
      it = !held || held->fd < 0 ? netns_.erase(it) : std::next(it);
    }
    for (const auto& [key, pool] : s.pools) {
      PoolRt& pr = st->pools[key];
      pr.pool = &pool;
      std::vector<std::shared_ptr<EndpointHealth>> hs;
      std::vector<uint64_t> keys;
      for (size_t i = 0; i < pool.endpoints.size(); ++i) {
        const Endpoint& e = pool.endpoints[i];
        error_code ec;
        auto ip = asio::ip::make_address(e.host, ec);
        if (ec) {
          return InvalidArgument("pool \"" + key + "\" endpoint host is not an IP address",
                                 "pools." + key + ".endpoints[" + std::to_string(i) + "].host");
        }
        EpRt ep{tcp::endpoint(ip, static_cast<unsigned short>(e.port)), "", &e, nullptr};
        ep.key = FormatEndpoint(ep.addr);
        if (!e.netns.empty()) {
          ep.key = e.netns + "|" + ep.key;
          auto& weak = netns_[e.netns];
          ep.netns = weak.lock();
          if (!ep.netns) {
            auto fd = OpenNetns(e.netns);
            ep.netns = std::make_shared<NetnsFd>(fd.ok() ? *fd : -1);
            weak = ep.netns;
          }
        }
        auto& weak = health_[ep.key];
        auto h = weak.lock();
        if (!h) {
          h = std::make_shared<EndpointHealth>();
          weak = h;
        }
        hs.push_back(h);
        keys.push_back(detail::HashBytes(ep.key));
        pr.eps.push_back(std::move(ep));
      }
      pr.balancer = std::make_unique<PoolBalancer>(std::move(hs), std::move(keys));
    }
  }
  for (const auto& r : s.http_routes) {
    auto rt = std::make_unique<RouteRt>();
    rt->route = &r;
    for (const auto& b : r.backends) {
      PoolRt* p = &st->pools.at(b.pool);
      rt->pools.push_back(p);
      rt->weights.push_back(p->eps.empty() ? 0 : b.weight);
      if (p->eps.empty() && rt->reason.empty() && b.weight > 0) rt->reason = p->pool->reason;
    }
    if (rt->reason.empty()) rt->reason = "no ready instance";
    rt->metrics = metrics_.ForRoute("http", r.id, r.team, r.app, r.component);
    if (r.rate_limit.requests_per_second > 0) {
      rt->limiter = std::make_unique<detail::RateLimiter>(r.rate_limit.requests_per_second,
                                                          r.rate_limit.burst);
    }
    rt->max_body = r.max_body_bytes > 0 ? r.max_body_bytes : opts_.default_max_body_bytes;
    st->routes.push_back(std::move(rt));
  }
  for (const auto& t : s.tcp_routes) {
    TcpRt& tr = st->tcp[t.listen_port];
    tr.route = &t;
    tr.pool = &st->pools.at(t.pool);
    tr.metrics = metrics_.ForRoute("tcp", t.id, t.team, t.app, t.component);
  }
  std::map<std::string, SSL_CTX*> by_name;
  for (size_t i = 0; i < s.certificates.size(); ++i) {
    const Certificate& c = s.certificates[i];
    BERTH_ASSIGN_OR_RETURN(auto ctx, LoadCertificate(c, i));
    st->contexts.push_back(ctx);
    SSL_CTX* native = ctx->native_handle();
    by_name[c.name] = native;
    if (!st->sni_default) st->sni_default = native;
    for (const auto& d : c.domains) {
      if (d.rfind("*.", 0) == 0) {
        st->sni_wildcard.emplace(d.substr(1), native);
      } else {
        st->sni_exact.emplace(d, native);
      }
    }
  }
  // A route naming a certificate serves it for the route's domains, whatever the
  // certificate's own list says.
  for (const auto& r : s.http_routes) {
    if (r.certificate.empty()) continue;
    SSL_CTX* native = by_name.at(r.certificate);
    for (const auto& d : r.domains) {
      if (d.rfind("*.", 0) == 0) {
        st->sni_wildcard[d.substr(1)] = native;
      } else {
        st->sni_exact[d] = native;
      }
    }
  }
  return st;
}

// The bind error of a TCP route's listener, without the address twice.
std::string BindError(const tcp::endpoint& ep, const Status& s) {
  std::string m = s.message();
  std::string head = "cannot listen on " + FormatEndpoint(ep) + " (tcp): ";
  if (m.rfind(head, 0) == 0) m = m.substr(head.size());
  return "cannot listen on " + FormatEndpoint(ep) + ": " + m;
}

Status Impl::Apply(const Snapshot& snap) {
  std::lock_guard<std::mutex> l(apply_mu_);
  if (stopped_.load()) return Unavailable("the gateway data plane is stopped");
  BERTH_ASSIGN_OR_RETURN(auto st, Compile(snap));

  // TCP listeners: bind the new ones before the swap, so a route comes with its listener. A
  // port that cannot be bound (another process holds it) is not a reason to refuse the whole
  // snapshot: that one route is reported failed and retried, every other route is served.
  std::map<int, std::shared_ptr<Acceptor>> opened;
  std::map<int, TcpWant> wanted;
  for (const TcpRoute& t : snap.tcp_routes) {
    error_code ec;
    auto ip = asio::ip::make_address(t.listen_host, ec);
    tcp::endpoint ep(ip, static_cast<unsigned short>(t.listen_port));
    TcpWant& w = wanted[t.listen_port];
    w.route_id = t.id;
    w.ep = ep;
    auto it = tcp_listeners_.find(t.listen_port);
    if (it != tcp_listeners_.end() && it->second->local_endpoint(ec) == ep) continue;
    auto acc = Listen(workers_[0]->io, ep, false, "tcp");
    if (!acc.ok()) {
      w.error = BindError(ep, acc.status());
      continue;
    }
    opened[t.listen_port] = *acc;
  }
  metrics_.revision.store(snap.revision);
  {
    std::lock_guard<std::mutex> sl(state_mu_);
    state_ = st;
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);

  for (auto it = tcp_listeners_.begin(); it != tcp_listeners_.end();) {
    auto w = wanted.find(it->first);
    if (w != wanted.end() && w->second.error.empty() && !opened.count(it->first)) {
      ++it;
      continue;
    }
    auto acc = it->second;
    asio::post(acc->get_executor(), [acc] {
      error_code ec;
      acc->close(ec);
    });
    it = tcp_listeners_.erase(it);
  }
  for (auto& [port, acc] : opened) StartTcpListener(port, acc);
  tcp_wanted_ = std::move(wanted);
  PublishTcpStatus();
  return Status::Ok();
}

void Impl::StartTcpListener(int port, std::shared_ptr<Acceptor> acc) {
  std::vector<Worker*> ws;
  for (auto& w : workers_) ws.push_back(w.get());
  tcp_listeners_[port] = acc;
  asio::co_spawn(workers_[0]->io, TcpAcceptLoop(ws, std::move(acc), port), asio::detached);
}

void Impl::PublishTcpStatus() {
  std::vector<TcpListenerStatus> out;
  for (const auto& [port, w] : tcp_wanted_) {
    out.push_back(TcpListenerStatus{w.route_id, FormatEndpoint(w.ep), w.error.empty(), w.error});
  }
  std::lock_guard<std::mutex> l(tcp_status_mu_);
  tcp_status_ = std::move(out);
}

void Impl::RetryTcpListeners() {
  // try_lock: Stop holds apply_mu_ while it joins this thread; a busy Apply is retried later.
  std::unique_lock<std::mutex> l(apply_mu_, std::try_to_lock);
  if (!l.owns_lock() || stopped_.load()) return;
  bool changed = false;
  for (auto& [port, w] : tcp_wanted_) {
    if (w.error.empty()) continue;
    auto acc = Listen(workers_[0]->io, w.ep, false, "tcp");
    if (!acc.ok()) {
      std::string e = BindError(w.ep, acc.status());
      changed |= e != w.error;
      w.error = std::move(e);
      continue;
    }
    w.error.clear();
    changed = true;
    StartTcpListener(port, *acc);
  }
  if (changed) PublishTcpStatus();
}


void Impl::Stop(int drain_ms) {
  std::lock_guard<std::mutex> l(apply_mu_);
  if (stopped_.exchange(true)) return;
  stopping_.store(true);
  auto close = [](std::shared_ptr<Acceptor> acc) {
    if (!acc) return;
    asio::post(acc->get_executor(), [acc] {
      error_code ec;
      acc->close(ec);
    });
  };
  for (auto& w : workers_) {
    close(w->http_acc);
    close(w->https_acc);
  }
  close(admin_acc_);
  for (auto& [_, acc] : tcp_listeners_) close(acc);
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(drain_ms);
  while (connections_.load() > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (auto& w : workers_) w->io.stop();
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
  tcp_listeners_.clear();
  admin_acc_.reset();
  workers_.clear();  // destroys every pending exchange with its io_context
  access_log_.reset();
}

}  // namespace

int ProxiedRequestForTest(std::string_view raw, std::string* upstream_head) {
  upstream_head->clear();
  FieldArena arena;  // no block attached: every field from the heap
  http::request_parser<http::buffer_body, FieldAllocator> p(
      std::piecewise_construct, std::make_tuple(), std::make_tuple(FieldAllocator(&arena)));
  p.header_limit(static_cast<uint32_t>(Options().max_header_bytes));
  p.body_limit(std::numeric_limits<uint64_t>::max());
  error_code ec;
  p.put(asio::buffer(raw.data(), raw.size()), ec);
  if (ec == http::error::need_more) return -1;
  if (ec == http::error::header_limit) return 431;
  if (ec) return 400;
  std::string host;
  Refusal no = CheckRequest(p, &host);
  if (no.status != 0) return no.status;
  auto& req = p.get();
  ConsumeHopFields(req, IsUpgrade(req));
  req.version(11);
  RequestHead(upstream_head, req);
  return 0;
}

Result<std::unique_ptr<DataPlane>> DataPlane::Start(const Options& options) {
  if (options.io_threads < 1 || options.io_threads > 256) {
    return InvalidArgument("io_threads must be between 1 and 256", "io_threads");
  }
  if (options.max_header_bytes < 1024 || options.max_header_bytes > (1 << 20)) {
    return InvalidArgument("max_header_bytes must be between 1 KiB and 1 MiB", "max_header_bytes");
  }
  if (options.client_header_timeout_ms < 1 || options.client_idle_timeout_ms < 1) {
    return InvalidArgument("client timeouts must be positive", "client_header_timeout_ms");
  }
  auto dp = std::make_unique<Impl>(options);
  Status s = dp->Init();
  if (!s.ok()) {
    dp->Stop(0);
    return s;
  }
  return std::unique_ptr<DataPlane>(std::move(dp));
}

}  // namespace berth::gateway
