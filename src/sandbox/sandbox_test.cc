#include "sandbox/sandbox.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <cstdlib>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/netns.h"
#include "sandbox/identity.h"
#include "store/store.h"

namespace berth::sandbox {
namespace {

namespace fs = std::filesystem;

std::string Read(const std::string& path) {
  std::ifstream f(path);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

const Step* FindMount(const std::vector<Step>& plan, const std::string& target) {
  for (const Step& s : plan) {
    if (s.op == Step::Op::kMount && s.path == target) return &s;
  }
  return nullptr;
}

Spec Basic() {
  Spec s;
  s.uid = s.gid = 400000123;
  s.root = "/srv/root";
  s.app_dir = "/data/instances/t/a/c/web-1";
  s.system = {"/usr", "/etc"};
  s.argv = {"/bin/sh", "-c", "true"};
  return s;
}

// ---- what a sandbox can see is decided by the plan ---------------------------------------

TEST(SandboxPlan, OnlySystemDirectoriesAppAndBindsAreShown) {
  Spec s = Basic();
  s.binds = {{"/data/volumes/t/a/c/db", "/app/data", true}, {"/data/cache/t", "/cache", false}};
  auto plan = Plan(s);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  std::vector<std::string> sources;
  for (const Step& st : *plan) {
    if (st.op == Step::Op::kMount && (st.flags & MS_BIND)) sources.push_back(st.source);
  }
  // The host's root, DATA as a whole and anything not asked for are never sources.
  for (const std::string& src : sources) {
    bool allowed = src == "/usr" || src == "/etc" || src == s.app_dir || src.rfind("/dev/", 0) == 0 ||
                   src == "/data/volumes/t/a/c/db" || src == "/data/cache/t" ||
                   src.rfind(s.root + "/.berth/", 0) == 0;
    EXPECT_TRUE(allowed) << "unexpected bind of " << src;
  }
  // /usr and /etc read-only, nosuid; the volume writable, the cache not.
  auto remount = [&](const std::string& target) -> unsigned long {
    for (const Step& st : *plan) {
      if (st.op == Step::Op::kRemount && st.path == target) return st.flags;
    }
    ADD_FAILURE() << "no remount of " << target;
    return 0;
  };
  EXPECT_TRUE(remount("/srv/root/usr") & MS_RDONLY);
  EXPECT_TRUE(remount("/srv/root/usr") & MS_NOSUID);
  EXPECT_TRUE(remount("/srv/root/etc") & MS_RDONLY);
  EXPECT_FALSE(remount("/srv/root/app/data") & MS_RDONLY);
  EXPECT_TRUE(remount("/srv/root/app/data") & MS_NOSUID);
  EXPECT_TRUE(remount("/srv/root/cache") & MS_RDONLY);
  // /tmp is a bounded tmpfs of its own; /proc is a new one.
  const Step* tmp = FindMount(*plan, "/srv/root/tmp");
  ASSERT_NE(tmp, nullptr);
  EXPECT_EQ(tmp->fstype, "tmpfs");
  EXPECT_NE(tmp->data.find("size=64m"), std::string::npos);
  ASSERT_NE(FindMount(*plan, "/srv/root/proc"), nullptr);
  EXPECT_EQ(FindMount(*plan, "/srv/root/proc")->fstype, "proc");
}

TEST(SandboxPlan, TheUserIsInPasswdAndTheOverlayIsNamed) {
  Spec s = Basic();
  s.app_layers = {"/data/instances/t/a/c/web-1/config", "/data/artifacts/abc/app"};
  s.app_mb = 100;
  s.user = "app";
  auto plan = Plan(s);
  ASSERT_TRUE(plan.ok());
  const Step* app = FindMount(*plan, "/srv/root/app");
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(app->fstype, "overlay");
  EXPECT_EQ(app->data, "lowerdir=/data/instances/t/a/c/web-1/config:/data/artifacts/abc/app,"
                       "upperdir=/srv/root/.berth/app-layer/upper,workdir=/srv/root/.berth/app-layer/work");
  // The writable layer is a bounded tmpfs, detached from view once the overlay holds it.
  const Step* layer = FindMount(*plan, "/srv/root/.berth/app-layer");
  ASSERT_NE(layer, nullptr);
  EXPECT_EQ(layer->fstype, "tmpfs");
  EXPECT_NE(layer->data.find("size=100m"), std::string::npos);
  bool detached = false;
  for (const Step& st : *plan) detached |= st.op == Step::Op::kUnmount && st.path == "/srv/root/.berth/app-layer";
  EXPECT_TRUE(detached);
  bool passwd = false;
  for (const Step& st : *plan) {
    if (st.op == Step::Op::kWrite && st.path == "/srv/root/.berth/passwd") {
      passwd = st.data.find("app:x:400000123:400000123:") != std::string::npos;
    }
  }
  EXPECT_TRUE(passwd);
}

TEST(SandboxPlan, HidesPlatformPathsUnderShownDirectories) {
  std::string dir = fs::temp_directory_path() / ("berth-hide-" + std::to_string(::getpid()));
  fs::create_directories(dir + "/data");
  Spec s = Basic();
  s.system = {dir};
  s.hide = {dir + "/data", "/elsewhere/data"};
  auto plan = Plan(s);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  const Step* hidden = FindMount(*plan, "/srv/root" + dir + "/data");
  ASSERT_NE(hidden, nullptr);
  EXPECT_EQ(hidden->fstype, "tmpfs");
  EXPECT_TRUE(hidden->flags & MS_RDONLY);
  EXPECT_EQ(FindMount(*plan, "/srv/root/elsewhere/data"), nullptr);  // not visible anyway
  fs::remove_all(dir);
}

TEST(SandboxPlan, RefusesRootRelativePathsAndOverlayMetacharacters) {
  Spec s = Basic();
  s.uid = 0;
  EXPECT_FALSE(Plan(s).ok());
  s = Basic();
  s.binds = {{"relative", "/app/x", true}};
  EXPECT_FALSE(Plan(s).ok());
  s = Basic();
  s.binds = {{"/data/v", "/app/../../etc", true}};
  EXPECT_FALSE(Plan(s).ok());
  s = Basic();
  s.app_layers = {"/data/a,upperdir=/etc"};
  EXPECT_FALSE(Plan(s).ok());
  s = Basic();
  s.argv = {"sh", "-c", "true"};
  EXPECT_FALSE(Plan(s).ok());
}

TEST(SandboxSpec, RoundTripsThroughJson) {
  Spec s = Basic();
  s.netns = "/run/berth/x/netns/t";
  s.binds = {{"/a", "/app/b", true}};
  s.env = {"PORT=1", "X=y"};
  s.cgroup_procs = {"/sys/fs/cgroup/pids/berth/x/cgroup.procs"};
  s.hide = {"/data"};
  auto back = SpecFromJson(ToJson(s));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(ToJson(*back), ToJson(s));
}

// ---- real sandboxes (root only) --------------------------------------------------------------

class RealSandbox : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "sandboxes need root";
    dir_ = (fs::temp_directory_path() /
            ("berth-sandbox-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(dir_);
    fs::create_directories(dir_ + "/root");
    fs::create_directories(dir_ + "/app");
    fs::create_directories(dir_ + "/secret");
    std::ofstream(dir_ + "/secret/key") << "hunter2";
    ::chmod((dir_ + "/secret/key").c_str(), 0644);  // readable by anyone who can reach it
    ::chown((dir_ + "/app").c_str(), kUid, kUid);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  Spec Make(const std::string& script) {
    Spec s;
    s.uid = s.gid = kUid;
    s.root = dir_ + "/root";
    s.app_dir = dir_ + "/app";
    s.system = DefaultSystemPaths();
    s.hostname = "web-1";
    s.argv = {"/bin/sh", "-c", script};
    s.env = {"PATH=/usr/bin:/bin", "ONLY=this"};
    return s;
  }

  // Runs `berth sandbox-run` as the builder does; returns its wait status and output.
  std::pair<int, std::string> Run(const Spec& spec) {
    std::string text = ToJson(spec).dump();
    int sp[2], out[2];
    EXPECT_EQ(::pipe2(sp, O_CLOEXEC), 0);
    EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, out[1], 2);
    posix_spawn_file_actions_adddup2(&fa, sp[0], 3);
    std::string exe = BERTH_EXE, cmd = "sandbox-run";
    char* argv[] = {exe.data(), cmd.data(), nullptr};
    std::string secret_env = "SERVER_SECRET=do-not-leak";
    char* envp[] = {secret_env.data(), nullptr};
    pid_t pid = 0;
    EXPECT_EQ(::posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv, envp), 0);
    posix_spawn_file_actions_destroy(&fa);
    ::close(sp[0]);
    ::close(out[1]);
    (void)!::write(sp[1], text.data(), text.size());
    ::close(sp[1]);
    std::string output;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(out[0], buf, sizeof buf)) > 0) output.append(buf, static_cast<size_t>(n));
    ::close(out[0]);
    int st = 0;
    ::waitpid(pid, &st, 0);
    return {st, output};
  }

