// Process-group usage against a fake /proc and against this very process.
#include "core/proc_usage.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace berth {
namespace {

void WriteStat(const std::filesystem::path& root, int pid, const std::string& comm, char state,
               int pgrp, long utime, long stime, long cutime, long cstime, long rss_pages) {
  std::filesystem::create_directories(root / std::to_string(pid));
  std::ofstream f(root / std::to_string(pid) / "stat");
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
  // stime cutime cstime priority nice threads itrealvalue starttime vsize rss ...
  f << pid << " (" << comm << ") " << state << " 1 " << pgrp << " " << pgrp
    << " 0 -1 0 0 0 0 0 " << utime << " " << stime << " " << cutime << " " << cstime
    << " 20 0 1 0 100 1000000 " << rss_pages << " 0 0 0\n";
}

TEST(ProcUsage, SumsTheLiveMembersOfEachGroup) {
  auto root = std::filesystem::temp_directory_path() /
              ("berth-proc-" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  long ticks = ::sysconf(_SC_CLK_TCK), page = ::sysconf(_SC_PAGESIZE);
  WriteStat(root, 100, "sh", 'S', 100, ticks, ticks, 0, 0, 10);
  WriteStat(root, 101, "python3 (app) x", 'R', 100, 2 * ticks, 0, ticks, 0, 30);  // odd comm
  WriteStat(root, 102, "defunct", 'Z', 100, ticks, 0, 0, 0, 0);
  WriteStat(root, 200, "other", 'S', 200, 5 * ticks, 0, 0, 0, 99);
  WriteStat(root, 300, "gone", 'Z', 300, ticks, 0, 0, 0, 0);
  std::filesystem::create_directories(root / "self");  // not a pid
  auto got = ReadProcessGroups({100, 300, 400}, root.string());
  ASSERT_EQ(got.size(), 1u) << "200 not asked, 300 only a zombie, 400 absent";
  EXPECT_EQ(got[100].processes, 2);
  EXPECT_EQ(got[100].rss_bytes, 40 * page);
  EXPECT_DOUBLE_EQ(got[100].cpu_seconds, 6.0);
  std::filesystem::remove_all(root);
}

TEST(ProcUsage, ReadsThisProcess) {
  auto got = ReadProcessGroups({static_cast<int>(::getpgrp())});
  ASSERT_EQ(got.count(::getpgrp()), 1u);
  EXPECT_GE(got[::getpgrp()].processes, 1);
  EXPECT_GT(got[::getpgrp()].rss_bytes, 1 << 20);
}

}  // namespace
}  // namespace berth
