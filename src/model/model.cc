#include "model/model.h"

#include <time.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "core/names.h"

namespace berth::model {
namespace {

// Fields the API adds to objects (revision, timestamps, parents). Clients that send an object
// back as they read it may include them; they are ignored.
const std::set<std::string> kReadOnly = {"revision", "created_at", "updated_at", "team",
                                         "app",      "component",  "id",
                                         "addresses",   // components: where they answer
                                         "process_types"};  // components: what runs of them

std::set<std::string> ReadOnlyExcept(std::initializer_list<const char*> keep) {
  std::set<std::string> s = kReadOnly;
  for (const char* k : keep) s.erase(k);
  return s;
}

template <class T>
Result<T> Done(JsonReader& r, T value) {
  r.Finish();
  if (!r.ok()) return r.status();
  return value;
}

Status ValidateProbe(const Probe& p, const std::string& field) {
  if (p.type == "command" && p.command.empty()) {
    return InvalidArgument(field + ".command is required for a command check", field + ".command");
  }
  if (p.type == "http" && (p.path.empty() || p.path.front() != '/')) {
    return InvalidArgument(field + ".path must start with '/'", field + ".path");
  }
  if (p.timeout_s > p.interval_s * 10) {
    return InvalidArgument(field + ".timeout_s is far longer than interval_s", field + ".timeout_s");
  }
  return Status::Ok();
}

void ParseProbeInto(JsonReader& h, const char* key, std::optional<Probe>* out) {
  if (!h.Has(key)) {
    h.Obj(key, [](JsonReader&) {});  // marks the key seen when it is null
    return;
  }
  Probe p;
  h.Obj(key, [&](JsonReader& r) {
    r.Enum("type", &p.type, {"tcp", "http", "command"});
    r.Int("port", &p.port, 0, 65535);
    r.Str("path", &p.path, 1024);
    r.Str("command", &p.command, 4096);
    r.Int("interval_s", &p.interval_s, 1, 3600);
    r.Int("timeout_s", &p.timeout_s, 1, 600);
    r.Int("failure_threshold", &p.failure_threshold, 1, 100);
    r.Int("expect_status", &p.expect_status, 0, 599);
    if (r.ok() && p.expect_status != 0 && p.expect_status < 100) {
      r.Fail(InvalidArgument(r.FieldPath("expect_status") + " must be 0 or an HTTP status",
                             r.FieldPath("expect_status")));
    }
    if (r.ok()) r.Fail(ValidateProbe(p, r.path()));
  });
  if (h.ok()) *out = p;
}

Json ProbeJson(const std::optional<Probe>& p) {
  if (!p) return nullptr;
  return {{"type", p->type},
          {"port", p->port},
          {"path", p->path},
          {"command", p->command},
          {"interval_s", p->interval_s},
          {"timeout_s", p->timeout_s},
          {"failure_threshold", p->failure_threshold},
          {"expect_status", p->expect_status}};
}

// One cron field into `mask` (bit v = value v fires): '*', numbers, a-b ranges, lists and
// steps ("*/15", "1-30/2", and "5/15" = 5-hi/15 as cronie reads it).
bool ParseCronField(const std::string& f, int lo, int hi, uint64_t* mask) {
  if (f.empty()) return false;
  *mask = 0;
  size_t start = 0;
  while (start <= f.size()) {
    size_t comma = f.find(',', start);
    std::string item = f.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (item.empty()) return false;
    std::string range = item;
    int step = 1;
    size_t slash = item.find('/');
    if (slash != std::string::npos) {
      range = item.substr(0, slash);
      std::string st = item.substr(slash + 1);
      if (st.empty() || st.size() > 3 || st.find_first_not_of("0123456789") != std::string::npos ||
          std::stoi(st) == 0) {
        return false;
      }
      step = std::stoi(st);
    }
    int x = lo, y = hi;
    if (range != "*") {
      size_t dash = range.find('-');
      std::string a = range.substr(0, dash);
      std::string b = dash == std::string::npos ? a : range.substr(dash + 1);
      for (const std::string* s : {&a, &b}) {
        if (s->empty() || s->size() > 2 || s->find_first_not_of("0123456789") != std::string::npos) {
          return false;
        }
      }
      x = std::stoi(a);
      y = std::stoi(b);
      if (x < lo || y > hi || x > y) return false;
      if (slash != std::string::npos && dash == std::string::npos) y = hi;  // "5/15"
    }
    for (int v = x; v <= y; v += step) *mask |= uint64_t{1} << v;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return true;
}

}  // namespace

Result<CronSchedule> ParseCron(const std::string& expr, const std::string& field) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < expr.size()) {
    while (i < expr.size() && (expr[i] == ' ' || expr[i] == '\t')) ++i;
    size_t j = i;
    while (j < expr.size() && expr[j] != ' ' && expr[j] != '\t') ++j;
    if (j > i) parts.push_back(expr.substr(i, j - i));
    i = j;
  }
  static const int kLo[] = {0, 0, 1, 1, 0};
  static const int kHi[] = {59, 23, 31, 12, 7};
  CronSchedule c;
  uint64_t* masks[] = {&c.minutes, &c.hours, &c.days, &c.months, &c.weekdays};
  bool ok = parts.size() == 5;
  for (size_t k = 0; ok && k < 5; ++k) ok = ParseCronField(parts[k], kLo[k], kHi[k], masks[k]);
  if (!ok) {
    return InvalidArgument("schedule \"" + expr.substr(0, 100) +
                               "\" is not a cron expression: use 5 fields (minute hour "
                               "day-of-month month day-of-week), e.g. \"*/5 * * * *\"",
                           field);
  }
  // Sunday is 0 or 7.
  if (c.weekdays & (uint64_t{1} << 7)) c.weekdays = (c.weekdays | 1) & ~(uint64_t{1} << 7);
  c.days_restricted = parts[2][0] != '*';
  c.weekdays_restricted = parts[4][0] != '*';
  return c;
}

