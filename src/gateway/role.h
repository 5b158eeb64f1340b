// `berth gateway`: the gateway role (docs/gateway.md "Role"). Runs the data plane and feeds
// it snapshots from one of two sources:
//   - control mode (--control URL or --control-file FILE): fetches the control plane's
//     snapshot, follows its change feed, and persists every snapshot it applied (encrypted)
//     in --state DIR, so that after a restart it serves the last good one at once, also
//     while the control plane is down;
//   - static mode (--snapshot FILE): serves a snapshot file and reloads it on SIGHUP (the
//     benchmark, or a gateway run on its own).
// An invalid snapshot is refused with a log line; the previous one keeps serving.
// SIGTERM/SIGINT stop it: listeners close, in-flight exchanges get a few seconds to finish.
//
// Thread-safety: RunGateway owns the process's signals; call it once, from the main thread.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "core/status.h"
#include "gateway/gateway.h"

namespace berth::gateway {

struct RoleOptions {
  std::string control;        // the control plane's API URL
  std::string control_file;   // or a JSON file whose "api" field is that URL (DATA/server.json)
  std::string token_file;     // the bearer token for the control plane
  std::string state_dir;      // required in control mode
  std::string snapshot_file;  // static mode
  Options data_plane;
  std::string pin_io_threads = "auto";  // auto|on|off → data_plane.pin_io_threads
  std::string log_level = "info";
  int drain_ms = 5000;
};

// Exactly one source; control mode needs a state directory. Errors name the flag.
Status ValidateRoleOptions(const RoleOptions& options);

// Runs until SIGTERM/SIGINT. Returns the process exit status (1: could not start).
int RunGateway(const RoleOptions& options);

// Adds the `gateway` subcommand; its exit status goes to *exit_code.
void RegisterGatewayCommand(CLI::App& app, int* exit_code);

}  // namespace berth::gateway
