#include "builder/controller.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "builder/detail/artifact.h"
#include "builder/detail/limits.h"
#include "builder/detail/process.h"
#include "builder/detail/step_record.h"
#include "builder/auto_port.h"
#include "builder/detect.h"
#include "builder/doctor.h"
#include "builder/source.h"
#include "builder/source_policy.h"
#include "core/disk.h"
#include "core/env.h"
#include "core/log.h"
#include "core/safe_fs.h"
#include "events/events.h"
#include "model/model.h"

namespace berth::builder {

namespace fs = std::filesystem;

std::string BuildLogPath(const std::string& team, const std::string& app,
                         const std::string& component, const std::string& version) {
  return "logs/builds/" + team + "/" + app + "/" + component + "/" + version + ".log";
}

namespace {

constexpr size_t kTailLines = 20;

struct Key {
  std::string team, app, component, version;
  std::string Scope() const { return team + "/" + app + "/" + component; }
  std::string Id() const { return Scope() + "/" + version; }
};

bool ParseKey(const Object& o, Key* k) {
  std::vector<std::string> p;
  size_t i = 0;
  while (i <= o.scope.size()) {
    size_t j = o.scope.find('/', i);
    if (j == std::string::npos) j = o.scope.size();
    p.push_back(o.scope.substr(i, j - i));
    i = j + 1;
  }
  if (p.size() != 3) return false;
  *k = Key{p[0], p[1], p[2], o.name};
  return true;
}

Json Parse(const Object& o) {
  Json j = Json::parse(o.body, nullptr, false);
  return j.is_object() ? j : Json::object();
}

// Visits every version in the store (team → app → component → version).
Status ForEachVersion(Store& store, const std::function<void(const Object&)>& fn) {
  BERTH_ASSIGN_OR_RETURN(auto teams, ListAll(store, model::kTeam, ""));
  for (const Object& t : teams) {
    BERTH_ASSIGN_OR_RETURN(auto apps, ListAll(store, model::kApp, t.name));
    for (const Object& a : apps) {
      BERTH_ASSIGN_OR_RETURN(auto comps, ListAll(store, model::kComponent, t.name + "/" + a.name));
      for (const Object& c : comps) {
        BERTH_ASSIGN_OR_RETURN(auto vs, ListAll(store, model::kVersion, t.name + "/" + a.name + "/" + c.name));
        for (const Object& v : vs) fn(v);
      }
    }
  }
  return Status::Ok();
}

// Looks `name` up on `p`, the PATH build steps get (sandbox::Config::Path: the same one
// instances get).
std::string FindProgram(const std::string& name, const std::string& p) {
  return Env::Default().FindProgram(name, p);
}

// True when `want` appears in `have` as a version prefix ("20" in "v20.1.0", "3.11" in
// "Python 3.11.7").
bool VersionMatches(const std::string& have, const std::string& want) {
  for (size_t pos = have.find(want); pos != std::string::npos; pos = have.find(want, pos + 1)) {
    bool left = pos == 0 || !std::isdigit(static_cast<unsigned char>(have[pos - 1]));
    size_t end = pos + want.size();
    bool right = end >= have.size() || !std::isdigit(static_cast<unsigned char>(have[end]));
    if (left && right) return true;
  }
  return false;
}

// The outcome of one build attempt.
struct Outcome {
  enum Kind { kReady, kFailed, kCancelled, kStopped } kind = kFailed;
  std::string message;
  std::string step;
  int exit_code = 0;
  std::string artifact;
  std::string commit;
  int64_t size_bytes = 0;
  Json detect = Json::object();
  std::string start_command;
};

}  // namespace

struct BuildController::Impl {
  Impl(Store& s, const Clock& c, BuilderOptions o)
      : store(s), clock(c), opts(std::move(o)), recorder(s, c), log(Logger("build")) {}

  Store& store;
  const Clock& clock;
  BuilderOptions opts;
  events::Recorder recorder;
  std::shared_ptr<spdlog::logger> log;
  std::string data;  // absolute data dir

  std::mutex mu;
  std::condition_variable cv;       // dispatcher: new head or stop
  std::condition_variable work_cv;  // workers: queue or stop
  std::condition_variable stop_cv;  // retries waiting out the store: stop
  int64_t head = 0;                 // guarded by mu
  bool stopping = false;            // guarded by mu
  std::deque<std::pair<std::string, bool>> queue;  // (id, may resume "building"); guarded by mu
  std::set<std::string> pending;    // queued or running ids; guarded by mu
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> running;  // id → cancel; guarded by mu
  std::atomic<bool> stop_flag{false};
  std::mutex artifact_mu;  // orders artifact publish + version commit against GC
  std::multiset<std::string> inflight;  // published, version not yet committed; guarded by artifact_mu
  std::atomic<int64_t> last_wake_ms{0};
  // Components deleted (with their app or team) whose build leftovers still need removing:
  // "team/app/component". Only the dispatcher touches it.
  std::set<std::string> forgotten;

  int listener = -1;
  std::thread dispatcher;
  std::vector<std::thread> workers;

  // Waits out a store that refuses a write for a while: busy (SQLITE_BUSY after its own
  // wait) or a full disk. Again(status) is true after a pause (opts.store_retry, doubling up
  // to 10 s) when `status` is such a failure and the builder is not stopping.
  class Retry {
   public:
    Retry(Impl& m, const std::string& id, const char* what) : m_(m), id_(id), what_(what),
                                                               delay_(m.opts.store_retry) {}
    bool Again(const Status& s) {
      if (s.code() != Code::kUnavailable && s.code() != Code::kInsufficientStorage) return false;
      if (tries_++ == 0) {
        m_.log->warn("msg=\"cannot record the build's {} yet; retrying\" version={} error=\"{}\"",
                     what_, id_, s.message());
      }
      std::unique_lock<std::mutex> l(m_.mu);
      if (m_.stop_cv.wait_for(l, delay_, [&] { return m_.stopping; })) return false;
      delay_ = std::min<std::chrono::milliseconds>(delay_ * 2, std::chrono::seconds(10));
      return true;
    }

