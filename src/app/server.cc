#include "app/server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "api/api_server.h"
#include "api/http.h"
#include "app/gateway_process.h"
#include "auth/crypto.h"
#include "auth/secret_box.h"
#include "auth/tokens.h"
#include "egress/egress.h"
#include "builder/controller.h"
#include "core/fd_limit.h"
#include "core/log.h"
#include "core/env.h"
#include "core/netns.h"
#include "model/model.h"
#include "routing/claims.h"
#include "routing/domains.h"
#include "runtime/runtime.h"
#include "sandbox/identity.h"
#include "sandbox/sandbox.h"
#include "store/store.h"

namespace berth {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

[[noreturn]] void Fatal(const std::string& message) {
  std::fprintf(stderr, "berth server: %s\n", message.c_str());
  std::fflush(stderr);
  std::exit(1);
}

// Holds DIR/berth.lock with flock for the life of the process so two servers never share a
// data directory. The lock dies with the process, also on kill -9.
int LockDataDir(const std::string& dir) {
  std::string path = dir + "/berth.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) Fatal("cannot open " + path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {0};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "?";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    Fatal("another berth server (pid " + pid + ") is using the data directory " + dir);
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    Fatal("cannot write " + path + ": " + std::strerror(errno));
  }
  return fd;
}

// Writes `content` to `path` atomically and durably with mode `mode` (core/env.h).
Status WriteFileAtomic(const std::string& path, const std::string& content, mode_t mode) {
  return Env::Default().WriteFileAtomic(path, content, mode);
}

// First start: the administrator and the team "default", in one commit.
Status Bootstrap(Store& store, const ServerConfig& cfg, spdlog::logger& log) {
  BERTH_ASSIGN_OR_RETURN(int64_t users, store.Count(model::kUser, ""));
  if (users > 0) return Status::Ok();
  std::string password;
  bool generated = false;
  if (const char* env = std::getenv("BERTH_ADMIN_PASSWORD"); env != nullptr && *env != '\0') {
    password = env;
    if (password.size() < 8) {
      return InvalidArgument("BERTH_ADMIN_PASSWORD must be at least 8 characters",
                             "BERTH_ADMIN_PASSWORD");
    }
  } else {
    password = auth::RandomPassword();
    generated = true;
  }
  model::UserInput in;
  Json user_json = {{"name", cfg.admin_user}, {"admin", true}, {"display_name", "Administrator"}};
  BERTH_ASSIGN_OR_RETURN(in, model::ParseUser(user_json));
  BERTH_ASSIGN_OR_RETURN(in.user.password_hash, auth::HashPassword(password));
  model::Team team{"default", "Default team", {}};
  model::Member owner{cfg.admin_user, model::Role::kOwner};

  WriteBatch b;
  auto put = [&](const char* kind, const std::string& scope, const std::string& name,
                 const Json& body) {
    Op op;
    op.type = OpType::kCreate;
    op.object = Object{kind, scope, name, body.dump()};
    b.ops.push_back(std::move(op));
  };
  put(model::kUser, "", cfg.admin_user, model::ToJson(in.user, true));
  put(model::kTeam, "", "default", model::ToJson(team));
  put(model::kMember, "default", cfg.admin_user, model::ToJson(owner));
  b.audit.push_back({"berth", "", "create", "users/" + cfg.admin_user,
                     Json({{"before", nullptr}, {"after", model::ToJson(in.user, false)}}).dump()});
  b.audit.push_back({"berth", "default", "create", "team",
                     Json({{"before", nullptr}, {"after", model::ToJson(team)}}).dump()});
  // Write the generated password before the commit: if the commit fails we try again with a
  // new one next start; if the file write fails we never created an account nobody can use.
  std::string pw_file = cfg.data_dir + "/initial-admin-password";
  if (generated) BERTH_RETURN_IF_ERROR(WriteFileAtomic(pw_file, password + "\n", 0600));
  auto r = store.Commit(b);
  if (!r.ok()) return r.status();
  log.info("msg=\"first start: created administrator and team default\" user={}", cfg.admin_user);
  if (generated) {
    std::printf("berth: created administrator \"%s\" with password %s (also in %s)\n",
                cfg.admin_user.c_str(), password.c_str(), pw_file.c_str());
  } else {
    std::printf("berth: created administrator \"%s\" with the password from BERTH_ADMIN_PASSWORD\n",
                cfg.admin_user.c_str());
  }
  std::fflush(stdout);
  return Status::Ok();
}

