// The gateway's control plane (docs/gateway.md): turns what the store holds — HTTP and TCP
// rules, certificates, components with outer HTTP ports, and the instances the runtime
// reports — into the Snapshot the data plane routes by. Pure logic over a Store: no sockets,
// no clocks, testable with a temporary store.
//
// Thread-safety: free functions; each call reads the store through its own calls and shares
// nothing, so calls may run concurrently.
#pragma once

#include <string>
#include <vector>

#include "auth/secret_box.h"
#include "core/status.h"
#include "gateway/snapshot.h"
#include "model/model.h"
#include "store/store.h"

namespace berth::routing {

struct Options {
  std::string domain_suffix = "localhost";  // default domains end in it
  std::string listen_host = "127.0.0.1";    // TCP routes listen on this address
  int http_port = 8080;                     // the gateway's HTTP port, for addresses (0 = unknown)
  int https_port = 8443;
  // Opens certificate keys. Without it (or when a key does not open) a certificate is left
  // out and its routes serve plain HTTP only.
  const auth::SecretBox* secrets = nullptr;
};

// The default routes of one component: for each outer HTTP port (in declaration order) the
// domains that reach it — `<component>.<app>[.<team>].<suffix>` for the first such port, and
// `<port>.<component>.<app>[.<team>].<suffix>` for each; the team label is left out for the
// team "default".
struct DefaultRoute {
  int port = 0;
  std::vector<std::string> domains;
};
std::vector<DefaultRoute> DefaultRoutes(const std::string& team, const std::string& app,
                                        const std::string& component,
                                        const std::vector<model::Port>& ports,
                                        const std::string& suffix);

// The component's first port with protocol http (outer ones first); 0 when it has none.
int FirstHttpPort(const std::vector<model::Port>& ports);

// "team/app/component:port", plus "@version" for a pool of one version.
std::string PoolKey(const std::string& team, const std::string& app, const std::string& component,
                    int port, const std::string& version);

// The whole snapshot. `revision` is the store head read before anything else: every change
// after it shows in the watch feed, so a client that fetches the snapshot and then watches
// from its revision misses nothing.
Result<gateway::Snapshot> BuildSnapshot(Store& store, const Options& options);

// Whether a change of this store kind can change what BuildSnapshot returns (the kinds the
// gateway's watch needs to see; gateway/detail/control_link.cc keeps the same list).
bool AffectsSnapshot(const std::string& kind);

// The JSON of docs/gateway.md "Snapshot" (every field written, defaults included).
Json SnapshotToJson(const gateway::Snapshot& snapshot);
const char* BalanceText(gateway::Balance b);

// Where a component answers: "http://<default domain>:<http port>" for its outer HTTP ports,
// then the domains of the app's HTTP rules with a backend on it ("https://..." when the rule
// has a certificate, the path prefix appended). Wildcard rules are left out.
Result<std::vector<std::string>> ComponentAddresses(Store& store, const std::string& team,
                                                    const std::string& app,
                                                    const std::string& component,
                                                    const std::vector<model::Port>& ports,
                                                    const Options& options);

// The same for many components of one app, reading the app's rules once (component lists).
class AddressBook {
 public:
  static Result<AddressBook> Load(Store& store, const std::string& team, const std::string& app,
                                  const Options& options);
  std::vector<std::string> Addresses(const std::string& component,
                                     const std::vector<model::Port>& ports) const;

 private:
  std::string team_, app_;
  Options options_;
  std::vector<model::HttpRule> rules_;  // the app's, wildcards left out
};

}  // namespace berth::routing
