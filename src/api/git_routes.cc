// `git push` deploys (docs/api.md "Git push"). Each component with a git source has a bare
// repository under DATA/git/repos/<team>/<app>/<component>.git, made on the first request, and
// a push URL .../components/{component}/git that git's own server side answers: the API runs
// `git http-backend` (Debian's git) as a CGI behind berth's authentication — a token as the
// password of HTTP basic auth (api_server.cc turns it into the usual bearer check), developers
// and up, a non-member gets the usual 404.
//
// A push runs the pre-receive hook DATA/git/hooks/pre-receive (core.hooksPath, given through
// the CGI's environment, so no repository holds a hook of its own). The hook is this binary
// (`berth git-pre-receive`, cli/heroku_commands.cc): for an update of the deploy branch it calls
// back POST .../git/hook on loopback with a credential minted for this one push and component
// (in memory only, never the user's token: it dies with the push), and prints what that
// streams back — the build log, then the rollout — which git relays as `remote:` lines. The
// callback `git archive`s the pushed commit out of the push's quarantine (its objects are not
// in the repository until the hook accepts them), queues a build of that archive like an
// upload, and follows it; a failed build or rollout ends with "berth-push: failed", the hook
// exits 1 and git rejects the push, so the repository keeps only what deployed.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <set>

#include "api/detail/service.h"
#include "auth/crypto.h"
#include "builder/controller.h"
#include "builder/source_policy.h"
#include "core/env.h"
#include "core/log.h"
#include "core/safe_fs.h"

extern char** environ;

namespace berth::api {
namespace {

namespace fs = std::filesystem;
using model::Role;

constexpr char kZeroCommit[] = "0000000000000000000000000000000000000000";
constexpr size_t kCgiHeadLimit = 16 << 10;
constexpr size_t kStreamChunk = 256 << 10;
// A push credential outlives no push: the hook calls back within seconds of the pack, and the
// grant is dropped when the receive-pack request ends; this bounds a leaked one regardless.
constexpr auto kGrantLifetime = std::chrono::hours(2);
// The rollout after a build is followed this long before the push is failed.
constexpr auto kDeployTimeout = std::chrono::seconds(300);

std::shared_ptr<spdlog::logger> GitLog() {
  static std::shared_ptr<spdlog::logger> log = Logger("api");
  return log;
}

std::string DataDir(const Service& s) { return fs::absolute(s.options.data_dir).string(); }
std::string RepoDir(const Service& s, const std::string& team, const std::string& app,
                    const std::string& component) {
  return DataDir(s) + "/git/repos/" + team + "/" + app + "/" + component + ".git";
}
std::string HooksDir(const Service& s) { return DataDir(s) + "/git/hooks"; }

// The branches a push deploys: the source's ref when it names one, else main or master.
std::vector<std::string> DeployBranches(const model::Component& c) {
  std::string ref = c.source.ref;
  if (ref.rfind("refs/heads/", 0) == 0) ref = ref.substr(11);
  if (ref.empty() || ref == "HEAD") return {"main", "master"};
  return {ref};
}

// ---- processes ----------------------------------------------------------------------------

struct Child {
  pid_t pid = -1;
  int out = -1;  // the read end of its stdout
};

// Starts argv with exactly `env`, stdin from `in_fd` (or /dev/null), stdout into a pipe,
// stderr to `err_fd` (or into the same pipe), in a process group of its own and with no other
// descriptor of the server.
Result<Child> Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                    const std::string& cwd, int in_fd, int err_fd) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return Internal(std::string("pipe: ") + std::strerror(errno));
  int devnull = -1;
  if (in_fd < 0) {
    devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    in_fd = devnull;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_fd >= 0 ? err_fd : p[1], 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t dfl;
  sigemptyset(&dfl);
  sigaddset(&dfl, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &dfl);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> av, ev;
  for (const auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  for (const auto& e : env) ev.push_back(const_cast<char*>(e.c_str()));
  ev.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, av[0], &fa, &attr, av.data(), ev.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(p[1]);
  if (devnull >= 0) ::close(devnull);
  if (rc != 0) {
    ::close(p[0]);
    return Internal("cannot start " + argv[0] + ": " + std::strerror(rc));
  }
  return Child{pid, p[0]};
}

void KillAndReap(pid_t pid) {
  if (pid <= 0) return;
  ::kill(-pid, SIGKILL);
  int st;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
}

// Runs to the end (or kills at the deadline); returns the exit code and the output.
Result<std::pair<int, std::string>> Run(const std::vector<std::string>& argv,
                                        const std::vector<std::string>& env, const std::string& cwd,
                                        std::chrono::seconds limit) {
  BERTH_ASSIGN_OR_RETURN(Child c, Spawn(argv, env, cwd, -1, -1));
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::string out;
  char buf[4096];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::close(c.out);
      KillAndReap(c.pid);
      return Status(Code::kTimeout, "source_timeout", argv[0] + " " + (argv.size() > 1 ? argv[1] : "") +
                                                      " took longer than " + std::to_string(limit.count()) + " s");
    }
    pollfd pfd{c.out, POLLIN, 0};
    int r = ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = ::read(c.out, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out.size() < (64 << 10)) out.append(buf, static_cast<size_t>(n));
  }
  ::close(c.out);
  int st = 0;
  while (::waitpid(c.pid, &st, 0) < 0 && errno == EINTR) {
  }
  return std::make_pair(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), out);
}

