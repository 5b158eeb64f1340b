// Archive safety: crafted archives with "../", absolute and symlink escapes are refused before
// anything is written; good archives unpack (and lose a single top-level directory).
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "builder/source.h"

namespace berth::builder {
namespace {

namespace fs = std::filesystem;

struct Entry {
  std::string path;
  std::string content;
  std::string symlink;  // non-empty: a symlink to this
};

class ArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("berth-archive-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Make(const std::string& name, const std::vector<Entry>& entries, bool zip = false) {
    std::string path = (dir_ / name).string();
    struct archive* a = archive_write_new();
    if (zip) {
      archive_write_set_format_zip(a);
    } else {
      archive_write_add_filter_gzip(a);
      archive_write_set_format_pax_restricted(a);
    }
    archive_write_open_filename(a, path.c_str());
    for (const Entry& e : entries) {
      struct archive_entry* en = archive_entry_new();
      archive_entry_set_pathname(en, e.path.c_str());
      if (!e.symlink.empty()) {
        archive_entry_set_filetype(en, AE_IFLNK);
        archive_entry_set_symlink(en, e.symlink.c_str());
        archive_entry_set_perm(en, 0777);
      } else {
        archive_entry_set_filetype(en, AE_IFREG);
        archive_entry_set_perm(en, 0644);
        archive_entry_set_size(en, static_cast<la_int64_t>(e.content.size()));
      }
      archive_write_header(a, en);
      if (e.symlink.empty()) archive_write_data(a, e.content.data(), e.content.size());
      archive_entry_free(en);
    }
    archive_write_close(a);
    archive_write_free(a);
    return path;
  }

  fs::path dir_;
};

TEST_F(ArchiveTest, UnpacksAndFlattensOneTopDirectory) {
  std::string a = Make("good.tar.gz", {{"proj-1.0/index.html", "<h1>x</h1>", ""},
                                       {"proj-1.0/css/site.css", "h1{}", ""},
                                       {"proj-1.0/link.css", "", "css/site.css"}});
  std::string dest = (dir_ / "out").string();
  Status s = ExtractArchive(a, dest, {});
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(fs::is_regular_file(dest + "/index.html"));
  EXPECT_TRUE(fs::is_regular_file(dest + "/css/site.css"));
  EXPECT_TRUE(fs::is_symlink(dest + "/link.css"));
}

TEST_F(ArchiveTest, UnpacksZip) {
  std::string a = Make("good.zip", {{"app.py", "print(1)\n", ""}, {"requirements.txt", "", ""}}, true);
  std::string dest = (dir_ / "out").string();
  Status s = ExtractArchive(a, dest, {});
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(fs::is_regular_file(dest + "/app.py"));
}

TEST_F(ArchiveTest, RefusesEscapes) {
  struct Case {
    const char* name;
    std::vector<Entry> entries;
    const char* want;
  } cases[] = {
      {"dotdot", {{"ok.txt", "x", ""}, {"../evil.txt", "x", ""}}, "outside the build directory"},
      {"nested-dotdot", {{"a/b/../../../evil.txt", "x", ""}}, "outside the build directory"},
      {"absolute", {{"/tmp/berth-evil.txt", "x", ""}}, "outside the build directory"},
      {"symlink-abs", {{"etc", "", "/etc"}}, "symlink to \"/etc\""},
      {"symlink-up", {{"sub/up", "", "../../.."}}, "symlink"},
  };
  for (const Case& c : cases) {
    std::string a = Make(std::string(c.name) + ".tgz", c.entries);
    std::string dest = (dir_ / (std::string("out-") + c.name)).string();
    Status s = ExtractArchive(a, dest, {});
    ASSERT_FALSE(s.ok()) << c.name;
    EXPECT_EQ(s.reason(), "invalid_argument") << c.name;
    EXPECT_NE(s.message().find(c.want), std::string::npos) << c.name << ": " << s.message();
    EXPECT_FALSE(fs::exists(dest)) << c.name << ": something was written";
  }
  EXPECT_FALSE(fs::exists(dir_ / "evil.txt"));
  EXPECT_FALSE(fs::exists("/tmp/berth-evil.txt"));
}

TEST_F(ArchiveTest, Limits) {
  std::string a = Make("big.tgz", {{"a", std::string(1000, 'x'), ""}, {"b", std::string(1000, 'y'), ""}});
  Status s = ExtractArchive(a, (dir_ / "o1").string(), SourceLimits{1500, 100});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("more than 1500 bytes"), std::string::npos) << s.message();
  s = ExtractArchive(a, (dir_ / "o2").string(), SourceLimits{1 << 20, 1});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("more than 1 entries"), std::string::npos) << s.message();
}