   private:
    Impl& m_;
    std::string id_;
    const char* what_;
    std::chrono::milliseconds delay_;
    int tries_ = 0;
  };

  // ---- queueing --------------------------------------------------------------------------

  void Enqueue(const Key& k, bool resume) {
    std::lock_guard<std::mutex> l(mu);
    if (stopping || !pending.insert(k.Id()).second) return;
    queue.emplace_back(k.Id(), resume);
    work_cv.notify_one();
  }

  void Cancel(const std::string& id) {
    std::lock_guard<std::mutex> l(mu);
    auto it = running.find(id);
    if (it != running.end()) it->second->store(true);
  }

  void Consider(const Object& v, bool at_start) {
    Key k;
    if (v.kind != model::kVersion || !ParseKey(v, &k)) return;
    std::string status = Parse(v).value("status", "");
    if (status == "queued") Enqueue(k, false);
    else if (status == "building" && at_start) Enqueue(k, true);
    else if (status == "cancelled") Cancel(k.Id());
  }

  void Scan() {
    Status s = ForEachVersion(store, [&](const Object& v) { Consider(v, true); });
    if (!s.ok()) log->error("msg=\"scan failed\" error=\"{}\"", s.message());
  }

  // Removes what builds kept for components that were deleted: their dependency caches
  // (DATA/cache/<scope>), their build logs (DATA/logs/builds/<scope>) and the artifacts no
  // version uses any more. It waits for a cancelled build of the component to end (it may
  // still write there) and leaves alone a component created again under the same name.
  void ForgetDeletedComponents() {
    if (forgotten.empty()) return;
    bool removed = false;
    for (auto it = forgotten.begin(); it != forgotten.end();) {
      const std::string& scope = *it;
      bool busy = false;
      {
        std::lock_guard<std::mutex> l(mu);
        for (const auto& [id, cancel] : running) busy |= id.rfind(scope + "/", 0) == 0;
      }
      if (busy) {
        ++it;
        continue;
      }
      size_t slash = scope.rfind('/');
      auto again = store.Get(model::kComponent, scope.substr(0, slash), scope.substr(slash + 1));
      if (!again.ok() && again.status().code() == Code::kNotFound) {
        for (const char* root : {"/cache/", "/logs/builds/"}) {
          fs::path dir = fs::path(data + root + scope);
          std::error_code ec;
          fs::remove_all(dir, ec);
          // The app's and the team's directories go with their last component.
          for (int up = 0; up < 2; ++up) {
            dir = dir.parent_path();
            if (!fs::remove(dir, ec)) break;  // not empty (or gone): stop
          }
        }
        // A sandboxing server keeps the caches on the team's disk: teams/<team>/cache/<app>/<c>.
        {
          const size_t first = scope.find('/');
          fs::path dir = fs::path(data + "/teams/" + scope.substr(0, first) + "/cache/" + scope.substr(first + 1));
          std::error_code ec;
          fs::remove_all(dir, ec);
          fs::remove(dir.parent_path(), ec);  // the app's, when it was its last component
        }
        removed = true;
        log->info("msg=\"build caches and logs removed\" component={}", scope);
      }
      it = forgotten.erase(it);
    }
    if (removed) CollectArtifacts();
  }

  // At start: components deleted while the server was down left their directories behind.
  void FindLeftovers() {
    for (const char* root : {"/cache", "/logs/builds"}) {
      std::error_code ec;
      for (auto it = fs::recursive_directory_iterator(data + root, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it.depth() < 2) continue;
        it.disable_recursion_pending();
        if (!it->is_directory(ec)) continue;
        fs::path rel = it->path().lexically_relative(data + root);
        Object o;
        o.scope = rel.parent_path().string();
        o.name = rel.filename().string();
        if (!store.Get(model::kComponent, o.scope, o.name).ok()) {
          forgotten.insert(o.scope + "/" + o.name);
        }
      }
    }
  }

  void Dispatch() {
    int64_t cursor = store.Head();
    Scan();
    FindLeftovers();
    while (true) {
      ForgetDeletedComponents();
      {
        std::unique_lock<std::mutex> l(mu);
        cv.wait_for(l, std::chrono::seconds(1), [&] { return stopping || head > cursor; });
        if (stopping) return;
      }
      auto changes = store.ChangesSince(cursor, 500);
      if (!changes.ok()) {
        if (changes.status().code() == Code::kGone) {
          cursor = store.Head();
          Scan();
        } else {
          log->error("msg=\"change feed failed\" error=\"{}\"", changes.status().message());
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
        continue;
      }
      for (const Change& c : *changes) {
        cursor = std::max(cursor, c.revision);
        if (c.object.kind == model::kComponent && c.deleted) {
          forgotten.insert(c.object.scope + "/" + c.object.name);
          continue;
        }
        if (c.object.kind != model::kVersion) continue;
        if (c.deleted) {
          Key k;
          if (ParseKey(c.object, &k)) Cancel(k.Id());
        } else {
          Consider(c.object, false);
        }
      }
    }
  }

  void Work() {
    while (true) {
      std::pair<std::string, bool> item;
      std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);
      {
        std::unique_lock<std::mutex> l(mu);
        work_cv.wait(l, [&] { return stopping || !queue.empty(); });
        if (stopping) return;
        item = queue.front();
        queue.pop_front();
        running[item.first] = cancel;
      }
      try {
        Build(item.first, item.second, *cancel);
      } catch (const std::exception& e) {
        log->error("msg=\"build crashed\" version={} what=\"{}\"", item.first, e.what());
      }
      std::lock_guard<std::mutex> l(mu);
      running.erase(item.first);
      pending.erase(item.first);
    }
  }

