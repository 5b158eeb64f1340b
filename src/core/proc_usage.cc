#include "core/proc_usage.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

namespace berth {

std::map<int, ProcessGroupUsage> ReadProcessGroups(const std::set<int>& pgids,
                                                   const std::string& proc_root) {
  std::map<int, ProcessGroupUsage> out;
  if (pgids.empty()) return out;
  DIR* dir = ::opendir(proc_root.c_str());
  if (dir == nullptr) return out;
  static const long kTicks = ::sysconf(_SC_CLK_TCK) > 0 ? ::sysconf(_SC_CLK_TCK) : 100;
  static const long kPage = ::sysconf(_SC_PAGESIZE) > 0 ? ::sysconf(_SC_PAGESIZE) : 4096;
  while (dirent* e = ::readdir(dir)) {
    const char* name = e->d_name;
    if (name[0] < '0' || name[0] > '9') continue;
    std::ifstream f(proc_root + "/" + name + "/stat");
    std::string stat;
    if (!f || !std::getline(f, stat)) continue;  // exited meanwhile
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so parse from
    // the last ')'.
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream in(stat.substr(close + 1));
    std::vector<std::string> fields;  // fields[0] = state (field 3 of proc(5))
    std::string tok;
    while (in >> tok && fields.size() < 22) fields.push_back(tok);
    if (fields.size() < 22) continue;
    int pgrp = std::atoi(fields[2].c_str());
    if (!pgids.count(pgrp)) continue;
    auto num = [&](size_t field) { return std::strtoll(fields[field - 3].c_str(), nullptr, 10); };
    ProcessGroupUsage& u = out[pgrp];
    u.cpu_seconds +=
        static_cast<double>(num(14) + num(15) + num(16) + num(17)) / static_cast<double>(kTicks);
    if (fields[0] != "Z" && fields[0] != "X") {
      u.processes += 1;
      u.rss_bytes += num(24) * kPage;
    }
  }
  ::closedir(dir);
  for (auto it = out.begin(); it != out.end();) {
    it = it->second.processes == 0 ? out.erase(it) : std::next(it);
  }
  return out;
}

}  // namespace berth
