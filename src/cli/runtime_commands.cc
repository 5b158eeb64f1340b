// The runtime verbs of the CLI (docs/cli.md, docs/api.md "Runtime"):
//   berth start|stop|restart COMPONENT --app APP
//   berth scale COMPONENT N --app APP
//   berth rollback COMPONENT VERSION --app APP
//   berth instances COMPONENT --app APP
//   berth events COMPONENT --app APP
//   berth logs COMPONENT --app APP [-f] [--instance N] [--since 10m] [--grep TEXT] [--tail N]
//   berth logs COMPONENT --app APP --build [VERSION] [-f]      (a build log instead)
//   berth wait COMPONENT --app APP --ready|--operation [--timeout 120]
//   berth cancel COMPONENT --app APP     (ends the operation in progress)
//   berth run COMPONENT --app APP [--wait [--timeout S]]   (a job or cronjob run, now)
//   berth runs COMPONENT --app APP       (the runs and how they ended)
// Each is one or a few REST calls; the controller does the work asynchronously, `wait` and
// `instances` show when it is done.
#include <algorithm>
#include <chrono>
#include <cstdio>
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

using detail::Call;
using detail::Leaf;
using detail::Shared;

struct Target {
  std::string component;
  std::string app;
};

void AddTarget(CLI::App* cmd, Target* t) {
  cmd->add_option("component", t->component, "Component name")->required();
  cmd->add_option("--app", t->app, "App the component belongs to")->required();
}

std::string Summary(const Json& c) {
  std::string version = Str(c, "version");
  std::string counts = std::to_string(c.value("replicas", 0)) + " replica(s)";
  Json types = c.value("process_types", Json::object());
  if (types.is_object() && (types.size() > 1 || (types.size() == 1 && !types.contains("web")))) {
    counts.clear();
    for (const auto& [type, n] : types.items()) {
      counts += (counts.empty() ? "" : ", ") + type + " " + n.dump();
    }
  }
  return Str(c, "name") + ": " + Str(c, "desired_state") + ", " + counts + ", version " +
         (version.empty() ? std::string("newest ready") : version);
}

Status Patch(Call& c, const Target& t, const Json& body, const std::string& done,
             int64_t* revision = nullptr) {
  BERTH_ASSIGN_OR_RETURN(Json comp, c.Do("PATCH", c.ComponentPath(t.app, t.component), &body));
  if (revision != nullptr) *revision = comp.value("revision", int64_t{0});
  if (c.json()) {
    c.out() << RenderJson(comp);
  } else {
    c.out() << done << " (" << Summary(comp) << ")\n";
  }
  return Status::Ok();
}

