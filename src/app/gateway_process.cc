#include "app/gateway_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "auth/crypto.h"
#include "core/clock.h"
#include "core/env.h"
#include "core/log.h"
#include "model/model.h"

extern char** environ;

namespace berth {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string ReadText(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "";
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> Cmdline(int pid) {
  std::string raw = ReadText("/proc/" + std::to_string(pid) + "/cmdline");
  std::vector<std::string> args;
  size_t i = 0;
  while (i < raw.size()) {
    size_t z = raw.find('\0', i);
    if (z == std::string::npos) z = raw.size();
    args.push_back(raw.substr(i, z - i));
    i = z + 1;
  }
  return args;
}

// Whether `pid` is a `berth gateway` serving `state_dir` (a zombie has no command line).
bool IsGatewayFor(int pid, const std::string& state_dir) {
  if (pid <= 0) return false;
  std::vector<std::string> args = Cmdline(pid);
  if (args.size() < 2 || args[1] != "gateway") return false;
  for (size_t i = 2; i + 1 < args.size(); ++i) {
    if (args[i] == "--state") return args[i + 1] == state_dir;
  }
  return false;
}

int ReadPid(const std::string& path) {
  std::string text = ReadText(path);
  if (text.empty() || text.size() > 12) return 0;
  int pid = std::atoi(text.c_str());
  return pid > 0 ? pid : 0;
}

// Replaced atomically and durably, readable by the owner only (core/env.h).
Status WritePrivate(const std::string& path, const std::string& content) {
  return Env::Default().WriteFileAtomic(path, content, 0600);
}

// Starts the command detached (own session, reparented away from the server, so it survives
// the server's exit or kill -9), stdout and stderr appended to `log_path`. Returns its pid.
Result<int> LaunchDetached(const std::vector<std::string>& cmd, const std::string& log_path) {
  std::vector<std::string> args = cmd;
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The gateway gets its settings from the command line only: no BERTH_* variable of the
  // server's environment may change them.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "BERTH_", 6) != 0) env_strings.emplace_back(*e);
  }
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) return Internal("cannot open " + log_path + ": " + std::strerror(errno));
  int pfd[2];
  if (::pipe2(pfd, O_CLOEXEC) != 0) {
    ::close(log_fd);
    return Internal(std::string("pipe: ") + std::strerror(errno));
  }
  pid_t child = ::fork();
  if (child < 0) {
    ::close(pfd[0]);
    ::close(pfd[1]);
    ::close(log_fd);
    return Internal(std::string("fork: ") + std::strerror(errno));
  }
  if (child == 0) {
    // Only async-signal-safe calls until exec.
    ::setsid();
    pid_t g = ::fork();
    if (g != 0) ::_exit(g < 0 ? 1 : 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    if (::chdir("/") != 0) ::_exit(1);
    int wfd = pfd[1];
    int32_t pid = ::getpid();
    (void)!::write(wfd, &pid, sizeof pid);
    for (int fd = 3; fd < 1024; ++fd) {
      if (fd != wfd) ::close(fd);
    }
    ::syscall(SYS_close_range, 1024u, ~0u, 0u);
    ::execve(argv[0], argv.data(), envp.data());
    int32_t err = -errno;
    (void)!::write(wfd, &err, sizeof err);
    ::_exit(127);
  }
  ::close(pfd[1]);
  ::close(log_fd);
  int32_t pid = 0, after = 0;
  ssize_t n1 = ::read(pfd[0], &pid, sizeof pid);
  ssize_t n2 = ::read(pfd[0], &after, sizeof after);
  ::close(pfd[0]);
  ::waitpid(child, nullptr, 0);
  if (n1 != static_cast<ssize_t>(sizeof pid) || pid <= 0)
    return Internal("the gateway did not start");
  if (n2 == static_cast<ssize_t>(sizeof after) && after < 0) {
    return Internal("cannot run " + cmd[0] + " gateway: " + std::strerror(-after));
  }
  return static_cast<int>(pid);
}

// The value of `flag` on a command line ("" when absent).
std::string FlagValue(const std::vector<std::string>& args, const std::string& flag) {
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == flag) return args[i + 1];
  }
  return "";
}

// The pid of the gateway serving DATA/gateway, 0 when none runs.
int RunningGateway(const std::string& state_dir) {
  int pid = ReadPid(state_dir + "/gateway.pid");
  return IsGatewayFor(pid, state_dir) ? pid : 0;
}

