// berth: one binary for the client commands and the server. Only lists the commands; the
// wiring lives in cli/ and app/.
#include <CLI/CLI.hpp>

#include "app/server.h"
#include "cli/cli.h"
#include "gateway/role.h"
#include "runtime/shim.h"

int main(int argc, char** argv) {
  CLI::App app{"berth: a small platform as a service"};
  app.require_subcommand(1);
  int exit_code = 0;
  berth::cli::RegisterClientCommands(app, &exit_code);
  // `berth server`: runs the platform; sets the exit code when it stops.
  berth::RegisterServerCommand(app, &exit_code);
  // `berth shim` (hidden): the per-instance supervisor the local runtime starts.
  berth::runtime::RegisterShimCommand(app, &exit_code);
  // `berth static` (hidden): serves a static site; detection's start command for static sites.
  berth::RegisterStaticCommand(app, &exit_code);
  // `berth gateway`: the gateway role (berth server starts one in the all-in-one setup).
  berth::gateway::RegisterGatewayCommand(app, &exit_code);
  // `berth gateway rotate-credential`: a client verb under the role's command.
  berth::cli::RegisterGatewayAdminCommands(*app.get_subcommand("gateway"), &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 uses exit codes 100+ for parse errors; berth's contract is 2 for usage errors.
    return app.exit(e) == 0 ? 0 : 2;
  }
  return exit_code;
}