// Decides about sandboxing (docs/security.md) by starting one: the machine either can or
// cannot, and the server says which at start. `refuse` is set when builds must be refused.
sandbox::Config SetUpSandbox(const ServerConfig& cfg, Store& store, egress::Proxy* proxy,
                             std::string* refuse, spdlog::logger& log) {
  sandbox::Config sc;
  std::error_code ec;
  const std::string data = fs::weakly_canonical(fs::absolute(cfg.data_dir), ec).string();
  sc.data_dir = data;
  Store* st = &store;
  auto disks = [&](bool filesystems) {
    sandbox::TeamDisksOptions o;
    o.data_dir = data;
    o.filesystems = filesystems;
    o.default_mb = cfg.team_disk_mb;
    o.quota_mb = [st](const std::string& team) -> int64_t {
      auto t = st->Get(model::kTeam, "", team);
      if (!t.ok()) return 0;
      auto parsed = model::ParseTeam(Json::parse(t->body, nullptr, false));
      return parsed.ok() ? parsed->quota.disk_mb : 0;
    };
    return std::make_shared<sandbox::TeamDisks>(o);
  };
  sc.disks = disks(false);
  if (cfg.sandbox == "off") {
    log.warn("msg=\"sandbox off: builds and instances run as the server's own user and can read "
             "everything it can (the data directory with its keys included); use this only when "
             "every team is trusted\"");
    return sc;
  }
  sc.exe = fs::read_symlink("/proc/self/exe", ec).string();
  sc.root = data + "/sandbox/root";
  fs::create_directories(sc.root, ec);
  // Team networks: a file per team, named after the data dir so servers on one machine never
  // share one. /run is where `ip netns` keeps its own; the namespaces do not survive a reboot.
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
  char id[17];
  std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(h));
  sc.netns_dir = std::string("/run/berth/") + id + "/netns";
  sc.system = sandbox::DefaultSystemPaths();
  for (const std::string& p : cfg.sandbox_paths) sc.system.push_back(p);
  sc.hide = {data};
  sc.team_uid = [st](const std::string& team) { return sandbox::TeamUid(*st, team); };
  // A team's network has only its loopback: the way out is the egress proxy served in it.
  sc.env = egress::ProxyEnv();
  sc.on_network = [proxy](const std::string& team, const std::string& netns) {
    return proxy->Serve(netns, team);
  };
  std::string problem;
  if (const char* why = std::getenv("BERTH_SANDBOX_UNAVAILABLE_FOR_TEST"); why && *why) {
    problem = why;  // tests of a machine that cannot sandbox, on one that can
  } else if (::geteuid() != 0) {
    problem = "the server does not run as root (sandboxes need to switch users and make namespaces)";
  } else {
    problem = sandbox::Check(sc.exe, sc.root, sandbox::UidRange{}.first - 1);
  }
  if (problem.empty()) {
    sc.enabled = true;
    sc.disks = disks(true);
    // Networks made by an earlier server (its instances still run there): their way out again.
    for (const auto& e : fs::directory_iterator(sc.netns_dir, ec)) {
      if (!IsNetns(e.path().string())) continue;
      if (Status s = proxy->Serve(e.path().string(), e.path().filename().string()); !s.ok()) {
        log.warn("msg=\"no egress proxy in a team's network\" error=\"{}\"", s.message());
      }
    }
    log.info("msg=\"builds and instances run sandboxed: one user and one network per team, "
             "namespaces, cgroups\" team_networks={}", sc.netns_dir);
    return sc;
  }
  if (cfg.sandbox == "on") Fatal("--sandbox on, but this machine cannot sandbox: " + problem);
  *refuse = "builds run only in a sandbox, and this machine cannot make one (" + problem +
            "); an administrator may start the server with --sandbox off to build without one, "
            "if every team is trusted";
  log.error("msg=\"no sandbox: builds are refused\" why=\"{}\"", problem);
  sandbox::Config plain;
  plain.data_dir = data;
  plain.disks = sc.disks;
  return plain;
}

}  // namespace