// What every git process of ours runs with: nothing of the server's environment (its secrets,
// its HOME and git config) but PATH and the sanitizer settings of a test build.
std::vector<std::string> BaseEnv(const Service& s) {
  std::vector<std::string> env = {"HOME=" + DataDir(s) + "/git/home", "LANG=C.UTF-8",
                                  "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
                                  "GIT_TERMINAL_PROMPT=0"};
  const char* path = std::getenv("PATH");
  env.push_back(std::string("PATH=") + (path ? path : "/usr/local/bin:/usr/bin:/bin"));
  for (const char* k : {"ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS"}) {
    if (const char* v = std::getenv(k)) env.push_back(std::string(k) + "=" + v);
  }
  return env;
}

// ---- the repository and the hook ----------------------------------------------------------

std::mutex g_setup_mu;  // making repositories and writing the hook

Status EnsureHook(const Service& s) {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return Internal("cannot find the berth binary for the push hook: " + ec.message());
  std::string exe = self.string();
  if (exe.find('\'') != std::string::npos) return Internal("the berth binary's path contains a quote");
  const std::string want = "#!/bin/sh\n# Written by berth (src/api/git_routes.cc): a push's build and deploy.\nexec '" +
                           exe + "' git-pre-receive\n";
  const std::string dir = HooksDir(s), file = dir + "/pre-receive";
  fs::create_directories(dir, ec);
  fs::create_directories(DataDir(s) + "/git/home", ec);
  std::ifstream in(file);
  std::string have((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (have == want) return Status::Ok();
  // Replaced atomically: git may run the hook of another push at this moment.
  return Env::Default().WriteFileAtomic(file, want, 0755);
}

// The repository belongs to the component object it was made for (its creation time, kept in
// the repository as berth-component): one left by a deleted component of the same name — or of
// a deleted team whose name someone else took — is removed, never served to the new owner.
Status EnsureRepo(const Service& s, const std::string& repo, const std::string& branch, int64_t owner) {
  std::lock_guard<std::mutex> l(g_setup_mu);
  BERTH_RETURN_IF_ERROR(EnsureHook(s));
  std::error_code ec;
  const std::string stamp_file = repo + "/berth-component", stamp = std::to_string(owner) + "\n";
  if (fs::exists(repo + "/HEAD", ec)) {
    std::ifstream in(stamp_file);
    std::string have((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (have == stamp) return Status::Ok();
    GitLog()->info("msg=\"removed the push repository of a deleted component\" repo=\"{}\"", repo);
    fs::remove_all(repo, ec);
    if (ec) return Internal("cannot remove the old repository " + repo + ": " + ec.message());
  }
  fs::create_directories(fs::path(repo).parent_path(), ec);
  if (ec) return Internal("cannot create " + fs::path(repo).parent_path().string() + ": " + ec.message());
  BERTH_ASSIGN_OR_RETURN(auto r, Run({"git", "init", "--quiet", "--bare", "--initial-branch=" + branch, "--", repo},
                                     BaseEnv(s), "", std::chrono::seconds(30)));
  if (r.first != 0) return Internal("git init of " + repo + " failed: " + r.second.substr(0, 500));
  std::ofstream o(stamp_file, std::ios::trunc);
  o << stamp;
  if (!o) return Internal("cannot write " + stamp_file);
  GitLog()->info("msg=\"made a push repository\" repo=\"{}\"", repo);
  return Status::Ok();
}

Result<model::Component> GitComponent(Service& s, const Ctx& ctx, int64_t* created_at_ms = nullptr) {
  auto c = s.store.Get(model::kComponent, ctx.P("team") + "/" + ctx.P("app"), ctx.P("component"));
  if (!c.ok() && c.status().code() == Code::kNotFound) {
    return NotFound("component " + Quoted(ctx.P("component")) + " not found in app " + Quoted(ctx.P("app")));
  }
  if (!c.ok()) return c.status();
  BERTH_ASSIGN_OR_RETURN(model::Component comp, model::ParseComponent(Stored(*c)));
  if (created_at_ms) *created_at_ms = c->created_at_ms;
  if (comp.source.type != "git") {
    return FailedPrecondition("component " + Quoted(comp.name) + " builds from a " + comp.source.type +
                              " source: git push works for components with a git source");
  }
  if (s.options.data_dir.empty()) return Unavailable("the server has no data directory for repositories");
  return comp;
}

// ---- the CGI ------------------------------------------------------------------------------

// The rest of http-backend's output, streamed as it comes (a push's hook output arrives while
// the build runs). Ending early (the client went away) kills the CGI and its hook.
class CgiStream final : public StreamSource {
 public:
  CgiStream(Service& s, Child c, std::string first, std::string grant)
      : s_(s), child_(c), pending_(std::move(first)), grant_(std::move(grant)) {
    ::fcntl(child_.out, F_SETFL, ::fcntl(child_.out, F_GETFL) | O_NONBLOCK);
  }
  ~CgiStream() override {
    if (child_.out >= 0) ::close(child_.out);
    if (child_.pid > 0) KillAndReap(child_.pid);
    if (!grant_.empty()) {
      std::lock_guard<std::mutex> l(s_.push_mu);
      s_.push_grants.erase(grant_);
    }
  }
  bool Poll(std::string* out) override {
    out->swap(pending_);
    pending_.clear();
    char buf[64 << 10];
    while (out->size() < kStreamChunk) {
      ssize_t n = ::read(child_.out, buf, sizeof buf);
      if (n > 0) {
        out->append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return true;
      // EOF (or an error): the CGI is done.
      ::close(child_.out);
      child_.out = -1;
      int st = 0;
      while (::waitpid(child_.pid, &st, 0) < 0 && errno == EINTR) {
      }
      child_.pid = -1;
      return false;
    }
    return true;
  }
  std::string Heartbeat() override { return ""; }

 private:
  Service& s_;
  Child child_;
  std::string pending_;
  const std::string grant_;
};

bool Printable(const std::string& v) {
  return std::all_of(v.begin(), v.end(), [](unsigned char c) { return c >= 0x20 && c < 0x7f; });
}

// Runs http-backend for `service` ("info/refs", "git-receive-pack", "git-upload-pack").
Result<Reply> RunBackend(Service& s, Ctx& ctx, const std::string& what) {
  const bool info = what == "info/refs";
  // Members first: a non-member learns nothing of the team, not even that a query is wrong.
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kViewer, "read components"));
  const std::string service = info ? ctx.req.Query("service") : what;
  if (service != "git-receive-pack" && service != "git-upload-pack") {
    return InvalidArgument("this URL speaks git's smart HTTP protocol: ?service=git-receive-pack or git-upload-pack", "service");
  }
  const bool push = service == "git-receive-pack";
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, push ? "push to components" : "fetch from components"));
  int64_t created = 0;
  BERTH_ASSIGN_OR_RETURN(model::Component comp, GitComponent(s, ctx, &created));
  const std::vector<std::string> branches = DeployBranches(comp);
  const std::string repo = RepoDir(s, ctx.P("team"), ctx.P("app"), ctx.P("component"));
  BERTH_RETURN_IF_ERROR(EnsureRepo(s, repo, branches.front(), created));

  std::vector<std::string> env = BaseEnv(s);
  const std::string root = fs::path(repo).parent_path().string();
  env.push_back("GIT_PROJECT_ROOT=" + root);
  env.push_back("GIT_HTTP_EXPORT_ALL=1");
  // The path is ours, made of stored names: nothing of the request's URL reaches git.
  env.push_back("PATH_INFO=/" + ctx.P("component") + ".git/" + what);
  env.push_back("REQUEST_METHOD=" + ctx.req.method);
  env.push_back(std::string("QUERY_STRING=") + (info ? "service=" + service : ""));
  env.push_back("REMOTE_USER=" + ctx.who.user);
  env.push_back("REMOTE_ADDR=" + ctx.req.remote_addr);
  env.push_back("GATEWAY_INTERFACE=CGI/1.1");
  env.push_back("SERVER_PROTOCOL=HTTP/1.1");
  const std::string& ct = ctx.req.Header("content-type");
  if (!ct.empty() && Printable(ct)) env.push_back("CONTENT_TYPE=" + ct);
  const std::string& enc = ctx.req.Header("content-encoding");
  if (enc == "gzip" || enc == "x-gzip") env.push_back("HTTP_CONTENT_ENCODING=" + enc);
  const std::string& proto = ctx.req.Header("git-protocol");
  if (!proto.empty() && proto.size() < 256 && Printable(proto)) env.push_back("GIT_PROTOCOL=" + proto);
  std::vector<std::pair<std::string, std::string>> config = {
      {"http.receivepack", "true"}, {"http.uploadpack", "true"}, {"core.hooksPath", HooksDir(s)},
      {"receive.fsckObjects", "true"}, {"core.fsmonitor", "false"}, {"uploadpack.allowAnySHA1InWant", "false"}};
  env.push_back("GIT_CONFIG_COUNT=" + std::to_string(config.size()));
  for (size_t i = 0; i < config.size(); ++i) {
    env.push_back("GIT_CONFIG_KEY_" + std::to_string(i) + "=" + config[i].first);
    env.push_back("GIT_CONFIG_VALUE_" + std::to_string(i) + "=" + config[i].second);
  }
  int in_fd = -1;
  if (!ctx.req.body_file.empty()) {
    in_fd = ::open(ctx.req.body_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (in_fd < 0) return Internal("cannot read the request body: " + std::string(std::strerror(errno)));
    struct stat st {};
    ::fstat(in_fd, &st);
    env.push_back("CONTENT_LENGTH=" + std::to_string(st.st_size));
  } else if (ctx.req.method == "POST") {
    env.push_back("CONTENT_LENGTH=0");
  }
  std::string grant;
  if (push && !info) {
    // The hook's credential for this push: random, in memory, for this component only.
    grant = "bpush_" + auth::RandomHex(32);
    {
      std::lock_guard<std::mutex> l(s.push_mu);
      auto now = std::chrono::steady_clock::now();
      for (auto it = s.push_grants.begin(); it != s.push_grants.end();) {
        it = it->second.expires < now ? s.push_grants.erase(it) : std::next(it);
      }
      s.push_grants[grant] = PushGrant{ctx.P("team"), ctx.P("app"), ctx.P("component"), ctx.who.user,
                                       now + kGrantLifetime};
    }
    std::string host = s.options.api_host;
    if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
    if (host == "::") host = "::1";
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    env.push_back("BERTH_PUSH_URL=http://" + host + ":" + std::to_string(s.api_port.load()));
    env.push_back("BERTH_PUSH_PATH=/api/v1/teams/" + ctx.P("team") + "/apps/" + ctx.P("app") + "/components/" +
                  ctx.P("component") + "/git/hook");
    env.push_back("BERTH_PUSH_CREDENTIAL=" + grant);
    std::string b;
    for (const auto& br : branches) b += (b.empty() ? "" : " ") + br;
    env.push_back("BERTH_PUSH_BRANCHES=" + b);
  }
  const std::string errlog = DataDir(s) + "/git/http-backend.log";
  int err_fd = ::open(errlog.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  auto child = Spawn({"git", "http-backend"}, env, repo, in_fd, err_fd);
  if (in_fd >= 0) ::close(in_fd);
  if (err_fd >= 0) ::close(err_fd);
  auto drop_grant = [&] {
    if (grant.empty()) return;
    std::lock_guard<std::mutex> l(s.push_mu);
    s.push_grants.erase(grant);
  };
  if (!child.ok()) {
    drop_grant();
    return child.status();
  }
  // The CGI head: "Status: 200 OK", "Content-Type: ...", a blank line.
  std::string head;
  char buf[4096];
  size_t end = std::string::npos;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (end == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd pfd{child->out, POLLIN, 0};
    int r = left.count() > 0 ? ::poll(&pfd, 1, static_cast<int>(left.count())) : 0;
    if (r < 0 && errno == EINTR) continue;
    ssize_t n = r > 0 ? ::read(child->out, buf, sizeof buf) : -1;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || head.size() > kCgiHeadLimit) {
      ::close(child->out);
      KillAndReap(child->pid);
      drop_grant();
      GitLog()->error("msg=\"git http-backend gave no head\" repo=\"{}\" got=\"{}\"", repo, head.substr(0, 200));
      return Internal("git http-backend failed (see " + errlog + ")");
    }
    head.append(buf, static_cast<size_t>(n));
    end = head.find("\r\n\r\n");
    size_t lf = head.find("\n\n");
    size_t skip = 4;
    if (lf != std::string::npos && (end == std::string::npos || lf < end)) end = lf, skip = 2;
    if (end != std::string::npos) {
      std::string rest = head.substr(end + skip);
      head.resize(end);
      Reply reply;
      reply.status = 200;
      size_t i = 0;
      while (i < head.size()) {
        size_t nl = head.find('\n', i);
        if (nl == std::string::npos) nl = head.size();
        std::string line = head.substr(i, nl - i);
        i = nl + 1;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string name = line.substr(0, colon), value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        std::string lower = name;
        std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
        if (lower == "status") {
          reply.status = std::atoi(value.c_str());
          if (reply.status < 100 || reply.status > 599) reply.status = 500;
        } else if ((lower == "content-type" || lower == "cache-control" || lower == "expires" ||
                    lower == "pragma") && Printable(value)) {
          reply.headers.push_back({lower == "content-type" ? "Content-Type" : name, value});
        }
      }
      reply.stream = std::make_shared<CgiStream>(s, *child, std::move(rest), grant);
      return reply;
    }
  }
  return Internal("unreachable");
}

// ---- the hook's callback: build the pushed commit and follow it -----------------------------

// Build log, then rollout, as text lines; the last line says how it ended:
// "berth-push: ok" or "berth-push: failed: <why>".
class PushFollow final : public StreamSource {
 public:
  PushFollow(Service& s, std::string team, std::string app, std::string component, std::string version)
      : s_(s), team_(std::move(team)), app_(std::move(app)), component_(std::move(component)),
        version_(std::move(version)), scope_(team_ + "/" + app_ + "/" + component_),
        rel_(builder::BuildLogPath(team_, app_, component_, version_)),
        started_(std::chrono::steady_clock::now()) {}

  bool Poll(std::string* out) override {
    if (phase_ == Phase::kBuild) return PollBuild(out);
    return PollDeploy(out);
  }
  std::string Heartbeat() override { return "berth-push: heartbeat\n"; }

 private:
  enum class Phase { kBuild, kDeploy };

  bool Ok(std::string* out, const std::string& line) {
    *out += line + "\nberth-push: ok\n";
    return false;
  }
  bool Fail(std::string* out, const std::string& why) {
    std::string one = why;
    std::replace(one.begin(), one.end(), '\n', ' ');
    *out += "berth-push: failed: " + one + "\n";
    return false;
  }

  bool PollBuild(std::string* out) {
    std::string status = "deleted", message;
    auto v = s_.store.Get(model::kVersion, scope_, version_);
    if (v.ok()) {
      Json j = Stored(*v);
      status = j.value("status", "");
      message = j.value("message", "");
    } else if (v.status().code() != Code::kNotFound) {
      status = "unknown";
    }
    const bool terminal = status == "ready" || status == "failed" || status == "cancelled" || status == "deleted";
    bool more = false;
    auto buf = ReadBeneath(s_.options.data_dir, rel_, static_cast<int64_t>(offset_), kStreamChunk);
    if (buf.ok() && !buf->empty()) {
      offset_ += buf->size();
      more = buf->size() == kStreamChunk;
      partial_ += *buf;
      size_t cut = partial_.rfind('\n');
      if (cut != std::string::npos) {
        *out += partial_.substr(0, cut + 1);
        partial_.erase(0, cut + 1);
      }
    }
    if (!terminal || more) return true;
    if (!partial_.empty()) *out += partial_ + "\n", partial_.clear();
    if (status != "ready") {
      return Fail(out, "build " + version_ + " " + status + (message.empty() ? "" : ": " + message));
    }
    *out += "-----> built " + version_ + "\n";
    phase_ = Phase::kDeploy;
    deadline_ = std::chrono::steady_clock::now() + kDeployTimeout;
    auto c = s_.store.Get(model::kComponent, team_ + "/" + app_, component_);
    if (!c.ok()) return Fail(out, "component " + component_ + " is gone");
    auto comp = model::ParseComponent(Stored(*c));
    if (!comp.ok()) return Fail(out, comp.status().message());
    const std::string where = component_ + " --app " + app_;
    if (!comp->version.empty() && comp->version != version_) {
      return Ok(out, "-----> " + component_ + " is pinned to " + comp->version + " (a rollback): " + version_ +
                         " is built but not deployed; `berth deploy " + where + "` follows the newest again");
    }
    if (comp->kind == "job" || comp->kind == "cronjob") {
      return Ok(out, "-----> " + component_ + " is a " + comp->kind + ": " + version_ +
                         " runs at its next run (`berth runs " + where + "`)");
    }
    if (comp->desired_state != "running" || comp->replicas == 0) {
      return Ok(out, "-----> " + component_ + " is " +
                         (comp->desired_state == "running" ? "scaled to 0" : "stopped") + ": " + version_ +
                         " will run when it is started");
    }
    failures_before_ = FailureEvents();
    *out += "-----> deploying " + version_ + "\n";
    return true;
  }

  static bool IsDeployFailure(const std::string& reason) {
    return reason == "CrashLoop" || reason == "StartFailed" || reason == "NotRunnable" ||
           reason == "OOMKilled" || reason == "StartupFailed";
  }
  static std::string EventKey(const Json& e) {
    return e.value("first_at", "") + "|" + e.value("reason", "") + "|" + e.value("message", "");
  }
  std::map<std::string, int64_t> FailureEvents() {
    std::map<std::string, int64_t> seen;
    ListOptions lo;
    lo.scope = scope_;
    lo.limit = 500;
    auto l = s_.store.List(model::kEvent, lo);
    if (!l.ok()) return seen;
    for (const Object& o : l->items) {
      Json e = Stored(o);
      if (IsDeployFailure(e.value("reason", ""))) seen[EventKey(e)] = e.value("count", int64_t{1});
    }
    return seen;
  }

  bool PollDeploy(std::string* out) {
    auto c = s_.store.Get(model::kComponent, team_ + "/" + app_, component_);
    if (!c.ok()) return Fail(out, "component " + component_ + " is gone");
    Json comp = Stored(*c);
    const int want = comp.value("replicas", 0);
    ListOptions lo;
    lo.scope = scope_;
    lo.limit = 500;
    auto l = s_.store.List(model::kInstance, lo);
    if (!l.ok()) return Fail(out, l.status().message());
    int total = 0, ready = 0;
    for (const Object& o : l->items) {
      Json i = Stored(o);
      ++total;
      if (i.value("version", "") == version_ && i.value("ready", false) && i.value("state", "") == "running") ++ready;
    }
    std::string state = std::to_string(ready) + " of " + std::to_string(want) + " ready at " + version_;
    if (state != last_state_) *out += "       " + state + "\n", last_state_ = state;
    const std::string where = component_ + " --app " + app_;
    if (ready == want && total == want) {
      Json rendered = RenderObject(*c);
      AddComponentAddresses(s_, team_, app_, &rendered);
      std::string line = "-----> " + component_ + " runs " + version_ + " (" +
                         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                            std::chrono::steady_clock::now() - started_).count()) + " s)";
      for (const auto& a : rendered.value("addresses", Json::array())) {
        std::string url = a.is_string() ? a.get<std::string>() : a.is_object() ? a.value("url", "") : "";
        if (!url.empty()) line += "\n       " + component_ + " answers at " + url;
      }
      return Ok(out, line);
    }
    ListOptions eo;
    eo.scope = scope_;
    eo.limit = 500;
    if (auto ev = s_.store.List(model::kEvent, eo); ev.ok()) {
      for (const Object& o : ev->items) {
        Json e = Stored(o);
        if (!IsDeployFailure(e.value("reason", ""))) continue;
        auto it = failures_before_.find(EventKey(e));
        if (it == failures_before_.end() || it->second != e.value("count", int64_t{1})) {
          return Fail(out, "deploy of " + version_ + " failed: " + e.value("reason", "") + ": " +
                               e.value("message", "") + " (see `berth logs " + where + "` and `berth events " +
                               where + "`)");
        }
      }
    }
    if (std::chrono::steady_clock::now() >= deadline_) {
      return Fail(out, "deploy of " + version_ + " not ready within " + std::to_string(kDeployTimeout.count()) +
                           " s: " + state + " (see `berth instances " + where + "`)");
    }
    return true;
  }

  Service& s_;
  const std::string team_, app_, component_, version_, scope_, rel_;
  const std::chrono::steady_clock::time_point started_;
  // Touched by one polling thread at a time.
  Phase phase_ = Phase::kBuild;
  size_t offset_ = 0;
  std::string partial_;
  std::string last_state_;
  std::chrono::steady_clock::time_point deadline_;
  std::map<std::string, int64_t> failures_before_;
};

