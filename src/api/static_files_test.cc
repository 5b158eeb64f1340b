// The console's static file handler (static_files.cc) over a temporary web root: content
// types, cache headers, the SPA fallback, traversal attempts and the not-built answer.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "api/detail/service.h"

namespace berth::api {
namespace {

namespace fs = std::filesystem;

void Write(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

std::string Header(const HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() /
            ("berth-static-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(base_);
    root_ = base_ / "dist";
    Write(root_ / "index.html", "<!doctype html><title>berth</title>");
    Write(root_ / "assets" / "index-abc123.js", "console.log(1)");
    Write(root_ / "assets" / "index-abc123.css", "body{}");
    Write(root_ / "favicon.svg", "<svg/>");
    Write(base_ / "secret.txt", "do not serve");
  }
  void TearDown() override { fs::remove_all(base_); }

  std::optional<HttpResponse> Get(const std::string& path, const std::string& method = "GET") {
    HttpRequest req;
    req.method = method;
    req.path = path;
    req.target = path;
    return ServeStatic(root_.string(), req);
  }

  fs::path base_, root_;
};

TEST_F(StaticFilesTest, ServesIndexWithNoCache) {
  auto r = Get("/");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(Header(*r, "Cache-Control"), "no-cache");
  EXPECT_EQ(r->body, "<!doctype html><title>berth</title>");
  auto idx = Get("/index.html");
  ASSERT_TRUE(idx.has_value());
  EXPECT_EQ(idx->body, r->body);
  EXPECT_EQ(Header(*idx, "Cache-Control"), "no-cache");
}

TEST_F(StaticFilesTest, HashedAssetsAreImmutableWithTheirContentType) {
  auto js = Get("/assets/index-abc123.js");
  ASSERT_TRUE(js.has_value());
  EXPECT_EQ(js->status, 200);
  EXPECT_EQ(js->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(Header(*js, "Cache-Control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(js->body, "console.log(1)");
  auto css = Get("/assets/index-abc123.css");
  ASSERT_TRUE(css.has_value());
  EXPECT_EQ(css->content_type, "text/css; charset=utf-8");
  auto svg = Get("/favicon.svg");
  ASSERT_TRUE(svg.has_value());
  EXPECT_EQ(svg->content_type, "image/svg+xml");
  EXPECT_EQ(Header(*svg, "Cache-Control"), "no-cache");
}

TEST_F(StaticFilesTest, ContentTypes) {
  EXPECT_EQ(ContentTypeFor("a/b.woff2"), "font/woff2");
  EXPECT_EQ(ContentTypeFor("x.PNG"), "image/png");
  EXPECT_EQ(ContentTypeFor("x.json"), "application/json");
  EXPECT_EQ(ContentTypeFor("dir.v1/noext"), "application/octet-stream");
  EXPECT_EQ(ContentTypeFor("x.unknown"), "application/octet-stream");
}

TEST_F(StaticFilesTest, AppRoutesFallBackToIndex) {
  for (const char* path : {"/teams/default/apps", "/login", "/teams/default/apps/shop/web"}) {
    auto r = Get(path);
    ASSERT_TRUE(r.has_value()) << path;
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_EQ(r->content_type, "text/html; charset=utf-8") << path;
    EXPECT_EQ(Header(*r, "Cache-Control"), "no-cache") << path;
  }
  auto missing_asset = Get("/assets/gone-000.js");
  ASSERT_TRUE(missing_asset.has_value());
  EXPECT_EQ(missing_asset->status, 404);
  EXPECT_NE(missing_asset->body.find("\"not_found\""), std::string::npos);
}

TEST_F(StaticFilesTest, ApiPathsAndOtherMethodsAreNotStatic) {
  EXPECT_FALSE(Get("/api/v1/nope").has_value());
  EXPECT_FALSE(Get("/api").has_value());
  EXPECT_FALSE(Get("/", "POST").has_value());
  EXPECT_FALSE(Get("/index.html", "DELETE").has_value());
  EXPECT_TRUE(Get("/", "HEAD").has_value());
}

TEST_F(StaticFilesTest, NoTraversal) {
  for (const char* path : {"/../secret.txt", "/assets/../../secret.txt", "/./index.html",
                           "/..", "/assets/..\\..\\secret.txt"}) {
    auto r = Get(path);
    ASSERT_TRUE(r.has_value()) << path;
    EXPECT_EQ(r->status, 404) << path;
    EXPECT_EQ(r->body.find("do not serve"), std::string::npos) << path;
  }
  // A symlink inside the root that points outside it is not followed.
  fs::create_symlink(base_ / "secret.txt", root_ / "link.txt");
  auto r = Get("/link.txt");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body.find("do not serve"), std::string::npos);
}

TEST_F(StaticFilesTest, NotBuilt) {
  HttpRequest req;
  req.method = "GET";
  req.path = "/";
  for (const std::string& root : {std::string(""), (base_ / "missing").string(), base_.string()}) {
    auto r = ServeStatic(root, req);
    ASSERT_TRUE(r.has_value()) << root;
    EXPECT_EQ(r->status, 404) << root;
    EXPECT_NE(r->body.find("\"console_not_built\""), std::string::npos) << root;
    EXPECT_NE(r->body.find("make run"), std::string::npos) << root;
  }
}

}  // namespace
}  // namespace berth::api
