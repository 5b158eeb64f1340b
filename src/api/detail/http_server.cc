// The HttpServer of api/http.h on Boost.Beast + Asio. This is the only translation unit of
// the API that includes Beast (DESIGN.md §6: one Beast TU costs ~15 s and ~580 MB to build).
//
// Threading
//   Each of the `io_threads` threads runs its own io_context (concurrency hint 1: no
//   cross-thread wake-ups or scheduler locks on the hot path); accepted connections are spread
//   over them round-robin. The acceptor and every connection (Session) have their own strand: all of a session's state is touched only by handlers running on its
//   strand, so a session needs no locks. Handlers run inline on the io thread, except those
//   whose IsBlocking() is true: they run on a separate asio::thread_pool (`blocking_threads`)
//   and post the response back to the session's strand; those whose IsSlow() is true (waiting
//   on an outside server, e.g. git during detection) run on a third pool (`slow_threads`), so
//   they never hold up password hashing. A connection handles one request at a
//   time (the next one is read only after the response is written), so pipelined requests are
//   answered in order.
//
// Streams
//   A streamed response is sent as a chunked head with "Connection: close" (the connection
//   ends with the stream). The session polls the StreamSource; when it has nothing, the
//   session registers itself in Core::waiting and waits on a steady_timer for `heartbeat`.
//   WakeStreams() bumps Core::wake_epoch and posts a timer cancel to every waiting session.
//   Lost wake-ups are impossible: a session reads the epoch before polling and, under the same
//   mutex that WakeStreams takes, re-checks it before registering as waiting; if it moved, the
//   session polls again instead of sleeping.
//   A client that goes away ends its stream at once: while streaming, a read is kept pending
//   on the socket (bytes the client sends meanwhile are discarded); EOF or an error closes the
//   session, which drops the StreamSource. A failed or timed-out chunk write does the same.
//
// Limits
//   The header is read with no body limit; then the limit is set — body_limit, or the
//   BodyFile limit of a request the handler streams to a file — and a Content-Length over it
//   is answered 413 before any body byte is read; a chunked body fails once it crosses the
//   limit -> 413. A body that goes to a file is read by a request_parser<file_body> built from
//   the header parser (Beast's change-of-body-type), so it is written out as it arrives and the
//   partial file is removed on any failure; header_limit -> 431; any other parse error -> 400. Error responses are
//   followed by a "lingering close" (shut down our side, discard what the client still sends
//   for up to 2 s / 1 MiB) so the client reads the error instead of a connection reset.
//   request_timeout bounds receiving one request (and writing one response or chunk);
//   idle_timeout bounds the wait for the next request on a keep-alive connection.
//   Connections beyond max_connections are accepted, answered 503 and closed. Out of
//   descriptors (EMFILE/ENFILE), a spare descriptor (core/fd_limit.h) accepts and closes the
//   waiting connections at once — logged once per episode — and the acceptor waits for the
//   next one instead of spinning.
//
// Stop() stops accepting, stops the io_contexts, joins the io threads and the blocking pool,
// and destroys the io_contexts, which destroys every pending handler and with it every
// session: all sockets (streams included) are closed when Stop() returns.
#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/http/file_body.hpp>
#include <unistd.h>

#include "api/http.h"
#include "core/fd_limit.h"
#include "core/log.h"

