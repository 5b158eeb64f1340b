// Who a team's code runs as: each team gets its own unprivileged uid (and a gid of the same
// number), allocated once from a range no system account uses and recorded in the store, so
// every server of a platform agrees and a uid is never handed to a second team (a claim object
// per number, written in the same commit). Builds and instances of the team run as it; files
// they write (build trees, artifacts, volumes) belong to it. Two teams never share a uid, so
// neither can read, signal or trace what the other runs, even where a namespace is missing.
//
// Thread-safety: safe to call from any thread (the store serialises the allocation; a
// concurrent allocation for the same team loses its commit and reads the winner's).
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "store/store.h"

namespace berth::sandbox {

struct UidRange {
  uint32_t first = 400000000;  // far above login users and the usual subuid ranges
  uint32_t count = 1000000;
};

// The team's uid, allocating it on first use (first + hash(team) mod count, probing onward
// past numbers already claimed).
Result<uint32_t> TeamUid(Store& store, const std::string& team, UidRange range = {});

}  // namespace berth::sandbox