Status ValidateCron(const std::string& expr, const std::string& field) {
  auto c = ParseCron(expr, field);
  return c.ok() ? Status::Ok() : c.status();
}

std::optional<int64_t> CronSchedule::NextAfter(int64_t after_s) const {
  // Walk forward from the next whole minute, skipping a whole month, day or hour at a time
  // when that field does not match, so even a yearly schedule takes a few hundred steps.
  // Eight years covers any satisfiable schedule (Feb 29 skips 2100); beyond it, never.
  int64_t t = (after_s >= 0 ? after_s / 60 : (after_s - 59) / 60) * 60 + 60;
  const int64_t limit = t + int64_t{8} * 366 * 86400;
  auto bit = [](uint64_t mask, int v) { return (mask >> v) & 1; };
  while (t <= limit) {
    time_t tt = static_cast<time_t>(t);
    struct tm tm {};
    gmtime_r(&tt, &tm);
    if (!bit(months, tm.tm_mon + 1)) {
      tm.tm_mon += 1;
      tm.tm_mday = 1;
      tm.tm_hour = 0;
      tm.tm_min = 0;
      tm.tm_sec = 0;
      t = static_cast<int64_t>(timegm(&tm));
      continue;
    }
    bool dom = bit(days, tm.tm_mday), dow = bit(weekdays, tm.tm_wday);
    // cron's rule: when both day fields are restricted, either one matching is enough.
    bool day_ok = days_restricted && weekdays_restricted ? (dom || dow) : (dom && dow);
    if (!day_ok) {
      tm.tm_mday += 1;
      tm.tm_hour = 0;
      tm.tm_min = 0;
      tm.tm_sec = 0;
      t = static_cast<int64_t>(timegm(&tm));
      continue;
    }
    if (!bit(hours, tm.tm_hour)) {
      t += (60 - tm.tm_min) * 60;
      continue;
    }
    if (!bit(minutes, tm.tm_min)) {
      t += 60;
      continue;
    }
    return t;
  }
  return std::nullopt;
}

const std::set<std::string>& ReadOnlyFields() { return kReadOnly; }

bool ReservedName(const std::string& name) { return name == kGatewayUser || name == "berth"; }

const char* RoleName(Role r) {
  switch (r) {
    case Role::kViewer: return "viewer";
    case Role::kDeveloper: return "developer";
    case Role::kAdmin: return "admin";
    case Role::kOwner: return "owner";
  }
  return "viewer";
}

std::optional<Role> ParseRole(const std::string& s) {
  for (Role r : {Role::kViewer, Role::kDeveloper, Role::kAdmin, Role::kOwner}) {
    if (s == RoleName(r)) return r;
  }
  return std::nullopt;
}

// ---- users --------------------------------------------------------------------------------

Result<UserInput> ParseUser(const Json& in) {
  UserInput out;
  JsonReader r(in, "", kReadOnly);
  r.Str("name", &out.user.name, 255);
  r.Str("display_name", &out.user.display_name, 200);
  r.Str("email", &out.user.email, 254);
  r.Bool("admin", &out.user.admin);
  r.Bool("disabled", &out.user.disabled);
  r.Bool("service", &out.user.service);
  std::string pw, cur;
  if (r.Has("password")) {
    r.Str("password", &pw, 1024);
    out.password = pw;
  } else {
    r.Str("password", &pw);
  }
  if (r.Has("current_password")) {
    r.Str("current_password", &cur, 1024);
    out.current_password = cur;
  } else {
    r.Str("current_password", &cur);
  }
  if (r.ok()) r.Fail(ValidateUserName(out.user.name));
  if (r.ok() && out.password && out.password->size() < 8) {
    r.Fail(InvalidArgument("password must be at least 8 characters", "password"));
  }
  if (r.ok() && !out.user.email.empty() && out.user.email.find('@') == std::string::npos) {
    r.Fail(InvalidArgument("email \"" + out.user.email + "\" is not an e-mail address", "email"));
  }
  return Done(r, std::move(out));
}

Json ToJson(const User& u, bool include_secrets) {
  Json j = {{"name", u.name},   {"display_name", u.display_name}, {"email", u.email},
            {"admin", u.admin}, {"disabled", u.disabled}, {"service", u.service}};
  if (include_secrets) j["password_hash"] = u.password_hash;
  return j;
}

