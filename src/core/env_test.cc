#include "core/env.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "core/fake_env.h"

namespace berth {
namespace {

namespace fs = std::filesystem;

class PosixEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-env-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::vector<std::string> Entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  static unsigned ModeOf(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }
  std::string dir_;
  Env& env_ = Env::Default();
};

TEST_F(PosixEnvTest, WriteCreatesAndReplacesWithNothingLeftBeside) {
  const std::string p = dir_ + "/state.json";
  ASSERT_TRUE(env_.WriteFileAtomic(p, "first", 0644).ok());
  EXPECT_EQ(*env_.ReadFile(p), "first");
  ASSERT_TRUE(env_.WriteFileAtomic(p, "second, longer", 0644).ok());
  EXPECT_EQ(*env_.ReadFile(p), "second, longer");
  ASSERT_TRUE(env_.WriteFileAtomic(p, "", 0644).ok());
  EXPECT_EQ(*env_.ReadFile(p), "");
  EXPECT_EQ(Entries(), std::vector<std::string>{"state.json"});
}

TEST_F(PosixEnvTest, ModeIsExactlyTheOneAskedForWhateverTheUmask) {
  mode_t old = ::umask(077);
  EXPECT_TRUE(env_.WriteFileAtomic(dir_ + "/hook", "#!/bin/sh\n", 0755).ok());
  ::umask(old);
  EXPECT_EQ(ModeOf(dir_ + "/hook"), 0755u);
  // Replacing a world-readable file with a private one narrows it.
  ASSERT_TRUE(env_.WriteFileAtomic(dir_ + "/key", "public", 0644).ok());
  EXPECT_EQ(ModeOf(dir_ + "/key"), 0644u);
  ASSERT_TRUE(env_.WriteFileAtomic(dir_ + "/key", "secret", 0600).ok());
  EXPECT_EQ(ModeOf(dir_ + "/key"), 0600u);
}

TEST_F(PosixEnvTest, AFailedRenameKeepsTheTargetAndRemovesTheTempFile) {
  // A directory in the way: the temp file is written and synced, the rename fails.
  const std::string p = dir_ + "/taken";
  ASSERT_TRUE(fs::create_directory(p));
  ASSERT_TRUE(env_.WriteFileAtomic(p + "/inside", "x", 0600).ok());
  Status s = env_.WriteFileAtomic(p, "new", 0600);
  EXPECT_EQ(s.code(), Code::kInternal);
  EXPECT_NE(s.message().find(p), std::string::npos) << s.message();
  EXPECT_TRUE(fs::is_directory(p));
  EXPECT_EQ(Entries(), std::vector<std::string>{"taken"});
}

TEST_F(PosixEnvTest, AMissingDirectoryIsAnErrorNotACrash) {
  Status s = env_.WriteFileAtomic(dir_ + "/no/such/file", "x", 0600);
  EXPECT_EQ(s.code(), Code::kInternal);
}

// A write the file system cuts short (here RLIMIT_FSIZE; in life a full disk) fails, keeps the
// old content whole and leaves no temp file.
TEST_F(PosixEnvTest, AShortWriteKeepsTheOldContentWhole) {
  const std::string p = dir_ + "/config";
  ASSERT_TRUE(env_.WriteFileAtomic(p, "old content", 0600).ok());
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl {};
    ::getrlimit(RLIMIT_FSIZE, &rl);
    rl.rlim_cur = 4096;
    ::setrlimit(RLIMIT_FSIZE, &rl);
    Status s = Env::Default().WriteFileAtomic(p, std::string(1 << 20, 'n'), 0600);
    ::_exit(s.ok() ? 1 : 0);
  }
  int st = 0;
  ASSERT_EQ(::waitpid(child, &st, 0), child);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0) << "the cut-short write reported success";
  EXPECT_EQ(*env_.ReadFile(p), "old content");
  EXPECT_EQ(Entries(), std::vector<std::string>{"config"});
}

