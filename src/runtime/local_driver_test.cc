// The local driver's decisions against a fake machine and a fake clock: no fork, no sleep.
#include "runtime/local_driver.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "runtime/detail/fake_host_for_test.h"

namespace berth::runtime {
namespace {

using detail::FakeHost;
using detail::FakeShim;

using std::chrono::milliseconds;
using std::chrono::seconds;

struct Recorded {
  std::string reason;
  std::string message;
};

class LocalDriverTest : public ::testing::Test {
 protected:
  LocalDriverTest()
      : clock_(TimePoint{} + std::chrono::hours(1000)),
        driver_(host_, clock_, [this](const ComponentRef&, events::Type, const std::string& reason,
                                      const std::string& message) {
          events_.push_back({reason, message});
        }) {}

  DesiredComponent Desired(const std::string& version, int replicas) {
    DesiredComponent d;
    d.ref = ref_;
    d.replicas = replicas;
    InstanceTemplate t;
    t.version = version;
    t.start_command = "python3 app.py";
    t.env = {{"GREETING", "hi"}};
    t.ports = {model::Port{8080, "http", true, false, ""}};
    d.tmpl = t;
    return d;
  }
  // Ticks (advancing the clock) until `pred` holds, at most `n` times.
  template <class Pred>
  bool TickUntil(Pred pred, int n = 50, milliseconds step = milliseconds(100)) {
    for (int i = 0; i < n; ++i) {
      driver_.Tick();
      if (pred()) return true;
      clock_.Advance(step);
    }
    return pred();
  }
  std::vector<InstanceStatus> Obs() { return driver_.Observe(ref_); }
  int CountReady() {
    int n = 0;
    for (const auto& s : Obs()) n += s.ready ? 1 : 0;
    return n;
  }
  bool HasEvent(const std::string& reason) const {
    return std::any_of(events_.begin(), events_.end(),
                       [&](const Recorded& r) { return r.reason == reason; });
  }
  const Recorded* Event(const std::string& reason) const {
    for (const auto& r : events_) {
      if (r.reason == reason) return &r;
    }
    return nullptr;
  }

