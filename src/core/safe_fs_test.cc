#include "core/safe_fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace berth {
namespace {

namespace fs = std::filesystem;

class SafeFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "berth-safefs-XXXXXX").string();
    base_ = ::mkdtemp(tmpl.data());
    root_ = base_ + "/root";
    outside_ = base_ + "/outside";
    fs::create_directories(root_ + "/dir/sub");
    fs::create_directories(outside_);
    Write(outside_ + "/secret", "top secret");
    Write(root_ + "/dir/file", "inside");
  }
  void TearDown() override { fs::remove_all(base_); }

  static void Write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
  }
  static std::string Read(const std::string& path) {
    std::ifstream f(path);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }

  std::string base_, root_, outside_;
};

TEST_F(SafeFsTest, ValidatesRelativePaths) {
  for (const char* bad : {"", "/etc/passwd", "..", "../x", "a/../../x", "a/.."}) {
    Status s = ValidateBeneathPath(bad, "f");
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.reason(), "unsafe_path") << bad;
    EXPECT_EQ(s.field(), "f");
  }
  EXPECT_TRUE(ValidateBeneathPath("a/b.txt").ok());
  EXPECT_TRUE(ValidateBeneathPath("./a//b").ok());
  EXPECT_TRUE(ValidateBeneathPath("a..b/..c").ok());
}

TEST_F(SafeFsTest, ReadsInsideAndRefusesSymlinksAnywhere) {
  auto r = ReadBeneath(root_, "dir/file", 0, 100);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, "inside");
  int64_t size = 0;
  EXPECT_EQ(*ReadBeneath(root_, "dir/file", 2, 3, &size), "sid");
  EXPECT_EQ(size, 6);

  fs::create_symlink(outside_ + "/secret", root_ + "/link");
  fs::create_symlink(outside_, root_ + "/dirlink");
  fs::create_symlink("file", root_ + "/dir/inner");  // even a link that stays inside
  for (const char* p : {"link", "dirlink/secret", "dir/inner"}) {
    auto bad = ReadBeneath(root_, p, 0, 100);
    ASSERT_FALSE(bad.ok()) << p;
    EXPECT_EQ(bad.status().reason(), "unsafe_path") << p;
  }
  EXPECT_EQ(ReadBeneath(root_, "../outside/secret", 0, 100).status().reason(), "unsafe_path");
  EXPECT_EQ(ReadBeneath(root_, "missing", 0, 100).status().code(), Code::kNotFound);
}

TEST_F(SafeFsTest, AFifoIsRefusedWithoutBlocking) {
  ASSERT_EQ(::mkfifo((root_ + "/fifo").c_str(), 0600), 0);
  auto r = ReadBeneath(root_, "fifo", 0, 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "unsafe_path");
}

TEST_F(SafeFsTest, TheRootItselfMayBeASymlink) {
  fs::create_symlink(root_, base_ + "/data-link");
  EXPECT_EQ(*ReadBeneath(base_ + "/data-link", "dir/file", 0, 100), "inside");
}

TEST_F(SafeFsTest, WriteNeverWritesThroughALinkOrAHardLink) {
  // conf -> outside: writing conf/app.ini must not create outside/app.ini.
  fs::create_symlink(outside_, root_ + "/conf");
  Status s = WriteBeneath(root_, "conf/app.ini", "x");
  EXPECT_EQ(s.reason(), "unsafe_path");
  EXPECT_FALSE(fs::exists(outside_ + "/app.ini"));
  // A symlink at the end is replaced, not followed.
  fs::create_symlink(outside_ + "/secret", root_ + "/dir/settings");
  ASSERT_TRUE(WriteBeneath(root_, "dir/settings", "new").ok());
  EXPECT_EQ(Read(outside_ + "/secret"), "top secret");
  EXPECT_EQ(Read(root_ + "/dir/settings"), "new");
  EXPECT_FALSE(fs::is_symlink(root_ + "/dir/settings"));
  // A hard link to a shared file is replaced too: the shared file keeps its content.
  fs::create_hard_link(outside_ + "/secret", root_ + "/dir/hard");
  ASSERT_TRUE(WriteBeneath(root_, "dir/hard", "mine").ok());
  EXPECT_EQ(Read(outside_ + "/secret"), "top secret");
  // Missing parents are made.
  ASSERT_TRUE(WriteBeneath(root_, "a/b/c.txt", "deep").ok());
  EXPECT_EQ(Read(root_ + "/a/b/c.txt"), "deep");
}