// ---- tokens -------------------------------------------------------------------------------

Result<TokenInput> ParseTokenInput(const Json& in) {
  TokenInput t;
  JsonReader r(in, "", kReadOnly);
  r.Str("name", &t.name, 100);
  r.Int("ttl_hours", &t.ttl_hours, 0, 24 * 365 * 10);
  r.Int("ttl_seconds", &t.ttl_seconds, 0, int64_t{3600} * 24 * 365 * 10);
  if (r.ok() && t.name.empty()) r.Fail(InvalidArgument("name is required", "name"));
  if (r.ok() && t.ttl_hours != 0 && t.ttl_seconds != 0) {
    r.Fail(InvalidArgument("give ttl_hours or ttl_seconds, not both", "ttl_seconds"));
  }
  return Done(r, std::move(t));
}

Result<Token> TokenFromJson(const Json& j) {
  Token t;
  JsonReader r(j, "");
  r.Str("id", &t.id);
  r.Str("name", &t.name);
  r.Str("user", &t.user);
  r.Int("expires_at_ms", &t.expires_at_ms, 0, INT64_MAX);
  r.Int("last_used_at_ms", &t.last_used_at_ms, 0, INT64_MAX);
  return Done(r, std::move(t));
}

Json ToJson(const Token& t) {
  return {{"id", t.id},
          {"name", t.name},
          {"user", t.user},
          {"expires_at_ms", t.expires_at_ms},
          {"last_used_at_ms", t.last_used_at_ms}};
}

// ---- teams and members --------------------------------------------------------------------

Result<Team> ParseTeam(const Json& in) {
  Team t;
  JsonReader r(in, "", ReadOnlyExcept({}));
  r.Str("name", &t.name, 255);
  r.Str("display_name", &t.display_name, 200);
  r.Obj("quota", [&](JsonReader& q) {
    q.Int("instances", &t.quota.instances, 0, 100000);
    q.Int("memory_mb", &t.quota.memory_mb, 0, 64 << 20);
    q.Int("cpu_millis", &t.quota.cpu_millis, 0, 1 << 30);
    q.Int("disk_mb", &t.quota.disk_mb, 0, int64_t{1} << 30);
  });
  r.Str("created_by", &t.created_by, 255);  // the server sets it; the API ignores input
  if (r.ok()) r.Fail(ValidateDnsLabel(t.name, "team name"));
  return Done(r, std::move(t));
}

Json ToJson(const Team& t) {
  Json j = {{"name", t.name},
            {"display_name", t.display_name},
            {"quota",
             {{"instances", t.quota.instances},
              {"memory_mb", t.quota.memory_mb},
              {"cpu_millis", t.quota.cpu_millis},
              {"disk_mb", t.quota.disk_mb}}}};
  if (!t.created_by.empty()) j["created_by"] = t.created_by;
  return j;
}

Result<PlatformSettings> ParsePlatformSettings(const Json& in) {
  PlatformSettings p;
  JsonReader r(in, "", ReadOnlyExcept({}));
  r.Enum("team_creation", &p.team_creation, {"admins", "everyone"});
  r.Int("max_teams_per_user", &p.max_teams_per_user, 1, 1000);
  r.Obj("default_team_quota", [&](JsonReader& q) {
    q.Int("instances", &p.default_team_quota.instances, 0, 100000);
    q.Int("memory_mb", &p.default_team_quota.memory_mb, 0, 64 << 20);
    q.Int("cpu_millis", &p.default_team_quota.cpu_millis, 0, 1 << 30);
    q.Int("disk_mb", &p.default_team_quota.disk_mb, 0, int64_t{1} << 30);
  });
  return Done(r, std::move(p));
}

Json ToJson(const PlatformSettings& p) {
  return {{"team_creation", p.team_creation},
          {"max_teams_per_user", p.max_teams_per_user},
          {"default_team_quota",
           {{"instances", p.default_team_quota.instances},
            {"memory_mb", p.default_team_quota.memory_mb},
            {"cpu_millis", p.default_team_quota.cpu_millis},
            {"disk_mb", p.default_team_quota.disk_mb}}}};
}

Result<Member> ParseMember(const Json& in) {
  Member m;
  JsonReader r(in, "", kReadOnly);
  r.Str("user", &m.user, 255);
  std::string role = "viewer";
  r.Enum("role", &role, {"viewer", "developer", "admin", "owner"});
  if (r.ok()) r.Fail(ValidateUserName(m.user, "user"));
  m.role = ParseRole(role).value_or(Role::kViewer);
  return Done(r, std::move(m));
}

Json ToJson(const Member& m) { return {{"user", m.user}, {"role", RoleName(m.role)}}; }

// ---- apps ---------------------------------------------------------------------------------

Result<App> ParseApp(const Json& in) {
  App a;
  JsonReader r(in, "", kReadOnly);
  r.Str("name", &a.name, 255);
  r.Str("display_name", &a.display_name, 200);
  r.Str("description", &a.description, 4096);
  if (r.ok()) r.Fail(ValidateDnsLabel(a.name, "app name"));
  return Done(r, std::move(a));
}