std::string StateDirOf(const std::string& data_dir) {
  std::error_code ec;
  std::string data = fs::absolute(data_dir, ec).lexically_normal().string();
  while (data.size() > 1 && data.back() == '/') data.pop_back();
  return data + "/gateway";
}

// "127.0.0.1:9090" → (host, port); false when it is not HOST:PORT.
bool SplitAddress(const std::string& address, std::string* host, int* port) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  *host = address.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  std::string p = address.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  *port = std::atoi(p.c_str());
  return *port <= 65535;
}

// Binds `address` as a listener would (SO_REUSEADDR, as the gateway's acceptors do) and lets
// go. Returns 0 when it could, else the errno (EADDRINUSE: someone listens there). With port
// 0, *bound gets the port the kernel chose.
int ProbeListen(const std::string& address, int* bound = nullptr) {
  std::string host;
  int port = 0;
  if (!SplitAddress(address, &host, &port)) return EINVAL;
  bool v6 = host.find(':') != std::string::npos;
  int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET6, host.c_str(), &a->sin6_addr) != 1) {
      ::close(fd);
      return EINVAL;
    }
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    if (host == "localhost") host = "127.0.0.1";
    if (::inet_pton(AF_INET, host.c_str(), &a->sin_addr) != 1) {
      ::close(fd);
      return EINVAL;  // a host name: the gateway resolves it; nothing to probe here
    }
    len = sizeof *a;
  }
  int err = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 1) != 0) {
    err = errno;
  } else if (bound != nullptr) {
    sockaddr_storage got{};
    socklen_t got_len = sizeof got;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&got), &got_len);
    *bound = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&got)->sin6_port
                      : reinterpret_cast<sockaddr_in*>(&got)->sin_port);
  }
  ::close(fd);
  return err;
}

// The server setting behind one of the gateway's listeners, as the gateway names them in
// "cannot listen on ADDR (KIND): ...".
const char* FlagForListener(const std::string& kind) {
  if (kind == "http") return "--http ADDR:PORT (BERTH_HTTP)";
  if (kind == "https") return "--https ADDR:PORT (BERTH_HTTPS)";
  if (kind == "admin") return "--gateway-admin ADDR:PORT (BERTH_GATEWAY_ADMIN)";
  return nullptr;
}

std::string TakenMessage(const std::string& what, const std::string& kind) {
  std::string m = what + ": another process (another berth server?) listens there";
  if (const char* flag = FlagForListener(kind)) {
    m += "; choose another address with " + std::string(flag);
    if (kind == "admin") m += ", or leave that setting out for a free port";
  }
  return m;
}

}  // namespace

Result<std::string> ResolveAutoGatewayAdmin(const std::string& data_dir, spdlog::logger& log) {
  std::string state_dir = StateDirOf(data_dir);
  std::error_code ec;
  fs::create_directories(state_dir, ec);
  if (ec) return Internal("cannot create " + state_dir + ": " + ec.message());
  ::chmod(state_dir.c_str(), 0700);
  std::string file = state_dir + "/admin-address";
  std::string recorded = ReadText(file);
  while (!recorded.empty() && (recorded.back() == '\n' || recorded.back() == ' ')) {
    recorded.pop_back();
  }
  std::string host;
  int port = 0;
  int running = RunningGateway(state_dir);
  std::string running_admin = running > 0 ? FlagValue(Cmdline(running), "--admin") : "";
  if (recorded.empty() && SplitAddress(running_admin, &host, &port) && port > 0) {
    // A gateway started before this setting had "auto" (by an older version, on the old
    // default 127.0.0.1:9090): keep its address, so it is adopted rather than replaced.
    BERTH_RETURN_IF_ERROR(WritePrivate(file, running_admin + "\n"));
    return running_admin;
  }
  if (SplitAddress(recorded, &host, &port) && port > 0) {
    if (running > 0 && running_admin == recorded) return recorded;
    int err = ProbeListen(recorded);
    if (err == 0) return recorded;
    log.warn("msg=\"the gateway's recorded admin address is taken; choosing another\" "
             "address={} error=\"{}\"",
             recorded, std::strerror(err));
  }
  int bound = 0;
  if (int err = ProbeListen("127.0.0.1:0", &bound); err != 0 || bound == 0) {
    return Internal(std::string("cannot find a free port for the gateway's admin listener: ") +
                    std::strerror(err));
  }
  std::string chosen = "127.0.0.1:" + std::to_string(bound);
  BERTH_RETURN_IF_ERROR(WritePrivate(file, chosen + "\n"));
  log.info("msg=\"chose the gateway's admin address\" address={} file={}", chosen, file);
  return chosen;
}