namespace berth {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using beast::error_code;

constexpr std::chrono::seconds kLingerTime{2};
constexpr size_t kLingerBytes = 1 << 20;
constexpr size_t kReadChunk = 4096;
// Receiving an upload may take longer than request_timeout allows for ordinary requests.
constexpr std::chrono::minutes kUploadTimeout{15};
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

std::string JsonEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static const char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[(c >> 4) & 0xf];
          out += kHex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string ErrorJson(std::string_view code, std::string_view message) {
  return "{\"code\":\"" + JsonEscape(code) + "\",\"message\":\"" + JsonEscape(message) + "\"}";
}

HttpResponse ErrorResponse(int status, std::string_view code, std::string_view message) {
  HttpResponse r;
  r.status = status;
  r.body = ErrorJson(code, message);
  return r;
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool HasCrLf(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

class Session;

// State shared by the server and its sessions; sessions keep it alive.
struct Core {
  Core(HttpServerOptions o, Handler* h) : options(std::move(o)), handler(h) {}

  const HttpServerOptions options;
  Handler* const handler;
  const std::shared_ptr<spdlog::logger> log = Logger("api");
  std::atomic<bool> stopping{false};
  std::atomic<int> connections{0};  // sessions counted against max_connections
  // Created by Start before the first accept; joined and reset by Stop after the io threads
  // are joined, so io threads may use it without a lock.
  std::unique_ptr<asio::thread_pool> blocking_pool;
  std::unique_ptr<asio::thread_pool> slow_pool;  // as blocking_pool, for IsSlow requests

  std::mutex mu;
  uint64_t wake_epoch = 0;                                       // guarded by mu
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;  // guarded by mu; all live
  std::unordered_map<Session*, std::weak_ptr<Session>> waiting;   // guarded by mu; on a timer
};

HttpResponse CallHandler(Core& core, const HttpRequest& req) {
  try {
    return core.handler->Handle(req);
  } catch (const std::exception& e) {
    core.log->error("msg=\"handler threw\" method={} path={} error=\"{}\"", req.method, req.path,
                    e.what());
  } catch (...) {
    core.log->error("msg=\"handler threw\" method={} path={}", req.method, req.path);
  }
  return ErrorResponse(500, "internal", "internal error");
}

// One connection. Every member function runs on the session's strand (executor_), except the
// constructor/destructor and executor().
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<Core> core, bool counted)
      : core_(std::move(core)),
        stream_(std::move(socket)),
        executor_(stream_.get_executor()),
        timer_(executor_),
        counted_(counted) {
    error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_addr_ = ep.address().to_string();
  }

  ~Session() {
    {
      std::lock_guard<std::mutex> l(core_->mu);
      core_->sessions.erase(this);
      core_->waiting.erase(this);
    }
    if (counted_) core_->connections.fetch_sub(1);
    if (!upload_path_.empty()) ::unlink(upload_path_.c_str());
  }

  const beast::tcp_stream::executor_type& executor() const { return executor_; }

  void Run() {
    if (!counted_) {
      WriteErrorAndClose(503, "unavailable", "too many connections");
      return;
    }
    ReadRequest();
  }

  void Shutdown() { CloseNow(); }

  void Wake() {
    if (waiting_ && !closed_) timer_.cancel();
  }

 private:
  enum class StreamState { kOpen, kLastPending, kDone };

  // ---- reading a request

  void ReadRequest() {
    if (closed_) return;
    const auto& o = core_->options;
    RemoveUpload();
    file_parser_.reset();
    parser_.emplace();
    // The limit depends on the route (uploads): set once the header is read (OnHeader). (Not
    // boost::none: Beast 1.74 compares a Content-Length against a none limit as exceeding it.)
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    limit_ = o.body_limit;
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<size_t>(o.header_limit, std::numeric_limits<std::uint32_t>::max())));
    if (!first_ && buffer_.size() == 0) {
      // Keep-alive: wait up to idle_timeout for the next request to start.
      stream_.expires_after(o.idle_timeout);
      stream_.async_read_some(
          buffer_.prepare(kReadChunk),
          [self = shared_from_this()](error_code ec, size_t n) {
            if (ec || self->closed_) return self->CloseNow();
            self->buffer_.commit(n);
            self->ReadHeader();
          });
      return;
    }
    first_ = false;
    ReadHeader();
  }

  void ReadHeader() {
    // One deadline for the whole request (header, 100-continue, body).
    stream_.expires_after(core_->options.request_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](error_code ec, size_t) {
                              if (ec) return self->OnReadError(ec);
                              self->OnHeader();
                            });
  }

  void OnHeader() {
    if (closed_) return;
    std::optional<BodyFile> to_file;
    if (!parser_->is_done()) {
      try {
        to_file = core_->handler->BodyToFile(ToRequest(parser_->get().base()));
      } catch (const std::exception& e) {
        core_->log->error("msg=\"BodyToFile threw\" error=\"{}\"", e.what());
        return WriteErrorAndClose(500, "internal", "internal error");
      }
    }
    if (to_file && to_file->reject) return WriteResponseAndClose(std::move(*to_file->reject));
    limit_ = to_file ? to_file->limit : core_->options.body_limit;
    if (auto n = parser_->content_length(); n && *n > limit_) {
      return OnReadError(http::error::body_limit);
    }
    if (!parser_->is_done()) parser_->body_limit(static_cast<std::uint64_t>(limit_));
    if (to_file) {
      std::string tmpl = to_file->dir + "/upload-XXXXXX";
      // O_CLOEXEC: the file is open while builds start steps (Beast's own open would not
      // set it).
      int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
      if (fd < 0) {
        int err = errno;
        core_->log->error("msg=\"cannot create upload file\" dir=\"{}\" errno={}", to_file->dir, err);
        if (err == ENOSPC || err == EDQUOT) return WriteDiskFullAndClose(to_file->dir);
        return WriteErrorAndClose(500, "internal", "cannot store the upload on the server");
      }
      upload_dir_ = to_file->dir;
      upload_path_ = tmpl;
      try {
        file_parser_.emplace(std::move(*parser_));
      } catch (const std::exception& e) {
        ::close(fd);
        core_->log->error("msg=\"cannot switch to a file body\" error=\"{}\"", e.what());
        return WriteErrorAndClose(500, "internal", "internal error");
      }
      parser_.reset();
      stream_.expires_after(std::max<std::chrono::steady_clock::duration>(core_->options.request_timeout, kUploadTimeout));
      error_code ec;
      beast::file file;
      file.native_handle(fd);
      file_parser_->get().body().reset(std::move(file), ec);
      if (ec) {
        core_->log->error("msg=\"cannot open upload file\" path=\"{}\" error=\"{}\"", upload_path_, ec.message());
        return WriteErrorAndClose(500, "internal", "cannot store the upload on the server");
      }
    }
    bool done = file_parser_ ? file_parser_->is_done() : parser_->is_done();
    const auto& head = file_parser_ ? file_parser_->get().base() : parser_->get().base();
    if (!done && beast::iequals(head[http::field::expect], "100-continue")) {
      asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                        [self = shared_from_this()](error_code ec, size_t) {
                          if (ec || self->closed_) return self->CloseNow();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    if (file_parser_) {
      if (file_parser_->is_done()) return OnRequest();
      http::async_read(stream_, buffer_, *file_parser_,
                       [self = shared_from_this()](error_code ec, size_t) {
                         if (ec) return self->OnReadError(ec);
                         self->OnRequest();
                       });
      return;
    }
    if (parser_->is_done()) return OnRequest();
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](error_code ec, size_t) {
                       if (ec) return self->OnReadError(ec);
                       self->OnRequest();
                     });
  }

  void OnReadError(error_code ec) {
    if (closed_) return;
    const auto& o = core_->options;
    RemoveUpload();
    if (ec == http::error::body_limit) {
      WriteErrorAndClose(413, "payload_too_large",
                         "request body is larger than the limit of " +
                             std::to_string(limit_) + " bytes");
    } else if ((ec == boost::system::errc::no_space_on_device ||
                (ec.category() == boost::system::system_category() && ec.value() == EDQUOT)) &&
               !upload_dir_.empty()) {
      // Writing the upload filled the disk: say so (507), not a reset connection.
      WriteDiskFullAndClose(upload_dir_);
    } else if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      WriteErrorAndClose(431, "header_too_large",
                         "request header is larger than the limit of " +
                             std::to_string(o.header_limit) + " bytes");
    } else if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
      WriteErrorAndClose(400, "bad_request", "malformed HTTP request: " + ec.message());
    } else {
      CloseNow();  // end of stream, reset, timeout, or closed by Stop
    }
  }

  // ---- handling

  // The request line and headers of `msg` (no body).
  template <class Fields>
  HttpRequest ToRequest(const http::header<true, Fields>& msg) const {
    HttpRequest req;
    req.method = std::string(msg.method_string());
    SetTarget(&req, std::string(msg.target()));
    for (const auto& f : msg) {
      auto [it, inserted] =
          req.headers.emplace(ToLower(f.name_string()), std::string(f.value()));
      if (!inserted) {  // repeated header: combine as RFC 9110 §5.3 allows
        it->second += ", ";
        it->second += f.value();
      }
    }
    req.remote_addr = remote_addr_;
    return req;
  }

  void RemoveUpload() {
    if (file_parser_) file_parser_->get().body().close();
    if (!upload_path_.empty()) {
      ::unlink(upload_path_.c_str());
      upload_path_.clear();
    }
  }

  void OnRequest() {
    if (closed_) return;
    HttpRequest req;
    if (file_parser_) {
      auto& msg = file_parser_->get();
      req = ToRequest(msg.base());
      msg.body().close();  // flushed and closed: the handler reads a complete file
      req.body_file = upload_path_;
      version_ = msg.version();
      keep_alive_ = msg.keep_alive();
      head_ = msg.method() == http::verb::head;
      file_parser_.reset();
    } else {
      auto& msg = parser_->get();
      req = ToRequest(msg.base());
      req.body = std::move(msg.body());
      version_ = msg.version();
      keep_alive_ = msg.keep_alive();
      head_ = msg.method() == http::verb::head;
      parser_.reset();
    }

    bool blocking = false;
    bool slow = false;
    try {
      slow = core_->handler->IsSlow(req);
      blocking = slow || core_->handler->IsBlocking(req);
    } catch (...) {
    }
    if (!blocking) {
      HttpResponse res = CallHandler(*core_, req);
      RemoveUpload();
      return Respond(std::move(res));
    }

    // The blocking pool owns the upload from here: it is removed there once handled, so a
    // session that closes meanwhile cannot remove it under the handler.
    std::string upload = std::move(upload_path_);
    upload_path_.clear();
    asio::post(slow ? *core_->slow_pool : *core_->blocking_pool,
               [self = shared_from_this(), req = std::move(req),
                                       upload = std::move(upload)]() {
      HttpResponse res = self->core_->stopping.load()
                             ? ErrorResponse(503, "unavailable", "server is stopping")
                             : CallHandler(*self->core_, req);
      if (!upload.empty()) ::unlink(upload.c_str());
      asio::post(self->executor_, [self, res = std::move(res)]() mutable {
        self->Respond(std::move(res));
      });
    });
  }

  // Copies status and headers of `r` into `head`; returns false if the handler asked to close.
  template <class Body>
  bool FillHead(const HttpResponse& r, http::response<Body>* head) {
    head->version(version_);
    int status = r.status;
    if (status < 200 || status > 999) status = 500;  // no 1xx: we do not do upgrades
    head->result(static_cast<unsigned>(status));
    head->set(http::field::server, "berth");
    if (!r.content_type.empty() && !HasCrLf(r.content_type)) {
      head->set(http::field::content_type, r.content_type);
    }
    bool keep = true;
    for (const auto& [name, value] : r.headers) {
      if (name.empty() || HasCrLf(name) || HasCrLf(value)) continue;
      if (beast::iequals(name, "content-length") || beast::iequals(name, "transfer-encoding")) {
        continue;  // framing is ours
      }
      if (beast::iequals(name, "connection")) {
        if (beast::iequals(value, "close")) keep = false;
        continue;
      }
      head->insert(name, value);
    }
    return keep;
  }

  void Respond(HttpResponse r) {
    if (closed_) return;
    if (r.stream) return StartStream(std::move(r));
    try {
      res_ = {};
      bool keep = FillHead(r, &res_) && keep_alive_;
      unsigned s = res_.result_int();
      if (s != 204 && s != 304) {
        res_.content_length(r.body.size());
        if (!head_) res_.body() = std::move(r.body);
      }
      res_.keep_alive(keep);
      keep_alive_ = keep;
    } catch (const std::exception& e) {
      core_->log->error("msg=\"cannot build response\" error=\"{}\"", e.what());
      return WriteErrorAndClose(500, "internal", "internal error");
    }
    // A client that does not take its response within request_timeout is dropped.
    stream_.expires_after(core_->options.request_timeout);
    http::async_write(stream_, res_, [self = shared_from_this()](error_code ec, size_t) {
      if (ec || self->closed_ || !self->keep_alive_) return self->CloseNow();
      self->ReadRequest();
    });
  }

  // ---- errors and closing

  void WriteResponseAndClose(HttpResponse r) {
    if (closed_) return;
    res_ = {};
    version_ = 11;
    FillHead(r, &res_);
    res_.keep_alive(false);
    res_.body() = std::move(r.body);
    res_.content_length(res_.body().size());
    stream_.expires_after(core_->options.request_timeout);
    http::async_write(stream_, res_, [self = shared_from_this()](error_code ec, size_t) {
      if (ec || self->closed_) return self->CloseNow();
      self->LingerClose();
    });
  }

  // The disk under `dir` filled up while an upload was written there: 507 naming the disk, and
  // the rest of the body is read and dropped (up to 64 MiB / 10 s) so the client, still
  // sending, gets the answer rather than a reset connection.
  void WriteDiskFullAndClose(const std::string& dir) {
    linger_bytes_ = 64u << 20;
    linger_time_ = std::chrono::seconds(10);
    WriteErrorAndClose(507, "insufficient_storage",
                       DiskFull("the upload was not stored", dir).message());
  }

  void WriteErrorAndClose(int status, std::string_view code, const std::string& message) {
    if (closed_) return;
    res_ = {};
    res_.version(11);
    res_.result(static_cast<unsigned>(status));
    res_.set(http::field::server, "berth");
    res_.set(http::field::content_type, "application/json");
    res_.keep_alive(false);
    res_.body() = ErrorJson(code, message);
    res_.content_length(res_.body().size());
    stream_.expires_after(core_->options.request_timeout);
    http::async_write(stream_, res_, [self = shared_from_this()](error_code ec, size_t) {
      if (ec || self->closed_) return self->CloseNow();
      self->LingerClose();
    });
  }

  // Closing right away with unread input would make the kernel send a reset, which can destroy
  // the error response before the client reads it; so first drain for a short while.
  void LingerClose() {
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(linger_time_);
    drained_ = 0;
    Drain();
  }

  void Drain() {
    scratch_.resize(kReadChunk);
    stream_.async_read_some(asio::buffer(scratch_),
                            [self = shared_from_this()](error_code ec, size_t n) {
                              self->drained_ += n;
                              if (ec || self->closed_ || self->drained_ > self->linger_bytes_) {
                                return self->CloseNow();
                              }
                              self->Drain();
                            });
  }

  void CloseNow() {
    if (closed_) return;
    closed_ = true;
    RemoveUpload();
    if (waiting_) timer_.cancel();
    stream_.close();  // cancels pending operations and their timeouts
    source_.reset();  // a stream ends with its connection
    std::lock_guard<std::mutex> l(core_->mu);
    core_->waiting.erase(this);
  }

  // ---- streaming

  void StartStream(HttpResponse r) {
    source_ = std::move(r.stream);
    try {
      stream_head_.emplace();
      FillHead(r, &*stream_head_);
      chunked_ = version_ >= 11;  // HTTP/1.0 clients get the raw bytes until we close
      if (chunked_) stream_head_->chunked(true);
      stream_head_->keep_alive(false);
      stream_sr_.emplace(*stream_head_);
    } catch (const std::exception& e) {
      core_->log->error("msg=\"cannot build stream head\" error=\"{}\"", e.what());
      source_.reset();
      return WriteErrorAndClose(500, "internal", "internal error");
    }
    stream_state_ = StreamState::kOpen;
    last_write_ = std::chrono::steady_clock::now();
    stream_.expires_never();
    if (!head_) WatchPeer();
    // With the read pending, this sets the deadline of writes only.
    stream_.expires_after(core_->options.request_timeout);
    http::async_write_header(
        stream_, *stream_sr_,
        [self = shared_from_this()](error_code ec, size_t) { self->OnStreamWrite(ec); });
  }

  // Keeps one read pending while streaming to notice a client that goes away.
  void WatchPeer() {
    scratch_.resize(kReadChunk);
    stream_.async_read_some(asio::buffer(scratch_),
                            [self = shared_from_this()](error_code ec, size_t) {
                              if (self->closed_) return;
                              if (ec) return self->CloseNow();
                              self->WatchPeer();  // discard what the client sends
                            });
  }

  void OnStreamWrite(error_code ec) {
    if (closed_) return;
    if (ec) return CloseNow();
    if (head_ || stream_state_ == StreamState::kDone) return CloseNow();
    if (stream_state_ == StreamState::kLastPending) return WriteLast();
    PollStream();
  }

  void PollStream() {
    if (closed_) return;
    uint64_t seen;
    {
      std::lock_guard<std::mutex> l(core_->mu);
      seen = core_->wake_epoch;
    }
    std::string out;
    bool more = false;
    try {
      more = source_->Poll(&out);
    } catch (const std::exception& e) {
      core_->log->error("msg=\"stream poll threw\" error=\"{}\"", e.what());
    } catch (...) {
      core_->log->error("msg=\"stream poll threw\"");
    }
    if (!more) {
      if (out.empty()) return WriteLast();
      stream_state_ = StreamState::kLastPending;
      return WriteChunk(std::move(out));
    }
    if (!out.empty()) return WriteChunk(std::move(out));
    WaitForWake(seen);
  }

  void WaitForWake(uint64_t seen) {
    {
      std::lock_guard<std::mutex> l(core_->mu);
      if (core_->wake_epoch == seen) {
        core_->waiting[this] = weak_from_this();
        waiting_ = true;
      }
    }
    if (!waiting_) {  // woken while polling: poll again (posted, to not grow the stack)
      asio::post(executor_, [self = shared_from_this()] { self->PollStream(); });
      return;
    }
    // A Wake posted by WakeStreams runs on this strand after this function returns, so it
    // always finds the wait armed.
    // The heartbeat is due `heartbeat` after the last write, however often wakes come: a
    // stream woken often by changes it does not show must still beat.
    // It also wakes after `stream_poll` to poll again unwoken (a source may end by itself).
    timer_.expires_at(std::min(last_write_ + core_->options.heartbeat,
                               std::chrono::steady_clock::now() + core_->options.stream_poll));
    timer_.async_wait([self = shared_from_this()](error_code ec) { self->OnTimer(ec); });
  }

  void OnTimer(error_code ec) {
    waiting_ = false;
    {
      std::lock_guard<std::mutex> l(core_->mu);
      core_->waiting.erase(this);
    }
    if (closed_) return;
    if (ec == asio::error::operation_aborted) return PollStream();  // woken
    if (std::chrono::steady_clock::now() < last_write_ + core_->options.heartbeat) {
      return PollStream();  // the periodic poll, before a heartbeat is due
    }
    std::string beat;
    try {
      beat = source_->Heartbeat();
    } catch (...) {
    }
    if (beat.empty()) return PollStream();
    WriteChunk(std::move(beat));
  }

  void WriteChunk(std::string data) {
    chunk_ = std::move(data);
    last_write_ = std::chrono::steady_clock::now();
    stream_.expires_after(core_->options.request_timeout);
    auto done = [self = shared_from_this()](error_code ec, size_t) { self->OnStreamWrite(ec); };
    if (chunked_) {
      asio::async_write(stream_, http::make_chunk(asio::buffer(chunk_)), std::move(done));
    } else {
      asio::async_write(stream_, asio::buffer(chunk_), std::move(done));
    }
  }

  void WriteLast() {
    stream_state_ = StreamState::kDone;
    if (!chunked_) return CloseNow();
    stream_.expires_after(core_->options.request_timeout);
    asio::async_write(stream_, http::make_chunk_last(),
                      [self = shared_from_this()](error_code ec, size_t) {
                        self->OnStreamWrite(ec);
                      });
  }

  const std::shared_ptr<Core> core_;
  beast::tcp_stream stream_;
  const beast::tcp_stream::executor_type executor_;  // the session's strand
  asio::steady_timer timer_;                          // stream heartbeat / wake-up
  std::chrono::steady_clock::time_point last_write_{};  // of the stream; heartbeats are due after it
  const bool counted_;                                // counts against max_connections
  std::string remote_addr_;

  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  // Instead of parser_ while a body streams to upload_path_ (Handler::BodyToFile).
  std::optional<http::request_parser<http::file_body>> file_parser_;
  std::string upload_path_;  // removed when the request ends, whatever the outcome
  std::string upload_dir_;   // where it is written (named when the disk is full)
  size_t linger_bytes_ = kLingerBytes;  // what LingerClose drops at most
  std::chrono::steady_clock::duration linger_time_ = kLingerTime;
  uint64_t limit_ = 0;       // the body limit of the current request
  http::response<http::string_body> res_;
  std::vector<char> scratch_;  // discarded input (lingering close, stream peer watch)
  size_t drained_ = 0;
  bool closed_ = false;
  bool first_ = true;
  bool keep_alive_ = false;
  bool head_ = false;
  unsigned version_ = 11;

  std::shared_ptr<StreamSource> source_;
  std::optional<http::response<http::empty_body>> stream_head_;
  std::optional<http::response_serializer<http::empty_body>> stream_sr_;
  StreamState stream_state_ = StreamState::kOpen;
  std::string chunk_;
  bool chunked_ = true;
  bool waiting_ = false;  // a heartbeat wait is armed; mirrors membership in Core::waiting
};

