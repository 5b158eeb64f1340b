#include "cli/detail/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/http/file_body.hpp>

#include <cctype>
#include <charconv>

namespace berth::cli {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr std::string_view kUserAgent = "berth-cli";

bool IsHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_';
}

Status BadUrl(std::string_view url, std::string why) {
  return InvalidArgument("invalid server URL \"" + std::string(url) + "\": " + why +
                             " (expected http://HOST[:PORT], e.g. http://127.0.0.1:7070)",
                         "server");
}

// Runs the io_context until the pending operation completes.
void RunIo(net::io_context& ioc) {
  ioc.restart();
  ioc.run();
}

std::string Describe(const beast::error_code& ec, std::chrono::seconds timeout) {
  if (ec == beast::error::timeout) {
    return "no answer within " + std::to_string(timeout.count()) + "s";
  }
  std::string m = ec.message();
  if (!m.empty()) m[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(m[0])));
  return m;
}

Status Unreachable(const std::string& base, const beast::error_code& ec,
                   std::chrono::seconds timeout) {
  return Unavailable("cannot reach berth server at " + base + ": " + Describe(ec, timeout) +
                     " \u2014 is `berth server` running?");
}

Status Broken(const std::string& base, std::string_view what, const beast::error_code& ec,
              std::chrono::seconds timeout) {
  return Unavailable("berth server at " + base + ": " + std::string(what) + ": " +
                     Describe(ec, timeout));
}

// One connection carrying one request.
class Exchange {
 public:
  Exchange(const ServerUrl& url, const HttpClientOptions& options)
      : url_(url), base_(url.ToString()), options_(options) {}

  Status Connect() {
    tcp::resolver resolver(ioc_);
    beast::error_code ec;
    auto results = resolver.resolve(url_.host, std::to_string(url_.port), ec);
    if (ec) {
      return Unavailable("cannot reach berth server at " + base_ + ": cannot resolve host \"" +
                         url_.host + "\": " + ec.message());
    }
    stream_.expires_after(options_.connect_timeout);
    stream_.async_connect(results, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    RunIo(ioc_);
    if (ec) return Unreachable(base_, ec, options_.connect_timeout);
    return Status::Ok();
  }

  Status Send(std::string_view method, std::string_view path_and_query, std::string_view body,
              std::string_view token, std::string_view accept) {
    http::verb verb = http::string_to_verb(method);
    if (verb == http::verb::unknown) {
      return InvalidArgument("unknown HTTP method " + std::string(method));
    }
    std::string target = url_.base_path + std::string(path_and_query);
    if (target.empty() || target[0] != '/') target.insert(target.begin(), '/');
    http::request<http::string_body> req{verb, target, 11};
    std::string host = url_.host.find(':') != std::string::npos ? "[" + url_.host + "]"
                                                                 : url_.host;
    req.set(http::field::host, host + ":" + std::to_string(url_.port));
    req.set(http::field::user_agent, kUserAgent);
    req.set(http::field::accept, accept);
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + std::string(token));
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = std::string(body);
    }
    req.keep_alive(false);
    req.prepare_payload();
    beast::error_code ec;
    stream_.expires_after(options_.read_timeout);
    http::async_write(stream_, req, [&](beast::error_code e, size_t) { ec = e; });
    RunIo(ioc_);
    if (ec) return Broken(base_, "sending the request failed", ec, options_.read_timeout);
    return Status::Ok();
  }

  Status SendFile(std::string_view method, std::string_view path_and_query, const std::string& file,
                  std::string_view token, bool* write_failed) {
    http::verb verb = http::string_to_verb(method);
    if (verb == http::verb::unknown) return InvalidArgument("unknown HTTP method " + std::string(method));
    std::string target = url_.base_path + std::string(path_and_query);
    if (target.empty() || target[0] != '/') target.insert(target.begin(), '/');
    http::request<http::file_body> req{verb, target, 11};
    beast::error_code ec;
    req.body().open(file.c_str(), beast::file_mode::scan, ec);
    if (ec) return InvalidArgument("cannot read " + file + ": " + ec.message());
    std::string host = url_.host.find(':') != std::string::npos ? "[" + url_.host + "]" : url_.host;
    req.set(http::field::host, host + ":" + std::to_string(url_.port));
    req.set(http::field::user_agent, kUserAgent);
    req.set(http::field::accept, "application/json");
    req.set(http::field::content_type, "application/octet-stream");
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + std::string(token));
    req.keep_alive(false);
    req.prepare_payload();
    stream_.expires_after(std::max<std::chrono::seconds>(options_.read_timeout, std::chrono::minutes(15)));
    http::async_write(stream_, req, [&](beast::error_code e, size_t) { ec = e; });
    RunIo(ioc_);
    *write_failed = static_cast<bool>(ec);
    if (ec && ec != net::error::broken_pipe && ec != net::error::connection_reset) {
      return Broken(base_, "sending the upload failed", ec, options_.read_timeout);
    }
    return Status::Ok();
  }

  Result<Response> ReadWhole() {
    http::response_parser<http::string_body> parser;
    parser.body_limit(options_.body_limit);
    return ReadRest(parser);
  }

  Result<Response> ReadStream(const LineCallback& on_line) {
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);  // a stream is unbounded
    beast::error_code ec;
    stream_.expires_after(options_.read_timeout);
    http::async_read_header(stream_, buffer_, parser, [&](beast::error_code e, size_t) {
      ec = e;
    });
    RunIo(ioc_);
    if (ec) return Broken(base_, "reading the response failed", ec, options_.read_timeout);
    int status = static_cast<int>(parser.get().result_int());
    if (status < 200 || status > 299) {
      // An error answer: read it whole so the caller can show the API error.
      http::response_parser<http::string_body> whole{std::move(parser)};
      whole.body_limit(options_.body_limit);
      return ReadRest(whole);
    }
    Response response;
    FillHead(parser.get(), &response);
    std::string pending;
    char buf[8192];
    while (!parser.is_done()) {
      parser.get().body().data = buf;
      parser.get().body().size = sizeof buf;
      // read_some, not read: read() returns only when the whole message arrived or `buf` is
      // full, so a followed log would print nothing until 8 KiB came (and its deadline would
      // cover the whole stream instead of the gap between chunks).
      stream_.expires_after(options_.read_timeout);
      http::async_read_some(stream_, buffer_, parser,
                            [&](beast::error_code e, size_t) { ec = e; });
      RunIo(ioc_);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) return Broken(base_, "the stream broke", ec, options_.read_timeout);
      pending.append(buf, sizeof buf - parser.get().body().size);
      size_t start = 0;
      for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
        std::string_view line(pending.data() + start, nl - start);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (!on_line(line)) {
          Close();
          return response;
        }
      }
      pending.erase(0, start);
    }
    if (!pending.empty()) on_line(pending);
    Close();
    return response;
  }

 private:
  template <class Body>
  static void FillHead(const http::response<Body>& res, Response* out) {
    out->status = static_cast<int>(res.result_int());
    out->content_type = std::string(res[http::field::content_type]);
    out->retry_after = std::string(res[http::field::retry_after]);
  }

  Result<Response> ReadRest(http::response_parser<http::string_body>& parser) {
    beast::error_code ec;
    stream_.expires_after(options_.read_timeout);
    http::async_read(stream_, buffer_, parser, [&](beast::error_code e, size_t) { ec = e; });
    RunIo(ioc_);
    if (ec) return Broken(base_, "reading the response failed", ec, options_.read_timeout);
    Response response;
    FillHead(parser.get(), &response);
    response.body = std::move(parser.get().body());
    Close();
    return response;
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  ServerUrl url_;
  std::string base_;
  HttpClientOptions options_;
  net::io_context ioc_;
  beast::tcp_stream stream_{ioc_};
  beast::flat_buffer buffer_;
};

}  // namespace