  void Wake(bool force) {
    if (!opts.on_log) return;
    int64_t now = UnixMillis(clock.Now());
    int64_t last = last_wake_ms.load();
    if (force || now - last >= 100) {
      last_wake_ms.store(now);
      opts.on_log();
    }
  }

  // ---- one build -------------------------------------------------------------------------

  void Build(const std::string& id, bool resume, std::atomic<bool>& cancel) {
    Key k;
    {
      Object o;
      size_t s = id.rfind('/');
      o.scope = id.substr(0, s);
      o.name = id.substr(s + 1);
      if (!ParseKey(o, &k)) return;
    }
    std::string rel_log = BuildLogPath(k.team, k.app, k.component, k.version);
    Json body;
    for (Retry retry(*this, id, "start");;) {
      auto cur = store.Get(model::kVersion, k.Scope(), k.version);
      if (!cur.ok()) {
        if (cur.status().code() != Code::kNotFound && retry.Again(cur.status())) continue;
        return;
      }
      body = Parse(*cur);
      std::string status = body.value("status", "");
      if (!(status == "queued" || (resume && status == "building"))) return;
      body["status"] = "building";
      body["message"] = resume ? "resumed after a server restart" : "";
      body["build_log"] = rel_log;
      WriteBatch b;
      Op op;
      op.type = OpType::kUpdate;
      op.object = Object{model::kVersion, k.Scope(), k.version, body.dump()};
      op.expected_revision = cur->revision;
      b.ops.push_back(op);
      auto r = store.Commit(b);
      if (r.ok()) break;
      // A busy or full store is waited out: the version would otherwise stay queued until a
      // restart. Anything else (changed meanwhile: cancelled, deleted) the feed tells us.
      if (retry.Again(r.status())) continue;
      return;
    }
    log->info("msg=\"build started\" version={}", id);
    events::ComponentRef where{k.team, k.app, k.component};
    recorder.Record(where, events::Type::kNormal, "BuildStarted", "building " + k.version);
    if (auto disk = DiskSpaceOf(data); disk.ok() && disk->UsedPercent() >= opts.disk_warn_percent) {
      std::string m = "the disk holding the data directory " + data + " is " +
                      std::to_string(disk->UsedPercent()) + "% full (" +
                      FormatBytes(disk->free_bytes) + " free): builds, uploads and every write " +
                      "fail once it is full; free space (berth doctor shows it)";
      log->warn("msg=\"data disk nearly full\" used_percent={} free_bytes={}", disk->UsedPercent(),
                disk->free_bytes);
      recorder.Record(where, events::Type::kWarning, "DiskNearlyFull", m);
    }

    Outcome out = Run(k, body, rel_log, cancel);
    if (out.kind == Outcome::kStopped) return;  // stays "building": resumed next start
    // Events first: whoever sees the final status also finds the event that explains it.
    if (out.kind == Outcome::kReady) {
      recorder.Record(where, events::Type::kNormal, "BuildSucceeded",
                      k.version + " built: artifact sha256:" + out.artifact.substr(0, 12) + ", " +
                          std::to_string(out.size_bytes) + " bytes");
    } else if (out.kind == Outcome::kFailed) {
      recorder.Record(where, events::Type::kWarning, "BuildFailed", k.version + ": " + out.message);
    } else {
      recorder.Record(where, events::Type::kNormal, "BuildCancelled", k.version + " was cancelled");
    }

    // The artifact stays in `inflight` (safe from collection) until the result is recorded:
    // a busy or full store is waited out rather than the artifact deleted and the version left
    // "building" until a restart.
    Retry retry(*this, id, "result");
    for (int attempt = 0; attempt < 10; ++attempt) {
      std::unique_lock<std::mutex> art(artifact_mu);  // publish → commit, not with GC
      auto now = store.Get(model::kVersion, k.Scope(), k.version);
      if (!now.ok()) {
        art.unlock();
        if (now.status().code() != Code::kNotFound && retry.Again(now.status())) {
          --attempt;
          continue;
        }
        break;  // deleted meanwhile (or the builder stops: "building" resumes next start)
      }
      Json v = Parse(*now);
      std::string st = v.value("status", "");
      if (st == "cancelled" || out.kind == Outcome::kCancelled) {
        if (st != "cancelled") break;  // cancelled by a delete, nothing to record
        std::string m = v.value("message", "");
        if (m.empty()) m = "cancelled";
        if (!out.step.empty() && m.find("(during ") == std::string::npos) m += " (during " + out.step + ")";
        v["message"] = m;
      } else if (st != "building") {
        break;  // someone else decided
      } else if (out.kind == Outcome::kReady) {
        v["status"] = "ready";
        v["message"] = "";
        v["artifact"] = "sha256:" + out.artifact;
        v["start_command"] = out.start_command;
        v["detect"] = out.detect;
        v["commit"] = out.commit;
        v["size_bytes"] = out.size_bytes;
        v["built_at"] = FormatTime(clock.Now());
      } else {
        v["status"] = "failed";
        v["message"] = out.message;
        if (!out.detect.empty()) v["detect"] = out.detect;
        v["commit"] = out.commit;
      }
      v["build_log"] = rel_log;
      WriteBatch b;
      Op op;
      op.type = OpType::kUpdate;
      op.object = Object{model::kVersion, k.Scope(), k.version, v.dump()};
      op.expected_revision = now->revision;
      b.ops.push_back(op);
      if (v.value("status", "") == "ready") {
        // The automatic port goes in the commit that makes the version ready, so the
        // rollout that runs it already has the port and its default domain.
        if (auto port = AutoPortOp(k, out.detect); port) b.ops.push_back(std::move(*port));
      }
      auto r = store.Commit(b);
      if (r.ok()) break;
      if (r.status().reason() == "revision_conflict") continue;
      art.unlock();
      if (retry.Again(r.status())) {
        --attempt;
        continue;
      }
      if (!stop_flag.load()) {
        log->error("msg=\"cannot record build result\" version={} error=\"{}\"", id, r.status().message());
      }
      break;
    }
    {
      std::lock_guard<std::mutex> art(artifact_mu);
      if (auto it = inflight.find(out.artifact); it != inflight.end()) inflight.erase(it);
    }
    if (stop_flag.load()) return;  // not recorded: "building" resumes at the next start
    Wake(true);
    if (out.kind == Outcome::kReady) {
      log->info("msg=\"build ready\" version={} artifact={}", id, out.artifact);
      Retain(k);
    } else if (out.kind == Outcome::kFailed) {
      log->warn("msg=\"build failed\" version={} step=\"{}\"", id, out.step);
    }
    CollectArtifacts();
  }

