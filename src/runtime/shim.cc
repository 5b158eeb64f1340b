#include "runtime/shim.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/cgroup.h"
#include "runtime/detail/shim_files.h"
#include "sandbox/sandbox.h"

namespace berth::runtime {
namespace {

namespace fs = std::filesystem;
using detail::ShimSpec;
using detail::ShimState;

int64_t NowMs() { return UnixMillis(std::chrono::system_clock::now()); }

// The instance log: timestamped lines, rotated by size.
class LogWriter {
 public:
  explicit LogWriter(const ShimSpec& spec) : path_(spec.log_path), max_(spec.log_max_bytes),
                                             keep_(spec.log_keep) {
    std::error_code ec;
    fs::create_directories(fs::path(path_).parent_path(), ec);
    Open();
  }
  ~LogWriter() {
    if (fd_ >= 0) ::close(fd_);
  }

  void Line(const char* stream, std::string_view text) {
    if (fd_ < 0) return;
    std::string line = FormatTime(std::chrono::system_clock::now());
    line += ' ';
    line += stream;
    line += ' ';
    line.append(text.data(), text.size());
    line += '\n';
    if (::write(fd_, line.data(), line.size()) > 0) size_ += static_cast<int64_t>(line.size());
    if (max_ > 0 && size_ >= max_) Rotate();
  }

 private:
  void Open() {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    struct stat st{};
    size_ = (fd_ >= 0 && ::fstat(fd_, &st) == 0) ? st.st_size : 0;
  }
  void Rotate() {
    ::close(fd_);
    for (int i = keep_; i >= 1; --i) {
      std::string from = i == 1 ? path_ : path_ + "." + std::to_string(i - 1);
      std::string to = path_ + "." + std::to_string(i);
      ::rename(from.c_str(), to.c_str());
    }
    if (keep_ <= 0) ::unlink(path_.c_str());
    Open();
  }

  std::string path_;
  int64_t max_;
  int keep_;
  int fd_ = -1;
  int64_t size_ = 0;
};

// Splits a pipe's bytes into lines for the log.
struct StreamReader {
  int fd = -1;
  const char* name = "out";
  std::string partial;
  bool eof = false;

  void Read(LogWriter& log) {
    char buf[8192];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      eof = true;
      Flush(log);
      return;
    }
    if (n < 0) return;
    partial.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    while (true) {
      size_t nl = partial.find('\n', start);
      if (nl == std::string::npos) break;
      log.Line(name, std::string_view(partial).substr(start, nl - start));
      start = nl + 1;
    }
    partial.erase(0, start);
    if (partial.size() > 16384) Flush(log);  // an endless line is cut, not buffered forever
  }
  void Flush(LogWriter& log) {
    if (!partial.empty()) log.Line(name, partial);
    partial.clear();
  }
};

// Memory/CPU limits in the instance's cgroup (core/cgroup.h; the name is
// detail::CgroupName). Best effort: what cannot be set up is logged, the app runs without it.
struct Limits {
  Cgroup group;
  std::string error;
  int64_t oom_before = 0;

  void Setup(const ShimSpec& spec) {
    const auto& r = spec.launch.resources;
    if (r.memory_mb <= 0 && r.cpu_millis <= 0 && spec.pids_max <= 0) return;
    CgroupLayout layout = CgroupLayout::Detect();
    if (layout.Empty()) {
      error = "no cgroup hierarchy at /sys/fs/cgroup";
      return;
    }
    group = Cgroup::Create(layout, detail::CgroupName(spec.launch.ref, spec.launch.instance),
                           {r.memory_mb << 20, r.cpu_millis, spec.pids_max}, &error);
    oom_before = group.OomKills();  // a group left behind keeps its counter
  }
  bool OomKilled() const { return group.OomKills() > oom_before; }
};

void WriteState(const std::string& run_dir, const ShimState& s) {
  (void)detail::WriteFileAtomic(run_dir + "/state.json", ShimStateToJson(s).dump() + "\n");
}

}  // namespace

