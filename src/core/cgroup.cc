#include "core/cgroup.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace berth {
namespace {

namespace fs = std::filesystem;

// O_CREAT|O_TRUNC as a shell's `>` does: cgroupfs accepts it for its files and refuses to
// create others, and a test directory gets plain files.
bool WriteText(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool ok = ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  ok = ::close(fd) == 0 && ok;
  return ok;
}

std::optional<std::string> ReadText(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::optional<int64_t> ReadNumber(const std::string& path) {
  auto text = ReadText(path);
  if (!text) return std::nullopt;
  char* end = nullptr;
  long long v = std::strtoll(text->c_str(), &end, 10);
  if (end == text->c_str()) return std::nullopt;  // "max" or empty
  return static_cast<int64_t>(v);
}

// "key value" lines (memory.events, memory.oom_control, memory.stat).
std::optional<int64_t> ReadKey(const std::string& path, const std::string& key) {
  auto text = ReadText(path);
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  std::string k;
  long long v = 0;
  while (in >> k >> v) {
    if (k == key) return static_cast<int64_t>(v);
  }
  return std::nullopt;
}

bool Exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

bool Lists(const std::string& controllers_file, const std::string& controller) {
  auto text = ReadText(controllers_file);
  if (!text) return false;
  std::istringstream in(*text);
  std::string c;
  while (in >> c) {
    if (c == controller) return true;
  }
  return false;
}

// mkdir -p, saying why not.
bool MakeDir(const std::string& dir, std::string* problem) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir, ec)) {
    *problem = "cannot create " + dir + ": " + (ec ? ec.message() : "not a directory");
    return false;
  }
  return true;
}

void Append(std::string* problem, const std::string& what) {
  if (!problem->empty()) *problem += "; ";
  *problem += what;
}

}  // namespace

CgroupLayout CgroupLayout::Detect(const std::string& root) {
  CgroupLayout l;
  if (Exists(root + "/cgroup.controllers")) {
    l.v2 = root;
    return l;
  }
  if (Exists(root + "/memory/cgroup.procs")) l.v1_memory = root + "/memory";
  if (Exists(root + "/cpu/cgroup.procs")) l.v1_cpu = root + "/cpu";
  if (Exists(root + "/pids/cgroup.procs")) l.v1_pids = root + "/pids";
  if (l.v1_memory.empty() && Lists(root + "/unified/cgroup.controllers", "memory")) {
    l.v2 = root + "/unified";
    l.v1_cpu.clear();  // one hierarchy per group: the v2 one
    l.v1_pids.clear();
  }
  return l;
}

bool CgroupLayout::Writable() const {
  for (const std::string* d : {&v2, &v1_memory, &v1_cpu, &v1_pids}) {
    if (!d->empty() && ::access(d->c_str(), W_OK) == 0) return true;
  }
  return false;
}

std::string CgroupLayout::Describe() const {
  if (!v2.empty()) return "cgroup v2 at " + v2;
  if (v1_memory.empty() && v1_cpu.empty() && v1_pids.empty()) return "no cgroups";
  std::string s;
  for (auto [name, dir] : {std::pair{"memory", &v1_memory}, {"cpu", &v1_cpu}, {"pids", &v1_pids}}) {
    if (dir->empty()) continue;
    s += std::string(s.empty() ? "" : ", ") + name + " at " + *dir;
  }
  return "cgroup v1 (" + s + ")";
}

