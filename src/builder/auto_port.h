// Zero-config web routing (docs/api.md "Automatic port"): a component whose detected process
// serves HTTP and that declares no port of its own gets one HTTP port — the detected one, which
// the process receives as $PORT — published with its default domain. A build decides it and
// records it in the same commit that makes the version ready, so the first rollout already
// carries the port and the route.
//
// Rules, in order:
//  - a job or cronjob gets no port (its runs end; nothing to route);
//  - ports the user declared (any port not marked "auto": true) win: nothing changes;
//  - a component pinned to a version (after a rollback) keeps its ports: the build is not what
//    runs;
//  - a web process that serves HTTP (Detection::serves_http) gets [{port, http, inner, outer,
//    "auto": true}];
//  - otherwise (a worker-only Procfile, a program with no sign of listening) no port, and an
//    automatic port an earlier build gave is removed.
// The "auto" marker is model::Port::automatic: a write that leaves the ports alone (env, scale,
// rollback) keeps it; one that sets the ports (`component set --port`, the console's ports
// editor) declares them.
// Every decision adds one reason for people (shown with detection's reasons).
// Thread-safety: pure functions.
#pragma once

#include <string>

#include "builder/detect.h"
#include "model/json_util.h"

namespace berth::builder {

struct AutoPortPlan {
  bool change = false;               // the component's "ports" become `ports`
  Json ports = Json::array();        // the component's ports JSON after the plan
  std::string reason;                // one line for the build log and version.detect.reasons
};

// `detect` is a detection's JSON (ToJson(Detection)), `component` the stored component JSON.
AutoPortPlan PlanAutoPort(const Json& detect, const Json& component);
inline AutoPortPlan PlanAutoPort(const Detection& d, const Json& component) {
  return PlanAutoPort(ToJson(d), component);
}

}  // namespace berth::builder
