// The REST API (docs/api.md) as an HTTP Handler: routing, authentication, authorisation,
// validation, audit and the change-feed watch, over a Store. The transport (api/http.h)
// delivers requests; ApiService never touches sockets.
// Thread-safety: Handle may be called concurrently from any number of threads.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/http.h"
#include "auth/secret_box.h"
#include "core/clock.h"
#include "core/usage_sampler.h"
#include "model/json_util.h"
#include "store/store.h"

namespace berth::api {

struct ApiOptions {
  int64_t token_ttl_hours = 720;   // lifetime of tokens made by login
  int login_attempts = 5;          // failed logins per user and address per minute
  // Streams (watch, log follow) check their caller's token and access again at least this
  // often, and at every store change; they end when access is gone.
  std::chrono::milliseconds stream_recheck{5000};
  std::string server_version = "0.1.0";
  std::string api_host;            // the API's listen host (the push hook calls back on it; "" = 127.0.0.1)
  std::string data_dir;            // the server's data directory (instance logs are read from it)
  std::string web_root;            // the built console served at "/" ("" = none)
  int64_t upload_limit = int64_t{1} << 30;  // bytes of an archive upload (streamed to DATA/tmp)
  int disk_warn_percent = 90;  // `doctor` warns when data_dir's disk is this full
  // The gateway (docs/gateway.md): default domains end in domain_suffix; addresses name the
  // gateway's ports; TCP routes listen on gateway_host.
  std::string domain_suffix = "localhost";
  std::string gateway_host = "127.0.0.1";
  int gateway_http_port = 8080;
  int gateway_https_port = 8443;
  int gateway_admin_port = 9090;  // the gateway's /metrics and /healthz (0 = not known)
  // Seals certificate keys at rest (DATA/secret.key); null = certificate uploads answer 503.
  std::shared_ptr<const auth::SecretBox> secrets;
  // Recent CPU samples of running instances (fed by the runtime): instance usage gets
  // cpu_percent, the cgroup's memory and the limits from it; null = /proc totals only.
  std::shared_ptr<UsageSampler> usage;
  // Issues the gateway a new token (DATA/gateway/token) and revokes its old ones; returns the
  // new token's id (app/gateway_process.h RotateGatewayCredential). Unset: 409 (no gateway).
  std::function<Result<std::string>(const std::string& actor)> rotate_gateway_credential;
  // Sources (docs/security.md "Sources"): directories sources on the server's disk must be
  // under (empty = platform admins only).
  std::vector<std::string> source_roots;
  // Detections (POST .../detect): the time limit of one git fetch, and how many one user may
  // run at once (more: 429 too_many_detections).
  int detect_timeout_s = 60;
  int detect_per_user = 2;
  // How builds and instances are isolated (docs/security.md), as `berth doctor` reports it:
  // {"enabled", "mode", "problem", "team_networks", "limits"}; null = not reported.
  Json sandbox;
  std::string build_path;  // the PATH build steps get ("" = the server's; doctor looks there)
  // {"used_bytes", "size_bytes"} of a team's disk (sandbox/team_disk.h); nullopt when it has
  // none (no sandbox, or not made yet). Null: not reported.
  std::function<std::optional<Json>(const std::string& team)> team_disk;
};

class ApiService final : public Handler {
 public:
  ApiService(Store& store, const Clock& clock, ApiOptions options);
  ~ApiService() override;

  HttpResponse Handle(const HttpRequest& request) override;
  bool IsBlocking(const HttpRequest& request) const override;
  bool IsSlow(const HttpRequest& request) const override;
  // Upload routes stream their body to DATA/tmp; the caller is authenticated and authorised
  // first, so nothing unauthorised is written.
  std::optional<BodyFile> BodyToFile(const HttpRequest& head) const override;

  // /readyz answers 503 until SetReady(true), and again after SetReady(false) (shutdown), and
  // while writes fail for lack of space (data_dir's disk full, or the store's last commit
  // failed so: Store::WriteHealth).
  void SetReady(bool ready);
  // The port the API was bound to: TCP rules may not take it (nor the gateway's ports).
  void SetApiPort(int port);
  // The OpenAPI 3 document describing every route.
  std::string OpenApiJson() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::api
