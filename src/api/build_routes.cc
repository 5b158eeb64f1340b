// Builder routes (docs/api.md "Builds"): detection, queueing a build, cancelling it and the
// build log (whole, or followed live as NDJSON). Like every route, these only read the store
// or record intent; the build controller (src/builder/controller.h) does the building.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "api/detail/service.h"
#include "auth/crypto.h"
#include "builder/controller.h"
#include "builder/detect.h"
#include "builder/doctor.h"
#include "builder/source.h"
#include "builder/source_policy.h"
#include "core/safe_fs.h"
#include "core/disk.h"
#include "core/names.h"

namespace berth::api {
namespace {

namespace fs = std::filesystem;
using model::Role;

constexpr size_t kLogReplyLimit = 4 << 20;   // bytes of a log returned without follow
constexpr size_t kStreamChunk = 256 << 10;   // bytes read per poll of a followed log

Result<Json> Body(const Ctx& ctx) {
  const std::string& ct = ctx.req.Header("content-type");
  if (!ct.empty() && ct.rfind("application/json", 0) != 0) {
    return Status(Code::kUnsupportedMedia, "unsupported_media_type",
                  "the body must be JSON (Content-Type: application/json), got " + ct);
  }
  return ParseJsonObject(ctx.req.body.empty() ? "{}" : ctx.req.body);
}

std::string CompScope(const Ctx& c) { return c.P("team") + "/" + c.P("app") + "/" + c.P("component"); }
std::string CompRes(const Ctx& c) { return "apps/" + c.P("app") + "/components/" + c.P("component"); }

Result<Object> LoadComponent(Service& s, const Ctx& ctx) {
  auto app = s.store.Get(model::kApp, ctx.P("team"), ctx.P("app"));
  if (!app.ok()) {
    if (app.status().code() == Code::kNotFound) {
      return NotFound("app " + Quoted(ctx.P("app")) + " not found in team " + Quoted(ctx.P("team")));
    }
    return app.status();
  }
  auto c = s.store.Get(model::kComponent, ctx.P("team") + "/" + ctx.P("app"), ctx.P("component"));
  if (!c.ok() && c.status().code() == Code::kNotFound) {
    return NotFound("component " + Quoted(ctx.P("component")) + " not found in app " + Quoted(ctx.P("app")));
  }
  return c;
}

Result<Object> LoadVersion(Service& s, const Ctx& ctx) {
  BERTH_ASSIGN_OR_RETURN(Object comp, LoadComponent(s, ctx));
  (void)comp;
  auto v = s.store.Get(model::kVersion, CompScope(ctx), ctx.P("version"));
  if (!v.ok() && v.status().code() == Code::kNotFound) {
    return NotFound("version " + Quoted(ctx.P("version")) + " not found in component " +
                    Quoted(ctx.P("component")));
  }
  return v;
}

// ---- detect -------------------------------------------------------------------------------

// One of the caller's detection slots (options.detect_per_user), held while it runs.
class DetectSlot {
 public:
  DetectSlot(Service& s, std::string user) : s_(s), user_(std::move(user)) {}
  ~DetectSlot() {
    if (!held_) return;
    std::lock_guard<std::mutex> l(s_.detect_mu);
    if (--s_.detecting[user_] <= 0) s_.detecting.erase(user_);
  }
  Status Take() {
    std::lock_guard<std::mutex> l(s_.detect_mu);
    int& n = s_.detecting[user_];
    if (n >= std::max(1, s_.options.detect_per_user)) {
      return Status(Code::kRateLimited, "too_many_detections",
                    "you have " + std::to_string(n) + " detections running, the most one user may "
                    "run at once: retry when one has ended");
    }
    ++n;
    held_ = true;
    return Status::Ok();
  }