Json ToJson(const App& a) {
  return {{"name", a.name}, {"display_name", a.display_name}, {"description", a.description}};
}

// ---- components ---------------------------------------------------------------------------

namespace {

// A count (0..100) or a percentage "0%".."100%".
void ParseAmount(JsonReader& r, const char* key, Amount* out) {
  Json raw;
  r.Raw(key, &raw);
  if (!r.ok() || raw.is_null()) return;
  const std::string field = r.FieldPath(key);
  if (raw.is_number_integer()) {
    int64_t n = raw.get<int64_t>();
    if (n < 0 || n > 100) {
      r.Fail(InvalidArgument(field + " must be a count from 0 to 100 or a percentage such as \"25%\"",
                             field));
      return;
    }
    *out = Amount{static_cast<int>(n), false};
    return;
  }
  if (raw.is_string()) {
    std::string s = raw.get<std::string>();
    if (s.size() >= 2 && s.size() <= 4 && s.back() == '%' &&
        s.find_first_not_of("0123456789") == s.size() - 1) {
      int n = std::stoi(s.substr(0, s.size() - 1));
      if (n <= 100) {
        *out = Amount{n, true};
        return;
      }
    }
  }
  r.Fail(InvalidArgument(field + " must be a count from 0 to 100 or a percentage such as \"25%\"",
                         field));
}

Status InvalidSource(const std::string& message, const std::string& field) {
  return Status(Code::kInvalidArgument, "invalid_source", message, field);
}

std::string Shown(const std::string& s) {
  std::string out;
  for (char c : s.substr(0, 200)) {
    unsigned char u = static_cast<unsigned char>(c);
    out += u < 0x20 || u == 0x7f ? '?' : c;
  }
  return "\"" + out + (s.size() > 200 ? "...\"" : "\"");
}

bool HasControlOrSpace(const std::string& s) {
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return true;
  }
  return false;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The host part of an authority "user@host:port" / "[v6]:port" is not read as an option.
Status CheckAuthority(const std::string& authority, const std::string& url, const std::string& field) {
  size_t at = authority.rfind('@');
  std::string user = at == std::string::npos ? "" : authority.substr(0, at);
  std::string host = at == std::string::npos ? authority : authority.substr(at + 1);
  if (host.empty()) return InvalidSource("source.url " + Shown(url) + " names no host", field);
  if (host.front() == '-' || (!user.empty() && user.front() == '-')) {
    return InvalidSource("source.url " + Shown(url) + ": a host or user name must not start with '-'",
                         field);
  }
  return Status::Ok();
}

}  // namespace

Result<GitUrlKind> CheckGitUrl(const std::string& url, const std::string& field) {
  const std::string kinds =
      ": use https://, http://, ssh://, user@host:path or an absolute path under a source root";
  if (url.empty()) return InvalidSource("source.url is required for a git source", field);
  if (url.size() > 4096) return InvalidSource("source.url is longer than 4096 bytes", field);
  if (url.front() == '-') {
    return InvalidSource("source.url " + Shown(url) + " must not start with '-' (git would read it "
                         "as an option)", field);
  }
  // "<transport>::<address>" runs a remote helper (ext:: runs any command, fd:: talks to a
  // file descriptor): never a source.
  size_t helper = url.find("::");
  if (helper != std::string::npos &&
      url.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-") >= helper) {
    return InvalidSource("source.url " + Shown(url) + " uses the transport \"" + url.substr(0, helper) +
                         "::\", which is not allowed" + kinds, field);
  }
  if (HasControlOrSpace(url)) {
    return InvalidSource("source.url " + Shown(url) + " contains spaces or control characters", field);
  }
  size_t scheme_end = url.find("://");
  if (scheme_end != std::string::npos) {
    std::string scheme = Lower(url.substr(0, scheme_end));
    std::string rest = url.substr(scheme_end + 3);
    if (scheme == "file") {
      if (rest.empty() || rest.front() != '/') {
        return InvalidSource("source.url " + Shown(url) + " must name an absolute path (file:///...)",
                             field);
      }
      return GitUrlKind::kLocal;
    }
    if (scheme != "https" && scheme != "http" && scheme != "ssh" && scheme != "git+ssh" &&
        scheme != "ssh+git") {
      return InvalidSource("source.url " + Shown(url) + " uses the scheme " + scheme + "://" + kinds,
                           field);
    }
    BERTH_RETURN_IF_ERROR(CheckAuthority(rest.substr(0, rest.find('/')), url, field));
    return GitUrlKind::kRemote;
  }
  if (url.front() == '/') return GitUrlKind::kLocal;
  // scp-like "[user@]host:path": git reads it so when a ':' comes before any '/'.
  size_t colon = url.find(':');
  size_t slash = url.find('/');
  if (colon != std::string::npos && (slash == std::string::npos || colon < slash)) {
    BERTH_RETURN_IF_ERROR(CheckAuthority(url.substr(0, colon), url, field));
    return GitUrlKind::kRemote;
  }
  return InvalidSource("source.url " + Shown(url) + " is not a repository URL" + kinds, field);
}