class BeastHttpServer final : public HttpServer {
 public:
  BeastHttpServer(HttpServerOptions options, Handler* handler)
      : core_(std::make_shared<Core>(std::move(options), handler)) {}
  ~BeastHttpServer() override { Stop(); }

  Result<uint16_t> Start() override {
    const auto& o = core_->options;
    std::string where = o.address.find(':') != std::string::npos
                            ? "[" + o.address + "]:" + std::to_string(o.port)
                            : o.address + ":" + std::to_string(o.port);
    auto fail = [&](const std::string& why) -> Status {
      acceptor_.reset();
      accept_timer_.reset();
      iocs_.clear();
      return Status(Code::kUnavailable, "unavailable", "cannot listen on " + where + ": " + why);
    };
    if (!iocs_.empty() || stopped_) return Status(Code::kInternal, "internal", "server already started");
    error_code ec;
    auto address = asio::ip::make_address(o.address, ec);
    if (ec) return fail("invalid address");
    int io_threads = std::max(1, o.io_threads);
    for (int i = 0; i < io_threads; ++i) iocs_.push_back(std::make_unique<asio::io_context>(1));
    acceptor_ = std::make_unique<tcp::acceptor>(asio::make_strand(*iocs_[0]));
    accept_timer_ = std::make_unique<asio::steady_timer>(acceptor_->get_executor());
    tcp::endpoint endpoint(address, o.port);
    // Asio opens and accepts sockets without close-on-exec: a build step started meanwhile
    // inherited the listening socket, kept it after a kill -9 of the server and the next server
    // could not bind ("Address already in use"). Opened here with SOCK_CLOEXEC, accepted with
    // accept4 (Accept below).
    int fd = ::socket(endpoint.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0) return fail(std::strerror(errno));
    acceptor_->assign(endpoint.protocol(), fd, ec);
    if (ec) {
      ::close(fd);
      return fail(ec.message());
    }
    protocol_ = endpoint.protocol();
    acceptor_->non_blocking(true, ec);
    if (ec) return fail(ec.message());
    acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
    if (ec) return fail(ec.message());
    acceptor_->bind(endpoint, ec);
    if (ec) return fail(ec.message());
    acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail(ec.message());
    uint16_t port = acceptor_->local_endpoint(ec).port();
    if (ec) return fail(ec.message());

    core_->blocking_pool =
        std::make_unique<asio::thread_pool>(static_cast<size_t>(std::max(1, o.blocking_threads)));
    core_->slow_pool =
        std::make_unique<asio::thread_pool>(static_cast<size_t>(std::max(1, o.slow_threads)));
    for (auto& ioc : iocs_) work_.push_back(asio::make_work_guard(*ioc));
    {
      std::lock_guard<std::mutex> l(life_mu_);
      io_alive_ = true;
    }
    Accept();
    for (int i = 0; i < io_threads; ++i) {
      threads_.emplace_back([this, i] { RunIo(*iocs_[i]); });
    }
    core_->log->info("msg=\"http server listening\" address={} port={}", o.address, port);
    return port;
  }

