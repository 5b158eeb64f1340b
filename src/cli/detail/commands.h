// The outside world of the client commands, injected so tests can run every verb against a
// fake server and fake terminal. RegisterClientCommands (cli.h) uses RealClientWorld().
#pragma once

#include <functional>
#include <iosfwd>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/client_config.h"
#include "cli/detail/http_client.h"
#include "core/status.h"

namespace berth::cli {

struct ClientWorld {
  std::istream* in = nullptr;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  EnvLookup env;
  std::string cwd;  // to make --source/--archive paths absolute
  std::function<bool()> stdin_is_tty;
  // Prints `prompt` to the terminal and reads one line without echo.
  std::function<Result<std::string>(const std::string& prompt)> read_secret;
  // One HTTP exchange (see Request in http_client.h).
  std::function<Result<Response>(const std::string& method, const std::string& server,
                                 const std::string& path_and_query, const std::string& body,
                                 const std::string& token)>
      send;
};

// std::cin/cout/cerr, ::getenv, the current directory, termios prompts, real HTTP.
ClientWorld RealClientWorld();

void RegisterClientCommandsWithWorld(CLI::App& app, int* exit_code, ClientWorld world);

}  // namespace berth::cli