std::string GitLocalPath(const std::string& url) {
  if (url.size() >= 7 && Lower(url.substr(0, 7)) == "file://") return url.substr(7);
  return url;
}

Status CheckGitRef(const std::string& ref, const std::string& field) {
  if (ref.empty()) return Status::Ok();
  auto bad = [&](const std::string& why) {
    return InvalidSource("source.ref " + Shown(ref) + " is not a git branch, tag or commit: " + why,
                         field);
  };
  if (ref.front() == '-') return bad("it must not start with '-' (git would read it as an option)");
  if (HasControlOrSpace(ref)) return bad("it contains spaces or control characters");
  if (ref.find_first_of("\\~^:?*[") != std::string::npos) return bad("it contains one of \\ ~ ^ : ? * [");
  if (ref.find("..") != std::string::npos || ref.find("@{") != std::string::npos ||
      ref.find("//") != std::string::npos) {
    return bad("it contains \"..\", \"//\" or \"@{\"");
  }
  if (ref.front() == '/' || ref.back() == '/' || ref.back() == '.' ||
      (ref.size() >= 5 && ref.compare(ref.size() - 5, 5, ".lock") == 0)) {
    return bad("it starts or ends with '/', or ends with '.' or \".lock\"");
  }
  return Status::Ok();
}

bool IsArtifactDigest(const std::string& a) {
  return a.size() == 7 + 64 && a.compare(0, 7, "sha256:") == 0 &&
         a.find_first_not_of("0123456789abcdef", 7) == std::string::npos;
}