Status CheckGatewayListeners(const std::string& data_dir,
                             const std::vector<GatewayListener>& listeners) {
  std::string state_dir = StateDirOf(data_dir);
  int running = RunningGateway(state_dir);
  std::vector<std::string> running_args = running > 0 ? Cmdline(running) : std::vector<std::string>{};
  for (const GatewayListener& l : listeners) {
    std::string host;
    int port = 0;
    if (l.address.empty() || l.address == "off" || !SplitAddress(l.address, &host, &port) ||
        port == 0) {
      continue;
    }
    if (running > 0 && FlagValue(running_args, "--" + l.kind) == l.address) continue;  // ours
    int err = ProbeListen(l.address);
    if (err == EADDRINUSE) {
      return FailedPrecondition(
          TakenMessage("the gateway cannot listen on " + l.address + " (" + l.kind + ")", l.kind));
    }
    if (err != 0 && err != EINVAL) {
      return FailedPrecondition("the gateway cannot listen on " + l.address + " (" + l.kind +
                                "): " + std::strerror(err) + "; change " + l.flag);
    }
  }
  return Status::Ok();
}

namespace {

// A new non-expiring token of the gateway's account: the create op (with its audit record)
// into `b`; returns the secret.
std::string AddGatewayToken(WriteBatch& b, const std::string& actor, std::string* id) {
  model::Token t;
  t.id = auth::RandomHex(6);
  t.name = "gateway";
  t.user = kGatewayUser;
  t.expires_at_ms = 0;  // rotated instead (RotateGatewayCredential)
  std::string secret = auth::NewTokenSecret();
  Json tj = model::ToJson(t);
  Op op;
  op.type = OpType::kCreate;
  op.object = Object{model::kToken, model::TokenScope(kGatewayUser), t.id, tj.dump(),
                     auth::HashToken(secret)};
  b.ops.push_back(std::move(op));
  b.audit.push_back({actor, "", "create", std::string("tokens/") + t.id,
                     Json({{"before", nullptr}, {"after", tj}}).dump()});
  if (id) *id = t.id;
  return secret;
}

Result<std::string> PrepareGatewayDir(const std::string& data_dir) {
  std::string dir = data_dir + "/gateway";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  return dir + "/token";
}

}  // namespace

Status EnsureGatewayCredential(Store& store, const std::string& data_dir, spdlog::logger& log) {
  BERTH_ASSIGN_OR_RETURN(std::string token_path, PrepareGatewayDir(data_dir));

  auto user = store.Get(model::kUser, "", kGatewayUser);
  if (!user.ok() && user.status().code() != Code::kNotFound) return user.status();
  WriteBatch b;
  if (user.ok()) {
    Json u = Json::parse(user->body, nullptr, false);
    // A user of that name with a password was made by a person, not by berth.
    bool berths = u.is_object() && (u.value("admin", false) || u.value("service", false)) &&
                  !u.value("disabled", false) && u.value("password_hash", "").empty();
    if (!berths) {
      return FailedPrecondition(std::string("the user \"") + kGatewayUser +
                                "\" exists but is not berth's enabled, password-less service "
                                "account; the gateway authenticates as it (rename that user, or "
                                "run with --gateway off)");
    }
    if (!u.value("service", false) || u.value("admin", false)) {
      // Made by an older version: as a platform administrator (which a stolen gateway token
      // must not be) and perhaps before service accounts existed. Now a service account whose
      // token reaches only the gateway's routes.
      Json before = {{"service", u.value("service", false)}, {"admin", u.value("admin", false)}};
      u["service"] = true;
      u["admin"] = false;
      Op mark;
      mark.type = OpType::kUpdate;
      mark.object = Object{model::kUser, "", kGatewayUser, u.dump()};
      mark.expected_revision = user->revision;
      b.ops.push_back(std::move(mark));
      b.audit.push_back({"berth", "", "update", std::string("users/") + kGatewayUser,
                         Json({{"before", before}, {"after", {{"service", true}, {"admin", false}}}}).dump()});
    }
    std::string secret = ReadText(token_path);
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == ' ')) secret.pop_back();
    if (!secret.empty()) {
      BERTH_ASSIGN_OR_RETURN(std::vector<Object> found,
                             store.FindByIndex(model::kToken, auth::HashToken(secret)));
      if (!found.empty() && found.front().scope == model::TokenScope(kGatewayUser)) {
        if (b.ops.empty()) return Status::Ok();
        auto r = store.Commit(b);
        return r.ok() ? Status::Ok() : r.status();
      }
    }
  }

  if (!user.ok()) {
    model::UserInput in;
    Json uj = {{"name", kGatewayUser},
               {"service", true},
               {"display_name", "Gateway (service user of berth server)"}};
    BERTH_ASSIGN_OR_RETURN(in, model::ParseUser(uj));
    // Nobody logs in as the gateway: no password hash verifies (and none costs start-up time).
    in.user.password_hash.clear();
    Op op;
    op.type = OpType::kCreate;
    op.object = Object{model::kUser, "", kGatewayUser, model::ToJson(in.user, true).dump()};
    b.ops.push_back(std::move(op));
    b.audit.push_back(
        {"berth", "", "create", std::string("users/") + kGatewayUser,
         Json({{"before", nullptr}, {"after", model::ToJson(in.user, false)}}).dump()});
  }
  std::string id;
  std::string secret = AddGatewayToken(b, "berth", &id);
  // The file first: a token in the store that nobody holds is harmless, the reverse is not.
  BERTH_RETURN_IF_ERROR(WritePrivate(token_path, secret + "\n"));
  auto r = store.Commit(b);
  if (!r.ok()) return r.status();
  log.info("msg=\"issued the gateway's token\" user={} token={} file={}", kGatewayUser, id,
           token_path);
  return Status::Ok();
}

