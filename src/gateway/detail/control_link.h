// The gateway role's link to the control plane (docs/gateway.md "Role"): fetches
// GET /api/v1/gateway/snapshot, follows GET /api/v1/watch?from=REV and re-fetches (debounced)
// when a kind the routing depends on changes; on 410 revision_compacted it fetches again and
// watches from the new revision. It also reports the gateway's state (its TCP listeners) with
// PUT /api/v1/gateway/status whenever it changes. While the control plane is unreachable (or refuses the
// credential) it retries with capped exponential back-off and logs once per outage; whatever
// was applied last keeps serving meanwhile.
//
// Thread-safety: Start and Stop from one owning thread; the sink is called on the link's own
// thread, one call at a time.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace berth::gateway::detail {

struct ControlLinkOptions {
  std::string control_url;   // "http://127.0.0.1:7070"; or, when empty:
  std::string control_file;  // a JSON file whose "api" is the URL, read at every connection
                             // (berth server's DATA/server.json: its port may change)
  std::string token_file;    // a bearer token, read at every connection; "" = none
  std::chrono::milliseconds debounce{50};
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{5000};
  std::chrono::seconds connect_timeout{5};
  std::chrono::seconds request_timeout{30};
  std::chrono::seconds watch_idle_timeout{45};  // the server sends heartbeats every 15 s
  size_t snapshot_limit = 256u << 20;
  // The gateway's state for PUT /api/v1/gateway/status (JSON text), asked every
  // `report_interval` on the link's thread and sent when it differs from what the control plane
  // last took (and again after an outage). Unset = no reports.
  std::function<std::string()> status;
  std::chrono::milliseconds report_interval{1000};
};

// Takes a fetched snapshot's JSON text; returns its revision once it serves it (or already
// did), or an error when it refused it (the previous snapshot keeps serving).
using SnapshotSink = std::function<Result<int64_t>(const std::string& json)>;

// A parsed control-plane URL: "http://HOST[:PORT][/PREFIX]".
struct ControlTarget {
  std::string host;
  std::string port = "80";
  std::string base;  // "" or "/prefix"
};
Result<ControlTarget> ParseControlUrl(std::string_view url);

// Whether a change of this store kind can change the snapshot.
bool RelevantKind(std::string_view kind);

class ControlLink {
 public:
  ControlLink(ControlLinkOptions options, SnapshotSink sink);
  ~ControlLink();  // Stop()
  ControlLink(const ControlLink&) = delete;
  ControlLink& operator=(const ControlLink&) = delete;

  void Start();
  // Cancels whatever is in flight and joins the link's thread. Idempotent.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::gateway::detail
