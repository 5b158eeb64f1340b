// Runtime routes (docs/api.md "Runtime"): restart requests and instance logs. Start, stop,
// scale and rollback are PATCHes of the component (handlers.cc); the deploy controller makes
// them real.
//
// Instance logs are read from the files the shims write
// (DATA/logs/instances/<team>/<app>/<component>/<instance>.log, rotated to .log.1, .log.2),
// one line per output line: "<RFC 3339 UTC ms> <out|err|shim> <text>".
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "api/detail/service.h"
#include "core/names.h"

namespace berth::api {
namespace {

namespace fs = std::filesystem;
using model::Role;

constexpr size_t kMaxTail = 10000;
constexpr size_t kDefaultTail = 1000;
constexpr size_t kMaxChunk = 256 << 10;  // bytes read per file per poll while following

std::string CompScope(const Ctx& c) {
  return c.P("team") + "/" + c.P("app") + "/" + c.P("component");
}

Status NeedRole(Service& s, const Ctx& ctx, Role min, const std::string& action) {
  auto r = s.access.Require(ctx.who, ctx.P("team"), min, action);
  return r.ok() ? Status::Ok() : r.status();
}

Result<Object> LoadComponent(Service& s, const Ctx& ctx) {
  auto o = s.store.Get(model::kComponent, ctx.P("team") + "/" + ctx.P("app"), ctx.P("component"));
  if (!o.ok() && o.status().code() == Code::kNotFound) {
    return NotFound("component \"" + ctx.P("component") + "\" not found in app \"" + ctx.P("app") +
                    "\"");
  }
  return o;
}

// POST .../restart: bumps restart_generation; the controller replaces every instance, one at a
// time (a rolling restart).
Result<Reply> Restart(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "restart components"));
  for (int attempt = 0; attempt < 5; ++attempt) {
    BERTH_ASSIGN_OR_RETURN(Object cur, LoadComponent(s, ctx));
    Json before = Json::parse(cur.body, nullptr, false);
    if (!before.is_object()) return Internal("stored component is not a JSON object");
    Json after = before;
    after["restart_generation"] = before.value("restart_generation", int64_t{0}) + 1;
    WriteBatch b;
    Op op;
    op.type = OpType::kUpdate;
    op.object = Object{model::kComponent, cur.scope, cur.name, after.dump(), cur.index_key};
    op.expected_revision = cur.revision;
    b.ops.push_back(std::move(op));
    Json summary = {{"before", {{"restart_generation", before.value("restart_generation", 0)}}},
                    {"after", {{"restart_generation", after["restart_generation"]}}},
                    {"changed", Json::array({"restart_generation"})}};
    b.audit.push_back(AuditRecord{ctx.who.user, ctx.P("team"), "restart",
                                  "apps/" + ctx.P("app") + "/components/" + ctx.P("component"),
                                  summary.dump()});
    auto r = s.store.Commit(b);
    if (r.ok()) {
      Json body = RenderObject(r->objects.front());
      AddComponentAddresses(s, ctx.P("team"), ctx.P("app"), &body);
      return Reply{202, body, {}, nullptr};
    }
    if (r.status().code() != Code::kConflict) return r.status();
  }
  return RevisionConflict("the component is being changed concurrently: retry");
}

// "10m", "30s", "2h", "1d" → milliseconds; -1 when not a duration.
int64_t ParseDurationMs(const std::string& text) {
  if (text.size() < 2) return -1;
  std::string digits = text.substr(0, text.size() - 1);
  if (digits.empty() || digits.size() > 9 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return -1;
  }
  int64_t n = std::stoll(digits);
  switch (text.back()) {
    case 's': return n * 1000;
    case 'm': return n * 60 * 1000;
    case 'h': return n * 3600 * 1000;
    case 'd': return n * 86400 * 1000;
    default: return -1;
  }
}