bool IsHex40(const std::string& s) {
  return s.size() == 40 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// POST .../git/hook {"ref","old","new","quarantine"}, by the pre-receive hook with its push's
// credential (no user token).
Result<Reply> PushHook(Service& s, Ctx& ctx) {
  const std::string& auth = ctx.req.Header("authorization");
  std::string cred = auth.rfind("Bearer ", 0) == 0 ? auth.substr(7) : "";
  PushGrant grant;
  {
    std::lock_guard<std::mutex> l(s.push_mu);
    auto it = cred.empty() ? s.push_grants.end() : s.push_grants.find(cred);
    if (it == s.push_grants.end() || it->second.expires < std::chrono::steady_clock::now() ||
        it->second.team != ctx.P("team") || it->second.app != ctx.P("app") ||
        it->second.component != ctx.P("component")) {
      return Unauthenticated("this is the push hook's callback: it needs the credential of a running push");
    }
    grant = it->second;
  }
  BERTH_ASSIGN_OR_RETURN(Json body, ParseJsonObject(ctx.req.body.empty() ? "{}" : ctx.req.body));
  std::string ref, old_commit, new_commit, quarantine;
  JsonReader r(body, "");
  r.Str("ref", &ref, 1024);
  r.Str("old", &old_commit, 64);
  r.Str("new", &new_commit, 64);
  r.Str("quarantine", &quarantine, 4096);
  r.Finish();
  if (!r.ok()) return r.status();
  if (!IsHex40(new_commit) || new_commit == kZeroCommit) {
    return InvalidArgument("new must be the pushed commit (40 hexadecimal digits)", "new");
  }
  if (ref.rfind("refs/heads/", 0) != 0) return InvalidArgument("ref must be a branch (refs/heads/...)", "ref");
  BERTH_ASSIGN_OR_RETURN(model::Component comp, GitComponent(s, ctx));
  const std::string team = ctx.P("team"), app = ctx.P("app");
  const std::string repo = RepoDir(s, team, app, comp.name);
  // The pushed objects are in the push's quarantine directory inside the repository's objects:
  // only such a directory is accepted (the hook says which; nothing else of the disk is read).
  std::vector<std::string> env = BaseEnv(s);
  env.push_back("GIT_DIR=" + repo);
  if (!quarantine.empty()) {
    std::error_code ec;
    fs::path q = fs::canonical(quarantine, ec);
    fs::path objects = fs::canonical(repo + "/objects", ec);
    if (ec || q.parent_path() != objects || q.filename().string().rfind("tmp_objdir-incoming-", 0) != 0) {
      return InvalidArgument("quarantine must be this push's incoming object directory", "quarantine");
    }
    env.push_back("GIT_OBJECT_DIRECTORY=" + q.string());
    env.push_back("GIT_ALTERNATE_OBJECT_DIRECTORIES=" + objects.string());
  }
  const std::string dir = builder::UploadsDir(DataDir(s), team, app, comp.name);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create " + dir + ": " + ec.message());
  const std::string archive = dir + "/push-" + new_commit.substr(0, 12) + "-" + auth::RandomHex(4) + ".tar";
  BERTH_ASSIGN_OR_RETURN(auto ar, Run({"git", "archive", "--format=tar", "-o", archive, new_commit + "^{commit}"},
                                      env, repo, std::chrono::seconds(300)));
  if (ar.first != 0) {
    fs::remove(archive, ec);
    return FailedPrecondition("git archive of " + new_commit + " failed: " + ar.second.substr(0, 500));
  }
  model::Component build = comp;
  build.source.type = "archive";
  build.source.url.clear();
  build.source.ref.clear();
  build.source.archive = archive;
  const std::string branch = ref.substr(11);
  Json trigger = {{"git_push", grant.user}, {"branch", branch}, {"commit", new_commit}};
  auto v = QueueVersion(s, team, app, build, "", grant.user, trigger);
  if (!v.ok()) {
    fs::remove(archive, ec);
    return v.status();
  }
  PruneUploads(s, team + "/" + app + "/" + comp.name, dir, archive, "push-");
  (void)s.events.Record({team, app, comp.name}, events::Type::kNormal, "GitPush",
                        grant.user + " pushed " + new_commit.substr(0, 12) + " to " + branch + ": build " + v->name);
  GitLog()->info("msg=\"push queued a build\" team={} app={} component={} commit={} version={} user={}", team, app,
                 comp.name, new_commit, v->name, grant.user);
  Reply reply;
  reply.headers.push_back({"Content-Type", "text/plain; charset=utf-8"});
  reply.headers.push_back({"Cache-Control", "no-cache"});
  reply.stream = std::make_shared<PushFollow>(s, team, app, comp.name, v->name);
  return reply;
}

// GET .../git-url: where to push (any member: it is an address, not a secret).
Result<Reply> GitUrl(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kViewer, "read components"));
  BERTH_ASSIGN_OR_RETURN(model::Component comp, GitComponent(s, ctx));
  const std::string path = "/api/v1/teams/" + ctx.P("team") + "/apps/" + ctx.P("app") + "/components/" +
                           ctx.P("component") + "/git";
  Json out = {{"path", path},
              {"branches", DeployBranches(comp)},
              {"username", ctx.who.user},
              {"password", "a berth token (`berth token create`); the user name is not checked"}};
  const std::string& host = ctx.req.Header("host");
  if (!host.empty() && host.find_first_of(" /\r\n@") == std::string::npos) out["url"] = "http://" + host + path;
  return Reply{200, out, {}, nullptr};
}

}  // namespace

