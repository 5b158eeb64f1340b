// The automatic port decision (builder/auto_port.h) over detections of the fixture trees and
// hand-made components.
#include "builder/auto_port.h"

#include <gtest/gtest.h>

namespace berth::builder {
namespace {

Detection Of(const std::string& fixture) {
  auto d = Detect(std::string(BERTH_SOURCE_DIR) + "/tests/fixtures/detect/" + fixture + "/tree",
                  model::BuildSettings{});
  EXPECT_TRUE(d.ok()) << fixture << ": " << d.status().ToString();
  return d.ok() ? *d : Detection{};
}

Json Port(int port, bool automatic = false) {
  Json p = {{"port", port}, {"protocol", "http"}, {"inner", true}, {"outer", true}, {"name", ""}};
  if (automatic) p["auto"] = true;
  return p;
}

Json Comp(Json ports = Json::array()) { return {{"name", "web"}, {"ports", ports}}; }

TEST(AutoPort, WebProcessesWithoutPortsGetTheDetectedOne) {
  for (auto [fixture, port] : {std::pair{"node-npm", 8081}, {"node-entry-listens", 5000},
                               {"python-requirements", 5001}, {"static-site", 8080},
                               {"go-mod", 9090}, {"procfile-only", 5000}}) {
    AutoPortPlan plan = PlanAutoPort(Of(fixture), Comp());
    ASSERT_TRUE(plan.change) << fixture << ": " << plan.reason;
    EXPECT_EQ(plan.ports, Json::array({Port(port, true)})) << fixture;
    EXPECT_NE(plan.reason.find("port " + std::to_string(port) + " published automatically"),
              std::string::npos)
        << plan.reason;
    // What the builder stores reads back as a component.
    Json stored = Comp(plan.ports);
    EXPECT_TRUE(model::ParseComponent(stored).ok()) << stored.dump();
    // Already there: nothing to change.
    EXPECT_FALSE(PlanAutoPort(Of(fixture), stored).change) << fixture;
  }
}

TEST(AutoPort, WorkersAndProgramsThatDoNotListenGetNone) {
  for (const char* fixture : {"procfile-worker-only", "go-no-listen", "python-script"}) {
    AutoPortPlan plan = PlanAutoPort(Of(fixture), Comp());
    EXPECT_FALSE(plan.change) << fixture;
    EXPECT_TRUE(plan.ports.empty()) << fixture;
    EXPECT_NE(plan.reason.find("no port published"), std::string::npos) << plan.reason;
    EXPECT_NE(plan.reason.find("--port"), std::string::npos) << plan.reason;
  }
  EXPECT_NE(PlanAutoPort(Of("procfile-worker-only"), Comp()).reason.find("no web process"),
            std::string::npos);
  // An automatic port of an earlier build goes when the process no longer serves.
  AutoPortPlan plan = PlanAutoPort(Of("procfile-worker-only"), Comp({Port(3000, true)}));
  EXPECT_TRUE(plan.change);
  EXPECT_TRUE(plan.ports.empty());
  EXPECT_NE(plan.reason.find("automatic port 3000 is removed"), std::string::npos) << plan.reason;
}

TEST(AutoPort, DeclaredPortsJobsAndPinnedVersionsWin) {
  Detection web = Of("node-npm");
  AutoPortPlan plan = PlanAutoPort(web, Comp({Port(9000)}));
  EXPECT_FALSE(plan.change);
  EXPECT_NE(plan.reason.find("declares port(s) 9000"), std::string::npos) << plan.reason;

  Json job = Comp();
  job["kind"] = "job";
  EXPECT_FALSE(PlanAutoPort(web, job).change);
  job["kind"] = "cronjob";
  EXPECT_FALSE(PlanAutoPort(web, job).change);

  Json pinned = Comp();
  pinned["version"] = "v1";
  plan = PlanAutoPort(web, pinned);
  EXPECT_FALSE(plan.change);
  EXPECT_NE(plan.reason.find("pinned to v1"), std::string::npos) << plan.reason;

  // A new detected port replaces the automatic one.
  plan = PlanAutoPort(web, Comp({Port(3000, true)}));
  EXPECT_TRUE(plan.change);
  EXPECT_EQ(plan.ports, Json::array({Port(8081, true)}));
}

}  // namespace
}  // namespace berth::builder
