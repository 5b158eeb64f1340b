// Source detection (DESIGN.md §2 "builder"): looks at a source tree and says how to build and
// start it, and why — without a Dockerfile. Pure logic over a directory: it reads files, never
// runs anything.
//
// Rules, in the order they apply:
//  1. build.subdir (an override) chooses the directory looked at.
//  2. A Procfile gives the process types ("web: ...", "worker: ...") and the `release` command;
//     its commands win over the language's default start command.
//  3. The language is build.language when given, else the first match of a fixed order:
//     go (go.mod) > java (pom.xml, build.gradle[.kts], mvnw/gradlew, *.jar) > node
//     (package.json) > python (requirements.txt, pyproject.toml, Pipfile, app.py/main.py/
//     manage.py/wsgi.py) > ruby (Gemfile) > php (composer.json, index.php) > static
//     (index.html) > procfile only. When a Procfile's web command names a runtime (node, npm,
//     python, gunicorn, ...) that language wins over the fixed order. An ambiguous tree says
//     in the reasons which languages matched and why one was chosen.
//  4. build.command replaces the build steps, build.start_command the web process.
// Thread-safety: pure functions.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/json_util.h"
#include "model/model.h"

namespace berth::builder {

// A program a build needs and the Debian package that provides it.
struct Tool {
  std::string program;   // "npm"
  std::string package;   // "npm"
  std::vector<std::string> version_args;  // {"--version"}; empty = do not ask
  bool operator==(const Tool&) const = default;
};

struct Detection {
  std::string language;             // go | java | node | python | ruby | php | static | procfile
  std::string language_version;     // requested by the user ("" = whatever is installed)
  std::vector<std::string> build_steps;  // shell commands run in order in the source dir
  std::map<std::string, std::string> processes;  // type → command ("web" is the start command)
  std::string release;              // Procfile `release:` (runs once before a deploy)
  int port = 0;                     // the port the web process listens on by default
  // Why the web process is taken to serve HTTP ("the Procfile's web process", "start script",
  // "main.go listens (ListenAndServe)"); "" when there is no web process or no sign that it
  // listens. A component that declares no port gets `port` for it (builder/auto_port.h).
  std::string serves_http;
  std::map<std::string, std::string> env;  // env the processes need (relative paths are
                                           // relative to the artifact's app dir)
  std::vector<Tool> tools;          // programs the build steps need
  std::vector<std::string> reasons; // why, for people
  std::string cache_kind;           // which dependency cache applies: node | python | go | java | ""

  std::string StartCommand() const {
    auto it = processes.find("web");
    return it == processes.end() ? "" : it->second;
  }
};

// Detects `dir` (an existing directory) with `overrides` applied (build.subdir must already
// be resolved by the caller: `dir` is the directory to build). Errors: invalid_argument when
// the tree matches nothing and no override says what to do, or an override is unusable (an
// unknown language).
Result<Detection> Detect(const std::string& dir, const model::BuildSettings& overrides);

// Parses Procfile text: "type: command" lines, '#' comments. Bad lines are errors naming the
// line.
Result<std::map<std::string, std::string>> ParseProcfile(const std::string& text);

Json ToJson(const Detection& d);

// The directory to build: `root` joined with build.subdir ("" = root). The subdir must be a
// relative path without "..", exist, be a directory and (after resolving symlinks) stay inside
// root. Errors: invalid_argument naming build.subdir.
Result<std::string> ResolveSubdir(const std::string& root, const std::string& subdir);

// Languages Detect knows (for validating build.language).
const std::vector<std::string>& KnownLanguages();

}  // namespace berth::builder
