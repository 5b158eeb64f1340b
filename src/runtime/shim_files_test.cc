#include "runtime/detail/shim_files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "runtime/system_host.h"

namespace berth::runtime::detail {
namespace {

TEST(RenderTemplate, SubstitutesKnownVariablesOnly) {
  std::map<std::string, std::string> env = {{"PORT", "4000"}, {"DB", "x"}};
  EXPECT_EQ(RenderTemplate("listen ${PORT}; db=${DB}; ${NOPE} $PORT ${", env),
            "listen 4000; db=x; ${NOPE} $PORT ${");
}

TEST(ShimSpec, RoundTrips) {
  ShimSpec s;
  s.launch.ref = {"t", "a", "c"};
  s.launch.instance = "c-2";
  s.launch.version = "v3";
  s.launch.command = "echo hi";
  s.launch.env = {{"A", "1"}};
  s.launch.ports = {{8080, 4001}, {9090, 4002}};
  s.launch.config_files = {{"conf/app.ini", "port=${PORT}"}};
  s.launch.resources.memory_mb = 64;
  s.workdir = "/w";
  s.log_path = "/l.log";
  auto back = ShimSpecFromJson(ShimSpecToJson(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->launch.ref.Scope(), "t/a/c");
  EXPECT_EQ(back->launch.ports, s.launch.ports);
  EXPECT_EQ(back->launch.config_files[0].content, "port=${PORT}");
  EXPECT_EQ(back->launch.resources.memory_mb, 64);
  EXPECT_FALSE(ShimSpecFromJson(Json::object()).ok());
}

TEST(ProcessIdentity, RecognisesOnlyTheRecordedProcess) {
  int64_t start = ProcessStartTicks(::getpid());
  EXPECT_GT(start, 0);
  EXPECT_TRUE(IsSameProcess(::getpid(), start));
  EXPECT_FALSE(IsSameProcess(::getpid(), start + 1));
  EXPECT_FALSE(IsShim(::getpid(), "/nowhere"));  // a test binary is not a shim
  EXPECT_FALSE(IsShim(0, "/nowhere"));
}

// A /proc laid out by hand: the states a shim's pid goes through, including the one a real
// machine shows only for an instant (exec half done), so the window is hit every time.
class FakeProc {
 public:
  FakeProc() {
    root_ = (std::filesystem::temp_directory_path() /
             ("berth-fakeproc-" + std::to_string(::getpid()))).string();
    std::filesystem::remove_all(root_);
  }
  ~FakeProc() { std::filesystem::remove_all(root_); }
  const std::string& root() const { return root_; }
  // /proc/<pid>/stat with `state` and starttime (field 22), and /proc/<pid>/cmdline.
  void Set(int pid, char state, int64_t start, const std::string& cmdline) {
    std::string dir = root_ + "/" + std::to_string(pid);
    std::filesystem::create_directories(dir);
    std::string stat = std::to_string(pid) + " (berth) " + state;
    for (int field = 4; field <= 52; ++field) {
      stat += " " + (field == 22 ? std::to_string(start) : std::string("0"));
    }
    std::ofstream(dir + "/stat") << stat << "\n";
    std::ofstream(dir + "/cmdline", std::ios::binary) << cmdline;
  }
  void Remove(int pid) { std::filesystem::remove_all(root_ + "/" + std::to_string(pid)); }

 private:
  std::string root_;
};

TEST(LiveShim, ALaunchedShimInsideExecIsAliveNotGone) {
  FakeProc proc;
  const std::string run = "/data/run/t/a/c/c-1";
  std::string shim_args;
  for (const std::string arg : {"/usr/bin/berth", "shim", "--dir", run.c_str()}) {
    shim_args += arg;
    shim_args += '\0';
  }
  LaunchRecord launched{4242, 777};
  ShimState none;  // no state.json yet

  // Right after Launch: exec has closed the report pipe, but the new program's arguments are
  // not set up yet, so the cmdline reads empty. The cmdline check alone said "gone" here (the
  // fault: the instance was killed and relaunched); the launch record says alive.
  proc.Set(4242, 'R', 777, "");
  EXPECT_FALSE(IsShim(4242, run, proc.root()));
  EXPECT_EQ(LiveShim(none, launched, run, proc.root()), 4242);
  // Same before any launch record was read (a server without one): gone.
  EXPECT_EQ(LiveShim(none, LaunchRecord{}, run, proc.root()), 0);

  // Exec done, state written: the cmdline names this run dir.
  proc.Set(4242, 'S', 777, shim_args);
  ShimState st;
  st.state = "running";
  st.shim_pid = 4242;
  EXPECT_TRUE(IsShim(4242, run, proc.root()));
  EXPECT_EQ(LiveShim(st, launched, run, proc.root()), 4242);
  EXPECT_EQ(LiveShim(st, LaunchRecord{}, run, proc.root()), 4242);
  EXPECT_EQ(LiveShim(st, LaunchRecord{}, "/data/run/t/a/c/c-2", proc.root()), 0)
      << "another run dir's shim is not this one's";

  // The shim died: a zombie, then a recycled pid (other start time), then nothing.
  proc.Set(4242, 'Z', 777, "");
  EXPECT_EQ(LiveShim(none, launched, run, proc.root()), 0);
  proc.Set(4242, 'S', 901, "/bin/bash");
  EXPECT_EQ(LiveShim(none, launched, run, proc.root()), 0);
  EXPECT_EQ(LiveShim(st, launched, run, proc.root()), 0);
  proc.Remove(4242);
  EXPECT_EQ(LiveShim(none, launched, run, proc.root()), 0);
}

TEST(LiveShim, LaunchRecordRoundTripsThroughTheRunDir) {
  FakeProc dir;  // any scratch directory
  std::filesystem::create_directories(dir.root());
  EXPECT_EQ(ReadLaunchRecord(dir.root()).shim_pid, 0);
  ASSERT_TRUE(WriteFileAtomic(dir.root() + "/launch.json",
                              LaunchRecordToJson({::getpid(), ProcessStartTicks(::getpid())}).dump())
                  .ok());
  LaunchRecord r = ReadLaunchRecord(dir.root());
  EXPECT_EQ(r.shim_pid, ::getpid());
  // The real /proc: this very process is "the launched shim" by pid and start time.
  EXPECT_EQ(LiveShim(ShimState{}, r, dir.root()), ::getpid());
}

// A server killed right after it launched a shim leaves a run dir without state.json. The next
// server used to take it for a stale record and delete it under the starting shim (whose app
// then ran unsupervised); the launch record lets it adopt the shim. This test process plays
// the shim: alive, with the recorded pid and start time.
TEST(LiveShim, ARestartedServerAdoptsAShimThatHasNotWrittenItsStateYet) {
  std::string data = (std::filesystem::temp_directory_path() /
                      ("berth-adopt-" + std::to_string(::getpid())))
                         .string();
  std::filesystem::remove_all(data);
  Layout layout{data};
  ShimSpec spec;
  spec.launch.ref = {"t", "a", "c"};
  spec.launch.instance = "c-1";
  spec.launch.command = "sleep 1";
  spec.workdir = layout.WorkDir(spec.launch.ref, "c-1");
  spec.log_path = layout.LogPath(spec.launch.ref, "c-1");
  std::string run = layout.RunDir(spec.launch.ref, "c-1");
  std::filesystem::create_directories(run);
  ASSERT_TRUE(WriteFileAtomic(run + "/spec.json", ShimSpecToJson(spec).dump()).ok());
  ASSERT_TRUE(WriteFileAtomic(run + "/launch.json",
                              LaunchRecordToJson({::getpid(), ProcessStartTicks(::getpid())}).dump())
                  .ok());
  SystemHostOptions o;
  o.data_dir = data;
  SystemHost host(o);
  auto found = host.Discover();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].obs.state, ShimObservation::State::kRunning);
  EXPECT_EQ(found[0].obs.shim_pid, ::getpid());
  EXPECT_TRUE(std::filesystem::exists(run + "/spec.json")) << "the record is kept";
  EXPECT_EQ(host.Observe(spec.launch.ref, "c-1").state, ShimObservation::State::kRunning);

