#include "runtime/system_host.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/cgroup.h"
#include "core/log.h"
#include "core/netns.h"
#include "core/safe_fs.h"
#include "runtime/detail/shim_files.h"
#include "sandbox/sandbox.h"

extern char** environ;

namespace berth::runtime {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// Copies the artifact tree into the working dir: hard links where the filesystem allows
// (artifacts are immutable by contract), a real copy otherwise.
Status CopyTree(const std::string& from, const std::string& to) {
  std::error_code ec;
  if (!fs::is_directory(from, ec)) return NotFound("artifact directory " + from + " does not exist");
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::create_hard_links |
                         fs::copy_options::copy_symlinks, ec);
  if (!ec) return Status::Ok();
  fs::remove_all(to, ec);
  fs::create_directories(to, ec);
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
  if (ec) return Internal("cannot copy " + from + " to " + to + ": " + ec.message());
  return Status::Ok();
}

// A volume's first creation, Docker named-volume style: seeded with what the artifact has at
// the volume's path (an app shipping defaults in data/ starts with them), else empty. An
// existing volume is never touched. A real copy, not hard links: the app writes into its
// volume and the artifact is shared and immutable. The copy goes to a sibling and is renamed
// into place, so a server stopped midway leaves no half-seeded volume that would then count as
// existing and never be seeded again.
Status CreateVolume(const std::string& name, const std::string& dir, const std::string& seed) {
  std::error_code ec;
  fs::create_directories(fs::path(dir).parent_path(), ec);
  // Only a real directory seeds (a symlink in the artifact is not followed out of it).
  if (!seed.empty() && fs::symlink_status(seed, ec).type() == fs::file_type::directory) {
    std::string tmp = dir + ".seeding";  // names are DNS labels: no dots, no clash
    fs::remove_all(tmp, ec);
    fs::copy(seed, tmp, fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
    if (!ec) fs::rename(tmp, dir, ec);
    if (!ec) return Status::Ok();
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    return Internal("cannot seed volume " + name + " at " + dir + " from " + seed + ": " +
                    ec.message());
  }
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create volume " + name + " at " + dir + ": " + ec.message());
  return Status::Ok();
}

// A connection to 127.0.0.1:port in the network `netns` ("" = the host's).
// The volume's directory, created (and seeded from the artifact) the first time.
Result<std::string> EnsureVolume(const detail::Layout& L, const LaunchSpec& spec,
                                 const InstanceTemplate::VolumeMount& v) {
  std::error_code ec;
  const std::string instance = v.per_instance ? spec.instance : "";
  std::string dir = L.VolumeDir(spec.ref, v.name, instance);
  if (std::string legacy = L.LegacyVolumeDir(spec.ref, v.name, instance);
      !fs::exists(dir, ec) && fs::is_directory(legacy, ec)) {
    return legacy;
  }
  if (!fs::exists(dir, ec)) {
    std::string seed;
    // Only a real directory of the artifact, reached through real directories, seeds.
    if (!spec.artifact_dir.empty() && IsRealDirBeneath(spec.artifact_dir, v.path)) {
      seed = spec.artifact_dir + "/" + v.path;
    }
    BERTH_RETURN_IF_ERROR(CreateVolume(v.name, dir, seed));
  }
  return dir;
}

// mkdir -p under `base` (which exists), each directory made belonging to `uid`.
Status MakeOwnedDirs(const fs::path& base, const fs::path& rel, uint32_t uid) {
  fs::path cur = base;
  for (const auto& part : rel) {
    cur /= part;
    if (::mkdir(cur.c_str(), 0755) == 0) {
      (void)!::chown(cur.c_str(), uid, uid);
    } else if (errno != EEXIST) {
      return Internal(Errno("cannot create " + cur.string()));
    }
  }
  return Status::Ok();
}

int Connect(int port, const std::string& netns, Clock::time_point deadline, std::string* error) {
  int fd = -1;
  if (netns.empty()) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      *error = Errno("socket");
      return -1;
    }
  } else {
    auto ns = OpenNetns(netns);
    if (!ns.ok()) {
      *error = ns.status().message();
      return -1;
    }
    auto made = SocketIn(*ns, AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
    ::close(*ns);
    if (!made.ok()) {
      *error = made.status().message();
      return -1;
    }
    fd = *made;
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (errno != EINPROGRESS) {
      *error = std::string(std::strerror(errno));
      ::close(fd);
      return -1;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{fd, POLLOUT, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      *error = "connect timed out";
      ::close(fd);
      return -1;
    }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr != 0) {
      *error = std::strerror(soerr);
      ::close(fd);
      return -1;
    }
  }
  return fd;
}

