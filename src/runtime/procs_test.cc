// Process types (docs/architecture.md "Process types"): the driver's process groups, the
// controller's groups from a version's Procfile, the release step before a rollout and one-off
// runs of a service, against a fake machine and a real (temporary) SQLite store.
#include <stdlib.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "runtime/controller.h"
#include "runtime/detail/fake_host_for_test.h"
#include "runtime/local_driver.h"

namespace berth::runtime {
namespace {

using detail::FakeHost;
using std::chrono::milliseconds;

// ---- the driver: groups ------------------------------------------------------------------

TEST(ProcessGroupDriverTest, AWorkerGroupRunsBesideWebWithoutAPort) {
  FakeHost host;
  FakeClockForTest clock(TimePoint{} + std::chrono::hours(1000));
  LocalDriver driver(host, clock, [](const ComponentRef&, events::Type, const std::string&,
                                     const std::string&) {});
  ComponentRef ref{"t", "a", "web"};
  DesiredComponent web;
  web.ref = ref;
  web.replicas = 1;
  InstanceTemplate t;
  t.version = "v1";
  t.start_command = "./server";
  t.ports = {model::Port{8080}};
  web.tmpl = t;
  DesiredComponent worker = web;
  worker.process = "worker";
  worker.replicas = 2;
  worker.tmpl->start_command = "./work";
  worker.tmpl->ports.clear();
  worker.tmpl->no_port = true;
  driver.Apply(web);
  driver.Apply(worker);
  driver.Tick();
  ASSERT_EQ(host.launches.size(), 3u);
  std::map<std::string, LaunchSpec> by_name;
  for (const LaunchSpec& l : host.launches) by_name[l.instance] = l;
  ASSERT_TRUE(by_name.count("web-1"));
  ASSERT_TRUE(by_name.count("web-worker-1"));
  ASSERT_TRUE(by_name.count("web-worker-2"));
  EXPECT_NE(by_name["web-1"].port, 0);
  EXPECT_EQ(by_name["web-1"].env.count("PORT"), 1u);
  EXPECT_EQ(by_name["web-worker-1"].port, 0);
  EXPECT_EQ(by_name["web-worker-1"].env.count("PORT"), 0u);
  EXPECT_EQ(by_name["web-worker-1"].command, "./work");
  EXPECT_EQ(by_name["web-worker-1"].process, "worker");  // recorded for adoption
  driver.Tick();
  std::vector<InstanceStatus> now = driver.Observe(ref);
  ASSERT_EQ(now.size(), 3u);
  for (const InstanceStatus& s : now) {
    EXPECT_EQ(s.process, s.name == "web-1" ? "" : "worker") << s.name;
    if (s.process == "worker") {
      EXPECT_TRUE(s.ready) << "a worker is ready once it runs";
    }
  }
  EXPECT_EQ(driver.Components().size(), 1u);  // one component, two groups
  // Scaling the worker group leaves web alone.
  worker.replicas = 1;
  driver.Apply(worker);
  driver.Tick();
  clock.Advance(std::chrono::seconds(2));  // a removed instance drains for 1 s first
  driver.Tick();
  ASSERT_EQ(host.stops.size(), 1u);
  EXPECT_EQ(host.stops[0], "web-worker-2");
  // Removing the component stops every group.
  driver.Remove(ref);
  driver.Tick();
  clock.Advance(std::chrono::seconds(2));
  driver.Tick();
  host.FinishStops();
  driver.Tick();
  driver.Tick();
  EXPECT_TRUE(driver.Observe(ref).empty());
  EXPECT_TRUE(driver.Components().empty());
}

// ---- the controller ----------------------------------------------------------------------

class ProcessControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-procs-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = OpenSqliteStore(dir_ + "/berth.db");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    clock_.Advance(milliseconds(int64_t{1800000000} * 1000));
    recorder_ = std::make_unique<events::Recorder>(*store_, clock_);
    driver_ = std::make_unique<LocalDriver>(
        host_, clock_,
        [this](const ComponentRef& ref, events::Type type, const std::string& reason,
               const std::string& message) {
          if (controller_) controller_->RecordEvent(ref, type, reason, message);
        });
    Put(model::kTeam, "", "t", {{"name", "t"}});
    Put(model::kApp, "t", "a", {{"name", "a"}});
  }
  void TearDown() override {
    controller_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void Put(const std::string& kind, const std::string& scope, const std::string& name,
           const Json& body) {
    WriteBatch b;
    Op op;
    op.type = OpType::kUpsert;
    op.object = Object{kind, scope, name, body.dump(), ""};
    b.ops.push_back(op);
    auto r = store_->Commit(b);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  void Version(const std::string& name, int number, const Json& processes,
               const std::string& release = "") {
    Json web = processes.contains("web") ? processes["web"] : Json("");
    Put(model::kVersion, "t/a/web", name,
        {{"name", name},
         {"number", number},
         {"status", "ready"},
         {"start_command", web},
         {"detect", {{"processes", processes}, {"release", release}}}});
  }
  void Component(const Json& extra = Json::object()) {
    Json c = {{"name", "web"}, {"kind", "service"}};
    for (const auto& [k, v] : extra.items()) c[k] = v;
    auto parsed = model::ParseComponent(c);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    Put(model::kComponent, "t/a", "web", model::ToJson(*parsed));
  }
  void StartController() {
    ControllerOptions o;
    o.data_dir = dir_;
    o.clock = &clock_;
    controller_ = std::make_unique<Controller>(*store_, *driver_, *recorder_, o);
    ASSERT_TRUE(controller_->FullScanForTest().ok());
    controller_->RunOnceForTest();
  }
  void Pass(int n = 1) {
    for (int i = 0; i < n; ++i) {
      clock_.Advance(milliseconds(100));
      controller_->RunOnceForTest();
    }
  }
  std::vector<std::string> Launched() {
    std::vector<std::string> out;
    for (const LaunchSpec& l : host_.launches) out.push_back(l.instance + " " + l.version);
    return out;
  }
  const LaunchSpec* LaunchOf(const std::string& instance) {
    for (const LaunchSpec& l : host_.launches) {
      if (l.instance == instance) return &l;
    }
    return nullptr;
  }
  std::map<std::string, Json> Instances() {
    std::map<std::string, Json> out;
    ListOptions o;
    o.scope = "t/a/web";
    auto r = store_->List(model::kInstance, o);
    for (const Object& obj : r->items) out[obj.name] = Json::parse(obj.body);
    return out;
  }
  std::vector<std::string> Events(const std::string& reason) {
    std::vector<std::string> out;
    ListOptions o;
    o.scope = "t/a/web";
    auto r = store_->List(model::kEvent, o);
    for (const Object& obj : r->items) {
      Json j = Json::parse(obj.body);
      if (j.value("reason", "") == reason) out.push_back(j.value("message", ""));
    }
    return out;
  }
  Json Operation() {
    auto o = store_->Get(model::kOperation, "t/a/web", "current");
    return o.ok() ? Json::parse(o->body) : Json();
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
  FakeClockForTest clock_;
  FakeHost host_;
  std::unique_ptr<events::Recorder> recorder_;
  std::unique_ptr<LocalDriver> driver_;
  std::unique_ptr<Controller> controller_;
};

TEST_F(ProcessControllerTest, AWorkerOnlyProcfileRunsItsWorkerWithoutAPort) {
  Version("v1", 1, {{"worker", "python worker.py"}});
  Component();
  StartController();
  Pass(3);
  ASSERT_EQ(host_.launches.size(), 1u) << ::testing::PrintToString(Launched());
  EXPECT_EQ(host_.launches[0].instance, "web-worker-1");
  EXPECT_EQ(host_.launches[0].command, "python worker.py");
  EXPECT_EQ(host_.launches[0].port, 0);
  EXPECT_EQ(host_.launches[0].env.count("PORT"), 0u);
  auto insts = Instances();
  ASSERT_EQ(insts.size(), 1u);
  EXPECT_EQ(insts["web-worker-1"].value("process", ""), "worker");
  EXPECT_EQ(insts["web-worker-1"].value("port", -1), 0);
  EXPECT_TRUE(Events("NotRunnable").empty()) << Events("NotRunnable").front();
}

TEST_F(ProcessControllerTest, EachProcessTypeHasItsOwnCount) {
  Version("v1", 1, {{"web", "./server"}, {"worker", "./work"}, {"clock", "./tick"}});
  Component({{"replicas", 2}, {"processes", {{"worker", 3}, {"clock", 0}}}});
  StartController();
  Pass(3);
  std::set<std::string> names;
  for (const LaunchSpec& l : host_.launches) names.insert(l.instance);
  EXPECT_EQ(names, (std::set<std::string>{"web-1", "web-2", "web-worker-1", "web-worker-2",
                                          "web-worker-3"}));
  // A scale operation succeeds once every group has its count.
  Component({{"replicas", 2}, {"processes", {{"worker", 1}, {"clock", 1}}}});
  Put(model::kOperation, "t/a/web", "current",
      {{"type", "scale"}, {"status", "in_progress"}, {"detail", "scale worker to 1, clock to 1"},
       {"by", "alice"}, {"started_at", "2026-01-01T00:00:00Z"}});
  Pass(15);  // the removed workers drain for 1 s first
  host_.FinishStops();
  Pass(5);
  EXPECT_NE(LaunchOf("web-clock-1"), nullptr);
  Json op = Operation();
  EXPECT_EQ(op.value("status", ""), "succeeded") << op.dump();
  EXPECT_NE(op.value("message", "").find("web 2, clock 1, worker 1"), std::string::npos)
      << op.dump();
}

TEST_F(ProcessControllerTest, TheReleaseRunsOnceBeforeTheRollout) {
  Version("v1", 1, {{"web", "./server"}, {"worker", "./work"}});
  Component();
  StartController();
  Pass(3);
  ASSERT_NE(LaunchOf("web-1"), nullptr);
  // v2 comes with a release command: it runs first, alone.
  Version("v2", 2, {{"web", "./server2"}, {"worker", "./work2"}}, "./migrate");
  Pass(3);
  const LaunchSpec* rel = LaunchOf("web-release-v2");
  ASSERT_NE(rel, nullptr) << ::testing::PrintToString(Launched());
  EXPECT_EQ(rel->command, "./migrate");
  EXPECT_EQ(rel->version, "v2");
  EXPECT_EQ(rel->port, 0);
  for (const LaunchSpec& l : host_.launches) {
    if (l.instance != "web-release-v2") {
      EXPECT_EQ(l.version, "v1") << l.instance;
    }
  }
  Json op = Operation();
  EXPECT_EQ(op.value("status", ""), "in_progress") << op.dump();
  host_.Exit("web-release-v2", 0);
  Pass(5);
  host_.FinishStops();
  Pass(10);
  host_.FinishStops();
  Pass(10);
  EXPECT_EQ(Events("ReleaseSucceeded").size(), 1u);
  int release_launches = 0;
  for (const LaunchSpec& l : host_.launches) release_launches += l.instance == "web-release-v2";
  EXPECT_EQ(release_launches, 1);  // once per deploy
  std::set<std::string> running;
  for (const auto& [name, j] : Instances()) running.insert(name + " " + j.value("version", ""));
  EXPECT_EQ(running, (std::set<std::string>{"web-2 v2", "web-worker-2 v2"}))
      << ::testing::PrintToString(Launched());
  EXPECT_EQ(Operation().value("status", ""), "succeeded") << Operation().dump();
  // More passes (and a change that is no new version) do not run it again.
  Component({{"replicas", 1}, {"env", {{"X", "1"}}}});
  Pass(5);
  release_launches = 0;
  for (const LaunchSpec& l : host_.launches) release_launches += l.instance == "web-release-v2";
  EXPECT_EQ(release_launches, 1);
}

TEST_F(ProcessControllerTest, AFailingReleaseAbortsTheDeployWithItsLogLines) {
  Version("v1", 1, {{"web", "./server"}});
  Component();
  StartController();
  Pass(3);
  ASSERT_NE(LaunchOf("web-1"), nullptr);
  Version("v2", 2, {{"web", "./server2"}}, "./migrate");
  Pass(3);
  ASSERT_NE(LaunchOf("web-release-v2"), nullptr);
  host_.log_tail = "migrating\nerror: relation \"users\" already exists";
  host_.Exit("web-release-v2", 2);
  Pass(5);
  host_.FinishStops();
  Pass(5);
  auto failed = Events("ReleaseFailed");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_NE(failed[0].find("exited with code 2"), std::string::npos) << failed[0];
  EXPECT_NE(failed[0].find("relation \"users\" already exists"), std::string::npos) << failed[0];
  EXPECT_NE(failed[0].find("v1 keeps running"), std::string::npos) << failed[0];
  Json op = Operation();
  EXPECT_EQ(op.value("status", ""), "failed") << op.dump();
  EXPECT_NE(op.value("message", "").find("relation \"users\" already exists"), std::string::npos)
      << op.dump();
  // The old version keeps serving; nothing of v2 started; the release is not retried.
  for (const LaunchSpec& l : host_.launches) {
    if (l.instance != "web-release-v2") {
      EXPECT_EQ(l.version, "v1") << l.instance;
    }
  }
  Pass(10);
  int release_launches = 0;
  for (const LaunchSpec& l : host_.launches) release_launches += l.instance == "web-release-v2";
  EXPECT_EQ(release_launches, 1);
  auto insts = Instances();
  ASSERT_EQ(insts.size(), 1u);
  EXPECT_EQ(insts.begin()->second.value("version", ""), "v1");
}

TEST_F(ProcessControllerTest, AOneOffRunOfAServiceRunsItsCommandOnce) {
  Version("v1", 1, {{"web", "./server"}});
  Component();
  StartController();
  Pass(3);
  model::Run run;
  run.name = "run-1";
  run.number = 1;
  run.trigger = "manual";
  run.by = "alice";
  run.command = "echo hello; exit 3";
  run.started_at = FormatTime(clock_.Now());
  Put(model::kRun, "t/a/web", "run-1", model::ToJson(run));
  Pass(3);
  const LaunchSpec* l = LaunchOf("web-run-1");
  ASSERT_NE(l, nullptr) << ::testing::PrintToString(Launched());
  EXPECT_EQ(l->command, "echo hello; exit 3");
  EXPECT_EQ(l->version, "v1");
  EXPECT_EQ(l->port, 0);
  host_.Exit("web-run-1", 3);
  Pass(5);
  auto r = store_->Get(model::kRun, "t/a/web", "run-1");
  ASSERT_TRUE(r.ok());
  Json j = Json::parse(r->body);
  EXPECT_EQ(j.value("status", ""), "failed") << j.dump();
  EXPECT_EQ(j["last_exit"].value("code", 0), 3) << j.dump();
  EXPECT_EQ(j.value("attempts", 0), 1) << "a one-off command is not retried";
  int launches = 0;
  for (const LaunchSpec& s : host_.launches) launches += s.instance == "web-run-1";
  EXPECT_EQ(launches, 1);
  // The service's own instance was never touched.
  EXPECT_TRUE(host_.stops.empty() || host_.stops == std::vector<std::string>{"web-run-1"})
      << ::testing::PrintToString(host_.stops);
}

}  // namespace
}  // namespace berth::runtime