  // The write that gives the component its automatic port (builder/auto_port.h) as the
  // component is now (compare-and-set on its revision: a change meanwhile fails the commit,
  // which is then tried again), or nothing.
  std::optional<Op> AutoPortOp(const Key& k, const Json& detect) {
    auto co = store.Get(model::kComponent, k.team + "/" + k.app, k.component);
    if (!co.ok()) return std::nullopt;
    Json body = Parse(*co);
    AutoPortPlan plan = PlanAutoPort(detect, body);
    if (!plan.change) return std::nullopt;
    body["ports"] = plan.ports;
    if (!model::ParseComponent(body).ok()) return std::nullopt;  // never store what reads badly
    Op w;
    w.type = OpType::kUpdate;
    w.object = Object{model::kComponent, co->scope, co->name, body.dump()};
    w.expected_revision = co->revision;
    log->info("msg=\"automatic port\" component={}/{}/{} ports={}", k.team, k.app, k.component,
              plan.ports.dump());
    return w;
  }

  // A step or a file operation that failed on a full disk rarely says so plainly (a tool's own
  // error, an exit code, a killed process): the failure names the disk first.
  std::string NameFullDisk(const std::string& msg) const {
    auto d = DiskSpaceOf(data);
    bool full = d.ok() && d->free_bytes < kDiskFullBelowBytes;
    std::string lower = msg;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!full && lower.find("no space left on device") == std::string::npos &&
        lower.find("enospc") == std::string::npos) {
      return msg;
    }
    std::string free = d.ok() ? FormatBytes(d->free_bytes) + " free" : "free space unknown";
    return "no space left on device: the disk holding the data directory " + data +
           " is full (" + free + "); free space on it and build again. " + msg;
  }

  // The sandbox of a build's steps: the tree being built at /app, the component's caches at
  // /cache (when `cache_dir` is set), a home of its own; all of it the team's user's.
  Result<sandbox::Spec> Sandbox(const Key& k, const std::string& bdir, const std::string& tree,
                                const std::string& cache_dir) {
    BERTH_ASSIGN_OR_RETURN(sandbox::Spec sb, opts.sandbox.Base(k.team, "build"));
    sandbox::GiveTree(bdir, sb.uid, /*if_top_differs=*/false);
    sb.app_dir = tree;
    sb.home = "/home/app";
    sb.binds.push_back({bdir + "/home", "/home/app", true});
    if (!cache_dir.empty()) {
      sandbox::GiveTree(cache_dir, sb.uid, /*if_top_differs=*/true);
      sb.binds.push_back({cache_dir, "/cache", true});
    }
    sb.tmp_mb = opts.sandbox_tmp_mb;
    return sb;
  }

