// The builder's CLI verbs (docs/cli.md): `berth detect`, `berth build`, `berth versions` and
// `berth logs --build`. Each is one REST call (docs/api.md "Builds"); following a log uses the
// streamed NDJSON form of GET .../versions/{v}/log?follow=1.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <thread>

#include "cli/client_config.h"
#include "cli/detail/commands.h"
#include "cli/detail/flags.h"
#include "cli/detail/api_errors.h"
#include "cli/detail/http_client.h"
#include "cli/detail/verb.h"
#include "cli/output.h"

namespace berth::cli {
namespace {

struct Globals {
  std::string output = "table";
  std::string server;
  std::string team;
};

Status Local(const std::string& m) { return Status(Code::kInternal, "cli", m); }

// One invocation: resolved config and API calls.
class Call {
 public:
  Call(const ClientWorld& w, const Globals& g) : w_(w), g_(g) {}
  // An invocation whose config is already resolved (commands of cli.cc that deploy).
  Call(const ClientWorld& w, const Globals& g, ClientConfig cfg) : w_(w), g_(g), cfg_(std::move(cfg)) {}

  Status Init() {
    BERTH_ASSIGN_OR_RETURN(std::string path, ClientConfigPath(w_.env));
    auto stored = LoadClientConfig(path);
    if (!stored.ok()) return Local(stored.status().message());
    cfg_ = ResolveClientConfig(*stored, w_.env, g_.server, g_.team);
    return Status::Ok();
  }

  bool json() const { return g_.output == "json"; }
  std::ostream& out() { return *w_.out; }
  std::ostream& err() { return *w_.err; }
  const ClientWorld& world() const { return w_; }
  std::string Team() const { return "/api/v1/teams/" + EncodeComponent(cfg_.team); }
  const ClientConfig& cfg() const { return cfg_; }

  Result<Json> Do(const std::string& method, const std::string& path, const Json* body = nullptr) {
    std::string text = body ? body->dump() : "";
    auto r = w_.send(method, cfg_.server, path, text, cfg_.token);
    if (!r.ok()) return Local(r.status().message());
    if (r->status < 200 || r->status >= 300) return StatusFromResponse(*r, method + " " + path);
    Json j = r->body.empty() ? Json::object() : Json::parse(r->body, nullptr, false);
    if (j.is_discarded()) return Local("the server answered " + method + " " + path + " with a body that is not JSON");
    return j;
  }

  // Follows a build log; prints lines as they come. Returns the final status ("ready", ...).
  Result<std::string> Follow(const std::string& path) {
    std::string final_status, final_message;
    HttpClientOptions opts;
    opts.read_timeout = std::chrono::seconds(60);  // the server sends heartbeats every 15 s
    auto r = RequestStream("GET", cfg_.server, path + "?follow=1", "", cfg_.token,
                           [&](std::string_view line) {
                             Json j = Json::parse(line, nullptr, false);
                             if (j.is_discarded()) return true;
                             std::string type = Str(j, "type");
                             if (type == "line") {
                               if (json()) {
                                 out() << j.dump() << "\n";
                               } else {
                                 out() << Str(j, "text") << "\n";
                               }
                               out().flush();
                             } else if (type == "end") {
                               final_status = Str(j, "status");
                               final_message = Str(j, "message");
                               if (json()) out() << j.dump() << "\n";
                               return false;
                             }
                             return true;
                           },
                           opts);
    if (!r.ok()) return Local(r.status().message());
    if (r->status < 200 || r->status >= 300) return StatusFromResponse(*r, "GET " + path);
    if (final_status.empty()) return Local("the log stream ended before the build did");
    if (final_status != "ready" && !json()) {
      err() << "build " << final_status << (final_message.empty() ? "" : ": " + final_message) << "\n";
    }
    return final_status;
  }

