#include "gateway/detail/control_link.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/log.h"
#include "model/model.h"

// GCC 12 reports asio's coroutine frames (class-specific operator new/delete) as mismatched
// allocation pairs; a known false positive of the compiler with Boost 1.74's awaitable_frame.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace berth::gateway::detail {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using tcp = asio::ip::tcp;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

auto Checked(beast::error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

struct Reply {
  int status = 0;
  std::string body;
};

// The API's error message ({"code", "message"}) or the start of whatever came back.
std::string ErrorText(const Reply& r) {
  Json j = Json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) {
    return j.value("code", "") + ": " + j["message"].get<std::string>();
  }
  return r.body.substr(0, 200);
}

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t b = s.find_first_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b);
}

Result<std::string> ReadText(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Unavailable(std::string("cannot read the ") + what + " " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// What one fetch of the snapshot came to.
struct Fetched {
  bool reached = false;   // the control plane answered 200 with a snapshot
  Status status;          // reached: whether the sink took it; else why it was not reached
  int64_t revision = -1;  // the revision now served (when the sink took it)
};

// One watch connection's shared state with its refresher.
struct Session {
  explicit Session(const asio::any_io_executor& ex) : wake(ex) {}
  asio::steady_timer wake;  // cancelled to wake the refresher
  bool dirty = false;
  bool over = false;
};

}  // namespace

Result<ControlTarget> ParseControlUrl(std::string_view url) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("control URL \"" + std::string(url) + "\": " + why, "control");
  };
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) return bad("expected http://HOST[:PORT]");
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  ControlTarget t;
  if (slash != std::string_view::npos) {
    t.base = std::string(rest.substr(slash));
    while (!t.base.empty() && t.base.back() == '/') t.base.pop_back();
    if (t.base.find_first_of("?#") != std::string::npos) return bad("no query or fragment");
  }
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unclosed [");
    t.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() != ':') return bad("junk after ]");
    if (!authority.empty()) t.port = std::string(authority.substr(1));
  } else {
    size_t colon = authority.rfind(':');
    t.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) t.port = std::string(authority.substr(colon + 1));
  }
  if (t.host.empty()) return bad("no host");
  if (t.port.empty() || t.port.size() > 5 ||
      t.port.find_first_not_of("0123456789") != std::string::npos || std::stoi(t.port) == 0 ||
      std::stoi(t.port) > 65535) {
    return bad("the port must be a number from 1 to 65535");
  }
  return t;
}

bool RelevantKind(std::string_view kind) {
  // What routing/ builds a snapshot from: the runtime's instances (readiness, ports), the
  // components (outer ports, replicas, stop), versions (canary pools), apps and teams (default
  // domains), and the control plane's own gateway objects (rules, certificates). A rule's
  // gateway_claim is written in the same commit as the rule, so it needs no refresh of its own.
  static constexpr std::string_view kKinds[] = {
      model::kComponent, model::kInstance, model::kVersion, model::kApp,
      model::kTeam,      model::kHttpRule, model::kTcpRule, model::kCertificate};
  for (std::string_view k : kKinds) {
    if (k == kind) return true;
  }
  return false;
}

struct ControlLink::Impl {
  ControlLinkOptions opt;
  SnapshotSink sink;
  asio::io_context ioc{1};
  std::thread thread;
  std::shared_ptr<spdlog::logger> log = Logger("gateway");
  bool started = false;
  bool joined = false;

  // Link thread only.
  std::string reported;  // the status text the control plane last took
  bool outage = false;
  bool report_refused = false;
  Clock::time_point outage_since;
  int64_t revision = -1;
  // The reporter's wait; cancelled (with `report_now`) to report at once after a snapshot is
  // taken, so the control plane learns the served revision within one round trip.
  std::unique_ptr<asio::steady_timer> report_timer;
  bool report_now = false;

  void ReportSoon() {
    report_now = true;
    if (report_timer) report_timer->cancel();
  }

  Result<ControlTarget> Target() {
    if (!opt.control_url.empty()) return ParseControlUrl(opt.control_url);
    BERTH_ASSIGN_OR_RETURN(std::string text, ReadText(opt.control_file, "control plane file"));
    Json j = Json::parse(text, nullptr, false);
    if (!j.is_object() || !j.contains("api") || !j["api"].is_string()) {
      return Unavailable(opt.control_file + " has no \"api\" URL (the server is starting)");
    }
    return ParseControlUrl(j["api"].get<std::string>());
  }