  Outcome Run(const Key& k, const Json& version, const std::string& rel_log, std::atomic<bool>& cancel) {
    Outcome out;
    // Everything a build writes is on its team's disk (sandbox/team_disk.h): the tree, the
    // caches and the artifact it publishes; a build that writes too much fills only that.
    auto team_dir = opts.sandbox.TeamDir(k.team);
    const std::string tdir = team_dir.ok() ? *team_dir : data + "/teams/" + k.team;
    std::string bdir = tdir + "/builds/" + k.app + "_" + k.component + "_" + k.version;
    std::string src = bdir + "/src";
    std::error_code ec;
    fs::remove_all(bdir, ec);
    fs::create_directories(bdir + "/home", ec);
    // The log's place is derived from the names, and opened without following any symlink on
    // the way: nothing a build could plant makes the server write elsewhere.
    // Whatever is there (an old log, a planted link) is removed, not written through.
    (void)RemoveBeneath(data, rel_log);
    auto opened = OpenBeneath(data, rel_log, O_WRONLY | O_CREAT | O_EXCL | O_APPEND, 0644);
    if (!opened.ok()) {
      log->error("msg=\"cannot open the build log\" version={} error=\"{}\"", k.Id(),
                 opened.status().message());
    }
    UniqueFd logf = opened.ok() ? std::move(*opened) : UniqueFd();
    std::deque<std::string> tail;
    auto line = [&](const std::string& l) {
      if (logf) {
        std::string text = l + "\n";
        for (size_t done = 0; done < text.size();) {
          ssize_t n = ::write(logf.get(), text.data() + done, text.size() - done);
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) break;
          done += static_cast<size_t>(n);
        }
      }
      tail.push_back(l);
      if (tail.size() > kTailLines) tail.pop_front();
      Wake(false);
    };
    auto fail = [&](const std::string& step, const std::string& msg) {
      out.kind = Outcome::kFailed;
      out.step = step;
      out.message = NameFullDisk(msg);
      // The log shows the step's last lines just above: its closing line says what failed
      // once (the version's message and the event keep the last lines for those who did not
      // read the log).
      line("-----> build failed: " + out.message.substr(0, out.message.find("; last lines:")));
      return out;
    };
    auto finish = [&](Outcome o) {
      fs::remove_all(bdir, ec);
      return o;
    };
    auto stopped_or_cancelled = [&](const std::string& step) {
      out.step = step;
      out.kind = stop_flag.load() ? Outcome::kStopped : Outcome::kCancelled;
      line(stop_flag.load() ? "-----> interrupted: the server is stopping (the build resumes at the next start)"
                            : "-----> cancelled during " + step);
      return finish(out);
    };
    auto deadline = std::chrono::steady_clock::now() + opts.time_limit;
    line("-----> building " + k.team + "/" + k.app + "/" + k.component + " " + k.version);
    if (!opts.refuse_builds.empty()) return finish(fail("sandbox", opts.refuse_builds));
    if (!team_dir.ok()) return finish(fail("disk", "the team's disk is not available: " + team_dir.status().message()));
    const bool boxed = opts.sandbox.enabled;

    // What to build: the snapshot taken when the build was requested, else the component now.
    model::Source source;
    model::BuildSettings settings;
    const Json req = version.value("build_request", Json::object());
    if (req.contains("source") && req["source"].is_object()) {
      Json comp = {{"name", k.component}, {"source", req["source"]},
                   {"build", req.value("build", Json::object())}};
      auto c = model::ParseComponent(comp);
      if (!c.ok()) return finish(fail("source", "the build request is invalid: " + c.status().message()));
      source = c->source;
      settings = c->build;
    } else {
      auto co = store.Get(model::kComponent, k.team + "/" + k.app, k.component);
      if (!co.ok()) return finish(fail("source", "component " + k.component + " not found"));
      auto c = model::ParseComponent(Parse(*co));
      if (!c.ok()) return finish(fail("source", "the component is invalid: " + c.status().message()));
      source = c->source;
      settings = c->build;
    }

    // 1. Source. Checked again here (the API checked it when it was written): a source stored
    // before the rules, or a root removed since, must not be built.
    Status allowed = CheckSourceAccess(source, SourcePolicy{opts.source_roots, data},
                                       /*platform_admin=*/true,
                                       UploadsDir(data, k.team, k.app, k.component));
    if (!allowed.ok()) return finish(fail("source", allowed.message()));
    SourceLimits limits{opts.max_source_bytes, opts.max_source_files,
                        std::min<std::chrono::seconds>(opts.time_limit, std::chrono::seconds(600))};
    auto fetched = FetchSource(source, src, limits, line, cancel);
    if (cancel.load()) return stopped_or_cancelled("source");
    if (!fetched.ok()) return finish(fail("source", "fetching the source failed: " + fetched.status().message()));
    out.commit = fetched->commit;

    // 2. Detection.
    auto where = ResolveSubdir(src, settings.subdir);
    if (!where.ok()) return finish(fail("detect", where.status().message()));
    auto det = Detect(*where, settings);
    if (!det.ok()) return finish(fail("detect", "detection failed: " + det.status().message()));
    Detection& d = *det;
    // Zero-config routing: whether the component gets an automatic port, said with the
    // reasons (builder/auto_port.h); the port itself is written with the result below.
    if (auto co = store.Get(model::kComponent, k.team + "/" + k.app, k.component); co.ok()) {
      d.reasons.push_back(PlanAutoPort(d, Parse(*co)).reason);
    }
    out.detect = ToJson(d);
    out.detect["commit"] = out.commit;
    line("-----> detected " + d.language + (d.language_version.empty() ? "" : " " + d.language_version));
    for (const std::string& r : d.reasons) line("       " + r);

    // 3. Toolchain.
    std::vector<std::string> seen;
    for (const Tool& t : d.tools) {
      if (std::find(seen.begin(), seen.end(), t.program) != seen.end()) continue;
      seen.push_back(t.program);
      std::string path = FindProgram(t.program, opts.sandbox.Path());
      if (path.empty()) {
        return finish(fail("toolchain", "the build needs `" + t.program + "`, which is not installed on the "
                                        "server: install the Debian package " + t.package +
                                        " (apt-get install " + t.package + ")"));
      }
      if (!t.version_args.empty()) {
        std::string ver;
        std::string cmd = detail::ShellQuote(path);
        for (const std::string& a : t.version_args) cmd += " " + detail::ShellQuote(a);
        detail::RunSpec spec{cmd, bdir, {"PATH=" + opts.sandbox.Path(), "HOME=" + bdir + "/home"},
                             std::chrono::steady_clock::now() + std::chrono::seconds(30)};
        if (boxed) {
          auto box = Sandbox(k, bdir, *where, "");
          if (!box.ok()) return finish(fail("sandbox", box.status().message()));
          spec.sandbox = std::move(box).value();
          spec.sandbox_exe = opts.sandbox.exe;
          spec.cwd = "/app";
          spec.env = {"PATH=" + opts.sandbox.Path(), "HOME=/home/app", "LANG=C.UTF-8"};
        }
        auto r = detail::RunShell(spec, [&](const std::string& l) { if (ver.empty()) ver = l; }, cancel);
        line("-----> using " + t.program + (ver.empty() ? "" : ": " + ver));
        if (&t == &d.tools.front() && !d.language_version.empty() && !VersionMatches(ver, d.language_version)) {
          return finish(fail("toolchain", "build.language_version asks for " + d.language + " " +
                                              d.language_version + " but the server has " +
                                              (ver.empty() ? "an unknown version" : ver) +
                                              ": install it or clear build.language_version"));
        }
      }
    }

