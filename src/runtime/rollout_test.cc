// The rollout rule: a new version that cannot start is not left crash-looping beside the one
// that serves — the failed rollout returns the component to the serving version, with an event
// and an audit entry, and the operation says so. The controller over a real (temporary) SQLite
// store, a fake machine and a fake clock.
#include <stdlib.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "runtime/controller.h"
#include "runtime/detail/fake_host_for_test.h"
#include "runtime/local_driver.h"

namespace berth::runtime {
namespace {

using detail::FakeHost;
using std::chrono::milliseconds;

class FailedRolloutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-rollout-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = OpenSqliteStore(dir_ + "/berth.db");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    clock_.Advance(std::chrono::hours(1000));
    recorder_ = std::make_unique<events::Recorder>(*store_, clock_);
    driver_ = std::make_unique<LocalDriver>(
        host_, clock_,
        [this](const ComponentRef& ref, events::Type type, const std::string& reason,
               const std::string& message) {
          if (controller_) controller_->RecordEvent(ref, type, reason, message);
        });
    Put(model::kTeam, "", "t", {{"name", "t"}});
    Put(model::kApp, "t", "a", {{"name", "a"}});
    Version("v1", 1);
    auto c = model::ParseComponent({{"name", "web"}, {"replicas", 1}});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    Put(model::kComponent, "t/a", "web", model::ToJson(*c));
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
  void Version(const std::string& name, int number) {
    Put(model::kVersion, "t/a/web", name,
        {{"name", name}, {"number", number}, {"status", "ready"}, {"start_command", "./" + name}});
  }
  Json Get(const std::string& kind, const std::string& scope, const std::string& name) {
    auto o = store_->Get(kind, scope, name);
    return o.ok() ? Json::parse(o->body) : Json::object();
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
  // The versions of the instances running now.
  std::multiset<std::string> Running() {
    std::multiset<std::string> out;
    for (const auto& [name, shim] : host_.shims) {
      if (shim.obs.state == ShimObservation::State::kRunning) out.insert(shim.spec.version);
    }
    return out;
  }
  // One pass: every instance of `crashing` that runs exits, stops finish, time moves on.
  void Step(const std::string& crashing) {
    for (auto& [name, shim] : host_.shims) {
      if (shim.spec.version == crashing && shim.obs.state == ShimObservation::State::kRunning) {
        host_.Exit(name, 1);
      }
    }
    host_.FinishStops();
    clock_.Advance(milliseconds(250));
    controller_->RunOnceForTest();
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
  FakeClockForTest clock_;
  FakeHost host_;
  std::unique_ptr<events::Recorder> recorder_;
  std::unique_ptr<LocalDriver> driver_;
  std::unique_ptr<Controller> controller_;
};

TEST_F(FailedRolloutTest, AFailedRolloutReturnsToTheServingVersion) {
  ControllerOptions o;
  o.data_dir = dir_;
  o.clock = &clock_;
  controller_ = std::make_unique<Controller>(*store_, *driver_, *recorder_, o);
  ASSERT_TRUE(controller_->FullScanForTest().ok());
  for (int i = 0; i < 20 && Running() != std::multiset<std::string>{"v1"}; ++i) Step("");
  ASSERT_EQ(Running(), std::multiset<std::string>{"v1"});

  // v2 is built: the component follows the newest, so it rolls out — and v2 exits at once.
  Version("v2", 2);
  bool tried = false;
  for (int i = 0; i < 400 && Get(model::kComponent, "t/a", "web").value("version", "") != "v1"; ++i) {
    tried |= Running().count("v2") > 0;
    Step("v2");
  }
  EXPECT_TRUE(tried);
  Json comp = Get(model::kComponent, "t/a", "web");
  ASSERT_EQ(comp.value("version", ""), "v1") << comp.dump();
  Json op = Get(model::kOperation, "t/a/web", "current");
  EXPECT_EQ(op.value("status", ""), "failed") << op.dump();
  EXPECT_NE(op.value("message", "").find("returned to v1, which was serving"), std::string::npos)
      << op.dump();
  auto back = Events("RolledBack");
  ASSERT_EQ(back.size(), 1u);
  EXPECT_NE(back[0].find("the rollout of v2 failed"), std::string::npos) << back[0];
  EXPECT_NE(back[0].find("fatal: cannot connect to database"), std::string::npos) << back[0];
  EXPECT_NE(back[0].find("`berth deploy web --app a`"), std::string::npos) << back[0];

  // The crash-looping v2 instance goes; v1 keeps serving and nothing starts v2 again.
  for (int i = 0; i < 40; ++i) Step("v2");
  EXPECT_EQ(Running(), std::multiset<std::string>{"v1"});
  size_t launches = host_.launches.size();
  for (int i = 0; i < 40; ++i) Step("v2");
  EXPECT_EQ(host_.launches.size(), launches);
  // Returning is not another deploy: the failed operation stays the last word.
  EXPECT_EQ(Get(model::kOperation, "t/a/web", "current").value("status", ""), "failed");
  // Recorded as a change of the component by the platform.
  auto audit = store_->ListAudit("t", 0, 50);
  ASSERT_TRUE(audit.ok());
  bool found = false;
  for (const AuditEntry& e : *audit) {
    found |= e.record.actor == "berth" && e.record.resource == "apps/a/components/web" &&
             e.record.summary.find("returned to v1") != std::string::npos;
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace berth::runtime