 private:
  Service& s_;
  const std::string user_;
  bool held_ = false;
};

Result<Reply> DetectRoute(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "run detection"));
  BERTH_ASSIGN_OR_RETURN(Json body, Body(ctx));
  // The component parser validates source and build exactly as a component's would be.
  Json comp = {{"name", "detect"}};
  JsonReader r(body, "");
  Json source, build;
  r.Raw("source", &source);
  r.Raw("build", &build);
  r.Finish();
  if (!r.ok()) return r.status();
  if (source.is_null()) return InvalidArgument("source is required", "source");
  comp["source"] = source;
  if (!build.is_null()) comp["build"] = build;
  BERTH_ASSIGN_OR_RETURN(model::Component c, model::ParseComponent(comp));
  if (c.source.type == "none") return InvalidArgument("source.type must be dir, git, archive or package", "source.type");
  if (s.options.data_dir.empty()) return Unavailable("the server has no data directory for detection");
  // An archive is an upload of one of this team's components (the console's wizard uploads,
  // then detects), or under a source root (or the caller an admin).
  std::string own_uploads;
  if (c.source.type == "archive") {
    const std::string team_uploads = fs::absolute(s.options.data_dir).string() + "/uploads/" + ctx.P("team") + "/";
    if (c.source.archive.rfind(team_uploads, 0) == 0) {
      const std::string rest = c.source.archive.substr(team_uploads.size());
      const size_t slash = rest.find('/');
      if (slash != std::string::npos && rest.find('/', slash + 1) != std::string::npos) {
        const std::string app = rest.substr(0, slash);
        const std::string comp = rest.substr(slash + 1, rest.find('/', slash + 1) - slash - 1);
        if (ValidateDnsLabel(app, "app").ok() && ValidateDnsLabel(comp, "component").ok()) {
          own_uploads = builder::UploadsDir(fs::absolute(s.options.data_dir).string(), ctx.P("team"), app, comp);
        }
      }
    }
  }
  BERTH_RETURN_IF_ERROR(builder::CheckSourceAccess(
      c.source, builder::SourcePolicy{s.options.source_roots, s.options.data_dir}, ctx.who.admin, own_uploads));
  DetectSlot slot(s, ctx.who.user);
  BERTH_RETURN_IF_ERROR(slot.Take());

  std::string root;
  std::string tmp;
  std::string commit;
  if (c.source.type == "dir") {
    std::error_code ec;
    if (!fs::is_directory(c.source.path, ec)) {
      return InvalidArgument("source.path " + c.source.path + " is not a directory on the server", "source.path");
    }
    root = c.source.path;  // detection only reads: no copy needed
  } else {
    tmp = fs::absolute(s.options.data_dir).string() + "/tmp/detect-" + auth::RandomHex(8);
    std::atomic<bool> cancel{false};
    std::string log_text;
    builder::SourceLimits limits;
    limits.git_timeout = std::chrono::seconds(std::max(1, s.options.detect_timeout_s));
    auto fetched = builder::FetchSource(c.source, tmp + "/src", limits,
                                      [&](const std::string& l) {
                                        if (log_text.size() < 4096) log_text += l + "\n";
                                      },
                                      cancel);
    if (!fetched.ok()) {
      std::error_code ec;
      fs::remove_all(tmp, ec);
      Status st = fetched.status();
      if (st.code() == Code::kConflict) return InvalidArgument(st.message(), "source");
      return st;
    }
    commit = fetched->commit;
    root = tmp + "/src";
  }
  auto cleanup = [&] {
    if (!tmp.empty()) {
      std::error_code ec;
      fs::remove_all(tmp, ec);
    }
  };
  auto where = builder::ResolveSubdir(root, c.build.subdir);
  if (!where.ok()) {
    cleanup();
    return where.status();
  }
  auto d = builder::Detect(*where, c.build);
  cleanup();
  if (!d.ok()) return d.status();
  Json out = builder::ToJson(*d);
  if (!commit.empty()) out["commit"] = commit;
  return Reply{200, out, {}, nullptr};
}

