#include "core/usage_sampler.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace berth {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using TimePoint = std::chrono::steady_clock::time_point;

const TimePoint kT0 = TimePoint{} + std::chrono::hours(1);

TEST(CpuPercent, IsCpuTimeOverWallTimeInPercentOfOneCore) {
  EXPECT_DOUBLE_EQ(*CpuPercent({kT0, 10.0}, {kT0 + seconds(10), 15.0}), 50.0);
  EXPECT_DOUBLE_EQ(*CpuPercent({kT0, 0.0}, {kT0 + seconds(4), 8.0}), 200.0);  // two cores
  EXPECT_DOUBLE_EQ(*CpuPercent({kT0, 3.0}, {kT0 + seconds(2), 3.0}), 0.0);
  EXPECT_NEAR(*CpuPercent({kT0, 1.0}, {kT0 + milliseconds(500), 1.1}), 20.0, 1e-9);
  // Too close together to mean anything, or a counter that went backwards.
  EXPECT_EQ(CpuPercent({kT0, 1.0}, {kT0 + milliseconds(100), 1.05}), std::nullopt);
  EXPECT_EQ(CpuPercent({kT0, 5.0}, {kT0 + seconds(5), 1.0}), std::nullopt);
  EXPECT_EQ(CpuPercent({kT0 + seconds(5), 1.0}, {kT0, 2.0}), std::nullopt);
}

TEST(UsageSampler, CoversTheRecentWindowNotTheWholeLife) {
  UsageSampler s({.window = seconds(10), .every = seconds(2), .cgroups = {}, .proc_root = "/proc"});
  // 60 s idle, then busy on one core: samples every 2 s as the runtime's Update takes them.
  double cpu = 0;
  TimePoint t = kT0;
  for (int i = 0; i <= 30; ++i, t += seconds(2)) s.Record(7, {t, cpu});
  t -= seconds(2);
  EXPECT_DOUBLE_EQ(*s.Percent(7, {t + seconds(1), cpu}), 0.0);
  for (int i = 0; i < 10; ++i) {
    t += seconds(2);
    cpu += 2.0;
    s.Record(7, {t, cpu});
  }
  // The lifetime average would be 20 s / 80 s = 25%; the window says what happens now.
  auto p = s.Percent(7, {t + seconds(1), cpu + 1.0});
  ASSERT_TRUE(p.has_value());
  EXPECT_NEAR(*p, 100.0, 0.01);
  // A GET right after the first sample has nothing old enough yet.
  s.Record(8, {t, 100.0});
  EXPECT_EQ(s.Percent(8, {t + milliseconds(200), 100.1}), std::nullopt);
  EXPECT_NEAR(*s.Percent(8, {t + seconds(1), 100.5}), 50.0, 0.01);
  EXPECT_EQ(s.Percent(9, {t, 1.0}), std::nullopt);  // never sampled
}

TEST(UsageSampler, ACounterGoingBackwardsStartsAgain) {
  UsageSampler s({.window = seconds(10), .every = seconds(2), .cgroups = {}, .proc_root = "/proc"});
  s.Record(7, {kT0, 50.0});
  s.Record(7, {kT0 + seconds(2), 52.0});
  // pgid 7 is another group now (the old one ended, the pid came round again).
  s.Record(7, {kT0 + seconds(4), 0.5});
  EXPECT_NEAR(*s.Percent(7, {kT0 + seconds(6), 1.5}), 50.0, 0.01);
}

TEST(UsageSampler, UpdateReadsProcForFollowedGroupsOnlyAndAtMostEveryPeriod) {
  std::string proc =
      (std::filesystem::temp_directory_path() / ("berth-usage-test-" + std::to_string(::getpid())))
          .string();
  std::filesystem::remove_all(proc);
  const long ticks = ::sysconf(_SC_CLK_TCK) > 0 ? ::sysconf(_SC_CLK_TCK) : 100;
  // /proc/<pid>/stat of a group leader with `cpu_s` of user time.
  auto write_stat = [&](int pid, double cpu_s) {
    std::filesystem::create_directories(proc + "/" + std::to_string(pid));
    std::string stat =
        std::to_string(pid) + " (app) R 1 " + std::to_string(pid) + " " + std::to_string(pid);
    for (int field = 7; field <= 52; ++field) {
      long v = field == 14   ? static_cast<long>(cpu_s * static_cast<double>(ticks))
               : field == 24 ? 10
                             : 0;
      stat += " " + std::to_string(v);
    }
    std::ofstream(proc + "/" + std::to_string(pid) + "/stat") << stat << "\n";
  };
  UsageSampler s({.window = seconds(10), .every = seconds(2), .cgroups = {}, .proc_root = proc});
  write_stat(100, 1.0);
  write_stat(200, 1.0);
  s.Update({{100, "berth/t.a.c.c-1"}}, kT0);
  write_stat(100, 5.0);
  write_stat(200, 9.0);
  s.Update({{100, "berth/t.a.c.c-1"}}, kT0 + seconds(1));  // too soon: no reading
  s.Update({{100, "berth/t.a.c.c-1"}}, kT0 + seconds(4));
  EXPECT_NEAR(*s.Percent(100, {kT0 + seconds(4), 5.0}), 100.0, 0.01);
  EXPECT_EQ(s.Percent(200, {kT0 + seconds(4), 9.0}), std::nullopt);  // not followed
  EXPECT_EQ(s.CgroupOf(100), "berth/t.a.c.c-1");
  s.Update({}, kT0 + seconds(6));  // the instance is gone: forgotten
  EXPECT_EQ(s.Percent(100, {kT0 + seconds(6), 5.0}), std::nullopt);
  EXPECT_EQ(s.CgroupOf(100), "");
  std::filesystem::remove_all(proc);
}

}  // namespace
}  // namespace berth
