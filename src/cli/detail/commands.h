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
  // `berth open`: shows `url` in a browser when this machine has a display (DISPLAY or
  // WAYLAND_DISPLAY, and xdg-open); Ok without doing anything when it has none; an error only
  // when a display is there but the browser could not be started. May be empty (never opens).
  std::function<Status(const std::string& url)> open_url;
  // Sends a local file as the body of one request (UploadFile in http_client.h).
  std::function<Result<Response>(const std::string& method, const std::string& server,
                                 const std::string& path_and_query, const std::string& file,
                                 const std::string& token)>
      upload;
};

// std::cin/cout/cerr, ::getenv, the current directory, termios prompts, real HTTP.
ClientWorld RealClientWorld();

void RegisterClientCommandsWithWorld(CLI::App& app, int* exit_code, ClientWorld world);

// build_commands.cc: builds a new version of a component and deploys it — queues the build
// (`ref`: git sources only, this build only), streams its log, makes a component pinned to an
// older version follow the newest again, waits until every desired instance runs the new
// version, and prints where the component answers. A failed build or deploy is an error naming
// the failing step (and sets *exit_code to 1). Used by `berth deploy` and by
// `berth component create` with a source.
struct DeployOptions {
  std::string app, component, ref;
  int timeout_s = 300;
  bool json = false;
};
// build_commands.cc: uploads a local archive file as the component's source (PUT
// .../archive, streamed from disk). `file` relative to world.cwd.
Status UploadArchive(const ClientWorld& world, const ClientConfig& config, const std::string& app,
                     const std::string& component, const std::string& file);
Status BuildAndDeploy(const ClientWorld& world, const ClientConfig& config, const DeployOptions& options,
                      int* exit_code);

}  // namespace berth::cli
