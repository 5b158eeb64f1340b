// The `berth server` command: runs the whole platform in this process (docs/server.md).
#pragma once

#include <CLI/CLI.hpp>

#include "app/config.h"

namespace berth {

// Adds the `server` subcommand to `app`; its callback starts the platform, returns when it
// stops (SIGTERM/SIGINT) and stores the process exit code in *exit_code.
void RegisterServerCommand(CLI::App& app, int* exit_code);

// Adds the hidden `static` subcommand (static_command.cc): serves a directory as a website;
// the start command detection gives static sites.
void RegisterStaticCommand(CLI::App& app, int* exit_code);

// Runs the platform with a validated config until SIGTERM/SIGINT. Returns the exit code.
// The calling thread must have SIGTERM and SIGINT blocked (so that every thread started here
// inherits the mask and the signal is taken with sigwait).
int RunServer(const ServerConfig& config);

}  // namespace berth
