#include "app/config.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "builder/source_policy.h"
#include "core/log.h"
#include "model/model.h"

namespace berth {
namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

Status ParseInt(const std::string& value, const std::string& source, int64_t min, int64_t max,
                int64_t* out) {
  bool ok = !value.empty() && value.size() <= 18 &&
            value.find_first_not_of("0123456789") == std::string::npos;
  int64_t v = ok ? std::stoll(value) : 0;
  if (!ok || v < min || v > max) {
    return InvalidArgument(source + " must be a number from " + std::to_string(min) + " to " +
                               std::to_string(max) + ", got \"" + value + "\"",
                           source);
  }
  *out = v;
  return Status::Ok();
}

}  // namespace

const std::vector<SettingInfo>& Settings() {
  static const std::vector<SettingInfo> kSettings = {
      {"data", "BERTH_DATA", "data directory"},
      {"api", "BERTH_API", "REST API and console address (ADDR:PORT, port 0 = any free port)"},
      {"http", "BERTH_HTTP", "gateway HTTP address"},
      {"https", "BERTH_HTTPS", "gateway HTTPS address"},
      {"store", "BERTH_STORE", "store URL: sqlite:PATH (default sqlite:DATA/berth.db)"},
      {"log_level", "BERTH_LOG_LEVEL", "trace, debug, info, warn, error or off"},
      {"admin_user", "BERTH_ADMIN_USER", "administrator created on first start"},
      {"body_limit", "BERTH_BODY_LIMIT", "largest API request body in bytes"},
      {"token_ttl_hours", "BERTH_TOKEN_TTL_HOURS", "lifetime of login tokens in hours"},
      {"login_attempts", "BERTH_LOGIN_ATTEMPTS", "failed logins per user and address per minute"},
      {"sync", "BERTH_SYNC", "full (fsync each commit) or normal"},
      {"build_concurrency", "BERTH_BUILD_CONCURRENCY", "builds run at once; the rest wait in a queue"},
      {"build_timeout_s", "BERTH_BUILD_TIMEOUT_S", "time limit of one build in seconds"},
      {"build_versions_kept", "BERTH_BUILD_VERSIONS_KEPT", "ready versions kept per component"},
      {"build_memory_mb", "BERTH_BUILD_MEMORY_MB", "memory limit of one build in MiB (a cgroup, else RLIMIT_AS); 0 = none"},
      {"upload_limit", "BERTH_UPLOAD_LIMIT", "largest source archive upload in bytes (streamed to DATA/tmp)"},
      {"disk_warn_percent", "BERTH_DISK_WARN_PERCENT", "warn (berth doctor, a DiskNearlyFull event at each build) when the data directory's disk is this many percent full (1-100)"},
      {"web_root", "BERTH_WEB_ROOT", "directory of the built console served at / (default: web/dist of the repository)"},
      {"gateway", "BERTH_GATEWAY", "on: run the gateway as its own process on --http/--https; off: no gateway"},
      {"gateway_admin", "BERTH_GATEWAY_ADMIN",
       "the gateway's admin address (/metrics, /healthz); auto: a free loopback port recorded in DATA/gateway/admin-address"},
      {"gateway_io_threads", "BERTH_GATEWAY_IO_THREADS", "threads of the gateway serving connections (1-256)"},
      {"gateway_pin_io_threads", "BERTH_GATEWAY_PIN_IO_THREADS", "auto: pin the gateway's io threads one per CPU when there is one per CPU; on; off"},
      {"domain_suffix", "BERTH_DOMAIN_SUFFIX", "default domains are <component>.<app>.<suffix> (default localhost)"},
      {"stream_recheck_s", "BERTH_STREAM_RECHECK_S", "streams (watch, log follow) re-check the caller's token and role this often, in seconds (1-3600)"},
      {"token_gc_interval_s", "BERTH_TOKEN_GC_INTERVAL_S", "expired API tokens are deleted this often, in seconds (1-86400)"},
      {"source_roots", "BERTH_SOURCE_ROOTS", "comma-separated directories sources on this machine (dir, package, local git or archive paths) must be under; none = platform admins only"},
      {"detect_timeout_s", "BERTH_DETECT_TIMEOUT_S", "time limit of one detection's git fetch in seconds (1-3600)"},
      {"detect_per_user", "BERTH_DETECT_PER_USER", "detections one user may run at once (1-100); more get 429"},
      {"detect_threads", "BERTH_DETECT_THREADS", "threads running detections (1-256), apart from the password-hashing pool"},
      {"max_connections", "BERTH_MAX_CONNECTIONS", "API connections open at once (16-1000000); more get 503"},
      {"gateway_max_connections", "BERTH_GATEWAY_MAX_CONNECTIONS", "client connections the gateway holds at once (16-1000000)"},
      {"sandbox", "BERTH_SANDBOX", "auto: builds and instances run sandboxed when the machine can (builds are refused when it cannot); on: refuse to start without a sandbox; off: no sandbox (only for trusted code)"},
      {"sandbox_memory_mb", "BERTH_SANDBOX_MEMORY_MB", "memory limit in MiB of sandboxed instances that set none"},
      {"sandbox_pids", "BERTH_SANDBOX_PIDS", "processes and threads per sandboxed instance"},
      {"sandbox_tmp_mb", "BERTH_SANDBOX_TMP_MB", "size in MiB of an instance's private /tmp (memory)"},
      {"sandbox_app_mb", "BERTH_SANDBOX_APP_MB", "size in MiB of what an instance may write over its /app (memory; gone at restart)"},
      {"build_pids", "BERTH_BUILD_PIDS", "processes and threads per sandboxed build"},
      {"team_disk_mb", "BERTH_TEAM_DISK_MB", "size in MiB of a team's disk (builds, caches, volumes, artifacts) unless its quota sets disk_mb"},
      {"sandbox_paths", "BERTH_SANDBOX_PATHS", "more host directories shown read-only in sandboxes (comma-separated absolute paths, e.g. a toolchain in /srv/jdk)"},
  };
  return kSettings;
}