ProbeResult HttpProbe(const model::Probe& p, int port, const std::string& netns,
                      Clock::time_point deadline) {
  std::string error;
  int fd = Connect(port, netns, deadline, &error);
  if (fd < 0) return {false, error};
  std::string req = "GET " + (p.path.empty() ? std::string("/") : p.path) +
                    " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                    "\r\nUser-Agent: berth-probe\r\nConnection: close\r\n\r\n";
  size_t sent = 0;
  std::string resp;
  while (Clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd pf{fd, static_cast<short>(sent < req.size() ? POLLOUT : POLLIN), 0};
    if (::poll(&pf, 1, std::max<int>(1, static_cast<int>(left.count()))) <= 0) break;
    if (sent < req.size()) {
      ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
      continue;
    }
    char buf[2048];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
    if (resp.size() >= 2048) break;
    size_t head_end = resp.find("\r\n\r\n");
    if (head_end != std::string::npos && resp.size() > head_end + 4 + 200) break;
  }
  ::close(fd);
  if (resp.rfind("HTTP/", 0) != 0 || resp.size() < 12) {
    return {false, resp.empty() ? "no HTTP answer within " + std::to_string(p.timeout_s) + " s"
                                : "not an HTTP answer"};
  }
  int status = std::atoi(resp.c_str() + 9);
  bool ok = p.expect_status != 0 ? status == p.expect_status : status >= 200 && status < 400;
  std::string body;
  size_t head_end = resp.find("\r\n\r\n");
  if (head_end != std::string::npos) body = resp.substr(head_end + 4, 200);
  return {ok, "HTTP " + std::to_string(status) + (body.empty() ? "" : ": " + body)};
}

// Runs argv (envp as given; `payload` on descriptor 3 when set) until it ends or `deadline`.
ProbeResult RunCheckCommand(const model::Probe& p, const std::vector<std::string>& argv_in,
                            const std::map<std::string, std::string>& env, const std::string& cwd,
                            const std::string& payload, Clock::time_point deadline) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return {false, Errno("pipe")};
  int spec[2] = {-1, -1};
  if (!payload.empty() && ::pipe2(spec, O_CLOEXEC) != 0) {
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    return {false, Errno("pipe")};
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
  if (spec[0] >= 0) posix_spawn_file_actions_adddup2(&fa, spec[0], 3);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  // stdin/stdout/stderr only (and the join spec on 3)
  posix_spawn_file_actions_addclosefrom_np(&fa, spec[0] >= 0 ? 4 : 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t def;
  sigemptyset(&def);
  sigaddset(&def, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &def);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETPGROUP);
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_s = argv_in;
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(pipefd[1]);
  if (spec[0] >= 0) ::close(spec[0]);
  if (rc != 0) {
    ::close(pipefd[0]);
    if (spec[1] >= 0) ::close(spec[1]);
    return {false, std::string("cannot run the command: ") + std::strerror(rc)};
  }
  if (spec[1] >= 0) {
    (void)!::write(spec[1], payload.data(), payload.size());
    ::close(spec[1]);
  }
  std::string output;
  bool timed_out = false;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd pf{pipefd[0], POLLIN, 0};
    if (::poll(&pf, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[1024];
    ssize_t n = ::read(pipefd[0], buf, sizeof buf);
    if (n <= 0) break;
    if (output.size() < 4096) output.append(buf, static_cast<size_t>(n));
  }
  ::close(pipefd[0]);
  if (timed_out) ::kill(-pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (timed_out) return {false, "timed out after " + std::to_string(p.timeout_s) + " s" +
                                    (output.empty() ? "" : ": " + output)};
  bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  std::string what = WIFEXITED(status) ? "exit code " + std::to_string(WEXITSTATUS(status))
                                       : "killed by signal " + std::to_string(WTERMSIG(status));
  return {ok, what + (output.empty() ? "" : ": " + output)};
}

ProbeResult CommandProbe(const model::Probe& p, const ProbeTarget& t, Clock::time_point deadline) {
  std::map<std::string, std::string> env = t.env;
  env["PATH"] = sandbox::JoinPath(env.count("PATH") ? env["PATH"] : "", sandbox::kSystemPath);
  return RunCheckCommand(p, {"/bin/sh", "-c", p.command}, env, t.workdir, "", deadline);
}

std::vector<std::string> TailLines(const std::string& path, int lines) {
  std::vector<std::string> out;
  std::ifstream f(path, std::ios::binary);
  if (!f) return out;
  f.seekg(0, std::ios::end);
  std::streamoff size = f.tellg();
  std::streamoff from = std::max<std::streamoff>(0, size - 16384);
  f.seekg(from);
  std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t i = 0;
  if (from > 0) {
    size_t nl = data.find('\n');
    i = nl == std::string::npos ? data.size() : nl + 1;
  }
  std::vector<std::string> all;
  while (i < data.size()) {
    size_t nl = data.find('\n', i);
    if (nl == std::string::npos) nl = data.size();
    all.push_back(data.substr(i, nl - i));
    i = nl + 1;
  }
  for (size_t k = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0; k < all.size(); ++k) {
    out.push_back(all[k]);
  }
  return out;
}

}  // namespace

struct SystemHost::Impl {
  SystemHostOptions opt;
  detail::Layout layout;
};

SystemHost::SystemHost(SystemHostOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(options);
  impl_->layout.data_dir = impl_->opt.data_dir;
  if (impl_->opt.exe.empty()) {
    std::error_code ec;
    impl_->opt.exe = fs::read_symlink("/proc/self/exe", ec).string();
  }
  // Said once per server; each shim detects the same layout (core/cgroup.h) for itself.
  CgroupLayout cgroups = CgroupLayout::Detect();
  if (cgroups.Empty() || !cgroups.Writable()) {
    Logger("runtime")->warn(
        "msg=\"cgroups are not available (no writable /sys/fs/cgroup hierarchy): instances run "
        "without memory and CPU limits\"");
  } else {
    Logger("runtime")->info("msg=\"resource limits through {}\"", cgroups.Describe());
  }
}

SystemHost::~SystemHost() = default;

Result<int> SystemHost::AllocatePort(const std::set<int>& taken) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Internal(Errno("socket"));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port = ntohs(a.sin_port);
    }
    ::close(fd);
    if (port > 0 && !taken.count(port)) return port;
  }
  return Unavailable("no free loopback port");
}