    // 4. Caches and environment.
    std::string cache_dir = tdir + "/cache/" + k.app + "/" + k.component;
    fs::create_directories(cache_dir, ec);
    // Inside a sandbox the caches are at /cache and the home at /home/app.
    const std::string cache = boxed ? "/cache" : cache_dir;
    std::vector<std::string> env = {
        // the same PATH instances get; the doctor reports the tools found on it
        "PATH=" + opts.sandbox.Path(),
        "HOME=" + (boxed ? std::string("/home/app") : bdir + "/home"),
        "LANG=C.UTF-8",
        "CI=true",
        "BERTH_BUILD=1",
        "npm_config_cache=" + cache + "/npm",
        "npm_config_update_notifier=false",
        "npm_config_fund=false",
        "npm_config_audit=false",
        "YARN_CACHE_FOLDER=" + cache + "/yarn",
        // yarn 2+ and pnpm keep their stores in the component's cache too (npx fetches them
        // into npm_config_cache, detect.cc).
        "YARN_GLOBAL_FOLDER=" + cache + "/yarn-berry",
        "PIP_CACHE_DIR=" + cache + "/pip",
        "PIP_DISABLE_PIP_VERSION_CHECK=1",
        "GOCACHE=" + cache + "/go-build",
        "GOMODCACHE=" + cache + "/go-mod",
        "GOPATH=" + cache + "/go",
        "GOFLAGS=-modcacherw",
        "MAVEN_OPTS=-Dmaven.repo.local=" + cache + "/m2",
        "GRADLE_USER_HOME=" + cache + "/gradle",
        "COMPOSER_CACHE_DIR=" + cache + "/composer",
        "BUNDLE_USER_CACHE=" + cache + "/bundle",
    };
    // pnpm reads its store from npm's config variables, and npm warns about any key it does
    // not know ("Unknown env config store-dir"): only a pnpm build gets it.
    for (const std::string& step : d.build_steps) {
      if (step.find("pnpm") != std::string::npos) {
        env.push_back("npm_config_store_dir=" + cache + "/pnpm-store");
        break;
      }
    }
    for (const std::string& e : opts.sandbox.env) {
      env.push_back(e);
      // The egress proxy, spelled as yarn (1 reads npm's config, 4 its own) and npm want it:
      // not every package manager reads HTTPS_PROXY.
      if (e.rfind("HTTPS_PROXY=", 0) == 0 || e.rfind("HTTP_PROXY=", 0) == 0) {
        const bool https = e[4] == 'S';
        const std::string url = e.substr(e.find('=') + 1);
        env.push_back(std::string(https ? "npm_config_https_proxy=" : "npm_config_proxy=") + url);
        env.push_back(std::string(https ? "YARN_HTTPS_PROXY=" : "YARN_HTTP_PROXY=") + url);
      }
    }
    std::string nm_cache = cache_dir + "/node_modules";
    std::string nm = *where + "/node_modules";
    if (d.cache_kind == "node" && fs::is_directory(nm_cache, ec) && !fs::exists(nm, ec)) {
      line("-----> restoring node_modules from the component's cache");
      fs::copy(nm_cache, nm, fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
      if (ec) {
        line("       (cache not usable: " + ec.message() + ")");
        fs::remove_all(nm, ec);
      }
    }

    // 5. Build steps, all inside one memory limit.
    // The pid keeps two servers on one machine (tests) from sharing a cgroup.
    detail::BuildMemoryLimit memory(k.team + "_" + k.app + "_" + k.component + "_" + k.version + "_" +
                                        std::to_string(::getpid()),
                                    opts.memory_limit_mb, CgroupLayout::Detect(),
                                    boxed ? opts.sandbox_pids : 0);
    if (!d.build_steps.empty() && !memory.Describe().empty()) line("-----> " + memory.Describe());
    std::optional<sandbox::Spec> box;
    if (boxed) {
      auto b = Sandbox(k, bdir, *where, cache_dir);
      if (!b.ok()) return finish(fail("sandbox", b.status().message()));
      box = std::move(b).value();
      box->cgroup_procs = memory.ProcsFiles();
      line("-----> in a sandbox: user " + std::to_string(box->uid) + ", " +
           (box->netns.empty() ? std::string("the host's network") : "the team's network"));
    }
    for (size_t i = 0; i < d.build_steps.size(); ++i) {
      const std::string& cmd = d.build_steps[i];
      std::string step = "step " + std::to_string(i + 1) + "/" + std::to_string(d.build_steps.size()) + " `" + cmd + "`";
      line("-----> " + step);
      tail.clear();  // "last lines" are the step's own output
      // Recorded while it runs, so a server started after a crash of this one ends it.
      detail::StepRecord record(data + "/build-steps", k.team + "_" + k.app + "_" + k.component + "_" + k.version);
      detail::RunSpec spec{memory.Wrap(cmd), *where, env, deadline};
      spec.env.push_back(record.EnvEntry());
      if (box) {
        spec.command = cmd;  // the sandbox joins the cgroup itself
        spec.cwd = "/app";
        spec.sandbox = box;
        spec.sandbox_exe = opts.sandbox.exe;
      }
      spec.disk_watch = data;
      auto r = detail::RunShell(spec, line, cancel, [&record](int pgid) { record.Started(pgid); });
      if (!r.ok()) return finish(fail(step, "cannot run " + step + ": " + r.status().message()));
      if (r->cancelled) return stopped_or_cancelled(step);
      if (r->disk_full) return finish(fail(step, step + " was stopped: no space left on device"));
      if (r->timed_out) {
        return finish(fail(step, step + " was stopped: the build took longer than the time limit of " +
                                     std::to_string(opts.time_limit.count()) + " s"));
      }
      if (r->exit_code != 0) {
        out.exit_code = r->exit_code;
        std::string last;
        for (const std::string& l : tail) last += l + "\n";
        std::string why = r->signal ? "was killed by signal " + std::to_string(r->signal)
                                    : "failed with exit code " + std::to_string(r->exit_code);
        // The kernel's OOM killer ends the step with SIGKILL (the shell then exits 137).
        bool killed = r->signal == SIGKILL || r->exit_code == 128 + SIGKILL;
        if (killed && memory.OomKilledSinceLastCheck()) {
          why += " (out of memory: it hit the build memory limit of " + std::to_string(opts.memory_limit_mb) +
                 " MiB; raise build_memory_mb)";
        }
        return finish(fail(step, step + " " + why + "; last lines:\n" + last));
      }
    }
    if (d.build_steps.empty()) line("-----> no build steps");

    // 6. Save node_modules for the next build.
    // A real directory only: a node_modules the build replaced by a link is not followed.
    if (d.cache_kind == "node" && fs::symlink_status(nm, ec).type() == fs::file_type::directory) {
      fs::remove_all(nm_cache + ".new", ec);
      fs::copy(nm, nm_cache + ".new", fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
      if (!ec) {
        fs::remove_all(nm_cache, ec);
        fs::rename(nm_cache + ".new", nm_cache, ec);
      }
    }

    // 7. Publish the artifact.
    Json config = {{"processes", d.processes}, {"start_command", d.StartCommand()}, {"env", d.env},
                   {"port", d.port}, {"release", d.release}, {"workdir", "app"}};
    // A sandboxed artifact belongs to its team's user (its instances write over it through an
    // overlay as that user): the owner is part of what it is, so teams never share one.
    if (box) config["uid"] = box->uid;
    std::string config_text = config.dump(2) + "\n";
    auto digest = detail::DigestTree(*where, config_text);
    if (!digest.ok()) return finish(fail("artifact", digest.status().message()));
    {
      std::lock_guard<std::mutex> art(artifact_mu);
      std::string final_dir = tdir + "/artifacts/" + digest->hex;
      fs::create_directories(tdir + "/artifacts", ec);
      inflight.insert(digest->hex);
      if (fs::exists(final_dir, ec)) {
        line("-----> the same artifact exists already: sha256:" + digest->hex);
      } else {
        std::string tmp = tdir + "/artifacts/.tmp-" + k.app + "_" + k.component + "_" + k.version;
        fs::remove_all(tmp, ec);
        fs::create_directories(tmp, ec);
        fs::rename(*where, tmp + "/app", ec);
        if (ec) return finish(fail("artifact", "cannot move the build to " + tmp + ": " + ec.message()));
        {
          std::ofstream cfg(tmp + "/config.json");
          cfg << config_text;
          cfg.close();
          if (!cfg) {
            fs::remove_all(tmp, ec);
            return finish(fail("artifact", "cannot write the artifact's config.json in " + tmp));
          }
        }
        fs::rename(tmp, final_dir, ec);
        if (ec) return finish(fail("artifact", "cannot publish the artifact: " + ec.message()));
        line("-----> artifact sha256:" + digest->hex + " (" + std::to_string(digest->files) + " files, " +
             std::to_string(digest->size_bytes) + " bytes)");
      }
    }
    out.kind = Outcome::kReady;
    out.artifact = digest->hex;
    out.size_bytes = digest->size_bytes;
    out.start_command = d.StartCommand();
    line("-----> ready: start command `" + out.start_command + "`");
    return finish(out);
  }

  // ---- retention and garbage collection --------------------------------------------------

  void Retain(const Key& k) {
    if (opts.versions_kept <= 0) return;
    auto vs = ListAll(store, model::kVersion, k.Scope());
    if (!vs.ok()) return;
    std::string pinned;
    if (auto c = store.Get(model::kComponent, k.team + "/" + k.app, k.component); c.ok()) {
      pinned = Parse(*c).value("version", "");
    }
    std::vector<std::pair<int64_t, const Object*>> ready;
    for (const Object& o : *vs) {
      Json j = Parse(o);
      if (j.value("status", "") == "ready") ready.emplace_back(j.value("number", int64_t{0}), &o);
    }
    std::sort(ready.begin(), ready.end(), [](auto& a, auto& b) { return a.first > b.first; });
    WriteBatch b;
    std::vector<std::string> logs;  // derived from the names, never the stored build_log
    for (size_t i = static_cast<size_t>(opts.versions_kept); i < ready.size(); ++i) {
      const Object& o = *ready[i].second;
      if (o.name == pinned) continue;
      Op op;
      op.type = OpType::kDelete;
      op.object = Object{model::kVersion, o.scope, o.name};
      op.expected_revision = o.revision;
      b.ops.push_back(op);
      logs.push_back(BuildLogPath(k.team, k.app, k.component, o.name));
      Json before = Parse(o);
      b.audit.push_back({"berth-builder", k.team, "delete",
                         "apps/" + k.app + "/components/" + k.component + "/versions/" + o.name,
                         Json({{"before", before}, {"after", nullptr},
                               {"why", "only the newest " + std::to_string(opts.versions_kept) +
                                           " ready versions are kept"}}).dump()});
    }
    if (b.ops.empty()) return;
    auto r = store.Commit(b);
    if (!r.ok()) {
      log->warn("msg=\"retention skipped\" component={} error=\"{}\"", k.Scope(), r.status().message());
      return;
    }
    std::error_code ec;
    for (const std::string& l : logs) {
      Status removed = RemoveBeneath(data, l);
      if (!removed.ok()) log->warn("msg=\"cannot remove a build log\" log={} error=\"{}\"", l, removed.message());
    }
    log->info("msg=\"old versions removed\" component={} count={}", k.Scope(), b.ops.size());
  }

  void CollectArtifacts() {
    std::lock_guard<std::mutex> art(artifact_mu);
    std::set<std::string> used;
    Status s = ForEachVersion(store, [&](const Object& v) {
      std::string a = Parse(v).value("artifact", "");
      if (a.rfind("sha256:", 0) == 0) used.insert(a.substr(7));
    });
    if (!s.ok()) return;  // never delete on a partial view
    for (const std::string& root : ArtifactRoots()) {
      std::error_code ec;
      for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
        std::string n = it->path().filename().string();
        if (n.size() != 64 || n.find_first_not_of("0123456789abcdef") != std::string::npos) continue;
        if (used.count(n) || inflight.count(n)) continue;
        std::error_code rm;
        fs::remove_all(it->path(), rm);
        log->info("msg=\"artifact removed\" artifact={}", n);
      }
    }
  }