std::string DefaultWebRoot() {
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    std::filesystem::path dist = exe.parent_path() / ".." / ".." / "web" / "dist";
    if (std::filesystem::is_directory(dist.parent_path(), ec)) {
      return std::filesystem::weakly_canonical(dist, ec).string();
    }
  }
  return "./web/dist";
}

Result<HostPort> ParseHostPort(const std::string& value, const std::string& setting) {
  size_t colon = value.rfind(':');
  auto bad = [&](const std::string& why) {
    return InvalidArgument(setting + " \"" + value + "\" is not ADDRESS:PORT: " + why, setting);
  };
  if (colon == std::string::npos || colon == 0) return bad("expected e.g. 127.0.0.1:7070");
  HostPort hp;
  hp.host = value.substr(0, colon);
  if (hp.host.size() > 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  std::string port = value.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535) {
    return bad("the port must be a number from 0 to 65535");
  }
  hp.port = static_cast<uint16_t>(std::stoi(port));
  return hp;
}

Status ApplySetting(const std::string& key, const std::string& value, const std::string& source,
                    ServerConfig* c) {
  if (key == "data") {
    if (value.empty()) return InvalidArgument(source + " must not be empty", source);
    c->data_dir = value;
  } else if (key == "api") {
    c->api = value;
  } else if (key == "http") {
    c->http = value;
  } else if (key == "https") {
    c->https = value;
  } else if (key == "store") {
    c->store = value;
  } else if (key == "log_level") {
    c->log_level = value;
  } else if (key == "admin_user") {
    c->admin_user = value;
  } else if (key == "body_limit") {
    return ParseInt(value, source, 1024, int64_t{1} << 30, &c->body_limit);
  } else if (key == "token_ttl_hours") {
    return ParseInt(value, source, 1, 24 * 365 * 10, &c->token_ttl_hours);
  } else if (key == "login_attempts") {
    return ParseInt(value, source, 1, 100000, &c->login_attempts);
  } else if (key == "build_concurrency") {
    return ParseInt(value, source, 1, 64, &c->build_concurrency);
  } else if (key == "build_timeout_s") {
    return ParseInt(value, source, 10, 86400, &c->build_timeout_s);
  } else if (key == "build_versions_kept") {
    return ParseInt(value, source, 1, 1000, &c->build_versions_kept);
  } else if (key == "build_memory_mb") {
    return ParseInt(value, source, 0, int64_t{1} << 20, &c->build_memory_mb);
  } else if (key == "upload_limit") {
    return ParseInt(value, source, 1024, int64_t{1} << 36, &c->upload_limit);
  } else if (key == "disk_warn_percent") {
    return ParseInt(value, source, 1, 100, &c->disk_warn_percent);
  } else if (key == "web_root") {
    c->web_root = value;
  } else if (key == "gateway") {
    if (value != "on" && value != "off") {
      return InvalidArgument(source + " must be on or off, got \"" + value + "\"", source);
    }
    c->gateway = value == "on";
  } else if (key == "gateway_admin") {
    c->gateway_admin = value;
  } else if (key == "gateway_io_threads") {
    return ParseInt(value, source, 1, 256, &c->gateway_io_threads);
  } else if (key == "gateway_pin_io_threads") {
    if (value != "auto" && value != "on" && value != "off") {
      return InvalidArgument(source + " must be auto, on or off, got \"" + value + "\"", source);
    }
    c->gateway_pin_io_threads = value;
  } else if (key == "domain_suffix") {
    std::string suffix = value;
    Status s = model::ValidateDomain(&suffix, source);
    if (!s.ok() || suffix.front() == '*') {
      return InvalidArgument(source + " must be a host name such as localhost or apps.example.com, "
                                 "got \"" + value + "\"",
                             source);
    }
    c->domain_suffix = suffix;
  } else if (key == "stream_recheck_s") {
    return ParseInt(value, source, 1, 3600, &c->stream_recheck_s);
  } else if (key == "token_gc_interval_s") {
    return ParseInt(value, source, 1, 86400, &c->token_gc_interval_s);
  } else if (key == "source_roots") {
    c->source_roots = value;  // checked by Validate (the data directory may come later)
  } else if (key == "detect_timeout_s") {
    return ParseInt(value, source, 1, 3600, &c->detect_timeout_s);
  } else if (key == "detect_per_user") {
    return ParseInt(value, source, 1, 100, &c->detect_per_user);
  } else if (key == "detect_threads") {
    return ParseInt(value, source, 1, 256, &c->detect_threads);
  } else if (key == "max_connections") {
    return ParseInt(value, source, 16, 1000000, &c->max_connections);
  } else if (key == "gateway_max_connections") {
    return ParseInt(value, source, 16, 1000000, &c->gateway_max_connections);
  } else if (key == "sandbox") {
    if (value != "auto" && value != "on" && value != "off") {
      return InvalidArgument(source + " must be auto, on or off, got \"" + value + "\"", source);
    }
    c->sandbox = value;
  } else if (key == "sandbox_memory_mb") {
    return ParseInt(value, source, 16, int64_t{1} << 20, &c->sandbox_memory_mb);
  } else if (key == "sandbox_pids") {
    return ParseInt(value, source, 16, 1 << 22, &c->sandbox_pids);
  } else if (key == "sandbox_tmp_mb") {
    return ParseInt(value, source, 1, int64_t{1} << 20, &c->sandbox_tmp_mb);
  } else if (key == "sandbox_app_mb") {
    return ParseInt(value, source, 1, int64_t{1} << 20, &c->sandbox_app_mb);
  } else if (key == "team_disk_mb") {
    return ParseInt(value, source, 64, int64_t{1} << 30, &c->team_disk_mb);
  } else if (key == "build_pids") {
    return ParseInt(value, source, 16, 1 << 22, &c->build_pids);
  } else if (key == "sandbox_paths") {
    c->sandbox_paths.clear();
    std::istringstream in(value);
    std::string p;
    while (std::getline(in, p, ',')) {
      p = Trim(p);
      if (p.empty()) continue;
      bool dotdot = false;
      for (const auto& part : std::filesystem::path(p)) dotdot |= part == "..";
      if (p[0] != '/' || p == "/" || dotdot) {
        return InvalidArgument(source + " takes absolute directories other than /, got \"" + p + "\"", source);
      }
      c->sandbox_paths.push_back(p);
    }
  } else if (key == "sync") {
    if (value != "full" && value != "normal") {
      return InvalidArgument(source + " must be full or normal, got \"" + value + "\"", source);
    }
    c->sync = value;
  } else {
    return InvalidArgument("unknown setting \"" + key + "\" in " + source, source);
  }
  return Status::Ok();
}