int RunServer(const ServerConfig& cfg) {
  auto start = std::chrono::steady_clock::now();
  auto log = Logger("server");
  ::signal(SIGPIPE, SIG_IGN);
  // Every connection is a descriptor: take what the hard limit allows (core/fd_limit.h).
  OpenFileLimit files = RaiseOpenFileLimit();
  log->info("msg=\"open-file limit\" soft={} hard={} raised={}", files.soft, files.hard, files.raised);
  if (files.soft > 0 && static_cast<uint64_t>(cfg.max_connections) + 256 > files.soft) {
    log->warn("msg=\"max_connections is above what the open-file limit leaves: beyond it new "
              "connections are closed at once\" max_connections={} open_file_limit={}",
              cfg.max_connections, files.soft);
  }

  std::error_code ec;
  fs::create_directories(cfg.data_dir, ec);
  if (ec) Fatal("cannot create data directory " + cfg.data_dir + ": " + ec.message());
  ::chmod(cfg.data_dir.c_str(), 0700);
  int lock_fd = LockDataDir(cfg.data_dir);
  // DATA/tmp holds what requests in flight write (uploads being received, sources fetched
  // for detection): whatever is there now was left by a crash.
  for (fs::directory_iterator it(cfg.data_dir + "/tmp", ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code rm;
    fs::remove_all(it->path(), rm);
  }
  ec.clear();

  if (Status s = auth::InitCrypto(); !s.ok()) Fatal(s.message());
  // Seals certificate keys in the store (docs/gateway.md "Control plane"); made at first start.
  auto secrets = auth::SecretBox::LoadOrCreate(cfg.data_dir + "/secret.key");
  if (!secrets.ok()) Fatal("secret key: " + secrets.status().message());
  StoreOptions so;
  so.sync_full = cfg.sync == "full";
  auto opened = OpenSqliteStore(cfg.sqlite_path, so);
  if (!opened.ok()) Fatal("cannot open the store: " + opened.status().message());
  std::unique_ptr<Store> store = std::move(opened).value();
  if (Status s = Bootstrap(*store, cfg, *log); !s.ok()) Fatal("first start failed: " + s.message());
  // Tokens stored by older versions under the bare user name (a scope a team of that name
  // shared) move to their user's own scope before anything reads them.
  if (auto moved = auth::MigrateTokenScopes(*store); !moved.ok()) {
    Fatal("cannot move tokens to their users' scopes: " + moved.status().message());
  }
  // Gateway claims whose rule is gone (left by deletes of older versions, which kept them).
  // Not fatal: the API takes a stale claim over when a rule needs its key.
  if (auto swept = routing::SweepStaleClaims(*store); !swept.ok()) {
    log->warn("msg=\"sweeping stale gateway claims failed\" error=\"{}\"", swept.status().message());
  }
  // Domains routed before they had owners get the team of their rules (docs/gateway.md).
  if (auto owned = routing::BackfillDomainOwners(*store); !owned.ok()) {
    log->warn("msg=\"recording domain owners failed\" error=\"{}\"", owned.status().message());
  }
  // The gateway's admin address ("auto": the one recorded in the data dir, or a free port),
  // and a check, before anything starts, that its listeners are not taken by another process:
  // a gateway that cannot listen would otherwise be restarted forever.
  std::string gateway_admin = cfg.gateway_admin;
  int gateway_admin_port = cfg.gateway_admin_addr.port;
  if (cfg.gateway) {
    if (gateway_admin == "auto") {
      auto resolved = ResolveAutoGatewayAdmin(cfg.data_dir, *log);
      if (!resolved.ok()) Fatal(resolved.status().message());
      gateway_admin = *resolved;
      gateway_admin_port = std::atoi(gateway_admin.substr(gateway_admin.rfind(':') + 1).c_str());
    }
    Status free = CheckGatewayListeners(
        cfg.data_dir, {{"http", cfg.http, "--http"},
                       {"https", cfg.https, "--https"},
                       {"admin", gateway_admin, "--gateway-admin"}});
    if (!free.ok()) Fatal(free.message());
    if (Status s = EnsureGatewayCredential(*store, cfg.data_dir, *log); !s.ok()) {
      Fatal("cannot set up the gateway's credential: " + s.message());
    }
  }

  // ---- the sandbox (issue #13, docs/security.md): decided once, by starting one ----
  auto proxy = egress::Proxy::Start({});
  if (!proxy.ok()) Fatal("cannot start the egress proxy: " + proxy.status().message());
  std::string refuse_builds;
  sandbox::Config sandbox_config = SetUpSandbox(cfg, *store, proxy->get(), &refuse_builds, *log);
  Json sandbox_status = {
      {"mode", cfg.sandbox},
      {"enabled", sandbox_config.enabled},
      {"problem", refuse_builds},
      {"team_networks", !sandbox_config.netns_dir.empty()},
      {"limits", {{"instance_memory_mb", cfg.sandbox_memory_mb}, {"instance_pids", cfg.sandbox_pids},
                  {"instance_tmp_mb", cfg.sandbox_tmp_mb}, {"instance_app_mb", cfg.sandbox_app_mb},
                  {"build_memory_mb", cfg.build_memory_mb}, {"build_pids", cfg.build_pids}}}};

  api::ApiOptions ao;
  ao.sandbox = sandbox_status;
  ao.team_disk = [disks = sandbox_config.disks](const std::string& team) -> std::optional<Json> {
    auto u = disks ? disks->Usage(team) : std::nullopt;
    if (!u) return std::nullopt;
    return Json{{"used_bytes", u->used_bytes}, {"size_bytes", u->size_bytes}};
  };
  ao.build_path = sandbox_config.Path();  // the doctor reports what builds and instances find
  ao.token_ttl_hours = cfg.token_ttl_hours;
  ao.stream_recheck = std::chrono::seconds(cfg.stream_recheck_s);
  ao.login_attempts = static_cast<int>(cfg.login_attempts);
  ao.data_dir = cfg.data_dir;
  ao.api_host = cfg.api_addr.host;
  ao.upload_limit = cfg.upload_limit;
  ao.disk_warn_percent = static_cast<int>(cfg.disk_warn_percent);
  ao.web_root = cfg.web_root.empty() ? DefaultWebRoot() : cfg.web_root;
  ao.domain_suffix = cfg.domain_suffix;
  ao.gateway_host = cfg.http_addr.host;
  ao.gateway_http_port = cfg.http_addr.port;
  ao.gateway_https_port = cfg.https_addr.port;
  ao.gateway_admin_port = cfg.gateway ? gateway_admin_port : 0;
  ao.secrets = std::make_shared<const auth::SecretBox>(std::move(secrets).value());
  // CPU% of instances: the runtime samples, the API reads (core/usage_sampler.h).
  auto usage = std::make_shared<UsageSampler>(UsageSamplerOptions{.cgroups = CgroupLayout::Detect()});
  ao.usage = usage;
  if (cfg.gateway) {
    Store* st = store.get();
    std::string data = cfg.data_dir;
    ao.rotate_gateway_credential = [st, data](const std::string& actor) {
      return RotateGatewayCredential(*st, data, actor);
    };
  }
  ao.source_roots = cfg.source_root_dirs;
  ao.detect_timeout_s = static_cast<int>(cfg.detect_timeout_s);
  ao.detect_per_user = static_cast<int>(cfg.detect_per_user);
  api::ApiService api(*store, SystemClock::Get(), ao);

  HttpServerOptions ho;
  ho.address = cfg.api_addr.host;
  ho.port = cfg.api_addr.port;
  ho.body_limit = static_cast<size_t>(cfg.body_limit);
  // Waiting streams are polled unwoken too, so one whose caller lost access (an expired
  // token) ends within stream_recheck_s.
  ho.stream_poll = std::min<std::chrono::milliseconds>(std::chrono::seconds(1), ao.stream_recheck);
  ho.slow_threads = static_cast<int>(cfg.detect_threads);
  ho.max_connections = static_cast<int>(cfg.max_connections);
  std::unique_ptr<HttpServer> http = NewHttpServer(ho, &api);
  int listener = store->AddListener([&http](int64_t) { http->WakeStreams(); });
  auto port = http->Start();
  if (!port.ok()) Fatal(port.status().message());
  api.SetApiPort(*port);
  api.SetReady(true);

  // ---- expired tokens: deleted every token_gc_interval_s (docs/security.md) ----
  std::mutex gc_mu;
  std::condition_variable gc_cv;
  bool gc_stop = false;  // guarded by gc_mu
  std::thread token_gc([&] {
    std::unique_lock<std::mutex> l(gc_mu);
    while (!gc_cv.wait_for(l, std::chrono::seconds(cfg.token_gc_interval_s),
                           [&] { return gc_stop; })) {
      l.unlock();
      auto swept = auth::SweepExpiredTokens(*store, UnixMillis(SystemClock::Get().Now()));
      if (!swept.ok()) {
        log->warn("msg=\"deleting expired tokens failed\" error=\"{}\"", swept.status().message());
      }
      l.lock();
    }
  });
  auto stop_token_gc = [&] {
    {
      std::lock_guard<std::mutex> g(gc_mu);
      gc_stop = true;
    }
    gc_cv.notify_all();
    if (token_gc.joinable()) token_gc.join();
  };

  // ---- builder (issue #3): builds queued versions; restarts resume them ----
  builder::BuilderOptions bo;
  bo.data_dir = cfg.data_dir;
  bo.concurrency = static_cast<int>(cfg.build_concurrency);
  bo.time_limit = std::chrono::seconds(cfg.build_timeout_s);
  bo.versions_kept = static_cast<int>(cfg.build_versions_kept);
  bo.memory_limit_mb = cfg.build_memory_mb;
  bo.source_roots = cfg.source_root_dirs;
  bo.disk_warn_percent = static_cast<int>(cfg.disk_warn_percent);
  bo.on_log = [&http] { http->WakeStreams(); };  // followed build logs
  bo.refuse_builds = refuse_builds;
  bo.sandbox = sandbox_config;
  bo.sandbox_pids = cfg.build_pids;
  builder::BuildController builder(*store, SystemClock::Get(), bo);
  if (Status s = builder.Start(); !s.ok()) Fatal("cannot start the builder: " + s.message());
  // ---- end builder ----

  // ---- local runtime (issue #4): adopt running shims, then converge components ----
  runtime::RuntimeOptions ro;
  ro.data_dir = cfg.data_dir;
  ro.on_tick = [&http] { http->WakeStreams(); };  // log tails follow files, not the store
  ro.usage = usage;
  ro.sandbox.config = sandbox_config;
  ro.sandbox.memory_mb = cfg.sandbox_memory_mb;
  ro.sandbox.pids = cfg.sandbox_pids;
  ro.sandbox.tmp_mb = cfg.sandbox_tmp_mb;
  ro.sandbox.app_mb = cfg.sandbox_app_mb;
  // "Ready" means routed (docs/gateway.md): with a gateway, operations of routed components end
  // once it serves them; 30 s is far above a snapshot swap (~0.1 s) and below a deploy's wait.
  if (cfg.gateway) ro.route_wait = std::chrono::seconds(30);
  auto rt = runtime::LocalRuntime::Start(*store, SystemClock::Get(), ro);
  if (!rt.ok()) Fatal("cannot start the runtime: " + rt.status().message());
  std::unique_ptr<runtime::LocalRuntime> runtime = std::move(rt).value();
  // ---- end local runtime ----

  std::string host = cfg.api_addr.host.find(':') != std::string::npos ? "[" + cfg.api_addr.host + "]"
                                                                       : cfg.api_addr.host;
  std::string url = "http://" + host + ":" + std::to_string(*port);
  Json info = {{"pid", ::getpid()}, {"api", url}, {"started_at", FormatTime(SystemClock::Get().Now())},
               {"sandbox", sandbox_config.enabled}, {"team_networks", sandbox_config.netns_dir}};
  std::string info_path = cfg.data_dir + "/server.json";
  if (Status s = WriteFileAtomic(info_path, info.dump() + "\n", 0644); !s.ok()) Fatal(s.message());

  // ---- gateway (issue #5): its own process, so apps stay reachable while the server is down;
  // started after server.json, where it reads the API's URL ----
  std::unique_ptr<GatewayProcess> gateway;
  if (cfg.gateway) {
    GatewayProcessOptions go;
    go.data_dir = cfg.data_dir;
    go.http = cfg.http;
    go.https = cfg.https;
    go.admin = gateway_admin;
    go.log_level = cfg.log_level;
    go.io_threads = cfg.gateway_io_threads;
    go.pin_io_threads = cfg.gateway_pin_io_threads;
    go.max_connections = cfg.gateway_max_connections;
    gateway = std::make_unique<GatewayProcess>(go);
    if (auto pid = gateway->Start(); !pid.ok()) Fatal("cannot start the gateway: " + pid.status().message());
  }
  // ---- end gateway ----
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  log->info("msg=ready api={} data={} startup_ms={}", url, cfg.data_dir, ms);
  std::printf("berth server ready: API and console at %s (data in %s)\n", url.c_str(),
              cfg.data_dir.c_str());
  if (gateway) {
    auto listening = gateway->WaitListening(std::chrono::seconds(5));
    Json g = listening.ok() ? Json::parse(*listening, nullptr, false) : Json();
    if (g.is_object()) {
      std::string http_at = g.value("http", ""), port = http_at.substr(http_at.rfind(':') + 1);
      std::printf("berth gateway (pid %d%s): apps at http://<component>.<app>.%s:%s "
                  "(HTTP %s, HTTPS %s, metrics http://%s/metrics)\n",
                  gateway->pid(), gateway->adopted() ? ", adopted" : "",
                  cfg.domain_suffix.c_str(), port.c_str(),
                  http_at.c_str(), g.value("https", "").c_str(), g.value("admin", "").c_str());
    } else {
      std::printf("berth gateway (pid %d): not listening yet: %s\n", gateway->pid(),
                  listening.status().message().c_str());
    }
  }
  std::fflush(stdout);

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  log->info("msg=stopping signal={}", sig);
  api.SetReady(false);
  if (gateway) gateway->Stop();  // the gateway keeps serving; the next server adopts it
  builder.Stop();  // running builds stay "building" and resume at the next start
  runtime->Stop();  // instances keep running under their shims; the next server adopts them
  runtime.reset();
  http->Stop();
  stop_token_gc();
  store->RemoveListener(listener);
  ::unlink(info_path.c_str());
  http.reset();
  store.reset();
  ::close(lock_fd);
  log->info("msg=stopped");
  return 0;
}

void RegisterServerCommand(CLI::App& app, int* exit_code) {
  CLI::App* cmd = app.add_subcommand("server", "Run the platform on this machine (API, store, ...)");
  auto flags = std::make_shared<std::map<std::string, std::string>>();
  auto config_file = std::make_shared<std::string>();
  cmd->add_option("--config", *config_file, "config file (key = value lines)");
  for (const SettingInfo& s : Settings()) {
    std::string flag = std::string("--") + s.key;
    for (char& c : flag) c = c == '_' ? '-' : c;
    cmd->add_option_function<std::string>(
        flag, [flags, key = std::string(s.key)](const std::string& v) { (*flags)[key] = v; },
        std::string(s.help) + " [env " + s.env + "]");
  }
  cmd->callback([flags, config_file, exit_code] {
    ServerConfig cfg;
    std::string file = *config_file;
    if (file.empty()) {
      if (const char* e = std::getenv("BERTH_SERVER_CONFIG")) file = e;
    }
    Status s = Status::Ok();
    if (!file.empty()) s = ApplyConfigFile(file, &cfg);
    if (s.ok()) s = ApplyEnvironment([](const char* k) { return std::getenv(k); }, &cfg);
    for (const auto& [key, value] : *flags) {
      if (!s.ok()) break;
      std::string flag = "--" + key;
      for (char& c : flag) c = c == '_' ? '-' : c;
      s = ApplySetting(key, value, flag, &cfg);
    }
    if (s.ok()) s = Validate(&cfg);
    if (!s.ok()) Fatal("invalid setting: " + s.message());
    SetLogLevel(cfg.log_level);
    // Block the stop signals before any thread starts, so all threads inherit the mask and
    // RunServer takes them with sigwait.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    *exit_code = RunServer(cfg);
  });
}

}  // namespace berth