Result<std::string> RotateGatewayCredential(Store& store, const std::string& data_dir,
                                            const std::string& actor) {
  auto user = store.Get(model::kUser, "", kGatewayUser);
  if (!user.ok()) {
    if (user.status().code() == Code::kNotFound) {
      return FailedPrecondition("this server runs no gateway (--gateway off): there is no "
                                "gateway credential to rotate");
    }
    return user.status();
  }
  BERTH_ASSIGN_OR_RETURN(std::string token_path, PrepareGatewayDir(data_dir));
  BERTH_ASSIGN_OR_RETURN(std::vector<Object> old,
                         ListAll(store, model::kToken, model::TokenScope(kGatewayUser)));
  // In three steps, so that the file always holds a token the store accepts: the new token is
  // committed, then written to the file the gateway reads before every connection, and only
  // then are the old ones revoked (which ends the watch the gateway holds with one of them).
  WriteBatch add;
  std::string id;
  std::string secret = AddGatewayToken(add, actor, &id);
  BERTH_RETURN_IF_ERROR(store.Commit(add).status());
  if (Status w = WritePrivate(token_path, secret + "\n"); !w.ok()) {
    WriteBatch undo;
    undo.ops.push_back(Op{OpType::kDelete, Object{model::kToken, model::TokenScope(kGatewayUser), id}, 0});
    (void)store.Commit(undo);
    return w;
  }
  for (const Object& t : old) {
    WriteBatch revoke;
    Op del;
    del.type = OpType::kDelete;
    del.object = Object{model::kToken, t.scope, t.name};
    revoke.ops.push_back(std::move(del));
    revoke.audit.push_back({actor, "", "delete", "tokens/" + t.name,
                            Json({{"before", {{"user", kGatewayUser}, {"reason", "rotated"}}},
                                  {"after", nullptr}}).dump()});
    auto r = store.Commit(revoke);
    // Already gone (revoked meanwhile) is what we wanted.
    if (!r.ok() && r.status().code() != Code::kNotFound) return r.status();
  }
  Logger("server")->info("msg=\"rotated the gateway's credential\" token={} revoked={} by={}", id,
                         old.size(), actor);
  return id;
}

std::vector<std::string> GatewayCommand(const GatewayProcessOptions& o) {
  std::error_code ec;
  std::string data = fs::absolute(o.data_dir, ec).lexically_normal().string();
  while (data.size() > 1 && data.back() == '/') data.pop_back();
  std::string exe = o.exe;
  if (exe.empty()) exe = fs::read_symlink("/proc/self/exe", ec).string();
  return {exe,
          "gateway",
          "--state",
          data + "/gateway",
          "--control-file",
          data + "/server.json",
          "--token-file",
          data + "/gateway/token",
          "--http",
          o.http.empty() ? "off" : o.http,
          "--https",
          o.https.empty() ? "off" : o.https,
          "--admin",
          o.admin.empty() ? "off" : o.admin,
          "--io-threads",
          std::to_string(o.io_threads),
          "--pin-io-threads",
          o.pin_io_threads,
          "--max-connections",
          std::to_string(o.max_connections),
          "--log-level",
          o.log_level};
}

