#include "sandbox/identity.h"

#include "model/model.h"

namespace berth::sandbox {
namespace {

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

Result<uint32_t> Recorded(Store& store, const std::string& team) {
  BERTH_ASSIGN_OR_RETURN(Object o, store.Get(model::kTeamUid, "", team));
  Json j = Json::parse(o.body, nullptr, false);
  if (!j.is_object() || !j.contains("uid") || !j["uid"].is_number_unsigned()) {
    return Internal("the sandbox identity of team " + team + " is unreadable");
  }
  return j["uid"].get<uint32_t>();
}

}  // namespace

Result<uint32_t> TeamUid(Store& store, const std::string& team, UidRange range) {
  if (team.empty()) return InvalidArgument("a team is needed for a sandbox identity", "team");
  auto have = Recorded(store, team);
  if (have.ok() || have.status().code() != Code::kNotFound) return have;
  uint64_t start = Fnv1a(team) % range.count;
  for (uint64_t i = 0; i < 1000; ++i) {
    uint32_t uid = range.first + static_cast<uint32_t>((start + i) % range.count);
    WriteBatch b;
    Op claim;
    claim.type = OpType::kCreate;
    claim.object = Object{model::kUidClaim, "", std::to_string(uid), Json({{"team", team}}).dump()};
    Op map;
    map.type = OpType::kCreate;
    map.object = Object{model::kTeamUid, "", team, Json({{"uid", uid}}).dump()};
    b.ops = {claim, map};
    auto r = store.Commit(b);
    if (r.ok()) return uid;
    if (r.status().code() != Code::kAlreadyExists) return r.status();
    // Either the number is someone else's, or another thread gave this team one just now.
    auto again = Recorded(store, team);
    if (again.ok() || again.status().code() != Code::kNotFound) return again;
  }
  return Unavailable("no free sandbox uid near the range's hash of team " + team);
}

}  // namespace berth::sandbox
