#include "egress/egress.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>  // first: Boost 1.74's asio/awaitable.hpp uses std::exchange without it

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/buffers_iterator.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/log.h"
#include "core/netns.h"

namespace berth::egress {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxHead = 16 << 10;

auto Checked(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "host:port" or "[v6]:port" (port required when `need_port`).
Status SplitHostPort(const std::string& in, int default_port, std::string* host, int* port) {
  std::string h = in, p;
  if (!h.empty() && h[0] == '[') {
    size_t close = h.find(']');
    if (close == std::string::npos) return InvalidArgument("bad host " + in);
    p = close + 1 < h.size() && h[close + 1] == ':' ? h.substr(close + 2) : "";
    h = h.substr(1, close - 1);
  } else if (size_t colon = h.rfind(':'); colon != std::string::npos) {
    p = h.substr(colon + 1);
    h = h.substr(0, colon);
  }
  if (h.empty() || h.size() > 253) return InvalidArgument("bad host " + in);
  for (char c : h) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '_')) {
      return InvalidArgument("bad host " + in);
    }
  }
  if (p.empty()) {
    if (default_port <= 0) return InvalidArgument("a port is needed in " + in);
    *port = default_port;
  } else {
    if (p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) {
      return InvalidArgument("bad port in " + in);
    }
    *port = std::atoi(p.c_str());
    if (*port < 1 || *port > 65535) return InvalidArgument("bad port in " + in);
  }
  *host = h;
  return Status::Ok();
}

struct Cidr {
  asio::ip::address net;
  int bits = 0;
};

Result<Cidr> ParseCidr(const std::string& text) {
  size_t slash = text.find('/');
  error_code ec;
  Cidr c;
  c.net = asio::ip::make_address(text.substr(0, slash), ec);
  if (ec) return InvalidArgument("not an address: " + text, "egress_deny");
  int max = c.net.is_v4() ? 32 : 128;
  c.bits = slash == std::string::npos ? max : std::atoi(text.c_str() + slash + 1);
  if (c.bits < 0 || c.bits > max) return InvalidArgument("bad prefix length: " + text, "egress_deny");
  return c;
}

bool Contains(const Cidr& c, const asio::ip::address& a) {
  if (c.net.is_v4() != a.is_v4()) return false;
  auto match = [&](const unsigned char* x, const unsigned char* y) {
    int bits = c.bits;
    for (int i = 0; bits > 0; ++i, bits -= 8) {
      unsigned char mask = bits >= 8 ? 0xff : static_cast<unsigned char>(0xff << (8 - bits));
      if ((x[i] & mask) != (y[i] & mask)) return false;
    }
    return true;
  };
  if (a.is_v4()) {
    auto x = c.net.to_v4().to_bytes(), y = a.to_v4().to_bytes();
    return match(x.data(), y.data());
  }
  auto x = c.net.to_v6().to_bytes(), y = a.to_v6().to_bytes();
  return match(x.data(), y.data());
}

// The machine's own addresses (refused: the platform's listeners live there), read again at
// most every 30 s.
class LocalAddresses {
 public:
  bool Has(const asio::ip::address& a) {
    std::lock_guard<std::mutex> l(mu_);
    if (Clock::now() - read_ > std::chrono::seconds(30)) Read();
    return addrs_.count(a.to_string()) > 0;
  }

 private:
  void Read() {
    addrs_.clear();
    read_ = Clock::now();
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return;
    for (ifaddrs* i = list; i; i = i->ifa_next) {
      if (!i->ifa_addr) continue;
      char buf[INET6_ADDRSTRLEN] = {0};
      if (i->ifa_addr->sa_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
      } else if (i->ifa_addr->sa_family == AF_INET6) {
        ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, buf, sizeof buf);
      } else {
        continue;
      }
      error_code ec;
      auto a = asio::ip::make_address(buf, ec);
      if (!ec) addrs_.insert(a.to_string());
    }
    ::freeifaddrs(list);
  }
  std::mutex mu_;
  std::set<std::string> addrs_;  // guarded by mu_
  Clock::time_point read_{};     // guarded by mu_
};

// Closes the sockets when nothing moved for `idle` (checked once a second).
struct Watchdog {
  Watchdog(asio::any_io_executor ex, std::chrono::milliseconds idle) : timer(ex), idle(idle) {}
  asio::steady_timer timer;
  std::chrono::milliseconds idle;
  Clock::time_point last = Clock::now();
  bool done = false;
  void Touch() { last = Clock::now(); }
};

}  // namespace