struct GatewayProcess::Impl {
  GatewayProcessOptions opt;
  std::vector<std::string> cmd;
  std::string state_dir, pid_path, status_path, log_path;
  std::shared_ptr<spdlog::logger> log = Logger("server");

  std::atomic<int> pid{0};
  bool adopted = false;
  std::thread watcher;
  std::mutex mu;
  bool stopping = false;  // guarded by mu
  int stop_fd = -1;       // eventfd: written by Stop to wake the watcher

  // Adopts a gateway for this state dir that runs with our command line; stops one that
  // runs with another. Returns the adopted pid or 0.
  int AdoptOrRetire() {
    int old = ReadPid(pid_path);
    if (!IsGatewayFor(old, state_dir)) return 0;
    std::vector<std::string> args = Cmdline(old);
    if (std::equal(args.begin() + 1, args.end(), cmd.begin() + 1, cmd.end())) return old;
    log->info("msg=\"the running gateway has other settings; replacing it\" pid={}", old);
    ::kill(old, SIGTERM);
    for (int i = 0; i < 200 && IsGatewayFor(old, state_dir); ++i) ::usleep(50 * 1000);
    if (IsGatewayFor(old, state_dir)) ::kill(old, SIGKILL);
    for (int i = 0; i < 100 && IsGatewayFor(old, state_dir); ++i) ::usleep(20 * 1000);
    return 0;
  }

  Result<int> Launch() {
    // Keep the log from growing without bound across many restarts.
    struct stat st {};
    if (::stat(log_path.c_str(), &st) == 0 && st.st_size > (16 << 20)) {
      ::rename(log_path.c_str(), (log_path + ".1").c_str());
    }
    ::unlink(status_path.c_str());
    return LaunchDetached(cmd, log_path);
  }

  // Waits until the gateway it just started listens (gateway.json names its pid). One that
  // exits first failed to start: its last "cannot start" line from the log, with the server
  // setting to change, is the error. Still starting after the wait is not an error (the
  // server says "not listening yet" and the watcher keeps it).
  Status AwaitFirstListen(int started) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      Json j = Json::parse(ReadText(status_path), nullptr, false);
      if (j.is_object() && j.value("pid", 0) == started) return Status::Ok();
      if (!IsGatewayFor(started, state_dir)) {
        // Gone before listening. Its reason is the last line it wrote.
        std::string log_text = ReadText(log_path);
        std::string reason;
        size_t end = log_text.size();
        while (end > 0 && reason.empty()) {
          size_t start = log_text.rfind('\n', end - 1);
          start = start == std::string::npos ? 0 : start + 1;
          std::string line = log_text.substr(start, end - start);
          while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
          if (!line.empty()) reason = line;
          end = start == 0 ? 0 : start - 1;
        }
        const std::string prefix = "berth gateway: cannot start: ";
        if (reason.rfind(prefix, 0) == 0) reason = reason.substr(prefix.size());
        // "cannot listen on 127.0.0.1:9090 (admin): Address already in use"
        size_t open = reason.find(" ("), close = reason.find("): ");
        if (reason.rfind("cannot listen on ", 0) == 0 && open != std::string::npos &&
            close != std::string::npos && close > open &&
            reason.find("Address already in use") != std::string::npos) {
          std::string kind = reason.substr(open + 2, close - open - 2);
          return FailedPrecondition(TakenMessage("the gateway " + reason.substr(0, close + 1), kind));
        }
        return FailedPrecondition("the gateway exited at start: " +
                                  (reason.empty() ? std::string("(no reason in the log)") : reason) +
                                  " (see " + log_path + ")");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return Status::Ok();
  }

  // Waits up to `timeout` for the gateway `pid_fd` refers to to exit (-1: no pidfd, only the
  // timeout) or for Stop. Returns false when stopping.
  bool Wait(int pid_fd, std::chrono::milliseconds timeout) {
    pollfd fds[2] = {{stop_fd, POLLIN, 0}, {pid_fd, POLLIN, 0}};
    int n = pid_fd >= 0 ? 2 : 1;
    int r = ::poll(fds, static_cast<nfds_t>(n), static_cast<int>(timeout.count()));
    if (r > 0 && (fds[0].revents & POLLIN)) return false;
    std::lock_guard<std::mutex> l(mu);
    return !stopping;
  }