  // A launch record naming a process that is gone is stale: removed.
  ASSERT_TRUE(WriteFileAtomic(run + "/launch.json",
                              LaunchRecordToJson({::getpid(), ProcessStartTicks(::getpid()) + 1}).dump())
                  .ok());
  EXPECT_EQ(host.Observe(spec.launch.ref, "c-1").state, ShimObservation::State::kGone);
  EXPECT_TRUE(host.Discover().empty());
  EXPECT_FALSE(std::filesystem::exists(run));
  std::filesystem::remove_all(data);
}

TEST(Probes, TcpAndCommandChecksReportWhatTheySaw) {
  model::Probe tcp;
  tcp.type = "tcp";
  tcp.timeout_s = 1;
  ProbeTarget t;
  t.port = 1;  // nothing listens on port 1 of loopback
  ProbeResult r = SystemHost::RunProbe(tcp, t);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.output.find("refused"), std::string::npos) << r.output;

  model::Probe cmd;
  cmd.type = "command";
  cmd.command = "echo checked $X; exit 3";
  cmd.timeout_s = 5;
  t.env = {{"X", "42"}};
  r = SystemHost::RunProbe(cmd, t);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.output.find("exit code 3: checked 42"), std::string::npos) << r.output;
  cmd.command = "true";
  EXPECT_TRUE(SystemHost::RunProbe(cmd, t).ok);
  cmd.command = "sleep 5";
  cmd.timeout_s = 1;
  r = SystemHost::RunProbe(cmd, t);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.output.find("timed out"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace berth::runtime::detail