// Crash safety: a writer replacing a 1 MiB file in a loop is read concurrently and then killed
// with SIGKILL at an arbitrary point; every read, and the file after the kill, is one whole
// version, never a mix or a truncated one. (A killed writer may leave its temp file: only a
// completed rename ever shows at the path.)
TEST_F(PosixEnvTest, ReadersAndAKilledWriterOnlyEverSeeWholeVersions) {
  const std::string p = dir_ + "/big";
  const std::string a(1 << 20, 'a'), b(1 << 20, 'b');
  ASSERT_TRUE(env_.WriteFileAtomic(p, a, 0644).ok());
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    for (int i = 0;; ++i) (void)Env::Default().WriteFileAtomic(p, i % 2 ? a : b, 0644);
  }
  auto whole = [&](const std::string& got) { return got == a || got == b; };
  int reads = 0;
  std::string bad;  // no ASSERT before the kill: the writer must never outlive the test
  for (auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(700);
       bad.empty() && std::chrono::steady_clock::now() < until; ++reads) {
    auto got = env_.ReadFile(p);
    if (!got.ok()) bad = got.status().message();
    else if (!whole(*got)) bad = "read " + std::to_string(got->size()) + " bytes of a mixed or partial file";
  }
  ::kill(child, SIGKILL);
  int st = 0;
  ASSERT_EQ(::waitpid(child, &st, 0), child);
  EXPECT_EQ(bad, "");
  auto got = env_.ReadFile(p);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(whole(*got));
  EXPECT_GT(reads, 0);
}

TEST_F(PosixEnvTest, ReadFileNotFoundLimitAndContent) {
  EXPECT_EQ(env_.ReadFile(dir_ + "/none").status().code(), Code::kNotFound);
  ASSERT_TRUE(env_.WriteFileAtomic(dir_ + "/f", "0123456789", 0600).ok());
  EXPECT_EQ(*env_.ReadFile(dir_ + "/f", 4), "0123");
  EXPECT_EQ(*env_.ReadFile(dir_ + "/f"), "0123456789");
  EXPECT_EQ(env_.ReadFile(dir_).status().code(), Code::kInternal);  // a directory
}

TEST_F(PosixEnvTest, ALockExcludesASecondLockerHereAndInAnotherProcess) {
  const std::string p = dir_ + "/berth.lock";
  auto first = env_.LockFile(p);
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(ModeOf(p), 0600u);
  auto second = env_.LockFile(p);
  EXPECT_EQ(second.status().code(), Code::kConflict);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // A fresh open in another process is another locker.
    auto l = Env::Default().LockFile(p);
    ::_exit(l.status().code() == Code::kConflict ? 0 : 1);
  }
  int st = 0;
  ASSERT_EQ(::waitpid(child, &st, 0), child);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "another process took a held lock";
  first->reset();  // released
  auto third = env_.LockFile(p);
  EXPECT_TRUE(third.ok()) << third.status().message();
  EXPECT_EQ(env_.LockFile(dir_ + "/no/dir/lock").status().code(), Code::kInternal);
}

TEST_F(PosixEnvTest, FindProgramTakesTheFirstExecutableOnThePath) {
  fs::create_directories(dir_ + "/a");
  fs::create_directories(dir_ + "/b");
  fs::create_directories(dir_ + "/c");
  ASSERT_TRUE(env_.WriteFileAtomic(dir_ + "/a/tool", "data", 0644).ok());  // not executable
  ASSERT_TRUE(env_.WriteFileAtomic(dir_ + "/b/tool", "#!/bin/sh\n", 0755).ok());
  ASSERT_TRUE(env_.WriteFileAtomic(dir_ + "/c/tool", "#!/bin/sh\n", 0755).ok());
  const std::string path = dir_ + "/missing::" + dir_ + "/a:" + dir_ + "/b:" + dir_ + "/c";
  EXPECT_EQ(env_.FindProgram("tool", path), dir_ + "/b/tool");
  EXPECT_EQ(env_.FindProgram("other", path), "");
  EXPECT_EQ(env_.FindProgram("tool", ""), "");
  EXPECT_EQ(env_.FindProgram("tool", ":" + dir_ + "/c:"), dir_ + "/c/tool");
  EXPECT_EQ(env_.FindProgram("sh", "/bin:/usr/bin"), "/bin/sh");
}