std::string ServerUrl::ToString() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return "http://" + h + ":" + std::to_string(port) + base_path;
}

Result<ServerUrl> ParseServerUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.empty()) return BadUrl(url, "it is empty");
  auto sep = url.find("://");
  if (sep == std::string_view::npos) return BadUrl(url, "it has no scheme");
  std::string scheme(url.substr(0, sep));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme == "https") {
    return BadUrl(url, "https is not supported by the CLI yet; use http:// (e.g. over a tunnel)");
  }
  if (scheme != "http") return BadUrl(url, "the scheme must be http");
  std::string_view rest = url.substr(kScheme.size());
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return BadUrl(url, "it must not have a query or fragment");
  }
  if (rest.find('@') != std::string_view::npos) {
    return BadUrl(url, "it must not carry credentials");
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);

  ServerUrl out;
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return BadUrl(url, "unclosed '[' in the host");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return BadUrl(url, "junk after the IPv6 address");
      port_text = after.substr(1);
      if (port_text.empty()) return BadUrl(url, "empty port");
    }
    for (char c : out.host) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') {
        return BadUrl(url, "bad IPv6 address");
      }
    }
  } else {
    size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return BadUrl(url, "empty port");
    }
    for (char c : out.host) {
      if (!IsHostChar(c)) return BadUrl(url, "bad character in the host");
    }
  }
  if (out.host.empty()) return BadUrl(url, "it has no host");
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return BadUrl(url, "the port must be a number from 1 to 65535");
    }
    out.port = static_cast<uint16_t>(port);
  }
  out.base_path = std::string(path);
  return out;
}

Result<Response> Request(std::string_view method, std::string_view url_base,
                         std::string_view path_and_query, std::string_view body,
                         std::string_view token, const HttpClientOptions& options) {
  BERTH_ASSIGN_OR_RETURN(ServerUrl url, ParseServerUrl(url_base));
  Exchange x(url, options);
  BERTH_RETURN_IF_ERROR(x.Connect());
  BERTH_RETURN_IF_ERROR(x.Send(method, path_and_query, body, token, "application/json"));
  return x.ReadWhole();
}

Result<Response> UploadFile(std::string_view method, std::string_view url_base,
                            std::string_view path_and_query, const std::string& file_path,
                            std::string_view token, const HttpClientOptions& options) {
  BERTH_ASSIGN_OR_RETURN(ServerUrl url, ParseServerUrl(url_base));
  Exchange x(url, options);
  BERTH_RETURN_IF_ERROR(x.Connect());
  bool write_failed = false;
  BERTH_RETURN_IF_ERROR(x.SendFile(method, path_and_query, file_path, token, &write_failed));
  auto r = x.ReadWhole();
  if (!r.ok() && write_failed) {
    return Unavailable("the server closed the connection during the upload of " + file_path);
  }
  return r;
}

Result<Response> RequestStream(std::string_view method, std::string_view url_base,
                               std::string_view path_and_query, std::string_view body,
                               std::string_view token, const LineCallback& on_line,
                               const HttpClientOptions& options) {
  BERTH_ASSIGN_OR_RETURN(ServerUrl url, ParseServerUrl(url_base));
  Exchange x(url, options);
  BERTH_RETURN_IF_ERROR(x.Connect());
  BERTH_RETURN_IF_ERROR(
      x.Send(method, path_and_query, body, token, "application/x-ndjson, application/json"));
  return x.ReadStream(on_line);
}

}  // namespace berth::cli