std::string SystemHost::WorkDir(const ComponentRef& ref, const std::string& instance) {
  return impl_->layout.WorkDir(ref, instance);
}

Status SystemHost::PrepareWorkDir(const LaunchSpec& spec, const std::string& workdir) {
  const detail::Layout& L = impl_->layout;
  std::error_code ec;
  // A fresh working dir per start: the artifact plus the rendered config files.
  fs::remove_all(workdir, ec);
  if (!spec.artifact_dir.empty()) {
    fs::create_directories(fs::path(workdir).parent_path(), ec);
    BERTH_RETURN_IF_ERROR(CopyTree(spec.artifact_dir, workdir));
  }
  fs::create_directories(workdir, ec);
  if (ec) return Internal("cannot create " + workdir + ": " + ec.message());
  // Config files and volume mount points go beneath the working dir without following a
  // symlink the artifact brought ("conf -> /etc"): core/safe_fs.h. A file there is replaced,
  // never written through (it may be a hard link into the shared artifact).
  for (const auto& f : spec.config_files) {
    Status w = WriteBeneath(workdir, f.path, detail::RenderTemplate(f.content, spec.env));
    if (!w.ok()) {
      return Status(w.code(), w.reason(), "cannot write config file " + f.path + ": " + w.message());
    }
  }
  for (const auto& v : spec.volumes) {
    // A symlink, not a bind mount: works unprivileged and survives the working dir being
    // rebuilt at every start (the link is made again; the directory it names stays).
    BERTH_ASSIGN_OR_RETURN(std::string dir, EnsureVolume(L, spec, v));
    // The artifact's own content there goes (hard links: the artifact is unharmed).
    std::string at = v.path;
    while (at.size() > 1 && at.back() == '/') at.pop_back();  // "data/" mounts at "data"
    Status mounted = RemoveBeneath(workdir, at);
    std::string parent = fs::path(at).parent_path().string();
    std::string last = fs::path(at).filename().string();
    auto pdir = OpenDirBeneath(workdir, parent, /*create=*/true);
    if (mounted.ok() && !pdir.ok()) mounted = pdir.status();
    if (mounted.ok() && ::symlinkat(dir.c_str(), pdir->get(), last.c_str()) != 0) {
      mounted = Internal(Errno("symlink"));
    }
    if (!mounted.ok()) {
      return Status(mounted.code(), mounted.reason(),
                    "cannot mount volume " + v.name + " at " + v.path + ": " + mounted.message());
    }
  }
  return Status::Ok();
}