 private:
  const ClientWorld& w_;
  const Globals& g_;
  ClientConfig cfg_;
};

using detail::Report;

struct Shared {
  ClientWorld world;
  int* exit_code = nullptr;
  Globals g;
};

using Runner = std::function<Status(Call&)>;

CLI::App* Leaf(CLI::App& app, const std::shared_ptr<Shared>& sh, const std::string& name,
               const std::string& desc, Runner run) {
  CLI::App* cmd = app.add_subcommand(name, desc);
  cmd->add_option("-o,--output", sh->g.output, "Output format: table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->group("Global flags");
  cmd->add_option("--server", sh->g.server, "berth server URL (overrides BERTH_SERVER and the stored server)")
      ->group("Global flags");
  cmd->add_option("--team", sh->g.team, "Team (default: the one chosen with `berth team use`)")
      ->group("Global flags");
  cmd->callback([sh, run = std::move(run)] {
    Call c(sh->world, sh->g);
    Status s = c.Init();
    if (s.ok()) s = run(c);
    if (s.ok()) {
      if (*sh->exit_code != 1) *sh->exit_code = 0;
      return;
    }
    if (s.reason() == "usage") throw CLI::ValidationError(s.message(), 2);
    Report(s, *sh->world.err, sh->g.output == "json");
    *sh->exit_code = 1;
  });
  return cmd;
}

std::string Short(const std::string& artifact) {
  return artifact.rfind("sha256:", 0) == 0 ? artifact.substr(0, 19) : artifact;
}


// ---- build and deploy ---------------------------------------------------------------------

std::string Seconds(std::chrono::steady_clock::duration d) {
  double s = std::chrono::duration<double>(d).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", s);
  return buf;
}

// Where the component answers: the component's `addresses` (strings, or objects with a
// "url"/"address"), else each ready instance's loopback port.
std::vector<std::string> Addresses(const Json& comp, const Json& instances, const std::string& version) {
  std::vector<std::string> out;
  if (comp.contains("addresses") && comp["addresses"].is_array()) {
    for (const auto& a : comp["addresses"]) {
      if (a.is_string()) out.push_back(a.get<std::string>());
      else if (!Str(a, "url").empty()) out.push_back(Str(a, "url"));
      else if (!Str(a, "address").empty()) out.push_back(Str(a, "address"));
    }
    if (!out.empty()) return out;
  }
  for (const auto& i : instances.value("items", Json::array())) {
    if (Str(i, "version") != version || !i.value("ready", false)) continue;
    if (i.contains("port") && i["port"].is_number_integer() && i["port"].get<int>() > 0) {
      bool http = true;
      for (const auto& p : comp.value("ports", Json::array())) {
        if (Str(p, "protocol") != "http" && Str(p, "protocol") != "grpc" && p.value("port", 0) > 0) http = false;
        break;
      }
      // A sandboxed instance listens in its team's network, reachable from the server's
      // machine only through the gateway.
      out.push_back(std::string(http ? "http://" : "") + "127.0.0.1:" + std::to_string(i["port"].get<int>()) +
                    " (instance " + Str(i, "name") +
                    (Str(i, "netns").empty() ? "" : ", in the team's network") + ")");
    }
  }
  return out;
}

std::string EventKey(const Json& e) { return Str(e, "first_at") + "|" + Str(e, "reason") + "|" + Str(e, "message"); }

// Warning events that mean a deploy will not become ready by itself.
bool IsDeployFailure(const std::string& reason) {
  return reason == "CrashLoop" || reason == "StartFailed" || reason == "NotRunnable" ||
         reason == "OOMKilled" || reason == "StartupFailed" || reason == "ReleaseFailed";
}

Result<std::map<std::string, int64_t>> FailureEvents(Call& c, const std::string& path) {
  std::map<std::string, int64_t> seen;
  BERTH_ASSIGN_OR_RETURN(Json l, c.Do("GET", path + "/events?limit=100"));
  for (const auto& e : l.value("items", Json::array())) {
    if (IsDeployFailure(Str(e, "reason"))) seen[EventKey(e)] = e.value("count", int64_t{1});
  }
  return seen;
}

Status Deploy(Call& c, const std::string& path, const std::string& app, const std::string& component,
              const std::string& ref, int timeout_s, int* exit_code) {
  // Commands suggested in messages are complete: they name the app.
  const std::string where = component + " --app " + app;
  const auto started = std::chrono::steady_clock::now();
  const auto deadline = started + std::chrono::seconds(timeout_s);
  std::ostream& progress = c.json() ? c.err() : c.out();
  Json body = Json::object();
  if (!ref.empty()) body["ref"] = ref;
  BERTH_ASSIGN_OR_RETURN(Json v, c.Do("POST", path + "/builds", &body));
  const std::string version = Str(v, "name");
  progress << "-----> build " << version << " of " << component << " queued\n";
  progress.flush();
  BERTH_ASSIGN_OR_RETURN(std::string status, c.Follow(path + "/versions/" + EncodeComponent(version) + "/log"));
  if (status != "ready") {
    *exit_code = 1;
    BERTH_ASSIGN_OR_RETURN(Json failed, c.Do("GET", path + "/versions/" + EncodeComponent(version)));
    // The log was just printed, its last lines included: the error says what failed once,
    // without repeating them.
    std::string why = Str(failed, "message");
    why = why.substr(0, why.find("; last lines:"));
    return Status(Code::kConflict, "build_" + status,
                  "build " + version + " " + status + (why.empty() ? "" : ": " + why) +
                      " (the build log is above; `berth logs " + where + " --build " + version + "`)");
  }
  BERTH_ASSIGN_OR_RETURN(Json built, c.Do("GET", path + "/versions/" + EncodeComponent(version)));
  progress << "-----> built " << version << " (" << Short(Str(built, "artifact")) << ") in "
           << Seconds(std::chrono::steady_clock::now() - started) << "\n";

  // Deploy = the component runs the newest ready version. A component pinned to an older
  // version (after a rollback) is set back to following the newest.
  BERTH_ASSIGN_OR_RETURN(Json comp, c.Do("GET", path));
  if (!Str(comp, "version").empty() && Str(comp, "version") != version) {
    Json patch = {{"version", ""}};
    BERTH_ASSIGN_OR_RETURN(comp, c.Do("PATCH", path, &patch));
    progress << "-----> " << component << " was pinned to an older version; it now follows the newest\n";
  }
  const std::string kind = Str(comp, "kind");
  if ((kind == "job" || kind == "cronjob") && Str(comp, "desired_state") == "running") {
    // A job has no replicas to become ready: it runs the new version once (a cronjob at its
    // next firing). Say which run, and where to follow it.
    std::string how = " (`berth runs " + where + "`, `berth logs " + where + "`)";
    if (kind == "cronjob") {
      progress << "-----> " << component << " is a cronjob: " << version
               << " runs at its next firing (" << Str(comp, "schedule") << ", UTC)" << how << "\n";
    } else {
      std::string run;
      while (run.empty() && std::chrono::steady_clock::now() < deadline) {
        BERTH_ASSIGN_OR_RETURN(Json l, c.Do("GET", path + "/runs?limit=500"));
        for (const auto& r : l.value("items", Json::array())) {
          if (Str(r, "trigger") == "deploy" && Str(r, "version") == version) run = Str(r, "name");
        }
        if (run.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
      if (run.empty()) {
        *exit_code = 1;
        return Status(Code::kUnavailable, "timeout",
                      "no run of " + version + " started within " + std::to_string(timeout_s) +
                          " s (see `berth events " + where + "`)");
      }
      progress << "-----> " << component << " is a job: " << run << " runs " << version << how
               << "\n";
    }
    if (c.json()) {
      c.out() << RenderJson(
          Json{{"component", component}, {"version", version}, {"addresses", Json::array()}});
    }
    return Status::Ok();
  }
  if (Str(comp, "desired_state") != "running" || WantedInstances(comp) == 0) {
    progress << "-----> " << component << " is " << (Str(comp, "desired_state") == "running" ? "scaled to 0" : "stopped")
             << ": " << version << " will run when it is started\n";
    if (c.json()) c.out() << RenderJson(Json{{"component", component}, {"version", version}, {"addresses", Json::array()}});
    return Status::Ok();
  }
  BERTH_ASSIGN_OR_RETURN(auto failures_before, FailureEvents(c, path));
  progress << "-----> deploying " << version << "\n";
  progress.flush();
  std::string last_state;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(comp, c.Do("GET", path));
    BERTH_ASSIGN_OR_RETURN(Json l, c.Do("GET", path + "/instances?limit=500"));
    int want = WantedInstances(comp);  // every process type's instances
    int total = 0, ready = 0;
    for (const auto& i : l.value("items", Json::array())) {
      if (!IsReplica(i)) continue;
      ++total;
      if (Str(i, "version") == version && i.value("ready", false) && Str(i, "state") == "running") ++ready;
    }
    std::string state = std::to_string(ready) + " of " + std::to_string(want) + " ready at " + version;
    if (state != last_state) {
      progress << "       " << state << "\n";
      progress.flush();
      last_state = state;
    }
    bool routed = true;
    if (ready == want && total == want) {
      // "Ready" means routed: the deploy's operation ends once the gateway serves the new
      // instances (docs/gateway.md), so the address printed below answers at once.
      auto op = c.Do("GET", path + "/operation");
      if (op.ok() && Str(*op, "status") == "in_progress") {
        routed = false;
        state += ", waiting for the gateway to route it";
      } else if (op.ok() && Str(*op, "status") == "failed" &&
                 (Str(*op, "detail").find(version) != std::string::npos ||
                  Str(*op, "message").find(version) != std::string::npos)) {
        *exit_code = 1;
        return Status(Code::kUnavailable, "deploy_failed",
                      "deploy of " + version + " failed: " + Str(*op, "message") +
                          " (see `berth events " + where + "`)");
      }
    }
    if (ready == want && total == want && !routed && state != last_state) {
      progress << "       " << state << "\n";
      progress.flush();
      last_state = state;
    }
    if (ready == want && total == want && routed) {
      std::vector<std::string> where = Addresses(comp, l, version);
      progress << "-----> " << component << " runs " << version << " (" << Seconds(std::chrono::steady_clock::now() - started) << ")\n";
      if (c.json()) {
        c.out() << RenderJson(Json{{"component", component}, {"version", version}, {"addresses", where}});
      } else {
        for (const auto& a : where) c.out() << component << " answers at " << a << "\n";
        if (where.empty()) c.out() << component << " has no address (no port declared)\n";
      }
      return Status::Ok();
    }
    BERTH_ASSIGN_OR_RETURN(Json events, c.Do("GET", path + "/events?limit=100"));
    for (const auto& e : events.value("items", Json::array())) {
      if (!IsDeployFailure(Str(e, "reason"))) continue;
      auto it = failures_before.find(EventKey(e));
      // This version's release may have failed before the events were first read.
      bool this_release = Str(e, "reason") == "ReleaseFailed" &&
                          Str(e, "message").find("release command of " + version + " ") !=
                              std::string::npos;
      if (it == failures_before.end() || it->second != e.value("count", int64_t{1}) ||
          this_release) {
        *exit_code = 1;
        return Status(Code::kUnavailable, "deploy_failed",
                      "deploy of " + version + " failed: " + Str(e, "reason") + ": " + Str(e, "message") +
                          " (see `berth logs " + where + "` and `berth events " + where + "`)");
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      *exit_code = 1;
      return Status(Code::kUnavailable, "timeout",
                    "deploy of " + version + " not ready within " + std::to_string(timeout_s) + " s: " + state +
                        " (see `berth instances " + where + "` and `berth events " + where + "`)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
}

}  // namespace

Status UploadArchive(const ClientWorld& world, const ClientConfig& config, const std::string& app,
                     const std::string& component, const std::string& file) {
  std::filesystem::path p(file);
  if (p.is_relative()) p = std::filesystem::path(world.cwd) / p;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(p, ec)) return Local("archive " + p.string() + " is not a file");
  auto size = std::filesystem::file_size(p, ec);
  if (!world.upload) return Local("uploads are not available in this client");
  std::string name = p.filename().string();
  std::string path = "/api/v1/teams/" + EncodeComponent(config.team) + "/apps/" + EncodeComponent(app) +
                     "/components/" + EncodeComponent(component) + "/archive?name=" + EncodeComponent(name);
  (*world.err) << "-----> uploading " << name << " (" << size << " bytes)\n";
  auto r = world.upload("PUT", config.server, path, p.string(), config.token);
  if (!r.ok()) return Local(r.status().message());
  if (r->status < 200 || r->status >= 300) return StatusFromResponse(*r, "PUT " + path);
  return Status::Ok();
}

Status BuildAndDeploy(const ClientWorld& world, const ClientConfig& config, const DeployOptions& o,
                      int* exit_code) {
  Globals g;
  g.output = o.json ? "json" : "table";
  Call c(world, g, config);
  std::string path = c.Team() + "/apps/" + EncodeComponent(o.app) + "/components/" + EncodeComponent(o.component);
  return Deploy(c, path, o.app, o.component, o.ref, o.timeout_s, exit_code);
}

void AddBuildCommands(CLI::App& app, const ClientWorld& world, int* exit_code) {
  auto sh = std::make_shared<Shared>();
  sh->world = world;
  sh->exit_code = exit_code;
  struct Opts {
    std::string path, component, app, ref, version, language, build_command, start_command, subdir;
    bool follow = false, build = false;
  };
  auto o = std::make_shared<Opts>();
  auto comp_path = [o](Call& c) {
    return c.Team() + "/apps/" + EncodeComponent(o->app) + "/components/" + EncodeComponent(o->component);
  };

  // berth detect PATH
  CLI::App* detect = Leaf(app, sh, "detect", "Show how berth would build and start a directory, and why",
                          [o](Call& c) -> Status {
    std::filesystem::path p(o->path);
    if (p.is_relative()) p = std::filesystem::path(c.world().cwd) / p;
    Json build = Json::object();
    if (!o->language.empty()) build["language"] = o->language;
    if (!o->build_command.empty()) build["command"] = o->build_command;
    if (!o->start_command.empty()) build["start_command"] = o->start_command;
    if (!o->subdir.empty()) build["subdir"] = o->subdir;
    Json body = {{"source", {{"type", "dir"}, {"path", p.lexically_normal().string()}}}, {"build", build}};
    BERTH_ASSIGN_OR_RETURN(Json d, c.Do("POST", c.Team() + "/detect", &body));
    if (c.json()) {
      c.out() << RenderJson(d);
      return Status::Ok();
    }
    c.out() << "language:  " << Str(d, "language")
            << (Str(d, "language_version").empty() ? "" : " " + Str(d, "language_version")) << "\n";
    c.out() << "port:      " << Cell(d.value("port", Json())) << "\n";
    c.out() << "processes:\n";
    const Json processes = d.value("processes", Json::object());
    const Json reasons = d.value("reasons", Json::array());
    for (auto& [type, cmd] : processes.items()) {
      c.out() << "  " << type << ": " << Cell(cmd) << "\n";
    }
    if (!Str(d, "release").empty()) c.out() << "release:   " << Str(d, "release") << "\n";
    c.out() << "build steps:\n";
    Json steps = d.value("build_steps", Json::array());
    if (steps.empty()) c.out() << "  (none)\n";
    for (const auto& st : steps) c.out() << "  " << Cell(st) << "\n";
    c.out() << "reasons:\n";
    for (const auto& r : reasons) c.out() << "  - " << Cell(r) << "\n";
    return Status::Ok();
  });
  detect->add_option("path", o->path, "Directory with the source (on the server's machine)")->required();
  detect->add_option("--language", o->language, "Override the language");
  detect->add_option("--build-command", o->build_command, "Override the build command");
  detect->add_option("--start-command", o->start_command, "Override the start command");
  detect->add_option("--subdir", o->subdir, "Build this subdirectory of the source");

  // berth versions COMPONENT --app APP
  CLI::App* versions = Leaf(app, sh, "versions", "List a component's versions (builds), newest first",
                            [o, comp_path](Call& c) -> Status {
    Json items = Json::array();
    std::string after;
    for (int page = 0; page < 100; ++page) {
      std::string q = comp_path(c) + "/versions?limit=500" + (after.empty() ? "" : "&after=" + EncodeComponent(after));
      BERTH_ASSIGN_OR_RETURN(Json l, c.Do("GET", q));
      const Json page_items = l.value("items", Json::array());
      for (const auto& it : page_items) items.push_back(it);
      after = Str(l, "next");
      if (after.empty()) break;
    }
    std::vector<Json> sorted(items.begin(), items.end());
    std::sort(sorted.begin(), sorted.end(), [](const Json& a, const Json& b) {
      return a.value("number", int64_t{0}) > b.value("number", int64_t{0});
    });
    if (c.json()) {
      c.out() << RenderJson(Json{{"items", sorted}});
      return Status::Ok();
    }
    if (sorted.empty()) {
      c.err() << "No versions found.\n";
      return Status::Ok();
    }
    std::vector<std::vector<std::string>> rows;
    for (const Json& v : sorted) {
      std::string lang = v.contains("detect") && v["detect"].is_object() ? Str(v["detect"], "language") : "";
      rows.push_back({Str(v, "name"), Str(v, "status"), lang, Short(Str(v, "artifact")), Str(v, "start_command"),
                      Str(v, "built_at").empty() ? Str(v, "created_at") : Str(v, "built_at")});
    }
    c.out() << RenderTable({"NAME", "STATUS", "LANGUAGE", "ARTIFACT", "START COMMAND", "BUILT"}, rows);
    return Status::Ok();
  });
  versions->add_option("component", o->component, "Component name")->required();
  versions->add_option("--app", o->app, "App the component belongs to")->required();

  // berth build COMPONENT --app APP [--ref R] [-f]
  CLI::App* build = Leaf(app, sh, "build", "Build a new version of a component from its source",
                         [o, comp_path, sh](Call& c) -> Status {
    Json body = Json::object();
    if (!o->ref.empty()) body["ref"] = o->ref;
    BERTH_ASSIGN_OR_RETURN(Json v, c.Do("POST", comp_path(c) + "/builds", &body));
    std::string name = Str(v, "name");
    if (!o->follow) {
      if (c.json()) {
        c.out() << RenderJson(v);
      } else {
        c.out() << "queued build " << name << " of " << o->component
                << " (follow it with `berth logs " << o->component << " --app " << o->app
                << " --build " << name << " -f`)\n";
      }
      return Status::Ok();
    }
    if (!c.json()) c.err() << "queued build " << name << " of " << o->component << "\n";
    BERTH_ASSIGN_OR_RETURN(std::string status, c.Follow(comp_path(c) + "/versions/" + EncodeComponent(name) + "/log"));
    if (status != "ready") *sh->exit_code = 1;
    else if (!c.json()) c.err() << "built " << name << "\n";
    return Status::Ok();
  });
  build->add_option("component", o->component, "Component name")->required();
  build->add_option("--app", o->app, "App the component belongs to")->required();
  build->add_option("--ref", o->ref, "Git branch, tag or commit to build (git sources)");
  build->add_flag("-f,--follow", o->follow, "Follow the build log until the build ends (exit 1 if it fails)");

  // berth doctor
  Leaf(app, sh, "doctor", "List the toolchains the server can build with, their versions, what is missing, and how full its data disk is",
       [](Call& c) -> Status {
    BERTH_ASSIGN_OR_RETURN(Json d, c.Do("GET", "/api/v1/doctor"));
    if (c.json()) {
      c.out() << RenderJson(d);
      return Status::Ok();
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& t : d.value("toolchains", Json::array())) {
      bool found = t.value("found", false);
      rows.push_back({Str(t, "language"), Str(t, "program"), found ? Str(t, "version") : "missing",
                      found ? Str(t, "path") : "install " + Str(t, "package")});
    }
    c.out() << RenderTable({"LANGUAGE", "PROGRAM", "VERSION", "PATH / PACKAGE"}, rows);
    if (!Str(d, "install").empty()) c.out() << "\nto install what is missing: " << Str(d, "install") << "\n";
    const Json disk = d.value("disk", Json());
    if (disk.is_object()) {
      if (!Str(disk, "warning").empty()) {
        c.out() << "\nwarning: " << Str(disk, "warning") << "\n";
      } else if (disk.contains("used_percent")) {
        c.out() << "\ndata disk: " << disk.value("used_percent", 0) << "% used, "
                << disk.value("free_bytes", int64_t{0}) / (1024 * 1024) << " MiB free ("
                << Str(disk, "path") << ")\n";
      }
    }
    if (d.contains("sandbox") && d["sandbox"].is_object()) {
      const Json& sb = d["sandbox"];
      const Json lim = sb.value("limits", Json::object());
      auto n = [&](const char* k) { return std::to_string(lim.value(k, int64_t{0})); };
      if (sb.value("enabled", false)) {
        c.out() << "\nsandbox: on: builds and instances run as their team's own user, in their team's "
                   "network, seeing only their own files\n         limits per instance: "
                << n("instance_memory_mb") << " MiB memory unless set, " << n("instance_pids")
                << " tasks, /tmp " << n("instance_tmp_mb") << " MiB, /app writes " << n("instance_app_mb")
                << " MiB; per build: " << n("build_memory_mb") << " MiB, " << n("build_pids") << " tasks\n";
      } else if (Str(sb, "mode") == "off") {
        c.out() << "\nsandbox: OFF (--sandbox off): builds and instances run as the server's own user "
                   "and can read its data; only for teams you trust\n";
      } else {
        c.out() << "\nsandbox: NOT AVAILABLE: builds are refused: " << Str(sb, "problem") << "\n";
      }
    }
    return Status::Ok();
  });

  // berth webhook enable|show|disable COMPONENT --app APP
  struct HookOpts {
    std::string component, app, provider = "github", branch;
    bool rotate = false;
  };
  auto h = std::make_shared<HookOpts>();
  auto hook_path = [h](Call& c) {
    return c.Team() + "/apps/" + EncodeComponent(h->app) + "/components/" + EncodeComponent(h->component) + "/webhook";
  };
  auto print_hook = [](Call& c, const Json& w) {
    if (c.json()) {
      c.out() << RenderJson(w);
      return;
    }
    c.out() << "url:      " << (Str(w, "url").empty() ? Str(w, "path") : Str(w, "url")) << "\n"
            << "provider: " << Str(w, "provider") << "\n"
            << "branch:   " << (Str(w, "branch").empty() ? "(the git source's ref)" : Str(w, "branch")) << "\n"
            << "secret:   " << Str(w, "secret") << "\n";
  };
  CLI::App* hook = app.add_subcommand("webhook", "Let pushes to a git host build and deploy a component");
  hook->require_subcommand(1);
  CLI::App* enable = Leaf(*hook, sh, "enable", "Enable (or change) the component's webhook; prints its URL and secret",
                          [h, hook_path, print_hook](Call& c) -> Status {
    Json body = {{"provider", h->provider}, {"rotate_secret", h->rotate}};
    if (!h->branch.empty()) body["branch"] = h->branch;
    BERTH_ASSIGN_OR_RETURN(Json w, c.Do("PUT", hook_path(c), &body));
    print_hook(c, w);
    return Status::Ok();
  });
  enable->add_option("--provider", h->provider, "github (default), gitea, gitlab or generic")
      ->check(CLI::IsMember({"github", "gitea", "gitlab", "generic"}));
  enable->add_option("--branch", h->branch, "Branch whose pushes deploy (default: the git source's ref)");
  enable->add_flag("--rotate-secret", h->rotate, "Generate a new secret");
  CLI::App* show = Leaf(*hook, sh, "show", "Show the component's webhook URL and secret",
                        [hook_path, print_hook](Call& c) -> Status {
    BERTH_ASSIGN_OR_RETURN(Json w, c.Do("GET", hook_path(c)));
    print_hook(c, w);
    return Status::Ok();
  });
  CLI::App* disable = Leaf(*hook, sh, "disable", "Disable the component's webhook",
                           [h, hook_path](Call& c) -> Status {
    BERTH_ASSIGN_OR_RETURN(Json w, c.Do("DELETE", hook_path(c)));
    if (c.json()) {
      c.out() << RenderJson(w);
    } else {
      c.out() << "disabled the webhook of " << h->component << "\n";
    }
    return Status::Ok();
  });
  for (CLI::App* v : {enable, show, disable}) {
    v->add_option("component", h->component, "Component name")->required();
    v->add_option("--app", h->app, "App the component belongs to")->required();
  }

  // berth deploy COMPONENT --app APP [--source DIR | --git URL [--ref R] | --archive FILE | --ref R]
  struct DeployOpts {
    std::string component, app, source, git, ref, archive;
    int timeout_s = 300;
  };
  auto d = std::make_shared<DeployOpts>();
  CLI::App* deploy = Leaf(app, sh, "deploy", "Build a new version of a component and deploy it",
                          [d, sh](Call& c) -> Status {
    std::string path = c.Team() + "/apps/" + EncodeComponent(d->app) + "/components/" + EncodeComponent(d->component);
    std::string build_ref = d->ref;
    if (!d->archive.empty()) {
      ClientConfig cfg = c.cfg();
      BERTH_RETURN_IF_ERROR(UploadArchive(c.world(), cfg, d->app, d->component, d->archive));
    } else if (!d->source.empty() || !d->git.empty()) {
      ComponentFlags f;
      if (!d->source.empty()) f.source_dir = d->source;
      if (!d->git.empty()) f.git_url = d->git;
      if (!d->git.empty() && !d->ref.empty()) f.git_ref = d->ref, build_ref.clear();
      if (!d->ref.empty() && d->git.empty()) {
        return Status(Code::kInvalidArgument, "cli", "--ref goes with --git URL or alone (to build another ref of the git source)");
      }
      auto patch = BuildComponentBody("", f, true, c.world().cwd);
      if (!patch.ok()) return Status(Code::kInvalidArgument, "cli", patch.status().message());
      BERTH_ASSIGN_OR_RETURN(Json updated, c.Do("PATCH", path, &*patch));
      (void)updated;
    }
    return Deploy(c, path, d->app, d->component, build_ref, d->timeout_s, sh->exit_code);
  });
  deploy->add_option("component", d->component, "Component name")->required();
  deploy->add_option("--app", d->app, "App the component belongs to")->required();
  CLI::Option* dsrc = deploy->add_option("--source", d->source, "Build from this directory (on the server's machine) from now on");
  CLI::Option* dgit = deploy->add_option("--git", d->git, "Build from this git repository URL from now on");
  deploy->add_option("--ref", d->ref, "Git branch, tag or commit (with --git: kept; alone: this build only)");
  CLI::Option* darc = deploy->add_option("--archive", d->archive, "Build from this archive file from now on");
  dsrc->excludes(dgit)->excludes(darc);
  dgit->excludes(darc);
  deploy->add_option("--timeout", d->timeout_s, "Give up waiting for the build and the deploy after this many seconds (default 300)")
      ->check(CLI::Range(1, 86400));

  // berth logs COMPONENT --app APP --build [VERSION] [-f]
  // The runtime's `berth logs` (instance logs) also reads build logs with --build; this one
  // only stands in when that verb is not registered.
  bool logs_taken = !app.get_subcommands([](CLI::App* s) { return s->get_name() == "logs"; }).empty();
  if (logs_taken) return;
  CLI::App* logs = Leaf(app, sh, "logs", "Show a component's build log (--build [VERSION]; default the newest)",
                        [o, comp_path, sh](Call& c) -> Status {
    if (!o->build) return Status(Code::kInvalidArgument, "cli", "give --build [VERSION] to read a build log");
    std::string version = o->version;
    if (version.empty()) {
      BERTH_ASSIGN_OR_RETURN(Json l, c.Do("GET", comp_path(c) + "/versions?limit=500"));
      int64_t best = -1;
      const Json all = l.value("items", Json::array());
      for (const auto& v : all) {
        if (v.value("number", int64_t{0}) > best) best = v.value("number", int64_t{0}), version = Str(v, "name");
      }
      if (version.empty()) return Status(Code::kNotFound, "not_found", "component " + o->component + " has no builds yet");
    }
    std::string path = comp_path(c) + "/versions/" + EncodeComponent(version) + "/log";
    if (o->follow) {
      BERTH_ASSIGN_OR_RETURN(std::string status, c.Follow(path));
      if (status != "ready") *sh->exit_code = 1;
      return Status::Ok();
    }
    BERTH_ASSIGN_OR_RETURN(Json j, c.Do("GET", path));
    if (c.json()) {
      c.out() << RenderJson(j);
    } else {
      c.out() << Str(j, "log");
    }
    return Status::Ok();
  });
  logs->add_option("component", o->component, "Component name")->required();
  logs->add_option("--app", o->app, "App the component belongs to")->required();
  logs->add_flag("--build", o->build, "Read a build log");
  logs->add_option("version", o->version, "Version (default: the newest build)");
  logs->add_flag("-f,--follow", o->follow, "Follow the log until the build ends");
}

}  // namespace berth::cli
