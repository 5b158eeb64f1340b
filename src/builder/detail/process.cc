#include "builder/detail/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "builder/detail/step_record.h"
#include "core/disk.h"

namespace berth::builder::detail {

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

Result<RunResult> RunShell(const RunSpec& spec, const std::function<void(const std::string&)>& on_line,
                           const std::atomic<bool>& cancel,
                           const std::function<void(int pid)>& on_start) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Internal(std::string("pipe: ") + std::strerror(errno));
  // A sandboxed step gets its spec on descriptor 3 (nothing of it lands in a file).
  int spec_pipe[2] = {-1, -1};
  std::string spec_text;
  if (spec.sandbox) {
    sandbox::Spec sb = *spec.sandbox;
    sb.argv = {"/bin/sh", "-c", spec.command};
    sb.env = spec.env;
    sb.cwd = spec.cwd;
    spec_text = sandbox::ToJson(sb).dump();
    if (::pipe2(spec_pipe, O_CLOEXEC) != 0) {
      ::close(fds[0]);
      ::close(fds[1]);
      return Internal(std::string("pipe: ") + std::strerror(errno));
    }
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  // The step gets stdin/stdout/stderr only (and a sandboxed one its spec on 3), even if a
  // descriptor of the server (a socket, a file) was opened without O_CLOEXEC or is being
  // opened by another thread right now.
  if (spec.sandbox) {
    posix_spawn_file_actions_adddup2(&fa, spec_pipe[0], 3);
    posix_spawn_file_actions_addclosefrom_np(&fa, 4);
  } else {
    posix_spawn_file_actions_addchdir_np(&fa, spec.cwd.c_str());
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Own process group (to kill everything the step starts); the server's blocked signals and
  // ignored SIGPIPE must not leak into the build.
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  for (int s : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD}) sigaddset(&defaults, s);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<std::string> argv_s = {"/bin/sh", "-c", spec.command};
  std::vector<std::string> env = spec.env;
  if (spec.sandbox) {
    argv_s = {spec.sandbox_exe, "sandbox-run"};
    // sandbox-run needs nothing of the step's env (that is in its spec) but the step's token,
    // by which a server started after a crash finds and ends it (step_record.h).
    env.clear();
    const std::string token = std::string(kStepTokenVar) + "=";
    for (const std::string& e : spec.env) {
      if (e.rfind(token, 0) == 0) env.push_back(e);
    }
  }
  std::vector<char*> argv, envp;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, argv_s[0].c_str(), &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  if (spec_pipe[0] >= 0) ::close(spec_pipe[0]);
  if (rc != 0) {
    ::close(fds[0]);
    if (spec_pipe[1] >= 0) ::close(spec_pipe[1]);
    return Internal("cannot start " + argv_s[0] + " in " + spec.cwd + ": " + std::strerror(rc));
  }
  if (spec_pipe[1] >= 0) {
    (void)!::write(spec_pipe[1], spec_text.data(), spec_text.size());
    ::close(spec_pipe[1]);
  }
  if (on_start) on_start(pid);
  RunResult result;
  std::string partial;
  auto emit = [&](bool flush_partial) {
    size_t start = 0;
    for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string line = partial.substr(start, nl - start);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      on_line(line);
    }
    partial.erase(0, start);
    while (partial.size() >= kMaxLine) {
      on_line(partial.substr(0, kMaxLine));
      partial.erase(0, kMaxLine);
    }
    if (flush_partial && !partial.empty()) {
      on_line(partial);
      partial.clear();
    }
  };
  bool killed = false;
  bool exited = false;
  int status = 0;
  auto exited_at = std::chrono::steady_clock::time_point::max();
  auto disk_checked = std::chrono::steady_clock::now();
  char buf[16384];
  while (true) {
    if (!killed) {
      const auto now = std::chrono::steady_clock::now();
      if (cancel.load()) {
        result.cancelled = true;
        ::killpg(pid, SIGKILL);
        killed = true;
      } else if (now >= spec.deadline) {
        result.timed_out = true;
        ::killpg(pid, SIGKILL);
        killed = true;
      } else if (!spec.disk_watch.empty() && now - disk_checked >= std::chrono::seconds(1)) {
        disk_checked = now;
        if (DiskIsFull(spec.disk_watch)) {
          result.disk_full = true;
          ::killpg(pid, SIGKILL);
          killed = true;
        }
      }
    }
    if (!exited && ::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      exited_at = std::chrono::steady_clock::now();
    }
    // The shell is gone but something it started still holds the pipe: give it a moment,
    // then end the group.
    if (exited && std::chrono::steady_clock::now() - exited_at > std::chrono::seconds(2)) {
      ::killpg(pid, SIGKILL);
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int n = ::poll(&p, 1, 100);
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    ssize_t got = ::read(fds[0], buf, sizeof buf);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got <= 0) break;  // EOF: every writer is gone
    partial.append(buf, static_cast<size_t>(got));
    emit(false);
  }
  emit(true);
  ::close(fds[0]);
  if (!exited) {
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  ::killpg(pid, SIGKILL);  // stragglers the step left in the background
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

}  // namespace berth::builder::detail
