// berth: one binary for the client commands and the server. Only lists the commands; the
// wiring lives in cli/ and app/.
#include <CLI/CLI.hpp>

#include "app/server.h"
#include "cli/cli.h"
#include "gateway/role.h"
#include "runtime/shim.h"
#include "sandbox/run_command.h"

int main(int argc, char** argv) {
  CLI::App app{"berth: a small platform as a service"};
  app.require_subcommand(1);
  int exit_code = 0;
  berth::cli::RegisterClientCommands(app, &exit_code);
  // `berth server`: runs the platform; sets the exit code when it stops.
  berth::RegisterServerCommand(app, &exit_code);
  // `berth shim` (hidden): the per-instance supervisor the local runtime starts.
  berth::runtime::RegisterShimCommand(app, &exit_code);
  // `berth sandbox-run` (hidden): one build step in a sandbox, started by the builder.
  berth::sandbox::RegisterSandboxRunCommand(app, &exit_code);
  // `berth sandbox-join` (hidden): a command inside a running instance's sandbox.
  berth::sandbox::RegisterSandboxJoinCommand(app, &exit_code);
  // `berth static` (hidden): serves a static site; detection's start command for static sites.
  berth::RegisterStaticCommand(app, &exit_code);
  // `berth gateway`: the gateway role (berth server starts one in the all-in-one setup).
  berth::gateway::RegisterGatewayCommand(app, &exit_code);
  // `berth gateway rotate-credential`: a client verb under the role's command.
  berth::cli::RegisterGatewayAdminCommands(*app.get_subcommand("gateway"), &exit_code);
  // Exit codes: 0 ok, 1 an error from the server (or a failed build/deploy), 2 usage.
  return berth::cli::ParseAndRun(app, argc, argv, exit_code);
}
