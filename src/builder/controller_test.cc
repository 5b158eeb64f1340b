// The build controller against a real SQLite store and real /bin/sh builds of tiny
// Procfile apps (no toolchain needed), polled with deadlines — never fixed sleeps.
#include "builder/controller.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "model/model.h"

namespace berth::builder {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class ControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("berth-ctl-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "data");
    fs::create_directories(dir_ / "app");
    std::ofstream(dir_ / "app/Procfile") << "web: ./run.sh\n";
    std::ofstream(dir_ / "app/run.sh") << "#!/bin/sh\necho hi\n";
    auto s = OpenSqliteStore((dir_ / "data/berth.db").string(), StoreOptions{false});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    Put(model::kTeam, "", "t", {{"name", "t"}});
    Put(model::kApp, "t", "a", {{"name", "a"}});
    SetBuild("echo building; echo made > built.txt");
  }
  void TearDown() override {
    ctl_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  void Put(const char* kind, const std::string& scope, const std::string& name, const Json& body) {
    WriteBatch b;
    Op op;
    op.type = OpType::kUpsert;
    op.object = Object{kind, scope, name, body.dump()};
    b.ops.push_back(op);
    ASSERT_TRUE(store_->Commit(b).ok());
  }

  void SetBuild(const std::string& command) {
    model::Component c;
    c.name = "c";
    c.source.type = "dir";
    c.source.path = (dir_ / "app").string();
    c.build.command = command;
    Put(model::kComponent, "t/a", "c", model::ToJson(c));
  }

  void Queue(int n) {
    model::Version v;
    v.name = "v" + std::to_string(n);
    v.number = n;
    v.status = "queued";
    Put(model::kVersion, "t/a/c", v.name, model::ToJson(v));
  }

  void Start(BuilderOptions o = {}) {
    o.data_dir = (dir_ / "data").string();
    ctl_ = std::make_unique<BuildController>(*store_, SystemClock::Get(), o);
    ASSERT_TRUE(ctl_->Start().ok());
  }

  Json Get(const std::string& v) {
    auto o = store_->Get(model::kVersion, "t/a/c", v);
    return o.ok() ? Json::parse(o->body) : Json();
  }

  // Waits until version `v` has a status in `want` (or 60 s pass).
  Json WaitFor(const std::string& v, std::set<std::string> want) {
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
      Json j = Get(v);
      if (j.is_object() && want.count(j.value("status", ""))) return j;
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << v << " never reached the wanted status; now " << Get(v).dump();
    return Get(v);
  }

  std::string ReadFile(const fs::path& p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  fs::path dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<BuildController> ctl_;
};

TEST_F(ControllerTest, BuildsAQueuedVersion) {
  Start();
  Queue(1);
  Json v = WaitFor("v1", {"ready", "failed"});
  ASSERT_EQ(v["status"], "ready") << v.dump();
  std::string art = v["artifact"];
  ASSERT_EQ(art.rfind("sha256:", 0), 0u);
  fs::path adir = dir_ / "data/teams/t/artifacts" / art.substr(7);
  EXPECT_EQ(ReadFile(adir / "app/built.txt"), "made\n");
  EXPECT_TRUE(fs::exists(adir / "app/Procfile"));
  Json cfg = Json::parse(ReadFile(adir / "config.json"));
  EXPECT_EQ(cfg["start_command"], "./run.sh");
  EXPECT_EQ(v["start_command"], "./run.sh");
  EXPECT_EQ(v["detect"]["language"], "procfile");
  EXPECT_GT(v["size_bytes"].get<int64_t>(), 0);
  EXPECT_FALSE(v["built_at"].get<std::string>().empty());
  EXPECT_EQ(v["build_log"], "logs/builds/t/a/c/v1.log");
  std::string log = ReadFile(dir_ / "data" / v["build_log"].get<std::string>());
  EXPECT_NE(log.find("building\n"), std::string::npos) << log;
  EXPECT_NE(log.find("Procfile found"), std::string::npos) << log;
  EXPECT_TRUE(fs::is_empty(dir_ / "data/teams/t/builds"));

  // The same source again gives the same artifact (deduplicated).
  Queue(2);
  Json v2 = WaitFor("v2", {"ready", "failed"});
  EXPECT_EQ(v2["artifact"], v["artifact"]);
}

TEST_F(ControllerTest, FailureRecordsStepExitCodeAndEvent) {
  SetBuild("echo first line; echo the-last-words >&2; exit 7");
  Start();
  Queue(1);
  Json v = WaitFor("v1", {"ready", "failed"});
  ASSERT_EQ(v["status"], "failed");
  std::string m = v["message"];
  EXPECT_NE(m.find("step 1/1"), std::string::npos) << m;
  EXPECT_NE(m.find("exit code 7"), std::string::npos) << m;
  EXPECT_NE(m.find("the-last-words"), std::string::npos) << m;
  ListOptions lo;
  lo.scope = "t/a/c";
  auto evs = store_->List(model::kEvent, lo);
  ASSERT_TRUE(evs.ok());
  bool found = false;
  for (const Object& e : evs->items) {
    Json j = Json::parse(e.body);
    if (j["reason"] == "BuildFailed") {
      found = true;
      EXPECT_EQ(j["type"], "warning");
      EXPECT_NE(j["message"].get<std::string>().find("exit code 7"), std::string::npos);
    }
  }
  EXPECT_TRUE(found);
  // No artifact was kept.
  EXPECT_TRUE(!fs::exists(dir_ / "data/teams/t/artifacts") || fs::is_empty(dir_ / "data/teams/t/artifacts"));
}

TEST_F(ControllerTest, CancelKillsTheProcessGroup) {
  SetBuild("sleep 60 & sleep 60; echo never");
  Start();
  Queue(1);
  WaitFor("v1", {"building"});
  auto t0 = std::chrono::steady_clock::now();
  // Give the step a moment to be running; the cancel must work whenever it lands.
  auto log = dir_ / "data/logs/builds/t/a/c/v1.log";
  for (int i = 0; i < 500 && ReadFile(log).find("step 1/1") == std::string::npos; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  Json v = Get("v1");
  v["status"] = "cancelled";
  Put(model::kVersion, "t/a/c", "v1", v);
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (ctl_->PendingForTest() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(ctl_->PendingForTest(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 15s);
  Json after = Get("v1");
  EXPECT_EQ(after["status"], "cancelled");
  EXPECT_NE(ReadFile(log).find("cancelled"), std::string::npos);
  EXPECT_EQ(ReadFile(log).find("\nnever\n"), std::string::npos);
}

TEST_F(ControllerTest, TimeLimit) {
  SetBuild("sleep 30");
  BuilderOptions o;
  o.time_limit = 1s;
  Start(o);
  Queue(1);
  Json v = WaitFor("v1", {"ready", "failed"});
  ASSERT_EQ(v["status"], "failed");
  EXPECT_NE(v["message"].get<std::string>().find("time limit of 1 s"), std::string::npos) << v.dump();
}

TEST_F(ControllerTest, MissingToolchainNamesThePackage) {
  std::ofstream(dir_ / "app/Procfile") << "";
  fs::remove(dir_ / "app/Procfile");
  std::ofstream(dir_ / "app/Gemfile") << "source 'x'\n";
  std::ofstream(dir_ / "app/app.rb") << "puts 1\n";
  SetBuild("");
  Start();
  Queue(1);
  Json v = WaitFor("v1", {"ready", "failed"});
  if (v["status"] == "ready") GTEST_SKIP() << "ruby is installed here";
  EXPECT_NE(v["message"].get<std::string>().find("install the Debian package ruby"), std::string::npos)
      << v.dump();
}

TEST_F(ControllerTest, KeepsTheNewestVersionsAndCollectsArtifacts) {
  BuilderOptions o;
  o.versions_kept = 2;
  Start(o);
  std::vector<std::string> arts;
  for (int i = 1; i <= 4; ++i) {
    SetBuild("echo " + std::to_string(i) + " > n.txt");
    Queue(i);
    Json v = WaitFor("v" + std::to_string(i), {"ready", "failed"});
    ASSERT_EQ(v["status"], "ready");
    arts.push_back(v["artifact"].get<std::string>().substr(7));
  }
  // Retention runs right after v4 is recorded.
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!Get("v2").is_null() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(Get("v1").is_null());
  EXPECT_TRUE(Get("v2").is_null());
  while (fs::exists(dir_ / "data/teams/t/artifacts" / arts[1]) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(Get("v3")["status"], "ready");
  EXPECT_EQ(Get("v4")["status"], "ready");
  EXPECT_FALSE(fs::exists(dir_ / "data/teams/t/artifacts" / arts[0]));
  EXPECT_FALSE(fs::exists(dir_ / "data/teams/t/artifacts" / arts[1]));
  EXPECT_TRUE(fs::exists(dir_ / "data/teams/t/artifacts" / arts[2]));
  EXPECT_TRUE(fs::exists(dir_ / "data/teams/t/artifacts" / arts[3]));
  EXPECT_FALSE(fs::exists(dir_ / "data/logs/builds/t/a/c/v1.log"));
}

// Issue 13: a version's stored build_log once named the file retention deleted (any file of
// the server) and the log route read. The server derives the place from the names now.
TEST_F(ControllerTest, RetentionDeletesTheDerivedLogNeverTheStoredPath) {
  BuilderOptions o;
  o.versions_kept = 1;
  Start(o);
  Queue(1);
  ASSERT_EQ(WaitFor("v1", {"ready", "failed"})["status"], "ready");
  ASSERT_TRUE(fs::exists(dir_ / "data/logs/builds/t/a/c/v1.log"));
  std::ofstream(dir_ / "victim") << "precious";
  std::ofstream(dir_ / "data/victim-in-data") << "precious";
  Json v1 = Get("v1");
  v1["build_log"] = (dir_ / "victim").string();
  Put(model::kVersion, "t/a/c", "v1", v1);
  Queue(2);
  ASSERT_EQ(WaitFor("v2", {"ready", "failed"})["status"], "ready");
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!Get("v1").is_null() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(Get("v1").is_null());
  // The log goes right after the version (retention deletes the object first).
  while (fs::exists(dir_ / "data/logs/builds/t/a/c/v1.log") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(ReadFile(dir_ / "victim"), "precious");
  EXPECT_FALSE(fs::exists(dir_ / "data/logs/builds/t/a/c/v1.log"));
  // The same with a path relative to the data directory.
  Json v2 = Get("v2");
  v2["build_log"] = "victim-in-data";
  Put(model::kVersion, "t/a/c", "v2", v2);
  Queue(3);
  ASSERT_EQ(WaitFor("v3", {"ready", "failed"})["status"], "ready");
  while (!Get("v2").is_null() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(Get("v2").is_null());
  EXPECT_EQ(ReadFile(dir_ / "data/victim-in-data"), "precious");
  EXPECT_EQ(Get("v3")["build_log"], "logs/builds/t/a/c/v3.log");
}

TEST_F(ControllerTest, ABuildLogIsNeverWrittenThroughALink) {
  fs::create_directories(dir_ / "data/logs/builds/t/a/c");
  std::ofstream(dir_ / "victim") << "precious";
  fs::create_symlink(dir_ / "victim", dir_ / "data/logs/builds/t/a/c/v1.log");
  Start();
  Queue(1);
  ASSERT_EQ(WaitFor("v1", {"ready", "failed"})["status"], "ready");
  EXPECT_EQ(ReadFile(dir_ / "victim"), "precious");
  EXPECT_FALSE(fs::is_symlink(dir_ / "data/logs/builds/t/a/c/v1.log"));
  EXPECT_NE(ReadFile(dir_ / "data/logs/builds/t/a/c/v1.log").find("building"), std::string::npos);
}

TEST_F(ControllerTest, ASourceInTheDataDirectoryIsNotBuilt) {
  model::Component c;
  c.name = "c";
  c.source.type = "dir";
  c.source.path = (dir_ / "data").string();
  Put(model::kComponent, "t/a", "c", model::ToJson(c));
  Start();
  Queue(1);
  Json v = WaitFor("v1", {"ready", "failed"});
  ASSERT_EQ(v["status"], "failed");
  EXPECT_NE(v["message"].get<std::string>().find("data directory"), std::string::npos) << v.dump();
}

TEST_F(ControllerTest, ResumesAfterRestart) {
  // A version left "building" by a server that died, and one queued while none ran.
  Queue(1);
  Json v = Get("v1");
  v["status"] = "building";
  Put(model::kVersion, "t/a/c", "v1", v);
  Queue(2);
  Start();
  EXPECT_EQ(WaitFor("v1", {"ready", "failed"})["status"], "ready");
  EXPECT_EQ(WaitFor("v2", {"ready", "failed"})["status"], "ready");
}

TEST_F(ControllerTest, StopLeavesBuildingForTheNextStart) {
  SetBuild("sleep 60");
  Start();
  Queue(1);
  WaitFor("v1", {"building"});
  ctl_->Stop();
  EXPECT_EQ(Get("v1")["status"], "building");
  SetBuild("true");  // the resumed build uses the component's source as it is now
  ctl_.reset();
  Start();
  EXPECT_EQ(WaitFor("v1", {"ready", "failed"})["status"], "ready");
}

}  // namespace
}  // namespace berth::builder
