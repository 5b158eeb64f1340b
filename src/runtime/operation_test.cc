// Operations against a fake machine and a fake clock over a real (temporary) SQLite store: an
// operation must end when it cannot succeed, however long the component was broken before it
// began (issue 21: an operation that stayed in_progress until cancelled).
#include <stdlib.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "core/clock.h"
#include "model/model.h"
#include "runtime/controller.h"
#include "runtime/detail/fake_host_for_test.h"
#include "runtime/local_driver.h"

namespace berth::runtime {
namespace {

using detail::FakeHost;
using std::chrono::milliseconds;
using std::chrono::seconds;

class OperationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-operation-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = OpenSqliteStore(dir_ + "/berth.db");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    clock_.Advance(seconds(1800000000));
    recorder_ = std::make_unique<events::Recorder>(*store_, clock_);
    driver_ = std::make_unique<LocalDriver>(
        host_, clock_,
        [this](const ComponentRef& ref, events::Type type, const std::string& reason,
               const std::string& message) {
          if (reason == "CrashLoop") ++crash_loop_events_;
          if (controller_) controller_->RecordEvent(ref, type, reason, message);
        });
    Put(model::kTeam, "", "t", {{"name", "t"}});
    Put(model::kApp, "t", "a", {{"name", "a"}});
    Put(model::kVersion, "t/a/web", "v1",
        {{"name", "v1"}, {"number", 1}, {"status", "ready"}, {"start_command", "./run.sh"}});
    Component(2);
    ControllerOptions o;
    o.data_dir = dir_;
    o.clock = &clock_;
    controller_ = std::make_unique<Controller>(*store_, *driver_, *recorder_, o);
    ASSERT_TRUE(controller_->FullScanForTest().ok());
    controller_->RunOnceForTest();
  }
  void TearDown() override {
    controller_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  Json ComponentJson(int replicas) {
    auto parsed = model::ParseComponent({{"name", "web"}, {"replicas", replicas}});
    EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
    return model::ToJson(*parsed);
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
  void Component(int replicas) { Put(model::kComponent, "t/a", "web", ComponentJson(replicas)); }
  // What the API's LifecycleOps writes: the change and its operation in one commit.
  void BeginOperation(const std::string& type, int replicas) {
    model::Operation op;
    op.type = type;
    op.detail = "scale to " + std::to_string(replicas);
    op.by = "admin";
    op.started_at = FormatTime(clock_.Now());
    WriteBatch b;
    Op c;
    c.type = OpType::kUpsert;
    c.object = Object{model::kComponent, "t/a", "web", ComponentJson(replicas).dump(), ""};
    b.ops.push_back(c);
    Op w;
    w.type = OpType::kUpsert;
    w.object = Object{model::kOperation, "t/a/web", "current", model::ToJson(op).dump(), ""};
    b.ops.push_back(w);
    auto r = store_->Commit(b);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  Json Operation() {
    auto o = store_->Get(model::kOperation, "t/a/web", "current");
    return o.ok() ? Json::parse(o->body) : Json();
  }
  // `ms` of fake time in 250 ms steps; every instance that runs crashes at once.
  void CrashFor(milliseconds ms) {
    for (milliseconds t{0}; t < ms; t += milliseconds(250)) {
      for (auto& [name, shim] : host_.shims) {
        if (shim.obs.state == ShimObservation::State::kRunning) host_.Exit(name, 3);
      }
      host_.FinishStops();
      clock_.Advance(milliseconds(250));
      controller_->RunOnceForTest();
    }
  }
  // `ms` of fake time in which nothing crashes.
  void RunFor(milliseconds ms) {
    for (milliseconds t{0}; t < ms; t += milliseconds(250)) {
      host_.FinishStops();
      clock_.Advance(milliseconds(250));
      controller_->RunOnceForTest();
    }
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
  FakeClockForTest clock_;
  FakeHost host_;
  std::unique_ptr<events::Recorder> recorder_;
  std::unique_ptr<LocalDriver> driver_;
  std::unique_ptr<Controller> controller_;
  int crash_loop_events_ = 0;
};

TEST_F(OperationTest, AnOperationBegunDuringALongCrashLoopFailsInsteadOfWaitingForever) {
  // Minutes of crashing: the back-off is a minute long and CrashLoop events have stopped.
  CrashFor(seconds(250));
  ASSERT_GT(crash_loop_events_, 0);
  int events_before = crash_loop_events_;
  // A scale from 2 to 1 replaces nothing: the remaining instance keeps crash-looping.
  BeginOperation("scale", 1);
  CrashFor(seconds(5));
  Json op = Operation();
  EXPECT_EQ(crash_loop_events_, events_before) << "no new CrashLoop event was needed";
  EXPECT_EQ(op.value("status", ""), "failed") << op.dump();
  EXPECT_NE(op.value("message", "").find("instance web-1 is crash-looping"), std::string::npos)
      << op.dump();
  EXPECT_NE(op.value("message", "").find("exited with code 3"), std::string::npos) << op.dump();
}

TEST_F(OperationTest, AnInstanceThatRecoversIsNotCalledCrashLooping) {
  CrashFor(seconds(10));  // crashes in a row, then it comes up and stays
  RunFor(seconds(100));
  BeginOperation("scale", 1);
  RunFor(seconds(5));
  EXPECT_EQ(Operation().value("status", ""), "succeeded") << Operation().dump();
}

}  // namespace
}  // namespace berth::runtime
