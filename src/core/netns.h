// Network namespaces kept as files, the way `ip netns add` keeps them: a namespace bound onto
// a file outlives every process in it, and anyone allowed to open the file can make sockets
// inside it. berth gives each team one such namespace (docs/security.md "Network"): the team's
// instances and build steps run in it and see only its loopback, and the platform (gateway,
// health checks, the egress proxy) reaches them by creating a socket inside it — setns to the
// namespace on the calling thread, socket(), setns back — so nothing ever needs a veth or an
// address outside 127.0.0.0/8 (DESIGN.md §6).
//
// Everything here needs CAP_SYS_ADMIN (root). Thread-safety: free functions; SocketIn changes
// the network namespace of the calling thread only, and restores it before it returns.
#pragma once

#include <string>

#include "core/status.h"

namespace berth {

// Whether `path` is a file with a network namespace bound onto it (nsfs).
bool IsNetns(const std::string& path);

// Makes `path` a namespace of its own with its loopback up, unless it already is one. The
// file's directory must exist. Concurrent calls for one path are serialised.
Status EnsureNetns(const std::string& path);

// Unbinds and removes `path` (the namespace ends when nothing else holds it). Missing: OK.
Status RemoveNetns(const std::string& path);

// An O_RDONLY|O_CLOEXEC descriptor of the namespace bound at `path`, checked to be one.
Result<int> OpenNetns(const std::string& path);

// A socket (socket(2) arguments; SOCK_CLOEXEC is added) created inside the namespace
// `netns_fd`. The calling thread is back in its own namespace when this returns; if it cannot
// get back the process aborts rather than let a thread serve from the wrong network.
Result<int> SocketIn(int netns_fd, int domain, int type, int protocol = 0);

}  // namespace berth
