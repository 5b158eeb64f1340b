#include "builder/detect.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "core/names.h"
#include "core/safe_fs.h"
#include "model/json_util.h"

namespace berth::builder {
namespace {

namespace fs = std::filesystem;

constexpr size_t kReadLimit = 256 << 10;  // bytes of any one file looked at

// Detection reads the user's tree without ever following a symlink (core/safe_fs.h): a
// Procfile or package.json that is a link is as good as absent, wherever it points.
bool Exists(const std::string& dir, const std::string& name) {
  return StatBeneath(dir, name).ok();
}

bool IsFile(const std::string& dir, const std::string& name) {
  auto st = StatBeneath(dir, name);
  return st.ok() && S_ISREG(st->st_mode);
}

std::string Read(const std::string& dir, const std::string& name) {
  auto text = ReadBeneath(dir, name, 0, kReadLimit);
  return text.ok() ? *text : std::string();
}

std::string Trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

std::string Bq(const std::string& s) { return "`" + s + "`"; }

// Files matching a suffix directly in `dir`, sorted.
std::vector<std::string> FilesWithSuffix(const std::string& dir, const std::string& suffix) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string n = it->path().filename().string();
    if (n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        it->symlink_status(ec).type() == fs::file_type::regular) {
      out.push_back(n);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A port the program obviously listens on: `PORT || 8080`, `.listen(8080`, `port=8080`,
// `getenv("PORT", "8080")`, `":8080"`.
int GuessPort(const std::string& source) {
  static const std::regex kPatterns[] = {
      std::regex(R"(PORT['"]?\s*(?:\|\||\?\?|or|,)\s*['"]?(\d{2,5}))"),
      std::regex(R"(\.listen\(\s*(\d{2,5}))"),
      std::regex(R"(port\s*=\s*(\d{2,5}))"),
      std::regex(R"re(ListenAndServe\(\s*"[^"]*:(\d{2,5})")re"),
  };
  for (const std::regex& re : kPatterns) {
    std::smatch m;
    if (std::regex_search(source, m, re)) {
      int p = std::stoi(m[1].str());
      if (p > 0 && p < 65536) return p;
    }
  }
  return 0;
}

struct Ctx {
  std::string dir;
  const model::BuildSettings& o;
  Detection d;
  std::map<std::string, std::string> procfile;
};

void Reason(Ctx& c, std::string r) { c.d.reasons.push_back(std::move(r)); }

// Where generated start commands listen: the instance's address. The local runtime gives each
// instance a loopback port; a driver that needs another address (a pod's) sets HOST.
constexpr char kBind[] = "${HOST:-127.0.0.1}";

// The running berth binary (builds and detection run inside `berth server`), so a static
// site's start command names it by absolute path.
std::string BerthBinary() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("berth") : p.string();
}

std::string ShellQuoteArg(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+") == std::string::npos) {
    return s;
  }
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

// Sets the web process unless there is a Procfile: its process types are the ones that run, as
// on Heroku, so a worker-only Procfile gets no web process (and no port) from the language.
void DefaultWeb(Ctx& c, const std::string& cmd, const std::string& why) {
  if (c.d.processes.count("web")) return;
  if (!c.d.processes.empty()) {
    Reason(c, "no web process: the Procfile declares none (without a Procfile it would be " +
                  Bq(cmd) + ")");
    return;
  }
  c.d.processes["web"] = cmd;
  Reason(c, why);
}

void PortFrom(Ctx& c, const std::string& file, int fallback, const std::string& why_default) {
  int p = file.empty() ? 0 : GuessPort(Read(c.dir, file));
  if (p) {
    c.d.port = p;
    Reason(c, "port " + std::to_string(p) + " found in " + file);
  } else {
    c.d.port = fallback;
    Reason(c, "port " + std::to_string(fallback) + " (" + why_default + ")");
  }
}

// Whether a program's source shows that it serves HTTP: it reads PORT or listens.
bool ListensIn(const std::string& source) {
  static const std::regex kSigns(
      R"(\bPORT\b|ListenAndServe|net\.Listen|\.listen\(|createServer|serve_forever|http\.server|)"
      R"(socketserver|uvicorn|Flask\(|FastAPI\(|aiohttp|bottle|[Ss]inatra|express\(|app\.run\()");
  return std::regex_search(source, kSigns);
}

// Marks the web process as serving HTTP when `file` (the entry) shows it.
void ServesIf(Ctx& c, const std::string& file) {
  if (!file.empty() && ListensIn(Read(c.dir, file))) c.d.serves_http = file + " listens";
}

// ---- languages ----------------------------------------------------------------------------

Status DetectGo(Ctx& c) {
  c.d.cache_kind = "go";
  c.d.tools.push_back({"go", "golang-go", {"version"}});
  std::string mod = Read(c.dir, "go.mod");
  std::string module;
  std::istringstream in(mod);
  for (std::string line; std::getline(in, line);) {
    line = Trim(line);
    if (line.rfind("module ", 0) == 0) module = Trim(line.substr(7));
  }
  Reason(c, "go.mod found" + (module.empty() ? std::string() : " (module " + module + ")"));
  c.d.build_steps.push_back("go build -buildvcs=false -o bin/app .");
  Reason(c, "build with " + Bq("go build -o bin/app ."));
  DefaultWeb(c, "./bin/app", "start the built binary " + Bq("./bin/app"));
  PortFrom(c, IsFile(c.dir, "main.go") ? "main.go" : "", 8080, "the default for Go");
  for (const std::string& f : FilesWithSuffix(c.dir, ".go")) {
    ServesIf(c, f);
    if (!c.d.serves_http.empty()) break;
  }
  return Status::Ok();
}

Status DetectJava(Ctx& c) {
  c.d.cache_kind = "java";
  c.d.tools.push_back({"java", "default-jre-headless", {"-version"}});
  bool maven = IsFile(c.dir, "pom.xml");
  bool gradle = IsFile(c.dir, "build.gradle") || IsFile(c.dir, "build.gradle.kts");
  if (maven) {
    bool wrapper = IsFile(c.dir, "mvnw");
    std::string mvn = wrapper ? "sh ./mvnw" : "mvn";
    if (!wrapper) c.d.tools.push_back({"mvn", "maven", {"--version"}});
    c.d.tools.push_back({"javac", "default-jdk-headless", {"-version"}});
    c.d.build_steps.push_back(mvn + " -B -q -DskipTests package");
    Reason(c, std::string("pom.xml found; build with ") + (wrapper ? "the Maven wrapper mvnw" : "Maven"));
    DefaultWeb(c, "java -jar \"$(ls target/*.jar | grep -v -e '-sources' -e '-javadoc' | head -n 1)\"",
               "start the jar Maven builds in target/");
  } else if (gradle) {
    bool wrapper = IsFile(c.dir, "gradlew");
    std::string g = wrapper ? "sh ./gradlew" : "gradle";
    if (!wrapper) c.d.tools.push_back({"gradle", "gradle", {"--version"}});
    c.d.tools.push_back({"javac", "default-jdk-headless", {"-version"}});
    c.d.build_steps.push_back(g + " --no-daemon -q build -x test");
    Reason(c, std::string("build.gradle found; build with ") + (wrapper ? "the Gradle wrapper gradlew" : "Gradle"));
    DefaultWeb(c, "java -jar \"$(ls build/libs/*.jar | grep -v -e '-plain' -e '-sources' | head -n 1)\"",
               "start the jar Gradle builds in build/libs/");
  } else {
    std::vector<std::string> jars = FilesWithSuffix(c.dir, ".jar");
    if (jars.empty()) return InvalidArgument("build.language is java but there is no pom.xml, build.gradle or .jar", "build.language");
    Reason(c, "runnable jar " + jars.front() + " found (no build needed)");
    DefaultWeb(c, "java -jar " + jars.front(), "start " + Bq("java -jar " + jars.front()));
  }
  c.d.port = 8080;
  c.d.serves_http = "a Java web server";
  Reason(c, "port 8080 (the default for Java web servers)");
  return Status::Ok();
}

// The package manager a Node project names, and how a build runs it. yarn and pnpm are not
// expected on the server: npx fetches the named version from the npm registry into npm's cache,
// which is the component's (npm_config_cache), so it is downloaded once per component and goes
// through the egress proxy as `npm install` does. (Corepack would do the same, but Debian 12's
// nodejs has none and its proxy support differs between versions: one route that behaves the
// same on every machine.)
struct NodePm {
  std::string name = "npm";  // npm | yarn | pnpm
  std::string package;       // what npx fetches: "pnpm@9", "yarn@1.22.22", "@yarnpkg/cli-dist@4"
  bool berry = false;        // yarn 2+
  std::string why;

  // The shell words that run it: "npm", "npx --yes --package=pnpm@9 -- pnpm".
  std::string Command() const {
    if (package.empty()) return name;
    return "npx --yes --package=" + package + " -- " + name;
  }
};

// packageManager ("pnpm@9.1.0", "yarn@4.5.0+sha512.…"): name and version, or false when it is
// not one berth can fetch. The version goes into a shell command, so only plain version
// characters pass.
bool ParsePackageManager(const std::string& field, std::string* name, std::string* version) {
  static const std::regex kField(R"(^(npm|yarn|pnpm)@([0-9]+(\.[0-9]+){0,2}(-[0-9A-Za-z.]+)?)(\+[0-9A-Za-z.+/=_-]*)?$)");
  std::smatch m;
  if (!std::regex_match(field, m, kField)) return false;
  *name = m[1].str();
  *version = m[2].str();
  return true;
}

NodePm ChooseNodePm(const Ctx& c, const Json& pkg) {
  NodePm pm;
  const std::string field = pkg.contains("packageManager") && pkg["packageManager"].is_string()
                                ? pkg["packageManager"].get<std::string>() : "";
  std::string name, version;
  if (!field.empty() && ParsePackageManager(field, &name, &version)) {
    pm.name = name;
    const int major = std::atoi(version.c_str());
    if (name == "pnpm") {
      pm.package = "pnpm@" + version;
    } else if (name == "yarn") {
      pm.berry = major >= 2;
      pm.package = (pm.berry ? "@yarnpkg/cli-dist@" : "yarn@") + version;
    }
    pm.why = "package.json found; packageManager " + Bq(field) + " → " + name + " " + version +
             (name == "npm" ? " (the server's npm)" : " (fetched from the npm registry by npx)");
    return pm;
  }
  const std::string ignored =
      field.empty() ? "" : " (packageManager " + Bq(field.substr(0, 80)) + " is not name@version of npm, yarn or pnpm: ignored)";
  if (IsFile(c.dir, "pnpm-lock.yaml")) {
    // The lockfile's format says which pnpm wrote it: 9.0 → pnpm 9, 6.x → 8, 5.x → 7.
    std::string lock = Read(c.dir, "pnpm-lock.yaml").substr(0, 4096);
    std::smatch m;
    int major = 9;
    if (std::regex_search(lock, m, std::regex(R"(lockfileVersion:\s*'?(\d+))"))) {
      int v = std::atoi(m[1].str().c_str());
      major = v >= 9 ? 9 : v == 6 ? 8 : v == 5 ? 7 : 9;
    }
    pm.name = "pnpm";
    pm.package = "pnpm@" + std::to_string(major);
    pm.why = "package.json found; pnpm-lock.yaml → pnpm " + std::to_string(major) +
             " (fetched from the npm registry by npx)" + ignored;
  } else if (IsFile(c.dir, "yarn.lock")) {
    // yarn 2+ writes a `__metadata:` block; yarn 1's lockfile has none.
    std::string lock = Read(c.dir, "yarn.lock").substr(0, 4096);
    pm.name = "yarn";
    pm.berry = lock.find("__metadata:") != std::string::npos;
    pm.package = pm.berry ? "@yarnpkg/cli-dist@4" : "yarn@1";
    pm.why = std::string("package.json found; yarn.lock → yarn ") + (pm.berry ? "4" : "1") +
             " (fetched from the npm registry by npx)" + ignored;
  } else {
    pm.why = std::string("package.json found; ") +
             (IsFile(c.dir, "package-lock.json") ? "package-lock.json → npm" : "no lockfile → npm") + ignored;
  }
  return pm;
}

Status DetectNode(Ctx& c) {
  c.d.cache_kind = "node";
  c.d.tools.push_back({"node", "nodejs", {"--version"}});
  std::string pkg_text = Read(c.dir, "package.json");
  // Hostile nesting is refused before nlohmann's parser sees it (model/json_util.h).
  Json pkg = CheckJsonDepth(pkg_text).ok() ? Json::parse(pkg_text, nullptr, false) : Json();
  if (pkg.is_discarded() || !pkg.is_object()) {
    return InvalidArgument("package.json is not a JSON object", "source");
  }
  Json scripts = pkg.contains("scripts") && pkg["scripts"].is_object() ? pkg["scripts"] : Json::object();
  auto script = [&](const char* name) -> std::string {
    return scripts.contains(name) && scripts[name].is_string() ? scripts[name].get<std::string>() : "";
  };
  const NodePm pm = ChooseNodePm(c, pkg);
  const std::string run = pm.Command();
  Reason(c, pm.why);
  if (pm.name == "npm") {
    c.d.tools.push_back({"npm", "npm", {"--version"}});
    c.d.build_steps.push_back("npm install --no-audit --no-fund");
  } else {
    c.d.tools.push_back({"npx", "npm", {"--version"}});
    if (pm.name == "pnpm") {
      c.d.build_steps.push_back(run + " install --frozen-lockfile");
    } else if (pm.berry) {
      c.d.build_steps.push_back(run + " install --immutable");
    } else {
      c.d.build_steps.push_back(run + " install --frozen-lockfile --non-interactive");
    }
  }
  if (!script("build").empty()) {
    c.d.build_steps.push_back(run + " run build");
    Reason(c, "build script " + Bq(script("build")));
  }
  std::string entry;
  std::string start = Trim(script("start"));
  if (!start.empty()) {
    // The start script's own command, not `npm start`: the app's output is all its log holds
    // (no package manager notices before a crash's last lines), signals reach the app, and
    // the instance needs no package manager — node_modules/.bin is on its PATH as it is
    // under `npm start`.
    DefaultWeb(c, start, "start script " + Bq(start) + " runs as it is (not through " + pm.name +
                             " start), with node_modules/.bin on PATH");
    c.d.serves_http = "the start script";
    std::smatch m;
    if (std::regex_search(start, m, std::regex(R"(node\s+([\w./-]+\.[cm]?js))"))) entry = m[1].str();
  } else {
    std::string main = pkg.contains("main") && pkg["main"].is_string() ? pkg["main"].get<std::string>() : "";
    if (!main.empty() && IsFile(c.dir, main)) {
      entry = main;
      DefaultWeb(c, "node " + ShellQuoteArg(main), "no start script; main " + Bq(main) + " → " + Bq("node " + main));
    } else {
      for (const char* f : {"server.js", "app.js", "index.js"}) {
        if (IsFile(c.dir, f)) {
          entry = f;
          DefaultWeb(c, std::string("node ") + f,
                     std::string("no start script or main; ") + f + " found → " + Bq(std::string("node ") + f));
          break;
        }
      }
    }
  }
  c.d.env["NODE_ENV"] = "production";
  c.d.env["PATH"] = "node_modules/.bin";  // before the platform's PATH (sandbox::JoinPath)
  PortFrom(c, entry, 3000, "the default for Node.js");
  if (c.d.serves_http.empty()) ServesIf(c, entry);
  return Status::Ok();
}

bool HasRequirements(const std::string& text) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    line = Trim(line);
    if (!line.empty() && line[0] != '#') return true;
  }
  return false;
}

Status DetectPython(Ctx& c) {
  c.d.cache_kind = "python";
  c.d.tools.push_back({"python3", "python3 python3-venv", {"--version"}});
  // --system-site-packages: Debian's python3-* packages are the offline way to get libraries.
  c.d.build_steps.push_back("python3 -m venv --system-site-packages .venv");
  std::string deps_text;
  if (IsFile(c.dir, "requirements.txt")) {
    deps_text = Read(c.dir, "requirements.txt");
    if (HasRequirements(deps_text)) {
      c.d.build_steps.push_back(".venv/bin/python -m pip install --disable-pip-version-check -r requirements.txt");
      Reason(c, "requirements.txt found; dependencies installed into a venv");
    } else {
      Reason(c, "requirements.txt found (no dependencies listed); a venv is made");
    }
  } else if (IsFile(c.dir, "pyproject.toml")) {
    deps_text = Read(c.dir, "pyproject.toml");
    c.d.build_steps.push_back(".venv/bin/python -m pip install --disable-pip-version-check .");
    Reason(c, "pyproject.toml found; the project is installed into a venv");
  } else if (IsFile(c.dir, "Pipfile")) {
    deps_text = Read(c.dir, "Pipfile");
    c.d.tools.push_back({"pipenv", "pipenv", {"--version"}});
    c.d.build_steps.push_back("PIPENV_VENV_IN_PROJECT=1 pipenv install --deploy");
    Reason(c, "Pipfile found; pipenv installs into the project's .venv");
  } else {
    Reason(c, "Python entry file found (no dependency file); a venv is made");
  }
  c.d.env["VIRTUAL_ENV"] = ".venv";
  c.d.env["PATH"] = ".venv/bin";  // before the platform's PATH (sandbox::JoinPath)
  c.d.env["PYTHONUNBUFFERED"] = "1";
  std::string lower = deps_text;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  std::string entry;
  if (IsFile(c.dir, "manage.py")) {
    entry = "manage.py";
    DefaultWeb(c, ".venv/bin/python manage.py runserver " + std::string(kBind) + ":$PORT",
               "manage.py found (Django) → " + Bq("manage.py runserver " + std::string(kBind) + ":$PORT"));
    c.d.port = 8000;
    c.d.serves_http = "Django's manage.py";
    Reason(c, "port 8000 (the default for Django)");
    return Status::Ok();
  }
  if (IsFile(c.dir, "wsgi.py") && lower.find("gunicorn") != std::string::npos) {
    std::string w = Read(c.dir, "wsgi.py");
    std::string obj = w.find("application") != std::string::npos ? "application" : "app";
    DefaultWeb(c, ".venv/bin/python -m gunicorn wsgi:" + obj + " --bind " + std::string(kBind) + ":$PORT",
               "wsgi.py and gunicorn found → " + Bq("gunicorn wsgi:" + obj));
    c.d.port = 8000;
    c.d.serves_http = "gunicorn";
    Reason(c, "port 8000 (the default for gunicorn)");
    return Status::Ok();
  }
  for (const char* f : {"app.py", "main.py", "server.py", "wsgi.py"}) {
    if (IsFile(c.dir, f)) {
      entry = f;
      DefaultWeb(c, std::string(".venv/bin/python ") + f,
                 std::string(f) + " found → " + Bq(std::string("python ") + f));
      break;
    }
  }
  PortFrom(c, entry, 8000, "the default for Python web apps");
  ServesIf(c, entry);
  return Status::Ok();
}

Status DetectRuby(Ctx& c) {
  c.d.cache_kind = "ruby";
  c.d.tools.push_back({"ruby", "ruby", {"--version"}});
  c.d.tools.push_back({"bundle", "ruby-bundler", {"--version"}});
  c.d.build_steps.push_back("bundle config set --local path vendor/bundle && bundle install");
  Reason(c, "Gemfile found; gems installed into vendor/bundle");
  if (IsFile(c.dir, "config.ru")) {
    DefaultWeb(c, "bundle exec rackup --host " + std::string(kBind) + " --port $PORT", "config.ru found → rackup");
    c.d.port = 9292;
    c.d.serves_http = "config.ru (rackup)";
    Reason(c, "port 9292 (the default for rackup)");
  } else {
    std::string entry = IsFile(c.dir, "app.rb") ? "app.rb" : "";
    if (!entry.empty()) DefaultWeb(c, "bundle exec ruby app.rb", "app.rb found → " + Bq("ruby app.rb"));
    PortFrom(c, entry, 4567, "the default for Sinatra");
    ServesIf(c, entry);
  }
  c.d.env["BUNDLE_PATH"] = "vendor/bundle";
  return Status::Ok();
}

Status DetectPhp(Ctx& c) {
  c.d.tools.push_back({"php", "php-cli", {"--version"}});
  if (IsFile(c.dir, "composer.json")) {
    c.d.tools.push_back({"composer", "composer", {"--version"}});
    c.d.build_steps.push_back("composer install --no-dev --no-interaction --no-progress");
    Reason(c, "composer.json found; dependencies installed with composer");
  }
  std::string root = Exists(c.dir, "public/index.php") ? "public" : ".";
  if (root == "public" || IsFile(c.dir, "index.php")) {
    Reason(c, std::string(root == "public" ? "public/index.php" : "index.php") + " found");
  }
  DefaultWeb(c, "php -S " + std::string(kBind) + ":$PORT -t " + root,
             "served by PHP's built-in server from " + (root == "." ? std::string("the source root") : root + "/"));
  c.d.port = 8080;
  c.d.serves_http = "PHP's built-in web server";
  Reason(c, "port 8080 (the default for PHP)");
  return Status::Ok();
}

Status DetectStatic(Ctx& c) {
  Reason(c, "index.html found and no server code: a static site");
  // berth serves it itself (content types, ETag/Cache-Control; SPA fallback with the
  // component env BERTH_STATIC_SPA=1), so a static site needs no toolchain.
  DefaultWeb(c, ShellQuoteArg(BerthBinary()) + " static --root . --listen " + std::string(kBind) + ":$PORT",
             "served as static files by " + Bq("berth static"));
  c.d.port = 8080;
  c.d.serves_http = "a static site";
  Reason(c, "port 8080 (the default for static sites)");
  return Status::Ok();
}

// ---- choosing -----------------------------------------------------------------------------

struct Match {
  std::string language;
  std::string evidence;  // "package.json"
};

std::vector<Match> Matches(const std::string& dir) {
  std::vector<Match> m;
  auto add = [&](const char* lang, std::initializer_list<const char*> files) {
    for (const char* f : files) {
      if (Exists(dir, f)) {
        m.push_back({lang, f});
        return;
      }
    }
  };
  add("go", {"go.mod"});
  add("java", {"pom.xml", "build.gradle", "build.gradle.kts", "mvnw", "gradlew"});
  if ((m.empty() || m.back().language != "java") && !FilesWithSuffix(dir, ".jar").empty()) {
    m.push_back({"java", FilesWithSuffix(dir, ".jar").front()});
  }
  add("node", {"package.json"});
  add("python", {"requirements.txt", "pyproject.toml", "Pipfile", "manage.py", "app.py", "main.py", "wsgi.py"});
  add("ruby", {"Gemfile"});
  add("php", {"composer.json", "index.php", "public/index.php"});
  add("static", {"index.html"});
  return m;
}

// The language a Procfile web command names, if any.
std::string LanguageOfCommand(const std::string& cmd) {
  std::string first = Trim(cmd);
  first = first.substr(0, first.find_first_of(" \t"));
  if (first.find('/') != std::string::npos) first = first.substr(first.rfind('/') + 1);
  static const std::map<std::string, std::string> kByProgram = {
      {"node", "node"},      {"npm", "node"},        {"yarn", "node"},     {"yarnpkg", "node"}, {"pnpm", "node"},
      {"npx", "node"},       {"python", "python"},   {"python3", "python"}, {"gunicorn", "python"},
      {"uvicorn", "python"}, {"flask", "python"},    {"java", "java"},     {"ruby", "ruby"},
      {"bundle", "ruby"},    {"rackup", "ruby"},     {"php", "php"}};
  auto it = kByProgram.find(first);
  return it == kByProgram.end() ? "" : it->second;
}

}  // namespace

const std::vector<std::string>& KnownLanguages() {
  static const std::vector<std::string> k = {"go", "java", "node", "python", "ruby", "php", "static", "procfile"};
  return k;
}

Result<std::map<std::string, std::string>> ParseProcfile(const std::string& text) {
  std::map<std::string, std::string> out;
  static const std::regex kLine(R"(^([A-Za-z0-9_-]{1,63})\s*:\s*(.+)$)");
  std::istringstream in(text);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    std::string t = Trim(line);
    if (t.empty() || t[0] == '#') continue;
    std::smatch m;
    if (!std::regex_match(t, m, kLine)) {
      return InvalidArgument("Procfile line " + std::to_string(n) +
                                 " is not \"type: command\": " + t.substr(0, 100),
                             "Procfile");
    }
    std::string type = m[1].str();
    std::transform(type.begin(), type.end(), type.begin(), ::tolower);
    if (out.count(type)) {
      return InvalidArgument("Procfile line " + std::to_string(n) + " repeats process type " + type,
                             "Procfile");
    }
    out[type] = Trim(m[2].str());
  }
  return out;
}

