#include "builder/detail/step_record.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "core/env.h"

namespace berth::builder::detail {
namespace {

namespace fs = std::filesystem;

std::string ReadSmall(const std::string& path, size_t limit) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string out;
  char buf[8192];
  while (out.size() < limit) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// Replaced atomically (core/env.h): a crash never leaves a record without its token.
bool WriteSmall(const std::string& path, const std::string& text) {
  return Env::Default().WriteFileAtomic(path, text, 0600).ok();
}

struct Recorded {
  std::string token;
  int pgid = 0;
};

// The process group of `pid` from /proc/PID/stat ("pid (comm) state ppid pgrp ..."); 0 if gone.
int ProcessGroup(const std::string& pid) {
  std::string stat = ReadSmall("/proc/" + pid + "/stat", 4096);
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  char state = 0;
  int ppid = 0, pgrp = 0;
  if (std::sscanf(stat.c_str() + paren + 1, " %c %d %d", &state, &ppid, &pgrp) != 3) return 0;
  return pgrp;
}

}  // namespace

StepRecord::StepRecord(const std::string& dir, const std::string& name) : path_(dir + "/" + name) {
  std::random_device rd;
  static const char* kHex = "0123456789abcdef";
  for (int i = 0; i < 8; ++i) {
    uint32_t v = rd();
    for (int j = 0; j < 4; ++j) token_.push_back(kHex[(v >> (j * 8)) & 15]);
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  Write(0);
}

StepRecord::~StepRecord() {
  if (ok_) ::unlink(path_.c_str());
}

std::string StepRecord::EnvEntry() const { return std::string(kStepTokenVar) + "=" + token_; }

void StepRecord::Started(int pgid) { Write(pgid); }

void StepRecord::Write(int pgid) {
  bool ok = WriteSmall(path_, token_ + " " + std::to_string(pgid) + "\n");
  ok_ = ok_ || ok;
}

int KillLeftoverSteps(const std::string& dir, spdlog::logger& log) {
  std::vector<Recorded> records;
  std::vector<std::string> files;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    files.push_back(it->path().string());
    std::string text = ReadSmall(it->path().string(), 256);
    Recorded r;
    size_t sp = text.find(' ');
    r.token = text.substr(0, sp);
    if (sp != std::string::npos) r.pgid = std::atoi(text.c_str() + sp + 1);
    if (r.token.size() == 32 && r.token.find_first_not_of("0123456789abcdef") == std::string::npos) {
      records.push_back(r);
    }
  }
  std::set<int> killed;
  std::string self = std::to_string(::getpid());
  // Processes may fork while we look: repeat until a pass finds none.
  for (int pass = 0; pass < 50 && !records.empty(); ++pass) {
    std::vector<int> pids;
    std::set<int> groups;
    DIR* proc = ::opendir("/proc");
    if (!proc) break;
    while (dirent* e = ::readdir(proc)) {
      std::string pid = e->d_name;
      if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos || pid == self) {
        continue;
      }
      // NUL-separated KEY=VALUE entries as the process was started.
      std::string env(1, '\0');
      env += ReadSmall("/proc/" + pid + "/environ", 1 << 20);
      env.push_back('\0');
      for (const Recorded& r : records) {
        std::string entry = std::string(1, '\0') + kStepTokenVar + "=" + r.token + '\0';
        if (env.find(entry) == std::string::npos) continue;
        pids.push_back(std::atoi(pid.c_str()));
        if (r.pgid > 0 && ProcessGroup(pid) == r.pgid) groups.insert(r.pgid);
        break;
      }
    }
    ::closedir(proc);
    if (pids.empty()) break;
    // The groups first, while a member showing the token keeps their id from being reused:
    // this also ends members that dropped the token from their environment.
    for (int g : groups) ::killpg(g, SIGKILL);
    for (int p : pids) {
      if (::kill(p, SIGKILL) == 0) killed.insert(p);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (const std::string& f : files) ::unlink(f.c_str());
  if (!killed.empty()) {
    log.warn("msg=\"killed the build steps a previous server left running\" processes={}",
             killed.size());
  }
  return static_cast<int>(killed.size());
}

}  // namespace berth::builder::detail
