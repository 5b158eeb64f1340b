// The change feed as a stream: newline-delimited JSON, one line per change, resumable by
// revision (docs/api.md "Watch").
#include "api/detail/service.h"
#include "routing/routing.h"

namespace berth::api {
namespace {

constexpr size_t kBatch = 500;

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

class WatchStream final : public StreamSource {
 public:
  // `team` empty = every change (platform administrators). A service account (the gateway)
  // sees only which routing kinds changed — never the objects: it re-fetches the snapshot.
  WatchStream(Service& s, auth::Principal who, std::string team, int64_t from)
      : s_(s), who_(std::move(who)), team_(std::move(team)), cursor_(from) {}

  bool Poll(std::string* out) override {
    auto changes = s_.store.ChangesSince(cursor_, kBatch);
    if (!changes.ok()) {
      Json err = {{"type", "error"}, {"code", changes.status().reason()},
                  {"message", changes.status().message()}};
      *out += err.dump() + "\n";
      return false;
    }
    if (changes->empty()) return true;
    // Membership can end while the stream is open: stop serving the team then.
    if (!team_.empty() && !s_.access.TeamRole(who_, team_).ok()) {
      Json err = {{"type", "error"}, {"code", "not_found"},
                  {"message", "you are no longer a member of team \"" + team_ + "\""}};
      *out += err.dump() + "\n";
      return false;
    }
    for (const Change& c : *changes) {
      cursor_ = c.revision;
      if (!Visible(c.object)) continue;
      Json line = {{"revision", c.revision},
                   {"type", c.deleted ? "delete" : "put"},
                   {"kind", c.object.kind},
                   {"name", c.object.name}};
      Json rendered = RenderObject(c.object);
      if (who_.service) {
        line.erase("name");
        *out += line.dump() + "\n";
        continue;
      }
      for (const char* parent : {"team", "app", "component"}) {
        if (rendered.contains(parent)) line[parent] = rendered[parent];
      }
      if (c.object.kind == model::kTeam) line["team"] = c.object.name;
      if (!c.deleted) line["object"] = std::move(rendered);
      *out += line.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
    }
    return true;
  }

  std::string Heartbeat() override {
    return Json({{"type", "heartbeat"}, {"revision", cursor_}}).dump() + "\n";
  }

 private:
  bool Visible(const Object& o) const {
    if (who_.service) return routing::AffectsSnapshot(o.kind);
    if (team_.empty()) return true;
    if (o.kind == model::kUser || o.kind == model::kToken) return false;
    if (o.kind == model::kTeam) return o.name == team_;
    return o.scope == team_ || StartsWith(o.scope, team_ + "/");
  }

  Service& s_;
  const auth::Principal who_;
  const std::string team_;
  int64_t cursor_;  // only touched by the transport's one polling thread at a time
};

Result<int64_t> FromRevision(Service& s, const Ctx& ctx) {
  std::string from = ctx.req.Query("from");
  if (from.empty()) return s.store.Head();
  if (from.size() > 18 || from.find_first_not_of("0123456789") != std::string::npos) {
    return InvalidArgument("from must be a revision number", "from");
  }
  int64_t rev = std::stoll(from);
  // Fail before streaming starts, with a proper HTTP status, when the feed no longer reaches
  // back that far.
  auto probe = s.store.ChangesSince(rev, 1);
  if (!probe.ok()) return probe.status();
  return rev;
}

Result<Reply> Watch(Service& s, Ctx& ctx, const std::string& team) {
  BERTH_ASSIGN_OR_RETURN(int64_t from, FromRevision(s, ctx));
  Reply r;
  r.stream = std::make_shared<WatchStream>(s, ctx.who, team, from);
  r.headers.push_back({"Cache-Control", "no-cache"});
  return r;
}

}  // namespace

void RegisterWatchRoutes(Service& svc) {
  Service* sp = &svc;
  Route team;
  team.method = "GET";
  team.pattern = "/api/v1/teams/{team}/watch";
  team.summary = "Stream the team's changes as NDJSON from a revision (?from=REV)";
  team.tag = "watch";
  team.response_schema = "Change";
  team.fn = [sp](Ctx& c) -> Result<Reply> {
    auto role = sp->access.Require(c.who, c.P("team"), model::Role::kViewer, "watch the team");
    if (!role.ok()) return role.status();
    return Watch(*sp, c, c.P("team"));
  };
  svc.router.Add(std::move(team));

  Route all;
  all.method = "GET";
  all.pattern = "/api/v1/watch";
  all.summary = "Stream every change as NDJSON from a revision (platform administrators)";
  all.tag = "watch";
  all.response_schema = "Change";
  all.service_account = true;  // the gateway follows the feed to know when to re-fetch
  all.fn = [sp](Ctx& c) -> Result<Reply> {
    bool gateway = c.who.service && c.who.user == model::kGatewayUser;
    if (!c.who.admin && !gateway) {
      return PermissionDenied("only platform administrators can watch everything");
    }
    return Watch(*sp, c, "");
  };
  svc.router.Add(std::move(all));
}

}  // namespace berth::api