Cgroup Cgroup::Create(const CgroupLayout& layout, const std::string& name,
                      const CgroupLimits& limits, std::string* problem) {
  problem->clear();
  Cgroup g;
  if (limits.memory_bytes <= 0 && limits.cpu_millis <= 0 && limits.pids <= 0) return g;
  if (!layout.v2.empty()) {
    g.v2_ = true;
    std::string controllers;
    for (const std::string c : {"memory", "cpu", "pids"}) {
      bool wanted = c == "memory" ? limits.memory_bytes > 0
                    : c == "cpu"  ? limits.cpu_millis > 0
                                  : limits.pids > 0;
      if (!wanted) continue;
      if (!Lists(layout.v2 + "/cgroup.controllers", c)) {
        Append(problem, "no " + c + " controller in " + layout.v2);
        continue;
      }
      controllers += std::string(controllers.empty() ? "" : " ") + "+" + c;
    }
    if (controllers.empty()) return g;
    // Enable the controllers on the way down: root, then every ancestor of the group.
    std::string dir = layout.v2;
    std::string rest = name;
    while (true) {
      size_t slash = rest.find('/');
      // Enabling may fail where it already is enabled by someone else (no harm) or is not
      // allowed; the limit writes below say which.
      WriteText(dir + "/cgroup.subtree_control", controllers);
      dir += "/" + rest.substr(0, slash);
      if (!MakeDir(dir, problem)) return Cgroup{};
      if (slash == std::string::npos) break;
      rest = rest.substr(slash + 1);
    }
    g.memory_dir_ = g.cpu_dir_ = dir;
    if (limits.pids > 0 && controllers.find("+pids") != std::string::npos) {
      g.pids_dir_ = dir;
      if (!WriteText(dir + "/pids.max", std::to_string(limits.pids))) {
        Append(problem, "cannot set " + dir + "/pids.max: " + std::strerror(errno));
      }
    }
    if (limits.memory_bytes > 0 && controllers.find("+memory") != std::string::npos) {
      if (!WriteText(dir + "/memory.max", std::to_string(limits.memory_bytes))) {
        Append(problem, "cannot set " + dir + "/memory.max: " + std::strerror(errno));
      }
      WriteText(dir + "/memory.swap.max", "0");  // absent without swap accounting: fine
    }
    if (limits.cpu_millis > 0 && controllers.find("+cpu") != std::string::npos) {
      if (!WriteText(dir + "/cpu.max", std::to_string(limits.cpu_millis * 100) + " 100000")) {
        Append(problem, "cannot set " + dir + "/cpu.max: " + std::strerror(errno));
      }
    }
    return g;
  }
  if (limits.memory_bytes > 0) {
    std::string dir = layout.v1_memory + "/" + name;
    std::string why;
    if (layout.v1_memory.empty()) {
      Append(problem, "no memory cgroup controller");
    } else if (!MakeDir(dir, &why)) {
      Append(problem, why);
    } else {
      g.memory_dir_ = dir;
      if (!WriteText(dir + "/memory.limit_in_bytes", std::to_string(limits.memory_bytes))) {
        Append(problem, "cannot set " + dir + "/memory.limit_in_bytes: " + std::strerror(errno));
      }
      WriteText(dir + "/memory.swappiness", "0");
    }
  }
  if (limits.pids > 0) {
    std::string dir = layout.v1_pids + "/" + name;
    std::string why;
    if (layout.v1_pids.empty()) {
      Append(problem, "no pids cgroup controller");
    } else if (!MakeDir(dir, &why)) {
      Append(problem, why);
    } else {
      g.pids_dir_ = dir;
      if (!WriteText(dir + "/pids.max", std::to_string(limits.pids))) {
        Append(problem, "cannot set " + dir + "/pids.max: " + std::strerror(errno));
      }
    }
  }
  if (limits.cpu_millis > 0) {
    std::string dir = layout.v1_cpu + "/" + name;
    std::string why;
    if (layout.v1_cpu.empty()) {
      Append(problem, "no cpu cgroup controller");
    } else if (!MakeDir(dir, &why)) {
      Append(problem, why);
    } else {
      g.cpu_dir_ = dir;
      WriteText(dir + "/cpu.cfs_period_us", "100000");
      if (!WriteText(dir + "/cpu.cfs_quota_us", std::to_string(limits.cpu_millis * 100))) {
        Append(problem, "cannot set " + dir + "/cpu.cfs_quota_us: " + std::strerror(errno));
      }
    }
  }
  return g;
}

Cgroup Cgroup::Open(const CgroupLayout& layout, const std::string& name) {
  Cgroup g;
  std::error_code ec;
  if (!layout.v2.empty()) {
    std::string dir = layout.v2 + "/" + name;
    if (fs::is_directory(dir, ec)) {
      g.v2_ = true;
      g.memory_dir_ = g.cpu_dir_ = g.pids_dir_ = dir;
    }
    return g;
  }
  if (!layout.v1_pids.empty() && fs::is_directory(layout.v1_pids + "/" + name, ec)) {
    g.pids_dir_ = layout.v1_pids + "/" + name;
  }
  if (!layout.v1_memory.empty() && fs::is_directory(layout.v1_memory + "/" + name, ec)) {
    g.memory_dir_ = layout.v1_memory + "/" + name;
  }
  if (!layout.v1_cpu.empty() && fs::is_directory(layout.v1_cpu + "/" + name, ec)) {
    g.cpu_dir_ = layout.v1_cpu + "/" + name;
  }
  return g;
}