Status SystemHost::PrepareSandbox(const LaunchSpec& spec, detail::ShimSpec* s) {
  const detail::Layout& L = impl_->layout;
  const InstanceSandbox& o = impl_->opt.sandbox;
  BERTH_ASSIGN_OR_RETURN(sandbox::Spec sb, o.config.Base(spec.ref.team, spec.instance));
  // Volumes live on the team's disk: mounted (and grown to the quota) before they are used.
  if (!spec.volumes.empty()) BERTH_RETURN_IF_ERROR(o.config.TeamDir(spec.ref.team).status());
  // The artifact is the lower layer of /app: a config file or volume whose path runs through
  // one of its symlinks ("conf -> /etc") is refused, as in an unsandboxed working directory.
  // (The sandbox would not follow it out of the root, but the app would not find the file or
  // volume where it looks.)
  if (!spec.artifact_dir.empty()) {
    std::vector<std::string> paths;
    for (const auto& f : spec.config_files) paths.push_back(f.path);
    for (const auto& v : spec.volumes) paths.push_back(v.path);
    for (std::string rel : paths) {
      while (rel.size() > 1 && rel.back() == '/') rel.pop_back();
      auto st = StatBeneath(spec.artifact_dir, rel);
      if (!st.ok() && st.status().code() != Code::kNotFound) {
        return Status(st.status().code(), st.status().reason(),
                      rel + " runs through a symlink of the artifact: " + st.status().message());
      }
      if (st.ok() && S_ISLNK(st->st_mode)) {
        return UnsafePath(rel + " is a symlink in the artifact; a config file or volume cannot go there");
      }
    }
  }
  const uint32_t uid = sb.uid;
  sb.tmp_mb = o.tmp_mb;
  // /app: the rendered config files over the artifact, read-only layers of an overlay whose
  // writable layer is a tmpfs of the sandbox's own (no copy of the artifact at all).
  std::error_code ec;
  fs::remove_all(s->workdir, ec);
  const std::string config = s->workdir + "/config";
  fs::create_directories(config, ec);
  if (ec) return Internal("cannot create " + config + ": " + ec.message());
  ::chmod(s->workdir.c_str(), 0700);
  ::chmod(config.c_str(), 0755);
  ::chown(config.c_str(), uid, uid);
  for (const auto& f : spec.config_files) {
    fs::path rel = fs::path(f.path).lexically_normal();
    BERTH_RETURN_IF_ERROR(MakeOwnedDirs(config, rel.parent_path(), uid));
    std::string target = (fs::path(config) / rel).string();
    int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    std::string text = detail::RenderTemplate(f.content, spec.env);
    bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    if (fd >= 0) {
      (void)!::fchown(fd, uid, uid);
      ::close(fd);
    }
    if (!ok) return Internal("cannot write config file " + f.path);
  }
  sb.app_layers = {config};
  if (!spec.artifact_dir.empty()) sb.app_layers.push_back(spec.artifact_dir);
  sb.app_mb = o.app_mb;
  for (const auto& v : spec.volumes) {
    BERTH_ASSIGN_OR_RETURN(std::string dir, EnsureVolume(L, spec, v));
    sandbox::GiveTree(dir, uid, /*if_top_differs=*/true);
    sb.binds.push_back({dir, "/app/" + fs::path(v.path).lexically_normal().string(), true});
  }
  std::map<std::string, std::string> env;
  for (const std::string& kv : sb.env) env[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
  for (const auto& [k, v] : spec.env) env[k] = v;
  sb.env.clear();
  // The PATH builds get too (sandbox::Config::Path), after the entries detection or the
  // component set: what a build found, the instance finds (also /usr/sbin).
  env["PATH"] = sandbox::JoinPath(env.count("PATH") ? env["PATH"] : "", o.config.Path());
  env.emplace("LANG", "C.UTF-8");
  env["HOME"] = "/app";
  for (const auto& [k, v] : env) sb.env.push_back(k + "=" + v);
  sb.argv = {"/bin/sh", "-c", spec.command};
  s->sandbox = std::move(sb);
  s->pids_max = o.pids;
  if (s->launch.resources.memory_mb <= 0) s->launch.resources.memory_mb = o.memory_mb;
  return Status::Ok();
}

Result<int> SystemHost::Launch(const LaunchSpec& spec) {
  const detail::Layout& L = impl_->layout;
  detail::ShimSpec s;
  s.launch = spec;
  s.workdir = L.WorkDir(spec.ref, spec.instance);
  s.log_path = L.LogPath(spec.ref, spec.instance);
  s.log_max_bytes = impl_->opt.log_max_bytes;
  s.log_keep = impl_->opt.log_keep;
  std::error_code ec;
  if (impl_->opt.sandbox.config.enabled) {
    BERTH_RETURN_IF_ERROR(PrepareSandbox(spec, &s));
  } else {
    // The PATH builds get (sandbox::Config::Path), after the entries detection or the
    // component set, so a tool a build found is found at start.
    auto& env = s.launch.env;
    env["PATH"] = sandbox::JoinPath(env.count("PATH") ? env["PATH"] : "", impl_->opt.sandbox.config.Path());
    BERTH_RETURN_IF_ERROR(PrepareWorkDir(spec, s.workdir));
  }
  fs::create_directories(fs::path(s.log_path).parent_path(), ec);
  std::string run_dir = L.RunDir(spec.ref, spec.instance);
  fs::create_directories(run_dir, ec);
  if (ec) return Internal("cannot create " + run_dir + ": " + ec.message());
  ::unlink((run_dir + "/state.json").c_str());
  ::unlink((run_dir + "/launch.json").c_str());
  BERTH_RETURN_IF_ERROR(
      detail::WriteFileAtomic(run_dir + "/spec.json", detail::ShimSpecToJson(s).dump() + "\n"));

  // Detach: fork, setsid, fork again; the grandchild execs the shim and is reparented away
  // from the server. A CLOEXEC pipe reports the shim's pid, then EOF once exec succeeded.
  std::string exe = impl_->opt.exe;
  std::string a0 = exe, a1 = "shim", a2 = "--dir", a3 = run_dir;
  char* argv[] = {a0.data(), a1.data(), a2.data(), a3.data(), nullptr};
  int pfd[2];
  if (::pipe2(pfd, O_CLOEXEC) != 0) return Internal(Errno("pipe"));
  pid_t child = ::fork();
  if (child < 0) {
    ::close(pfd[0]);
    ::close(pfd[1]);
    return Internal(Errno("fork"));
  }
  if (child == 0) {
    ::setsid();
    pid_t g = ::fork();
    if (g != 0) ::_exit(g < 0 ? 1 : 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
    }
    if (::chdir("/") != 0) ::_exit(1);
    int wfd = pfd[1];
    int32_t pid = ::getpid();
    (void)!::write(wfd, &pid, sizeof pid);
    // Close every inherited descriptor except the report pipe (CLOEXEC closes it at exec).
    for (int fd = 3; fd < 1024; ++fd) {
      if (fd != wfd) ::close(fd);
    }
    ::syscall(SYS_close_range, 1024u, ~0u, 0u);
    ::execve(argv[0], argv, environ);
    int32_t err = -errno;
    (void)!::write(wfd, &err, sizeof err);
    ::_exit(127);
  }
  ::close(pfd[1]);
  int32_t shim_pid = 0, after = 0;
  ssize_t n1 = ::read(pfd[0], &shim_pid, sizeof shim_pid);
  ssize_t n2 = ::read(pfd[0], &after, sizeof after);
  ::close(pfd[0]);
  ::waitpid(child, nullptr, 0);
  if (n1 != static_cast<ssize_t>(sizeof shim_pid) || shim_pid <= 0) {
    return Internal("the shim for " + spec.instance + " did not start");
  }
  if (n2 == static_cast<ssize_t>(sizeof after) && after < 0) {
    return Internal("cannot run " + exe + " shim: " + std::strerror(-after));
  }
  // The shim is recognised by this record until it writes its state (see shim_files.h: its
  // cmdline may still read empty now, exec being only half done). Written to disk, not kept
  // in memory, so a server restarted meanwhile recognises it too.
  detail::LaunchRecord record{shim_pid, detail::ProcessStartTicks(shim_pid)};
  if (Status s = detail::WriteFileAtomic(run_dir + "/launch.json",
                                         detail::LaunchRecordToJson(record).dump() + "\n");
      !s.ok()) {
    Logger("runtime")->warn("msg=\"cannot record a launch\" error=\"{}\"", s.message());
  }
  return static_cast<int>(shim_pid);
}

ShimObservation SystemHost::Observe(const ComponentRef& ref, const std::string& instance) {
  std::string run_dir = impl_->layout.RunDir(ref, instance);
  ShimObservation o;
  detail::ShimState st = detail::ReadShimState(run_dir);
  auto exited = [&](const detail::ShimState& s) {
    o.state = ShimObservation::State::kExited;
    o.shim_pid = s.shim_pid;
    o.app_pid = s.app_pid;
    o.started_at_ms = s.started_at_ms;
    o.exit = s.exit;
    return o;
  };
  if (st.state == "exited") return exited(st);
  int shim = detail::LiveShim(st, detail::ReadLaunchRecord(run_dir), run_dir);
  if (shim > 0) {
    o.state = ShimObservation::State::kRunning;
    o.shim_pid = shim;
    o.app_pid = st.app_pid;
    o.started_at_ms = st.started_at_ms;
    return o;
  }
  // The shim may have written its exit and gone between the two reads.
  st = detail::ReadShimState(run_dir);
  if (st.state == "exited") return exited(st);
  o.state = ShimObservation::State::kGone;
  return o;
}

void SystemHost::Stop(const ComponentRef& ref, const std::string& instance) {
  std::string run_dir = impl_->layout.RunDir(ref, instance);
  detail::ShimState st = detail::ReadShimState(run_dir);
  int shim = detail::LiveShim(st, detail::ReadLaunchRecord(run_dir), run_dir);
  if (shim > 0) ::kill(shim, SIGTERM);
}

void SystemHost::Kill(const ComponentRef& ref, const std::string& instance) {
  std::string run_dir = impl_->layout.RunDir(ref, instance);
  detail::ShimState st = detail::ReadShimState(run_dir);
  if (detail::IsSameProcess(st.app_pid, st.app_start)) ::kill(-st.app_pid, SIGKILL);
  int shim = detail::LiveShim(st, detail::ReadLaunchRecord(run_dir), run_dir);
  if (shim > 0) ::kill(shim, SIGKILL);
  Logger("runtime")->warn("msg=\"killed an instance that did not stop in time\" component={} instance={}",
                          ref.Scope(), instance);
}

void SystemHost::Cleanup(const ComponentRef& ref, const std::string& instance,
                         bool remove_workdir) {
  std::string run_dir = impl_->layout.RunDir(ref, instance);
  std::error_code ec;
  fs::remove_all(run_dir, ec);
  if (remove_workdir) fs::remove_all(impl_->layout.WorkDir(ref, instance), ec);
}

std::vector<DiscoveredShim> SystemHost::Discover() {
  std::vector<DiscoveredShim> out;
  std::error_code ec;
  std::string root = impl_->layout.RunRoot();
  if (!fs::is_directory(root, ec)) return out;
  std::vector<std::string> run_dirs;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it.depth() == 3 && it->is_directory(ec)) {
      run_dirs.push_back(it->path().string());
      it.disable_recursion_pending();
    }
  }
  auto log = Logger("runtime");
  for (const std::string& dir : run_dirs) {
    auto text = detail::ReadFile(dir + "/spec.json");
    auto spec = text.ok() ? detail::ShimSpecFromJson(Json::parse(*text, nullptr, false))
                          : Result<detail::ShimSpec>(NotFound("no spec"));
    detail::ShimState st = detail::ReadShimState(dir);
    if (!spec.ok()) {
      log->warn("msg=\"removing an unreadable instance record\" dir={}", dir);
      fs::remove_all(dir, ec);
      continue;
    }
    DiscoveredShim d;
    d.spec = spec->launch;
    // A shim launched just before the server stopped may not have written its state yet.
    if (int shim = detail::LiveShim(st, detail::ReadLaunchRecord(dir), dir); shim > 0) {
      d.obs.state = ShimObservation::State::kRunning;
      d.obs.shim_pid = shim;
      d.obs.app_pid = st.app_pid;
      d.obs.started_at_ms = st.started_at_ms;
      out.push_back(std::move(d));
      continue;
    }
    if (st.state == "exited") {
      d.obs.state = ShimObservation::State::kExited;
      d.obs.shim_pid = st.shim_pid;
      d.obs.app_pid = st.app_pid;
      d.obs.started_at_ms = st.started_at_ms;
      d.obs.exit = st.exit;
      out.push_back(std::move(d));
      continue;
    }
    // Stale: the shim died without recording an exit (killed, or the machine restarted). Its
    // app may still run if it is the very process recorded; otherwise the pid is someone
    // else's now and is left alone.
    if (detail::IsSameProcess(st.app_pid, st.app_start)) ::kill(-st.app_pid, SIGKILL);
    log->warn("msg=\"removed a stale instance record\" dir={} shim_pid={}", dir, st.shim_pid);
    fs::remove_all(dir, ec);
  }
  return out;
}