Result<Component> ParseComponent(const Json& in) {
  Component c;
  JsonReader r(in, "", kReadOnly);
  r.Str("name", &c.name, 255);
  if (r.ok()) r.Fail(ValidateDnsLabel(c.name, "component name"));
  r.Enum("kind", &c.kind, {"service", "stateful", "job", "cronjob"});
  r.Str("schedule", &c.schedule, 200);
  r.Obj("source", [&](JsonReader& s) {
    s.Enum("type", &c.source.type, {"none", "dir", "git", "archive", "package"});
    s.Str("path", &c.source.path, 4096);
    s.Str("url", &c.source.url, 4096);
    s.Str("ref", &c.source.ref, 256);
    s.Str("archive", &c.source.archive, 4096);
  });
  r.Obj("build", [&](JsonReader& b) {
    b.Str("command", &c.build.command, 4096);
    b.Str("start_command", &c.build.start_command, 4096);
    b.Str("language", &c.build.language, 64);
    b.Str("language_version", &c.build.language_version, 64);
    b.Str("subdir", &c.build.subdir, 1024);
    if (b.ok() && !c.build.subdir.empty()) {
      b.Fail(ValidateRelativePath(c.build.subdir, "build.subdir"));
    }
  });
  std::set<int> port_numbers;
  r.Arr("ports", [&](JsonReader& p, size_t i) {
    Port port;
    p.Int("port", &port.port, 1, 65535);
    p.Enum("protocol", &port.protocol, {"http", "tcp", "udp", "grpc"});
    p.Bool("inner", &port.inner);
    p.Bool("outer", &port.outer);
    p.Str("name", &port.name, 255);
    p.Bool("auto", &port.automatic);
    if (p.ok() && !p.Has("port")) p.Fail(InvalidArgument("port is required", p.FieldPath("port")));
    if (p.ok() && !port.name.empty()) p.Fail(ValidateDnsLabel(port.name, "port name", p.FieldPath("name")));
    if (p.ok() && !port_numbers.insert(port.port).second) {
      p.Fail(InvalidArgument("port " + std::to_string(port.port) + " is declared twice",
                             p.FieldPath("port")));
    }
    c.ports.push_back(port);
  }, 32);
  r.StrMap("env", [&](const std::string& k, const std::string& v) {
    if (!r.ok()) return;
    r.Fail(ValidateEnvName(k, "env." + k));
    if (r.ok() && v.size() > 65536) r.Fail(InvalidArgument("env." + k + " is longer than 64 KiB", "env." + k));
    c.env[k] = v;
  });
  std::set<std::string> paths;
  r.Arr("config_files", [&](JsonReader& f, size_t) {
    ConfigFile cf;
    f.Str("path", &cf.path, 1024);
    f.Str("content", &cf.content, 256 << 10);
    if (f.ok()) f.Fail(ValidateRelativePath(cf.path, f.FieldPath("path")));
    if (f.ok() && !paths.insert(cf.path).second) {
      f.Fail(InvalidArgument("config file " + cf.path + " is declared twice", f.FieldPath("path")));
    }
    c.config_files.push_back(cf);
  }, 50);
  std::set<std::string> vol_names;
  r.Arr("volumes", [&](JsonReader& v, size_t) {
    Volume vol;
    v.Str("name", &vol.name, 255);
    v.Str("path", &vol.path, 1024);
    v.Bool("shared", &vol.shared);
    if (v.ok()) v.Fail(ValidateDnsLabel(vol.name, "volume name", v.FieldPath("name")));
    if (v.ok()) v.Fail(ValidateRelativePath(vol.path, v.FieldPath("path")));
    if (v.ok() && !vol_names.insert(vol.name).second) {
      v.Fail(InvalidArgument("volume " + vol.name + " is declared twice", v.FieldPath("name")));
    }
    c.volumes.push_back(vol);
  }, 20);
  r.Obj("health", [&](JsonReader& h) {
    ParseProbeInto(h, "startup", &c.health.startup);
    ParseProbeInto(h, "readiness", &c.health.readiness);
    ParseProbeInto(h, "liveness", &c.health.liveness);
  });
  r.Obj("resources", [&](JsonReader& res) {
    res.Int("memory_mb", &c.resources.memory_mb, 0, 1 << 20);
    res.Int("cpu_millis", &c.resources.cpu_millis, 0, 1024000);
  });
  r.Int("replicas", &c.replicas, 0, 100);
  if (r.ok() && r.Has("processes")) {
    Json procs;
    r.Raw("processes", &procs);
    if (!procs.is_object()) {
      r.Fail(InvalidArgument("processes must be an object of process type → instances, e.g. "
                             "{\"worker\": 2}",
                             "processes"));
    } else if (procs.size() > 20) {
      r.Fail(InvalidArgument("processes has more than 20 process types", "processes"));
    } else {
      for (const auto& [type, n] : procs.items()) {
        if (!r.ok()) break;
        const std::string field = "processes." + type;
        r.Fail(ValidateProcessType(type, field));
        if (r.ok() && (!n.is_number_integer() || n.get<int64_t>() < 0 || n.get<int64_t>() > 100)) {
          r.Fail(InvalidArgument(field + " must be a whole number from 0 to 100", field));
        }
        if (r.ok()) c.processes[type] = n.get<int>();
      }
    }
  }
  r.Enum("desired_state", &c.desired_state, {"running", "stopped"});
  r.Str("version", &c.version, 255);
  if (r.ok() && !c.version.empty()) r.Fail(ValidateDnsLabel(c.version, "version name", "version"));
  r.Int("restart_generation", &c.restart_generation, 0, int64_t{1} << 53);
  r.Obj("rollout", [&](JsonReader& ro) {
    ParseAmount(ro, "max_surge", &c.rollout.max_surge);
    ParseAmount(ro, "max_unavailable", &c.rollout.max_unavailable);
    if (ro.ok() && c.rollout.max_surge.value == 0 && c.rollout.max_unavailable.value == 0) {
      ro.Fail(InvalidArgument(
          "max_surge and max_unavailable cannot both be 0: a rolling update could not make progress",
          ro.FieldPath("max_surge")));
    }
  });
  r.Int("grace_period_s", &c.grace_period_s, 0, 3600);
  r.StrMap("connection_env", [&](const std::string& k, const std::string& v) {
    if (!r.ok()) return;
    r.Fail(ValidateEnvName(k, "connection_env." + k));
    if (r.ok() && v.size() > 65536) {
      r.Fail(InvalidArgument("connection_env." + k + " is longer than 64 KiB", "connection_env." + k));
    }
    c.connection_env[k] = v;
  });
  bool is_job = c.kind == "job" || c.kind == "cronjob";
  if (r.ok() && r.Has("job")) {
    if (!is_job) {
      r.Fail(InvalidArgument("job settings are only for job and cronjob components (kind is " +
                                 c.kind + ")",
                             "job"));
    }
  }
  r.Obj("job", [&](JsonReader& j) {
    j.Int("retries", &c.job.retries, 0, 100);
    j.Int("timeout_s", &c.job.timeout_s, 0, 7 * 86400);
    j.Int("history_limit", &c.job.history_limit, 1, 100);
    j.Enum("concurrency_policy", &c.job.concurrency_policy, {"allow", "forbid", "replace"});
    j.Bool("suspend", &c.job.suspend);
    if (j.ok() && c.job.suspend && c.kind != "cronjob") {
      j.Fail(InvalidArgument("job.suspend is only for cronjob components (it stops the schedule)",
                             j.FieldPath("suspend")));
    }
  });
  if (r.ok()) {
    if (c.kind == "cronjob") {
      if (c.schedule.empty()) {
        r.Fail(InvalidArgument("a cronjob needs a schedule, e.g. \"0 3 * * *\"", "schedule"));
      } else {
        r.Fail(ValidateCron(c.schedule, "schedule"));
      }
    } else if (!c.schedule.empty()) {
      r.Fail(InvalidArgument("schedule is only for cronjob components", "schedule"));
    }
  }
  if (r.ok()) {
    const Source& s = c.source;
    if (s.type == "dir" || s.type == "package") {
      if (s.path.empty() || s.path.front() != '/') {
        r.Fail(InvalidArgument("source.path must be an absolute path for a " + s.type + " source",
                               "source.path"));
      }
    } else if (s.type == "git" && s.url.empty()) {
      r.Fail(InvalidArgument("source.url is required for a git source", "source.url"));
    } else if (s.type == "archive" && s.archive.empty()) {
      r.Fail(InvalidArgument("source.archive is required for an archive source", "source.archive"));
    }
  }
  return Done(r, std::move(c));
}