int RunShim(const std::string& run_dir) {
  auto text = detail::ReadFile(run_dir + "/spec.json");
  if (!text.ok()) return 2;
  auto parsed = detail::ShimSpecFromJson(Json::parse(*text, nullptr, false));
  if (!parsed.ok()) return 2;
  const ShimSpec spec = std::move(parsed).value();

  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&mask, s);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  int sfd = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  ::signal(SIGPIPE, SIG_IGN);
  // Orphans of the app are reparented to the shim, which reaps them.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);

  ShimState st;
  st.state = "starting";
  st.shim_pid = ::getpid();
  st.started_at_ms = NowMs();
  WriteState(run_dir, st);

  LogWriter log(spec);
  Limits cg;
  cg.Setup(spec);
  if (!cg.error.empty()) log.Line("shim", "cgroups: " + cg.error + "; running without those limits");
  // Joined by the app's child before exec (async-signal-safe: paths ready, open + write).
  const std::vector<std::string> cgroup_procs = cg.group.ProcsFiles();

  // The app's environment: exactly the spec's, with a usable default PATH/HOME/LANG.
  std::map<std::string, std::string> env = spec.launch.env;
  env.emplace("PATH", sandbox::kSystemPath);  // the server sets one; older specs had none
  env.emplace("HOME", spec.workdir);
  env.emplace("LANG", "C.UTF-8");
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string sh = "/bin/sh", dash_c = "-c", cmd = spec.launch.command;
  char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};

  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    log.Line("shim", std::string("cannot create pipes: ") + std::strerror(errno));
    st.state = "exited";
    st.exit.code = 127;
    st.exit.at_ms = NowMs();
    WriteState(run_dir, st);
    return 1;
  }
  log.Line("shim", "starting " + spec.launch.instance + " (" + spec.launch.version + ") on port " +
                       std::to_string(spec.launch.port) + (spec.sandbox ? " in its sandbox" : "") +
                       ": " + cmd);
  pid_t app = -1;
  pid_t init = -1;  // sandboxed: the sandbox's init, whose end is the app's end
  std::optional<sandbox::Started> boxed;
  // The app could not be started at all: the state says so and the shim ends.
  auto not_started = [&](const std::string& why) {
    log.Line("shim", why);
    st.state = "exited";
    st.exit.code = 127;
    st.exit.at_ms = NowMs();
    WriteState(run_dir, st);
    cg.group.Remove();
    return 1;
  };
  if (spec.sandbox) {
    sandbox::Spec sb = *spec.sandbox;
    sb.cgroup_procs = cgroup_procs;
    auto started = sandbox::Start(sb, out[1], err[1]);
    ::close(out[1]);
    ::close(err[1]);
    if (!started.ok()) return not_started(started.status().message());
    boxed = *started;
    init = started->init;
    app = started->app > 0 ? started->app : started->init;
  } else {
    app = ::fork();
    if (app == 0) {
      // Child: only async-signal-safe calls until exec.
      ::setpgid(0, 0);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      ::signal(SIGPIPE, SIG_DFL);
      char pid_text[24];
      int len = 0;
      {
        char rev[24];
        int n = 0;
        for (pid_t p = ::getpid(); p > 0; p /= 10) rev[n++] = static_cast<char>('0' + p % 10);
        while (n > 0) pid_text[len++] = rev[--n];
      }
      for (const std::string& procs : cgroup_procs) {
        int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
          (void)!::write(fd, pid_text, static_cast<size_t>(len));
          ::close(fd);
        }
      }
      if (::chdir(spec.workdir.c_str()) != 0) ::_exit(126);
      int devnull = ::open("/dev/null", O_RDONLY);
      if (devnull >= 0) ::dup2(devnull, 0);
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      // The app gets stdin/stdout/stderr only, whatever the shim holds open.
      ::syscall(SYS_close_range, 3u, ~0u, 0u);
      ::execve(argv[0], argv, envp.data());
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    if (app < 0) return not_started(std::string("cannot fork: ") + std::strerror(errno));
    ::setpgid(app, app);  // also here, so the group exists before we might signal it
    init = app;
  }
  st.state = "running";
  st.app_pid = app;
  st.app_start = detail::ProcessStartTicks(app);
  WriteState(run_dir, st);

  StreamReader readers[2];
  readers[0].fd = out[0];
  readers[0].name = "out";
  readers[1].fd = err[0];
  readers[1].name = "err";
  for (auto& r : readers) ::fcntl(r.fd, F_SETFL, O_NONBLOCK);

  bool app_done = false;
  int app_status = 0;
  bool stopping = false;
  auto kill_deadline = std::chrono::steady_clock::time_point::max();
  auto drain_deadline = std::chrono::steady_clock::time_point::max();
  while (true) {
    auto now = std::chrono::steady_clock::now();
    if (stopping && !app_done && now >= kill_deadline) {
      log.Line("shim", "grace period over: SIGKILL");
      ::kill(-app, SIGKILL);
      kill_deadline = std::chrono::steady_clock::time_point::max();
    }
    if (app_done && (readers[0].eof && readers[1].eof)) break;
    if (app_done && now >= drain_deadline) break;
    pollfd fds[3];
    int n = 0;
    fds[n++] = {sfd, POLLIN, 0};
    int idx[2] = {-1, -1};
    for (int i = 0; i < 2; ++i) {
      if (!readers[i].eof) {
        idx[i] = n;
        fds[n++] = {readers[i].fd, POLLIN, 0};
      }
    }
    int rc = ::poll(fds, static_cast<nfds_t>(n), 200);
    if (rc < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (idx[i] >= 0 && (fds[idx[i]].revents & (POLLIN | POLLHUP | POLLERR))) readers[i].Read(log);
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si;
      while (::read(sfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        if (si.ssi_signo == SIGCHLD) continue;  // reaped below
        if (!stopping && !app_done) {
          stopping = true;
          int grace = std::max(0, spec.launch.grace_s);
          log.Line("shim", "stop requested: SIGTERM, then SIGKILL after " +
                               std::to_string(grace) + " s");
          ::kill(-app, SIGTERM);
          kill_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(grace);
        }
      }
    }
    int status = 0;
    pid_t reaped;
    while ((reaped = ::waitpid(-1, &status, WNOHANG)) > 0) {
      if (reaped == init) {
        app_done = true;
        app_status = boxed ? sandbox::CommandStatus(*boxed, status) : status;
        if (boxed) ::close(boxed->report);
        // Leftovers of the app's group would keep the pipes open: give them a moment, then
        // they go with the group.
        drain_deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
      }
    }
  }
  ::kill(-app, SIGKILL);  // whatever the app left behind in its group
  for (auto& r : readers) {
    r.Flush(log);
    ::close(r.fd);
  }
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {
  }
  st.state = "exited";
  st.exit.at_ms = NowMs();
  if (WIFEXITED(app_status)) {
    st.exit.code = WEXITSTATUS(app_status);
    st.exit.signal = 0;
  } else if (WIFSIGNALED(app_status)) {
    st.exit.code = -1;
    st.exit.signal = WTERMSIG(app_status);
    st.exit.oom = st.exit.signal == SIGKILL && cg.OomKilled();
  }
  log.Line("shim", st.exit.Describe());
  WriteState(run_dir, st);
  cg.group.Remove();
  ::close(sfd);
  return 0;
}

void RegisterShimCommand(CLI::App& app, int* exit_code) {
  CLI::App* cmd = app.add_subcommand("shim", "Supervise one instance (started by berth server)");
  cmd->group("");  // hidden: not for people
  auto dir = std::make_shared<std::string>();
  cmd->add_option("--dir", *dir, "the instance's run directory")->required();
  cmd->callback([dir, exit_code] { *exit_code = RunShim(*dir); });
}

}  // namespace berth::runtime
