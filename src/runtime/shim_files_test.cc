#include "runtime/detail/shim_files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

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
