#include "builder/source_policy.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace berth::builder {
namespace {

namespace fs = std::filesystem;

class SourcePolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "berth-policy-XXXXXX").string();
    base_ = ::mkdtemp(tmpl.data());
    data_ = base_ + "/data";
    root_ = base_ + "/roots";
    fs::create_directories(data_ + "/uploads/t/a/c");
    fs::create_directories(data_ + "/uploads/other/x/web");
    fs::create_directories(root_ + "/app");
    fs::create_symlink("/", root_ + "/escape");
    std::ofstream(data_ + "/uploads/t/a/c/1.tar.gz") << "x";
    std::ofstream(data_ + "/uploads/other/x/web/2.tar.gz") << "x";
  }
  void TearDown() override { fs::remove_all(base_); }

  model::Source Dir(const std::string& p, const std::string& type = "dir") {
    model::Source s;
    s.type = type;
    s.path = p;
    return s;
  }
  model::Source Git(const std::string& url) {
    model::Source s;
    s.type = "git";
    s.url = url;
    return s;
  }
  model::Source Archive(const std::string& p) {
    model::Source s;
    s.type = "archive";
    s.archive = p;
    return s;
  }
  std::string Mine() { return UploadsDir(data_, "t", "a", "c"); }

  std::string base_, data_, root_;
};

TEST_F(SourcePolicyTest, WithoutRootsOnlyPlatformAdminsReadTheDisk) {
  SourcePolicy p{{}, data_};
  for (const model::Source& s : {Dir("/"), Dir("/etc/passwd", "package"), Git("file:///srv/x"),
                                 Git("/srv/x"), Archive("/tmp/x.tar.gz")}) {
    Status st = CheckSourceAccess(s, p, false, Mine());
    EXPECT_EQ(st.reason(), "source_not_allowed") << s.type << " " << s.path << s.url << s.archive;
    EXPECT_EQ(st.code(), Code::kPermissionDenied);
    EXPECT_TRUE(CheckSourceAccess(s, p, true, Mine()).ok());
  }
  EXPECT_TRUE(CheckSourceAccess(Git("https://example.com/x.git"), p, false, Mine()).ok());
  EXPECT_TRUE(CheckSourceAccess(Git("git@example.com:x.git"), p, false, Mine()).ok());
}

TEST_F(SourcePolicyTest, TheDataDirectoryIsNeverASource) {
  SourcePolicy p{{}, data_};
  for (const std::string& path : {data_, data_ + "/uploads", data_ + "/../data/x",
                                  root_ + "/../data"}) {
    EXPECT_EQ(CheckSourceAccess(Dir(path), p, true, Mine()).reason(), "source_not_allowed") << path;
  }
  fs::create_symlink(data_, base_ + "/data-link");
  EXPECT_EQ(CheckSourceAccess(Dir(base_ + "/data-link"), p, true, Mine()).reason(),
            "source_not_allowed");
}

TEST_F(SourcePolicyTest, ArchivesAreTheComponentsOwnUploads) {
  SourcePolicy p{{root_}, data_};
  EXPECT_TRUE(CheckSourceAccess(Archive(data_ + "/uploads/t/a/c/1.tar.gz"), p, false, Mine()).ok());
  for (const std::string& a : {data_ + "/uploads/other/x/web/2.tar.gz",
                               data_ + "/uploads/t/a/c/../../../other/x/web/2.tar.gz",
                               data_ + "/uploads/t/a/c", data_ + "/secret.key"}) {
    EXPECT_EQ(CheckSourceAccess(Archive(a), p, true, Mine()).reason(), "source_not_allowed") << a;
  }
}

TEST_F(SourcePolicyTest, RootsHoldEveryoneAndLinksDoNotLeadOut) {
  SourcePolicy p{{root_}, data_};
  EXPECT_TRUE(CheckSourceAccess(Dir(root_ + "/app"), p, false, Mine()).ok());
  EXPECT_TRUE(CheckSourceAccess(Dir(root_), p, false, Mine()).ok());
  EXPECT_TRUE(CheckSourceAccess(Git("file://" + root_ + "/app"), p, false, Mine()).ok());
  for (const std::string& path : {std::string("/"), root_ + "/escape", root_ + "/escape/etc",
                                  root_ + "/app/../..", root_ + "-sibling", base_}) {
    for (bool admin : {false, true}) {
      EXPECT_EQ(CheckSourceAccess(Dir(path), p, admin, Mine()).reason(), "source_not_allowed")
          << path << " admin=" << admin;
    }
  }
}

TEST_F(SourcePolicyTest, GitUrlsAndRefsAreCheckedFirst) {
  SourcePolicy p{{}, data_};
  for (bool admin : {false, true}) {
    Status s = CheckSourceAccess(Git("ext::sh -c id"), p, admin, Mine());
    EXPECT_EQ(s.reason(), "invalid_source");
    EXPECT_EQ(s.code(), Code::kInvalidArgument);
    model::Source g = Git("https://example.com/x.git");
    g.ref = "--upload-pack=touch /tmp/x";
    s = CheckSourceAccess(g, p, admin, Mine());
    EXPECT_EQ(s.reason(), "invalid_source");
    EXPECT_EQ(s.field(), "source.ref");
  }
}

TEST_F(SourcePolicyTest, ParseSourceRoots) {
  auto r = ParseSourceRoots(root_ + " , " + base_, data_, "source_roots");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->size(), 2u);
  EXPECT_FALSE(ParseSourceRoots("relative", data_, "source_roots").ok());
  EXPECT_FALSE(ParseSourceRoots(base_ + "/missing", data_, "source_roots").ok());
  auto in_data = ParseSourceRoots(data_ + "/uploads", data_, "source_roots");
  ASSERT_FALSE(in_data.ok());
  EXPECT_EQ(in_data.status().field(), "source_roots");
  EXPECT_TRUE(ParseSourceRoots("", data_, "source_roots")->empty());
}

}  // namespace
}  // namespace berth::builder