  // A pidfd becomes readable when the process exits, also for a process that is not our child
  // (the gateway is detached): the crash is seen at once instead of at the next check.
  static int OpenPidfd(int pid) {
    if (pid <= 0) return -1;
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  }

  void Watch() {
    RestartBackoff backoff;
    // An adopted gateway has run for longer than we know: its exit is no start-up failure.
    auto started_at = std::chrono::steady_clock::now() -
                      (adopted ? std::chrono::hours(1) : std::chrono::hours(0));
    int pid_fd = OpenPidfd(pid.load());
    auto reopen = [&](int p) {
      if (pid_fd >= 0) ::close(pid_fd);
      pid_fd = OpenPidfd(p);
    };
    while (Wait(pid_fd, opt.check_interval)) {
      int cur = pid.load();
      if (IsGatewayFor(cur, state_dir)) continue;
      // Another gateway may hold the state dir (it won the lock): adopt it.
      int other = ReadPid(pid_path);
      if (other != cur && IsGatewayFor(other, state_dir)) {
        pid = other;
        reopen(other);
        continue;
      }
      auto uptime = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - started_at);
      auto delay = backoff.OnExit(uptime);
      log->warn("msg=\"the gateway is gone; starting it again\" pid={} ran_ms={} delay_ms={} log={}",
                cur, uptime.count(), delay.count(), log_path);
      reopen(0);
      if (delay.count() > 0 && !Wait(-1, delay)) break;
      started_at = std::chrono::steady_clock::now();
      auto started = Launch();
      if (!started.ok()) {
        log->error("msg=\"cannot start the gateway\" reason=\"{}\"", started.status().message());
        pid = 0;
        continue;
      }
      pid = *started;
      reopen(*started);
      log->info("msg=\"gateway started\" pid={}", *started);
    }
    if (pid_fd >= 0) ::close(pid_fd);
  }
};

std::chrono::milliseconds RestartBackoff::OnExit(std::chrono::milliseconds uptime) {
  if (uptime >= kQuickExit) {
    quick_exits_ = 0;
    return std::chrono::milliseconds(0);
  }
  ++quick_exits_;
  auto delay = kFirstDelay;
  for (int i = 1; i < quick_exits_ && delay < kMaxDelay; ++i) delay *= 2;
  return std::min(delay, kMaxDelay);
}

GatewayProcess::GatewayProcess(GatewayProcessOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(options);
  impl_->cmd = GatewayCommand(impl_->opt);
  impl_->state_dir = impl_->cmd[3];
  impl_->pid_path = impl_->state_dir + "/gateway.pid";
  impl_->status_path = impl_->state_dir + "/gateway.json";
  impl_->log_path = impl_->state_dir + "/gateway.log";
}

GatewayProcess::~GatewayProcess() { Stop(); }

Result<int> GatewayProcess::Start() {
  Impl& m = *impl_;
  int pid = m.AdoptOrRetire();
  m.adopted = pid > 0;
  if (m.adopted) {
    m.log->info("msg=\"adopted the running gateway\" pid={}", pid);
  } else {
    BERTH_ASSIGN_OR_RETURN(pid, m.Launch());
    m.log->info("msg=\"gateway started\" pid={} log={}", pid, m.log_path);
    BERTH_RETURN_IF_ERROR(m.AwaitFirstListen(pid));
  }
  m.pid = pid;
  m.stop_fd = ::eventfd(0, EFD_CLOEXEC);
  if (m.stop_fd < 0) return Internal(std::string("eventfd: ") + std::strerror(errno));
  m.watcher = std::thread([&m] { m.Watch(); });
  return pid;
}

void GatewayProcess::Stop() {
  if (!impl_->watcher.joinable()) return;
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    impl_->stopping = true;
  }
  uint64_t one = 1;
  (void)!::write(impl_->stop_fd, &one, sizeof one);
  impl_->watcher.join();
  ::close(impl_->stop_fd);
  impl_->stop_fd = -1;
}

int GatewayProcess::pid() const { return impl_->pid.load(); }
bool GatewayProcess::adopted() const { return impl_->adopted; }

Result<std::string> GatewayProcess::WaitListening(std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    std::string text = ReadText(impl_->status_path);
    Json j = Json::parse(text, nullptr, false);
    if (j.is_object() && j.value("pid", 0) == impl_->pid.load()) return text;
    if (std::chrono::steady_clock::now() >= deadline) {
      return Unavailable("the gateway did not report its listeners within " +
                         std::to_string(timeout.count()) + " ms; see " + impl_->log_path);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace berth