// ---- queue a build ------------------------------------------------------------------------

Result<Reply> QueueBuild(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "build components"));
  BERTH_ASSIGN_OR_RETURN(Json body, Body(ctx));
  std::string ref;
  JsonReader r(body, "");
  r.Str("ref", &ref, 256);
  r.Finish();
  if (!r.ok()) return r.status();
  BERTH_ASSIGN_OR_RETURN(Object comp_obj, LoadComponent(s, ctx));
  BERTH_ASSIGN_OR_RETURN(model::Component comp, model::ParseComponent(Stored(comp_obj)));
  BERTH_ASSIGN_OR_RETURN(Object v, QueueVersion(s, ctx.P("team"), ctx.P("app"), comp, ref,
                                                ctx.who.user, Json::object()));
  return Reply{201, RenderObject(v), {}, nullptr};
}

// ---- doctor -------------------------------------------------------------------------------

// The data directory's disk: builds, uploads, logs and the store all live there, and every
// write fails once it is full; `warning` says so before it is.
Json DiskReport(const Service& s) {
  const std::string& dir = s.options.data_dir;
  if (dir.empty()) return nullptr;
  auto d = DiskSpaceOf(dir);
  if (!d.ok()) return {{"path", dir}, {"warning", d.status().message()}};
  int used = d->UsedPercent();
  std::string warning;
  if (d->free_bytes < kDiskFullBelowBytes) {
    warning = "the disk holding " + dir + " is full (" + FormatBytes(d->free_bytes) +
              " free): writes, uploads and builds fail with \"no space left on device\"";
  } else if (used >= s.options.disk_warn_percent) {
    warning = "the disk holding " + dir + " is " + std::to_string(used) + "% full (" +
              FormatBytes(d->free_bytes) + " free; the warning starts at " +
              std::to_string(s.options.disk_warn_percent) +
              "%): free space before writes, uploads and builds fail";
  }
  return {{"path", dir},
          {"total_bytes", d->total_bytes},
          {"free_bytes", d->free_bytes},
          {"used_percent", used},
          {"warn_percent", s.options.disk_warn_percent},
          {"warning", warning}};
}

// Any signed-in user: it names programs and versions on the server, how full its data disk is
// and whether it sandboxes, nothing of any team.
Result<Reply> Doctor(Service& s, Ctx&) {
  Json out = builder::ToJson(builder::CheckToolchains(s.options.build_path));
  out["disk"] = DiskReport(s);
  if (!s.options.sandbox.is_null()) out["sandbox"] = s.options.sandbox;
  return Reply{200, out, {}, nullptr};
}

// ---- archive upload -----------------------------------------------------------------------

// The component's uploads live in DATA/uploads/<team>/<app>/<component>/. After a new one, the
// files no longer referenced — by the component's source or a queued/building version's
// build_request — are removed, so a build waiting in the queue still finds its archive.
}  // namespace

void PruneUploads(Service& s, const std::string& scope, const std::string& dir, const std::string& keep,
                  const std::string& prefix) {
  std::set<std::string> used = {keep};
  ListOptions lo;
  lo.scope = scope;
  lo.limit = 1000;
  while (true) {
    auto all = s.store.List(model::kVersion, lo);
    if (!all.ok()) return;  // keep everything rather than guess
    for (const Object& o : all->items) {
      Json v = Stored(o);
      std::string st = v.value("status", "");
      if (st != "queued" && st != "building") continue;
      Json req = v.value("build_request", Json::object());
      if (req.contains("source") && req["source"].is_object()) used.insert(req["source"].value("archive", ""));
    }
    if (all->next.empty()) break;
    lo.after = all->next;
  }
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().filename().string().rfind(prefix, 0) == 0 && !used.count(e.path().string())) {
      fs::remove(e.path(), ec);
    }
  }
}

