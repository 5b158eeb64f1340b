// Pure parsing of the CLI's structured flags (--port, --env, --admin true|false) and the
// translation of component flags into API request bodies. No I/O; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/output.h"
#include "core/status.h"

namespace berth::cli {

// --port PORT[/PROTOCOL][:VISIBILITY]: "8080/http" (inner and outer), "5432/tcp:inner"
// (inner only), "80" (http, inner and outer). PROTOCOL ∈ http|tcp|udp|grpc; VISIBILITY ∈
// inner|outer|both|inner,outer.
struct PortSpec {
  int port = 0;
  std::string protocol = "http";
  bool inner = true;
  bool outer = true;
};
Result<PortSpec> ParsePortSpec(std::string_view spec);
// {"port","protocol","inner","outer"} as in docs/api.md.
Json PortSpecToJson(const PortSpec& spec);
// The inverse for display: {"port":5432,"protocol":"tcp","inner":true,"outer":false} →
// "5432/tcp:inner"; both visible → "8080/http"; neither → "8080/http:none".
std::string FormatPort(const Json& port);

// --env KEY=VALUE. With allow_remove, "KEY=" means "remove KEY" (value is nullopt);
// otherwise "KEY=" sets the empty string.
struct EnvAssignment {
  std::string key;
  std::optional<std::string> value;
};
Result<EnvAssignment> ParseEnvAssignment(std::string_view text, bool allow_remove);

// "true"/"false" (also yes/no, 1/0) for flags such as --admin true.
Result<bool> ParseBoolFlag(std::string_view text, std::string_view flag);

// A duration flag (--idle-timeout 30s) in milliseconds: a whole number with a unit, "ms", "s",
// "m" or "h" ("1500ms", "30s", "5m", "1h"); a bare number is seconds. Nothing else (no
// fractions, signs, spaces or compound "1h30m"); at most 365 days.
Result<int64_t> ParseDurationMs(std::string_view text, std::string_view flag);

// Percent-encodes one URL path segment or query value (RFC 3986 unreserved kept).
std::string EncodeComponent(std::string_view text);

// The component flags of `component create` / `component set`; unset optionals were not given.
struct ComponentFlags {
  std::optional<std::string> kind, schedule;
  std::optional<std::string> source_dir, git_url, git_ref, archive;
  std::optional<std::string> build_command, start_command, subdir;
  std::optional<std::vector<std::string>> ports, env;
  std::optional<int> replicas, memory_mb, cpu_millis;
  // Rolling update: a count ("1") or a percentage ("25%"); stop grace in seconds.
  std::optional<std::string> max_surge, max_unavailable;
  std::optional<int> grace_period_s;
  std::optional<std::vector<std::string>> connection_env;  // KEY=VALUE, like env
  // Job and cronjob settings (the component's `job` object).
  std::optional<int> retries, job_timeout_s, history_limit;
  std::optional<std::string> concurrency_policy, suspend;  // suspend: "true" | "false"
};

// Builds the POST body (patch = false, includes `name`) or the JSON merge patch for PATCH
// (patch = true: only the given fields; `--env K=` → "K": null; ports replace the list; a new
// source clears the other source fields). Relative --source/--archive paths are made absolute
// against `cwd` because the server resolves them, not the shell. Errors are usage errors
// (invalid_argument naming the flag in `field`).
Result<Json> BuildComponentBody(const std::string& name, const ComponentFlags& flags, bool patch,
                                const std::string& cwd);

}  // namespace berth::cli
