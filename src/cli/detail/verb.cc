#include "cli/detail/verb.h"

#include <algorithm>

#include <chrono>
#include <istream>
#include <ostream>

#include "cli/detail/api_errors.h"
#include "cli/detail/flags.h"
#include "cli/detail/http_client.h"

namespace berth::cli::detail {

namespace {
Status Local(std::string m) { return Status(Code::kInternal, "cli", std::move(m)); }
}  // namespace

Status Call::Init() {
  BERTH_ASSIGN_OR_RETURN(std::string path, ClientConfigPath(sh_.world.env));
  auto stored = LoadClientConfig(path);
  if (!stored.ok()) return Local(stored.status().message());
  cfg_ = ResolveClientConfig(*stored, sh_.world.env, sh_.globals.server, sh_.globals.team);
  return Status::Ok();
}

std::string Call::Team() const { return "/api/v1/teams/" + EncodeComponent(cfg_.team); }

std::string Call::App(const std::string& app) const {
  return Team() + "/apps/" + EncodeComponent(app);
}

std::string Call::ComponentPath(const std::string& app, const std::string& component) const {
  return App(app) + "/components/" + EncodeComponent(component);
}

Result<Json> Call::Do(const std::string& method, const std::string& path, const Json* body) {
  std::string text = body ? body->dump(-1, ' ', false, Json::error_handler_t::replace) : "";
  auto r = sh_.world.send(method, cfg_.server, path, text, cfg_.token);
  if (!r.ok()) return Status(r.status().code(), "cli", r.status().message());
  if (r->status < 200 || r->status >= 300) return StatusFromResponse(*r, method + " " + path);
  Json j = r->body.empty() ? Json::object() : Json::parse(r->body, nullptr, false);
  if (j.is_discarded()) return Local("the server's answer is not JSON");
  return j;
}

Result<Json> Call::All(const std::string& path) {
  Json items = Json::array();
  std::string after;
  while (true) {
    std::string q = path + "?limit=500" + (after.empty() ? "" : "&after=" + EncodeComponent(after));
    BERTH_ASSIGN_OR_RETURN(Json page, Do("GET", q));
    for (auto& i : page.value("items", Json::array())) items.push_back(std::move(i));
    std::string next = Str(page, "next");
    if (next.empty() || next == after) break;
    after = next;
  }
  return Json{{"items", items}};
}

Status Call::Stream(const std::string& path, const std::function<bool(const Json&)>& on_line) {
  HttpClientOptions opts;
  opts.read_timeout = std::chrono::seconds(60);  // heartbeats come every 15 s
  auto r = RequestStream("GET", cfg_.server, path, "", cfg_.token,
                         [&](std::string_view line) {
                           Json j = Json::parse(line, nullptr, false);
                           if (j.is_discarded()) return true;
                           return on_line(j);
                         },
                         opts);
  if (!r.ok()) return Status(r.status().code(), "cli", r.status().message());
  if (r->status < 200 || r->status >= 300) return StatusFromResponse(*r, "GET " + path);
  return Status::Ok();
}

void Call::Table(const Json& list, const char* noun, const std::vector<std::string>& headers,
                 const std::function<std::vector<std::string>(const Json&)>& row) {
  if (json()) {
    out() << RenderJson(list);
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& i : list.value("items", Json::array())) rows.push_back(row(i));
  if (rows.empty()) {
    err() << "No " << noun << " found.\n";
    return;
  }
  out() << RenderTable(headers, rows);
}

void Call::Show(const Json& obj) { out() << (json() ? RenderJson(obj) : RenderKeyValues(obj)); }

void Call::Done(const Json& obj, const std::string& text) {
  if (json()) {
    out() << RenderJson(obj);
  } else {
    out() << text << "\n";
  }
}

std::string ErrorCode(const Status& s) {
  if (s.reason() != "cli") return s.reason();
  switch (s.code()) {
    case Code::kUnavailable: return "unavailable";
    case Code::kInvalidArgument: return "invalid_argument";
    case Code::kNotFound: return "not_found";
    case Code::kUnauthenticated: return "unauthenticated";
    case Code::kConflict: return "conflict";
    default: return "client_error";
  }
}

std::string UsageErrorJson(const std::string& message) {
  Json e = {{"error", {{"code", "usage"}, {"message", message}}}};
  return e.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

void Report(const Status& s, std::ostream& err, bool json) {
  const char* hint = s.code() == Code::kUnauthenticated
                         ? "log in with `berth login --server URL --user NAME`"
                         : nullptr;
  if (json) {
    Json e = {{"code", ErrorCode(s)}, {"message", s.message()}};
    if (!s.field().empty()) e["field"] = s.field();
    if (hint) e["hint"] = hint;
    err << Json{{"error", e}}.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
    return;
  }
  if (s.reason() == "cli") {
    err << "error: " << s.message() << "\n";
    return;
  }
  err << "error: " << s.message() << " (" << s.reason() << ")\n";
  if (!s.field().empty()) err << "field: " << s.field() << "\n";
  if (hint) err << "hint: " << hint << "\n";
}

Status ConfirmDestructive(const ClientWorld& world, bool yes, const std::string& verb,
                          const std::string& what, const std::string& name) {
  if (yes) return Status::Ok();
  bool tty = world.stdin_is_tty && world.stdin_is_tty();
  if (!tty || world.in == nullptr) {
    return Status(Code::kInvalidArgument, "usage",
                  "`berth " + verb + "` deletes " + what +
                      " and cannot be undone; stdin is not a terminal to confirm on, so pass "
                      "--yes to confirm");
  }
  *world.err << "This deletes " << what << " and cannot be undone.\n"
             << "Type \"" << name << "\" to confirm: " << std::flush;
  std::string line;
  std::getline(*world.in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line != name) {
    return Status(Code::kInvalidArgument, "cli",
                  "confirmation \"" + line + "\" does not match \"" + name +
                      "\": nothing was deleted");
  }
  return Status::Ok();
}

CLI::App* Leaf(CLI::App& parent, const std::shared_ptr<Shared>& sh, const std::string& name,
               const std::string& description, Runner run) {
  CLI::App* cmd = parent.add_subcommand(name, description);
  cmd->add_option("-o,--output", sh->globals.output, "Output format: table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->group("Global flags");
  cmd->add_option("--server", sh->globals.server, "berth server URL")->group("Global flags");
  cmd->add_option("--team", sh->globals.team, "Team (default: the current one)")
      ->group("Global flags");
  cmd->callback([sh, run = std::move(run)] {
    Call call(*sh);
    Status s = call.Init();
    if (s.ok()) s = run(call);
    if (s.ok()) {
      // < 0: a runner that reported failure itself; -N asks for exit code N (`berth run -- CMD`
      // passes the command's on).
      *sh->exit_code = *sh->exit_code < 0 ? std::min(-*sh->exit_code, 255) : 0;
      return;
    }
    if (s.reason() == "usage") throw CLI::ValidationError(s.message(), 2);
    Report(s, *sh->world.err, sh->globals.output == "json");
    *sh->exit_code = 1;
  });
  return cmd;
}

}  // namespace berth::cli::detail