  ComponentRef ref_{"default", "shop", "web"};
  FakeHost host_;
  FakeClockForTest clock_;
  std::vector<Recorded> events_;
  LocalDriver driver_;
};

TEST_F(LocalDriverTest, ScalesUpWithDistinctPortsAndEnvThenDown) {
  driver_.Apply(Desired("v1", 3));
  ASSERT_TRUE(TickUntil([&] { return CountReady() == 3; }));
  ASSERT_EQ(host_.launches.size(), 3u);
  std::set<int> ports;
  for (const auto& l : host_.launches) {
    ports.insert(l.port);
    EXPECT_EQ(l.env.at("PORT"), std::to_string(l.port));
    EXPECT_EQ(l.env.at("PORT_8080"), std::to_string(l.port));
    EXPECT_EQ(l.env.at("BERTH_INSTANCE"), l.instance);
    EXPECT_EQ(l.env.at("BERTH_VERSION"), "v1");
    EXPECT_EQ(l.env.at("GREETING"), "hi");
  }
  EXPECT_EQ(ports.size(), 3u);
  auto obs = Obs();
  ASSERT_EQ(obs.size(), 3u);
  EXPECT_EQ(obs[0].name, "web-1");
  EXPECT_EQ(obs[2].name, "web-3");
  EXPECT_EQ(obs[0].state, "running");

  driver_.Apply(Desired("v1", 1));
  driver_.Tick();
  EXPECT_TRUE(host_.stops.empty());  // first drained: reported unready, still serving
  EXPECT_EQ(CountReady(), 1);
  ASSERT_TRUE(TickUntil([&] { return host_.stops.size() == 2; }));
  ASSERT_TRUE(TickUntil([&] {
    host_.FinishStops();
    return Obs().size() == 1;
  }));
  EXPECT_EQ(Obs()[0].name, "web-1");

  driver_.Apply(Desired("v1", 0));
  ASSERT_TRUE(TickUntil([&] {
    host_.FinishStops();
    return Obs().empty();
  }));
  EXPECT_EQ(host_.launches.size(), 3u);  // nothing was started again
}

TEST_F(LocalDriverTest, StoppedComponentRunsNothing) {
  DesiredComponent d = Desired("v1", 2);
  d.running = false;
  driver_.Apply(d);
  driver_.Tick();
  EXPECT_TRUE(host_.launches.empty());
}

TEST_F(LocalDriverTest, NotReadyUntilTheCheckPasses) {
  host_.default_probe_ok = false;
  driver_.Apply(Desired("v1", 1));
  TickUntil([] { return false; }, 10);
  ASSERT_EQ(Obs().size(), 1u);
  EXPECT_FALSE(Obs()[0].ready);
  EXPECT_EQ(Obs()[0].state, "starting");
  host_.default_probe_ok = true;
  ASSERT_TRUE(TickUntil([&] { return CountReady() == 1; }));
}

TEST_F(LocalDriverTest, CrashRestartsWithExponentialBackoffAndReportsACrashLoop) {
  driver_.Apply(Desired("v1", 1));
  ASSERT_TRUE(TickUntil([&] { return CountReady() == 1; }));
  std::vector<TimePoint> exits, restarts;
  for (int crash = 0; crash < 4; ++crash) {
    size_t launches = host_.launches.size();
    host_.Exit("web-1", 3);
    driver_.Tick();
    exits.push_back(clock_.Now());
    EXPECT_EQ(Obs()[0].state, "backoff");
    ASSERT_TRUE(TickUntil([&] { return host_.launches.size() > launches; }, 1000,
                          milliseconds(50)));
    restarts.push_back(clock_.Now());
  }
  // 1 s, 2 s, 4 s, 8 s.
  for (int i = 0; i < 4; ++i) {
    auto waited = std::chrono::duration_cast<milliseconds>(restarts[i] - exits[i]).count();
    EXPECT_GE(waited, 1000 << i) << "crash " << i;
    EXPECT_LT(waited, (1000 << i) + 200) << "crash " << i;
  }
  EXPECT_EQ(Obs()[0].restarts, 4);
  ASSERT_TRUE(HasEvent("Crashed"));
  const Recorded* loop = Event("CrashLoop");
  ASSERT_NE(loop, nullptr);
  EXPECT_NE(loop->message.find("instance web-1 exited with code 3 3 times in 60 s"),
            std::string::npos) << loop->message;
  EXPECT_NE(loop->message.find("fatal: cannot connect to database"), std::string::npos);
  ASSERT_TRUE(Obs()[0].last_exit.has_value());
  EXPECT_EQ(Obs()[0].last_exit->code, 3);
}

TEST_F(LocalDriverTest, LivenessFailureRestartsWithAnEvent) {
  DesiredComponent d = Desired("v1", 1);
  model::Probe live;
  live.type = "http";
  live.path = "/healthz";
  live.interval_s = 1;
  live.failure_threshold = 2;
  d.tmpl->health.liveness = live;
  driver_.Apply(d);
  ASSERT_TRUE(TickUntil([&] { return CountReady() == 1; }));
  int port = host_.launches.back().port;
  host_.probe_ok[port] = false;
  ASSERT_TRUE(TickUntil([&] { return !host_.stops.empty(); }, 100));
  const Recorded* e = Event("LivenessFailed");
  ASSERT_NE(e, nullptr);
  EXPECT_NE(e->message.find("http GET /healthz"), std::string::npos) << e->message;
  EXPECT_NE(e->message.find("HTTP 500: broken"), std::string::npos) << e->message;
  host_.probe_ok.clear();
  host_.FinishStops();
  ASSERT_TRUE(TickUntil([&] { return host_.launches.size() == 2 && CountReady() == 1; }));
  EXPECT_EQ(host_.launches.back().instance, "web-1");
  EXPECT_EQ(Obs()[0].restarts, 1);
}

TEST_F(LocalDriverTest, RollingUpdateNeverDropsBelowTheReadyCount) {
  driver_.Apply(Desired("v1", 2));
  ASSERT_TRUE(TickUntil([&] { return CountReady() == 2; }));
  host_.default_probe_ok = false;  // new instances are not ready at first
  driver_.Apply(Desired("v2", 2));
  TickUntil([] { return false; }, 10);
  EXPECT_EQ(host_.launches.size(), 3u);  // surge of one
  EXPECT_TRUE(host_.stops.empty());      // no old one stopped before the new one is ready
  EXPECT_EQ(CountReady(), 2);
  host_.default_probe_ok = true;
  for (int i = 0; i < 200; ++i) {
    driver_.Tick();
    host_.FinishStops();
    int ready = CountReady();
    ASSERT_GE(ready, 2) << "step " << i;
    auto obs = Obs();
    if (obs.size() == 2 && std::all_of(obs.begin(), obs.end(), [](const InstanceStatus& s) {
          return s.version == "v2" && s.ready;
        })) {
      break;
    }
    clock_.Advance(milliseconds(100));
  }
  auto obs = Obs();
  ASSERT_EQ(obs.size(), 2u);
  for (const auto& s : obs) EXPECT_EQ(s.version, "v2");
  EXPECT_EQ(host_.launches.size(), 4u);
  EXPECT_EQ(host_.stops.size(), 2u);
}

TEST_F(LocalDriverTest, AdoptsRunningShimsInsteadOfStartingNewOnes) {
  DesiredComponent d = Desired("v1", 1);
  DiscoveredShim shim;
  shim.spec.ref = ref_;
  shim.spec.instance = "web-1";
  shim.spec.version = "v1";
  shim.spec.fingerprint = d.tmpl->Fingerprint();
  shim.spec.port = 31000;
  shim.spec.ports = {{8080, 31000}};
  shim.obs.state = ShimObservation::State::kRunning;
  shim.obs.shim_pid = 4242;
  shim.obs.app_pid = 4243;
  host_.discovered.push_back(shim);
  FakeShim fs;
  fs.spec = shim.spec;
  fs.obs = shim.obs;
  host_.shims["web-1"] = fs;
  driver_.Adopt();
  driver_.Apply(d);
  ASSERT_TRUE(TickUntil([&] { return CountReady() == 1; }));
  EXPECT_TRUE(host_.launches.empty());
  EXPECT_EQ(Obs()[0].pid, 4243);
  EXPECT_EQ(Obs()[0].port, 31000);
}

TEST_F(LocalDriverTest, RemoveStopsEverythingAndForgetsTheComponent) {
  driver_.Apply(Desired("v1", 2));
  ASSERT_TRUE(TickUntil([&] { return CountReady() == 2; }));
  driver_.Remove(ref_);
  driver_.Tick();
  host_.FinishStops();
  ASSERT_TRUE(TickUntil([&] { return driver_.Components().empty(); }));
  EXPECT_EQ(host_.cleanups.size(), 2u);
}

TEST_F(LocalDriverTest, StopThatHangsIsKilledAfterTheGracePeriod) {
  DesiredComponent d = Desired("v1", 1);
  d.tmpl->grace_s = 2;
  driver_.Apply(d);
  ASSERT_TRUE(TickUntil([&] { return CountReady() == 1; }));
  d.replicas = 0;
  driver_.Apply(d);
  driver_.Tick();
  // The fake shim ignores the stop; after grace + 5 s the driver kills it.
  ASSERT_TRUE(TickUntil([&] { return Obs().empty(); }, 200));
  EXPECT_GE(clock_.Now() - TimePoint{}, std::chrono::hours(1000) + seconds(7));
}

TEST_F(LocalDriverTest, FailedLaunchIsRetriedWithAnEvent) {
  host_.fail_launch = true;
  driver_.Apply(Desired("v1", 1));
  driver_.Tick();
  ASSERT_TRUE(HasEvent("StartFailed"));
  EXPECT_EQ(Obs()[0].state, "backoff");
  host_.fail_launch = false;
  ASSERT_TRUE(TickUntil([&] { return CountReady() == 1; }));
}


// ---- rollout settings (max_surge, max_unavailable) and the grace period ------------------

class RolloutTest : public LocalDriverTest {
 protected:
  struct Bounds {
    int max_active = 0;   // instances not stopping, at any tick
    int min_ready = 1 << 20;
    int max_new_at_once = 0;  // new instances launched in one tick
    bool done = false;
  };
  // Rolls `want` ready v1 instances to v2 with `rollout`, new instances becoming ready after
  // `ready_after` ticks; returns the bounds seen on the way.
  Bounds Roll(int want, model::Rollout rollout, int ready_after = 5) {
    driver_.Apply(Desired("v1", want));
    EXPECT_TRUE(TickUntil([&] { return CountReady() == want; }));
    for (const auto& l : host_.launches) host_.probe_ok[l.port] = true;
    host_.default_probe_ok = false;  // new instances: not ready until we say so
    DesiredComponent d = Desired("v2", want);
    d.rollout = rollout;
    driver_.Apply(d);
    Bounds b;
    std::map<int, int> born;  // port → tick it was launched at
    size_t seen = host_.launches.size();
    for (int tick = 0; tick < 400; ++tick) {
      driver_.Tick();
      b.max_new_at_once = std::max(b.max_new_at_once, static_cast<int>(host_.launches.size() - seen));
      for (; seen < host_.launches.size(); ++seen) born[host_.launches[seen].port] = tick;
      for (const auto& [port, at] : born) {
        if (tick - at >= ready_after) host_.probe_ok[port] = true;
      }
      auto obs = Obs();
      int active = 0, ready = 0;
      for (const auto& s : obs) {
        active += s.state != "stopping" ? 1 : 0;
        ready += s.ready ? 1 : 0;
      }
      b.max_active = std::max(b.max_active, active);
      b.min_ready = std::min(b.min_ready, ready);
      if (static_cast<int>(obs.size()) == want &&
          std::all_of(obs.begin(), obs.end(), [](const InstanceStatus& s) {
            return s.version == "v2" && s.ready;
          })) {
        b.done = true;
        return b;
      }
      host_.FinishStops();
      clock_.Advance(milliseconds(100));
    }
    return b;
  }
};

TEST_F(RolloutTest, DefaultSurgesOneAndKeepsEveryReplicaReady) {
  Bounds b = Roll(3, model::Rollout{});
  ASSERT_TRUE(b.done);
  EXPECT_EQ(b.max_active, 4);
  EXPECT_EQ(b.min_ready, 3);
  EXPECT_EQ(host_.launches.size(), 6u);
}

TEST_F(RolloutTest, SurgeCountStartsThatManyNewInstancesAtOnce) {
  model::Rollout r;
  r.max_surge = {2, false};
  Bounds b = Roll(4, r);
  ASSERT_TRUE(b.done);
  EXPECT_EQ(b.max_new_at_once, 2);
  EXPECT_EQ(b.max_active, 6);
  EXPECT_EQ(b.min_ready, 4);
}

TEST_F(RolloutTest, SurgePercentRoundsUp) {
  model::Rollout r;
  r.max_surge = {50, true};  // 50% of 3 = 1.5 → 2
  Bounds b = Roll(3, r);
  ASSERT_TRUE(b.done);
  EXPECT_EQ(b.max_new_at_once, 2);
  EXPECT_EQ(b.max_active, 5);
  EXPECT_EQ(b.min_ready, 3);
}

TEST_F(RolloutTest, UnavailableWithoutSurgeReplacesInPlace) {
  model::Rollout r;
  r.max_surge = {0, false};
  r.max_unavailable = {1, false};
  Bounds b = Roll(3, r);
  ASSERT_TRUE(b.done);
  EXPECT_EQ(b.max_active, 3) << "no instance above the replicas";
  EXPECT_EQ(b.min_ready, 2) << "one replica down at a time";
}

TEST_F(RolloutTest, UnavailablePercentRoundsDown) {
  model::Rollout r;
  r.max_surge = {0, false};
  r.max_unavailable = {50, true};  // 50% of 3 = 1.5 → 1
  Bounds b = Roll(3, r);
  ASSERT_TRUE(b.done);
  EXPECT_EQ(b.max_active, 3);
  EXPECT_EQ(b.min_ready, 2);
}

TEST_F(RolloutTest, SurgeAndUnavailableTogether) {
  model::Rollout r;
  r.max_surge = {1, false};
  r.max_unavailable = {1, false};
  Bounds b = Roll(4, r);
  ASSERT_TRUE(b.done);
  EXPECT_LE(b.max_active, 5);
  EXPECT_GE(b.min_ready, 3);
  EXPECT_EQ(b.max_new_at_once, 2) << "one surging, one replacing a stopped old instance";
}

TEST_F(RolloutTest, GracePeriodGoesToTheShimAndAChangeReplacesInstances) {
  DesiredComponent d = Desired("v1", 1);
  InstanceTemplate plain = *d.tmpl;
  d.tmpl->grace_s = 30;
  EXPECT_NE(d.tmpl->Fingerprint(), plain.Fingerprint());
  InstanceTemplate ten = plain;
  ten.grace_s = 10;
  EXPECT_EQ(ten.Fingerprint(), plain.Fingerprint()) << "the default keeps old fingerprints";
  driver_.Apply(d);
  ASSERT_TRUE(TickUntil([&] { return CountReady() == 1; }));
  ASSERT_EQ(host_.launches.size(), 1u);
  EXPECT_EQ(host_.launches[0].grace_s, 30);
  d.tmpl->grace_s = 5;
  driver_.Apply(d);
  ASSERT_TRUE(TickUntil([&] {
    host_.FinishStops();
    auto obs = Obs();
    return host_.launches.size() == 2 && obs.size() == 1 && obs[0].ready;
  }, 200));
  EXPECT_EQ(host_.launches[1].grace_s, 5);
}

TEST_F(RolloutTest, StopWaitsTheGracePeriodBeforeKilling) {
  DesiredComponent d = Desired("v1", 1);
  d.tmpl->grace_s = 20;
  driver_.Apply(d);
  ASSERT_TRUE(TickUntil([&] { return CountReady() == 1; }));
  TimePoint t0 = clock_.Now();
  d.running = false;
  driver_.Apply(d);
  // The fake shim ignores SIGTERM: the driver kills it after grace (20 s) + 5 s, not before.
  ASSERT_TRUE(TickUntil([&] { return Obs().empty(); }, 400));
  EXPECT_GE(clock_.Now() - t0, seconds(25));
  EXPECT_LT(clock_.Now() - t0, seconds(27));
}

TEST_F(LocalDriverTest, AdoptedOutdatedInstancesServeUntilTheRolloutReplacesThem) {
  // The server died mid-rollout: two v1 instances (outdated) and one v2 still starting.
  DesiredComponent v1 = Desired("v1", 2), v2 = Desired("v2", 2);
  auto shim = [&](const std::string& name, const DesiredComponent& d, int port) {
    DiscoveredShim s;
    s.spec.ref = ref_;
    s.spec.instance = name;
    s.spec.version = d.tmpl->version;
    s.spec.fingerprint = d.tmpl->Fingerprint();
    s.spec.port = port;
    s.spec.ports = {{8080, port}};
    s.obs.state = ShimObservation::State::kRunning;
    s.obs.shim_pid = port + 1;
    s.obs.app_pid = port + 2;
    host_.discovered.push_back(s);
    FakeShim fs;
    fs.spec = s.spec;
    fs.obs = s.obs;
    host_.shims[name] = fs;
  };
  shim("web-1", v1, 31000);
  shim("web-2", v1, 31010);
  shim("web-3", v2, 31020);
  host_.probe_ok[31020] = false;  // v2 is not ready yet
  driver_.Adopt();
  driver_.Apply(v2);
  for (int i = 0; i < 20; ++i) {
    driver_.Tick();
    EXPECT_TRUE(host_.stops.empty()) << "tick " << i << ": no old instance goes before v2 is ready";
    if (i > 0) {
      EXPECT_EQ(CountReady(), 2) << "tick " << i;
    }
    clock_.Advance(milliseconds(100));
  }
  EXPECT_TRUE(host_.launches.empty()) << "the surge is taken by the adopted v2 instance";
  host_.probe_ok[31020] = true;
  host_.default_probe_ok = true;
  ASSERT_TRUE(TickUntil([&] {
    host_.FinishStops();
    auto obs = Obs();
    return obs.size() == 2 && std::all_of(obs.begin(), obs.end(), [](const InstanceStatus& s) {
             return s.version == "v2" && s.ready;
           });
  }, 400));
  EXPECT_EQ(host_.launches.size(), 1u);
}

// ---- stateful: stable names, ordered start, replacement from the top ------------------------

class StatefulTest : public LocalDriverTest {
 protected:
  DesiredComponent Stateful(const std::string& version, int replicas) {
    DesiredComponent d = Desired(version, replicas);
    d.ordered = true;
    return d;
  }
  std::vector<std::string> Launched() {
    std::vector<std::string> out;
    for (const auto& l : host_.launches) out.push_back(l.instance + "@" + l.version);
    return out;
  }
};

TEST_F(StatefulTest, StartsInOrderUnderStableNames) {
  host_.default_probe_ok = false;
  driver_.Apply(Stateful("v1", 3));
  TickUntil([] { return false; }, 10);
  ASSERT_EQ(Launched(), std::vector<std::string>{"web-0@v1"}) << "web-1 waits for web-0";
  for (int n = 1; n <= 3; ++n) {
    host_.probe_ok[host_.launches.back().port] = true;
    ASSERT_TRUE(TickUntil([&] { return CountReady() == n; }));
    TickUntil([] { return false; }, 5);
    EXPECT_EQ(host_.launches.size(), static_cast<size_t>(std::min(n + 1, 3)));
  }
  EXPECT_EQ(Launched(), (std::vector<std::string>{"web-0@v1", "web-1@v1", "web-2@v1"}));
}

TEST_F(StatefulTest, UpdatesFromTheHighestUnderTheSameNameAndScalesDownFromTheTop) {
  driver_.Apply(Stateful("v1", 3));
  ASSERT_TRUE(TickUntil([&] { return CountReady() == 3; }, 100));
  driver_.Apply(Stateful("v2", 3));
  int max_active = 0;
  ASSERT_TRUE(TickUntil([&] {
    host_.FinishStops();
    int active = 0;
    for (const auto& s : Obs()) active += s.state != "stopping" ? 1 : 0;
    max_active = std::max(max_active, active);
    auto obs = Obs();
    return obs.size() == 3 && std::all_of(obs.begin(), obs.end(), [](const InstanceStatus& s) {
             return s.version == "v2" && s.ready;
           });
  }, 400));
  EXPECT_LE(max_active, 3) << "no surge: a replacement takes its predecessor's name";
  EXPECT_EQ(Launched(), (std::vector<std::string>{"web-0@v1", "web-1@v1", "web-2@v1",
                                                  "web-2@v2", "web-1@v2", "web-0@v2"}));
  EXPECT_EQ(host_.stops, (std::vector<std::string>{"web-2", "web-1", "web-0"}));
  host_.stops.clear();
  driver_.Apply(Stateful("v2", 1));
  ASSERT_TRUE(TickUntil([&] {
    host_.FinishStops();
    return Obs().size() == 1;
  }, 400));
  EXPECT_EQ(host_.stops, (std::vector<std::string>{"web-2", "web-1"}));
  EXPECT_EQ(Obs()[0].name, "web-0");
}

TEST_F(LocalDriverTest, AVanishedSupervisorIsKilledAndRelaunchedOnAFreshPort) {
  driver_.Apply(Desired("v1", 1));
  ASSERT_TRUE(TickUntil([&] { return CountReady() == 1; }));
  int port = host_.launches.back().port;
  host_.shims.erase("web-1");  // neither a live shim nor a recorded exit
  driver_.Tick();
  EXPECT_EQ(host_.kills, std::vector<std::string>{"web-1"});
  ASSERT_TRUE(TickUntil([&] { return host_.launches.size() == 2 && CountReady() == 1; }, 100));
  EXPECT_EQ(host_.launches.back().instance, "web-1");
  EXPECT_NE(host_.launches.back().port, port);
}

}  // namespace
}  // namespace berth::runtime
