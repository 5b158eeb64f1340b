#include "core/cgroup.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace berth {
namespace {

namespace fs = std::filesystem;

// A directory laid out like a cgroup hierarchy's root. The kernel's part (interface files
// that appear with a group, counters it updates) is played by the test.
class FakeHierarchy : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::temp_directory_path() /
             ("berth-cgroup-test-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  static std::string Read(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  static void Write(const std::string& path, const std::string& text) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path) << text;
  }
  // cgroupfs drops a group's files with rmdir; a plain directory needs them gone first.
  static void DropInterfaceFiles(const std::string& dir) {
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.is_regular_file()) fs::remove(e.path());
    }
  }

  std::string root_;
};

TEST_F(FakeHierarchy, DetectsPureV2V1AndIgnoresAControllerlessUnifiedMount) {
  // This machine's shape: v1 memory and cpu, plus a v2 mount with no controllers.
  Write(root_ + "/memory/cgroup.procs", "");
  Write(root_ + "/cpu/cgroup.procs", "");
  Write(root_ + "/unified/cgroup.controllers", "\n");
  CgroupLayout l = CgroupLayout::Detect(root_);
  EXPECT_EQ(l.v2, "");
  EXPECT_EQ(l.v1_memory, root_ + "/memory");
  EXPECT_EQ(l.v1_cpu, root_ + "/cpu");
  EXPECT_NE(l.Describe().find("cgroup v1"), std::string::npos);

  Write(root_ + "/v2/cgroup.controllers", "cpuset cpu io memory pids\n");
  l = CgroupLayout::Detect(root_ + "/v2");
  EXPECT_EQ(l.v2, root_ + "/v2");
  EXPECT_EQ(l.Describe(), "cgroup v2 at " + root_ + "/v2");

  EXPECT_TRUE(CgroupLayout::Detect(root_ + "/nothing").Empty());
}

TEST_F(FakeHierarchy, V2WritesMaxFilesEnablesControllersAndCountsOomKills) {
  Write(root_ + "/cgroup.controllers", "cpuset cpu io memory pids\n");
  CgroupLayout l = CgroupLayout::Detect(root_);
  std::string problem;
  Cgroup g = Cgroup::Create(l, "berth/t.a.c.c-1", {64 << 20, 500}, &problem);
  EXPECT_EQ(problem, "");
  ASSERT_FALSE(g.empty());
  EXPECT_TRUE(g.v2());
  std::string dir = root_ + "/berth/t.a.c.c-1";
  EXPECT_EQ(g.memory_dir(), dir);
  // Every ancestor enables the controllers for its children; the group itself does not
  // (a v2 group with processes may not hand controllers down).
  EXPECT_EQ(Read(root_ + "/cgroup.subtree_control"), "+memory +cpu");
  EXPECT_EQ(Read(root_ + "/berth/cgroup.subtree_control"), "+memory +cpu");
  EXPECT_FALSE(fs::exists(dir + "/cgroup.subtree_control"));
  EXPECT_EQ(Read(dir + "/memory.max"), std::to_string(64 << 20));
  EXPECT_EQ(Read(dir + "/memory.swap.max"), "0");
  EXPECT_EQ(Read(dir + "/cpu.max"), "50000 100000");
  EXPECT_EQ(g.ProcsFiles(), std::vector<std::string>{dir + "/cgroup.procs"});
  ASSERT_TRUE(g.AddProcess(4242).ok());
  EXPECT_EQ(Read(dir + "/cgroup.procs"), "4242");

  // Read back as the kernel reports them.
  EXPECT_EQ(g.MemoryLimitBytes(), int64_t{64 << 20});
  EXPECT_EQ(g.CpuLimitMillis(), 500);
  Write(dir + "/memory.current", "10485760\n");
  Write(dir + "/memory.stat", "anon 6291456\nfile 4194304\ninactive_file 2097152\n");
  EXPECT_EQ(g.MemoryBytes(), int64_t{10485760 - 2097152});

  // OOM: memory.events' oom_kill counter (not "oom", which counts limit hits).
  Write(dir + "/memory.events", "low 0\nhigh 0\nmax 12\noom 3\noom_kill 0\n");
  EXPECT_EQ(g.OomKills(), 0);
  Write(dir + "/memory.events", "low 0\nhigh 0\nmax 40\noom 4\noom_kill 1\n");
  EXPECT_EQ(g.OomKills(), 1);

  // Another server process (the API) finds it by name without creating anything.
  Cgroup seen = Cgroup::Open(l, "berth/t.a.c.c-1");
  EXPECT_EQ(seen.memory_dir(), dir);
  EXPECT_EQ(seen.MemoryBytes(), g.MemoryBytes());
  EXPECT_TRUE(Cgroup::Open(l, "berth/t.a.c.c-9").empty());

  // "max" means unlimited.
  Write(dir + "/memory.max", "max\n");
  Write(dir + "/cpu.max", "max 100000\n");
  EXPECT_EQ(g.MemoryLimitBytes(), std::nullopt);
  EXPECT_EQ(g.CpuLimitMillis(), std::nullopt);

  // Cleanup removes the group only: berth/ is shared with other groups.
  DropInterfaceFiles(dir);
  g.Remove();
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(fs::is_directory(root_ + "/berth"));
  EXPECT_TRUE(g.empty());
}

