#include "cli/cli.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <utility>

#include "cli/client_config.h"
#include "cli/detail/commands.h"
#include "cli/detail/verb.h"
#include "cli/detail/flags.h"
#include "cli/detail/api_errors.h"
#include "cli/detail/http_client.h"
#include "cli/output.h"
#include "core/env.h"

namespace berth::cli {
namespace {

// Status reasons for failures the CLI detects itself: printed without a "(code)" suffix, and
// kUsage ones are turned into CLI11 usage errors (exit 2).
constexpr const char* kLocal = "cli";
constexpr const char* kUsage = "usage";

Status Local(std::string message) { return {Code::kInternal, kLocal, std::move(message)}; }
Status Usage(std::string message) { return {Code::kInvalidArgument, kUsage, std::move(message)}; }

using detail::Globals;
using detail::Report;
using detail::Shared;

// One command invocation: the resolved config plus helpers to call the API and print.
class Session {
 public:
  explicit Session(Shared& shared) : w_(shared.world), g_(shared.globals) {}

  Status Init() {
    json_ = g_.output == "json";
    BERTH_ASSIGN_OR_RETURN(config_path_, ClientConfigPath(w_.env));
    auto stored = LoadClientConfig(config_path_);
    if (!stored.ok()) return Local(stored.status().message());
    stored_ = *stored;
    cfg_ = ResolveClientConfig(stored_, w_.env, g_.server, g_.team);
    return Status::Ok();
  }

  bool json() const { return json_; }
  std::ostream& out() { return *w_.out; }
  std::ostream& err() { return *w_.err; }
  std::istream& in() { return *w_.in; }
  const ClientWorld& world() const { return w_; }
  const ClientConfig& cfg() const { return cfg_; }
  ClientConfig& stored() { return stored_; }
  bool team_flag_given() const { return !g_.team.empty(); }

  Status SaveStored() {
    Status s = SaveClientConfig(config_path_, stored_);
    return s.ok() ? s : Local(s.message());
  }

  std::string TeamPath() const { return "/api/v1/teams/" + EncodeComponent(cfg_.team); }

  // One API call; non-2xx answers become a Status carrying the server's code/message/field.
  Result<Json> Call(const std::string& method, const std::string& path, const Json* body = nullptr,
                    bool with_token = true) {
    std::string text = body ? body->dump(-1, ' ', false, Json::error_handler_t::replace) : "";
    auto r = w_.send(method, cfg_.server, path, text, with_token ? cfg_.token : "");
    if (!r.ok()) return Status(r.status().code(), kLocal, r.status().message());
    const Response& resp = *r;
    Json j = resp.body.empty() ? Json::object() : Json::parse(resp.body, nullptr, false);
    if (resp.status >= 200 && resp.status < 300) {
      if (j.is_discarded()) {
        return Local("the server answered " + method + " " + path + " with a body that is not JSON");
      }
      return j;
    }
    std::string code = Str(j, "code");
    if (!j.is_discarded() && !code.empty()) {
      std::string message = Str(j, "message");
      if (resp.status == 429 && !resp.retry_after.empty()) {
        message += " (retry after " + resp.retry_after + "s)";
      }
      return Status(CodeForHttp(resp.status), code, message, Str(j, "field"));
    }
    std::string snippet = resp.body.substr(0, 200);
    return Status(CodeForHttp(resp.status), "http_" + std::to_string(resp.status),
                  "the server answered HTTP " + std::to_string(resp.status) +
                      (snippet.empty() ? "" : ": " + snippet));
  }

  // GETs every page of a collection (or the first `limit` items when limit > 0) and returns
  // the first page's object with all items. One page → exactly the API's answer.
  Result<Json> List(const std::string& path, int limit) {
    Json first;
    Json items = Json::array();
    std::string after;
    std::string next;
    while (true) {
      int page = 500;
      if (limit > 0) page = std::min<int>(500, limit - static_cast<int>(items.size()));
      std::string q = path + (path.find('?') == std::string::npos ? "?" : "&") +
                      "limit=" + std::to_string(page);
      if (!after.empty()) q += "&after=" + EncodeComponent(after);
      BERTH_ASSIGN_OR_RETURN(Json resp, Call("GET", q));
      if (first.is_null()) first = resp;
      if (resp.contains("items") && resp["items"].is_array()) {
        for (auto& item : resp["items"]) items.push_back(std::move(item));
      }
      next = Str(resp, "next");
      if (next.empty() || next == after) break;
      if (limit > 0 && static_cast<int>(items.size()) >= limit) break;
      after = next;
    }
    if (limit > 0 && static_cast<int>(items.size()) > limit) {
      items.erase(items.begin() + limit, items.end());
    }
    if (!first.is_object()) first = Json::object();
    first["items"] = std::move(items);
    first["next"] = next;
    return first;
  }

  // `show`-style output of one object.
  void PrintObject(const Json& obj) {
    if (json_) {
      out() << RenderJson(obj);
      return;
    }
    Json shown = obj;
    if (shown.is_object() && shown.contains("ports") && shown["ports"].is_array()) {
      Json ports = Json::array();
      for (const auto& p : shown["ports"]) ports.push_back(FormatPort(p));
      shown["ports"] = ports;
    }
    out() << RenderKeyValues(shown);
  }

  // A table of `list["items"]` with the given columns, or the JSON.
  void PrintList(const Json& list, const std::string& noun, const std::vector<std::string>& headers,
                 const std::function<std::vector<std::string>(const Json&)>& row) {
    if (json_) {
      out() << RenderJson(list);
      return;
    }
    std::vector<std::vector<std::string>> rows;
    if (list.contains("items") && list["items"].is_array()) {
      for (const auto& item : list["items"]) rows.push_back(row(item));
    }
    if (rows.empty()) {
      err() << "No " << noun << " found.\n";
      return;
    }
    out() << RenderTable(headers, rows);
  }

  // The answer to a delete: "deleted <noun> <name>" or the API's JSON.
  void PrintDone(const Json& resp, const std::string& text) {
    if (json_) {
      out() << RenderJson(resp);
    } else {
      out() << text << "\n";
    }
  }

