// `berth shim --dir RUN_DIR`: the per-instance supervisor (hidden subcommand of the one
// binary). The server starts it detached (its own session, reparented away from the server),
// so it survives the server's restart or kill -9. It:
//   - reads RUN_DIR/spec.json (detail/shim_files.h), puts itself in the instance's cgroups
//     when the spec asks for limits,
//   - starts `/bin/sh -c <command>` in the working dir with exactly the spec's env, as the
//     leader of its own process group,
//   - writes the app's stdout/stderr with timestamps to the instance log, rotated by size,
//   - on SIGTERM forwards SIGTERM to the app's process group, waits grace_s, then SIGKILLs,
//   - when the app ends, kills what is left of its process group, records the exit (code,
//     signal, OOM) atomically in RUN_DIR/state.json and exits.
// The shim never restarts the app: restarts are the server's decision (back-off, events).
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace berth::runtime {

// Adds the hidden `shim` subcommand; its exit status goes to *exit_code.
void RegisterShimCommand(CLI::App& app, int* exit_code);

// Runs the shim for `run_dir` until the app has ended. Returns the shim's exit status.
int RunShim(const std::string& run_dir);

}  // namespace berth::runtime