std::vector<std::string> ProxyEnv() {
  std::string url = std::string("http://") + kAddress + ":" + std::to_string(kPort);
  std::string none = "localhost,127.0.0.1,::1,.localhost";
  return {"HTTP_PROXY=" + url, "HTTPS_PROXY=" + url, "http_proxy=" + url, "https_proxy=" + url,
          "NO_PROXY=" + none, "no_proxy=" + none};
}

Result<bool> InCidr(const std::string& ip, const std::string& cidr) {
  BERTH_ASSIGN_OR_RETURN(Cidr c, ParseCidr(cidr));
  error_code ec;
  auto a = asio::ip::make_address(ip, ec);
  if (ec) return InvalidArgument("not an address: " + ip);
  return Contains(c, a);
}

Result<Request> ParseRequest(const std::string& head) {
  size_t eol = head.find("\r\n");
  if (eol == std::string::npos) return InvalidArgument("no request line");
  std::string line = head.substr(0, eol);
  size_t s1 = line.find(' '), s2 = line.rfind(' ');
  if (s1 == std::string::npos || s2 == s1) return InvalidArgument("bad request line");
  Request r;
  r.method = line.substr(0, s1);
  std::string target = line.substr(s1 + 1, s2 - s1 - 1);
  std::string version = line.substr(s2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return InvalidArgument("not HTTP/1.x");
  for (char c : r.method) {
    if (!std::isupper(static_cast<unsigned char>(c))) return InvalidArgument("bad method");
  }
  if (r.method == "CONNECT") {
    BERTH_RETURN_IF_ERROR(SplitHostPort(target, 0, &r.host, &r.port));
  } else {
    if (Lower(target.substr(0, 7)) != "http://") {
      return InvalidArgument("a proxy request names an http:// URL (https goes through CONNECT)");
    }
    std::string rest = target.substr(7);
    size_t path = rest.find_first_of("/?");
    std::string authority = rest.substr(0, path);
    if (authority.find('@') != std::string::npos) return InvalidArgument("credentials in the URL");
    BERTH_RETURN_IF_ERROR(SplitHostPort(authority, 80, &r.host, &r.port));
    r.origin_form = path == std::string::npos ? "/" : rest.substr(path);
    if (r.origin_form[0] == '?') r.origin_form = "/" + r.origin_form;
  }
  // Header lines: sent on for plain requests, except hop-by-hop and proxy ones.
  size_t pos = eol + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string::npos || end == pos) break;
    std::string h = head.substr(pos, end - pos);
    pos = end + 2;
    size_t colon = h.find(':');
    if (colon == std::string::npos || colon == 0) return InvalidArgument("bad header line");
    std::string name = Lower(h.substr(0, colon));
    if (name.find_first_of(" \t") != std::string::npos) return InvalidArgument("bad header name");
    if (name.rfind("proxy-", 0) == 0 || name == "connection" || name == "keep-alive" ||
        name == "te" || name == "upgrade") {
      continue;
    }
    r.headers += h + "\r\n";
  }
  return r;
}

struct Proxy::Impl : std::enable_shared_from_this<Impl> {
  Options opt;
  std::vector<Cidr> deny;
  std::vector<Cidr> allow;
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
  std::thread thread;
  LocalAddresses local;
  std::shared_ptr<spdlog::logger> log = Logger("egress");

  struct Listener {
    std::string team;
    std::shared_ptr<tcp::acceptor> acceptor;
    std::shared_ptr<std::atomic<int>> active = std::make_shared<std::atomic<int>>(0);
  };
  std::mutex mu;
  std::map<std::string, Listener> listeners;  // guarded by mu
  bool stopped = false;                        // guarded by mu

  bool Refuses(const asio::ip::address& a) {
    for (const Cidr& c : allow) {
      if (Contains(c, a)) return false;
    }
    if (a.is_loopback() || a.is_unspecified() || a.is_multicast()) return true;
    if (a.is_v4()) {
      auto b = a.to_v4().to_bytes();
      if (b[0] == 169 && b[1] == 254) return true;  // link-local: cloud metadata services
      if (b[0] == 0 || b[0] >= 224) return true;
    } else {
      auto v6 = a.to_v6();
      if (v6.is_link_local() || v6.is_site_local()) return true;
      if (v6.is_v4_mapped()) return Refuses(asio::ip::make_address_v4(asio::ip::v4_mapped, v6));
    }
    for (const Cidr& c : deny) {
      if (Contains(c, a)) return true;
    }
    return local.Has(a);
  }

  asio::awaitable<void> WatchIdle(std::shared_ptr<Watchdog> w, tcp::socket* a, tcp::socket* b) {
    while (!w->done) {
      w->timer.expires_after(std::chrono::seconds(1));
      error_code ec;
      co_await w->timer.async_wait(Checked(ec));
      if (w->done) break;
      if (Clock::now() - w->last > w->idle) {
        error_code ignored;
        a->close(ignored);
        if (b) b->close(ignored);
        break;
      }
    }
  }