 private:
  const ClientWorld& w_;
  const Globals& g_;
  bool json_ = false;
  std::string config_path_;
  ClientConfig stored_;
  ClientConfig cfg_;
};

using Runner = std::function<Status(Session&)>;

// Adds a leaf command with the global flags; `run` executes inside app.parse().
CLI::App* Leaf(CLI::App* parent, const std::shared_ptr<Shared>& sh, const std::string& name,
               const std::string& description, Runner run) {
  CLI::App* cmd = parent->add_subcommand(name, description);
  cmd->add_option("-o,--output", sh->globals.output, "Output format: table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->group("Global flags");
  cmd->add_option("--server", sh->globals.server,
                  "berth server URL, e.g. http://127.0.0.1:7070 (overrides BERTH_SERVER and the "
                  "stored server)")
      ->check(
          [](const std::string& v) {
            auto u = ParseServerUrl(v);
            return u.ok() ? std::string() : u.status().message();
          },
          "URL")
      ->group("Global flags");
  cmd->add_option("--team", sh->globals.team,
                  "Team (default: the one chosen with `berth team use`, else \"default\")")
      ->group("Global flags");
  // The callbacks own the shared state (and the option structs their runners capture), so it
  // lives exactly as long as the App; nothing in it points back at the App.
  cmd->callback([shared = sh, run = std::move(run)] {
    Session session(*shared);
    Status s = session.Init();
    if (s.ok()) s = run(session);
    if (s.ok()) {
      *shared->exit_code = 0;
      return;
    }
    if (s.reason() == kUsage) throw CLI::ValidationError(s.message(), 2);
    Report(s, *shared->world.err, shared->globals.output == "json");
    *shared->exit_code = 1;
  });
  return cmd;
}

CLI::App* Noun(CLI::App* parent, const std::string& name, const std::string& description) {
  CLI::App* cmd = parent->add_subcommand(name, description);
  cmd->require_subcommand(1);
  return cmd;
}

bool Given(const CLI::Option* o) {
  return o != nullptr && o->count() > 0;
}

// Reads one line (the password) from stdin, without its line ending.
Result<std::string> ReadStdinLine(Session& s, const std::string& what) {
  std::string line;
  if (!std::getline(s.in(), line) && line.empty()) {
    return Local("expected the " + what + " on stdin, got nothing");
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// --password-stdin, or a prompt on a terminal; `when_not_tty_read_stdin` decides what happens
// without the flag and without a terminal (login reads stdin; user create sends no password).
Result<std::string> GetPassword(Session& s, bool from_stdin, const std::string& prompt,
                                bool when_not_tty_read_stdin) {
  bool tty = s.world().stdin_is_tty && s.world().stdin_is_tty();
  if (from_stdin || (!tty && when_not_tty_read_stdin)) return ReadStdinLine(s, "password");
  if (!tty) return std::string();
  auto r = s.world().read_secret(prompt);
  if (!r.ok()) return Local(r.status().message());
  return r;
}

std::string Created(const Json& j) { return Field(j, "created_at"); }

// ---------------------------------------------------------------------------------------------
// Connection and identity

void AddSessionCommands(CLI::App& app, const std::shared_ptr<Shared>& sh) {
  struct LoginOpts {
    std::string user;
    bool password_stdin = false;
  };
  auto lo = std::make_shared<LoginOpts>();
  CLI::App* login = Leaf(&app, sh, "login", "Log in to a berth server and remember the token",
                         [lo](Session& s) -> Status {
    std::string user = !lo->user.empty() ? lo->user : s.stored().user;
    if (user.empty()) return Usage("--user is required");
    auto url = ParseServerUrl(s.cfg().server);
    if (!url.ok()) return Local(url.status().message());
    std::string server = url->ToString();
    BERTH_ASSIGN_OR_RETURN(
        std::string password,
        GetPassword(s, lo->password_stdin, "Password for " + user + " at " + server + ": ", true));
    if (password.empty()) return Local("the password is empty");
    Json body = {{"user", user}, {"password", password}};
    BERTH_ASSIGN_OR_RETURN(Json resp, s.Call("POST", "/api/v1/login", &body, false));
    std::string token = Str(resp, "token");
    if (token.empty()) return Local("the server's login answer has no token");
    std::string name = user;
    if (resp.contains("user")) {
      if (resp["user"].is_string()) name = resp["user"].get<std::string>();
      if (resp["user"].is_object() && !Str(resp["user"], "name").empty()) {
        name = Str(resp["user"], "name");
      }
    }
    ClientConfig& st = s.stored();
    st.server = server;
    st.user = name;
    st.token = token;
    if (s.team_flag_given()) st.team = s.cfg().team;
    if (st.team.empty()) st.team = std::string(kDefaultTeam);
    BERTH_RETURN_IF_ERROR(s.SaveStored());
    if (s.json()) {
      resp.erase("token");  // never print a secret the user did not ask to see
      s.out() << RenderJson(resp);
    } else {
      std::string expires = Str(resp, "expires_at");
      s.out() << "logged in to " << server << " as " << name << " (team " << st.team << ")"
              << (expires.empty() ? "" : "; the session expires " + expires) << "\n";
    }
    return Status::Ok();
  });
  login->add_option("--user", lo->user, "User name (default: the stored user)");
  login->add_flag("--password-stdin", lo->password_stdin,
                  "Read the password from stdin (one line) instead of prompting");

  Leaf(&app, sh, "logout", "Revoke the stored token and forget it", [](Session& s) -> Status {
    if (s.cfg().token.empty()) return Local("not logged in");
    auto resp = s.Call("POST", "/api/v1/logout");
    // An already invalid token is as good as revoked; other failures keep it for a retry.
    if (!resp.ok() && resp.status().code() != Code::kUnauthenticated) return resp.status();
    s.stored().token.clear();
    BERTH_RETURN_IF_ERROR(s.SaveStored());
    s.PrintDone(resp.ok() ? *resp : Json::object(), "logged out of " + s.cfg().server);
    return Status::Ok();
  });

  Leaf(&app, sh, "whoami", "Show the logged-in user and their teams", [](Session& s) -> Status {
    BERTH_ASSIGN_OR_RETURN(Json resp, s.Call("GET", "/api/v1/whoami"));
    if (s.json()) {
      s.out() << RenderJson(resp);
      return Status::Ok();
    }
    const Json& user = resp.contains("user") ? resp["user"] : Json::object();
    std::string teams;
    if (resp.contains("teams") && resp["teams"].is_array()) {
      for (const auto& t : resp["teams"]) {
        teams += (teams.empty() ? "" : ", ") + Str(t, "team") + " (" + Str(t, "role") + ")";
      }
    }
    Json shown = {{"user", user.is_string() ? user.get<std::string>() : Str(user, "name")},
                  {"admin", user.is_object() && user.value("admin", false)},
                  {"server", s.cfg().server},
                  {"team", s.cfg().team},
                  {"teams", teams}};
    s.out() << RenderKeyValues(shown);
    return Status::Ok();
  });
}

// ---------------------------------------------------------------------------------------------
// Teams and members

void AddTeamCommands(CLI::App& app, const std::shared_ptr<Shared>& sh) {
  CLI::App* team = Noun(&app, "team", "Manage teams");
  struct Opts {
    std::string name, display_name, user, role;
    int quota_instances = 0, quota_memory = 0, quota_cpu = 0;
    int limit = 0;
    CLI::Option *display_name_opt = nullptr, *qi = nullptr, *qm = nullptr, *qc = nullptr;
  };
  auto o = std::make_shared<Opts>();

  CLI::App* list = Leaf(team, sh, "list", "List your teams", [o](Session& s) -> Status {
    BERTH_ASSIGN_OR_RETURN(Json l, s.List("/api/v1/teams", o->limit));
    s.PrintList(l, "teams", {"NAME", "DISPLAY NAME", "CREATED"}, [](const Json& t) {
      return std::vector<std::string>{Field(t, "name"), Field(t, "display_name"), Created(t)};
    });
    return Status::Ok();
  });
  list->add_option("--limit", o->limit, "Show at most N teams (default: all)")
      ->check(CLI::PositiveNumber);

  CLI::App* create = Leaf(team, sh, "create", "Create a team (you become its owner)",
                          [o](Session& s) -> Status {
    Json body = {{"name", o->name}};
    if (Given(o->display_name_opt)) body["display_name"] = o->display_name;
    BERTH_ASSIGN_OR_RETURN(Json resp, s.Call("POST", "/api/v1/teams", &body));
    s.PrintObject(resp);
    return Status::Ok();
  });
  create->add_option("name", o->name, "Team name")->required();
  CLI::Option* dn = create->add_option("--display-name", o->display_name, "Display name");

  CLI::App* show = Leaf(team, sh, "show", "Show a team", [o](Session& s) -> Status {
    BERTH_ASSIGN_OR_RETURN(Json resp,
                           s.Call("GET", "/api/v1/teams/" + EncodeComponent(o->name)));
    s.PrintObject(resp);
    return Status::Ok();
  });
  show->add_option("name", o->name, "Team name")->required();

  CLI::App* use = Leaf(team, sh, "use", "Make a team the default for later commands",
                       [o](Session& s) -> Status {
    BERTH_ASSIGN_OR_RETURN(Json resp,
                           s.Call("GET", "/api/v1/teams/" + EncodeComponent(o->name)));
    s.stored().team = o->name;
    BERTH_RETURN_IF_ERROR(s.SaveStored());
    s.PrintDone(resp, "now using team " + o->name);
    return Status::Ok();
  });
  use->add_option("name", o->name, "Team name")->required();

  CLI::App* update = Leaf(team, sh, "update", "Change a team's display name or quota",
                          [o](Session& s) -> Status {
    Json body = Json::object();
    if (Given(o->display_name_opt)) body["display_name"] = o->display_name;
    Json quota = Json::object();
    if (Given(o->qi)) quota["instances"] = o->quota_instances;
    if (Given(o->qm)) quota["memory_mb"] = o->quota_memory;
    if (Given(o->qc)) quota["cpu_millis"] = o->quota_cpu;
    if (!quota.empty()) body["quota"] = quota;
    if (body.empty()) return Usage("nothing to change: give at least one flag (see --help)");
    BERTH_ASSIGN_OR_RETURN(
        Json resp, s.Call("PATCH", "/api/v1/teams/" + EncodeComponent(o->name), &body));
    s.PrintObject(resp);
    return Status::Ok();
  });
  update->add_option("name", o->name, "Team name")->required();
  CLI::Option* udn = update->add_option("--display-name", o->display_name, "Display name");
  o->qi = update->add_option("--quota-instances", o->quota_instances,
                             "Most running instances (0 = unlimited)")
              ->check(CLI::NonNegativeNumber);
  o->qm = update->add_option("--quota-memory-mb", o->quota_memory,
                             "Most memory in MB (0 = unlimited)")
              ->check(CLI::NonNegativeNumber);
  o->qc = update->add_option("--quota-cpu-millis", o->quota_cpu,
                             "Most CPU in millicores (0 = unlimited)")
              ->check(CLI::NonNegativeNumber);
  // create and update each own a --display-name; only one of them runs.
  create->preparse_callback([o, dn](size_t) { o->display_name_opt = dn; });
  update->preparse_callback([o, udn](size_t) { o->display_name_opt = udn; });

  auto team_yes = std::make_shared<bool>(false);
  CLI::App* del = Leaf(team, sh, "delete", "Delete a team and everything in it",
                       [o, team_yes](Session& s) -> Status {
    BERTH_RETURN_IF_ERROR(detail::ConfirmDestructive(
        s.world(), *team_yes, "team delete",
        "team \"" + o->name + "\" with all its apps, components and members", o->name));
    BERTH_ASSIGN_OR_RETURN(Json resp,
                           s.Call("DELETE", "/api/v1/teams/" + EncodeComponent(o->name)));
    s.PrintDone(resp, "deleted team " + o->name);
    return Status::Ok();
  });
  del->add_option("name", o->name, "Team name")->required();
  del->add_flag("-y,--yes", *team_yes, "Do not ask for confirmation (needed without a terminal)");

  // Members of the current team (--team or `berth team use`).
  CLI::App* member = Noun(team, "member", "Manage the members of a team");
  auto members = [](Session& s) { return s.TeamPath() + "/members"; };

  CLI::App* mlist = Leaf(member, sh, "list", "List the members of the team",
                         [o, members](Session& s) -> Status {
    BERTH_ASSIGN_OR_RETURN(Json l, s.List(members(s), o->limit));
    s.PrintList(l, "members", {"USER", "ROLE"}, [](const Json& m) {
      return std::vector<std::string>{Field(m, "user"), Field(m, "role")};
    });
    return Status::Ok();
  });
  mlist->add_option("--limit", o->limit, "Show at most N members (default: all)")
      ->check(CLI::PositiveNumber);

  const auto kRoles = CLI::IsMember({"owner", "admin", "developer", "viewer"});
  CLI::App* madd = Leaf(member, sh, "add", "Add a user to the team", [o, members](Session& s) {
    Json body = {{"user", o->user}, {"role", o->role}};
    auto resp = s.Call("POST", members(s), &body);
    if (resp.ok()) s.PrintObject(*resp);
    return resp.status();
  });
  madd->add_option("user", o->user, "User name")->required();
  madd->add_option("--role", o->role, "owner, admin, developer or viewer")
      ->required()
      ->check(kRoles);

  CLI::App* mset = Leaf(member, sh, "set", "Change a member's role", [o, members](Session& s) {
    Json body = {{"role", o->role}};
    auto resp = s.Call("PATCH", members(s) + "/" + EncodeComponent(o->user), &body);
    if (resp.ok()) s.PrintObject(*resp);
    return resp.status();
  });
  mset->add_option("user", o->user, "User name")->required();
  mset->add_option("--role", o->role, "owner, admin, developer or viewer")
      ->required()
      ->check(kRoles);

  CLI::App* mrm = Leaf(member, sh, "remove", "Remove a member from the team",
                       [o, members](Session& s) {
    auto resp = s.Call("DELETE", members(s) + "/" + EncodeComponent(o->user));
    if (resp.ok()) s.PrintDone(*resp, "removed member " + o->user + " from team " + s.cfg().team);
    return resp.status();
  });
  mrm->add_option("user", o->user, "User name")->required();
}

// ---------------------------------------------------------------------------------------------
// Apps

// `berth settings show|set`: the platform settings (who may create teams, the per-user team
// limit and the quota of teams users create).
void AddSettingsCommands(CLI::App& app, const std::shared_ptr<Shared>& sh) {
  CLI::App* noun = Noun(&app, "settings", "Show or change the platform settings (administrators)");
  struct Opts {
    std::string team_creation;
    int max_teams = 0, qi = 0, qm = 0, qc = 0;
    CLI::Option *max_opt = nullptr, *qi_opt = nullptr, *qm_opt = nullptr, *qc_opt = nullptr;
  };
  auto o = std::make_shared<Opts>();
  Leaf(noun, sh, "show", "Show the platform settings", [](Session& s) -> Status {
    BERTH_ASSIGN_OR_RETURN(Json resp, s.Call("GET", "/api/v1/settings"));
    s.PrintObject(resp);
    return Status::Ok();
  });
  CLI::App* set = Leaf(noun, sh, "set", "Change platform settings (platform administrators)",
                       [o](Session& s) -> Status {
    Json body = Json::object();
    if (!o->team_creation.empty()) body["team_creation"] = o->team_creation;
    if (Given(o->max_opt)) body["max_teams_per_user"] = o->max_teams;
    Json quota = Json::object();
    if (Given(o->qi_opt)) quota["instances"] = o->qi;
    if (Given(o->qm_opt)) quota["memory_mb"] = o->qm;
    if (Given(o->qc_opt)) quota["cpu_millis"] = o->qc;
    if (!quota.empty()) body["default_team_quota"] = quota;
    if (body.empty()) return Usage("nothing to change: give at least one flag (see --help)");
    BERTH_ASSIGN_OR_RETURN(Json resp, s.Call("PATCH", "/api/v1/settings", &body));
    s.PrintObject(resp);
    return Status::Ok();
  });
  set->add_option("--team-creation", o->team_creation,
                  "Who may create teams: admins (platform administrators only) or everyone")
      ->check(CLI::IsMember({"admins", "everyone"}));
  o->max_opt = set->add_option("--max-teams-per-user", o->max_teams,
                               "Teams a user (not an administrator) may have created")
                   ->check(CLI::Range(1, 1000));
  o->qi_opt = set->add_option("--default-quota-instances", o->qi,
                              "Instances quota of a team a user creates (0 = unlimited)")
                  ->check(CLI::NonNegativeNumber);
  o->qm_opt = set->add_option("--default-quota-memory-mb", o->qm,
                              "Memory quota in MB of a team a user creates (0 = unlimited)")
                  ->check(CLI::NonNegativeNumber);
  o->qc_opt = set->add_option("--default-quota-cpu-millis", o->qc,
                              "CPU quota in millicores of a team a user creates (0 = unlimited)")
                  ->check(CLI::NonNegativeNumber);
}

void AddAppCommands(CLI::App& app, const std::shared_ptr<Shared>& sh) {
  CLI::App* noun = Noun(&app, "app", "Manage apps in a team");
  struct Opts {
    std::string name, display_name, description;
    int limit = 0;
    CLI::Option *dn = nullptr, *desc = nullptr;
  };
  auto o = std::make_shared<Opts>();
  auto apps = [](Session& s) { return s.TeamPath() + "/apps"; };
  auto one = [o, apps](Session& s) { return apps(s) + "/" + EncodeComponent(o->name); };
  auto body_of = [o]() {
    Json body = Json::object();
    if (Given(o->dn)) body["display_name"] = o->display_name;
    if (Given(o->desc)) body["description"] = o->description;
    return body;
  };

  CLI::App* list = Leaf(noun, sh, "list", "List the team's apps", [o, apps](Session& s) {
    auto l = s.List(apps(s), o->limit);
    if (l.ok()) {
      s.PrintList(*l, "apps", {"NAME", "DISPLAY NAME", "CREATED"}, [](const Json& a) {
        return std::vector<std::string>{Field(a, "name"), Field(a, "display_name"), Created(a)};
      });
    }
    return l.status();
  });
  list->add_option("--limit", o->limit, "Show at most N apps (default: all)")
      ->check(CLI::PositiveNumber);

  CLI::App* create = Leaf(noun, sh, "create", "Create an app", [o, apps, body_of](Session& s) {
    Json body = body_of();
    body["name"] = o->name;
    auto resp = s.Call("POST", apps(s), &body);
    if (resp.ok()) s.PrintObject(*resp);
    return resp.status();
  });
  CLI::App* update = Leaf(noun, sh, "update", "Change an app", [one, body_of](Session& s) {
    Json body = body_of();
    if (body.empty()) return Usage("nothing to change: give at least one flag (see --help)");
    auto resp = s.Call("PATCH", one(s), &body);
    if (resp.ok()) s.PrintObject(*resp);
    return resp.status();
  });
  for (CLI::App* c : {create, update}) {
    c->add_option("name", o->name, "App name")->required();
    CLI::Option* dn = c->add_option("--display-name", o->display_name, "Display name");
    CLI::Option* desc = c->add_option("--description", o->description, "Description");
    c->preparse_callback([o, dn, desc](size_t) {
      o->dn = dn;
      o->desc = desc;
    });
  }

  CLI::App* show = Leaf(noun, sh, "show", "Show an app", [one](Session& s) {
    auto resp = s.Call("GET", one(s));
    if (resp.ok()) s.PrintObject(*resp);
    return resp.status();
  });
  show->add_option("name", o->name, "App name")->required();

  auto app_yes = std::make_shared<bool>(false);
  CLI::App* del = Leaf(noun, sh, "delete", "Delete an app and its components",
                       [o, one, app_yes](Session& s) -> Status {
    BERTH_RETURN_IF_ERROR(detail::ConfirmDestructive(
        s.world(), *app_yes, "app delete",
        "app \"" + o->name + "\" with all its components, versions and routes", o->name));
    auto resp = s.Call("DELETE", one(s));
    if (resp.ok()) s.PrintDone(*resp, "deleted app " + o->name);
    return resp.status();
  });
  del->add_option("name", o->name, "App name")->required();
  del->add_flag("-y,--yes", *app_yes, "Do not ask for confirmation (needed without a terminal)");
}

// ---------------------------------------------------------------------------------------------
// Components and dependencies

// What a component really is, for `component list`: stopped, scaled to 0, never built, building,
// its build failed, crash-looping, restarting, starting (n/m ready) or running (n/m ready) — one
// look at its instances and, when none run, its versions. A job's state is its desired state.
std::string ComponentState(Session& s, const std::string& path, const Json& c) {
  const std::string desired = Str(c, "desired_state");
  const std::string kind = Str(c, "kind");
  if (desired == "stopped") return "stopped";
  if (kind == "job" || kind == "cronjob") return desired;
  // Every Procfile process type counts (web=2 worker=1 wants 3); one-off runs and the release
  // are not what the component keeps running.
  int want = c.value("replicas", 0);
  const Json types = c.value("process_types", Json::object());
  if (types.is_object() && !types.empty()) {
    want = 0;
    for (const auto& [type, n] : types.items()) want += n.is_number_integer() ? n.get<int>() : 0;
  }
  auto insts = s.Call("GET", path + "/instances?limit=500");
  if (!insts.ok()) return desired;
  int total = 0, ready = 0, looping = 0, backoff = 0;
  for (const auto& i : insts->value("items", Json::array())) {
    const std::string process = Str(i, "process");
    if (process == "run" || process == "release") continue;
    ++total;
    if (i.value("ready", false) && Str(i, "state") == "running") ++ready;
    const bool up = i.value("ready", false);
    if (!up && i.value("restarts", 0) >= 2) {
      ++looping;  // between its restarts it is briefly "starting": still crash-looping
    } else if (Str(i, "state") == "backoff") {
      ++backoff;
    }
  }
  const std::string count = " (" + std::to_string(ready) + "/" + std::to_string(want) + " ready)";
  if (looping > 0) return "crash-looping" + count;
  if (backoff > 0) return "restarting" + count;
  if (total > 0) return (ready >= want ? "running" : "starting") + count;
  if (want == 0) return "scaled to 0";
  auto versions = s.Call("GET", path + "/versions?limit=500");
  if (!versions.ok()) return desired;
  const Json items = versions->value("items", Json::array());
  if (items.empty()) return "never built";
  const Json* newest = nullptr;
  bool any_ready = false;
  for (const auto& v : items) {
    any_ready |= Str(v, "status") == "ready";
    if (!newest || v.value("number", int64_t{0}) > newest->value("number", int64_t{0})) newest = &v;
  }
  const std::string st = newest ? Str(*newest, "status") : "";
  if (st == "queued" || st == "building") return "building";
  if (!any_ready) return st == "failed" ? "build failed" : "never built";
  return "starting" + count;
}

void AddComponentCommands(CLI::App& app, const std::shared_ptr<Shared>& sh) {
  CLI::App* noun = Noun(&app, "component", "Manage the components of an app");
  struct Opts {
    std::string name, app;
    int limit = 0;
    // Raw flag values; Given() on the options decides what goes into the body.
    std::string kind, schedule, source, git, ref, archive, build_command, start_command, subdir;
    std::string max_surge, max_unavailable;
    int grace = 0;
    int retries = 0, job_timeout = 0, history_limit = 0;
    std::string concurrency_policy, suspend;
    std::vector<std::string> connection_env;
    std::vector<std::string> ports, env;
    int replicas = 0, memory = 0, cpu = 0;
    bool no_deploy = false;
    int timeout_s = 300;
    std::vector<std::pair<CLI::Option*, std::function<void(ComponentFlags&)>>> flag_opts;
  };
  auto o = std::make_shared<Opts>();
  auto comps = [o](Session& s) {
    return s.TeamPath() + "/apps/" + EncodeComponent(o->app) + "/components";
  };
  auto one = [o, comps](Session& s) { return comps(s) + "/" + EncodeComponent(o->name); };
  auto flags_of = [o]() {
    ComponentFlags f;
    for (auto& [opt, apply] : o->flag_opts) {
      if (Given(opt)) apply(f);
    }
    return f;
  };

  auto add_app = [o](CLI::App* c) {
    c->add_option("--app", o->app, "App the component belongs to")->required();
  };

  CLI::App* list = Leaf(noun, sh, "list", "List an app's components", [o, comps](Session& s) {
    auto l = s.List(comps(s), o->limit);
    if (l.ok()) {
      // STATE is what runs, not only what was asked for (docs/cli.md "Components").
      std::map<std::string, std::string> states;
      if (!s.json()) {
        for (const auto& c : l->value("items", Json::array())) {
          states[Str(c, "name")] = ComponentState(s, comps(s) + "/" + EncodeComponent(Str(c, "name")), c);
        }
      }
      s.PrintList(*l, "components", {"NAME", "KIND", "REPLICAS", "PORTS", "STATE"},
                  [&states](const Json& c) {
                    std::string ports;
                    if (c.contains("ports") && c["ports"].is_array()) {
                      for (const auto& p : c["ports"]) {
                        ports += (ports.empty() ? "" : ",") + FormatPort(p);
                      }
                    }
                    return std::vector<std::string>{Field(c, "name"), Field(c, "kind"),
                                                    Field(c, "replicas"), ports,
                                                    states[Str(c, "name")]};
                  });
    }
    return l.status();
  });
  add_app(list);
  list->add_option("--limit", o->limit, "Show at most N components (default: all)")
      ->check(CLI::PositiveNumber);

  CLI::App* create = Leaf(noun, sh, "create",
                          "Create a component; with a source, also build and deploy it",
                          [o, comps, flags_of](Session& s) {
    ComponentFlags flags = flags_of();
    auto body = BuildComponentBody(o->name, flags, false, s.world().cwd);
    if (!body.ok()) return Usage(body.status().message());
    // An archive is uploaded once the component exists (the server keeps it).
    if (flags.archive) body->erase("source");
    auto resp = s.Call("POST", comps(s), &*body);
    if (resp.ok() && flags.archive) {
      Status up = UploadArchive(s.world(), s.cfg(), o->app, o->name, *flags.archive);
      if (!up.ok()) return up;
      resp = s.Call("GET", comps(s) + "/" + EncodeComponent(o->name));
    }
    bool deploy = (flags.source_dir || flags.git_url || flags.archive) && !o->no_deploy;
    if (!resp.ok() || !deploy) {
      if (resp.ok()) s.PrintObject(*resp);
      return resp.status();
    }
    if (!s.json()) s.out() << "-----> created component " << o->name << " in app " << o->app << "\n";
    DeployOptions d;
    d.app = o->app;
    d.component = o->name;
    d.timeout_s = o->timeout_s;
    d.json = s.json();
    int exit_code = 0;
    return BuildAndDeploy(s.world(), s.cfg(), d, &exit_code);
  });
  create->add_flag("--no-deploy", o->no_deploy, "Only create the component; do not build or deploy it");
  create->add_option("--timeout", o->timeout_s,
                     "With a source: give up waiting for the build and the deploy after this many seconds (default 300)")
      ->check(CLI::Range(1, 86400));
  CLI::App* set = Leaf(noun, sh, "set", "Change some fields of a component (JSON merge patch)",
                       [o, one, flags_of](Session& s) {
    ComponentFlags flags = flags_of();
    std::optional<std::string> archive = flags.archive;
    flags.archive.reset();
    Result<Json> resp = Json::object();
    auto body = BuildComponentBody("", flags, true, s.world().cwd);
    if (body.ok()) {
      resp = s.Call("PATCH", one(s), &*body);
    } else if (!archive) {
      return Usage(body.status().message());
    }
    if (resp.ok() && archive) {
      // The archive is uploaded (streamed) and becomes the source.
      Status up = UploadArchive(s.world(), s.cfg(), o->app, o->name, *archive);
      if (!up.ok()) return up;
      resp = s.Call("GET", one(s));
    }
    if (resp.ok()) s.PrintObject(*resp);
    return resp.status();
  });
  for (CLI::App* c : {create, set}) {
    bool is_set = c == set;
    // Raw pointer: `o` owns flag_opts, so capturing the shared_ptr there would be a cycle.
    Opts* op = o.get();
    c->add_option("name", o->name, "Component name")->required();
    add_app(c);
    std::vector<std::pair<CLI::Option*, std::function<void(ComponentFlags&)>>> opts;
    auto str = [&](const char* flag, std::string* field, const char* help,
                   std::optional<std::string> ComponentFlags::*member) {
      CLI::Option* opt = c->add_option(flag, *field, help);
      opts.emplace_back(opt, [field, member](ComponentFlags& f) { f.*member = *field; });
      return opt;
    };
    auto num = [&](const char* flag, int* field, const char* help,
                   std::optional<int> ComponentFlags::*member) {
      CLI::Option* opt = c->add_option(flag, *field, help)->check(CLI::NonNegativeNumber);
      opts.emplace_back(opt, [field, member](ComponentFlags& f) { f.*member = *field; });
      return opt;
    };
    str("--kind", &o->kind, "service, stateful, job or cronjob", &ComponentFlags::kind)
        ->check(CLI::IsMember({"service", "stateful", "job", "cronjob"}));
    str("--schedule", &o->schedule, "Cron expression (cronjob only)", &ComponentFlags::schedule);
    CLI::Option* port_opt =
        c->add_option("--port", o->ports,
                      is_set ? "PORT[/PROTOCOL][:inner|outer]; replaces the list (repeatable)"
                             : "PORT[/PROTOCOL][:inner|outer], e.g. 8080/http (repeatable)")
            ->check(
                [](const std::string& v) {
                  auto p = ParsePortSpec(v);
                  return p.ok() ? std::string() : p.status().message();
                },
                "PORT")
            ->take_all();
    opts.emplace_back(port_opt, [op](ComponentFlags& f) { f.ports = op->ports; });
    CLI::Option* env_opt =
        c->add_option("--env", o->env,
                      is_set ? "KEY=VALUE to set, KEY= to remove (repeatable)"
                             : "KEY=VALUE (repeatable)")
            ->check(
                [is_set](const std::string& v) {
                  auto e = ParseEnvAssignment(v, is_set);
                  return e.ok() ? std::string() : e.status().message();
                },
                "K=V")
            ->take_all();
    opts.emplace_back(env_opt, [op](ComponentFlags& f) { f.env = op->env; });
    CLI::Option* conn_opt =
        c->add_option("--connection-env", o->connection_env,
                      "KEY=VALUE given to the components that depend on this one"
                      " (KEY= removes it with set; repeatable)")
            ->check(
                [is_set](const std::string& v) {
                  auto e = ParseEnvAssignment(v, is_set);
                  return e.ok() ? std::string() : e.status().message();
                },
                "K=V")
            ->take_all();
    opts.emplace_back(conn_opt, [op](ComponentFlags& f) { f.connection_env = op->connection_env; });
    num("--replicas", &o->replicas, "Number of instances", &ComponentFlags::replicas);
    num("--memory", &o->memory, "Memory limit in MB (0 = none)", &ComponentFlags::memory_mb);
    num("--cpu", &o->cpu, "CPU limit in millicores (0 = none)", &ComponentFlags::cpu_millis);
    CLI::Option* src = str("--source", &o->source, "Build from this directory",
                           &ComponentFlags::source_dir);
    CLI::Option* git = str("--git", &o->git, "Build from this git repository URL",
                           &ComponentFlags::git_url);
    str("--ref", &o->ref, "Git branch, tag or commit", &ComponentFlags::git_ref);
    CLI::Option* archive = str("--archive", &o->archive, "Build from this archive file",
                               &ComponentFlags::archive);
    src->excludes(git)->excludes(archive);
    git->excludes(archive);
    str("--build-command", &o->build_command, "Build command", &ComponentFlags::build_command);
    str("--start-command", &o->start_command, "Start command", &ComponentFlags::start_command);
    str("--subdir", &o->subdir, "Subdirectory of the source to build", &ComponentFlags::subdir);
    str("--max-surge", &o->max_surge,
        "Rolling update: instances above the replicas, a count or a percentage (default 1)",
        &ComponentFlags::max_surge);
    str("--max-unavailable", &o->max_unavailable,
        "Rolling update: replicas that may be not ready, a count or a percentage (default 0)",
        &ComponentFlags::max_unavailable);
    num("--grace-period", &o->grace,
        "Seconds between SIGTERM and SIGKILL when an instance stops (default 10)",
        &ComponentFlags::grace_period_s);
    num("--retries", &o->retries,
        "Job/cronjob: failed attempts retried before a run fails (default 3)",
        &ComponentFlags::retries);
    num("--job-timeout", &o->job_timeout,
        "Job/cronjob: seconds a run may take, retries included (0 = no limit)",
        &ComponentFlags::job_timeout_s);
    num("--history-limit", &o->history_limit, "Job/cronjob: finished runs kept (default 10)",
        &ComponentFlags::history_limit);
    str("--concurrency-policy", &o->concurrency_policy,
        "Job/cronjob: a new run while one goes: allow, forbid or replace (default allow)",
        &ComponentFlags::concurrency_policy)
        ->check(CLI::IsMember({"allow", "forbid", "replace"}));
    str("--suspend", &o->suspend, "Cronjob: true stops the schedule, false resumes it",
        &ComponentFlags::suspend)
        ->check(CLI::IsMember({"true", "false"}));
    c->preparse_callback([op, opts](size_t) { op->flag_opts = opts; });
  }

  CLI::App* show = Leaf(noun, sh, "show", "Show a component", [one](Session& s) {
    auto resp = s.Call("GET", one(s));
    if (resp.ok()) s.PrintObject(*resp);
    return resp.status();
  });
  show->add_option("name", o->name, "Component name")->required();
  add_app(show);

  auto delete_volumes = std::make_shared<bool>(false);
  auto comp_yes = std::make_shared<bool>(false);
  CLI::App* del = Leaf(noun, sh, "delete", "Delete a component",
                       [o, one, delete_volumes, comp_yes](Session& s) -> Status {
    BERTH_RETURN_IF_ERROR(detail::ConfirmDestructive(
        s.world(), *comp_yes, "component delete",
        "component \"" + o->name + "\" of app \"" + o->app + "\" with its versions" +
            (*delete_volumes ? " and volumes" : ""),
        o->name));
    auto resp = s.Call("DELETE", one(s) + (*delete_volumes ? "?volumes=delete" : ""));
    if (resp.ok()) s.PrintDone(*resp, "deleted component " + o->name);
    return resp.status();
  });
  del->add_option("name", o->name, "Component name")->required();
  add_app(del);
  del->add_flag("--delete-volumes", *delete_volumes,
                "Also delete its volumes (DATA/volumes/...; kept by default)");
  del->add_flag("-y,--yes", *comp_yes, "Do not ask for confirmation (needed without a terminal)");

  // Dependencies of one component.
  CLI::App* dep = Noun(&app, "dependency", "Manage what a component depends on");
  struct DepOpts {
    std::string name, app, component, on, target_app;
    int limit = 0;
    CLI::Option* target_app_opt = nullptr;
  };
  auto d = std::make_shared<DepOpts>();
  auto deps = [d](Session& s) {
    return s.TeamPath() + "/apps/" + EncodeComponent(d->app) + "/components/" +
           EncodeComponent(d->component) + "/dependencies";
  };
  auto add_owner = [d](CLI::App* c) {
    c->add_option("--app", d->app, "App of the depending component")->required();
    c->add_option("--component", d->component, "The depending component")->required();
  };

  CLI::App* dlist = Leaf(dep, sh, "list", "List a component's dependencies",
                         [d, deps](Session& s) {
    auto l = s.List(deps(s), d->limit);
    if (l.ok()) {
      s.PrintList(*l, "dependencies", {"NAME", "TARGET APP", "TARGET COMPONENT"},
                  [](const Json& x) {
                    return std::vector<std::string>{Field(x, "name"), Field(x, "target_app"),
                                                    Field(x, "target_component")};
                  });
    }
    return l.status();
  });
  add_owner(dlist);
  dlist->add_option("--limit", d->limit, "Show at most N dependencies (default: all)")
      ->check(CLI::PositiveNumber);

  CLI::App* dadd = Leaf(dep, sh, "add", "Make the component depend on another",
                        [d, deps](Session& s) {
    Json body = {{"target_component", d->on}};
    if (Given(d->target_app_opt)) body["target_app"] = d->target_app;
    auto resp = s.Call("POST", deps(s), &body);
    if (resp.ok()) s.PrintObject(*resp);
    return resp.status();
  });
  add_owner(dadd);
  dadd->add_option("--on", d->on, "The component depended on")->required();
  d->target_app_opt = dadd->add_option("--target-app", d->target_app,
                                       "App of the target (default: the same app)");

  CLI::App* drm = Leaf(dep, sh, "remove", "Remove a dependency", [d, deps](Session& s) {
    auto resp = s.Call("DELETE", deps(s) + "/" + EncodeComponent(d->name));
    if (resp.ok()) s.PrintDone(*resp, "deleted dependency " + d->name);
    return resp.status();
  });
  drm->add_option("name", d->name, "Dependency name (see `berth dependency list`)")->required();
  add_owner(drm);
}

// ---------------------------------------------------------------------------------------------
// Users, tokens, audit

void AddUserCommands(CLI::App& app, const std::shared_ptr<Shared>& sh) {
  CLI::App* noun = Noun(&app, "user", "Manage users (platform administrators)");
  struct Opts {
    std::string name, email, display_name, admin_text, disabled_text;
    bool admin = false, password_stdin = false, current_password_stdin = false, all = false;
    int limit = 0;
    CLI::Option *email_opt = nullptr, *dn_opt = nullptr, *admin_opt = nullptr,
                *disabled_opt = nullptr;
  };
  auto o = std::make_shared<Opts>();
  auto one = [o]() { return "/api/v1/users/" + EncodeComponent(o->name); };

  CLI::App* list = Leaf(noun, sh, "list", "List users", [o](Session& s) {
    auto l = s.List(o->all ? "/api/v1/users?all=true" : "/api/v1/users", o->limit);
    if (l.ok()) {
      std::vector<std::string> headers = {"NAME", "ADMIN", "DISABLED", "EMAIL"};
      if (o->all) headers.push_back("SERVICE");
      s.PrintList(*l, "users", headers, [o](const Json& u) {
        std::vector<std::string> row = {Field(u, "name"), Field(u, "admin"), Field(u, "disabled"),
                                        Field(u, "email")};
        if (o->all) row.push_back(Field(u, "service"));
        return row;
      });
    }
    return l.status();
  });
  list->add_option("--limit", o->limit, "Show at most N users (default: all)")
      ->check(CLI::PositiveNumber);
  list->add_flag("--all", o->all, "Also service accounts berth made for itself (berth-gateway)");

  CLI::App* create = Leaf(noun, sh, "create", "Create a user", [o](Session& s) -> Status {
    Json body = {{"name", o->name}};
    if (Given(o->dn_opt)) body["display_name"] = o->display_name;
    if (Given(o->email_opt)) body["email"] = o->email;
    if (o->admin) body["admin"] = true;
    BERTH_ASSIGN_OR_RETURN(std::string password,
                           GetPassword(s, o->password_stdin,
                                       "Password for new user " + o->name + " (empty for none): ",
                                       false));
    if (!password.empty()) body["password"] = password;
    BERTH_ASSIGN_OR_RETURN(Json resp, s.Call("POST", "/api/v1/users", &body));
    s.PrintObject(resp);
    return Status::Ok();
  });
  create->add_option("name", o->name, "User name")->required();
  create->add_flag("--password-stdin", o->password_stdin, "Read the password from stdin");
  create->add_flag("--admin", o->admin, "Make the user a platform administrator");
  CLI::Option* cemail = create->add_option("--email", o->email, "E-mail address");
  CLI::Option* cdn = create->add_option("--display-name", o->display_name, "Display name");
  create->preparse_callback([o, cemail, cdn](size_t) {
    o->email_opt = cemail;
    o->dn_opt = cdn;
  });

  CLI::App* show = Leaf(noun, sh, "show", "Show a user", [one](Session& s) {
    auto resp = s.Call("GET", one());
    if (resp.ok()) s.PrintObject(*resp);
    return resp.status();
  });
  show->add_option("name", o->name, "User name")->required();

  CLI::App* update = Leaf(noun, sh, "update", "Change a user", [o, one](Session& s) -> Status {
    Json body = Json::object();
    if (Given(o->admin_opt)) {
      auto b = ParseBoolFlag(o->admin_text, "--admin");
      if (!b.ok()) return Usage(b.status().message());
      body["admin"] = *b;
    }
    if (Given(o->disabled_opt)) {
      auto b = ParseBoolFlag(o->disabled_text, "--disabled");
      if (!b.ok()) return Usage(b.status().message());
      body["disabled"] = *b;
    }
    if (Given(o->email_opt)) body["email"] = o->email;
    if (Given(o->dn_opt)) body["display_name"] = o->display_name;
    if (o->password_stdin) {
      BERTH_ASSIGN_OR_RETURN(std::string pw, ReadStdinLine(s, "new password"));
      if (pw.empty()) return Local("the new password is empty");
      body["password"] = pw;
      if (o->current_password_stdin) {
        BERTH_ASSIGN_OR_RETURN(std::string cur, ReadStdinLine(s, "current password"));
        body["current_password"] = cur;
      }
    } else if (o->current_password_stdin) {
      return Usage("--current-password-stdin needs --password-stdin");
    }
    if (body.empty()) return Usage("nothing to change: give at least one flag (see --help)");
    BERTH_ASSIGN_OR_RETURN(Json resp, s.Call("PATCH", one(), &body));
    s.PrintObject(resp);
    return Status::Ok();
  });
  update->add_option("name", o->name, "User name")->required();
  CLI::Option* uadmin = update->add_option("--admin", o->admin_text, "true or false")
                            ->check(CLI::IsMember({"true", "false"}));
  CLI::Option* udis = update->add_option("--disabled", o->disabled_text, "true or false")
                          ->check(CLI::IsMember({"true", "false"}));
  CLI::Option* uemail = update->add_option("--email", o->email, "E-mail address");
  CLI::Option* udn = update->add_option("--display-name", o->display_name, "Display name");
  update->add_flag("--password-stdin", o->password_stdin,
                   "Read the new password from the first line of stdin");
  update->add_flag("--current-password-stdin", o->current_password_stdin,
                   "Read your current password from the second line of stdin (needed to change "
                   "your own password unless you are an administrator)");
  update->preparse_callback([o, uadmin, udis, uemail, udn](size_t) {
    o->admin_opt = uadmin;
    o->disabled_opt = udis;
    o->email_opt = uemail;
    o->dn_opt = udn;
  });

  CLI::App* del = Leaf(noun, sh, "delete", "Delete a user", [o, one](Session& s) {
    auto resp = s.Call("DELETE", one());
    if (resp.ok()) s.PrintDone(*resp, "deleted user " + o->name);
    return resp.status();
  });
  del->add_option("name", o->name, "User name")->required();

  // Tokens: the caller's own.
  CLI::App* tok = Noun(&app, "token", "Manage your API tokens");
  struct TokOpts {
    std::string name, id;
    int ttl_hours = 0, limit = 0;
    CLI::Option* ttl_opt = nullptr;
  };
  auto t = std::make_shared<TokOpts>();
  CLI::App* tlist = Leaf(tok, sh, "list", "List your API tokens", [t](Session& s) {
    auto l = s.List("/api/v1/tokens", t->limit);
    if (l.ok()) {
      s.PrintList(*l, "tokens", {"ID", "NAME", "EXPIRES", "LAST USED"}, [](const Json& x) {
        return std::vector<std::string>{Field(x, "id"), Field(x, "name"), Field(x, "expires_at"),
                                        Field(x, "last_used_at")};
      });
    }
    return l.status();
  });
  tlist->add_option("--limit", t->limit, "Show at most N tokens (default: all)")
      ->check(CLI::PositiveNumber);

  CLI::App* tcreate = Leaf(tok, sh, "create", "Create an API token (shown once)",
                           [t](Session& s) -> Status {
    Json body = {{"name", t->name}};
    if (Given(t->ttl_opt)) body["ttl_hours"] = t->ttl_hours;
    BERTH_ASSIGN_OR_RETURN(Json resp, s.Call("POST", "/api/v1/tokens", &body));
    s.PrintObject(resp);
    if (!s.json()) s.err() << "Store the token now: it cannot be shown again.\n";
    return Status::Ok();
  });
  tcreate->add_option("name", t->name, "Token name")->required();
  t->ttl_opt = tcreate->add_option("--ttl-hours", t->ttl_hours, "Lifetime in hours")
                   ->check(CLI::PositiveNumber);

  CLI::App* tdel = Leaf(tok, sh, "delete", "Revoke an API token", [t](Session& s) {
    auto resp = s.Call("DELETE", "/api/v1/tokens/" + EncodeComponent(t->id));
    if (resp.ok()) s.PrintDone(*resp, "deleted token " + t->id);
    return resp.status();
  });
  tdel->add_option("id", t->id, "Token ID (see `berth token list`)")->required();

  // Audit log of the current team.
  CLI::App* audit = Noun(&app, "audit", "Read the team's audit log");
  auto alimit = std::make_shared<int>(0);
  CLI::App* alist = Leaf(audit, sh, "list", "List audit entries, newest first",
                         [alimit](Session& s) {
    auto l = s.List(s.TeamPath() + "/audit", *alimit);
    if (l.ok()) {
      s.PrintList(*l, "audit entries", {"TIME", "ACTOR", "ACTION", "RESOURCE"},
                  [](const Json& a) {
                    return std::vector<std::string>{Field(a, "time"), Field(a, "actor"),
                                                    Field(a, "action"), Field(a, "resource")};
                  });
    }
    return l.status();
  });
  alist->add_option("--limit", *alimit, "Show at most N entries (default: all)")
      ->check(CLI::PositiveNumber);
}

Result<std::string> ReadSecretFromTerminal(const std::string& prompt) {
  std::cerr << prompt << std::flush;
  termios old{};
  bool restore = ::tcgetattr(STDIN_FILENO, &old) == 0;
  if (restore) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::string line;
  bool ok = static_cast<bool>(std::getline(std::cin, line));
  if (restore) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
  std::cerr << "\n";
  if (!ok) return Local("no password entered");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// xdg-open URL, detached (its own session, reaped by init), when there is a display to open
// a browser on; without one there is nothing to do: the URL was printed.
Status OpenInBrowser(const std::string& url) {
  const char* x = std::getenv("DISPLAY");
  const char* wl = std::getenv("WAYLAND_DISPLAY");
  if ((x == nullptr || *x == '\0') && (wl == nullptr || *wl == '\0')) return Status::Ok();
  const char* path = std::getenv("PATH");
  std::string opener = path ? Env::Default().FindProgram("xdg-open", path) : "";
  if (opener.empty()) return Local("xdg-open is not installed");
  pid_t child = ::fork();
  if (child < 0) return Local(std::string("fork: ") + std::strerror(errno));
  if (child == 0) {
    ::setsid();
    if (::fork() != 0) ::_exit(0);
    int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
    }
    ::execl(opener.c_str(), "xdg-open", url.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return Status::Ok();
}

}  // namespace

ClientWorld RealClientWorld() {
  ClientWorld w;
  w.in = &std::cin;
  w.out = &std::cout;
  w.err = &std::cerr;
  w.env = [](const char* name) -> const char* { return std::getenv(name); };
  std::error_code ec;
  w.cwd = std::filesystem::current_path(ec).string();
  w.stdin_is_tty = [] { return ::isatty(STDIN_FILENO) == 1; };
  w.read_secret = ReadSecretFromTerminal;
  w.send = [](const std::string& method, const std::string& server, const std::string& path,
              const std::string& body, const std::string& token) {
    return Request(method, server, path, body, token);
  };
  w.open_url = OpenInBrowser;
  w.upload = [](const std::string& method, const std::string& server, const std::string& path,
                const std::string& file, const std::string& token) {
    return UploadFile(method, server, path, file, token);
  };
  return w;
}

// runtime_commands.cc: start, stop, restart, scale, rollback, instances, events, logs (also
// --build), wait.
void AddRuntimeCommands(CLI::App& app, const ClientWorld& world, int* exit_code);

// build_commands.cc: detect, build, versions, build logs.
void AddBuildCommands(CLI::App& app, const ClientWorld& world, int* exit_code);

// heroku_commands.cc: config, releases, ps, open.
void AddHerokuCommands(CLI::App& app, const ClientWorld& world, int* exit_code);

// gateway_commands.cc: domain, tcp, cert.
void AddGatewayCommands(CLI::App& app, const ClientWorld& world, int* exit_code);
// gateway_commands.cc: `berth gateway rotate-credential`, under the gateway role's command.
void AddGatewayAdminCommands(CLI::App& gateway, const ClientWorld& world, int* exit_code);

void RegisterClientCommandsWithWorld(CLI::App& app, int* exit_code, ClientWorld world) {
  app.set_version_flag("--version", std::string("berth ") + BERTH_VERSION);
  auto shared = std::make_shared<Shared>();
  shared->world = std::move(world);
  shared->exit_code = exit_code;
  AddSessionCommands(app, shared);
  AddTeamCommands(app, shared);
  AddSettingsCommands(app, shared);
  AddAppCommands(app, shared);
  AddComponentCommands(app, shared);
  AddUserCommands(app, shared);
  AddRuntimeCommands(app, shared->world, exit_code);  // before build: it owns `logs`
  AddBuildCommands(app, shared->world, exit_code);
  AddGatewayCommands(app, shared->world, exit_code);
  AddHerokuCommands(app, shared->world, exit_code);
}

void RegisterClientCommands(CLI::App& app, int* exit_code) {
  RegisterClientCommandsWithWorld(app, exit_code, RealClientWorld());
}

namespace {

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The visible commands under `parent` closest to `typed`: within two edits, or sharing a
// prefix of at least two letters; nearest first, at most three.
std::vector<std::string> Closest(CLI::App& parent, const std::string& typed) {
  std::vector<std::pair<size_t, std::string>> near;
  for (CLI::App* sub : parent.get_subcommands([](CLI::App*) { return true; })) {
    if (sub->get_group().empty()) continue;  // hidden (shim, static)
    const std::string& name = sub->get_name();
    size_t d = EditDistance(typed, name);
    bool prefix = typed.size() >= 2 && (name.rfind(typed, 0) == 0 || typed.rfind(name, 0) == 0);
    if (d <= 2 || prefix) near.emplace_back(prefix ? std::min<size_t>(d, 1) : d, name);
  }
  std::sort(near.begin(), near.end());
  std::vector<std::string> out;
  for (const auto& [d, name] : near) {
    if (out.size() < 3) out.push_back(name);
  }
  return out;
}

// Whether argv asks for JSON output (-o json, -ojson, --output json, --output=json).
bool WantsJson(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-ojson" || a == "--output=json" || a == "-o=json") return true;
    if ((a == "-o" || a == "--output") && i + 1 < argc && std::string(argv[i + 1]) == "json") {
      return true;
    }
  }
  return false;
}

// Walks the command words of argv down the command tree; the first word that names no
// command where only commands may stand is an unknown command. Returns its message, or "".
std::string UnknownCommand(CLI::App& app, int argc, char** argv) {
  CLI::App* cur = &app;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.empty() || a[0] == '-') return "";
    auto subs = cur->get_subcommands([](CLI::App*) { return true; });
    if (subs.empty()) return "";
    CLI::App* next = nullptr;
    for (CLI::App* sub : subs) {
      if (sub->check_name(a)) next = sub;
    }
    if (next != nullptr) {
      cur = next;
      path += (path.empty() ? "" : " ") + a;
      continue;
    }
    if (!cur->get_options([](const CLI::Option* o) { return o->get_positional(); }).empty()) {
      return "";
    }
    std::string msg = "unknown command \"" + (path.empty() ? a : path + " " + a) + "\"";
    std::vector<std::string> close = Closest(*cur, a);
    std::string prefix = path.empty() ? "" : path + " ";
    if (!close.empty()) {
      msg += "; did you mean ";
      for (size_t k = 0; k < close.size(); ++k) {
        msg += std::string(k == 0 ? "" : k + 1 == close.size() ? " or " : ", ") + "`berth " +
               prefix + close[k] + "`";
      }
      msg += "?";
    }
    msg += " (`berth " + prefix + "--help` lists the commands)";
    return msg;
  }
  return "";
}

}  // namespace

int ParseAndRun(CLI::App& app, int argc, char** argv, const int& exit_code) {
  return ParseAndRun(app, argc, argv, exit_code, std::cout, std::cerr);
}

int ParseAndRun(CLI::App& app, int argc, char** argv, const int& exit_code, std::ostream& out,
                std::ostream& err) {
  const bool json = WantsJson(argc, argv);
  if (std::string unknown = UnknownCommand(app, argc, argv); !unknown.empty()) {
    if (json) {
      err << detail::UsageErrorJson(unknown);
    } else {
      err << "error: " << unknown << "\n";
    }
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" that exit 0; CLI11 uses exit codes 100+ for usage
    // errors, berth's contract is 2.
    if (e.get_exit_code() == 0) return app.exit(e, out, err);
    if (json) {
      err << detail::UsageErrorJson(e.what());
      return 2;
    }
    app.exit(e, out, err);
    return 2;
  }
  return exit_code;
}

void RegisterGatewayAdminCommands(CLI::App& gateway, int* exit_code) {
  AddGatewayAdminCommands(gateway, RealClientWorld(), exit_code);
}

}  // namespace berth::cli