ProbeResult SystemHost::RunProbe(const model::Probe& probe, const ProbeTarget& target,
                                 const std::string& netns) {
  auto deadline = Clock::now() + std::chrono::seconds(std::max(1, probe.timeout_s));
  if (probe.type == "command") return CommandProbe(probe, target, deadline);
  if (probe.type == "http") return HttpProbe(probe, target.port, netns, deadline);
  std::string error;
  int fd = Connect(target.port, netns, deadline, &error);
  if (fd < 0) return {false, "tcp connect to port " + std::to_string(target.port) + ": " + error};
  ::close(fd);
  return {true, "connected"};
}

std::string SystemHost::NetnsOf(const ComponentRef& ref) const {
  return impl_->opt.sandbox.config.TeamNetns(ref.team);
}

std::future<ProbeResult> SystemHost::Probe(const model::Probe& probe, const ProbeTarget& target) {
  std::string run_dir = impl_->layout.RunDir(target.ref, target.instance);
  if (probe.type == "command" && impl_->opt.sandbox.config.enabled) {
    // Inside the instance's own sandbox: its user, files, processes and network.
    std::string exe = impl_->opt.sandbox.config.exe;
    return std::async(std::launch::async, [probe, run_dir, exe] {
      auto deadline = Clock::now() + std::chrono::seconds(std::max(1, probe.timeout_s));
      auto text = detail::ReadFile(run_dir + "/spec.json");
      auto spec = text.ok() ? detail::ShimSpecFromJson(Json::parse(*text, nullptr, false))
                            : Result<detail::ShimSpec>(NotFound("no spec"));
      detail::ShimState st = detail::ReadShimState(run_dir);
      if (!spec.ok() || !spec->sandbox || st.app_pid <= 0) {
        return ProbeResult{false, "the instance is not running"};
      }
      sandbox::JoinSpec j;
      j.pid = st.app_pid;
      j.start_ticks = st.app_start;
      j.uid = spec->sandbox->uid;
      j.gid = spec->sandbox->gid;
      j.cwd = spec->sandbox->cwd;
      j.argv = {"/bin/sh", "-c", probe.command};
      j.env = spec->sandbox->env;
      CgroupLayout layout = CgroupLayout::Detect();
      j.cgroup_procs = Cgroup::Open(layout, detail::CgroupName(spec->launch.ref, spec->launch.instance))
                           .ProcsFiles();
      return RunCheckCommand(probe, {exe, "sandbox-join"}, {}, "", sandbox::ToJson(j).dump(), deadline);
    });
  }
  std::string netns = NetnsOf(target.ref);
  return std::async(std::launch::async, [probe, target, netns] { return RunProbe(probe, target, netns); });
}

std::string SystemHost::LogTail(const ComponentRef& ref, const std::string& instance, int lines) {
  std::string out;
  // Only what the app wrote (not the shim's own lines), without the timestamp and stream.
  for (const std::string& l : TailLines(impl_->layout.LogPath(ref, instance), lines + 8)) {
    size_t sp1 = l.find(' ');
    size_t sp2 = sp1 == std::string::npos ? sp1 : l.find(' ', sp1 + 1);
    if (sp2 == std::string::npos) continue;
    std::string stream = l.substr(sp1 + 1, sp2 - sp1 - 1);
    if (stream == "shim") continue;
    if (!out.empty()) out += "\n";
    out += l.substr(sp2 + 1);
  }
  // Keep the last `lines` lines.
  size_t count = 0;
  for (size_t i = out.size(); i-- > 0;) {
    if (out[i] == '\n' && ++count == static_cast<size_t>(lines)) return out.substr(i + 1);
  }
  return out;
}

}  // namespace berth::runtime
