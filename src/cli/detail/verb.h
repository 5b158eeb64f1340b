// Private to the cli module: one leaf command ("verb") of the runtime and gateway command
// files — the flags every verb takes, the resolved client config, one API call, NDJSON
// streams, and the output helpers (table, key/value, one line, or the JSON as answered).
//
// Thread-safety: a Call lives for one command invocation on the main thread.
#pragma once

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/client_config.h"
#include "cli/detail/commands.h"
#include "cli/output.h"
#include "core/status.h"

namespace berth::cli::detail {

struct Globals {
  std::string output = "table";
  std::string server;
  std::string team;
};

// State shared by the verbs of one App; only one leaf command runs per process.
struct Shared {
  ClientWorld world;
  int* exit_code = nullptr;
  Globals globals;
};

// One invocation: resolved config, API calls, printing.
class Call {
 public:
  explicit Call(Shared& sh) : sh_(sh) {}

  Status Init();
  bool json() const { return sh_.globals.output == "json"; }
  std::ostream& out() { return *sh_.world.out; }
  std::ostream& err() { return *sh_.world.err; }
  const std::string& cwd() const { return sh_.world.cwd; }
  const ClientWorld& world() const { return sh_.world; }
  const ClientConfig& cfg() const { return cfg_; }

  std::string Team() const;
  std::string App(const std::string& app) const;
  std::string ComponentPath(const std::string& app, const std::string& component) const;

  // One API call; non-2xx answers become a Status carrying the server's code/message/field.
  Result<Json> Do(const std::string& method, const std::string& path, const Json* body = nullptr);
  // Every item of a collection (all pages), as {"items": [...]}.
  Result<Json> All(const std::string& path);
  // Streams NDJSON lines to `on_line` (return false to stop).
  Status Stream(const std::string& path, const std::function<bool(const Json&)>& on_line);

  // A list as a table ("No <noun> found." on stderr when empty), or its JSON.
  void Table(const Json& list, const char* noun, const std::vector<std::string>& headers,
             const std::function<std::vector<std::string>(const Json&)>& row);
  void Show(const Json& obj);                           // key: value lines, or the JSON
  void Done(const Json& obj, const std::string& text);  // one line, or the JSON

 private:
  Shared& sh_;
  ClientConfig cfg_;
};

using Runner = std::function<Status(Call&)>;

// Prints a failed verb's error (and the field it names, and a login hint for 401s): as
// "error: <message> (<code>)" lines, or with `json` as one line
// {"error":{"code","message"[,"field"][,"hint"]}} (docs/cli.md "Errors").
void Report(const Status& s, std::ostream& err, bool json);
// The stable code of an error for -o json: the server's code, "usage" for usage errors, and
// for failures the CLI found itself (reason "cli") one named after the Code ("unavailable"
// when the server cannot be reached, ...).
std::string ErrorCode(const Status& s);
// A usage error's JSON line ({"error":{"code":"usage","message":...}}).
std::string UsageErrorJson(const std::string& message);

// Destructive verbs (`app delete`, `component delete`, `team delete`): with `yes` nothing is
// asked; on a terminal the user types the object's name to confirm (anything else: error,
// nothing deleted); without a terminal and without --yes, a usage error naming --yes.
// `what` is what goes, e.g. "app \"shop\" with its components".
Status ConfirmDestructive(const ClientWorld& world, bool yes, const std::string& verb,
                          const std::string& what, const std::string& name);

// Adds the verb `name` under `parent` with the global flags (-o, --server, --team). Exit
// codes: 0, 1 for an error or a runner that set *exit_code = -1 (it reported the failure
// itself; -N for exit code N), 2 for a usage error (reason "usage").
CLI::App* Leaf(CLI::App& parent, const std::shared_ptr<Shared>& sh, const std::string& name,
               const std::string& description, Runner run);

}  // namespace berth::cli::detail
