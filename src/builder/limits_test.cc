#include "builder/detail/limits.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace berth::builder::detail {
namespace {

namespace fs = std::filesystem;

// The builder's use of core/cgroup.h against a directory laid out like a v1 hierarchy.
TEST(BuildMemoryLimit, JoinsItsCgroupBeforeTheStepAndSeesOomKills) {
  std::string root =
      (fs::temp_directory_path() / ("berth-limits-" + std::to_string(::getpid()))).string();
  fs::remove_all(root);
  fs::create_directories(root + "/memory");
  std::ofstream(root + "/memory/cgroup.procs") << "";
  std::string dir = root + "/memory/berth/builds/b1";
  {
    BuildMemoryLimit limit("b1", 64, CgroupLayout::Detect(root));
    EXPECT_EQ(limit.Describe(), "memory limit 64 MiB (cgroup v1)");
    std::ifstream f(dir + "/memory.limit_in_bytes");
    std::string bytes;
    f >> bytes;
    EXPECT_EQ(bytes, std::to_string(64 << 20));
    EXPECT_EQ(limit.Wrap("make all"),
              "echo $$ > '" + dir + "/cgroup.procs' && exec /bin/sh -c 'make all'");
    EXPECT_FALSE(limit.OomKilledSinceLastCheck());
    std::ofstream(dir + "/memory.oom_control") << "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n";
    EXPECT_TRUE(limit.OomKilledSinceLastCheck());
    EXPECT_FALSE(limit.OomKilledSinceLastCheck()) << "counted once";
    for (const auto& e : fs::directory_iterator(dir)) fs::remove(e.path());  // the kernel's part
  }
  EXPECT_FALSE(fs::exists(dir)) << "removed with the build";

  // No hierarchy: RLIMIT_AS through the shell, and the log says so.
  BuildMemoryLimit none("b2", 64, CgroupLayout{});
  EXPECT_NE(none.Describe().find("RLIMIT_AS"), std::string::npos) << none.Describe();
  EXPECT_EQ(none.Wrap("make"), "ulimit -v 65536 && exec /bin/sh -c 'make'");
  EXPECT_EQ(BuildMemoryLimit("b3", 0, CgroupLayout::Detect(root)).Wrap("make"), "make");
  fs::remove_all(root);
}

}  // namespace
}  // namespace berth::builder::detail