  void Stop() override {
    if (iocs_.empty() || stopped_) return;
    stopped_ = true;
    std::vector<std::shared_ptr<Session>> open;
    {
      std::lock_guard<std::mutex> l(core_->mu);
      core_->stopping = true;  // under mu: OnAccept registers no session after this
      for (auto& [p, w] : core_->sessions) {
        if (auto s = w.lock()) open.push_back(std::move(s));
      }
    }
    // Best effort graceful close; whatever has not run when the io_context stops is closed
    // when the io_context is destroyed below.
    asio::post(acceptor_->get_executor(), [this] {
      error_code ec;
      acceptor_->close(ec);
      accept_timer_->cancel();
    });
    for (auto& s : open) asio::post(s->executor(), [s] { s->Shutdown(); });
    open.clear();
    work_.clear();
    for (auto& ioc : iocs_) ioc->stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    core_->blocking_pool->join();  // running blocking handlers finish; queued ones answer 503
    core_->blocking_pool.reset();
    core_->slow_pool->join();
    core_->slow_pool.reset();
    {
      std::lock_guard<std::mutex> l(life_mu_);
      io_alive_ = false;
    }
    accept_timer_.reset();
    acceptor_.reset();
    iocs_.clear();  // destroys pending handlers, hence the sessions and their sockets
    std::lock_guard<std::mutex> l(core_->mu);
    core_->sessions.clear();
    core_->waiting.clear();
  }