Result<Detection> Detect(const std::string& dir, const model::BuildSettings& o) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return InvalidArgument("source directory " + dir + " does not exist", "source");
  Ctx c{dir, o, {}, {}};
  if (IsFile(dir, "Procfile")) {
    BERTH_ASSIGN_OR_RETURN(c.procfile, ParseProcfile(Read(dir, "Procfile")));
    for (const auto& [type, cmd] : c.procfile) {
      if (type == "release") {
        c.d.release = cmd;
      } else {
        c.d.processes[type] = cmd;
      }
    }
    std::string types;
    for (const auto& [type, cmd] : c.procfile) types += (types.empty() ? "" : ", ") + type;
    Reason(c, "Procfile found (" + (types.empty() ? std::string("empty") : types) + ")");
    if (c.d.processes.count("web")) Reason(c, "web process from the Procfile: " + Bq(c.d.processes["web"]));
  }

  std::string lang = o.language;
  if (!lang.empty()) {
    std::transform(lang.begin(), lang.end(), lang.begin(), ::tolower);
    if (lang == "nodejs" || lang == "javascript") lang = "node";
    if (lang == "golang") lang = "go";
    if (std::find(KnownLanguages().begin(), KnownLanguages().end(), lang) == KnownLanguages().end()) {
      std::string known;
      for (const std::string& k : KnownLanguages()) known += (known.empty() ? "" : ", ") + k;
      return InvalidArgument("build.language \"" + o.language + "\" is not one of " + known,
                             "build.language");
    }
    Reason(c, "language " + lang + " set by build.language");
  } else {
    std::vector<Match> m = Matches(dir);
    std::string hinted = c.d.processes.count("web") ? LanguageOfCommand(c.d.processes["web"]) : "";
    if (m.empty()) {
      if (c.d.processes.empty()) {
        return InvalidArgument(
            "cannot tell how to build this source: no Procfile, package.json, requirements.txt, "
            "pyproject.toml, Pipfile, go.mod, pom.xml, build.gradle, composer.json, Gemfile, "
            "index.php or index.html found; set build.language or build.start_command",
            "source");
      }
      lang = "procfile";
    } else {
      lang = m.front().language;
      if (m.size() > 1) {
        std::string all;
        for (const Match& x : m) all += (all.empty() ? "" : ", ") + x.evidence + " (" + x.language + ")";
        bool by_hint = false;
        if (!hinted.empty()) {
          for (const Match& x : m) {
            if (x.language == hinted) by_hint = true;
          }
        }
        if (by_hint) {
          lang = hinted;
          Reason(c, "several languages match: " + all + "; chose " + lang +
                        " because the Procfile's web process runs it");
        } else {
          Reason(c, "several languages match: " + all + "; chose " + lang +
                        " by the fixed order go > java > node > python > ruby > php > static "
                        "(set build.language to choose another)");
        }
      }
    }
  }

  Status s = Status::Ok();
  if (lang == "go") s = DetectGo(c);
  else if (lang == "java") s = DetectJava(c);
  else if (lang == "node") s = IsFile(dir, "package.json") ? DetectNode(c) : InvalidArgument("build.language is node but there is no package.json", "build.language");
  else if (lang == "python") s = DetectPython(c);
  else if (lang == "ruby") s = DetectRuby(c);
  else if (lang == "php") s = DetectPhp(c);
  else if (lang == "static") s = DetectStatic(c);
  else if (lang == "procfile") {
    Reason(c, "no language files: the Procfile's commands run as they are");
  }
  if (!s.ok()) return s;
  c.d.language = lang;

  if (!o.language_version.empty()) {
    c.d.language_version = o.language_version;
    Reason(c, "language version " + o.language_version + " requested by build.language_version");
  }
  if (!o.command.empty()) {
    c.d.build_steps = {o.command};
    Reason(c, "build command " + Bq(o.command) + " set by build.command");
  }
  if (!o.start_command.empty()) {
    c.d.processes["web"] = o.start_command;
    Reason(c, "start command " + Bq(o.start_command) + " set by build.start_command");
  }
  if (c.d.processes.empty()) {
    return InvalidArgument("found " + lang + " code but no way to start it (no start script, "
                           "entry file or Procfile web process): set build.start_command",
                           "build.start_command");
  }
  if (c.d.port == 0) {
    c.d.port = 5000;
    Reason(c, "port 5000 (the Procfile convention; the process gets $PORT)");
  }
  // Heroku's rule: the `web` process type is the one that receives HTTP.
  if (c.procfile.count("web")) c.d.serves_http = "the Procfile's web process";
  if (!o.start_command.empty()) c.d.serves_http = "the start command (build.start_command)";
  if (!c.d.processes.count("web")) c.d.serves_http.clear();
  return c.d;
}