std::vector<std::string> Cgroup::ProcsFiles() const {
  std::vector<std::string> out;
  if (!memory_dir_.empty()) out.push_back(memory_dir_ + "/cgroup.procs");
  if (!cpu_dir_.empty() && cpu_dir_ != memory_dir_) out.push_back(cpu_dir_ + "/cgroup.procs");
  if (!pids_dir_.empty() && pids_dir_ != memory_dir_ && pids_dir_ != cpu_dir_) {
    out.push_back(pids_dir_ + "/cgroup.procs");
  }
  return out;
}

Status Cgroup::AddProcess(int pid) const {
  for (const std::string& f : ProcsFiles()) {
    if (!WriteText(f, std::to_string(pid))) {
      return Internal("cannot add process " + std::to_string(pid) + " to " + f + ": " +
                      std::strerror(errno));
    }
  }
  return Status::Ok();
}

int64_t Cgroup::OomKills() const {
  if (memory_dir_.empty()) return 0;
  if (v2_) return ReadKey(memory_dir_ + "/memory.events", "oom_kill").value_or(0);
  if (auto n = ReadKey(memory_dir_ + "/memory.oom_control", "oom_kill")) return *n;
  return ReadNumber(memory_dir_ + "/memory.failcnt").value_or(0);
}

std::optional<int64_t> Cgroup::MemoryBytes() const {
  if (memory_dir_.empty()) return std::nullopt;
  auto usage = ReadNumber(memory_dir_ + (v2_ ? "/memory.current" : "/memory.usage_in_bytes"));
  if (!usage) return std::nullopt;
  int64_t inactive =
      ReadKey(memory_dir_ + "/memory.stat", v2_ ? "inactive_file" : "total_inactive_file")
          .value_or(0);
  return inactive < *usage ? *usage - inactive : 0;
}

std::optional<int64_t> Cgroup::MemoryLimitBytes() const {
  if (memory_dir_.empty()) return std::nullopt;
  auto limit = ReadNumber(memory_dir_ + (v2_ ? "/memory.max" : "/memory.limit_in_bytes"));
  // v1 spells "unlimited" as the largest page-aligned value (about 2^63).
  if (!limit || *limit <= 0 || *limit >= (int64_t{1} << 62)) return std::nullopt;
  return limit;
}

std::optional<int64_t> Cgroup::CpuLimitMillis() const {
  if (cpu_dir_.empty()) return std::nullopt;
  int64_t quota = 0, period = 0;
  if (v2_) {
    auto text = ReadText(cpu_dir_ + "/cpu.max");  // "<quota|max> <period>"
    if (!text) return std::nullopt;
    std::istringstream in(*text);
    std::string q;
    if (!(in >> q >> period) || q == "max") return std::nullopt;
    quota = std::atoll(q.c_str());
  } else {
    quota = ReadNumber(cpu_dir_ + "/cpu.cfs_quota_us").value_or(-1);
    period = ReadNumber(cpu_dir_ + "/cpu.cfs_period_us").value_or(0);
  }
  if (quota <= 0 || period <= 0) return std::nullopt;
  return quota * 1000 / period;
}

std::optional<int64_t> Cgroup::PidsLimit() const {
  if (pids_dir_.empty()) return std::nullopt;
  return ReadNumber(pids_dir_ + "/pids.max");  // nullopt for "max"
}

void Cgroup::Remove() {
  std::set<std::string> dirs;
  if (!memory_dir_.empty()) dirs.insert(memory_dir_);
  if (!cpu_dir_.empty()) dirs.insert(cpu_dir_);
  if (!pids_dir_.empty()) dirs.insert(pids_dir_);
  for (const std::string& d : dirs) {
    for (int i = 0; i < 20 && ::rmdir(d.c_str()) != 0 && errno == EBUSY; ++i) ::usleep(10000);
  }
  memory_dir_.clear();
  cpu_dir_.clear();
  pids_dir_.clear();
}

}  // namespace berth