TEST(PosixEnvClockTest, MonotonicNeverGoesBackAndWallIsTheSystemClock) {
  Env& env = Env::Default();
  MonoTime m1 = env.NowMonotonic();
  MonoTime m2 = env.NowMonotonic();
  EXPECT_LE(m1, m2);
  auto diff = env.NowWall() - std::chrono::system_clock::now();
  EXPECT_LT(std::chrono::abs(diff), std::chrono::seconds(5));
}

// ---- the test double ----------------------------------------------------------------------

TEST(FakeEnvTest, FilesLiveInMemoryWithTheirMode) {
  FakeEnv env;
  EXPECT_EQ(env.ReadFile("/d/f").status().code(), Code::kNotFound);
  ASSERT_TRUE(env.WriteFileAtomic("/d/f", "hello", 0600).ok());
  EXPECT_EQ(*env.ReadFile("/d/f"), "hello");
  EXPECT_EQ(*env.ReadFile("/d/f", 2), "he");
  EXPECT_EQ(env.Mode("/d/f"), 0600u);
  EXPECT_EQ(env.writes(), 1);
  env.SetFile("/d/g", "set");
  EXPECT_EQ(env.File("/d/g"), "set");
  env.RemoveFile("/d/g");
  EXPECT_EQ(env.File("/d/g"), std::nullopt);
}

TEST(FakeEnvTest, FailedWritesChangeNothing) {
  FakeEnv env;
  ASSERT_TRUE(env.WriteFileAtomic("/f", "old", 0644).ok());
  env.FailWrites(DiskFull("the file", "/f"));
  Status s = env.WriteFileAtomic("/f", "new", 0600);
  EXPECT_EQ(s.code(), Code::kInsufficientStorage);
  EXPECT_EQ(env.File("/f"), "old");
  EXPECT_EQ(env.Mode("/f"), 0644u);
  EXPECT_EQ(env.writes(), 1);
  env.FailWrites(Status::Ok());
  EXPECT_TRUE(env.WriteFileAtomic("/f", "new", 0600).ok());
  EXPECT_EQ(env.File("/f"), "new");
}

TEST(FakeEnvTest, ALockIsHeldUntilItsObjectGoes) {
  FakeEnv env;
  auto a = env.LockFile("/l");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(env.IsLocked("/l"));
  EXPECT_EQ(env.LockFile("/l").status().code(), Code::kConflict);
  EXPECT_TRUE(env.LockFile("/other").ok());  // a temporary: released at once
  EXPECT_FALSE(env.IsLocked("/other"));
  a->reset();
  EXPECT_FALSE(env.IsLocked("/l"));
  EXPECT_TRUE(env.LockFile("/l").ok());
}

TEST(FakeEnvTest, FindProgramLooksAtExecuteBits) {
  FakeEnv env;
  env.SetFile("/a/git", "", 0644);
  env.SetFile("/b/git", "", 0755);
  EXPECT_EQ(env.FindProgram("git", "/a:/b"), "/b/git");
  EXPECT_EQ(env.FindProgram("git", "/a"), "");
  EXPECT_EQ(env.FindProgram("git", ""), "");
}

TEST(FakeEnvTest, ClocksStandStillUntilMoved) {
  FakeEnv env;
  MonoTime m = env.NowMonotonic();
  TimePoint w = env.NowWall();
  EXPECT_EQ(env.NowMonotonic(), m);
  env.Advance(std::chrono::milliseconds(1500));
  EXPECT_EQ(env.NowMonotonic() - m, std::chrono::milliseconds(1500));
  EXPECT_EQ(env.NowWall() - w, std::chrono::milliseconds(1500));
  env.SetWall(w);  // the wall clock jumps back; the monotonic one does not
  EXPECT_EQ(env.NowWall(), w);
  EXPECT_EQ(env.NowMonotonic() - m, std::chrono::milliseconds(1500));
}

}  // namespace
}  // namespace berth