TEST_F(SafeFsTest, RemoveNeverFollowsLinks) {
  fs::create_directories(outside_ + "/keep/me");
  Write(outside_ + "/keep/me/file", "precious");
  // a -> outside: removing "a/keep" must not remove outside/keep.
  fs::create_symlink(outside_, root_ + "/a");
  EXPECT_TRUE(RemoveBeneath(root_, "a/keep").ok());
  EXPECT_TRUE(fs::exists(outside_ + "/keep/me/file"));
  // A tree containing a link to outside: the link goes, the outside stays.
  fs::create_directories(root_ + "/tree/x");
  fs::create_symlink(outside_ + "/keep", root_ + "/tree/x/out");
  EXPECT_TRUE(RemoveBeneath(root_, "tree").ok());
  EXPECT_FALSE(fs::exists(root_ + "/tree"));
  EXPECT_TRUE(fs::exists(outside_ + "/keep/me/file"));
  // The link itself.
  EXPECT_TRUE(RemoveBeneath(root_, "a").ok());
  EXPECT_FALSE(fs::is_symlink(root_ + "/a"));
  EXPECT_TRUE(fs::exists(outside_ + "/secret"));
  EXPECT_TRUE(RemoveBeneath(root_, "not/there").ok());
  EXPECT_EQ(RemoveBeneath(root_, "/etc/passwd").reason(), "unsafe_path");
  EXPECT_EQ(RemoveBeneath(root_, "../outside/secret").reason(), "unsafe_path");
  EXPECT_TRUE(fs::exists(outside_ + "/secret"));
}

TEST_F(SafeFsTest, RealDirectories) {
  EXPECT_TRUE(IsRealDirBeneath(root_, "dir/sub"));
  EXPECT_TRUE(IsRealDirBeneath(root_, ""));
  fs::create_symlink("dir", root_ + "/alias");
  EXPECT_FALSE(IsRealDirBeneath(root_, "alias"));
  EXPECT_FALSE(IsRealDirBeneath(root_, "alias/sub"));
  EXPECT_FALSE(IsRealDirBeneath(root_, "dir/file"));
}

TEST_F(SafeFsTest, ResolveInTreeFollowsLinksWithTheTreeAsTheWorld) {
  fs::create_symlink("dir/sub", root_ + "/s");
  EXPECT_EQ(*ResolveInTree(root_, "s"), "dir/sub");
  EXPECT_EQ(*ResolveInTree(root_, "s/../file"), "dir/file");  // ".." after a link: physical
  EXPECT_EQ(*ResolveInTree(root_, "missing/x"), "missing/x");
  fs::create_symlink(".", root_ + "/self");
  // self/.. is the parent of the root: out, although "self/.." looks harmless written down.
  EXPECT_EQ(ResolveInTree(root_, "self/..").status().reason(), "unsafe_path");
  fs::create_symlink("/etc/passwd", root_ + "/abs");
  EXPECT_EQ(ResolveInTree(root_, "abs").status().reason(), "unsafe_path");
  fs::create_symlink("loop2", root_ + "/loop1");
  fs::create_symlink("loop1", root_ + "/loop2");
  EXPECT_EQ(ResolveInTree(root_, "loop1").status().reason(), "unsafe_path");
}

TEST_F(SafeFsTest, CheckTreeSymlinksNamesTheEscapingLink) {
  fs::create_symlink("file", root_ + "/dir/ok");
  fs::create_symlink("../dir/sub", root_ + "/dir/sub2");
  EXPECT_TRUE(CheckTreeSymlinks(root_, "source").ok());
  fs::create_symlink(".", root_ + "/dir/sub/here");
  fs::create_symlink("here/../../..", root_ + "/dir/sub/up");  // chained: escapes
  Status s = CheckTreeSymlinks(root_, "source");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.reason(), "unsafe_path");
  EXPECT_EQ(s.field(), "source");
  EXPECT_NE(s.message().find("dir/sub/up"), std::string::npos) << s.message();
  fs::remove(root_ + "/dir/sub/up");
  fs::create_symlink("/etc/shadow", root_ + "/dir/shadow");
  s = CheckTreeSymlinks(root_, "source");
  EXPECT_NE(s.message().find("/etc/shadow"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace berth