namespace {

std::string ArchiveSuffix(const std::string& name) {
  for (const char* ext : {".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip"}) {
    std::string e = ext;
    if (name.size() >= e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0) return e;
  }
  return ".archive";
}

// PUT .../components/{component}/archive[?name=app.tar.gz]: the body is the archive (streamed
// to DATA/tmp by the transport). It is checked like a build would (safe entries, limits), kept
// under DATA/uploads and becomes the component's source.
Result<Reply> UploadArchive(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "upload sources"));
  if (s.options.data_dir.empty()) return Unavailable("the server has no data directory for uploads");
  BERTH_ASSIGN_OR_RETURN(Object comp_obj, LoadComponent(s, ctx));
  const std::string& file = ctx.req.body_file;
  std::error_code ec;
  if (file.empty() || fs::file_size(file, ec) == 0 || ec) {
    return InvalidArgument("the upload is empty: send the archive (.tar.gz, .tgz, .tar or .zip) as the request body", "archive");
  }
  int64_t size = static_cast<int64_t>(fs::file_size(file, ec));
  builder::SourceLimits limits;
  Status ok = builder::CheckArchive(file, limits);
  if (!ok.ok()) {
    std::string m = ok.message();
    for (size_t at; (at = m.find(file)) != std::string::npos;) m.replace(at, file.size(), "the upload");
    return InvalidArgument(m, "archive");
  }
  const std::string dir = fs::absolute(s.options.data_dir).string() + "/uploads/" + CompScope(ctx);
  fs::create_directories(dir, ec);
  if (IsDiskFullError(ec)) return DiskFull("the upload was not kept", dir);
  if (ec) return Internal("cannot create " + dir + ": " + ec.message());
  std::string name = ctx.req.Query("name", "upload");
  const std::string kept = dir + "/" + FormatTime(s.clock.Now()).substr(0, 19) + "-" + auth::RandomHex(4) + ArchiveSuffix(name);
  std::string kept_name = kept;
  std::replace(kept_name.begin() + static_cast<std::ptrdiff_t>(dir.size()), kept_name.end(), ':', '-');
  fs::rename(file, kept_name, ec);
  if (ec) return Internal("cannot keep the upload: " + ec.message());

  for (int attempt = 0; attempt < 5; ++attempt) {
    if (attempt > 0) {
      auto again = LoadComponent(s, ctx);
      if (!again.ok()) break;
      comp_obj = *again;
    }
    Json before = Stored(comp_obj);
    Json after = before;
    after["source"] = {{"type", "archive"}, {"path", ""}, {"url", ""}, {"ref", ""}, {"archive", kept_name}};
    auto parsed = model::ParseComponent(after);
    if (!parsed.ok()) break;
    after = model::ToJson(*parsed);
    WriteBatch b;
    Op op;
    op.type = OpType::kUpdate;
    op.object = Object{model::kComponent, comp_obj.scope, comp_obj.name, after.dump(), ""};
    op.expected_revision = comp_obj.revision;
    b.ops.push_back(op);
    b.audit.push_back({ctx.who.user, ctx.P("team"), "upload", CompRes(ctx),
                       Json({{"before", {{"source", before.value("source", Json::object())}}},
                             {"after", {{"source", after["source"]}, {"bytes", size}}}}).dump()});
    auto c = s.store.Commit(b);
    if (c.ok()) {
      PruneUploads(s, CompScope(ctx), dir, kept_name);
      Json out = RenderObject(c->objects.front());
      return Reply{200, out, {}, nullptr};
    }
    if (c.status().reason() != "revision_conflict") {
      fs::remove(kept_name, ec);
      return c.status();
    }
  }
  fs::remove(kept_name, ec);
  return RevisionConflict("the component is changing too often: retry the upload");
}

// ---- cancel -------------------------------------------------------------------------------