Json ToJson(const Component& c) {
  Json ports = Json::array();
  for (const Port& p : c.ports) {
    ports.push_back({{"port", p.port},
                     {"protocol", p.protocol},
                     {"inner", p.inner},
                     {"outer", p.outer},
                     {"name", p.name}});
    if (p.automatic) ports.back()["auto"] = true;
  }
  Json files = Json::array();
  for (const ConfigFile& f : c.config_files) files.push_back({{"path", f.path}, {"content", f.content}});
  Json vols = Json::array();
  for (const Volume& v : c.volumes) {
    vols.push_back({{"name", v.name}, {"path", v.path}, {"shared", v.shared}});
  }
  Json j = {{"name", c.name},
          {"kind", c.kind},
          {"schedule", c.schedule},
          {"source",
           {{"type", c.source.type},
            {"path", c.source.path},
            {"url", c.source.url},
            {"ref", c.source.ref},
            {"archive", c.source.archive}}},
          {"build",
           {{"command", c.build.command},
            {"start_command", c.build.start_command},
            {"language", c.build.language},
            {"language_version", c.build.language_version},
            {"subdir", c.build.subdir}}},
          {"ports", ports},
          {"env", c.env},
          {"config_files", files},
          {"volumes", vols},
          {"health",
           {{"startup", ProbeJson(c.health.startup)},
            {"readiness", ProbeJson(c.health.readiness)},
            {"liveness", ProbeJson(c.health.liveness)}}},
          {"resources",
           {{"memory_mb", c.resources.memory_mb}, {"cpu_millis", c.resources.cpu_millis}}},
          {"replicas", c.replicas},
          {"processes", c.processes},
          {"desired_state", c.desired_state},
          {"version", c.version},
          {"restart_generation", c.restart_generation},
          {"rollout",
           {{"max_surge", c.rollout.max_surge.ToJson()},
            {"max_unavailable", c.rollout.max_unavailable.ToJson()}}},
          {"grace_period_s", c.grace_period_s},
          {"connection_env", c.connection_env}};
  if (c.kind == "job" || c.kind == "cronjob") {
    j["job"] = {{"retries", c.job.retries},
                {"timeout_s", c.job.timeout_s},
                {"history_limit", c.job.history_limit},
                {"concurrency_policy", c.job.concurrency_policy},
                {"suspend", c.job.suspend}};
  }
  return j;
}

int Amount::Resolve(int replicas, bool round_up) const {
  if (!percent) return value;
  int64_t scaled = static_cast<int64_t>(replicas) * value;
  return static_cast<int>(round_up ? (scaled + 99) / 100 : scaled / 100);
}

Json Amount::ToJson() const {
  if (percent) return std::to_string(value) + "%";
  return value;
}

// ---- dependencies -------------------------------------------------------------------------

Result<Dependency> ParseDependencyInput(const Json& in, const std::string& app) {
  Dependency d;
  JsonReader r(in, "", ReadOnlyExcept({}));
  std::string ignored_name;
  r.Str("name", &ignored_name, 200);
  r.Str("target_component", &d.target_component, 255);
  r.Str("target_app", &d.target_app, 255);
  if (r.ok()) r.Fail(ValidateDnsLabel(d.target_component, "target component name", "target_component"));
  if (d.target_app.empty()) d.target_app = app;
  if (r.ok()) r.Fail(ValidateDnsLabel(d.target_app, "target app name", "target_app"));
  d.name = d.target_app == app ? d.target_component : d.target_app + "-" + d.target_component;
  if (r.ok() && d.name.size() > 63) {
    r.Fail(InvalidArgument("target app and component names together are longer than 63 characters",
                           "target_component"));
  }
  return Done(r, std::move(d));
}

Json ToJson(const Dependency& d) {
  return {{"name", d.name}, {"target_app", d.target_app}, {"target_component", d.target_component}};
}

// ---- versions -----------------------------------------------------------------------------

Result<Version> ParseVersion(const Json& in) {
  Version v;
  JsonReader r(in, "", kReadOnly);
  r.Str("name", &v.name, 63);
  r.Int("number", &v.number, 0, INT64_MAX);
  r.Enum("status", &v.status, {"queued", "building", "ready", "failed", "cancelled"});
  r.Str("artifact", &v.artifact, 1024);
  if (r.ok() && !v.artifact.empty() && !IsArtifactDigest(v.artifact)) {
    r.Fail(Status(Code::kInvalidArgument, "unsafe_path",
                  "artifact must name an artifact by its digest, sha256:<64 hex digits>; "
                  "paths are not accepted",
                  "artifact"));
  }
  r.Str("start_command", &v.start_command, 4096);
  r.Str("commit", &v.commit, 128);
  r.Str("build_log", &v.build_log, 4096);
  r.Str("message", &v.message, 4096);
  r.Int("size_bytes", &v.size_bytes, 0, INT64_MAX);
  r.Str("built_at", &v.built_at, 64);
  r.Raw("detect", &v.detect);
  if (r.ok() && !v.detect.is_object()) r.Fail(InvalidArgument("detect must be an object", "detect"));
  r.Raw("build_request", &v.build_request);
  if (r.ok() && !v.build_request.is_object()) {
    r.Fail(InvalidArgument("build_request must be an object", "build_request"));
  }
  return Done(r, std::move(v));
}

