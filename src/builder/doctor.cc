#include "builder/doctor.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <mutex>

#include "builder/detail/process.h"
#include "core/env.h"
#include "sandbox/sandbox.h"

namespace berth::builder {
namespace {

constexpr std::chrono::seconds kVersionTimeout{20};  // gradle starts a JVM: seconds, not ms
constexpr std::chrono::seconds kCacheFor{30};

struct Probe {
  const char* language;
  const char* program;  // looked up on PATH
  const char* shown;    // what the report calls it
  const char* package;
  const char* version_command;  // run with /bin/sh; "" = only look it up
};

// The toolchains detection can ask for (detect.cc) and git for git sources.
constexpr Probe kProbes[] = {
    {"node", "node", "node", "nodejs", "node --version"},
    {"node", "npm", "npm", "npm", "npm --version"},
    // yarn and pnpm are fetched from the npm registry by npx, per component (detect.cc).
    {"node", "npx", "npx", "npm", "npx --version"},
    {"python", "python3", "python3", "python3", "python3 --version"},
    {"python", "python3", "python3 -m pip", "python3-pip", "python3 -m pip --version"},
    {"python", "python3", "python3 -m venv", "python3-venv",
     "python3 -c 'import ensurepip, venv, sys; print(\"venv\", sys.version.split()[0])'"},
    {"go", "go", "go", "golang-go", "go version"},
    {"java", "java", "java", "default-jre-headless", "java -version"},
    {"java", "javac", "javac", "default-jdk-headless", "javac -version"},
    {"java", "mvn", "mvn", "maven", "mvn --version"},
    {"java", "gradle", "gradle", "gradle", "gradle --version"},
    {"php", "php", "php", "php-cli", "php --version"},
    {"php", "composer", "composer", "composer", "composer --version"},
    {"ruby", "ruby", "ruby", "ruby", "ruby --version"},
    {"ruby", "bundle", "bundle", "ruby-bundler", "bundle --version"},
    {"git", "git", "git", "git", "git --version"},
};

std::string Find(const std::string& name, const std::string& build_path) {
  return Env::Default().FindProgram(name, build_path.empty() ? BuildPath() : build_path);
}

// `line` without terminal escape sequences: Maven prints its version in bold ("\e[1mApache
// Maven 3.8.7\e[m") even in batch mode, and the report is text for people and for JSON.
std::string WithoutEscapes(const std::string& line) {
  std::string out;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\x1b') {
      if (i + 1 < line.size() && line[i + 1] == '[') {
        i += 2;
        while (i < line.size() && !(line[i] >= 0x40 && line[i] <= 0x7e)) ++i;
      } else {
        ++i;
      }
      continue;
    }
    if (static_cast<unsigned char>(line[i]) >= 0x20) out += line[i];
  }
  return out;
}

ToolchainCheck Run(const Probe& p, const std::string& build_path) {
  ToolchainCheck c{p.language, p.shown, p.package, false, "", ""};
  c.path = Find(p.program, build_path);
  if (c.path.empty()) return c;
  std::string first_with_digit;
  std::atomic<bool> cancel{false};
  const char* home = std::getenv("HOME");
  detail::RunSpec spec{p.version_command, "/",
                       {"PATH=" + (build_path.empty() ? BuildPath() : build_path), std::string("HOME=") + (home ? home : "/tmp"),
                        "TERM=dumb", "NO_COLOR=1"},
                       std::chrono::steady_clock::now() + kVersionTimeout};
  auto r = detail::RunShell(spec, [&](const std::string& line) {
    if (first_with_digit.empty() && std::any_of(line.begin(), line.end(), [](unsigned char ch) { return ch >= '0' && ch <= '9'; })) first_with_digit = line;
  }, cancel);
  // A module check (pip, venv) fails when the module is missing although python3 exists.
  c.found = r.ok() && r->ok();
  if (c.found) c.version = WithoutEscapes(first_with_digit).substr(0, 200);
  return c;
}

}  // namespace

std::string BuildPath() {
  const char* path = std::getenv("PATH");
  return path != nullptr && *path != '\0' ? path : sandbox::kSystemPath;
}

std::vector<ToolchainCheck> CheckToolchains(const std::string& build_path) {
  static std::mutex mu;
  static std::vector<ToolchainCheck> cached;
  static std::string cached_path;
  static std::chrono::steady_clock::time_point at;
  std::lock_guard<std::mutex> l(mu);  // concurrent callers wait for one run
  auto now = std::chrono::steady_clock::now();
  if (!cached.empty() && cached_path == build_path && now - at < kCacheFor) return cached;
  std::vector<std::future<ToolchainCheck>> runs;
  for (const Probe& p : kProbes) runs.push_back(std::async(std::launch::async, Run, p, build_path));
  std::vector<ToolchainCheck> out;
  for (auto& f : runs) out.push_back(f.get());
  cached = out;
  cached_path = build_path;
  at = std::chrono::steady_clock::now();
  return out;
}

Json ToJson(const std::vector<ToolchainCheck>& checks) {
  Json list = Json::array();
  std::vector<std::string> missing;
  for (const ToolchainCheck& c : checks) {
    list.push_back({{"language", c.language}, {"program", c.program}, {"found", c.found},
                    {"path", c.path}, {"version", c.version}, {"package", c.package}});
    if (!c.found && std::find(missing.begin(), missing.end(), c.package) == missing.end()) {
      missing.push_back(c.package);
    }
  }
  std::string apt;
  for (const std::string& m : missing) {
    if (m.find(' ') == std::string::npos) apt += " " + m;  // "pnpm (npm install -g pnpm)" is not apt
  }
  return {{"toolchains", list}, {"missing", missing}, {"install", apt.empty() ? "" : "apt-get install" + apt}};
}

}  // namespace berth::builder
