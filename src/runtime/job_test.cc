// Jobs and cronjobs: the driver's run semantics against a fake machine and a fake clock, the
// cron planner with plain numbers, and the controller's scheduling, concurrency policies and
// run history over a real (temporary) SQLite store.
#include <stdlib.h>
#include <time.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "runtime/controller.h"
#include "runtime/detail/cron_plan.h"
#include "runtime/detail/fake_host_for_test.h"
#include "runtime/local_driver.h"

namespace berth::runtime {
namespace {

using detail::FakeHost;
using std::chrono::milliseconds;
using std::chrono::seconds;

struct Recorded {
  std::string reason;
  std::string message;
};

// ---- the driver --------------------------------------------------------------------------

class JobDriverTest : public ::testing::Test {
 protected:
  JobDriverTest()
      : clock_(TimePoint{} + std::chrono::hours(1000)),
        driver_(host_, clock_, [this](const ComponentRef&, events::Type, const std::string& reason,
                                      const std::string& message) {
          events_.push_back({reason, message});
        }) {}

  DesiredComponent Job(std::vector<DesiredRun> runs) {
    DesiredComponent d;
    d.ref = ref_;
    d.job = true;
    d.replicas = 5;  // does not apply to jobs
    InstanceTemplate t;
    t.version = "v1";
    t.start_command = "./backup.sh";
    d.tmpl = t;
    d.runs = std::move(runs);
    return d;
  }
  DesiredRun Run(const std::string& name, int retries = 3, int timeout_s = 0) {
    DesiredRun r;
    r.name = name;
    r.retries = retries;
    r.timeout_s = timeout_s;
    r.started_at_ms = UnixMillis(clock_.Now());
    return r;
  }
  RunStatus RunOf(const std::string& name) {
    for (const RunStatus& s : driver_.ObserveRuns(ref_)) {
      if (s.name == name) return s;
    }
    return RunStatus{};
  }
  int Count(const std::string& reason) const {
    return static_cast<int>(std::count_if(events_.begin(), events_.end(),
                                          [&](const Recorded& r) { return r.reason == reason; }));
  }

