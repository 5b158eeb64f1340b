// The console: the built single-page app (web/dist) served from the web root at "/" on the API
// port. Requests no API route matched come here (Service::fallback); /api/... paths keep their
// 404 JSON. Hashed assets under /assets/ are cached for a year, index.html never without
// revalidation, and any other path that is not a file gets index.html (the app routes itself).
#include <fstream>
#include <sstream>
#include <system_error>

#include <sys/stat.h>

#include <regex>

#include "api/detail/service.h"
#include "api/errors.h"
#include "api/static_site.h"

namespace berth::api {
namespace {

namespace fs = std::filesystem;

constexpr uintmax_t kMaxFileBytes = 64u << 20;  // a console asset larger than this is a mistake

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

HttpResponse NotBuilt() {
  return ErrorResponse(Status(Code::kNotFound, "console_not_built",
                              "the console is not built: run make run (or npm ci && npm run build "
                              "in web/)"));
}

// Reads a regular file; nullopt when it is missing, not a regular file or unreadable.
std::optional<std::string> ReadFile(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_regular_file(p, ec) || ec) return std::nullopt;
  uintmax_t size = fs::file_size(p, ec);
  if (ec || size > kMaxFileBytes) return std::nullopt;
  std::ifstream f(p, std::ios::binary);
  if (!f) return std::nullopt;
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

HttpResponse FileResponse(std::string body, const std::string& type, const std::string& cache) {
  HttpResponse r;
  r.status = 200;
  r.content_type = type;
  r.body = std::move(body);
  r.headers.emplace_back("Cache-Control", cache);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return r;
}

}  // namespace

std::string ContentTypeFor(const std::string& path) {
  static const std::pair<const char*, const char*> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".webp", "image/webp"},
      {".ico", "image/x-icon"},
      {".woff", "font/woff"},
      {".woff2", "font/woff2"},
      {".ttf", "font/ttf"},
      {".txt", "text/plain; charset=utf-8"},
      {".wasm", "application/wasm"},
      {".webmanifest", "application/manifest+json"},
  };
  size_t slash = path.rfind('/');
  size_t dot = path.rfind('.');
  if (dot != std::string::npos && (slash == std::string::npos || dot > slash)) {
    std::string ext = path.substr(dot);
    for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const auto& [e, type] : kTypes) {
      if (ext == e) return type;
    }
  }
  return "application/octet-stream";
}

std::optional<HttpResponse> ServeStatic(const std::string& web_root, const HttpRequest& req) {
  const std::string& path = req.path;
  if (req.method != "GET" && req.method != "HEAD") return std::nullopt;
  if (path.empty() || path[0] != '/' || path == "/api" || StartsWith(path, "/api/")) {
    return std::nullopt;  // API paths keep route_not_found / method_not_allowed
  }
  std::error_code ec;
  if (web_root.empty()) return NotBuilt();
  fs::path root = fs::weakly_canonical(fs::absolute(web_root, ec), ec);
  if (ec || !fs::is_regular_file(root / "index.html", ec)) return NotBuilt();

  // No traversal: reject any ".." segment (the path is already percent-decoded), NUL bytes and
  // backslashes, then resolve symlinks and insist the result stays under the root.
  for (const std::string& seg : SplitPath(path)) {
    if (seg == ".." || seg == "." || seg.find('\0') != std::string::npos ||
        seg.find('\\') != std::string::npos) {
      return ErrorResponse(NotFound("no file " + path));
    }
  }
  std::string rel = path.substr(1);
  if (!rel.empty() && rel != "index.html") {
    fs::path resolved = fs::weakly_canonical(root / rel, ec);
    std::string root_prefix = root.string() + "/";
    if (!ec && StartsWith(resolved.string(), root_prefix)) {
      if (auto body = ReadFile(resolved)) {
        bool hashed = StartsWith(path, "/assets/");
        return FileResponse(std::move(*body), ContentTypeFor(resolved.string()),
                            hashed ? "public, max-age=31536000, immutable" : "no-cache");
      }
    } else if (!ec) {
      return ErrorResponse(NotFound("no file " + path));
    }
    // A missing asset is a 404 (serving HTML for a script only hides the error).
    if (StartsWith(path, "/assets/")) return ErrorResponse(NotFound("no file " + path));
  }
  // "/", "/index.html" and every client-side route of the app.
  auto index = ReadFile(root / "index.html");
  if (!index) return NotBuilt();
  return FileResponse(std::move(*index), "text/html; charset=utf-8", "no-cache");
}

namespace {

// A validator that changes whenever the file does (size and modification time), so a
// revalidation costs a stat and a 304, not the file.
std::string ETagOf(const fs::path& p) {
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) return "";
  return "\"" + std::to_string(st.st_size) + "-" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec) + "\"";
}