Status ApplyConfigText(const std::string& text, const std::string& file_name, ServerConfig* c) {
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    line = Trim(line);
    if (line.empty()) continue;
    size_t eq = line.find('=');
    std::string where = file_name + ":" + std::to_string(n);
    if (eq == std::string::npos) {
      return InvalidArgument(where + ": expected \"key = value\", got \"" + line + "\"", where);
    }
    std::string key = Trim(line.substr(0, eq));
    std::string value = Trim(line.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    bool known = false;
    for (const SettingInfo& s : Settings()) known |= key == s.key;
    if (!known) return InvalidArgument(where + ": unknown setting \"" + key + "\"", where);
    BERTH_RETURN_IF_ERROR(ApplySetting(key, value, where + " (" + key + ")", c));
  }
  return Status::Ok();
}

Status ApplyConfigFile(const std::string& path, ServerConfig* c) {
  std::ifstream f(path);
  if (!f) return InvalidArgument("cannot read config file " + path, "config");
  std::stringstream ss;
  ss << f.rdbuf();
  return ApplyConfigText(ss.str(), path, c);
}

Status ApplyEnvironment(const std::function<const char*(const char*)>& getenv, ServerConfig* c) {
  for (const SettingInfo& s : Settings()) {
    const char* v = getenv(s.env);
    if (v != nullptr && *v != '\0') BERTH_RETURN_IF_ERROR(ApplySetting(s.key, v, s.env, c));
  }
  return Status::Ok();
}