// The log files' timestamps are fixed-width RFC 3339 with milliseconds, so times compare as
// strings. Returns the lower bound ("" = no bound).
Result<std::string> SinceBound(const Ctx& ctx, const Clock& clock) {
  std::string since = ctx.req.Query("since");
  if (since.empty()) return std::string();
  int64_t ms = ParseDurationMs(since);
  if (ms >= 0) return FormatTime(clock.Now() - std::chrono::milliseconds(ms));
  // RFC 3339 UTC: "2026-11-23T11:18:26Z" or with milliseconds.
  if (since.size() >= 20 && since[4] == '-' && since[10] == 'T' && since.back() == 'Z') {
    if (since.find('.') == std::string::npos) since.insert(since.size() - 1, ".000");
    return since;
  }
  return InvalidArgument("since must be a duration (30s, 10m, 2h, 1d) or an RFC 3339 UTC time",
                         "since");
}

struct LogLine {
  std::string time;
  std::string instance;
  std::string stream;
  std::string text;
};

bool ParseLine(const std::string& raw, const std::string& instance, LogLine* out) {
  size_t a = raw.find(' ');
  if (a == std::string::npos) return false;
  size_t b = raw.find(' ', a + 1);
  if (b == std::string::npos) return false;
  out->time = raw.substr(0, a);
  out->stream = raw.substr(a + 1, b - a - 1);
  out->text = raw.substr(b + 1);
  out->instance = instance;
  return true;
}

