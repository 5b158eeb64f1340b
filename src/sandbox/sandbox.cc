#include "sandbox/sandbox.h"

#include "core/netns.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

extern char** environ;

namespace berth::sandbox {
namespace {

namespace fs = std::filesystem;

// ---- the spec as JSON (server → shim, builder → sandbox-run) ----------------------------

std::vector<std::string> Strings(const Json& j, const char* key) {
  std::vector<std::string> out;
  if (!j.contains(key) || !j[key].is_array()) return out;
  for (const Json& e : j[key]) {
    if (e.is_string()) out.push_back(e.get<std::string>());
  }
  return out;
}

bool Absolute(const std::string& p) {
  if (p.empty() || p[0] != '/') return false;
  for (const auto& part : fs::path(p)) {
    if (part == "..") return false;
  }
  return true;
}

// ---- building the plan ---------------------------------------------------------------------

Step Mkdir(const std::string& path, unsigned mode, const std::string& what) {
  Step s{Step::Op::kMkdir, path};
  s.mode = mode;
  s.what = what;
  return s;
}

Step Mount(const std::string& source, const std::string& path, const std::string& fstype,
           unsigned long flags, const std::string& data, const std::string& what) {
  Step s{Step::Op::kMount, path, source, fstype, flags, data};
  s.what = what;
  return s;
}

Step Remount(const std::string& path, unsigned long flags, const std::string& what) {
  Step s{Step::Op::kRemount, path};
  s.flags = flags;
  s.what = what;
  return s;
}

Step Simple(Step::Op op, const std::string& path, const std::string& data, const std::string& what) {
  Step s{op, path};
  s.data = data;
  s.what = what;
  return s;
}

bool Under(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         (dir == "/" || path[dir.size()] == '/'));
}

// ---- the child's side: only system calls on what the plan prepared ------------------------

// Reports "E<what>: <error>" and ends the child; the parent turns it into a Status.
[[noreturn]] void Die(int report, const std::string& what) {
  std::string msg = "E" + what + ": " + std::strerror(errno);
  (void)!::write(report, msg.data(), msg.size());
  ::_exit(127);
}

// True when no existing component of `path` below `root` is a symlink (ELOOP otherwise).
bool NoLinkBelow(const std::string& root, const std::string& path) {
  if (root.empty() || !Under(path, root)) return true;
  for (size_t i = root.size(); i < path.size();) {
    size_t j = path.find('/', i + 1);
    if (j == std::string::npos) j = path.size();
    struct stat st {};
    if (::lstat(path.substr(0, j).c_str(), &st) != 0) return true;  // the rest does not exist
    if (S_ISLNK(st.st_mode)) {
      errno = ELOOP;
      return false;
    }
    i = j;
  }
  return true;
}

std::string Parent(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

// mkdir -p that never goes through a symlink below `inside`.
bool MkdirAll(const std::string& path, unsigned mode, const std::string& inside) {
  std::string cur;
  size_t i = 1;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    cur = path.substr(0, j);
    if (!NoLinkBelow(inside, cur)) return false;
    if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) return false;
    i = j + 1;
  }
  return NoLinkBelow(inside, path);
}