Status Validate(ServerConfig* c) {
  BERTH_ASSIGN_OR_RETURN(c->api_addr, ParseHostPort(c->api, "api"));
  BERTH_ASSIGN_OR_RETURN(c->http_addr, ParseHostPort(c->http, "http"));
  BERTH_ASSIGN_OR_RETURN(c->https_addr, ParseHostPort(c->https, "https"));
  if (c->gateway_admin == "auto") {
    c->gateway_admin_addr = HostPort{"127.0.0.1", 0};  // resolved at start
  } else {
    BERTH_ASSIGN_OR_RETURN(c->gateway_admin_addr,
                           ParseHostPort(c->gateway_admin, "gateway_admin"));
  }
  std::string level = c->log_level;
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
  bool level_ok = false;
  for (const char* l : kLevels) level_ok |= level == l;
  if (!level_ok) {
    return InvalidArgument("log_level must be trace, debug, info, warn, error or off, got \"" +
                               level + "\"",
                           "log_level");
  }
  if (c->store.empty()) {
    c->sqlite_path = c->data_dir + "/berth.db";
  } else if (c->store.rfind("sqlite:", 0) == 0 && c->store.size() > 7) {
    c->sqlite_path = c->store.substr(7);
  } else if (c->store.rfind("postgres://", 0) == 0 || c->store.rfind("postgresql://", 0) == 0) {
    return InvalidArgument("store: the PostgreSQL engine is not part of this build yet; use "
                           "sqlite:PATH",
                           "store");
  } else {
    return InvalidArgument("store \"" + c->store + "\" is not sqlite:PATH", "store");
  }
  if (c->admin_user.empty()) return InvalidArgument("admin_user must not be empty", "admin_user");
  if (model::ReservedName(c->admin_user)) {
    return InvalidArgument("admin_user \"" + c->admin_user +
                               "\" is reserved for berth's own service accounts",
                           "admin_user");
  }
  BERTH_ASSIGN_OR_RETURN(c->source_root_dirs,
                         builder::ParseSourceRoots(c->source_roots, c->data_dir, "source_roots"));
  return Status::Ok();
}

}  // namespace berth
