// The verbs Heroku and Dokku users reach for first (docs/cli.md "Heroku habits"):
//   berth config get [KEY] --component C --app A          (every variable, or one value)
//   berth config set KEY=VALUE... --component C --app A    (one change, one rolling update)
//   berth config unset KEY... --component C --app A
//   berth releases COMPONENT --app A                      (the versions: when, what, who)
//   berth ps --app A                                      (components, their instances, state)
//   berth open COMPONENT --app A                          (its URL; a browser where one can open)
//   berth git-url COMPONENT --app A                       (where `git push` deploys it)
//   berth git-pre-receive (hidden)                        (the push repositories' hook)
// They are views over the component API (docs/api.md): config is the component's `env`, a
// change is one JSON merge patch, so the runtime rolls the instances once per command.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "cli/detail/api_errors.h"
#include "cli/detail/commands.h"
#include "cli/detail/flags.h"
#include "cli/detail/http_client.h"
#include "cli/detail/verb.h"
#include "cli/output.h"

namespace berth::cli {
namespace {

using detail::Call;
using detail::Leaf;
using detail::Shared;

Status Usage(std::string m) { return Status(Code::kInvalidArgument, "usage", std::move(m)); }

// ---- config ------------------------------------------------------------------------------

struct ConfigOpts {
  std::string app, component;
  std::vector<std::string> args;  // KEY=VALUE (set), KEY (unset, get)
};

void AddConfigTarget(CLI::App* cmd, ConfigOpts* o) {
  cmd->add_option("--component", o->component, "Component whose environment it is")->required();
  cmd->add_option("--app", o->app, "App the component belongs to")->required();
}

// "rolling out web (update: set FOO, BAR; `berth wait web --app shop --operation` waits)".
std::string RolloutLine(const Json& comp, const ConfigOpts& o, const std::string& what) {
  std::string line = what + " on " + o.component;
  bool runs = Str(comp, "desired_state") == "running" && comp.value("replicas", 0) > 0 &&
              Str(comp, "kind") != "job" && Str(comp, "kind") != "cronjob";
  if (runs) {
    line += "; its instances are replaced once, one at a time (`berth wait " + o.component +
            " --app " + o.app + " --operation` waits for it)";
  } else {
    line += "; it applies from the next start or run";
  }
  return line;
}

std::string JoinKeys(const std::vector<std::string>& keys) {
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out;
}

void AddConfig(CLI::App& app, const std::shared_ptr<Shared>& sh) {
  CLI::App* noun = app.add_subcommand(
      "config", "Read and change a component's environment variables (Heroku's config vars)");
  noun->require_subcommand(1);

  auto g = std::make_shared<ConfigOpts>();
  CLI::App* get = Leaf(*noun, sh, "get", "Print every variable, or the value of KEY",
                       [g](Call& c) -> Status {
    if (g->args.size() > 1) return Usage("config get takes at most one KEY");
    BERTH_ASSIGN_OR_RETURN(Json comp, c.Do("GET", c.ComponentPath(g->app, g->component)));
    Json env = comp.value("env", Json::object());
    if (!env.is_object()) env = Json::object();
    if (g->args.empty()) {
      if (c.json()) {
        c.out() << RenderJson(env);
        return Status::Ok();
      }
      std::vector<std::vector<std::string>> rows;
      for (auto& [k, v] : env.items()) rows.push_back({k, Cell(v)});
      if (rows.empty()) {
        c.err() << g->component << " has no config vars (set one with `berth config set KEY=VALUE "
                << "--component " << g->component << " --app " << g->app << "`)\n";
        return Status::Ok();
      }
      c.out() << RenderTable({"KEY", "VALUE"}, rows);
      return Status::Ok();
    }
    const std::string& key = g->args[0];
    if (!env.contains(key)) {
      return Status(Code::kNotFound, "not_found",
                    key + " is not set on " + g->component + " (`berth config get --component " +
                        g->component + " --app " + g->app + "` lists what is)");
    }
    if (c.json()) {
      c.out() << RenderJson(Json{{key, env[key]}});
    } else {
      c.out() << Cell(env[key]) << "\n";
    }
    return Status::Ok();
  });
  AddConfigTarget(get, g.get());
  get->add_option("key", g->args, "The variable (default: all of them)");

  auto st = std::make_shared<ConfigOpts>();
  CLI::App* set = Leaf(*noun, sh, "set",
                       "Set variables (KEY=VALUE ...) in one change: the instances roll once",
                       [st](Call& c) -> Status {
    Json env = Json::object();
    std::vector<std::string> keys;
    for (const std::string& a : st->args) {
      auto e = ParseEnvAssignment(a, false);
      if (!e.ok()) return Usage(e.status().message());
      if (!env.contains(e->key)) keys.push_back(e->key);
      env[e->key] = *e->value;
    }
    Json body = {{"env", env}};
    BERTH_ASSIGN_OR_RETURN(Json comp,
                           c.Do("PATCH", c.ComponentPath(st->app, st->component), &body));
    if (c.json()) {
      c.out() << RenderJson(comp);
    } else {
      c.out() << RolloutLine(comp, *st, "set " + JoinKeys(keys)) << "\n";
    }
    return Status::Ok();
  });
  AddConfigTarget(set, st.get());
  set->add_option("assignments", st->args, "KEY=VALUE (one or more)")->required();

  auto un = std::make_shared<ConfigOpts>();
  CLI::App* unset = Leaf(*noun, sh, "unset", "Remove variables (KEY ...) in one change",
                         [un](Call& c) -> Status {
    std::string path = c.ComponentPath(un->app, un->component);
    BERTH_ASSIGN_OR_RETURN(Json comp, c.Do("GET", path));
    Json env = comp.value("env", Json::object());
    Json patch = Json::object();
    std::vector<std::string> gone, missing;
    for (const std::string& k : un->args) {
      if (k.find('=') != std::string::npos) {
        return Usage("config unset takes KEY names, not \"" + k + "\"");
      }
      if (env.is_object() && env.contains(k)) {
        if (!patch.contains(k)) gone.push_back(k);
        patch[k] = nullptr;
      } else {
        missing.push_back(k);
      }
    }
    if (gone.empty()) {
      return Status(Code::kNotFound, "not_found",
                    JoinKeys(missing) + (missing.size() == 1 ? " is" : " are") + " not set on " +
                        un->component + ": nothing changed");
    }
    Json body = {{"env", patch}};
    BERTH_ASSIGN_OR_RETURN(comp, c.Do("PATCH", path, &body));
    if (c.json()) {
      c.out() << RenderJson(comp);
    } else {
      c.out() << RolloutLine(comp, *un, "unset " + JoinKeys(gone)) << "\n";
      if (!missing.empty()) c.err() << "(" << JoinKeys(missing) << " was not set)\n";
    }
    return Status::Ok();
  });
  AddConfigTarget(unset, un.get());
  unset->add_option("keys", un->args, "KEY (one or more)")->required();
}

// ---- releases ----------------------------------------------------------------------------

struct Target {
  std::string component, app;
};

void AddTarget(CLI::App* cmd, Target* t) {
  cmd->add_option("component", t->component, "Component name")->required();
  cmd->add_option("--app", t->app, "App the component belongs to")->required();
}

Result<std::vector<Json>> AllItems(Call& c, const std::string& path) {
  BERTH_ASSIGN_OR_RETURN(Json all, c.All(path));
  std::vector<Json> out;
  for (auto& i : all["items"]) out.push_back(std::move(i));
  return out;
}

// What a version is made of, for people: "git https://…/shop.git main @a1b2c3d",
// "dir /srv/shop", "archive shop.tar.gz", "push to main @a1b2c3d" (a webhook).
std::string What(const Json& v) {
  const Json req = v.value("build_request", Json::object());
  const Json src = req.is_object() ? req.value("source", Json::object()) : Json::object();
  std::string commit = Str(v, "commit");
  std::string at = commit.empty() ? "" : " @" + commit.substr(0, 7);
  const Json trigger = req.is_object() ? req.value("trigger", Json::object()) : Json::object();
  if (trigger.is_object() && !Str(trigger, "webhook").empty()) {
    // A push the git host announced: {"webhook": "github", "branch", "commit"}.
    if (at.empty() && !Str(trigger, "commit").empty()) at = " @" + Str(trigger, "commit").substr(0, 7);
    return Str(trigger, "webhook") + " push" +
           (Str(trigger, "branch").empty() ? "" : " to " + Str(trigger, "branch")) + at;
  }
  std::string type = Str(src, "type");
  if (type == "git") {
    return "git " + Str(src, "url") + (Str(src, "ref").empty() ? "" : " " + Str(src, "ref")) + at;
  }
  if (type == "dir") return "dir " + Str(src, "path");
  if (type == "archive") {
    return "archive " + (Str(src, "name").empty() ? Str(src, "path") : Str(src, "name"));
  }
  if (!type.empty()) return type;
  // A version made without a build (POST .../versions): its start command says what it is.
  return Str(v, "start_command").empty() ? "-" : "start: " + Str(v, "start_command");
}

void AddReleases(CLI::App& app, const std::shared_ptr<Shared>& sh) {
  auto t = std::make_shared<Target>();
  CLI::App* cmd = Leaf(app, sh, "releases",
                       "A component's versions, newest first: when, what, who, which one runs",
                       [t](Call& c) -> Status {
    std::string path = c.ComponentPath(t->app, t->component);
    BERTH_ASSIGN_OR_RETURN(Json comp, c.Do("GET", path));
    BERTH_ASSIGN_OR_RETURN(std::vector<Json> versions, AllItems(c, path + "/versions"));
    BERTH_ASSIGN_OR_RETURN(std::vector<Json> instances, AllItems(c, path + "/instances"));
    std::sort(versions.begin(), versions.end(), [](const Json& a, const Json& b) {
      return a.value("number", int64_t{0}) > b.value("number", int64_t{0});
    });
    // What runs: the versions of the instances; before any runs, the pinned or newest ready.
    std::set<std::string> running;
    for (const Json& i : instances) running.insert(Str(i, "version"));
    std::string pinned = Str(comp, "version");
    if (c.json()) {
      Json items = Json::array();
      for (Json v : versions) {
        v["running"] = running.count(Str(v, "name")) > 0;
        items.push_back(std::move(v));
      }
      c.out() << RenderJson(Json{{"component", t->component}, {"pinned", pinned}, {"items", items}});
      return Status::Ok();
    }
    std::vector<std::vector<std::string>> rows;
    for (const Json& v : versions) {
      std::string name = Str(v, "name");
      std::string mark = running.count(name) ? "running" : "";
      if (name == pinned) mark += mark.empty() ? "pinned" : ", pinned";
      const Json req = v.value("build_request", Json::object());
      std::string who = req.is_object() ? Str(req, "requested_by") : "";
      std::string when = Str(v, "created_at");
      rows.push_back({name, Str(v, "status"), when, What(v), who.empty() ? "-" : who, mark});
    }
    if (rows.empty()) {
      c.err() << t->component << " has no versions yet (`berth deploy " << t->component
              << " --app " << t->app << "` builds one)\n";
      return Status::Ok();
    }
    c.out() << RenderTable({"VERSION", "STATUS", "CREATED", "WHAT", "BY", "NOW"}, rows);
    return Status::Ok();
  });
  AddTarget(cmd, t.get());
}

// ---- ps ----------------------------------------------------------------------------------

// A component without instances, in a word or three: why nothing runs.
Result<std::string> IdleState(Call& c, const std::string& path, const Json& comp) {
  std::string kind = Str(comp, "kind");
  if (Str(comp, "desired_state") != "running") return std::string("stopped");
  if (kind == "cronjob") return std::string("waiting for its schedule (" + Str(comp, "schedule") + ")");
  if (kind == "job") return std::string("no run in progress");
  if (comp.value("replicas", 0) == 0) return std::string("scaled to 0");
  BERTH_ASSIGN_OR_RETURN(std::vector<Json> versions, AllItems(c, path + "/versions"));
  if (versions.empty()) return std::string("never built");
  bool ready = false, building = false;
  for (const Json& v : versions) {
    std::string s = Str(v, "status");
    ready |= s == "ready";
    building |= s == "queued" || s == "building";
  }
  if (!ready) return std::string(building ? "building its first version" : "no version built (the builds failed)");
  return std::string("starting");
}

void AddPs(CLI::App& app, const std::shared_ptr<Shared>& sh) {
  auto app_name = std::make_shared<std::string>();
  CLI::App* cmd = Leaf(app, sh, "ps", "The app's components with their instances and state",
                       [app_name](Call& c) -> Status {
    std::string base = c.App(*app_name) + "/components";
    BERTH_ASSIGN_OR_RETURN(std::vector<Json> comps, AllItems(c, base));
    std::sort(comps.begin(), comps.end(),
              [](const Json& a, const Json& b) { return Str(a, "name") < Str(b, "name"); });
    Json items = Json::array();
    std::vector<std::vector<std::string>> rows;
    for (Json comp : comps) {
      std::string name = Str(comp, "name");
      std::string path = base + "/" + EncodeComponent(name);
      BERTH_ASSIGN_OR_RETURN(std::vector<Json> instances, AllItems(c, path + "/instances"));
      std::sort(instances.begin(), instances.end(),
                [](const Json& a, const Json& b) { return Str(a, "name") < Str(b, "name"); });
      std::string wanted = std::to_string(comp.value("replicas", 0)) + " wanted";
      Json types = comp.value("process_types", Json::object());
      if (types.is_object() && (types.size() > 1 || (types.size() == 1 && !types.contains("web")))) {
        wanted.clear();
        for (const auto& [type, n] : types.items()) {
          wanted += (wanted.empty() ? "" : ", ") + type + "=" + n.dump();
        }
      }
      std::string head = name + " (" + Str(comp, "kind") + ", " + wanted + ")";
      if (instances.empty()) {
        BERTH_ASSIGN_OR_RETURN(std::string idle, IdleState(c, path, comp));
        rows.push_back({head, "-", "-", idle, "-", "-", "-", "-"});
        comp["state"] = idle;
      }
      for (const Json& i : instances) {
        std::string state = Str(i, "state");
        if (i.value("outdated", false)) state += " (outdated)";
        // The process type: Procfile types, "run" (one-off) and "release"; else the main one.
        std::string process = Str(i, "process");
        if (process.empty()) process = Str(comp, "kind") == "job" || Str(comp, "kind") == "cronjob"
                                           ? "run" : "web";
        rows.push_back({head, Str(i, "name"), Str(i, "version"), state,
                        i.value("ready", false) ? "yes" : "no", Cell(i.value("restarts", Json(0))),
                        Str(i, "started_at").empty() ? "-" : Str(i, "started_at"), process});
        head = "";
      }
      comp["instances"] = instances;
      items.push_back(std::move(comp));
    }
    if (c.json()) {
      c.out() << RenderJson(Json{{"app", *app_name}, {"items", items}});
      return Status::Ok();
    }
    if (rows.empty()) {
      c.err() << "app " << *app_name << " has no components (`berth component create NAME --app "
              << *app_name << " --git URL` adds one)\n";
      return Status::Ok();
    }
    c.out() << RenderTable({"COMPONENT", "INSTANCE", "VERSION", "STATE", "READY", "RESTARTS",
                            "STARTED", "PROCESS"},
                           rows);
    return Status::Ok();
  });
  cmd->add_option("--app", *app_name, "The app")->required();
}

// ---- open --------------------------------------------------------------------------------

void AddOpen(CLI::App& app, const std::shared_ptr<Shared>& sh) {
  auto t = std::make_shared<Target>();
  CLI::App* cmd = Leaf(app, sh, "open",
                       "Print where a component answers and open it in a browser when there is a display",
                       [t](Call& c) -> Status {
    BERTH_ASSIGN_OR_RETURN(Json comp, c.Do("GET", c.ComponentPath(t->app, t->component)));
    std::vector<std::string> urls;
    for (const Json& a : comp.value("addresses", Json::array())) {
      if (a.is_string()) urls.push_back(a.get<std::string>());
    }
    auto is_web = [](const std::string& u) {
      return u.rfind("http://", 0) == 0 || u.rfind("https://", 0) == 0;
    };
    std::stable_partition(urls.begin(), urls.end(), is_web);
    // Only an http(s) URL goes to a browser (and to xdg-open's command line).
    if (urls.empty() || !is_web(urls[0])) {
      return Status(Code::kNotFound, "no_address",
                    t->component + " has no HTTP address: give it an outer HTTP port (`berth "
                    "component set " + t->component + " --app " + t->app +
                    " --port 8080/http`) or a domain (`berth domain add DOMAIN --app " + t->app +
                    " --component " + t->component + "`)");
    }
    if (c.json()) {
      c.out() << RenderJson(Json{{"component", t->component}, {"url", urls[0]}, {"addresses", urls}});
    } else {
      c.out() << urls[0] << "\n";
    }
    const ClientWorld& w = c.world();
    if (w.open_url) {
      Status opened = w.open_url(urls[0]);
      if (!opened.ok() && !c.json()) c.err() << "(not opened: " << opened.message() << ")\n";
    }
    return Status::Ok();
  });
  AddTarget(cmd, t.get());
}

// ---- git push ----------------------------------------------------------------------------

void AddGitUrl(CLI::App& app, const std::shared_ptr<Shared>& sh) {
  auto t = std::make_shared<Target>();
  CLI::App* cmd = Leaf(app, sh, "git-url",
                       "Print the URL `git push` deploys the component from (the password is a berth token)",
                       [t](Call& c) -> Status {
    BERTH_ASSIGN_OR_RETURN(Json g, c.Do("GET", c.ComponentPath(t->app, t->component) + "/git-url"));
    // The server as this CLI reaches it, rather than the Host the server saw.
    std::string url = c.cfg().server + Str(g, "path");
    std::string branch = g.value("branches", Json::array()).empty() ? "main" : g["branches"][0].get<std::string>();
    if (c.json()) {
      g["url"] = url;
      c.out() << RenderJson(g);
      return Status::Ok();
    }
    c.out() << url << "\n";
    c.err() << "  git remote add berth " << url << "\n"
            << "  git push berth " << branch << "   (user: any, password: a berth token, e.g. `berth token create`)\n";
    return Status::Ok();
  });
  AddTarget(cmd, t.get());
}

// The pre-receive hook of the push repositories (DATA/git/hooks/pre-receive runs it; see
// src/api/git_routes.cc). Reads git's "OLD NEW REF" lines; an update of the deploy branch is
// built and deployed by the server, whose text stream goes to stdout (git relays it to the
// pusher as `remote:` lines). Exits 1 — git then rejects the push — when it failed.
int GitPreReceive() {
  const char* url = std::getenv("BERTH_PUSH_URL");
  const char* path = std::getenv("BERTH_PUSH_PATH");
  const char* cred = std::getenv("BERTH_PUSH_CREDENTIAL");
  const char* branches_env = std::getenv("BERTH_PUSH_BRANCHES");
  const char* quarantine = std::getenv("GIT_QUARANTINE_PATH");
  if (!url || !path || !cred || !branches_env) {
    std::cout << " !     this repository is berth's: push over berth's push URL (`berth git-url`)" << std::endl;
    return 1;
  }
  std::set<std::string> branches;
  std::istringstream bs(branches_env);
  for (std::string b; bs >> b;) branches.insert(b);
  std::string deploy_line;
  for (std::string line; std::getline(std::cin, line);) {
    std::istringstream ls(line);
    std::string old_commit, new_commit, ref;
    ls >> old_commit >> new_commit >> ref;
    const std::string branch = ref.rfind("refs/heads/", 0) == 0 ? ref.substr(11) : "";
    const bool deleted = new_commit.find_first_not_of('0') == std::string::npos;
    if (branch.empty() || !branches.count(branch)) {
      std::cout << "-----> " << ref << (deleted ? " deleted" : " stored") << "; berth deploys pushes to "
                << branches_env << std::endl;
      continue;
    }
    if (deleted) {
      std::cout << "-----> " << ref << " deleted; nothing to deploy" << std::endl;
      continue;
    }
    if (!deploy_line.empty()) continue;  // one deploy branch per push (main or master)
    // Git may name the quarantine relative to the repository, the hook's working directory.
    std::string q = quarantine ? quarantine : "";
    if (!q.empty()) {
      std::error_code ec;
      q = std::filesystem::absolute(q, ec).string();
    }
    Json body = {{"ref", ref}, {"old", old_commit}, {"new", new_commit}, {"quarantine", q}};
    deploy_line = body.dump();
    std::cout << "-----> building " << branch << " at " << new_commit.substr(0, 12) << std::endl;
  }
  if (deploy_line.empty()) return 0;
  bool ok = false;
  std::string failure;
  HttpClientOptions o;
  o.read_timeout = std::chrono::seconds(120);  // the server beats every 15 s
  auto r = RequestStream("POST", url, path, deploy_line, cred, [&](std::string_view line) {
    if (line == "berth-push: heartbeat") return true;
    if (line == "berth-push: ok") {
      ok = true;
      return false;
    }
    if (line.rfind("berth-push: failed: ", 0) == 0) {
      failure = std::string(line.substr(20));
      return false;
    }
    std::cout << line << std::endl;
    return true;
  }, o);
  if (!r.ok()) failure = r.status().message();
  else if (r->status / 100 != 2) {
    Json e = Json::parse(r->body, nullptr, false);
    failure = e.is_object() && e.contains("error") && e["error"].is_object()
                  ? e["error"].value("message", r->body) : "the server answered " + std::to_string(r->status);
  } else if (!ok && failure.empty()) {
    failure = "the server ended the build stream without a result";
  }
  if (ok) return 0;
  std::cout << " !     " << failure << "\n !     push rejected: nothing was deployed" << std::endl;
  return 1;
}

void AddGitPreReceive(CLI::App& app, int* exit_code) {
  CLI::App* cmd = app.add_subcommand("git-pre-receive", "The push repositories' pre-receive hook (internal)");
  cmd->group("");  // hidden
  cmd->callback([exit_code] { *exit_code = GitPreReceive(); });
}

}  // namespace

void AddHerokuCommands(CLI::App& app, const ClientWorld& world, int* exit_code) {
  auto sh = std::make_shared<Shared>();
  sh->world = world;
  sh->exit_code = exit_code;
  AddConfig(app, sh);
  AddReleases(app, sh);
  AddPs(app, sh);
  AddOpen(app, sh);
  AddGitUrl(app, sh);
  AddGitPreReceive(app, exit_code);
}

}  // namespace berth::cli