void Execute(const std::vector<Step>& plan, int report) {
  for (const Step& s : plan) {
    switch (s.op) {
      case Step::Op::kMkdir:
        if (!MkdirAll(s.path, s.mode, s.inside)) Die(report, s.what);
        {
          struct stat st {};
          if (::stat(s.path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) Die(report, s.what);
        }
        break;
      case Step::Op::kTouch: {
        if (!NoLinkBelow(s.inside, s.path)) Die(report, s.what);
        int fd = ::open(s.path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) Die(report, s.what);
        ::close(fd);
        break;
      }
      case Step::Op::kSymlink:
        if (!NoLinkBelow(s.inside, Parent(s.path))) Die(report, s.what);
        if (::symlink(s.data.c_str(), s.path.c_str()) != 0 && errno != EEXIST) Die(report, s.what);
        break;
      case Step::Op::kWrite: {
        if (!NoLinkBelow(s.inside, s.path)) Die(report, s.what);
        int fd = ::open(s.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, s.mode);
        if (fd < 0 || ::write(fd, s.data.data(), s.data.size()) != static_cast<ssize_t>(s.data.size())) {
          Die(report, s.what);
        }
        ::close(fd);
        break;
      }
      case Step::Op::kMount:
        if (!NoLinkBelow(s.inside, s.path)) Die(report, s.what);
        if (::mount(s.source.empty() ? nullptr : s.source.c_str(), s.path.c_str(),
                    s.fstype.empty() ? nullptr : s.fstype.c_str(), s.flags,
                    s.data.empty() ? nullptr : s.data.c_str()) != 0) {
          Die(report, s.what);
        }
        break;
      case Step::Op::kRemount:
        if (!NoLinkBelow(s.inside, s.path)) Die(report, s.what);
        if (::mount(nullptr, s.path.c_str(), nullptr, MS_REMOUNT | MS_BIND | s.flags, nullptr) != 0) {
          Die(report, s.what);
        }
        break;
      case Step::Op::kChown: {
        size_t colon = s.data.find(':');
        uid_t u = static_cast<uid_t>(std::strtoul(s.data.c_str(), nullptr, 10));
        gid_t g = static_cast<gid_t>(std::strtoul(s.data.c_str() + colon + 1, nullptr, 10));
        if (!NoLinkBelow(s.inside, s.path) || ::lchown(s.path.c_str(), u, g) != 0) Die(report, s.what);
        break;
      }
      case Step::Op::kUnmount:
        if (::umount2(s.path.c_str(), MNT_DETACH) != 0) Die(report, s.what);
        ::rmdir(s.path.c_str());  // the root is still writable: not even the name stays
        break;
    }
  }
}

void WriteAll(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// Closes every descriptor but `keep` (the caller's log, signalfd and state files are not the
// sandbox's business).
void CloseAllBut(std::vector<int> keep) {
  std::sort(keep.begin(), keep.end());
  unsigned from = 0;
  for (int k : keep) {
    if (k < 0) continue;
    if (static_cast<unsigned>(k) > from) ::syscall(SYS_close_range, from, static_cast<unsigned>(k) - 1, 0u);
    from = static_cast<unsigned>(k) + 1;
  }
  ::syscall(SYS_close_range, from, ~0u, 0u);
}

// PID 1 of the sandbox: builds the root, starts the command, supervises it.
[[noreturn]] void Init(const Spec& spec, const std::vector<Step>& plan, int report,
                       int out_fd, int err_fd, const std::vector<char*>& argv,
                       const std::vector<char*>& envp) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ::setpgid(0, 0);
  CloseAllBut({0, 1, 2, report, out_fd, err_fd});
  // Limits first, while the host's cgroupfs is still in view ("0" = the writing process).
  for (const std::string& f : spec.cgroup_procs) {
    int fd = ::open(f.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, "0", 1) != 1) Die(report, "joining the cgroup " + f);
    ::close(fd);
  }
  if (!spec.netns.empty()) {
    int ns = ::open(spec.netns.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) Die(report, "joining the network " + spec.netns);
    ::close(ns);
  }
  if (::sethostname(spec.hostname.data(), spec.hostname.size()) != 0) Die(report, "setting the hostname");
  Execute(plan, report);
  const std::string old = spec.root + "/.old";
  if (::syscall(SYS_pivot_root, spec.root.c_str(), old.c_str()) != 0) Die(report, "pivot_root");
  if (::chdir("/") != 0) Die(report, "chdir /");
  if (::umount2("/.old", MNT_DETACH) != 0) Die(report, "detaching the host's root");
  ::rmdir("/.old");
  if (::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0) {
    Die(report, "making the root read-only");
  }

  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, nullptr);
  pid_t app = ::fork();
  if (app < 0) Die(report, "starting the command");
  if (app == 0) {
    ::setsid();
    struct rlimit core {0, 0};
    ::setrlimit(RLIMIT_CORE, &core);
    if (::setgroups(0, nullptr) != 0 || ::setresgid(spec.gid, spec.gid, spec.gid) != 0 ||
        ::setresuid(spec.uid, spec.uid, spec.uid) != 0) {
      ::_exit(126);
    }
    ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (::chdir(spec.cwd.c_str()) != 0) ::_exit(126);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull < 0) ::_exit(126);
    ::dup2(devnull, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    ::syscall(SYS_close_range, 3u, ~0u, 0u);
    for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  // The pipes are the command's now: EOF reaches the reader when the command's side closes.
  int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  ::dup2(devnull, 0);
  ::dup2(devnull, 1);
  ::dup2(devnull, 2);
  if (out_fd > 2) ::close(out_fd);
  if (err_fd > 2 && err_fd != out_fd) ::close(err_fd);
  WriteAll(report, "R", 1);

  int app_status = 0;
  bool app_done = false;
  while (true) {
    siginfo_t si{};
    if (::sigwaitinfo(&all, &si) < 0) continue;
    if (si.si_signo == SIGCHLD) {
      int st = 0;
      pid_t p;
      while ((p = ::waitpid(-1, &st, WNOHANG)) > 0) {
        if (p == app) {
          app_done = true;
          app_status = st;
        }
      }
      if (app_done) break;
      continue;
    }
    if (si.si_signo == SIGTERM || si.si_signo == SIGINT || si.si_signo == SIGHUP ||
        si.si_signo == SIGQUIT || si.si_signo == SIGUSR1 || si.si_signo == SIGUSR2) {
      ::kill(-app, si.si_signo);
    }
  }
  // Whatever the command left behind goes with it.
  ::kill(-1, SIGKILL);
  while (::waitpid(-1, nullptr, 0) > 0 || errno == EINTR) {
  }
  char msg[1 + sizeof(int)];
  msg[0] = 'X';
  std::memcpy(msg + 1, &app_status, sizeof(int));
  WriteAll(report, msg, sizeof msg);
  ::_exit(0);
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

Json ToJson(const Spec& s) {
  Json binds = Json::array();
  for (const Bind& b : s.binds) {
    binds.push_back({{"source", b.source}, {"target", b.target}, {"writable", b.writable}});
  }
  return Json{{"uid", s.uid},       {"gid", s.gid},           {"user", s.user},
              {"hostname", s.hostname}, {"netns", s.netns},   {"root", s.root},
              {"app_dir", s.app_dir}, {"app_layers", s.app_layers}, {"app_mb", s.app_mb},
              {"binds", binds},
              {"system", s.system},   {"hide", s.hide},       {"tmp_mb", s.tmp_mb},
              {"cwd", s.cwd},         {"home", s.home},       {"argv", s.argv},
              {"env", s.env},         {"cgroup_procs", s.cgroup_procs}};
}

Result<Spec> SpecFromJson(const Json& j) {
  if (!j.is_object()) return InvalidArgument("the sandbox spec is not a JSON object");
  Spec s;
  auto str = [&](const char* k, std::string* out) {
    if (j.contains(k) && j[k].is_string()) *out = j[k].get<std::string>();
  };
  if (j.contains("uid") && j["uid"].is_number_unsigned()) s.uid = j["uid"].get<uint32_t>();
  if (j.contains("gid") && j["gid"].is_number_unsigned()) s.gid = j["gid"].get<uint32_t>();
  str("user", &s.user);
  str("hostname", &s.hostname);
  str("netns", &s.netns);
  str("root", &s.root);
  str("app_dir", &s.app_dir);
  s.app_layers = Strings(j, "app_layers");
  if (j.contains("app_mb") && j["app_mb"].is_number_integer()) s.app_mb = j["app_mb"].get<int64_t>();
  str("cwd", &s.cwd);
  str("home", &s.home);
  if (j.contains("tmp_mb") && j["tmp_mb"].is_number_integer()) s.tmp_mb = j["tmp_mb"].get<int64_t>();
  if (j.contains("binds") && j["binds"].is_array()) {
    for (const Json& b : j["binds"]) {
      if (!b.is_object()) continue;
      s.binds.push_back({b.value("source", ""), b.value("target", ""), b.value("writable", false)});
    }
  }
  s.system = Strings(j, "system");
  s.hide = Strings(j, "hide");
  s.argv = Strings(j, "argv");
  s.env = Strings(j, "env");
  s.cgroup_procs = Strings(j, "cgroup_procs");
  return s;
}

std::vector<std::string> DefaultSystemPaths() {
  std::vector<std::string> out;
  for (const char* p : {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"}) {
    std::error_code ec;
    if (fs::symlink_status(p, ec).type() != fs::file_type::not_found) out.push_back(p);
  }
  return out;
}

Result<std::vector<Step>> Plan(const Spec& spec) {
  if (spec.uid == 0 || spec.gid == 0) return InvalidArgument("a sandbox never runs as root", "uid");
  if (!Absolute(spec.root)) return InvalidArgument("the sandbox root must be an absolute path", "root");
  if (!spec.app_dir.empty() && !Absolute(spec.app_dir)) {
    return InvalidArgument("app_dir must be an absolute path", "app_dir");
  }
  if (spec.argv.empty() || spec.argv[0].empty() || spec.argv[0][0] != '/') {
    return InvalidArgument("the command must start with an absolute path", "argv");
  }
  if (!Absolute(spec.cwd)) return InvalidArgument("cwd must be an absolute path", "cwd");
  const std::string R = spec.root;
  const unsigned long kSafe = MS_NOSUID | MS_NODEV;
  std::vector<Step> plan;
  plan.push_back(Mount("", "/", "", MS_REC | MS_PRIVATE, "", "making the mounts private"));
  plan.push_back(Mount("tmpfs", R, "tmpfs", kSafe, "mode=0755,size=16m", "mounting the new root"));

  // The system, read-only, where the host has it (links stay links).
  std::vector<std::string> shown;
  for (const std::string& p : spec.system) {
    if (!Absolute(p) || p == "/") return InvalidArgument("system path " + p + " is not allowed", "system");
    std::error_code ec;
    fs::file_status st = fs::symlink_status(p, ec);
    if (ec || st.type() == fs::file_type::not_found) continue;
    if (st.type() == fs::file_type::symlink) {
      std::string target = fs::read_symlink(p, ec).string();
      if (ec) continue;
      plan.push_back(Mkdir(R + fs::path(p).parent_path().string(), 0755, "creating " + p));
      plan.push_back(Simple(Step::Op::kSymlink, R + p, target, "linking " + p));
      continue;
    }
    if (st.type() != fs::file_type::directory) continue;
    plan.push_back(Mkdir(R + p, 0755, "creating " + p));
    plan.push_back(Mount(p, R + p, "", MS_BIND | MS_REC, "", "showing " + p));
    plan.push_back(Remount(R + p, MS_RDONLY | kSafe, "making " + p + " read-only"));
    shown.push_back(p);
  }
  // Platform files that sit under a shown directory disappear behind an empty tmpfs.
  for (const std::string& h : spec.hide) {
    if (!Absolute(h)) return InvalidArgument("hidden path " + h + " must be absolute", "hide");
    bool visible = false;
    for (const std::string& p : shown) visible |= Under(h, p);
    std::error_code ec;
    if (!visible || !fs::is_directory(h, ec)) continue;
    plan.push_back(Mount("tmpfs", R + h, "tmpfs", kSafe | MS_RDONLY | MS_NOEXEC, "mode=0000,size=4k",
                         "hiding " + h));
  }

  // Who the command is, in /etc (files on the root's tmpfs bound over the host's).
  const std::string uid = std::to_string(spec.uid), gid = std::to_string(spec.gid);
  const std::string etc = R + "/.berth";
  plan.push_back(Mkdir(etc, 0755, "creating /.berth"));
  struct EtcFile {
    const char* name;
    std::string content;
  };
  std::vector<EtcFile> files = {
      {"passwd", "root:x:0:0:root:/root:/usr/sbin/nologin\n" + spec.user + ":x:" + uid + ":" + gid +
                     ":berth:" + spec.home + ":/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"},
      {"group", "root:x:0:\n" + spec.user + ":x:" + gid + ":\nnogroup:x:65534:\n"},
      {"hosts", "127.0.0.1\tlocalhost " + spec.hostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n"},
      {"hostname", spec.hostname + "\n"},
  };
  bool etc_shown = false;
  for (const std::string& p : shown) etc_shown |= p == "/etc";
  for (const EtcFile& f : files) {
    std::string host = std::string("/etc/") + f.name;
    std::error_code ec;
    Step w = Simple(Step::Op::kWrite, etc + "/" + f.name, f.content, std::string("writing /etc/") + f.name);
    w.mode = 0644;
    plan.push_back(w);
    if (etc_shown && fs::is_regular_file(host, ec)) {
      plan.push_back(Mount(etc + "/" + f.name, R + host, "", MS_BIND, "", "showing " + host));
      plan.push_back(Remount(R + host, MS_RDONLY | kSafe, "making " + host + " read-only"));
    }
  }

  // /app.
  if (!spec.app_layers.empty()) {
    std::string lower;
    for (const std::string& l : spec.app_layers) {
      if (!Absolute(l)) return InvalidArgument("an app layer must be an absolute path", "app_layers");
      if (l.find_first_of(",:\\") != std::string::npos) {
        return InvalidArgument("an app layer cannot contain ',', ':' or '\\': " + l, "app_layers");
      }
      lower += (lower.empty() ? "" : ":") + l;
    }
    // The writable layer: a tmpfs of the sandbox's own, detached from view once the overlay
    // holds it (the overlay keeps its own reference).
    const std::string layer = R + "/.berth/app-layer";
    plan.push_back(Mkdir(layer, 0700, "creating the app's writable layer"));
    plan.push_back(Mount("tmpfs", layer, "tmpfs", kSafe,
                         "mode=0755,size=" + std::to_string(std::max<int64_t>(1, spec.app_mb)) + "m",
                         "mounting the app's writable layer"));
    plan.push_back(Mkdir(layer + "/upper", 0755, "creating the app's upper layer"));
    plan.push_back(Simple(Step::Op::kChown, layer + "/upper", uid + ":" + gid, "giving /app to its user"));
    plan.push_back(Mkdir(layer + "/work", 0700, "creating the overlay's work dir"));
    plan.push_back(Mkdir(R + "/app", 0755, "creating /app"));
    plan.push_back(Mount("overlay", R + "/app", "overlay", kSafe,
                         "lowerdir=" + lower + ",upperdir=" + layer + "/upper,workdir=" + layer + "/work",
                         "mounting /app (an overlay of the artifact)"));
    plan.push_back(Simple(Step::Op::kUnmount, layer, "", "detaching the app's writable layer"));
  } else if (!spec.app_dir.empty()) {
    plan.push_back(Mkdir(R + "/app", 0755, "creating /app"));
    plan.push_back(Mount(spec.app_dir, R + "/app", "", MS_BIND | MS_REC, "", "showing /app"));
    plan.push_back(Remount(R + "/app", kSafe, "mounting /app nosuid"));
  }
  // Private scratch space, before the binds: a bind that lies under /tmp or /run (the berth
  // binary of a build tree in /tmp, shown to run `berth static`) must not be covered by it.
  const std::string tmp = "mode=1777,size=" + std::to_string(std::max<int64_t>(1, spec.tmp_mb)) + "m";
  plan.push_back(Mkdir(R + "/tmp", 0755, "creating /tmp"));
  plan.push_back(Mount("tmpfs", R + "/tmp", "tmpfs", kSafe, tmp, "mounting /tmp"));
  plan.push_back(Mkdir(R + "/run", 0755, "creating /run"));
  plan.push_back(Mount("tmpfs", R + "/run", "tmpfs", kSafe,
                       "mode=0755,size=8m,uid=" + uid + ",gid=" + gid, "mounting /run"));
  plan.push_back(Mkdir(R + "/var", 0755, "creating /var"));
  plan.push_back(Simple(Step::Op::kSymlink, R + "/var/tmp", "/tmp", "linking /var/tmp"));

  for (const Bind& b : spec.binds) {
    if (!Absolute(b.source) || !Absolute(b.target) || b.target == "/") {
      return InvalidArgument("bind " + b.source + " → " + b.target + " needs absolute paths", "binds");
    }
    std::error_code ec;
    bool dir = fs::is_directory(b.source, ec);
    if (dir) {
      plan.push_back(Mkdir(R + b.target, 0755, "creating " + b.target));
    } else {
      plan.push_back(Mkdir(R + fs::path(b.target).parent_path().string(), 0755, "creating " + b.target));
      plan.push_back(Simple(Step::Op::kTouch, R + b.target, "", "creating " + b.target));
    }
    plan.push_back(Mount(b.source, R + b.target, "", MS_BIND | MS_REC, "", "showing " + b.target));
    plan.push_back(Remount(R + b.target, kSafe | (b.writable ? 0 : MS_RDONLY),
                           "setting the options of " + b.target));
  }

  // A minimal /dev: the harmless character devices of the host, ptys of its own.
  plan.push_back(Mkdir(R + "/dev", 0755, "creating /dev"));
  plan.push_back(Mount("tmpfs", R + "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k",
                       "mounting /dev"));
  for (const char* d : {"null", "zero", "full", "random", "urandom", "tty"}) {
    std::string dev = std::string("/dev/") + d;
    plan.push_back(Simple(Step::Op::kTouch, R + dev, "", "creating " + dev));
    plan.push_back(Mount(dev, R + dev, "", MS_BIND, "", "showing " + dev));
  }
  plan.push_back(Simple(Step::Op::kSymlink, R + "/dev/fd", "/proc/self/fd", "linking /dev/fd"));
  plan.push_back(Simple(Step::Op::kSymlink, R + "/dev/stdin", "/proc/self/fd/0", "linking /dev/stdin"));
  plan.push_back(Simple(Step::Op::kSymlink, R + "/dev/stdout", "/proc/self/fd/1", "linking /dev/stdout"));
  plan.push_back(Simple(Step::Op::kSymlink, R + "/dev/stderr", "/proc/self/fd/2", "linking /dev/stderr"));
  plan.push_back(Mkdir(R + "/dev/shm", 0755, "creating /dev/shm"));
  plan.push_back(Mount("tmpfs", R + "/dev/shm", "tmpfs", kSafe | MS_NOEXEC, "mode=1777,size=64m",
                       "mounting /dev/shm"));
  plan.push_back(Mkdir(R + "/dev/pts", 0755, "creating /dev/pts"));
  plan.push_back(Mount("devpts", R + "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                       "newinstance,ptmxmode=0666,mode=0620", "mounting /dev/pts"));
  plan.push_back(Simple(Step::Op::kSymlink, R + "/dev/ptmx", "pts/ptmx", "linking /dev/ptmx"));
  plan.push_back(Mkdir(R + "/proc", 0755, "creating /proc"));
  plan.push_back(Mount("proc", R + "/proc", "proc", kSafe | MS_NOEXEC, "", "mounting /proc"));
  plan.push_back(Mkdir(R + "/.old", 0700, "creating the pivot point"));
  for (Step& s : plan) s.inside = R;
  return plan;
}

namespace {

// execve's NULL-terminated view of `v` (which must outlive it; prepared before fork/clone,
// where allocating is no longer safe).
std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& x : v) out.push_back(x.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

Result<Started> Start(const Spec& spec, int stdout_fd, int stderr_fd) {
  BERTH_ASSIGN_OR_RETURN(std::vector<Step> plan, Plan(spec));
  std::vector<std::string> argv_s = spec.argv, env_s = spec.env;
  std::vector<char*> argv = CStrings(argv_s), envp = CStrings(env_s);
  int rp[2];
  if (::pipe2(rp, O_CLOEXEC) != 0) return Internal(Errno("pipe"));
  // fork with new namespaces; the child continues on a copy of this stack (no CLONE_VM).
  long pid = ::syscall(SYS_clone, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD,
                       nullptr, nullptr, nullptr, nullptr);
  if (pid < 0) {
    int e = errno;
    ::close(rp[0]);
    ::close(rp[1]);
    errno = e;
    return Unavailable(Errno("cannot create the sandbox's namespaces (clone)"));
  }
  if (pid == 0) {
    ::close(rp[0]);
    Init(spec, plan, rp[1], stdout_fd, stderr_fd, argv, envp);
  }
  ::close(rp[1]);
  Started s;
  s.init = static_cast<pid_t>(pid);
  s.report = rp[0];
  char c = 0;
  ssize_t n;
  while ((n = ::read(rp[0], &c, 1)) < 0 && errno == EINTR) {
  }
  if (n == 1 && c == 'R') {
    // The command is the init's only child: its pid in our namespace.
    std::string kids = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children";
    std::ifstream in(kids);
    in >> s.app;
    return s;
  }
  std::string why;
  if (n == 1 && c == 'E') {
    char buf[512];
    while ((n = ::read(rp[0], buf, sizeof buf)) > 0) why.append(buf, static_cast<size_t>(n));
  }
  ::close(rp[0]);
  int st = 0;
  while (::waitpid(static_cast<pid_t>(pid), &st, 0) < 0 && errno == EINTR) {
  }
  return Unavailable("cannot set up the sandbox: " + (why.empty() ? "its init ended early" : why));
}

int CommandStatus(const Started& s, int init_status) {
  char msg[1 + sizeof(int)];
  size_t got = 0;
  while (got < sizeof msg) {
    ssize_t n = ::read(s.report, msg + got, sizeof msg - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  if (got == sizeof msg && msg[0] == 'X') {
    int st = 0;
    std::memcpy(&st, msg + 1, sizeof st);
    return st;
  }
  return init_status;
}

Json ToJson(const JoinSpec& s) {
  return Json{{"pid", s.pid}, {"start_ticks", s.start_ticks}, {"uid", s.uid}, {"gid", s.gid},
              {"cwd", s.cwd}, {"argv", s.argv}, {"env", s.env}, {"cgroup_procs", s.cgroup_procs}};
}

Result<JoinSpec> JoinSpecFromJson(const Json& j) {
  if (!j.is_object()) return InvalidArgument("the join spec is not a JSON object");
  JoinSpec s;
  s.pid = j.value("pid", 0);
  s.start_ticks = j.value("start_ticks", int64_t{0});
  if (j.contains("uid") && j["uid"].is_number_unsigned()) s.uid = j["uid"].get<uint32_t>();
  if (j.contains("gid") && j["gid"].is_number_unsigned()) s.gid = j["gid"].get<uint32_t>();
  s.cwd = j.value("cwd", "/app");
  s.argv = Strings(j, "argv");
  s.env = Strings(j, "env");
  s.cgroup_procs = Strings(j, "cgroup_procs");
  return s;
}

Result<int> Join(const JoinSpec& spec) {
  if (spec.uid == 0 || spec.gid == 0) return InvalidArgument("a sandbox never runs as root", "uid");
  if (spec.pid <= 0 || spec.argv.empty() || spec.argv[0].empty() || spec.argv[0][0] != '/') {
    return InvalidArgument("a join needs a pid and a command with an absolute path");
  }
  auto start_ticks = [&]() -> int64_t {
    std::ifstream f("/proc/" + std::to_string(spec.pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    size_t close = text.rfind(')');
    if (close == std::string::npos) return 0;
    std::istringstream in(text.substr(close + 2));
    std::string field;
    for (int i = 3; i <= 22 && in >> field; ++i) {
      if (i == 3 && field == "Z") return 0;
      if (i == 22) return std::atoll(field.c_str());
    }
    return 0;
  };
  if (start_ticks() != spec.start_ticks) return NotFound("the instance's process is gone");
  const char* kinds[] = {"ipc", "uts", "net", "pid", "mnt"};
  const int types[] = {CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET, CLONE_NEWPID, CLONE_NEWNS};
  int fds[5];
  for (int i = 0; i < 5; ++i) {
    fds[i] = ::open(("/proc/" + std::to_string(spec.pid) + "/ns/" + kinds[i]).c_str(), O_RDONLY | O_CLOEXEC);
    if (fds[i] < 0) return NotFound(Errno(std::string("cannot open the instance's ") + kinds[i] + " namespace"));
  }
  // Opened, then checked again: the descriptors are the namespaces of that very process.
  if (start_ticks() != spec.start_ticks) return NotFound("the instance's process is gone");
  for (const std::string& f : spec.cgroup_procs) {
    int fd = ::open(f.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      (void)!::write(fd, "0", 1);
      ::close(fd);
    }
  }
  for (int i = 0; i < 5; ++i) {
    if (::setns(fds[i], types[i]) != 0) return Internal(Errno(std::string("setns ") + kinds[i]));
    ::close(fds[i]);
  }
  std::vector<std::string> argv_s = spec.argv, env_s = spec.env;
  std::vector<char*> argv = CStrings(argv_s), envp = CStrings(env_s);
  pid_t pid = ::fork();  // enters the PID namespace
  if (pid < 0) return Internal(Errno("fork"));
  if (pid == 0) {
    ::setpgid(0, 0);
    if (::setgroups(0, nullptr) != 0 || ::setresgid(spec.gid, spec.gid, spec.gid) != 0 ||
        ::setresuid(spec.uid, spec.uid, spec.uid) != 0) {
      ::_exit(126);
    }
    ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::chdir(spec.cwd.c_str()) != 0 && ::chdir("/") != 0) ::_exit(126);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::syscall(SYS_close_range, 3u, ~0u, 0u);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return st;
}

void GiveTree(const std::string& path, uint32_t uid, bool if_top_differs) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;
  if (if_top_differs && st.st_uid == uid) return;
  std::error_code ec;
  if (S_ISDIR(st.st_mode)) {
    for (auto it = fs::recursive_directory_iterator(path, fs::directory_options::none, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      (void)!::lchown(it->path().c_str(), uid, uid);
    }
  }
  (void)!::lchown(path.c_str(), uid, uid);
}

std::string JoinPath(const std::string& front, const std::string& base) {
  std::vector<std::string> entries;
  auto add = [&entries](const std::string& list) {
    size_t i = 0;
    while (i <= list.size()) {
      size_t j = list.find(':', i);
      if (j == std::string::npos) j = list.size();
      std::string e = list.substr(i, j - i);
      if (!e.empty() && std::find(entries.begin(), entries.end(), e) == entries.end()) {
        entries.push_back(e);
      }
      i = j + 1;
    }
  };
  add(front);
  add(base);
  std::string out;
  for (const std::string& e : entries) out += (out.empty() ? "" : ":") + e;
  return out;
}

std::string Config::Path() const {
  if (!path.empty()) return path;
  if (enabled) return kSystemPath;
  const char* own = std::getenv("PATH");
  return own != nullptr && *own != '\0' ? own : kSystemPath;
}

Result<std::string> Config::TeamDir(const std::string& team) const {
  if (disks) {
    uint32_t uid = 0;
    if (enabled && team_uid) {
      BERTH_ASSIGN_OR_RETURN(uid, team_uid(team));
    }
    return disks->Ensure(team, uid);
  }
  std::string dir = data_dir + "/teams/" + team;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create " + dir + ": " + ec.message());
  return dir;
}

Result<Spec> Config::Base(const std::string& team, const std::string& hostname) const {
  if (!enabled) return FailedPrecondition("the sandbox is off");
  if (!team_uid) return Internal("the sandbox has no identity source");
  BERTH_ASSIGN_OR_RETURN(uint32_t uid, team_uid(team));
  Spec sb;
  sb.uid = sb.gid = uid;
  sb.hostname = hostname;
  sb.root = root;
  sb.system = system;
  sb.hide = hide;
  if (std::string ns = TeamNetns(team); !ns.empty()) {
    std::error_code ec;
    fs::create_directories(netns_dir, ec);
    BERTH_RETURN_IF_ERROR(EnsureNetns(ns));
    if (on_network) BERTH_RETURN_IF_ERROR(on_network(team, ns));
    sb.netns = ns;
  }
  bool exe_shown = exe.empty();
  for (const std::string& p : system) exe_shown |= Under(exe, p);
  if (!exe_shown) sb.binds.push_back({exe, exe, false});
  sb.env = env;
  return sb;
}

std::string Check(const std::string& exe, const std::string& root, uint32_t uid) {
  Spec spec;
  spec.uid = spec.gid = uid;
  spec.root = root;
  spec.system = DefaultSystemPaths();
  spec.argv = {"/bin/sh", "-c", "test \"$(id -u)\" = " + std::to_string(uid) + " && test -r /etc/passwd"};
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.cwd = "/";
  std::string text = ToJson(spec).dump();
  int sp[2], out[2];
  if (::pipe2(sp, O_CLOEXEC) != 0) return Errno("pipe");
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(sp[0]);
    ::close(sp[1]);
    return Errno("pipe");
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, out[1], 2);
  posix_spawn_file_actions_adddup2(&fa, sp[0], 3);
  std::string a0 = exe, a1 = "sandbox-run";
  char* argv[] = {a0.data(), a1.data(), nullptr};
  char* envp[] = {nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  ::close(sp[0]);
  ::close(out[1]);
  if (rc != 0) {
    ::close(sp[1]);
    ::close(out[0]);
    return std::string("cannot run ") + exe + ": " + std::strerror(rc);
  }
  (void)!::write(sp[1], text.data(), text.size());
  ::close(sp[1]);
  std::string output;
  char buf[1024];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0 && output.size() < 4096) output.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return "";
  while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
  if (output.empty()) output = "the test command failed (status " + std::to_string(st) + ")";
  return output;
}

}  // namespace berth::sandbox
