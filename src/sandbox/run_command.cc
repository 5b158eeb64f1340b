#include "sandbox/run_command.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "sandbox/sandbox.h"

namespace berth::sandbox {
namespace {

std::string ReadAll(int fd) {
  std::string text;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

// Ends this process the way the command ended (the same code, or the same signal).
int ExitLike(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    ::signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    ::kill(::getpid(), sig);
    return 128 + sig;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 127;
}

}  // namespace

int RunFromSpecFd(int spec_fd) {
  auto spec = SpecFromJson(Json::parse(ReadAll(spec_fd), nullptr, false));
  if (!spec.ok()) {
    std::fprintf(stderr, "sandbox: %s\n", spec.status().message().c_str());
    return 127 << 8;
  }
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&mask, s);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  auto started = Start(*spec, 1, 2);
  if (!started.ok()) {
    std::fprintf(stderr, "sandbox: %s\n", started.status().message().c_str());
    return 127 << 8;
  }
  while (true) {
    siginfo_t si{};
    if (::sigwaitinfo(&mask, &si) < 0) continue;
    if (si.si_signo == SIGCHLD) {
      int st = 0;
      if (::waitpid(started->init, &st, WNOHANG) == started->init) {
        int status = CommandStatus(*started, st);
        ::close(started->report);
        return status;
      }
      continue;
    }
    if (started->app > 0) ::kill(-started->app, si.si_signo);
  }
}

void RegisterSandboxRunCommand(CLI::App& app, int* exit_code) {
  CLI::App* cmd = app.add_subcommand("sandbox-run", "Run one command in a sandbox (started by berth server)");
  cmd->group("");  // hidden: not for people
  cmd->callback([exit_code] { *exit_code = ExitLike(RunFromSpecFd(3)); });
}

void RegisterSandboxJoinCommand(CLI::App& app, int* exit_code) {
  CLI::App* cmd = app.add_subcommand("sandbox-join", "Run one command inside an instance's sandbox");
  cmd->group("");  // hidden: not for people
  cmd->callback([exit_code] {
    auto spec = JoinSpecFromJson(Json::parse(ReadAll(3), nullptr, false));
    if (!spec.ok()) {
      std::fprintf(stderr, "sandbox: %s\n", spec.status().message().c_str());
      *exit_code = 127;
      return;
    }
    auto st = Join(*spec);
    if (!st.ok()) {
      std::fprintf(stderr, "sandbox: %s\n", st.status().message().c_str());
      *exit_code = 127;
      return;
    }
    *exit_code = ExitLike(*st);
  });
}

}  // namespace berth::sandbox