  asio::awaitable<void> Copy(tcp::socket& from, tcp::socket& to, std::shared_ptr<Watchdog> w,
                             int64_t* bytes) {
    std::array<char, 16384> buf;
    while (true) {
      error_code ec;
      size_t n = co_await from.async_read_some(asio::buffer(buf), Checked(ec));
      if (n > 0) {
        w->Touch();
        *bytes += static_cast<int64_t>(n);
        error_code wec;
        co_await asio::async_write(to, asio::buffer(buf.data(), n), Checked(wec));
        if (wec) break;
      }
      if (ec) break;
    }
    error_code ignored;
    to.shutdown(tcp::socket::shutdown_send, ignored);
  }

  asio::awaitable<void> Reply(tcp::socket& s, const std::string& status, const std::string& why) {
    std::string msg = "HTTP/1.1 " + status + "\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                      "Content-Length: " + std::to_string(why.size() + 1) + "\r\n\r\n" + why + "\n";
    error_code ec;
    co_await asio::async_write(s, asio::buffer(msg), Checked(ec));
  }

  asio::awaitable<void> Handle(tcp::socket client, std::string team, std::shared_ptr<std::atomic<int>> active) {
    struct Count {
      std::shared_ptr<std::atomic<int>> n;
      ~Count() { --*n; }
    } count{active};
    auto ex = co_await asio::this_coro::executor;
    auto dog = std::make_shared<Watchdog>(ex, std::chrono::milliseconds(opt.idle_timeout_ms));
    // The request head must come within the connect timeout.
    dog->idle = std::chrono::milliseconds(opt.connect_timeout_ms);
    asio::co_spawn(ex, WatchIdle(dog, &client, nullptr), asio::detached);
    struct Done {
      std::shared_ptr<Watchdog> d;
      ~Done() {
        d->done = true;
        d->timer.cancel();
      }
    } done{dog};
    asio::streambuf head_buf(kMaxHead);
    error_code ec;
    size_t n = co_await asio::async_read_until(client, head_buf, "\r\n\r\n", Checked(ec));
    if (ec) {
      if (ec == asio::error::not_found) co_await Reply(client, "431 Request Header Fields Too Large", "request head too large");
      co_return;
    }
    std::string all(asio::buffers_begin(head_buf.data()), asio::buffers_end(head_buf.data()));
    std::string head = all.substr(0, n), rest = all.substr(n);
    auto req = ParseRequest(head);
    if (!req.ok()) {
      co_await Reply(client, "400 Bad Request", req.status().message());
      co_return;
    }
    std::string dest = req->host + ":" + std::to_string(req->port);
    tcp::resolver resolver(ex);
    auto results = co_await resolver.async_resolve(req->host, std::to_string(req->port), Checked(ec));
    if (ec || results.empty()) {
      log->info("msg=\"egress refused\" team={} dest={} why=\"cannot resolve\"", team, dest);
      co_await Reply(client, "502 Bad Gateway", "cannot resolve " + req->host);
      co_return;
    }
    std::vector<tcp::endpoint> eps;
    for (const auto& r : results) {
      if (Refuses(r.endpoint().address())) {
        log->warn("msg=\"egress refused\" team={} dest={} address={} why=\"not reachable from a team's network\"",
                  team, dest, r.endpoint().address().to_string());
        co_await Reply(client, "403 Forbidden",
                       dest + " is not reachable from a team's network (the platform's own and "
                              "local addresses are refused)");
        co_return;
      }
      eps.push_back(r.endpoint());
    }
    tcp::socket up(ex);
    dog->Touch();
    co_await asio::async_connect(up, eps, Checked(ec));
    if (ec) {
      co_await Reply(client, "502 Bad Gateway", "cannot connect to " + dest + ": " + ec.message());
      co_return;
    }
    dog->idle = std::chrono::milliseconds(opt.idle_timeout_ms);
    dog->Touch();
    // From here the watchdog guards both sockets.
    dog->done = true;
    dog->timer.cancel();
    auto dog2 = std::make_shared<Watchdog>(ex, std::chrono::milliseconds(opt.idle_timeout_ms));
    done.d = dog2;
    asio::co_spawn(ex, WatchIdle(dog2, &client, &up), asio::detached);
    std::string first;
    if (req->method == "CONNECT") {
      co_await asio::async_write(client, asio::buffer(std::string("HTTP/1.1 200 Connection established\r\n\r\n")), Checked(ec));
      if (ec) co_return;
      first = rest;
    } else {
      first = req->method + " " + req->origin_form + " HTTP/1.1\r\n" + req->headers +
              "Connection: close\r\n\r\n" + rest;
    }
    if (!first.empty()) {
      co_await asio::async_write(up, asio::buffer(first), Checked(ec));
      if (ec) co_return;
    }
    int64_t sent = static_cast<int64_t>(first.size()), received = 0;
    // Both directions; the connection ends when both have.
    auto other = std::make_shared<bool>(false);
    auto up_done = std::make_shared<asio::steady_timer>(ex, asio::steady_timer::time_point::max());
    asio::co_spawn(ex, [&, up_done, other]() -> asio::awaitable<void> {
      co_await Copy(client, up, dog2, &sent);
      *other = true;
      up_done->cancel();
    }, asio::detached);
    co_await Copy(up, client, dog2, &received);
    if (!*other) {
      error_code wait;
      co_await up_done->async_wait(Checked(wait));
    }
    log->info("msg=egress team={} method={} dest={} sent={} received={}", team, req->method, dest, sent,
              received);
  }

