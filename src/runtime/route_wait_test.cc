// "Ready" means routed (docs/gateway.md): with ControllerOptions::route_wait, an operation of a
// component the gateway routes ends only once the gateway's report (the gateway_status object)
// reaches the revision that wrote the converged instances; one the gateway does not route ends
// with its instances; without the report in time it fails. A fake machine (FakeHost) under a
// real LocalDriver and a real (temporary) SQLite store.
#include <stdlib.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "runtime/controller.h"
#include "runtime/detail/fake_host_for_test.h"
#include "runtime/local_driver.h"

namespace berth::runtime {
namespace {

using detail::FakeHost;
using std::chrono::milliseconds;

class RouteWaitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-route-wait-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = OpenSqliteStore(dir_ + "/berth.db");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    recorder_ = std::make_unique<events::Recorder>(*store_, clock_);
    driver_ = std::make_unique<LocalDriver>(
        host_, clock_,
        [this](const ComponentRef& ref, events::Type type, const std::string& reason,
               const std::string& message) {
          if (controller_) controller_->RecordEvent(ref, type, reason, message);
        });
    Put(model::kTeam, "", "t", {{"name", "t"}});
    Put(model::kApp, "t", "a", {{"name", "a"}});
    Put(model::kVersion, "t/a/web", "v1",
        {{"name", "v1"}, {"number", 1}, {"status", "ready"}, {"start_command", "./serve"}});
  }
  void TearDown() override {
    controller_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  int64_t Put(const std::string& kind, const std::string& scope, const std::string& name,
              const Json& body) {
    WriteBatch b;
    Op op;
    op.type = OpType::kUpsert;
    op.object = Object{kind, scope, name, body.dump(), ""};
    b.ops.push_back(op);
    auto r = store_->Commit(b);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->revision : 0;
  }
  // The component with `replicas` and an operation in progress, in one commit (as the API
  // writes a scale).
  void Scale(int replicas, bool outer) {
    Json c = {{"name", "web"}, {"replicas", replicas}};
    c["ports"] = Json::array({{{"port", 8080}, {"protocol", "http"}, {"outer", outer}}});
    auto parsed = model::ParseComponent(c);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    model::Operation op;
    op.type = "scale";
    op.detail = "scale to " + std::to_string(replicas);
    op.by = "alice";
    WriteBatch b;
    Op w;
    w.type = OpType::kUpsert;
    w.object = Object{model::kComponent, "t/a", "web", model::ToJson(*parsed).dump(), ""};
    b.ops.push_back(w);
    w.object = Object{model::kOperation, "t/a/web", "current", model::ToJson(op).dump(), ""};
    b.ops.push_back(w);
    ASSERT_TRUE(store_->Commit(b).ok());
  }
  void Start(milliseconds route_wait) {
    ControllerOptions o;
    o.data_dir = dir_;
    o.clock = &clock_;
    o.route_wait = route_wait;
    controller_ = std::make_unique<Controller>(*store_, *driver_, *recorder_, o);
    ASSERT_TRUE(controller_->FullScanForTest().ok());
  }
  Json Operation() {
    auto o = store_->Get(model::kOperation, "t/a/web", "current");
    return o.ok() ? Json::parse(o->body) : Json();
  }
  int Ready() {
    auto l = ListAll(*store_, model::kInstance, "t/a/web");
    int n = 0;
    if (l.ok()) {
      for (const Object& o : *l) n += Json::parse(o.body).value("ready", false) ? 1 : 0;
    }
    return n;
  }
  // Ticks until `n` instances are ready in the store.
  void UntilReady(int n) {
    for (int i = 0; i < 50 && Ready() < n; ++i) {
      clock_.Advance(milliseconds(500));
      controller_->RunOnceForTest();
    }
    ASSERT_EQ(Ready(), n);
  }
  void Tick(int times = 3) {
    for (int i = 0; i < times; ++i) {
      clock_.Advance(milliseconds(200));
      controller_->RunOnceForTest();
    }
  }
  int64_t Report(int64_t revision) {
    return Put(model::kGatewayStatus, "", "gateway", {{"revision", revision}, {"tcp", Json::array()}});
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
  FakeHost host_;
  FakeClockForTest clock_{TimePoint{} + std::chrono::hours(1000)};
  std::unique_ptr<events::Recorder> recorder_;
  std::unique_ptr<LocalDriver> driver_;
  std::unique_ptr<Controller> controller_;
};

TEST_F(RouteWaitTest, ARoutedComponentsOperationEndsOnceTheGatewayServesItsInstances) {
  Start(std::chrono::seconds(60));
  int64_t before = store_->Head();
  Report(before);  // the gateway serves what was there before the change
  Scale(2, /*outer=*/true);
  UntilReady(2);
  Tick();
  // Ready instances, but the gateway has not taken a snapshot with them: still in progress.
  EXPECT_EQ(Operation().value("status", ""), "in_progress") << Operation().dump();
  // A report of an older revision is not enough.
  Report(before + 1);
  Tick();
  EXPECT_EQ(Operation().value("status", ""), "in_progress") << Operation().dump();
  // The gateway took a snapshot at the head: done, and the message says so.
  int64_t head = store_->Head();
  Report(head);
  Tick(1);
  Json op = Operation();
  EXPECT_EQ(op.value("status", ""), "succeeded") << op.dump();
  EXPECT_NE(op.value("message", "").find("2 of 2 instance(s) ready"), std::string::npos) << op.dump();
  EXPECT_NE(op.value("message", "").find("the gateway routes them (snapshot revision " +
                                          std::to_string(head) + ")"),
            std::string::npos)
      << op.dump();
}

TEST_F(RouteWaitTest, AComponentTheGatewayDoesNotRouteEndsWithItsInstances) {
  Start(std::chrono::seconds(60));
  Scale(1, /*outer=*/false);
  UntilReady(1);
  Tick(1);
  Json op = Operation();
  EXPECT_EQ(op.value("status", ""), "succeeded") << op.dump();
  EXPECT_EQ(op.value("message", "").find("gateway"), std::string::npos) << op.dump();
}

TEST_F(RouteWaitTest, WithoutRouteWaitOperationsEndWithTheInstances) {
  Start(milliseconds(0));
  Scale(1, /*outer=*/true);
  UntilReady(1);
  Tick(1);
  EXPECT_EQ(Operation().value("status", ""), "succeeded") << Operation().dump();
}

TEST_F(RouteWaitTest, NoReportInTimeFailsTheOperationSayingWhy) {
  Start(milliseconds(50));
  Scale(1, /*outer=*/true);
  UntilReady(1);
  Tick(1);
  std::this_thread::sleep_for(milliseconds(80));  // route_wait runs on the steady clock
  Tick(1);
  Json op = Operation();
  EXPECT_EQ(op.value("status", ""), "failed") << op.dump();
  EXPECT_NE(op.value("message", "").find("the gateway did not route them"), std::string::npos)
      << op.dump();
  EXPECT_NE(op.value("message", "").find("no gateway has reported"), std::string::npos)
      << op.dump();
}

}  // namespace
}  // namespace berth::runtime