TEST_F(FakeHierarchy, V2NestedNameAndMissingController) {
  Write(root_ + "/cgroup.controllers", "memory pids\n");  // no cpu controller
  CgroupLayout l = CgroupLayout::Detect(root_);
  std::string problem;
  Cgroup g = Cgroup::Create(l, "berth/builds/b1", {128 << 20, 250}, &problem);
  EXPECT_NE(problem.find("no cpu controller"), std::string::npos) << problem;
  ASSERT_FALSE(g.empty());  // the memory limit still applies
  EXPECT_EQ(Read(root_ + "/cgroup.subtree_control"), "+memory");
  EXPECT_EQ(Read(root_ + "/berth/cgroup.subtree_control"), "+memory");
  EXPECT_EQ(Read(root_ + "/berth/builds/cgroup.subtree_control"), "+memory");
  EXPECT_EQ(Read(root_ + "/berth/builds/b1/memory.max"), std::to_string(128 << 20));
  EXPECT_FALSE(fs::exists(root_ + "/berth/builds/b1/cpu.max"));

  // No limits asked: no group at all.
  Cgroup none = Cgroup::Create(l, "berth/x", {}, &problem);
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(problem, "");
  EXPECT_FALSE(fs::exists(root_ + "/berth/x"));
}

TEST_F(FakeHierarchy, V1WritesLimitFilesInBothHierarchiesAndCountsOomKills) {
  Write(root_ + "/memory/cgroup.procs", "");
  Write(root_ + "/cpu/cgroup.procs", "");
  CgroupLayout l = CgroupLayout::Detect(root_);
  std::string problem;
  Cgroup g = Cgroup::Create(l, "berth/t.a.c.c-2", {32 << 20, 1500}, &problem);
  EXPECT_EQ(problem, "");
  EXPECT_FALSE(g.v2());
  std::string mem = root_ + "/memory/berth/t.a.c.c-2", cpu = root_ + "/cpu/berth/t.a.c.c-2";
  EXPECT_EQ(Read(mem + "/memory.limit_in_bytes"), std::to_string(32 << 20));
  EXPECT_EQ(Read(mem + "/memory.swappiness"), "0");
  EXPECT_EQ(Read(cpu + "/cpu.cfs_period_us"), "100000");
  EXPECT_EQ(Read(cpu + "/cpu.cfs_quota_us"), "150000");
  EXPECT_FALSE(fs::exists(root_ + "/memory/cgroup.subtree_control"));  // v1 has none
  EXPECT_EQ(g.ProcsFiles(),
            (std::vector<std::string>{mem + "/cgroup.procs", cpu + "/cgroup.procs"}));
  ASSERT_TRUE(g.AddProcess(77).ok());
  EXPECT_EQ(Read(mem + "/cgroup.procs"), "77");
  EXPECT_EQ(Read(cpu + "/cgroup.procs"), "77");
  EXPECT_EQ(g.MemoryLimitBytes(), int64_t{32 << 20});
  EXPECT_EQ(g.CpuLimitMillis(), 1500);

  Write(mem + "/memory.usage_in_bytes", "5000000\n");
  Write(mem + "/memory.stat", "cache 100\ntotal_inactive_file 1000000\n");
  EXPECT_EQ(g.MemoryBytes(), 4000000);

  // OOM: memory.oom_control's oom_kill line (not oom_kill_disable) ...
  Write(mem + "/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
  Write(mem + "/memory.failcnt", "9\n");
  EXPECT_EQ(g.OomKills(), 0);
  Write(mem + "/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
  EXPECT_EQ(g.OomKills(), 2);
  // ... or, on kernels without that line, failcnt.
  Write(mem + "/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n");
  EXPECT_EQ(g.OomKills(), 9);

  // v1's "unlimited" and a quota of -1.
  Write(mem + "/memory.limit_in_bytes", "9223372036854771712\n");
  Write(cpu + "/cpu.cfs_quota_us", "-1\n");
  EXPECT_EQ(g.MemoryLimitBytes(), std::nullopt);
  EXPECT_EQ(g.CpuLimitMillis(), std::nullopt);

  DropInterfaceFiles(mem);
  DropInterfaceFiles(cpu);
  g.Remove();
  EXPECT_FALSE(fs::exists(mem));
  EXPECT_FALSE(fs::exists(cpu));
  EXPECT_TRUE(fs::is_directory(root_ + "/memory/berth"));
}

TEST_F(FakeHierarchy, PidsLimitInV1AndV2) {
  Write(root_ + "/memory/cgroup.procs", "");
  Write(root_ + "/pids/cgroup.procs", "");
  CgroupLayout l = CgroupLayout::Detect(root_);
  EXPECT_EQ(l.v1_pids, root_ + "/pids");
  EXPECT_NE(l.Describe().find("pids at " + root_ + "/pids"), std::string::npos);
  std::string problem;
  Cgroup g = Cgroup::Create(l, "berth/t.a.c.c-4", {8 << 20, 0, 300}, &problem);
  EXPECT_EQ(problem, "");
  std::string pids = root_ + "/pids/berth/t.a.c.c-4";
  EXPECT_EQ(Read(pids + "/pids.max"), "300");
  EXPECT_EQ(g.PidsLimit(), 300);
  EXPECT_EQ(g.ProcsFiles(), (std::vector<std::string>{root_ + "/memory/berth/t.a.c.c-4/cgroup.procs",
                                                      pids + "/cgroup.procs"}));
  EXPECT_EQ(Cgroup::Open(l, "berth/t.a.c.c-4").pids_dir(), pids);
  // Only a task limit: still a group.
  Cgroup only = Cgroup::Create(l, "berth/t.a.c.c-5", {0, 0, 64}, &problem);
  EXPECT_FALSE(only.empty());
  EXPECT_EQ(only.ProcsFiles(), (std::vector<std::string>{root_ + "/pids/berth/t.a.c.c-5/cgroup.procs"}));

  std::string v2 = root_ + "/v2";
  Write(v2 + "/cgroup.controllers", "cpu memory pids\n");
  CgroupLayout l2 = CgroupLayout::Detect(v2);
  Cgroup g2 = Cgroup::Create(l2, "berth/x", {0, 0, 100}, &problem);
  EXPECT_EQ(problem, "");
  EXPECT_EQ(Read(v2 + "/cgroup.subtree_control"), "+pids");
  EXPECT_EQ(Read(v2 + "/berth/x/pids.max"), "100");
  EXPECT_EQ(g2.PidsLimit(), 100);
  // No pids controller anywhere: said, and the rest still applies.
  Cgroup none = Cgroup::Create(CgroupLayout{}, "berth/z", {0, 0, 10}, &problem);
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(problem, "no pids cgroup controller");
}

TEST_F(FakeHierarchy, V1WithoutACpuHierarchyStillLimitsMemoryAndSaysSo) {
  Write(root_ + "/memory/cgroup.procs", "");
  CgroupLayout l = CgroupLayout::Detect(root_);
  std::string problem;
  Cgroup g = Cgroup::Create(l, "berth/t.a.c.c-3", {16 << 20, 200}, &problem);
  EXPECT_EQ(problem, "no cpu cgroup controller");
  EXPECT_EQ(g.ProcsFiles().size(), 1u);
  EXPECT_EQ(g.CpuLimitMillis(), std::nullopt);
  EXPECT_EQ(Read(root_ + "/memory/berth/t.a.c.c-3/memory.limit_in_bytes"),
            std::to_string(16 << 20));

  Cgroup nothing = Cgroup::Create(CgroupLayout{}, "berth/y", {16 << 20, 0}, &problem);
  EXPECT_TRUE(nothing.empty());
  EXPECT_EQ(problem, "no memory cgroup controller");
}

}  // namespace
}  // namespace berth