Json ToJson(const Version& v) {
  return {{"name", v.name},         {"number", v.number},
          {"status", v.status},     {"artifact", v.artifact},
          {"start_command", v.start_command}, {"commit", v.commit},
          {"build_log", v.build_log}, {"message", v.message},
          {"size_bytes", v.size_bytes}, {"built_at", v.built_at},
          {"detect", v.detect}, {"build_request", v.build_request}};
}

// ---- events -------------------------------------------------------------------------------

Result<Event> EventFromJson(const Json& j) {
  Event e;
  JsonReader r(j, "");
  r.Str("id", &e.id);
  r.Enum("type", &e.type, {"normal", "warning"});
  r.Str("reason", &e.reason);
  r.Str("message", &e.message, 65536);
  r.Str("app", &e.app);
  r.Str("component", &e.component);
  r.Int("count", &e.count, 0, INT64_MAX);
  r.Str("first_at", &e.first_at);
  r.Str("last_at", &e.last_at);
  return Done(r, std::move(e));
}

Result<Operation> OperationFromJson(const Json& j) {
  Operation o;
  JsonReader r(j, "", kReadOnly);
  r.Enum("type", &o.type, {"deploy", "rollback", "scale", "restart", "stop", "start", "update"});
  r.Enum("status", &o.status, {"in_progress", "succeeded", "failed", "cancelled"});
  r.Str("detail", &o.detail, 4096);
  r.Str("by", &o.by, 255);
  r.Str("started_at", &o.started_at, 64);
  r.Str("finished_at", &o.finished_at, 64);
  r.Str("message", &o.message, 65536);
  return Done(r, std::move(o));
}

Json ToJson(const Operation& o) {
  return {{"type", o.type},         {"status", o.status},   {"detail", o.detail},
          {"by", o.by},             {"started_at", o.started_at},
          {"finished_at", o.finished_at}, {"message", o.message}};
}

Result<Run> RunFromJson(const Json& j) {
  Run run;
  JsonReader r(j, "", kReadOnly);
  r.Str("name", &run.name, 255);
  r.Int("number", &run.number, 0, int64_t{1} << 53);
  r.Enum("status", &run.status, {"running", "succeeded", "failed", "cancelled"});
  r.Enum("trigger", &run.trigger, {"deploy", "schedule", "manual"});
  r.Str("by", &run.by, 255);
  r.Str("version", &run.version, 255);
  r.Str("instance", &run.instance, 255);
  r.Str("scheduled_at", &run.scheduled_at, 64);
  r.Str("started_at", &run.started_at, 64);
  r.Str("finished_at", &run.finished_at, 64);
  r.Int("attempts", &run.attempts, 0, 1000);
  r.Raw("last_exit", &run.last_exit);
  r.Str("message", &run.message, 65536);
  r.Str("log_tail", &run.log_tail, 65536);
  r.Str("command", &run.command, 65536);
  return Done(r, std::move(run));
}

Json ToJson(const Run& r) {
  return {{"name", r.name},
          {"number", r.number},
          {"status", r.status},
          {"trigger", r.trigger},
          {"by", r.by},
          {"version", r.version},
          {"instance", r.instance},
          {"scheduled_at", r.scheduled_at},
          {"started_at", r.started_at},
          {"finished_at", r.finished_at},
          {"attempts", r.attempts},
          {"last_exit", r.last_exit},
          {"message", r.message},
          {"log_tail", r.log_tail},
          {"command", r.command}};
}

Status ValidateProcessType(const std::string& type, const std::string& field) {
  bool ok = !type.empty() && type.size() <= 30 && type.front() != '-' && type.back() != '-';
  for (char ch : type) ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-');
  if (!ok) {
    return InvalidArgument("process type \"" + type + "\" must be 1-30 of a-z, 0-9 and '-' "
                           "(not first or last), as the Procfile names it in lower case",
                           field);
  }
  if (type == "web") {
    return InvalidArgument("the web process's count is replicas, not processes.web", field);
  }
  if (type == "release") {
    return InvalidArgument("release runs once per deploy, not as instances: it has no count",
                           field);
  }
  return Status::Ok();
}

std::string ProcessTypeName(const std::string& procfile_type) {
  std::string out;
  for (char ch : procfile_type) {
    out += ch == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  return out;
}

int64_t RunNumber(const std::string& name) {
  if (name.size() < 5 || name.compare(0, 4, "run-") != 0) return 0;
  std::string tail = name.substr(4);
  if (tail.size() > 15 || tail.find_first_not_of("0123456789") != std::string::npos) return 0;
  return std::stoll(tail);
}

Json ToJson(const Event& e) {
  return {{"id", e.id},         {"type", e.type},   {"reason", e.reason},
          {"message", e.message}, {"app", e.app},   {"component", e.component},
          {"count", e.count},   {"first_at", e.first_at}, {"last_at", e.last_at}};
}

}  // namespace berth::model
