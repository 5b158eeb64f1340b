// Table-driven detection tests: each tests/fixtures/detect/<case>/ holds a source tree in
// tree/ and the expectations in expect.json.
#include "builder/detect.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace berth::builder {
namespace {

namespace fs = std::filesystem;

std::string FixturesDir() { return std::string(BERTH_SOURCE_DIR) + "/tests/fixtures/detect"; }

std::vector<std::string> Cases() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(FixturesDir())) {
    if (e.is_directory()) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class DetectFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(DetectFixture, MatchesExpectations) {
  fs::path dir = fs::path(FixturesDir()) / GetParam();
  std::ifstream f(dir / "expect.json");
  std::stringstream ss;
  ss << f.rdbuf();
  Json e = Json::parse(ss.str());
  model::BuildSettings o;
  if (e.contains("overrides")) {
    const Json& j = e["overrides"];
    o.command = j.value("command", "");
    o.start_command = j.value("start_command", "");
    o.language = j.value("language", "");
    o.language_version = j.value("language_version", "");
    o.subdir = j.value("subdir", "");
  }
  auto where = ResolveSubdir((dir / "tree").string(), o.subdir);
  ASSERT_TRUE(where.ok()) << where.status().ToString();
  auto r = Detect(*where, o);
  if (e.contains("error")) {
    ASSERT_FALSE(r.ok()) << "expected an error, got " << ToJson(*r).dump(1);
    EXPECT_EQ(r.status().reason(), "invalid_argument");
    EXPECT_NE(r.status().message().find(e["error"].get<std::string>()), std::string::npos)
        << r.status().message();
    return;
  }
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Json got = ToJson(*r);
  std::string dump = got.dump(1);
  if (e.contains("language")) { EXPECT_EQ(got["language"], e["language"]) << dump; }
  if (e.contains("language_version")) { EXPECT_EQ(got["language_version"], e["language_version"]) << dump; }
  if (e.contains("processes")) {
    // "{berth}" stands for the running binary: static sites are served by `berth static`.
    Json want = e["processes"];
    std::error_code ec;
    const std::string self = fs::read_symlink("/proc/self/exe", ec).string();
    for (auto& [type, cmd] : want.items()) {
      std::string c = cmd.get<std::string>();
      if (size_t at = c.find("{berth}"); at != std::string::npos) c.replace(at, 7, self);
      cmd = c;
    }
    EXPECT_EQ(got["processes"], want) << dump;
  }
  if (e.contains("port")) { EXPECT_EQ(got["port"], e["port"]) << dump; }
  if (e.contains("build_steps")) { EXPECT_EQ(got["build_steps"], e["build_steps"]) << dump; }
  if (e.contains("release")) { EXPECT_EQ(got["release"], e["release"]) << dump; }
  if (e.contains("serves_http")) { EXPECT_EQ(got["serves_http"], e["serves_http"]) << dump; }
  const Json env_has = e.value("env_has", Json::object());
  const Json tools_contain = e.value("tools_contain", Json::array());
  const Json reasons_contain = e.value("reasons_contain", Json::array());
  for (const auto& [k, v] : env_has.items()) {
    EXPECT_EQ(got["env"].value(k, ""), v.get<std::string>()) << dump;
  }
  for (const auto& t : tools_contain) {
    bool found = false;
    for (const auto& tool : got["tools"]) found |= tool["program"] == t;
    EXPECT_TRUE(found) << "tool " << t << " missing: " << dump;
  }
  for (const auto& want : reasons_contain) {
    bool found = false;
    for (const auto& reason : got["reasons"]) {
      found |= reason.get<std::string>().find(want.get<std::string>()) != std::string::npos;
    }
    EXPECT_TRUE(found) << "no reason contains \"" << want.get<std::string>() << "\": " << dump;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DetectFixture, ::testing::ValuesIn(Cases()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return n;
                         });

TEST(Detect, FixturesExist) { EXPECT_GE(Cases().size(), 20u); }

TEST(Detect, SameTreeSameAnswer) {
  fs::path dir = fs::path(FixturesDir()) / "ambiguous-node-python" / "tree";
  auto a = Detect(dir.string(), {});
  auto b = Detect(dir.string(), {});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(ToJson(*a), ToJson(*b));
}

TEST(Detect, SubdirCannotEscape) {
  fs::path dir = fs::path(FixturesDir()) / "override-subdir" / "tree";
  EXPECT_FALSE(ResolveSubdir(dir.string(), "../..").ok());
  EXPECT_FALSE(ResolveSubdir(dir.string(), "/etc").ok());
  EXPECT_FALSE(ResolveSubdir(dir.string(), "services/nope").ok());
  auto tmp = fs::temp_directory_path() / ("berth-detect-" + std::to_string(::getpid()));
  fs::create_directories(tmp / "root");
  fs::create_directory_symlink("/etc", tmp / "root" / "out");
  auto r = ResolveSubdir((tmp / "root").string(), "out");
  EXPECT_FALSE(r.ok());
  if (!r.ok()) { EXPECT_NE(r.status().message().find("outside"), std::string::npos); }
  fs::remove_all(tmp);
}

TEST(Procfile, Parses) {
  auto p = ParseProcfile("web: node a.js\n\n# c\nworker:  ./w --x \r\nrelease: ./m\n");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->at("web"), "node a.js");
  EXPECT_EQ(p->at("worker"), "./w --x");
  EXPECT_EQ(p->at("release"), "./m");
  EXPECT_FALSE(ParseProcfile("web: a\nweb: b\n").ok());
  EXPECT_FALSE(ParseProcfile("not a line\n").ok());
}

}  // namespace
}  // namespace berth::builder