  static constexpr uint32_t kUid = 400000777;
  std::string dir_;
};

TEST_F(RealSandbox, RunsAsTheUserWithOnlyItsEnvAndNamespaces) {
  auto [st, out] = Run(Make(
      "echo uid=$(id -u) gid=$(id -g) groups=$(id -G); echo user=$(id -un); echo host=$(hostname);"
      "echo pwd=$(pwd); echo env=$(env | sort | tr '\\n' ' ');"
      "echo procs=$(ls /proc | grep -c '^[0-9]'); echo pid=$$"));
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;
  EXPECT_NE(out.find("uid=400000777 gid=400000777 groups=400000777\n"), std::string::npos) << out;
  EXPECT_NE(out.find("user=app\n"), std::string::npos) << out;
  EXPECT_NE(out.find("host=web-1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("pwd=/app\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("SERVER_SECRET"), std::string::npos) << out;
  EXPECT_NE(out.find("ONLY=this"), std::string::npos) << out;
  // Its own PID namespace: the init, the shell and what it runs; the shell is PID 2.
  EXPECT_NE(out.find("pid=2\n"), std::string::npos) << out;
}

TEST_F(RealSandbox, SeesNothingOfTheHostButTheSystemReadOnly) {
  Spec s = Make(
      "test -e " + dir_ + "/secret/key && echo SECRET-VISIBLE;"
      "cat /root/.bashrc 2>/dev/null && echo ROOT-HOME-VISIBLE;"
      "touch /usr/berth-test 2>/dev/null && echo USR-WRITABLE;"
      "touch /etc/berth-test 2>/dev/null && echo ETC-WRITABLE;"
      "touch /berth-test 2>/dev/null && echo ROOT-WRITABLE;"
      "cat /etc/shadow >/dev/null 2>&1 && echo SHADOW-READABLE;"
      "echo hi > /tmp/x && cat /tmp/x; echo app > /app/file && cat /app/file;"
      "ls /dev | tr '\\n' ' '; echo");
  s.hide = {dir_ + "/secret"};
  auto [st, out] = Run(s);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;
  for (const char* bad : {"SECRET-VISIBLE", "ROOT-HOME-VISIBLE", "USR-WRITABLE", "ETC-WRITABLE",
                          "ROOT-WRITABLE", "SHADOW-READABLE"}) {
    EXPECT_EQ(out.find(bad), std::string::npos) << bad << "\n" << out;
  }
  EXPECT_NE(out.find("hi\napp\n"), std::string::npos) << out;
  EXPECT_EQ(Read(dir_ + "/app/file"), "app\n");  // /app is the host's app_dir
  EXPECT_FALSE(fs::exists("/usr/berth-test"));
  EXPECT_EQ(out.find("sda"), std::string::npos) << out;  // no block devices
}

TEST_F(RealSandbox, HiddenPathsUnderSystemDirectoriesAreEmpty) {
  Spec s = Make("ls -A " + dir_ + "/secret | wc -l; cat " + dir_ + "/secret/key 2>&1 || echo gone");
  s.system.push_back(dir_);  // the whole test dir is "system" ...
  s.hide = {dir_ + "/secret"};  // ... but the secret is hidden
  auto [st, out] = Run(s);
  EXPECT_EQ(out.find("hunter2"), std::string::npos) << out;
  EXPECT_NE(out.find("0\n"), std::string::npos) << out;
}

TEST_F(RealSandbox, ExitCodesAndSignalsComeBackAsTheCommandEnded) {
  auto [st, out] = Run(Make("exit 3"));
  ASSERT_TRUE(WIFEXITED(st)) << out;
  EXPECT_EQ(WEXITSTATUS(st), 3);
  auto [st2, out2] = Run(Make("kill -TERM $$; sleep 5"));
  ASSERT_TRUE(WIFSIGNALED(st2)) << st2 << " " << out2;
  EXPECT_EQ(WTERMSIG(st2), SIGTERM);
}

TEST_F(RealSandbox, WhatTheCommandLeavesBehindEndsWithIt) {
  std::string marker = dir_ + "/app/still-running";
  auto [st, out] = Run(Make("(sleep 2; touch /app/still-running) & exit 0"));
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;
  ::sleep(3);
  EXPECT_FALSE(fs::exists(marker)) << "a background process outlived the sandbox";
}

TEST_F(RealSandbox, TheOverlayKeepsTheLayersUntouchedAndBoundsWrites) {
  fs::create_directories(dir_ + "/artifact");
  fs::create_directories(dir_ + "/config");
  std::ofstream(dir_ + "/artifact/index.js") << "original";
  std::ofstream(dir_ + "/artifact/app.conf") << "from the artifact";
  std::ofstream(dir_ + "/config/app.conf") << "from the config";
  for (const char* p : {"/artifact", "/artifact/index.js", "/artifact/app.conf"}) {
    ::chown((dir_ + p).c_str(), kUid, kUid);
  }
  Spec s = Make("cat index.js; echo; cat app.conf; echo; echo changed > index.js; cat index.js;"
                "mkdir -p cache && echo x > cache/y && cat cache/y;"
                "dd if=/dev/zero of=big bs=1M count=20 2>/dev/null || echo full;"
                "ls -A /.berth | tr '\\n' ' '; echo");
  s.app_dir.clear();
  s.app_layers = {dir_ + "/config", dir_ + "/artifact"};
  s.app_mb = 8;
  auto [st, out] = Run(s);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;
  EXPECT_EQ(out.substr(0, out.find("full")),
            "original\nfrom the config\nchanged\nx\n");  // config over artifact; writes work
  EXPECT_NE(out.find("full"), std::string::npos) << "20 MiB fit in an 8 MiB layer:\n" << out;
  EXPECT_EQ(out.find("app-layer"), std::string::npos) << "the writable layer is visible:\n" << out;
  EXPECT_EQ(Read(dir_ + "/artifact/index.js"), "original");
  EXPECT_EQ(Read(dir_ + "/config/app.conf"), "from the config");
}

TEST_F(RealSandbox, BindsAreWritableOrReadOnlyAsAsked) {
  fs::create_directories(dir_ + "/vol");
  fs::create_directories(dir_ + "/ro");
  ::chown((dir_ + "/vol").c_str(), kUid, kUid);
  Spec s = Make("echo v > /app/data/f && echo ok; touch /cache/f 2>/dev/null || echo ro");
  s.binds = {{dir_ + "/vol", "/app/data", true}, {dir_ + "/ro", "/cache", false}};
  auto [st, out] = Run(s);
  EXPECT_EQ(out, "ok\nro\n");
  EXPECT_EQ(Read(dir_ + "/vol/f"), "v\n");
}

TEST_F(RealSandbox, TheTeamNetworkHasNoHostLoopback) {
  // A listener on the host's loopback is out of reach from a sandbox in a team network; one
  // made inside the team network by the platform is in reach.
  std::string ns = dir_ + "/netns";
  ASSERT_TRUE(EnsureNetns(ns).ok());
  int host = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(host, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(host, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ASSERT_EQ(::listen(host, 4), 0);
  auto nsfd = OpenNetns(ns);
  ASSERT_TRUE(nsfd.ok());
  auto inside = SocketIn(*nsfd, AF_INET, SOCK_STREAM);
  ASSERT_TRUE(inside.ok());
  sockaddr_in b = a;
  b.sin_port = 0;
  ASSERT_EQ(::bind(*inside, reinterpret_cast<sockaddr*>(&b), sizeof b), 0);
  len = sizeof b;
  ::getsockname(*inside, reinterpret_cast<sockaddr*>(&b), &len);
  ASSERT_EQ(::listen(*inside, 4), 0);
  int inner_port = ntohs(b.sin_port);
  auto probe = [](int p) {
    // bash's /dev/tcp is not in sh: use python3 if present, else skip the probe.
    return "python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(2);\n"
           "try:\n s.connect((\"127.0.0.1\"," + std::to_string(p) + ")); print(\"open\")\n"
           "except OSError as e: print(\"closed\", e.errno)'";
  };
  Spec s = Make(probe(port) + "; " + probe(inner_port));
  s.netns = ns;
  auto [st, out] = Run(s);
  EXPECT_EQ(out.rfind("closed", 0), 0u) << "the host's loopback is reachable:\n" << out;
  EXPECT_NE(out.find("\nopen\n"), std::string::npos) << out;
  ::close(*inside);
  ::close(*nsfd);
  ::close(host);
  EXPECT_TRUE(RemoveNetns(ns).ok());
  EXPECT_FALSE(IsNetns(ns));
}

TEST_F(RealSandbox, CheckSaysTheMachineCanSandbox) {
  EXPECT_EQ(Check(BERTH_EXE, dir_ + "/root", kUid), "");
}

// ---- identity -------------------------------------------------------------------------------

TEST(TeamUid, StableDistinctAndRecorded) {
  std::string dir = fs::temp_directory_path() / ("berth-uid-test-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto store = OpenSqliteStore(dir + "/berth.db");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  UidRange tiny{500000, 3};  // forces collisions
  auto a = TeamUid(**store, "alpha", tiny);
  auto b = TeamUid(**store, "beta", tiny);
  auto c = TeamUid(**store, "gamma", tiny);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_NE(*a, *b);
  EXPECT_NE(*b, *c);
  EXPECT_NE(*a, *c);
  for (uint32_t u : {*a, *b, *c}) EXPECT_TRUE(u >= 500000 && u < 500003);
  EXPECT_EQ(*TeamUid(**store, "alpha", tiny), *a);  // recorded, not recomputed
  EXPECT_FALSE(TeamUid(**store, "delta", tiny).ok());  // the range is full
  fs::remove_all(dir);
}

// Builds and instances see one PATH: detection's entries first, then the platform's.
TEST(SandboxPath, JoinPathPutsTheFrontFirstAndNamesEachDirectoryOnce) {
  EXPECT_EQ(JoinPath("node_modules/.bin", kSystemPath),
            std::string("node_modules/.bin:") + kSystemPath);
  // A PATH an older artifact recorded in full is completed (/usr/sbin was missing).
  EXPECT_EQ(JoinPath("node_modules/.bin:/usr/local/bin:/usr/bin:/bin", kSystemPath),
            "node_modules/.bin:/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin");
  EXPECT_EQ(JoinPath("", kSystemPath), kSystemPath);
  EXPECT_EQ(JoinPath("::/opt/x/bin:", "/bin"), "/opt/x/bin:/bin");
}

TEST(SandboxPath, SandboxedBuildsAndInstancesGetTheSystemDirectories) {
  Config c;
  c.enabled = true;
  EXPECT_EQ(c.Path(), kSystemPath);
  c.path = "/opt/tools/bin:/usr/bin";
  EXPECT_EQ(c.Path(), "/opt/tools/bin:/usr/bin");
  Config off;  // --sandbox off: the server's own PATH, as in the shell that started it
  const char* own = std::getenv("PATH");
  EXPECT_EQ(off.Path(), own != nullptr && *own != '\0' ? std::string(own) : std::string(kSystemPath));
}

}  // namespace
}  // namespace berth::sandbox