  ComponentRef ref_{"default", "shop", "backup"};
  FakeHost host_;
  FakeClockForTest clock_;
  std::vector<Recorded> events_;
  LocalDriver driver_;
};

TEST_F(JobDriverTest, ASuccessfulRunIsNotRestarted) {
  driver_.Apply(Job({Run("run-1")}));
  driver_.Tick();
  ASSERT_EQ(host_.launches.size(), 1u);  // one instance, whatever the replicas say
  EXPECT_EQ(host_.launches[0].instance, "backup-run-1");
  EXPECT_EQ(host_.launches[0].command, "./backup.sh");
  driver_.Tick();
  EXPECT_EQ(RunOf("run-1").state, "running");
  EXPECT_EQ(driver_.Observe(ref_).at(0).state, "running");
  host_.Exit("backup-run-1", 0);
  driver_.Tick();
  RunStatus s = RunOf("run-1");
  EXPECT_EQ(s.state, "succeeded");
  EXPECT_EQ(s.attempts, 1);
  EXPECT_EQ(s.version, "v1");
  EXPECT_NE(s.message.find("completed on attempt 1 of 4"), std::string::npos) << s.message;
  EXPECT_TRUE(driver_.Observe(ref_).empty());  // the instance is gone, its log stays
  for (int i = 0; i < 100; ++i) {
    clock_.Advance(seconds(10));
    driver_.Tick();
  }
  EXPECT_EQ(host_.launches.size(), 1u);
  EXPECT_EQ(RunOf("run-1").state, "succeeded");
  // The run leaves the desired runs (the controller wrote it down): forgotten.
  driver_.Apply(Job({}));
  driver_.Tick();
  EXPECT_TRUE(driver_.ObserveRuns(ref_).empty());
}

TEST_F(JobDriverTest, AFailingRunIsRetriedWithBackOffThenFails) {
  host_.log_tail = "starting backup\nerror: disk full";
  driver_.Apply(Job({Run("run-1", 2)}));
  driver_.Tick();
  ASSERT_EQ(host_.launches.size(), 1u);
  host_.Exit("backup-run-1", 3);
  driver_.Tick();
  EXPECT_EQ(RunOf("run-1").state, "running");
  EXPECT_EQ(driver_.Observe(ref_).at(0).state, "backoff");
  EXPECT_EQ(Count("JobRetrying"), 1);
  clock_.Advance(milliseconds(999));
  driver_.Tick();
  EXPECT_EQ(host_.launches.size(), 1u);  // 1 s back-off
  clock_.Advance(milliseconds(1));
  driver_.Tick();
  ASSERT_EQ(host_.launches.size(), 2u);
  EXPECT_EQ(host_.launches[1].instance, "backup-run-1");  // same name, next attempt
  EXPECT_EQ(RunOf("run-1").attempts, 2);
  host_.Exit("backup-run-1", 3);
  driver_.Tick();
  clock_.Advance(milliseconds(1999));
  driver_.Tick();
  EXPECT_EQ(host_.launches.size(), 2u);  // then 2 s
  clock_.Advance(milliseconds(1));
  driver_.Tick();
  ASSERT_EQ(host_.launches.size(), 3u);
  host_.Exit("backup-run-1", 3);
  driver_.Tick();
  RunStatus s = RunOf("run-1");
  EXPECT_EQ(s.state, "failed");
  EXPECT_EQ(s.attempts, 3);
  ASSERT_TRUE(s.last_exit.has_value());
  EXPECT_EQ(s.last_exit->code, 3);
  EXPECT_EQ(s.message, "exited with code 3 on attempt 3 of 3");
  EXPECT_EQ(s.log_tail, "starting backup\nerror: disk full");
  EXPECT_EQ(Count("JobRetrying"), 2);
  for (int i = 0; i < 100; ++i) {
    clock_.Advance(seconds(10));
    driver_.Tick();
  }
  EXPECT_EQ(host_.launches.size(), 3u);  // retries spent: never again
  EXPECT_TRUE(driver_.Observe(ref_).empty());
}

TEST_F(JobDriverTest, SignalsAndOomKillsAreFailuresToo) {
  driver_.Apply(Job({Run("run-1", 0)}));
  driver_.Tick();
  host_.Exit("backup-run-1", -1, 9);
  driver_.Tick();
  EXPECT_EQ(RunOf("run-1").state, "failed");
  EXPECT_EQ(RunOf("run-1").message, "was killed by signal 9 (SIGKILL) on attempt 1 of 1");
}

TEST_F(JobDriverTest, ARunPastItsTimeoutIsStoppedAndFails) {
  driver_.Apply(Job({Run("run-1", 3, 5)}));
  driver_.Tick();
  clock_.Advance(milliseconds(4900));
  driver_.Tick();
  EXPECT_EQ(RunOf("run-1").state, "running");
  EXPECT_TRUE(host_.stops.empty());
  clock_.Advance(milliseconds(100));
  driver_.Tick();
  RunStatus s = RunOf("run-1");
  EXPECT_EQ(s.state, "failed");
  EXPECT_NE(s.message.find("timeout of 5 s"), std::string::npos) << s.message;
  ASSERT_EQ(host_.stops.size(), 1u);
  EXPECT_EQ(host_.stops[0], "backup-run-1");
  host_.FinishStops();
  driver_.Tick();
  EXPECT_TRUE(driver_.Observe(ref_).empty());
  EXPECT_EQ(host_.launches.size(), 1u);  // a timed-out run is not retried
}

TEST_F(JobDriverTest, TheTimeoutCoversRetriesAndBackOff) {
  driver_.Apply(Job({Run("run-1", 10, 3)}));
  driver_.Tick();
  for (int i = 0; i < 40 && RunOf("run-1").state == "running"; ++i) {
    if (host_.Running() > 0) host_.Exit("backup-run-1", 1);
    clock_.Advance(milliseconds(100));
    driver_.Tick();
  }
  EXPECT_EQ(RunOf("run-1").state, "failed");
  EXPECT_NE(RunOf("run-1").message.find("timeout of 3 s"), std::string::npos);
  EXPECT_LT(RunOf("run-1").attempts, 11);
}

TEST_F(JobDriverTest, RunsOverlapAndACancelledRunStops) {
  driver_.Apply(Job({Run("run-1"), Run("run-2")}));
  driver_.Tick();
  ASSERT_EQ(host_.launches.size(), 2u);
  EXPECT_NE(host_.launches[0].port, host_.launches[1].port);
  driver_.Apply(Job({Run("run-2")}));  // run-1 cancelled
  driver_.Tick();
  ASSERT_EQ(host_.stops.size(), 1u);
  EXPECT_EQ(host_.stops[0], "backup-run-1");
  host_.FinishStops();
  driver_.Tick();
  auto obs = driver_.Observe(ref_);
  ASSERT_EQ(obs.size(), 1u);
  EXPECT_EQ(obs[0].name, "backup-run-2");
  EXPECT_EQ(driver_.ObserveRuns(ref_).size(), 1u);
  EXPECT_EQ(host_.launches.size(), 2u);
}

TEST_F(JobDriverTest, NothingRunnableFailsTheRun) {
  DesiredComponent d = Job({Run("run-1")});
  d.tmpl.reset();
  driver_.Apply(d);
  driver_.Tick();
  EXPECT_EQ(RunOf("run-1").state, "failed");
  EXPECT_TRUE(host_.launches.empty());
}

TEST_F(JobDriverTest, ARunThatEndedWhileTheServerWasDownIsAdopted) {
  DiscoveredShim ok;
  ok.spec.ref = ref_;
  ok.spec.instance = "backup-run-1";
  ok.spec.version = "v1";
  ok.obs.state = ShimObservation::State::kExited;
  ok.obs.exit.code = 0;
  DiscoveredShim failed = ok;
  failed.spec.instance = "backup-run-2";
  failed.spec.restarts = 1;  // its second attempt
  failed.obs.exit.code = 2;
  host_.discovered = {ok, failed};
  host_.shims["backup-run-1"].obs = ok.obs;
  host_.shims["backup-run-2"].obs = failed.obs;
  driver_.Adopt();
  driver_.Apply(Job({Run("run-1"), Run("run-2", 1)}));
  driver_.Tick();
  EXPECT_EQ(RunOf("run-1").state, "succeeded");
  EXPECT_EQ(RunOf("run-2").state, "failed");
  EXPECT_EQ(RunOf("run-2").attempts, 2);
  EXPECT_TRUE(host_.launches.empty());
}

TEST_F(JobDriverTest, StoppingTheComponentStopsItsRuns) {
  driver_.Apply(Job({Run("run-1")}));
  driver_.Tick();
  DesiredComponent d = Job({Run("run-1")});
  d.running = false;
  driver_.Apply(d);
  driver_.Tick();
  ASSERT_EQ(host_.stops.size(), 1u);
  host_.FinishStops();
  driver_.Tick();
  EXPECT_TRUE(driver_.Observe(ref_).empty());
  EXPECT_EQ(host_.launches.size(), 1u);
}

// ---- the cron planner --------------------------------------------------------------------

TEST(CronPlanTest, PoliciesAndCatchUp) {
  auto every_minute = model::ParseCron("* * * * *", "schedule");
  ASSERT_TRUE(every_minute.ok());
  using A = detail::CronDecision::Action;
  const int64_t t0 = 1800000000 - 1800000000 % 60;  // a whole minute
  auto d = detail::PlanCron(*every_minute, "allow", false, t0, t0 + 59, 0);
  EXPECT_EQ(d.action, A::kNone);
  EXPECT_EQ(d.next_s, t0 + 60);
  d = detail::PlanCron(*every_minute, "allow", false, t0, t0 + 60, 0);
  EXPECT_EQ(d.action, A::kStart);
  EXPECT_EQ(d.scheduled_at_s, t0 + 60);
  EXPECT_FALSE(d.missed);
  EXPECT_EQ(detail::PlanCron(*every_minute, "allow", false, t0, t0 + 60, 2).action, A::kStart);
  EXPECT_EQ(detail::PlanCron(*every_minute, "forbid", false, t0, t0 + 60, 1).action, A::kSkip);
  EXPECT_EQ(detail::PlanCron(*every_minute, "forbid", false, t0, t0 + 60, 0).action, A::kStart);
  EXPECT_EQ(detail::PlanCron(*every_minute, "replace", false, t0, t0 + 60, 1).action,
            A::kReplace);
  EXPECT_EQ(detail::PlanCron(*every_minute, "allow", true, t0, t0 + 60, 0).action, A::kNone);
  // An hour away: one catch-up run, for the latest missed firing.
  d = detail::PlanCron(*every_minute, "allow", false, t0, t0 + 3600 + 5, 0);
  EXPECT_EQ(d.action, A::kStart);
  EXPECT_EQ(d.scheduled_at_s, t0 + 3600);
  EXPECT_TRUE(d.missed);
  EXPECT_EQ(detail::PlanCron(*every_minute, "allow", false, d.scheduled_at_s, t0 + 3600 + 5, 0)
                .action,
            A::kNone);
  auto never = model::ParseCron("0 0 30 2 *", "schedule");
  d = detail::PlanCron(*never, "allow", false, t0, t0 + 86400 * 400, 0);
  EXPECT_EQ(d.action, A::kNone);
  EXPECT_EQ(d.next_s, 0);
}

// ---- the controller ----------------------------------------------------------------------

class JobControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-job-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = OpenSqliteStore(dir_ + "/berth.db");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    // A whole minute plus 10 s.
    clock_.Advance(milliseconds((int64_t{1800000000} - 1800000000 % 60 + 10) * 1000));
    recorder_ = std::make_unique<events::Recorder>(*store_, clock_);
    driver_ = std::make_unique<LocalDriver>(
        host_, clock_,
        [this](const ComponentRef& ref, events::Type type, const std::string& reason,
               const std::string& message) {
          if (controller_) controller_->RecordEvent(ref, type, reason, message);
        });
    Put(model::kTeam, "", "t", {{"name", "t"}});
    Put(model::kApp, "t", "a", {{"name", "a"}});
    Put(model::kVersion, "t/a/nightly", "v1",
        {{"name", "v1"}, {"number", 1}, {"status", "ready"}, {"start_command", "./run.sh"}});
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
  void Component(const Json& job, const std::string& kind = "cronjob") {
    Json c = {{"name", "nightly"}, {"kind", kind}, {"job", job}};
    if (kind == "cronjob") c["schedule"] = "* * * * *";
    auto parsed = model::ParseComponent(c);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    Put(model::kComponent, "t/a", "nightly", model::ToJson(*parsed));
  }
  void StartController() {
    ControllerOptions o;
    o.data_dir = dir_;
    o.clock = &clock_;
    controller_ = std::make_unique<Controller>(*store_, *driver_, *recorder_, o);
    ASSERT_TRUE(controller_->FullScanForTest().ok());
    controller_->RunOnceForTest();
  }
  // Moves to the next whole minute (+1 s) and runs one controller pass.
  void NextMinute() {
    int64_t now_s = UnixMillis(clock_.Now()) / 1000;
    clock_.Advance(seconds(60 - now_s % 60 + 1));
    controller_->RunOnceForTest();
  }
  std::map<std::string, Json> Runs() {
    std::map<std::string, Json> out;
    ListOptions o;
    o.scope = "t/a/nightly";
    auto r = store_->List(model::kRun, o);
    for (const Object& obj : r->items) out[obj.name] = Json::parse(obj.body);
    return out;
  }
  std::vector<std::string> Events(const std::string& reason) {
    std::vector<std::string> out;
    ListOptions o;
    o.scope = "t/a/nightly";
    auto r = store_->List(model::kEvent, o);
    for (const Object& obj : r->items) {
      Json j = Json::parse(obj.body);
      if (j.value("reason", "") == reason) out.push_back(j.value("message", ""));
    }
    return out;
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
  FakeClockForTest clock_;
  FakeHost host_;
  std::unique_ptr<events::Recorder> recorder_;
  std::unique_ptr<LocalDriver> driver_;
  std::unique_ptr<Controller> controller_;
};

TEST_F(JobControllerTest, ForbidSkipsAFiringWhileARunGoes) {
  Component({{"concurrency_policy", "forbid"}});
  StartController();
  EXPECT_TRUE(Runs().empty());  // a new cronjob waits for its first firing
  NextMinute();
  auto runs = Runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs["run-1"]["status"], "running");
  EXPECT_EQ(runs["run-1"]["trigger"], "schedule");
  EXPECT_EQ(runs["run-1"]["scheduled_at"].get<std::string>().substr(17), "00.000Z");
  ASSERT_EQ(host_.launches.size(), 1u);
  EXPECT_EQ(host_.launches[0].instance, "nightly-run-1");
  NextMinute();
  EXPECT_EQ(Runs().size(), 1u);
  auto skipped = Events("CronSkipped");
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].find("run run-1 is still running (concurrency policy forbid)"),
            std::string::npos)
      << skipped[0];
  host_.Exit("nightly-run-1", 0);
  controller_->RunOnceForTest();
  runs = Runs();
  EXPECT_EQ(runs["run-1"]["status"], "succeeded");
  EXPECT_EQ(runs["run-1"]["attempts"], 1);
  EXPECT_EQ(runs["run-1"]["version"], "v1");
  EXPECT_FALSE(runs["run-1"]["finished_at"].get<std::string>().empty());
  ASSERT_EQ(Events("JobSucceeded").size(), 1u);
  NextMinute();
  EXPECT_EQ(Runs().size(), 2u);  // free again: the next firing runs
}