  // DATA/artifacts (artifacts of earlier servers) and every team's artifacts/.
  std::vector<std::string> ArtifactRoots() const {
    std::vector<std::string> roots = {data + "/artifacts"};
    std::error_code ec;
    for (fs::directory_iterator it(data + "/teams", ec), end; !ec && it != end; it.increment(ec)) {
      roots.push_back(it->path().string() + "/artifacts");
    }
    return roots;
  }
};

BuildController::BuildController(Store& store, const Clock& clock, BuilderOptions options)
    : impl_(std::make_unique<Impl>(store, clock, std::move(options))) {}

BuildController::~BuildController() { Stop(); }

Status BuildController::Start() {
  Impl& m = *impl_;
  if (m.opts.data_dir.empty()) return InvalidArgument("the builder needs a data directory", "data");
  if (m.opts.concurrency < 1 || m.opts.concurrency > 64) {
    return InvalidArgument("build concurrency must be 1..64", "build_concurrency");
  }
  if (m.opts.time_limit.count() < 1) return InvalidArgument("build time limit must be positive", "build_timeout_s");
  std::error_code ec;
  m.data = fs::absolute(m.opts.data_dir, ec).lexically_normal().string();
  while (m.data.size() > 1 && m.data.back() == '/') m.data.pop_back();
  for (const char* d : {"/teams", "/logs/builds"}) {
    fs::create_directories(m.data + d, ec);
    if (ec) return Internal("cannot create " + m.data + d + ": " + ec.message());
  }
  if (m.opts.sandbox.data_dir.empty()) m.opts.sandbox.data_dir = m.data;
  // Leftovers of a build interrupted by a crash: its steps may still run (and write into
  // the builds directories) — end them first; older servers built in DATA/builds.
  detail::KillLeftoverSteps(m.data + "/build-steps", *m.log);
  std::vector<std::string> build_roots = {m.data + "/builds"};
  for (fs::directory_iterator it(m.data + "/teams", ec), end; !ec && it != end; it.increment(ec)) {
    build_roots.push_back(it->path().string() + "/builds");
  }
  for (const std::string& root : build_roots) {
    for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code rm;
      fs::remove_all(it->path(), rm);
    }
  }
  for (const std::string& root : m.ArtifactRoots()) {
    for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().filename().string().rfind(".tmp-", 0) == 0) {
        std::error_code rm;
        fs::remove_all(it->path(), rm);
      }
    }
  }
  m.head = m.store.Head();
  m.listener = m.store.AddListener([&m](int64_t head) {
    std::lock_guard<std::mutex> l(m.mu);
    m.head = std::max(m.head, head);
    m.cv.notify_all();
  });
  for (int i = 0; i < m.opts.concurrency; ++i) m.workers.emplace_back([&m] { m.Work(); });
  m.dispatcher = std::thread([&m] { m.Dispatch(); });
  m.log->info("msg=\"builder started\" concurrency={} time_limit_s={} versions_kept={}", m.opts.concurrency,
              m.opts.time_limit.count(), m.opts.versions_kept);
  return Status::Ok();
}

void BuildController::Stop() {
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> l(m.mu);
    if (m.stopping && !m.dispatcher.joinable()) return;
    m.stopping = true;
    m.stop_flag = true;
    for (auto& [id, c] : m.running) c->store(true);
    m.cv.notify_all();
    m.work_cv.notify_all();
    m.stop_cv.notify_all();
  }
  if (m.listener >= 0) {
    m.store.RemoveListener(m.listener);
    m.listener = -1;
  }
  if (m.dispatcher.joinable()) m.dispatcher.join();
  for (auto& w : m.workers) {
    if (w.joinable()) w.join();
  }
  m.workers.clear();
}

int BuildController::PendingForTest() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return static_cast<int>(impl_->pending.size());
}

}  // namespace berth::builder