bool EtagMatches(const std::string& if_none_match, const std::string& etag) {
  if (etag.empty() || if_none_match.empty()) return false;
  if (if_none_match == "*") return true;
  size_t i = 0;
  while (i < if_none_match.size()) {
    size_t j = if_none_match.find(',', i);
    if (j == std::string::npos) j = if_none_match.size();
    std::string tag = if_none_match.substr(i, j - i);
    while (!tag.empty() && tag.front() == ' ') tag.erase(0, 1);
    while (!tag.empty() && tag.back() == ' ') tag.pop_back();
    if (tag.rfind("W/", 0) == 0) tag = tag.substr(2);
    if (tag == etag) return true;
    i = j + 1;
  }
  return false;
}

// Build tools put a content hash in the names of files that never change ("app.3f9a1c2b.js",
// "index-BvX0kLq1.css"): those may be cached for a year; anything else is revalidated.
bool LooksHashed(const std::string& path) {
  static const std::regex kHashed(R"([.-][A-Za-z0-9_]{8,}\.(js|mjs|css|woff2?|ttf|png|jpe?g|gif|svg|webp|avif|wasm|map)$)");
  return path.rfind("/assets/", 0) == 0 || std::regex_search(path, kHashed);
}

HttpResponse SiteFile(const fs::path& file, const HttpRequest& req, int status) {
  HttpResponse r;
  std::string etag = ETagOf(file);
  std::string type = ContentTypeFor(file.string());
  bool html = type.rfind("text/html", 0) == 0;
  std::string cache = !html && LooksHashed(req.path) ? "public, max-age=31536000, immutable" : "no-cache";
  if (status == 200 && EtagMatches(req.Header("if-none-match"), etag)) {
    r.status = 304;
    r.content_type.clear();
    r.headers = {{"ETag", etag}, {"Cache-Control", cache}};
    return r;
  }
  auto body = ReadFile(file);
  if (!body) {
    return ErrorResponse(Status(Code::kPayloadTooLarge, "file_too_large",
                                "the file is missing or larger than berth static serves (64 MiB)"));
  }
  r = FileResponse(std::move(*body), type, cache);
  r.status = status;
  if (!etag.empty() && status == 200) r.headers.emplace_back("ETag", etag);
  return r;
}

HttpResponse PlainError(int status, const std::string& text) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = text + "\n";
  return r;
}

}  // namespace

HttpResponse ServeSite(const std::string& root_dir, const HttpRequest& req, bool spa) {
  if (req.method != "GET" && req.method != "HEAD") {
    HttpResponse r = PlainError(405, "405 method not allowed");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  const std::string& path = req.path;
  std::error_code ec;
  fs::path root = fs::weakly_canonical(fs::absolute(root_dir, ec), ec);
  if (ec || path.empty() || path[0] != '/') return PlainError(400, "400 bad request");
  for (const std::string& seg : SplitPath(path)) {
    if (seg == ".." || seg == "." || seg.find('\0') != std::string::npos ||
        seg.find('\\') != std::string::npos) {
      return PlainError(404, "404 not found");
    }
  }
  const std::string root_prefix = root.string() + "/";
  auto inside = [&](const fs::path& p) { return StartsWith(p.string(), root_prefix); };
  fs::path want = fs::weakly_canonical(root / path.substr(1), ec);
  if (!ec && (want == root || inside(want))) {
    if (fs::is_directory(want, ec)) {
      fs::path index = fs::weakly_canonical(want / "index.html", ec);
      if (!ec && inside(index) && fs::is_regular_file(index, ec)) return SiteFile(index, req, 200);
    } else if (fs::is_regular_file(want, ec)) {
      return SiteFile(want, req, 200);
    }
  }
  // Not a file. A single-page app routes itself: paths that do not name a file type get
  // index.html; a missing asset stays a 404 (HTML for a script only hides the error).
  std::string last = SplitPath(path).empty() ? "" : SplitPath(path).back();
  bool asset_like = last.find('.') != std::string::npos;
  if (spa && !asset_like && fs::is_regular_file(root / "index.html", ec)) {
    return SiteFile(root / "index.html", req, 200);
  }
  if (fs::is_regular_file(root / "404.html", ec)) return SiteFile(root / "404.html", req, 404);
  return PlainError(404, "404 not found");
}

namespace {

class StaticSiteHandler final : public Handler {
 public:
  StaticSiteHandler(std::string root, bool spa) : root_(std::move(root)), spa_(spa) {}
  HttpResponse Handle(const HttpRequest& request) override { return ServeSite(root_, request, spa_); }
  bool IsBlocking(const HttpRequest&) const override { return false; }

 private:
  const std::string root_;
  const bool spa_;
};

}  // namespace

std::unique_ptr<Handler> NewStaticSiteHandler(std::string root, bool spa) {
  return std::make_unique<StaticSiteHandler>(std::move(root), spa);
}

void RegisterStaticFiles(Service& s) {
  s.fallback = [&s](const HttpRequest& req) { return ServeStatic(s.options.web_root, req); };
}

}  // namespace berth::api