  asio::awaitable<void> Accept(std::shared_ptr<tcp::acceptor> acceptor, std::string team,
                               std::shared_ptr<std::atomic<int>> active) {
    while (true) {
      error_code ec;
      tcp::socket s = co_await acceptor->async_accept(Checked(ec));
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
        asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(100));
        co_await t.async_wait(Checked(ec));  // EMFILE and the like: breathe, then go on
        continue;
      }
      if (active->load() >= opt.max_connections) {
        co_await Reply(s, "503 Service Unavailable", "too many connections through the proxy");
        continue;
      }
      ++*active;
      asio::co_spawn(acceptor->get_executor(), Handle(std::move(s), team, active), asio::detached);
    }
  }
};

Result<std::unique_ptr<Proxy>> Proxy::Start(Options options) {
  std::unique_ptr<Proxy> p(new Proxy());
  p->impl_ = std::make_shared<Impl>();
  for (const std::string& d : options.deny) {
    BERTH_ASSIGN_OR_RETURN(Cidr c, ParseCidr(d));
    p->impl_->deny.push_back(c);
  }
  for (const std::string& d : options.allow) {
    BERTH_ASSIGN_OR_RETURN(Cidr c, ParseCidr(d));
    p->impl_->allow.push_back(c);
  }
  p->impl_->opt = std::move(options);
  Impl* impl = p->impl_.get();
  impl->thread = std::thread([impl] { impl->io.run(); });
  return p;
}

Proxy::~Proxy() { Stop(); }

Status Proxy::Serve(const std::string& netns, const std::string& team) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> l(m.mu);
  if (m.stopped) return Unavailable("the egress proxy is stopped");
  if (m.listeners.count(netns)) return Status::Ok();
  BERTH_ASSIGN_OR_RETURN(int ns, OpenNetns(netns));
  auto fd = SocketIn(ns, AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
  ::close(ns);
  if (!fd.ok()) return fd.status();
  int one = 1;
  ::setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(kPort);
  ::inet_pton(AF_INET, kAddress, &a.sin_addr);
  if (::bind(*fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(*fd, 128) != 0) {
    std::string why = std::strerror(errno);
    ::close(*fd);
    return Internal("cannot listen on " + std::string(kAddress) + ":" + std::to_string(kPort) +
                    " in " + netns + ": " + why);
  }
  Impl::Listener li;
  li.team = team;
  li.acceptor = std::make_shared<tcp::acceptor>(m.io);
  error_code ec;
  li.acceptor->assign(tcp::v4(), *fd, ec);
  if (ec) {
    ::close(*fd);
    return Internal("cannot use the proxy's socket: " + ec.message());
  }
  asio::co_spawn(m.io, m.Accept(li.acceptor, team, li.active), asio::detached);
  m.listeners.emplace(netns, li);
  m.log->info("msg=\"egress proxy listening\" team={} netns={}", team, netns);
  return Status::Ok();
}

void Proxy::Forget(const std::string& netns) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> l(m.mu);
  auto it = m.listeners.find(netns);
  if (it == m.listeners.end()) return;
  auto acceptor = it->second.acceptor;
  asio::post(m.io, [acceptor] {
    error_code ec;
    acceptor->close(ec);
  });
  m.listeners.erase(it);
}

void Proxy::Stop() {
  if (!impl_) return;
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> l(m.mu);
    if (m.stopped) return;
    m.stopped = true;
    m.listeners.clear();
  }
  m.guard.reset();
  m.io.stop();
  if (m.thread.joinable()) m.thread.join();
}

bool Proxy::Refuses(const std::string& ip) const {
  error_code ec;
  auto a = asio::ip::make_address(ip, ec);
  return ec || impl_->Refuses(a);
}

}  // namespace berth::egress