TEST_F(JobControllerTest, ReplaceCancelsTheRunningOne) {
  Component({{"concurrency_policy", "replace"}});
  StartController();
  NextMinute();
  NextMinute();
  auto runs = Runs();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs["run-1"]["status"], "cancelled");
  EXPECT_NE(runs["run-1"]["message"].get<std::string>().find("run-2"), std::string::npos);
  EXPECT_EQ(runs["run-2"]["status"], "running");
  ASSERT_EQ(host_.stops.size(), 1u);
  EXPECT_EQ(host_.stops[0], "nightly-run-1");
  EXPECT_EQ(Events("JobCancelled").size(), 1u);
}

TEST_F(JobControllerTest, AllowOverlapsAndHistoryIsPruned) {
  Component({{"concurrency_policy", "allow"}, {"history_limit", 2}, {"retries", 0}});
  StartController();
  NextMinute();
  NextMinute();
  EXPECT_EQ(host_.Running(), 2);  // overlapping runs
  host_.log_tail = "error: no such table";
  host_.Exit("nightly-run-1", 3);
  host_.Exit("nightly-run-2", 0);
  controller_->RunOnceForTest();
  auto runs = Runs();
  EXPECT_EQ(runs["run-1"]["status"], "failed");
  EXPECT_EQ(runs["run-1"]["last_exit"]["code"], 3);
  EXPECT_EQ(runs["run-1"]["log_tail"], "error: no such table");
  auto failed = Events("JobFailed");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_NE(failed[0].find("exited with code 3 on attempt 1 of 1: error: no such table"),
            std::string::npos)
      << failed[0];
  for (int i = 3; i <= 5; ++i) {
    NextMinute();
    host_.Exit("nightly-run-" + std::to_string(i), 0);
    controller_->RunOnceForTest();
  }
  runs = Runs();
  ASSERT_EQ(runs.size(), 2u);  // the newest two finished runs
  EXPECT_TRUE(runs.count("run-4"));
  EXPECT_TRUE(runs.count("run-5"));
}