std::string Render(const LogLine& l) {
  Json j = {{"time", l.time}, {"instance", l.instance}, {"stream", l.stream}, {"line", l.text}};
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

class LogStream final : public StreamSource {
 public:
  LogStream(std::string dir, std::string instance, std::string since, std::string grep,
            bool follow, size_t tail)
      : dir_(std::move(dir)), instance_(std::move(instance)), since_(std::move(since)),
        grep_(std::move(grep)), follow_(follow), tail_(tail) {}

  bool Poll(std::string* out) override {
    if (!started_) {
      started_ = true;
      Backlog(out);
      return follow_;
    }
    for (const std::string& inst : Instances()) Follow(inst, out);
    return true;
  }

  std::string Heartbeat() override { return "{\"type\":\"heartbeat\"}\n"; }

 private:
  struct Cursor {
    ino_t inode = 0;
    off_t offset = 0;
    std::string partial;
  };

  bool Keep(const LogLine& l) const {
    if (!since_.empty() && l.time < since_) return false;
    if (!grep_.empty() && l.text.find(grep_) == std::string::npos) return false;
    return true;
  }

  std::vector<std::string> Instances() const {
    std::vector<std::string> out;
    if (!instance_.empty()) {
      out.push_back(instance_);
      return out;
    }
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_, ec)) {
      std::string name = e.path().filename().string();
      if (name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0) {
        out.push_back(name.substr(0, name.size() - 4));
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  void Backlog(std::string* out) {
    std::vector<LogLine> lines;
    for (const std::string& inst : Instances()) {
      std::string base = dir_ + "/" + inst + ".log";
      for (int i = 9; i >= 0; --i) {
        std::string path = i == 0 ? base : base + "." + std::to_string(i);
        std::ifstream f(path, std::ios::binary);
        if (!f) continue;
        std::string raw;
        while (std::getline(f, raw)) {
          LogLine l;
          if (ParseLine(raw, inst, &l) && Keep(l)) lines.push_back(std::move(l));
        }
        if (i == 0) {
          struct stat st{};
          if (::stat(path.c_str(), &st) == 0) {
            // Follow from the end of what was read (a partial last line is re-read later).
            Cursor& c = cursors_[inst];
            c.inode = st.st_ino;
            c.offset = st.st_size;
          }
        }
      }
    }
    std::stable_sort(lines.begin(), lines.end(),
                     [](const LogLine& a, const LogLine& b) { return a.time < b.time; });
    size_t from = lines.size() > tail_ ? lines.size() - tail_ : 0;
    for (size_t i = from; i < lines.size(); ++i) *out += Render(lines[i]);
    // Instances without a log yet start from their beginning when they appear.
  }

  void Follow(const std::string& inst, std::string* out) {
    std::string path = dir_ + "/" + inst + ".log";
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) return;
    Cursor& c = cursors_[inst];
    if (c.inode != st.st_ino || st.st_size < c.offset) {  // rotated or new: from the start
      c.inode = st.st_ino;
      c.offset = 0;
      c.partial.clear();
    }
    if (st.st_size == c.offset) return;
    std::ifstream f(path, std::ios::binary);
    if (!f) return;
    f.seekg(c.offset);
    size_t want = std::min<size_t>(kMaxChunk, static_cast<size_t>(st.st_size - c.offset));
    std::string data(want, '\0');
    f.read(data.data(), static_cast<std::streamsize>(want));
    data.resize(static_cast<size_t>(f.gcount()));
    c.offset += static_cast<off_t>(data.size());
    c.partial += data;
    size_t start = 0;
    while (true) {
      size_t nl = c.partial.find('\n', start);
      if (nl == std::string::npos) break;
      LogLine l;
      if (ParseLine(c.partial.substr(start, nl - start), inst, &l) && Keep(l)) *out += Render(l);
      start = nl + 1;
    }
    c.partial.erase(0, start);
  }

  const std::string dir_;
  const std::string instance_;
  const std::string since_;
  const std::string grep_;
  const bool follow_;
  const size_t tail_;
  bool started_ = false;
  std::map<std::string, Cursor> cursors_;
};

Result<Reply> Logs(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kViewer, "read logs"));
  BERTH_ASSIGN_OR_RETURN(Object comp, LoadComponent(s, ctx));
  (void)comp;
  if (s.options.data_dir.empty()) return Unavailable("this server keeps no instance logs");
  std::string instance = ctx.req.Query("instance");
  if (!instance.empty()) BERTH_RETURN_IF_ERROR(ValidateDnsLabel(instance, "instance name", "instance"));
  BERTH_ASSIGN_OR_RETURN(std::string since, SinceBound(ctx, s.clock));
  std::string follow = ctx.req.Query("follow");
  if (!follow.empty() && follow != "0" && follow != "1" && follow != "true" && follow != "false") {
    return InvalidArgument("follow must be 1 or 0", "follow");
  }
  size_t tail = kDefaultTail;
  std::string t = ctx.req.Query("tail");
  if (!t.empty()) {
    if (t.size() > 6 || t.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(t) > kMaxTail) {
      return InvalidArgument("tail must be a number from 0 to " + std::to_string(kMaxTail), "tail");
    }
    tail = std::stoul(t);
  }
  std::string grep = ctx.req.Query("grep");
  if (grep.size() > 1024) return InvalidArgument("grep is longer than 1024 characters", "grep");
  std::string dir = s.options.data_dir + "/logs/instances/" + CompScope(ctx);
  Reply r;
  r.stream = std::make_shared<LogStream>(dir, instance, since, grep,
                                         follow == "1" || follow == "true", tail);
  r.headers.push_back({"Cache-Control", "no-cache"});
  return r;
}

}  // namespace

void RegisterRuntimeRoutes(Service& svc) {
  const std::string C = "/api/v1/teams/{team}/apps/{app}/components/{component}";
  Service* sp = &svc;
  Route restart;
  restart.method = "POST";
  restart.pattern = C + "/restart";
  restart.summary = "Restart every instance, one at a time (bumps restart_generation)";
  restart.tag = "runtime";
  restart.response_schema = "Component";
  restart.success_status = 202;
  restart.fn = [sp](Ctx& c) { return Restart(*sp, c); };
  svc.router.Add(std::move(restart));

  Route logs;
  logs.method = "GET";
  logs.pattern = C + "/logs";
  logs.summary =
      "Instance logs as NDJSON lines {time,instance,stream,line} (?instance=&since=&grep=&tail=&"
      "follow=1)";
  logs.tag = "runtime";
  logs.response_schema = "LogLine";
  logs.fn = [sp](Ctx& c) { return Logs(*sp, c); };
  svc.router.Add(std::move(logs));
}

}  // namespace berth::api
