#include "build/detail/limits.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "build/detail/process.h"

namespace berth::build::detail {
namespace {

namespace fs = std::filesystem;

bool WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  if (!f) return false;
  f << text;
  f.flush();
  return static_cast<bool>(f);
}

std::string ReadText(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool MakeDir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  return !ec && fs::is_directory(dir, ec);
}

}  // namespace

BuildMemoryLimit::BuildMemoryLimit(const std::string& id, int64_t limit_mb) : limit_mb_(limit_mb) {
  if (limit_mb <= 0) return;
  const std::string bytes = std::to_string(limit_mb * 1024 * 1024);
  std::error_code ec;
  std::string why;
  if (fs::exists("/sys/fs/cgroup/cgroup.controllers", ec)) {
    // v2: a controller is usable in a child only when every ancestor enables it for its subtree.
    WriteText("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
    std::string base = "/sys/fs/cgroup/berth";
    if (MakeDir(base) && WriteText(base + "/cgroup.subtree_control", "+memory") &&
        MakeDir(base + "/builds") && WriteText(base + "/builds/cgroup.subtree_control", "+memory")) {
      std::string dir = base + "/builds/" + id;
      if (MakeDir(dir) && WriteText(dir + "/memory.max", bytes)) {
        WriteText(dir + "/memory.swap.max", "0");
        dir_ = dir;
        v2_ = true;
      }
    }
    if (dir_.empty()) why = "cannot set up a cgroup v2 memory limit under /sys/fs/cgroup/berth";
  } else if (fs::exists("/sys/fs/cgroup/memory", ec)) {
    std::string dir = "/sys/fs/cgroup/memory/berth/builds/" + id;
    if (MakeDir(dir) && WriteText(dir + "/memory.limit_in_bytes", bytes)) {
      dir_ = dir;
    } else {
      why = "cannot create " + dir + ": " + std::strerror(errno);
    }
  } else {
    why = "no memory cgroup controller on this machine";
  }
  if (!dir_.empty()) {
    describe_ = std::string("memory limit ") + std::to_string(limit_mb) + " MiB (cgroup " + (v2_ ? "v2" : "v1") + ")";
    oom_seen_ = OomCount();
  } else {
    describe_ = "memory limit " + std::to_string(limit_mb) + " MiB as RLIMIT_AS (" + why +
                "; address space, not resident memory)";
  }
}

BuildMemoryLimit::~BuildMemoryLimit() {
  if (dir_.empty()) return;
  // Steps are killed as process groups before this runs; a cgroup with no processes left can
  // be removed (rmdir, never a recursive delete: cgroup files cannot be unlinked).
  ::rmdir(dir_.c_str());
}

std::string BuildMemoryLimit::Wrap(const std::string& command) const {
  if (limit_mb_ <= 0) return command;
  if (!dir_.empty()) {
    // The shell moves itself into the cgroup, then becomes the step: everything the step starts
    // is born inside the limit.
    return "echo $$ > " + ShellQuote(dir_ + "/cgroup.procs") + " && exec /bin/sh -c " + ShellQuote(command);
  }
  return "ulimit -v " + std::to_string(limit_mb_ * 1024) + " && exec /bin/sh -c " + ShellQuote(command);
}

int64_t BuildMemoryLimit::OomCount() const {
  if (dir_.empty()) return 0;
  if (v2_) {
    std::istringstream in(ReadText(dir_ + "/memory.events"));
    std::string key;
    int64_t value = 0;
    while (in >> key >> value) {
      if (key == "oom_kill") return value;
    }
    return 0;
  }
  // v1: memory.oom_control has "oom_kill N" on newer kernels; failcnt counts hits of the limit.
  std::istringstream in(ReadText(dir_ + "/memory.oom_control"));
  std::string key;
  int64_t value = 0;
  while (in >> key >> value) {
    if (key == "oom_kill") return value;
  }
  std::string fc = ReadText(dir_ + "/memory.failcnt");
  return fc.empty() ? 0 : std::atoll(fc.c_str());
}

bool BuildMemoryLimit::OomKilledSinceLastCheck() {
  int64_t now = OomCount();
  bool more = now > oom_seen_;
  oom_seen_ = now;
  return more;
}

}  // namespace berth::build::detail