TEST_F(JobControllerTest, SuspendFiresNothingAndMissedFiringsCatchUpOnce) {
  Component({{"suspend", true}});
  StartController();
  NextMinute();
  NextMinute();
  EXPECT_TRUE(Runs().empty());
  Component({});
  controller_->RunOnceForTest();
  NextMinute();
  ASSERT_EQ(Runs().size(), 1u);
  host_.Exit("nightly-run-1", 0);
  controller_->RunOnceForTest();
  // The server is away for an hour: one catch-up run when it is back.
  controller_.reset();
  clock_.Advance(std::chrono::minutes(60));
  StartController();
  auto runs = Runs();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs["run-2"]["trigger"], "schedule");
  controller_->RunOnceForTest();
  EXPECT_EQ(Runs().size(), 2u);
}

TEST_F(JobControllerTest, AJobRunsEachDeployedVersion) {
  Component({{"retries", 1}}, "job");
  StartController();
  EXPECT_TRUE(Runs().empty());  // what was deployed before the server started ran then
  Put(model::kVersion, "t/a/nightly", "v2",
      {{"name", "v2"}, {"number", 2}, {"status", "ready"}, {"start_command", "./run.sh"}});
  controller_->RunOnceForTest();
  auto runs = Runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs["run-1"]["trigger"], "deploy");
  ASSERT_EQ(host_.launches.size(), 1u);
  EXPECT_EQ(host_.launches[0].version, "v2");
  for (int i = 0; i < 50; ++i) {  // no schedule: nothing more
    clock_.Advance(seconds(30));
    controller_->RunOnceForTest();
  }
  EXPECT_EQ(Runs().size(), 1u);
  // Stopping the component cancels its run.
  Component({{"retries", 1}}, "job");
  Json stopped = model::ToJson(*model::ParseComponent(
      {{"name", "nightly"}, {"kind", "job"}, {"desired_state", "stopped"}}));
  Put(model::kComponent, "t/a", "nightly", stopped);
  controller_->RunOnceForTest();
  EXPECT_EQ(Runs()["run-1"]["status"], "cancelled");
  EXPECT_EQ(host_.stops.size(), 1u);
}

}  // namespace
}  // namespace berth::runtime
