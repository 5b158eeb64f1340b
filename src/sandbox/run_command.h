// `berth sandbox-run` (hidden): runs one command in a sandbox (sandbox.h) and exits as it
// did. The builder starts it for every build step: the server has threads, and a sandbox must
// be cloned from a single-threaded process. The spec (JSON) comes on descriptor 3, so nothing
// of it is left in a file; stdout and stderr are passed through. SIGTERM, SIGINT and SIGHUP
// go to the command's process group; when the command was killed by a signal, sandbox-run
// ends by the same signal.
#pragma once

#include <CLI/CLI.hpp>

namespace berth::sandbox {

void RegisterSandboxRunCommand(CLI::App& app, int* exit_code);
// `berth sandbox-join` (hidden): runs one command inside a running instance's sandbox
// (sandbox.h JoinSpec on descriptor 3); exits as the command did.
void RegisterSandboxJoinCommand(CLI::App& app, int* exit_code);

// What sandbox-run does, without the command line: reads the spec from `spec_fd` and returns
// the command's wait status (or 127 << 8 with a message on stderr when it cannot start).
int RunFromSpecFd(int spec_fd);

}  // namespace berth::sandbox
