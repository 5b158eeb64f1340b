// Settings of `berth server` (docs/server.md): a typed struct with its defaults, filled in
// layers — config file, then BERTH_* environment variables, then command-line flags — through
// one function per setting name, and validated once before anything starts.
// Thread-safety: plain values; build on one thread at start-up.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace berth {

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

struct ServerConfig {
  std::string config_file;
  std::string data_dir = "./data";
  std::string api = "127.0.0.1:7070";
  std::string http = "127.0.0.1:8080";
  std::string https = "127.0.0.1:8443";
  std::string store;  // "" = sqlite:<data_dir>/berth.db
  std::string log_level = "info";
  std::string admin_user = "admin";
  int64_t body_limit = 1 << 20;
  int64_t token_ttl_hours = 720;
  int64_t login_attempts = 5;
  std::string sync = "full";  // full | normal
  int64_t build_concurrency = 2;       // builds at once (the rest queue)
  int64_t build_timeout_s = 1800;      // time limit of one build
  int64_t build_versions_kept = 10;    // ready versions kept per component
  int64_t build_memory_mb = 4096;      // memory limit of one build (0 = none)
  int64_t upload_limit = int64_t{1} << 30;  // largest archive upload in bytes
  int64_t disk_warn_percent = 90;  // warn (doctor, events) when the data dir's disk is this full
  std::string web_root;  // the built console; "" = DefaultWebRoot()
  bool gateway = true;   // run `berth gateway` next to the server (on | off)
  // The gateway's /metrics and /healthz. "auto": a free loopback port, recorded in
  // DATA/gateway/admin-address and kept across restarts (ResolveAutoGatewayAdmin), so several
  // servers (data directories) share a machine without agreeing on ports.
  std::string gateway_admin = "auto";
  int64_t gateway_io_threads = 2;                // `berth gateway --io-threads`
  std::string gateway_pin_io_threads = "auto";   // `berth gateway --pin-io-threads`
  std::string domain_suffix = "localhost";  // default domains: <component>.<app>.<suffix>
  int64_t stream_recheck_s = 5;      // streams re-check their caller's access this often
  int64_t token_gc_interval_s = 300; // expired tokens are deleted this often
  // Directories sources on this machine may come from (comma-separated; docs/security.md
  // "Sources"); "" = none: only platform admins may use such sources.
  std::string source_roots;
  int64_t detect_timeout_s = 60;  // one detection's git fetch
  int64_t detect_per_user = 2;    // detections one user may run at once
  int64_t detect_threads = 8;     // the pool running detections
  int64_t max_connections = 10000;          // API connections at once
  int64_t gateway_max_connections = 10000;  // `berth gateway --max-connections`
  // docs/security.md: auto = sandbox builds and instances when the machine can, and refuse
  // builds when it cannot; on = refuse to start without it; off = no sandbox (trusted code only).
  std::string sandbox = "auto";
  int64_t sandbox_memory_mb = 1024;  // memory limit of instances that set none
  int64_t sandbox_pids = 1024;       // tasks per instance
  int64_t sandbox_tmp_mb = 64;       // an instance's private /tmp (counted as memory)
  int64_t sandbox_app_mb = 512;      // the writable layer of an instance's /app (memory)
  int64_t build_pids = 4096;         // tasks per build
  int64_t team_disk_mb = 10240;      // a team's disk unless its quota sets disk_mb
  std::vector<std::string> sandbox_paths;  // more host directories shown read-only

  // Derived by Validate().
  HostPort api_addr;
  HostPort http_addr;
  HostPort https_addr;
  HostPort gateway_admin_addr;  // port 0 with "auto" until the server resolves it
  std::string sqlite_path;
  std::vector<std::string> source_root_dirs;  // source_roots, resolved
};

struct SettingInfo {
  const char* key;    // config-file key, also the flag name with '_' → '-'
  const char* env;    // environment variable
  const char* help;
};
// Every setting, in documentation order.
const std::vector<SettingInfo>& Settings();

// Sets one setting by its config key; errors name the setting and the source ("BERTH_API",
// "--api", "berth.conf:3").
Status ApplySetting(const std::string& key, const std::string& value, const std::string& source,
                    ServerConfig* config);
// "key = value" lines, '#' comments; unknown keys are errors.
Status ApplyConfigText(const std::string& text, const std::string& file_name, ServerConfig* config);
Status ApplyConfigFile(const std::string& path, ServerConfig* config);
// Reads every BERTH_* variable of Settings() through `getenv`.
Status ApplyEnvironment(const std::function<const char*(const char*)>& getenv,
                        ServerConfig* config);
// Checks every value and fills the derived fields.
Status Validate(ServerConfig* config);

// web/dist of the repository the running binary was built in (<exe>/../../web/dist, as for
// build/release/berth) when it exists, else ./web/dist.
std::string DefaultWebRoot();

Result<HostPort> ParseHostPort(const std::string& value, const std::string& setting);

}  // namespace berth