  void WakeStreams() override {
    // life_mu_ is held until `targets` is released: a Session destroyed here must still have
    // its io_context.
    std::lock_guard<std::mutex> life(life_mu_);
    if (!io_alive_) return;
    std::vector<std::shared_ptr<Session>> targets;
    {
      std::lock_guard<std::mutex> l(core_->mu);
      ++core_->wake_epoch;
      for (auto& [p, w] : core_->waiting) {
        if (auto s = w.lock()) targets.push_back(std::move(s));
      }
    }
    for (auto& s : targets) asio::post(s->executor(), [s] { s->Wake(); });
    targets.clear();
  }

 private:
  void RunIo(asio::io_context& ioc) {
    for (;;) {
      try {
        ioc.run();
        return;
      } catch (const std::exception& e) {
        core_->log->error("msg=\"exception escaped an io handler\" error=\"{}\"", e.what());
      } catch (...) {
        core_->log->error("msg=\"exception escaped an io handler\"");
      }
    }
  }

  // Runs on the acceptor's strand. Waits for connections and takes them with accept4 and
  // SOCK_CLOEXEC (Asio's async_accept would not set it; see Start).
  void Accept() {
    acceptor_->async_wait(tcp::acceptor::wait_read, [this](error_code ec) { OnReadable(ec); });
  }