Result<std::string> ResolveSubdir(const std::string& root, const std::string& subdir) {
  if (subdir.empty()) return root;
  BERTH_RETURN_IF_ERROR(ValidateRelativePath(subdir, "build.subdir"));
  std::error_code ec;
  fs::path base = fs::canonical(root, ec);
  if (ec) return InvalidArgument("source directory " + root + " does not exist", "source");
  fs::path full = fs::canonical(base / subdir, ec);
  if (ec || !fs::is_directory(full, ec)) {
    return InvalidArgument("build.subdir \"" + subdir + "\" is not a directory of the source",
                           "build.subdir");
  }
  std::string b = base.string() + "/", f = full.string() + "/";
  if (f.compare(0, b.size(), b) != 0) {
    return InvalidArgument("build.subdir \"" + subdir + "\" points outside the source", "build.subdir");
  }
  return full.string();
}

Json ToJson(const Detection& d) {
  Json tools = Json::array();
  for (const Tool& t : d.tools) tools.push_back({{"program", t.program}, {"package", t.package}});
  return {{"language", d.language},
          {"language_version", d.language_version},
          {"build_steps", d.build_steps},
          {"processes", d.processes},
          {"start_command", d.StartCommand()},
          {"release", d.release},
          {"port", d.port},
          {"serves_http", d.serves_http},
          {"env", d.env},
          {"tools", tools},
          {"reasons", d.reasons}};
}

}  // namespace berth::builder