Result<Reply> CancelBuild(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kDeveloper, "cancel builds"));
  for (int attempt = 0; attempt < 5; ++attempt) {
    BERTH_ASSIGN_OR_RETURN(Object v, LoadVersion(s, ctx));
    Json before = Stored(v);
    std::string status = before.value("status", "");
    if (status != "queued" && status != "building") {
      return FailedPrecondition("version " + Quoted(v.name) + " is " + status +
                                ": only queued or building versions can be cancelled");
    }
    Json after = before;
    after["status"] = "cancelled";
    after["message"] = "cancelled by " + ctx.who.user;
    WriteBatch b;
    Op op;
    op.type = OpType::kUpdate;
    op.object = Object{model::kVersion, v.scope, v.name, after.dump()};
    op.expected_revision = v.revision;
    b.ops.push_back(op);
    b.audit.push_back({ctx.who.user, ctx.P("team"), "cancel", CompRes(ctx) + "/versions/" + v.name,
                       Json({{"before", {{"status", status}}}, {"after", {{"status", "cancelled"}}}}).dump()});
    auto c = s.store.Commit(b);
    if (c.ok()) return Reply{200, RenderObject(c->objects.front()), {}, nullptr};
    if (c.status().reason() != "revision_conflict") return c.status();
  }
  return RevisionConflict("the version is changing too often: retry");
}

// ---- logs ---------------------------------------------------------------------------------

// Where a version's log is, relative to the data directory: always derived from the names
// (the stored build_log is never used as a path: it was once a request's to write). Read with
// core/safe_fs.h, so a symlink in its place is not followed either.
std::string LogFile(const Object& v, const Ctx& ctx) {
  return builder::BuildLogPath(ctx.P("team"), ctx.P("app"), ctx.P("component"), v.name);
}

// Follows a build log: one NDJSON line per log line, then {"type":"end","status",...} once the
// version is ready, failed or cancelled and everything written has been sent.
class LogStream final : public StreamSource {
 public:
  LogStream(Service& s, std::string scope, std::string version, std::string rel)
      : s_(s), scope_(std::move(scope)), version_(std::move(version)), rel_(std::move(rel)) {}

  bool Poll(std::string* out) override {
    // Read the status before the file: a build that ends after this check still has its last
    // lines picked up by the next poll, and one that ended before has written everything.
    std::string status = "deleted", message;
    auto v = s_.store.Get(model::kVersion, scope_, version_);
    if (v.ok()) {
      Json j = Stored(*v);
      status = j.value("status", "");
      message = j.value("message", "");
    } else if (v.status().code() != Code::kNotFound) {
      status = "unknown";
    }
    bool terminal = status == "ready" || status == "failed" || status == "cancelled" || status == "deleted";
    bool more = ReadMore(out, terminal);
    if (terminal && !more) {
      if (!partial_.empty()) Emit(out, partial_), partial_.clear();
      Json end = {{"type", "end"}, {"status", status}, {"message", message}, {"version", version_}};
      *out += end.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
      return false;
    }
    return true;
  }

  std::string Heartbeat() override { return Json({{"type", "heartbeat"}}).dump() + "\n"; }

 private:
  void Emit(std::string* out, const std::string& line) {
    Json j = {{"type", "line"}, {"text", line}};
    *out += j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  }

  // Appends complete new lines; true when the file may have more right now.
  bool ReadMore(std::string* out, bool terminal) {
    auto buf = ReadBeneath(s_.options.data_dir, rel_, static_cast<int64_t>(offset_), kStreamChunk);
    if (!buf.ok()) return false;
    size_t n = buf->size();
    if (n == 0) return false;
    offset_ += n;
    partial_.append(*buf);
    size_t start = 0;
    for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
      Emit(out, partial_.substr(start, nl - start));
    }
    partial_.erase(0, start);
    if (partial_.size() > build_line_limit_) Emit(out, partial_), partial_.clear();
    (void)terminal;
    return n == kStreamChunk;
  }

  Service& s_;
  const std::string scope_;
  const std::string version_;
  const std::string rel_;  // beneath the data directory
  const size_t build_line_limit_ = 64 << 10;
  size_t offset_ = 0;        // only touched by the polling thread
  std::string partial_;      // an unfinished last line
};