// Waits for the operation a lifecycle change began to end ("ready" means routed: with a
// gateway it ends once the gateway serves the new instances, docs/gateway.md) and says how it
// ended; exit 1 (an error) when it failed or was cancelled, or after `timeout_s`. The
// operation a change began is written in the change's commit (`revision`); an older one is
// not this change's (the change began none: nothing to wait for).
Status AwaitOperation(Call& c, const Target& t, int64_t revision, int timeout_s) {
  const std::string path = c.ComponentPath(t.app, t.component);
  const std::string where = t.component + " --app " + t.app;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (true) {
    auto got = c.Do("GET", path + "/operation");
    if (!got.ok()) {
      if (got.status().code() == Code::kNotFound) return Status::Ok();  // nothing to wait for
      return got.status();
    }
    const Json op = *got;
    if (op.value("revision", int64_t{0}) < revision) return Status::Ok();
    const std::string status = Str(op, "status");
    if (status == "succeeded") {
      if (!c.json()) c.err() << t.component << ": " << Str(op, "message") << "\n";
      return Status::Ok();
    }
    if (status != "in_progress") {
      return Status(Code::kConflict, "operation_" + status,
                    "the " + Str(op, "type") + " of " + t.component + " " + status +
                        (Str(op, "message").empty() ? "" : ": " + Str(op, "message")) +
                        " (see `berth events " + where + "`)");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status(Code::kUnavailable, "timeout",
                    "the " + Str(op, "type") + " of " + t.component + " still runs after " +
                        std::to_string(timeout_s) + " s (`berth wait " + where +
                        " --operation` waits on)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

struct WaitFlags {
  bool no_wait = false;
  int timeout_s = 300;
};

void AddWaitFlags(CLI::App* cmd, WaitFlags* w) {
  cmd->add_flag("--no-wait", w->no_wait,
                "Return once the change is recorded instead of waiting until the new instances "
                "are ready and routed");
  cmd->add_option("--timeout", w->timeout_s, "Give up waiting after this many seconds (default 300)")
      ->check(CLI::Range(1, 86400));
}

std::string ExitText(const Json& last) {
  if (!last.is_object()) return "";
  return Str(last, "reason");
}

// "2" → "web-2"; names pass through.
std::string InstanceName(const std::string& component, const std::string& given) {
  if (!given.empty() && given.find_first_not_of("0123456789") == std::string::npos) {
    return component + "-" + given;
  }
  return given;
}

void AddLifecycle(CLI::App& app, const std::shared_ptr<Shared>& sh) {
  for (const char* verb : {"start", "stop"}) {
    auto t = std::make_shared<Target>();
    bool start = std::string(verb) == "start";
    CLI::App* cmd = Leaf(app, sh, verb,
                         start ? "Run a component's instances (desired state running)"
                               : "Stop every instance of a component (desired state stopped)",
                         [t, start](Call& c) {
                           Json body = {{"desired_state", start ? "running" : "stopped"}};
                           return Patch(c, *t, body, start ? "starting " + t->component
                                                           : "stopping " + t->component);
                         });
    AddTarget(cmd, t.get());
  }

  auto rt = std::make_shared<Target>();
  CLI::App* restart = Leaf(app, sh, "restart", "Restart every instance, one at a time",
                           [rt](Call& c) -> Status {
    BERTH_ASSIGN_OR_RETURN(Json comp, c.Do("POST", c.ComponentPath(rt->app, rt->component) + "/restart"));
    if (c.json()) {
      c.out() << RenderJson(comp);
    } else {
      c.out() << "restarting " << rt->component << " (restart " << comp.value("restart_generation", 0)
              << ")\n";
    }
    return Status::Ok();
  });
  AddTarget(restart, rt.get());

  auto st = std::make_shared<Target>();
  auto counts = std::make_shared<std::vector<std::string>>();
  auto sw = std::make_shared<WaitFlags>();
  CLI::App* scale = Leaf(app, sh, "scale",
                         "Set the number of instances (0 allowed): COMPONENT N, or per process "
                         "type: [COMPONENT] web=2 worker=1",
                         [st, counts, sw](Call& c) -> Status {
    std::vector<std::string> args = *counts;
    if (!st->component.empty() && st->component.find('=') != std::string::npos) {
      args.insert(args.begin(), st->component);
      st->component.clear();
    }
    if (args.empty()) {
      return Status(Code::kInvalidArgument, "usage",
                    "say how many: berth scale COMPONENT N --app APP, or berth scale [COMPONENT] "
                    "web=2 worker=1 --app APP");
    }
    auto number = [](const std::string& text, const std::string& what) -> Result<int> {
      if (text.empty() || text.size() > 3 || text.find_first_not_of("0123456789") != std::string::npos ||
          std::stoi(text) > 100) {
        return Status(Code::kInvalidArgument, "invalid_argument",
                      what + " must be a whole number from 0 to 100, got \"" + text + "\"");
      }
      return std::stoi(text);
    };
    if (st->component.empty()) {
      // Heroku's form names only process types: the app's one long-running component.
      BERTH_ASSIGN_OR_RETURN(Json l, c.Do("GET", c.App(st->app) + "/components?limit=500"));
      std::vector<std::string> names;
      for (const Json& comp : l.value("items", Json::array())) {
        std::string kind = Str(comp, "kind");
        if (kind == "service" || kind == "stateful") names.push_back(Str(comp, "name"));
      }
      if (names.size() != 1) {
        std::string list;
        for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
        return Status(Code::kInvalidArgument, "invalid_argument",
                      "app " + st->app + " has " + std::to_string(names.size()) +
                          " services (" + (list.empty() ? std::string("none") : list) +
                          "): name one, e.g. berth scale COMPONENT " + args.front() + " --app " +
                          st->app);
      }
      st->component = names.front();
    }
    Json body = Json::object();
    std::string what;
    if (args.size() == 1 && args[0].find('=') == std::string::npos) {
      BERTH_ASSIGN_OR_RETURN(int n, number(args[0], "the number of instances"));
      body["replicas"] = n;
      what = std::to_string(n);
    } else {
      BERTH_ASSIGN_OR_RETURN(Json comp, c.Do("GET", c.ComponentPath(st->app, st->component)));
      Json procs = comp.value("processes", Json::object());
      Json known = comp.value("process_types", Json::object());
      for (const std::string& a : args) {
        size_t eq = a.find('=');
        if (eq == std::string::npos || eq == 0) {
          return Status(Code::kInvalidArgument, "invalid_argument",
                        "\"" + a + "\" is not TYPE=N (e.g. web=2 worker=1)");
        }
        std::string type = a.substr(0, eq);
        BERTH_ASSIGN_OR_RETURN(int n, number(a.substr(eq + 1), type));
        if (type == "web") {
          body["replicas"] = n;
        } else {
          if (known.is_object() && !known.empty() && !known.contains(type)) {
            std::string list;
            for (const auto& [k, v] : known.items()) list += (list.empty() ? "" : ", ") + k;
            return Status(Code::kInvalidArgument, "unknown_process_type",
                          st->component + " runs no process type \"" + type + "\" (its version has " +
                              list + ")");
          }
          procs[type] = n;
        }
        what += (what.empty() ? "" : " ") + type + "=" + std::to_string(n);
      }
      if (procs != comp.value("processes", Json::object())) body["processes"] = procs;
    }
    int64_t rev = 0;
    BERTH_RETURN_IF_ERROR(Patch(c, *st, body, "scaling " + st->component + " to " + what, &rev));
    return sw->no_wait ? Status::Ok() : AwaitOperation(c, *st, rev, sw->timeout_s);
  });
  scale->add_option("component", st->component, "Component name (optional with TYPE=N)");
  scale->add_option("--app", st->app, "App the component belongs to")->required();
  scale->add_option("counts", *counts, "N, or TYPE=N per process type (web=2 worker=1)");
  AddWaitFlags(scale, sw.get());

  auto ct = std::make_shared<Target>();
  CLI::App* cancel = Leaf(app, sh, "cancel",
                          "End a component's operation in progress so another can begin",
                          [ct](Call& c) -> Status {
    BERTH_ASSIGN_OR_RETURN(Json op, c.Do("POST", c.ComponentPath(ct->app, ct->component) +
                                                    "/operation/cancel"));
    if (c.json()) {
      c.out() << RenderJson(op);
    } else {
      c.out() << "cancelled the " << Str(op, "type") << " of " << ct->component << " ("
              << Str(op, "detail") << "); what already changed stays\n";
    }
    return Status::Ok();
  });
  AddTarget(cancel, ct.get());

  auto rb = std::make_shared<Target>();
  auto version = std::make_shared<std::string>();
  auto rw = std::make_shared<WaitFlags>();
  CLI::App* rollback = Leaf(app, sh, "rollback", "Run an earlier version (rolling update to it)",
                            [rb, version, rw](Call& c) -> Status {
    std::string path = c.ComponentPath(rb->app, rb->component);
    BERTH_ASSIGN_OR_RETURN(Json v, c.Do("GET", path + "/versions/" + EncodeComponent(*version)));
    if (Str(v, "status") != "ready") {
      return Status(Code::kConflict, "failed_precondition",
                    "version " + *version + " is " + Str(v, "status") + ", not ready: cannot run it");
    }
    Json body = {{"version", *version}};
    int64_t rev = 0;
    BERTH_RETURN_IF_ERROR(Patch(c, *rb, body, "rolling " + rb->component + " back to " + *version, &rev));
    return rw->no_wait ? Status::Ok() : AwaitOperation(c, *rb, rev, rw->timeout_s);
  });
  AddTarget(rollback, rb.get());
  AddWaitFlags(rollback, rw.get());
  rollback->add_option("version", *version, "Version to run, e.g. v2")->required();
}

// "scale from 1 to 3: in_progress (by alice since 2026-...)".
std::string OperationLine(const Json& op) {
  std::string line = Str(op, "type") + " (" + Str(op, "detail") + "): " + Str(op, "status") +
                     " (by " + Str(op, "by") + " at " + Str(op, "started_at");
  if (!Str(op, "finished_at").empty()) line += ", ended " + Str(op, "finished_at");
  line += ")";
  if (!Str(op, "message").empty()) line += " " + Str(op, "message");
  return line;
}

void AddViews(CLI::App& app, const std::shared_ptr<Shared>& sh) {
  auto it = std::make_shared<Target>();
  CLI::App* instances = Leaf(app, sh, "instances", "List a component's running instances",
                             [it](Call& c) -> Status {
    BERTH_ASSIGN_OR_RETURN(Json l, c.Do("GET", c.ComponentPath(it->app, it->component) + "/instances?limit=500"));
    if (c.json()) {
      c.out() << RenderJson(l);
      return Status::Ok();
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& i : l.value("items", Json::array())) {
      std::string mem = "-", cpu = "-", cpu_pct = "-";
      const Json usage = i.value("usage", Json());
      if (usage.is_object()) {
        char buf[64];
        // The cgroup's working set when there is one, else the RSS sum (api.md: usage).
        const Json& m = usage.contains("memory_bytes") ? usage["memory_bytes"] : usage["rss_bytes"];
        std::snprintf(buf, sizeof buf, "%.1f MiB",
                      static_cast<double>(m.is_number() ? m.get<int64_t>() : 0) / (1 << 20));
        mem = buf;
        if (const Json l = usage.value("memory_limit_bytes", Json()); l.is_number()) {
          std::snprintf(buf, sizeof buf, " / %.0f MiB", static_cast<double>(l.get<int64_t>()) / (1 << 20));
          mem += buf;
        }
        std::snprintf(buf, sizeof buf, "%.2f s", usage.value("cpu_seconds", 0.0));
        cpu = buf;
        // Percent of one core over the last seconds; "/ 50%" = a limit of half a core.
        if (const Json p = usage.value("cpu_percent", Json()); p.is_number()) {
          std::snprintf(buf, sizeof buf, "%.1f%%", p.get<double>());
          cpu_pct = buf;
        }
        if (const Json l = usage.value("cpu_limit_millis", Json()); l.is_number()) {
          std::snprintf(buf, sizeof buf, " / %g%%", static_cast<double>(l.get<int64_t>()) / 10);
          cpu_pct += buf;
        }
      }
      rows.push_back({Str(i, "name"), Str(i, "version"), Str(i, "state"),
                      i.value("ready", false) ? "yes" : "no", Cell(i.value("pid", Json(0))),
                      Cell(i.value("port", Json(0))), cpu_pct, mem, cpu,
                      Cell(i.value("restarts", Json(0))),
                      Field(i, "started_at"), ExitText(i.value("last_exit", Json())),
                      Str(i, "message")});
    }
    auto op = c.Do("GET", c.ComponentPath(it->app, it->component) + "/operation");
    if (op.ok()) c.out() << "Operation: " << OperationLine(*op) << "\n";
    if (rows.empty()) {
      c.err() << "No instances found.\n";
      return Status::Ok();
    }
    c.out() << RenderTable({"NAME", "VERSION", "STATE", "READY", "PID", "PORT", "CPU%", "MEMORY",
                            "CPU TIME", "RESTARTS",
                            "STARTED", "LAST EXIT", "MESSAGE"},
                           rows);
    return Status::Ok();
  });
  AddTarget(instances, it.get());

  auto et = std::make_shared<Target>();
  CLI::App* events = Leaf(app, sh, "events", "Show what happened to a component, newest first",
                          [et](Call& c) -> Status {
    BERTH_ASSIGN_OR_RETURN(Json l, c.Do("GET", c.ComponentPath(et->app, et->component) + "/events?limit=100"));
    if (c.json()) {
      c.out() << RenderJson(l);
      return Status::Ok();
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& e : l.value("items", Json::array())) {
      rows.push_back({Str(e, "last_at"), Str(e, "type"), Str(e, "reason"),
                      Cell(e.value("count", Json(1))), Str(e, "message")});
    }
    if (rows.empty()) {
      c.err() << "No events found.\n";
      return Status::Ok();
    }
    c.out() << RenderTable({"LAST SEEN", "TYPE", "REASON", "COUNT", "MESSAGE"}, rows);
    return Status::Ok();
  });
  AddTarget(events, et.get());
}

struct LogOpts {
  Target t;
  bool follow = false;
  std::string instance;
  std::string since;
  std::string grep;
  int tail = -1;
  bool build = false;
  std::string version;
};

Status BuildLog(Call& c, const LogOpts& o, int* exit_code) {
  std::string path = c.ComponentPath(o.t.app, o.t.component);
  std::string version = o.version;
  if (version.empty()) {
    BERTH_ASSIGN_OR_RETURN(Json l, c.Do("GET", path + "/versions?limit=500"));
    int64_t best = -1;
    for (const auto& v : l.value("items", Json::array())) {
      if (v.value("number", int64_t{0}) > best) {
        best = v.value("number", int64_t{0});
        version = Str(v, "name");
      }
    }
    if (version.empty()) {
      return Status(Code::kNotFound, "not_found", "component " + o.t.component + " has no builds yet");
    }
  }
  std::string log_path = path + "/versions/" + EncodeComponent(version) + "/log";
  if (!o.follow) {
    BERTH_ASSIGN_OR_RETURN(Json j, c.Do("GET", log_path));
    if (c.json()) {
      c.out() << RenderJson(j);
    } else {
      c.out() << Str(j, "log");
    }
    return Status::Ok();
  }
  std::string final_status;
  BERTH_RETURN_IF_ERROR(c.Stream(log_path + "?follow=1", [&](const Json& j) {
    std::string type = Str(j, "type");
    if (type == "line") {
      c.out() << (c.json() ? j.dump() : Str(j, "text")) << "\n";
      c.out().flush();
    } else if (type == "end") {
      final_status = Str(j, "status");
      if (c.json()) c.out() << j.dump() << "\n";
      return false;
    }
    return true;
  }));
  if (final_status != "ready") *exit_code = -1;
  return Status::Ok();
}

void AddLogs(CLI::App& app, const std::shared_ptr<Shared>& sh) {
  auto o = std::make_shared<LogOpts>();
  int* exit_code = sh->exit_code;
  CLI::App* logs = Leaf(app, sh, "logs",
                        "Show (or follow with -f) a component's instance logs; --build for a build log",
                        [o, exit_code](Call& c) -> Status {
    if (o->build) return BuildLog(c, *o, exit_code);
    if (!o->version.empty()) {
      return Status(Code::kInvalidArgument, "usage", "a VERSION argument goes with --build");
    }
    std::string q = "?follow=" + std::string(o->follow ? "1" : "0");
    if (!o->instance.empty()) q += "&instance=" + EncodeComponent(InstanceName(o->t.component, o->instance));
    if (!o->since.empty()) q += "&since=" + EncodeComponent(o->since);
    if (!o->grep.empty()) q += "&grep=" + EncodeComponent(o->grep);
    if (o->tail >= 0) q += "&tail=" + std::to_string(o->tail);
    return c.Stream(c.ComponentPath(o->t.app, o->t.component) + "/logs" + q, [&](const Json& j) {
      if (j.contains("type")) return true;  // heartbeat
      if (c.json()) {
        c.out() << j.dump() << "\n";
      } else {
        c.out() << Str(j, "time") << " " << Str(j, "instance") << " " << Str(j, "line") << "\n";
      }
      c.out().flush();
      return true;
    });
  });
  AddTarget(logs, &o->t);
  logs->add_flag("-f,--follow", o->follow, "Keep printing new lines");
  logs->add_option("--instance", o->instance, "Only this instance (name or number)");
  logs->add_option("--since", o->since, "Only lines newer than this (30s, 10m, 2h or RFC 3339)");
  logs->add_option("--grep", o->grep, "Only lines containing this text");
  logs->add_option("--tail", o->tail, "At most this many lines of history (default 1000)")
      ->check(CLI::Range(0, 10000));
  logs->add_flag("--build", o->build, "Show a build log instead (of VERSION, default the newest)");
  logs->add_option("version", o->version, "Version whose build log to show (with --build)");
}

void AddWait(CLI::App& app, const std::shared_ptr<Shared>& sh) {
  struct WaitOpts {
    Target t;
    bool ready = false;
    bool operation = false;
    int timeout_s = 120;
  };
  auto o = std::make_shared<WaitOpts>();
  CLI::App* wait = Leaf(app, sh, "wait",
                        "Wait until the desired instances are ready (exit 0), or time out (exit 1)",
                        [o](Call& c) -> Status {
    if (!o->ready && !o->operation) {
      return Status(Code::kInvalidArgument, "usage", "say what to wait for: --ready or --operation");
    }
    std::string path = c.ComponentPath(o->t.app, o->t.component);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o->timeout_s);
    std::string last;
    if (o->operation) {
      while (true) {
        BERTH_ASSIGN_OR_RETURN(Json op, c.Do("GET", path + "/operation"));
        std::string status = Str(op, "status");
        if (status != "in_progress") {
          if (c.json()) {
            c.out() << RenderJson(op);
          } else {
            c.out() << o->t.component << ": " << OperationLine(op) << "\n";
          }
          if (status == "succeeded") return Status::Ok();
          return Status(Code::kConflict, "operation_" + status,
                        "the " + Str(op, "type") + " of " + o->t.component + " " + status +
                            (Str(op, "message").empty() ? "" : ": " + Str(op, "message")));
        }
        if (std::chrono::steady_clock::now() >= deadline) {
          return Status(Code::kUnavailable, "timeout",
                        "the " + Str(op, "type") + " of " + o->t.component + " still runs after " +
                            std::to_string(o->timeout_s) + " s: " + OperationLine(op));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
      }
    }
    while (true) {
      BERTH_ASSIGN_OR_RETURN(Json comp, c.Do("GET", path));
      if (Str(comp, "kind") == "job" || Str(comp, "kind") == "cronjob") {
        // A job's instances end by design; waiting for them to be ready would never succeed.
        return Status(Code::kConflict, "not_a_service",
                      o->t.component + " is a " + Str(comp, "kind") +
                          ": its runs end instead of becoming ready; use `berth run " +
                          o->t.component + " --app " + o->t.app + " --wait` or `berth runs " +
                          o->t.component + " --app " + o->t.app + "`");
      }
      BERTH_ASSIGN_OR_RETURN(Json l, c.Do("GET", path + "/instances?limit=500"));
      int want = Str(comp, "desired_state") == "running" ? WantedInstances(comp) : 0;
      int total = 0, ready = 0;
      bool outdated = false;
      for (const auto& i : l.value("items", Json::array())) {
        if (!IsReplica(i)) continue;
        ++total;
        if (i.value("ready", false) && Str(i, "state") == "running") ++ready;
        if (i.value("outdated", false)) outdated = true;
      }
      last = std::to_string(ready) + " of " + std::to_string(want) + " ready, " +
             std::to_string(total) + " instance(s)" + (outdated ? ", update in progress" : "");
      if (total == want && ready == want && !outdated) {
        // "Ready" means routed: an operation still in progress waits for the gateway to serve
        // these instances (docs/gateway.md).
        auto op = c.Do("GET", path + "/operation");
        if (op.ok() && Str(*op, "status") == "in_progress") {
          last += ", waiting for the " + Str(*op, "type") + " to end (the gateway routes it)";
        } else {
          if (!c.json()) c.out() << o->t.component << ": " << last << "\n";
          return Status::Ok();
        }
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        return Status(Code::kUnavailable, "timeout",
                      o->t.component + " not ready within " + std::to_string(o->timeout_s) +
                          " s: " + last + " (see `berth instances " + o->t.component + " --app " +
                          o->t.app + "` and `berth events " + o->t.component + " --app " +
                          o->t.app + "`)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
  AddTarget(wait, &o->t);
  wait->add_flag("--ready", o->ready, "Wait until the desired number of instances is ready");
  wait->add_flag("--operation", o->operation,
                 "Wait until the component's operation ends (exit 0 if it succeeded)");
  wait->add_option("--timeout", o->timeout_s, "Give up after this many seconds (default 120)")
      ->check(CLI::Range(1, 86400));
}

// "run-3 succeeded (manual by alice, v2, 1 attempt(s)): completed on attempt 1 of 4".
std::string RunLine(const Json& r) {
  std::string line = Str(r, "name") + " " + Str(r, "status") + " (" + Str(r, "trigger");
  if (!Str(r, "by").empty() && Str(r, "by") != "berth") line += " by " + Str(r, "by");
  if (!Str(r, "version").empty()) line += ", " + Str(r, "version");
  line += ", " + std::to_string(r.value("attempts", 0)) + " attempt(s))";
  if (!Str(r, "message").empty()) line += ": " + Str(r, "message");
  return line;
}

// 'it'\''s' quoting for sh -c.
std::string ShellQuote(const std::string& word) {
  if (!word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                              "0123456789_-./=:,+@%") == std::string::npos) {
    return word;
  }
  std::string out = "'";
  for (char ch : word) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

// `berth run COMPONENT --app A -- CMD`: a one-off run with its own command. Prints the
// instance's output as it comes (polling the run's log) and passes the command's exit code on.
Status RunCommand(Call& c, const Target& t, const std::string& path,
                  const std::vector<std::string>& words, int timeout_s, int* exit_code) {
  std::string command;
  if (words.size() == 1) {
    command = words[0];  // one argument is a shell line already: -- 'echo a; exit 3'
  } else {
    for (const std::string& w : words) command += (command.empty() ? "" : " ") + ShellQuote(w);
  }
  Json body = {{"command", command}};
  BERTH_ASSIGN_OR_RETURN(Json r, c.Do("POST", path, &body));
  const std::string name = Str(r, "name");
  const std::string instance = Str(r, "instance");
  if (!c.json()) c.err() << "running `" << command << "` as " << instance << "\n";
  const std::string logs = c.ComponentPath(t.app, t.component) + "/logs?tail=10000&instance=" +
                           EncodeComponent(instance);
  size_t printed = 0;
  Json lines = Json::array();
  auto print_new = [&]() -> Status {
    std::vector<Json> got;
    BERTH_RETURN_IF_ERROR(c.Stream(logs, [&](const Json& j) {
      if (!j.contains("type")) got.push_back(j);
      return true;
    }));
    for (size_t i = printed; i < got.size(); ++i) {
      // The app's own output only (the shim's notes go to the run's message).
      if (Str(got[i], "stream") == "shim") continue;
      if (c.json()) {
        lines.push_back(Str(got[i], "line"));
      } else {
        (Str(got[i], "stream") == "err" ? c.err() : c.out()) << Str(got[i], "line") << "\n";
      }
    }
    printed = std::max(printed, got.size());
    c.out().flush();
    return Status::Ok();
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (true) {
    BERTH_ASSIGN_OR_RETURN(r, c.Do("GET", path + "/" + EncodeComponent(name)));
    std::string status = Str(r, "status");
    BERTH_RETURN_IF_ERROR(print_new());
    if (status != "running") {
      Json last = r.value("last_exit", Json());
      int code = status == "succeeded" ? 0 : 1;
      if (last.is_object() && status != "cancelled") {
        int signal = last.value("signal", 0);
        code = signal > 0 ? 128 + signal : last.value("code", 1);
        if (code < 0) code = 1;
      }
      if (c.json()) {
        r["output"] = lines;
        r["exit_code"] = code;
        c.out() << RenderJson(r);
      } else if (status != "succeeded") {
        c.err() << RunLine(r) << "\n";
      }
      if (code != 0) *exit_code = -code;
      return Status::Ok();
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status(Code::kUnavailable, "timeout",
                    name + " of " + t.component + " still runs after " +
                        std::to_string(timeout_s) + " s: " + RunLine(r));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
}

void AddRuns(CLI::App& app, const std::shared_ptr<Shared>& sh) {
  struct RunOpts {
    Target t;
    bool wait = false;
    int timeout_s = 3600;
    std::vector<std::string> command;
  };
  auto o = std::make_shared<RunOpts>();
  int* exit_code = sh->exit_code;
  CLI::App* run = Leaf(app, sh, "run",
                       "Start a run of a job or cronjob now (--wait waits for it: exit 0 if it "
                       "succeeded, 1 if not); with -- CMD run a one-off command in a fresh "
                       "instance of any component, its output streamed and its exit code returned",
                       [o, exit_code](Call& c) -> Status {
    std::string path = c.ComponentPath(o->t.app, o->t.component) + "/runs";
    if (!o->command.empty()) return RunCommand(c, o->t, path, o->command, o->timeout_s, exit_code);
    BERTH_ASSIGN_OR_RETURN(Json r, c.Do("POST", path));
    std::string name = Str(r, "name");
    if (!o->wait) {
      if (c.json()) {
        c.out() << RenderJson(r);
      } else {
        c.out() << "started " << name << " of " << o->t.component << " (see `berth runs "
                << o->t.component << " --app " << o->t.app << "`)\n";
      }
      return Status::Ok();
    }
    if (!c.json()) c.out() << "started " << name << " of " << o->t.component << "; waiting\n";
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o->timeout_s);
    while (true) {
      BERTH_ASSIGN_OR_RETURN(r, c.Do("GET", path + "/" + EncodeComponent(name)));
      std::string status = Str(r, "status");
      if (status != "running") {
        if (c.json()) {
          c.out() << RenderJson(r);
        } else {
          c.out() << RunLine(r) << "\n";
          if (!Str(r, "log_tail").empty()) {
            c.out() << "last log lines:\n" << Str(r, "log_tail") << "\n";
          }
        }
        if (status != "succeeded") *exit_code = -1;
        return Status::Ok();
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        return Status(Code::kUnavailable, "timeout",
                      name + " of " + o->t.component + " still runs after " +
                          std::to_string(o->timeout_s) + " s: " + RunLine(r));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  });
  AddTarget(run, &o->t);
  run->add_flag("--wait", o->wait, "Wait until the run ends; exit 0 if it succeeded, 1 if not");
  run->add_option("--timeout", o->timeout_s,
                  "With --wait or a command: give up after this many seconds")
      ->check(CLI::Range(1, 7 * 86400));
  run->add_option("command", o->command,
                  "After --: a command to run once in a fresh instance (sh -c; several words "
                  "are quoted for the shell)");

  auto lt = std::make_shared<Target>();
  CLI::App* runs = Leaf(app, sh, "runs", "List the runs of a job or cronjob, newest first",
                        [lt](Call& c) -> Status {
    std::string path = c.ComponentPath(lt->app, lt->component) + "/runs?limit=500";
    BERTH_ASSIGN_OR_RETURN(Json l, c.Do("GET", path));
    std::vector<Json> items;
    for (const auto& r : l.value("items", Json::array())) items.push_back(r);
    std::sort(items.begin(), items.end(), [](const Json& a, const Json& b) {
      return a.value("number", int64_t{0}) > b.value("number", int64_t{0});
    });
    if (c.json()) {
      c.out() << RenderJson(Json{{"items", items}, {"next", l.value("next", "")}});
      return Status::Ok();
    }
    std::vector<std::vector<std::string>> rows;
    for (const Json& r : items) {
      rows.push_back({Str(r, "name"), Str(r, "status"), Str(r, "trigger"), Str(r, "version"),
                      Cell(r.value("attempts", Json(0))), Str(r, "started_at"),
                      Str(r, "finished_at"), ExitText(r.value("last_exit", Json())),
                      Str(r, "message")});
    }
    if (rows.empty()) {
      c.err() << "No runs found.\n";
      return Status::Ok();
    }
    c.out() << RenderTable({"NAME", "STATUS", "TRIGGER", "VERSION", "ATTEMPTS", "STARTED",
                            "FINISHED", "LAST EXIT", "MESSAGE"},
                           rows);
    return Status::Ok();
  });
  AddTarget(runs, lt.get());
}

}  // namespace

void AddRuntimeCommands(CLI::App& app, const ClientWorld& world, int* exit_code) {
  auto sh = std::make_shared<Shared>();
  sh->world = world;
  sh->exit_code = exit_code;
  AddLifecycle(app, sh);
  AddViews(app, sh);
  AddLogs(app, sh);
  AddWait(app, sh);
  AddRuns(app, sh);
}

}  // namespace berth::cli