  void OnReadable(error_code ec) {
    if (ec == asio::error::operation_aborted || core_->stopping) return;
    while (!ec) {
      int fd = ::accept4(acceptor_->native_handle(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR || errno == ECONNABORTED) continue;
        ec = error_code(errno, boost::system::system_category());
        break;
      }
      if (out_of_fds_) {
        out_of_fds_ = false;
        core_->log->info("msg=\"descriptors are available again: accepting connections\"");
      }
      asio::io_context& target = *iocs_[next_ioc_++ % iocs_.size()];
      tcp::socket socket(asio::make_strand(target));
      socket.assign(protocol_, fd, ec);
      if (ec) {
        ::close(fd);
        break;
      }
      OnAccept(std::move(socket));
      if (core_->stopping) return;
    }
    if (ec == asio::error::no_descriptors || ec.value() == ENFILE) {
      // Out of descriptors: the connections waiting in the backlog would make the listener
      // ready again at once, forever. Take them with the spare descriptor and close them — the
      // client sees a closed connection instead of a hang — and log it once.
      if (!out_of_fds_) {
        out_of_fds_ = true;
        core_->log->warn("msg=\"out of file descriptors: new connections are closed at once until "
                         "some are free\" error=\"{}\"", ec.message());
      }
      if (spare_.AcceptAndClose(acceptor_->native_handle()) > 0) return Accept();
      // Nothing taken (the spare went to another thread): wait a moment, never spin.
      accept_timer_->expires_after(std::chrono::milliseconds(50));
      accept_timer_->async_wait([this](error_code ec2) {
        if (!ec2 && !core_->stopping) Accept();
      });
      return;
    }
    if (ec) {
      // Any other failure: back off instead of spinning.
      core_->log->warn("msg=\"accept failed\" error=\"{}\"", ec.message());
      accept_timer_->expires_after(std::chrono::milliseconds(100));
      accept_timer_->async_wait([this](error_code ec2) {
        if (!ec2 && !core_->stopping) Accept();
      });
      return;
    }
    Accept();
  }