Result<Reply> BuildLog(Service& s, Ctx& ctx) {
  BERTH_RETURN_IF_ERROR(NeedRole(s, ctx, Role::kViewer, "read build logs"));
  std::string follow = ctx.req.Query("follow", "0");
  if (follow != "0" && follow != "1" && follow != "true" && follow != "false") {
    return InvalidArgument("follow must be 0, 1, true or false", "follow");
  }
  if (s.options.data_dir.empty()) return Unavailable("the server has no data directory for logs");
  BERTH_ASSIGN_OR_RETURN(Object v, LoadVersion(s, ctx));
  std::string rel = LogFile(v, ctx);
  Json j = Stored(v);
  std::string status = j.value("status", "");
  if (follow == "1" || follow == "true") {
    Reply r;
    r.stream = std::make_shared<LogStream>(s, v.scope, v.name, rel);
    r.headers.push_back({"Cache-Control", "no-cache"});
    return r;
  }
  int64_t size = 0;
  auto head = ReadBeneath(s.options.data_dir, rel, 0, 0, &size);
  // A queued version has no log yet, nor one whose build started a moment ago (its status is
  // committed before the builder opens the log) or was cancelled in that moment: empty, not 404.
  if (!head.ok() && status != "queued" && status != "building" && status != "cancelled") {
    return NotFound("version " + Quoted(v.name) + " has no build log (it was not built by this server)");
  }
  std::string text;
  bool truncated = false;
  if (head.ok()) {
    int64_t from = std::max<int64_t>(0, size - static_cast<int64_t>(kLogReplyLimit));
    truncated = from > 0;
    auto tail = ReadBeneath(s.options.data_dir, rel, from, kLogReplyLimit);
    if (tail.ok()) text = std::move(*tail);
  }
  return Reply{200,
               {{"version", v.name},
                {"status", status},
                {"message", j.value("message", "")},
                {"log", text},
                {"truncated", truncated}},
               {},
               nullptr};
}

}  // namespace

Status CheckSourceWrite(Service& s, const Ctx& ctx, const std::string& team, const std::string& app,
                        const std::string& component, const model::Source& source,
                        const Json* current) {
  if (current && current->is_object()) {
    // A write that keeps the stored source is not judged again: a developer may edit a
    // component whose source an admin set.
    Json now = model::ToJson(model::Component{})["source"];
    now["type"] = source.type;
    now["path"] = source.path;
    now["url"] = source.url;
    now["ref"] = source.ref;
    now["archive"] = source.archive;
    Json before = now;
    for (const char* k : {"type", "path", "url", "ref", "archive"}) {
      auto it = current->find(k);
      before[k] = it != current->end() && it->is_string() ? it->get<std::string>() : std::string();
    }
    if (before == now) return Status::Ok();
  }
  const std::string data = s.options.data_dir.empty() ? "" : fs::absolute(s.options.data_dir).string();
  return builder::CheckSourceAccess(source, builder::SourcePolicy{s.options.source_roots, data},
                                  ctx.who.admin,
                                  data.empty() ? "" : builder::UploadsDir(data, team, app, component));
}