void RegisterGitRoutes(Service& svc) {
  const std::string C = "/api/v1/teams/{team}/apps/{app}/components/{component}";
  struct Def {
    const char* method;
    std::string pattern;
    const char* summary;
    std::function<Result<Reply>(Service&, Ctx&)> fn;
    bool basic_auth;
    bool public_route;
    bool body_to_file;
  };
  std::vector<Def> defs = {
      {"GET", C + "/git-url", "Where to `git push` the component ({\"url\",\"path\",\"branches\"})", GitUrl,
       false, false, false},
      {"GET", C + "/git/info/refs",
       "git smart HTTP: the refs (?service=git-receive-pack|git-upload-pack; basic auth, the token as password)",
       [](Service& s, Ctx& c) { return RunBackend(s, c, "info/refs"); }, true, false, false},
      {"POST", C + "/git/git-receive-pack",
       "git smart HTTP: a push; the pushed commit of the deploy branch is built and deployed (developers)",
       [](Service& s, Ctx& c) { return RunBackend(s, c, "git-receive-pack"); }, true, false, true},
      {"POST", C + "/git/git-upload-pack", "git smart HTTP: a fetch of the push repository (developers)",
       [](Service& s, Ctx& c) { return RunBackend(s, c, "git-upload-pack"); }, true, false, true},
      {"POST", C + "/git/hook",
       "Internal: the pre-receive hook's callback with its push's credential; streams the build and rollout",
       PushHook, false, true, false},
  };
  for (Def& d : defs) {
    Route r;
    r.method = d.method;
    r.pattern = d.pattern;
    r.summary = d.summary;
    r.tag = "git";
    r.success_status = 200;
    r.basic_auth = d.basic_auth;
    r.public_route = d.public_route;
    r.body_to_file = d.body_to_file;
    r.slow = true;  // git processes
    Service* sp = &svc;
    auto fn = d.fn;
    r.fn = [sp, fn](Ctx& c) { return fn(*sp, c); };
    svc.router.Add(std::move(r));
  }
}

}  // namespace berth::api