  void OnAccept(tcp::socket socket) {
    bool counted = core_->connections.load() < std::max(1, core_->options.max_connections);
    if (counted) core_->connections.fetch_add(1);  // only this strand increments
    auto session = std::make_shared<Session>(std::move(socket), core_, counted);
    {
      std::lock_guard<std::mutex> l(core_->mu);
      if (core_->stopping) return;
      core_->sessions[session.get()] = session;
    }
    asio::post(session->executor(), [session] { session->Run(); });
  }

  const std::shared_ptr<Core> core_;
  // The members below are used by Start/Stop (one thread) and the io threads between them.
  std::vector<std::unique_ptr<asio::io_context>> iocs_;  // one per io thread
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  size_t next_ioc_ = 0;  // acceptor strand: where the next connection goes
  std::unique_ptr<tcp::acceptor> acceptor_;         // used on its strand once started
  tcp protocol_ = tcp::v4();                         // of the acceptor and its connections
  std::unique_ptr<asio::steady_timer> accept_timer_;  // accept back-off, acceptor strand
  SpareFd spare_;             // acceptor strand: taken to close connections when out of fds
  bool out_of_fds_ = false;   // acceptor strand: logged once per episode
  std::vector<std::thread> threads_;
  bool stopped_ = false;

  std::mutex life_mu_;     // orders WakeStreams against the destruction of the io_context
  bool io_alive_ = false;  // guarded by life_mu_
};

}  // namespace

std::unique_ptr<HttpServer> NewHttpServer(HttpServerOptions options, Handler* handler) {
  return std::make_unique<BeastHttpServer>(std::move(options), handler);
}

}  // namespace berth