Result<Object> QueueVersion(Service& s, const std::string& team, const std::string& app,
                            const model::Component& component, const std::string& ref,
                            const std::string& actor, const Json& trigger) {
  model::Component comp = component;
  if (comp.source.type == "none") {
    return FailedPrecondition("component " + Quoted(comp.name) +
                              " has no source: set source (dir, git, archive or package) first");
  }
  if (!ref.empty()) {
    if (comp.source.type != "git") {
      return InvalidArgument("ref only applies to git sources; this component's source is " + comp.source.type, "ref");
    }
    BERTH_RETURN_IF_ERROR(model::CheckGitRef(ref, "ref"));
    comp.source.ref = ref;
  }
  const std::string scope = team + "/" + app + "/" + comp.name;
  Json component_json = model::ToJson(comp);
  Json request = {{"source", component_json["source"]},
                  {"build", component_json["build"]},
                  {"requested_by", actor}};
  if (trigger.is_object() && !trigger.empty()) request["trigger"] = trigger;
  for (int attempt = 0; attempt < 5; ++attempt) {
    ListOptions lo;
    lo.scope = scope;
    lo.limit = 1000;
    int64_t max = 0;
    while (true) {
      BERTH_ASSIGN_OR_RETURN(ListResult all, s.store.List(model::kVersion, lo));
      for (const Object& o : all.items) max = std::max<int64_t>(max, Stored(o).value("number", int64_t{0}));
      if (all.next.empty()) break;
      lo.after = all.next;
    }
    model::Version v;
    v.number = max + 1;
    v.name = "v" + std::to_string(v.number);
    v.status = "queued";
    v.build_log = builder::BuildLogPath(team, app, comp.name, v.name);
    Json vj = model::ToJson(v);
    vj["build_request"] = request;
    WriteBatch b;
    Op op;
    op.type = OpType::kCreate;
    op.object = Object{model::kVersion, scope, v.name, vj.dump()};
    b.ops.push_back(op);
    b.audit.push_back({actor, team, "build", "apps/" + app + "/components/" + comp.name + "/versions/" + v.name,
                       Json({{"before", nullptr}, {"after", vj}}).dump()});
    auto c = s.store.Commit(b);
    if (c.ok()) return c->objects.front();
    if (c.status().code() != Code::kAlreadyExists) return c.status();
  }
  return RevisionConflict("builds are being queued concurrently: retry");
}

void RegisterBuildRoutes(Service& svc) {
  const std::string T = "/api/v1/teams/{team}";
  const std::string C = T + "/apps/{app}/components/{component}";
  struct Def {
    const char* method;
    std::string pattern;
    const char* summary;
    const char* request_schema;
    const char* response_schema;
    int success;
    std::function<Result<Reply>(Service&, Ctx&)> fn;
    bool blocking;
    bool body_to_file = false;
    bool slow = false;
  };
  std::vector<Def> defs = {
      {"POST", T + "/detect",
       "Detect how a source would be built and started, with the reasons (developers)",
       "", "", 200, DetectRoute, true, false, /*slow=*/true},
      {"POST", C + "/builds", "Queue a build of the component's source (optional {\"ref\"})",
       "", "Version", 201, QueueBuild, false},
      {"GET", "/api/v1/doctor",
       "The toolchains builds can use on the server, their versions, and what is missing (any signed-in user)",
       "", "", 200, Doctor, true},
      {"PUT", C + "/archive",
       "Upload a source archive (the raw body; ?name=app.tar.gz); it becomes the component's source",
       "", "Component", 200, UploadArchive, true, true},
      {"POST", C + "/versions/{version}/cancel", "Cancel a queued or running build", "",
       "Version", 200, CancelBuild, false},
      {"GET", C + "/versions/{version}/log",
       "The build log ({\"log\"}); ?follow=1 streams it as NDJSON until the build ends", "",
       "", 200, BuildLog, false},
  };
  for (Def& d : defs) {
    Route r;
    r.method = d.method;
    r.pattern = d.pattern;
    r.summary = d.summary;
    r.tag = "builds";
    r.request_schema = d.request_schema;
    r.response_schema = d.response_schema;
    r.success_status = d.success;
    r.blocking = d.blocking;
    r.slow = d.slow;
    r.body_to_file = d.body_to_file;
    Service* sp = &svc;
    auto fn = d.fn;
    r.fn = [sp, fn](Ctx& c) { return fn(*sp, c); };
    svc.router.Add(std::move(r));
  }
}

}  // namespace berth::api