  Result<std::string> Token() {
    if (opt.token_file.empty()) return std::string();
    BERTH_ASSIGN_OR_RETURN(std::string text, ReadText(opt.token_file, "token file"));
    return Trimmed(std::move(text));
  }

  void NoteOutage(const std::string& why) {
    if (outage) return;
    outage = true;
    outage_since = Clock::now();
    log->warn(
        "msg=\"cannot get the snapshot from the control plane; serving the last good one "
        "and retrying\" "
        "reason=\"{}\" revision={}",
        why, revision);
  }

  void NoteReachable() {
    if (!outage) return;
    outage = false;
    reported.clear();  // the control plane may have lost it (or be another one): send again
    auto s = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - outage_since);
    log->info("msg=\"control plane reachable again\" outage_s={}", s.count());
  }

  template <class Body>
  void Prepare(http::request<Body>& req, const ControlTarget& t, const std::string& token) {
    req.set(http::field::host, t.host.find(':') != std::string::npos ? "[" + t.host + "]:" + t.port
                                                                     : t.host + ":" + t.port);
    req.set(http::field::user_agent, "berth-gateway");
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  }

  awaitable<Status> Connect(beast::tcp_stream& s, const ControlTarget& t) {
    beast::error_code ec;
    tcp::resolver resolver(co_await asio::this_coro::executor);
    auto found = co_await resolver.async_resolve(t.host, t.port, Checked(ec));
    if (ec) co_return Unavailable("cannot resolve " + t.host + ": " + ec.message());
    s.expires_after(opt.connect_timeout);
    // Each address in turn on a socket opened close-on-exec (Asio's own open does not set it).
    ec = asio::error::host_not_found;
    for (const auto& entry : found) {
      s.close();
      tcp::endpoint ep = entry.endpoint();
      int fd = ::socket(ep.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
      if (fd < 0) {
        ec = beast::error_code(errno, boost::system::system_category());
        break;
      }
      s.socket().assign(ep.protocol(), fd, ec);
      if (ec) {
        ::close(fd);
        break;
      }
      co_await s.async_connect(ep, Checked(ec));
      if (!ec || ec == beast::error::timeout) break;  // connected, or out of time
    }
    if (ec)
      co_return Unavailable("cannot connect to " + t.host + ":" + t.port + ": " + ec.message());
    co_return Status::Ok();
  }

  awaitable<Fetched> FetchAndApply(const ControlTarget& t, const std::string& token) {
    Fetched f;
    beast::tcp_stream s(co_await asio::this_coro::executor);
    f.status = co_await Connect(s, t);
    if (!f.status.ok()) co_return f;
    http::request<http::empty_body> req{http::verb::get, t.base + "/api/v1/gateway/snapshot", 11};
    Prepare(req, t, token);
    beast::error_code ec;
    s.expires_after(opt.request_timeout);
    co_await http::async_write(s, req, Checked(ec));
    beast::flat_buffer buf;
    http::response_parser<http::string_body> p;
    p.body_limit(opt.snapshot_limit);
    if (!ec) co_await http::async_read(s, buf, p, Checked(ec));
    s.socket().shutdown(tcp::socket::shutdown_both, ec);
    if (!p.is_done()) {
      f.status = Unavailable("GET /api/v1/gateway/snapshot: " +
                             (ec ? ec.message() : std::string("incomplete answer")));
      co_return f;
    }
    Reply r{static_cast<int>(p.get().result_int()), std::move(p.get().body())};
    if (r.status == 401 || r.status == 403) {
      f.status = Unauthenticated("the control plane refused the gateway's credential (HTTP " +
                                 std::to_string(r.status) + " " + ErrorText(r) + ")");
      co_return f;
    }
    if (r.status != 200) {
      f.status = Unavailable("GET /api/v1/gateway/snapshot answered " + std::to_string(r.status) +
                             " " + ErrorText(r));
      co_return f;
    }
    f.reached = true;
    auto rev = sink(r.body);
    if (!rev.ok()) {
      f.status = rev.status();
      log->error(
          "msg=\"refused a snapshot from the control plane; the previous one keeps "
          "serving\" reason=\"{}\" serving_revision={}",
          rev.status().message(), revision);
      co_return f;
    }
    f.revision = revision = *rev;
    if (opt.status) ReportSoon();
    co_return f;
  }

  // Sends the status when it changed since the control plane last took it.
  awaitable<void> ReportOnce() {
    std::string text = opt.status();
    if (text == reported) co_return;
    auto target = Target();
    auto token = Token();
    if (!target.ok() || !token.ok()) co_return;  // the fetch loop reports why
    beast::tcp_stream s(co_await asio::this_coro::executor);
    Status st = co_await Connect(s, *target);
    if (!st.ok()) co_return;
    http::request<http::string_body> req{http::verb::put, target->base + "/api/v1/gateway/status",
                                         11};
    Prepare(req, *target, *token);
    req.set(http::field::content_type, "application/json");
    req.body() = text;
    req.prepare_payload();
    beast::error_code ec;
    s.expires_after(opt.request_timeout);
    co_await http::async_write(s, req, Checked(ec));
    beast::flat_buffer buf;
    http::response_parser<http::string_body> p;
    p.body_limit(1 << 20);
    if (!ec) co_await http::async_read(s, buf, p, Checked(ec));
    s.socket().shutdown(tcp::socket::shutdown_both, ec);
    if (!p.is_done()) co_return;
    Reply r{static_cast<int>(p.get().result_int()), std::move(p.get().body())};
    if (r.status == 200) {
      if (report_refused) log->info("msg=\"the control plane takes the gateway's status again\"");
      report_refused = false;
      reported = std::move(text);
    } else if (!report_refused) {
      report_refused = true;
      log->warn("msg=\"the control plane refused the gateway's status; retrying\" reason=\"{} {}\"",
                r.status, ErrorText(r));
    }
  }

  // One report at a time, so the control plane never takes an older revision after a newer
  // one: every `report_interval`, and at once when ReportSoon asks.
  awaitable<void> Reporter() {
    report_timer = std::make_unique<asio::steady_timer>(co_await asio::this_coro::executor);
    beast::error_code ec;
    while (true) {
      if (!report_now) {
        report_timer->expires_after(opt.report_interval);
        co_await report_timer->async_wait(Checked(ec));  // operation_aborted: ReportSoon
      }
      report_now = false;
      co_await ReportOnce();
    }
  }

  // Fetches again, debounced, whenever the watch marks the session dirty, until it is over.
  awaitable<void> Refresher(std::shared_ptr<Session> session, ControlTarget t, std::string token) {
    beast::error_code ec;
    asio::steady_timer debounce(co_await asio::this_coro::executor);
    while (!session->over) {
      if (!session->dirty) {
        session->wake.expires_at(asio::steady_timer::time_point::max());
        co_await session->wake.async_wait(Checked(ec));
        continue;
      }
      debounce.expires_after(opt.debounce);
      co_await debounce.async_wait(Checked(ec));
      if (session->over) break;
      session->dirty = false;
      Fetched f = co_await FetchAndApply(t, token);
      if (!f.reached) {
        log->warn(
            "msg=\"re-fetching the snapshot failed; the watch decides whether the control "
            "plane is down\" reason=\"{}\"",
            f.status.message());
      }
    }
  }

  // Follows the change feed until it ends. OK: the server ended it; kGone:
  // 410 revision_compacted; otherwise why it failed.
  awaitable<Status> Watch(const ControlTarget& t, const std::string& token, int64_t from,
                          std::shared_ptr<Session> session) {
    beast::tcp_stream s(co_await asio::this_coro::executor);
    Status st = co_await Connect(s, t);
    if (!st.ok()) co_return st;
    std::string path = t.base + "/api/v1/watch";
    if (from >= 0) path += "?from=" + std::to_string(from);
    http::request<http::empty_body> req{http::verb::get, path, 11};
    Prepare(req, t, token);
    beast::error_code ec;
    s.expires_after(opt.request_timeout);
    co_await http::async_write(s, req, Checked(ec));
    if (ec) co_return Unavailable("GET /api/v1/watch: " + ec.message());
    beast::flat_buffer buf;
    http::response_parser<http::buffer_body> p;
    p.body_limit(boost::none);
    co_await http::async_read_header(s, buf, p, Checked(ec));
    if (ec) co_return Unavailable("GET /api/v1/watch: " + ec.message());
    const int status = static_cast<int>(p.get().result_int());
    std::string pending;  // a partial line, or the error body
    char chunk[16384];
    while (!p.is_done()) {
      p.get().body().data = chunk;
      p.get().body().size = sizeof chunk;
      s.expires_after(status == 200 ? opt.watch_idle_timeout : opt.request_timeout);
      // read_some: a watch line must be seen when it arrives, not once 16 KiB have.
      co_await http::async_read_some(s, buf, p, Checked(ec));
      if (ec == http::error::need_buffer) ec = {};
      if (ec) break;
      pending.append(chunk, sizeof chunk - p.get().body().size);
      if (status != 200) {
        if (pending.size() > 65536) break;
        continue;
      }
      size_t start = 0;
      for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
        Json line =
            Json::parse(std::string_view(pending).substr(start, nl - start), nullptr, false);
        if (!line.is_object() || line.value("type", "") == "heartbeat") continue;
        if (!line.contains("kind") || !line["kind"].is_string()) continue;
        if (RelevantKind(line["kind"].get<std::string>()) && !session->dirty) {
          session->dirty = true;
          session->wake.cancel();
        }
      }
      pending.erase(0, start);
      if (pending.size() > (64u << 20)) co_return Internal("a watch line longer than 64 MiB");
    }
    if (status == 410) co_return Status(Code::kGone, "revision_compacted", "revision_compacted");
    if (status != 200) {
      co_return Unavailable("GET /api/v1/watch answered " + std::to_string(status) + " " +
                            ErrorText(Reply{status, pending}));
    }
    if (ec) co_return Unavailable("the watch stream broke: " + ec.message());
    co_return Status::Ok();
  }

  awaitable<void> Run() {
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer sleep(ex);
    beast::error_code ec;
    auto backoff = opt.backoff_min;
    auto pause = [&]() -> awaitable<void> {
      sleep.expires_after(backoff);
      co_await sleep.async_wait(Checked(ec));
      backoff = std::min(backoff * 2, opt.backoff_max);
    };
    while (true) {
      auto target = Target();
      auto token = Token();
      Fetched f;
      if (!target.ok()) {
        f.status = target.status();
      } else if (!token.ok()) {
        f.status = token.status();
      } else {
        f = co_await FetchAndApply(*target, *token);
      }
      if (!f.reached) {
        NoteOutage(f.status.message());
        co_await pause();
        continue;
      }
      NoteReachable();
      // A refused snapshot is watched past: the next relevant change fetches again.
      auto session = std::make_shared<Session>(ex);
      asio::co_spawn(ex, Refresher(session, *target, *token), asio::detached);
      auto began = Clock::now();
      Status w = co_await Watch(*target, *token, f.status.ok() ? f.revision : -1, session);
      session->over = true;
      session->wake.cancel();
      if (w.code() == Code::kGone) {
        log->info(
            "msg=\"the change feed no longer reaches back to revision {}; fetching the "
            "snapshot again\"",
            f.revision);
        backoff = opt.backoff_min;
        continue;
      }
      if (!w.ok()) log->debug("msg=\"watch ended\" reason=\"{}\"", w.message());
      // A watch that keeps failing at once must not turn into a busy loop of fetches.
      if (Clock::now() - began > std::chrono::seconds(2)) backoff = opt.backoff_min;
      co_await pause();
    }
  }
};

ControlLink::ControlLink(ControlLinkOptions options, SnapshotSink sink)
    : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(options);
  impl_->sink = std::move(sink);
}

ControlLink::~ControlLink() { Stop(); }

void ControlLink::Start() {
  if (impl_->started) return;
  impl_->started = true;
  asio::co_spawn(impl_->ioc, impl_->Run(), asio::detached);
  if (impl_->opt.status) asio::co_spawn(impl_->ioc, impl_->Reporter(), asio::detached);
  impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

void ControlLink::Stop() {
  if (!impl_->started || impl_->joined) return;
  impl_->ioc.stop();
  impl_->thread.join();
  impl_->joined = true;
}

}  // namespace berth::gateway::detail
