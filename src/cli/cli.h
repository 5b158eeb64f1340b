// The `berth` client commands (everything except `berth server`), as specified in
// docs/cli.md: each verb turns its flags into one REST call (docs/api.md) and prints a table,
// "key: value" lines or, with -o json, the API's JSON.
//
// Usage from main:
//   CLI::App app{"berth"};
//   int exit_code = 0;
//   berth::cli::RegisterClientCommands(app, &exit_code);
//   try { app.parse(argc, argv); } catch (const CLI::ParseError& e) {
//     return app.exit(e) == 0 ? 0 : 2;   // usage errors exit 2
//   }
//   return exit_code;
//
// Contract: the chosen command runs inside app.parse() (as a CLI11 callback) and stores its
// exit status in *exit_code: 0 on success, 1 when the request failed (the error was printed
// to stderr as "error: <message> (<code>)"). Usage errors (bad flags, bad --port, nothing to
// update) are thrown from parse() as CLI::ParseError. `app` and `exit_code` must outlive the
// parse. Not thread-safe; meant for one process-wide App.
#pragma once

#include <CLI/CLI.hpp>

namespace berth::cli {

void RegisterClientCommands(CLI::App& app, int* exit_code);
// The client verbs under `berth gateway` (the gateway role's command): rotate-credential.
void RegisterGatewayAdminCommands(CLI::App& gateway, int* exit_code);

}  // namespace berth::cli
