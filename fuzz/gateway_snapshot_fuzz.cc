// Fuzzes the gateway snapshot parser (outside input: it arrives from the control plane over
// the network). Any bytes must end in a Snapshot or a Status, never a crash or an uncaught
// exception; a parsed snapshot must survive a round trip through its JSON form unchanged.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "gateway/match.h"
#include "gateway/snapshot.h"

using namespace berth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  auto s = gateway::ParseSnapshot(j);
  if (!s.ok()) {
    if (s.status().message().empty()) std::abort();
    return 0;
  }
  Json out = gateway::ToJson(*s);
  auto again = gateway::ParseSnapshot(out);
  if (!again.ok() || gateway::ToJson(*again) != out) std::abort();
  // The route table of any valid snapshot must be buildable and queryable.
  gateway::RouteTable table(s->http_routes);
  gateway::VectorHeaders none;
  for (const auto& r : s->http_routes) {
    for (const auto& d : r.domains) {
      int i = table.Match(d[0] == '*' ? "x" + d.substr(1) : d, r.path_prefix, none);
      if (i >= static_cast<int>(s->http_routes.size())) std::abort();
    }
  }
  return 0;
}
