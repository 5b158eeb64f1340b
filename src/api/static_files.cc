// The console: the built single-page app (web/dist) served from the web root at "/" on the API
// port. Requests no API route matched come here (Service::fallback); /api/... paths keep their
// 404 JSON. Hashed assets under /assets/ are cached for a year, index.html never without
// revalidation, and any other path that is not a file gets index.html (the app routes itself).
#include <fstream>
#include <sstream>
#include <system_error>

#include "api/detail/service.h"
#include "api/errors.h"

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

void RegisterStaticFiles(Service& s) {
  s.fallback = [&s](const HttpRequest& req) { return ServeStatic(s.options.web_root, req); };
}

}  // namespace berth::api