TEST_F(ArchiveTest, DamagedArchive) {
  std::string path = (dir_ / "bad.tgz").string();
  std::ofstream(path) << "this is not an archive at all";
  Status s = ExtractArchive(path, (dir_ / "o").string(), {});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.reason(), "invalid_argument");
}

TEST_F(ArchiveTest, DirSourceSkipsGit) {
  fs::create_directories(dir_ / "src/.git/objects");
  std::ofstream(dir_ / "src/.git/HEAD") << "ref";
  std::ofstream(dir_ / "src/index.html") << "x";
  std::atomic<bool> cancel{false};
  model::Source s;
  s.type = "dir";
  s.path = (dir_ / "src").string();
  auto r = FetchSource(s, (dir_ / "dest").string(), {}, [](const std::string&) {}, cancel);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(fs::exists(dir_ / "dest/index.html"));
  EXPECT_FALSE(fs::exists(dir_ / "dest/.git"));
  s.path = (dir_ / "missing").string();
  auto bad = FetchSource(s, (dir_ / "dest2").string(), {}, [](const std::string&) {}, cancel);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().field(), "source.path");
}

// A tree with a link out of it is refused whatever brought it (issue 13: a checkout with a
// symlink to /etc/shadow or to DATA must not let anything read through it).
TEST_F(ArchiveTest, SourcesWithLinksOutOfTheTreeAreRefused) {
  std::atomic<bool> cancel{false};
  auto fetch = [&](const std::string& from, const std::string& to) {
    model::Source s;
    s.type = "dir";
    s.path = (dir_ / from).string();
    return FetchSource(s, (dir_ / to).string(), {}, [](const std::string&) {}, cancel);
  };
  fs::create_directories(dir_ / "abs");
  std::ofstream(dir_ / "abs/index.html") << "x";
  fs::create_symlink("/etc/shadow", dir_ / "abs/Procfile");
  auto r = fetch("abs", "d1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "unsafe_path");
  EXPECT_NE(r.status().message().find("/etc/shadow"), std::string::npos) << r.status().message();
  // Chained: each link looks harmless alone.
  fs::create_directories(dir_ / "chain/sub");
  fs::create_symlink(".", dir_ / "chain/sub/here");
  fs::create_symlink("here/../..", dir_ / "chain/sub/up");
  EXPECT_EQ(fetch("chain", "d2").status().reason(), "unsafe_path");
  // Links that stay inside are kept as links.
  fs::create_directories(dir_ / "fine/a");
  std::ofstream(dir_ / "fine/a/x") << "x";
  fs::create_symlink("a/x", dir_ / "fine/y");
  fs::create_symlink("../a", dir_ / "fine/a/self");
  ASSERT_TRUE(fetch("fine", "d3").ok());
  EXPECT_TRUE(fs::is_symlink(dir_ / "d3/y"));
}

TEST_F(ArchiveTest, AnArchiveWhoseLinksLeaveThroughOtherLinksIsRefused) {
  // Pass 1 reads each link alone ("here/.." stays inside, written down); unpacked, "here" is
  // the top and "up" its parent.
  std::string a = Make("chain.tar.gz", {{"index.html", "x", ""}, {"here", "", "."},
                                        {"up", "", "here/.."}});
  std::atomic<bool> cancel{false};
  model::Source s;
  s.type = "archive";
  s.archive = a;
  auto r = FetchSource(s, (dir_ / "out").string(), {}, [](const std::string&) {}, cancel);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "unsafe_path");
}

}  // namespace
}  // namespace berth::builder
