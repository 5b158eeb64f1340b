// The `berth` client commands (everything except `berth server`), as specified in
// docs/cli.md: each verb turns its flags into one REST call (docs/api.md) and prints a table,
// "key: value" lines or, with -o json, the API's JSON.
//
// Usage from main:
//   CLI::App app{"berth"};
//   int exit_code = 0;
//   berth::cli::RegisterClientCommands(app, &exit_code);
//   ... other commands ...
//   return berth::cli::ParseAndRun(app, argc, argv, exit_code);
//
// Contract: the chosen command runs inside app.parse() (as a CLI11 callback) and stores its
// exit status in *exit_code: 0 on success, 1 when the request failed (the error was printed
// to stderr as "error: <message> (<code>)", or with -o json as
// {"error":{"code","message"[,"field"][,"hint"]}} on one line). Usage errors (bad flags, bad --port, nothing to
// update) are thrown from parse() as CLI::ParseError. `app` and `exit_code` must outlive the
// parse. Not thread-safe; meant for one process-wide App.
#pragma once

#include <iosfwd>

#include <CLI/CLI.hpp>

namespace berth::cli {

// Also adds `--version` to `app` (the top-level App).
void RegisterClientCommands(CLI::App& app, int* exit_code);

// Parses argv and runs the chosen command (main's whole job once every command is registered).
// Returns the process's exit code: the command's (`exit_code`, 0 ok, 1 an error), 0 for --help
// and --version, 2 for a usage error. An unknown command is named with the closest ones
// (`unknown command "aps"` ... `did you mean: app, apps?`); with `-o json` anywhere on the
// command line a usage error is printed as {"error":{"code":"usage","message":...}} on
// stderr, as the commands print their other errors.
int ParseAndRun(CLI::App& app, int argc, char** argv, const int& exit_code);
int ParseAndRun(CLI::App& app, int argc, char** argv, const int& exit_code, std::ostream& out,
                std::ostream& err);
// The client verbs under `berth gateway` (the gateway role's command): rotate-credential.
void RegisterGatewayAdminCommands(CLI::App& gateway, int* exit_code);

}  // namespace berth::cli
