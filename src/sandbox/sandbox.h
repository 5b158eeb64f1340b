// The sandbox every build step and instance runs in (docs/security.md): Linux namespaces and an
// unprivileged user, built from C++ with no container runtime and no image format.
//
//   - a user: `uid`/`gid` (the team's, identity.h), never root, no supplementary groups, no new
//     privileges (set-uid binaries do nothing), no capabilities;
//   - its own mount, PID, IPC and UTS namespaces, and the team's network namespace (netns.h);
//   - a new root on a small read-only tmpfs holding: the system's directories (/usr, /etc,
//     /bin, ... as the host has them) bound read-only; /app (the work dir) read-write — a
//     bind of `app_dir`, or an overlay of read-only layers (`app_layers`: an instance's config
//     files over its artifact) with a writable layer on a tmpfs of `app_mb` that is the
//     sandbox's own (bounded, counted as its memory, gone when it ends), so an instance
//     starts without copying its artifact and can never fill a disk through /app; the declared binds
//     (volumes, caches); a private /tmp and /run (tmpfs, bounded); a minimal /dev; its own
//     /proc. Nothing else of the host: DATA/ (store, keys, tokens, other teams' files) is not
//     there at all, and `hide` covers any part of it that lies under a system directory;
//   - exactly the environment in `env`;
//   - the cgroups in `cgroup_procs` (memory, CPU, task count), joined before anything runs.
//
// Inside, a small init is PID 1: it starts the command as PID 2 in its own session, forwards
// SIGTERM/SIGINT/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 to the command's process group, reaps orphans,
// and when the command ends kills whatever is left and exits. It dies with its parent.
//
// Start must be called from a single-threaded process (the shim, `berth sandbox-run`): it
// clones. Thread-safety: the functions share no state.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/json_util.h"
#include "sandbox/team_disk.h"

namespace berth::sandbox {

// The system's program directories: the PATH of every sandboxed build step and instance (what a
// sandbox shows of the host), and the fallback everywhere a PATH is needed and none is given.
inline constexpr char kSystemPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// `front`'s entries, then those of `base` that `front` does not already name: how a PATH that
// detection or a user set ("node_modules/.bin", ".venv/bin", "/opt/x/bin:...") is completed with
// the platform's, so a tool found at build time is found at start too.
std::string JoinPath(const std::string& front, const std::string& base);

// A host path shown inside the sandbox.
struct Bind {
  std::string source;  // absolute host path (a directory or a file)
  std::string target;  // absolute path inside
  bool writable = false;
};

struct Spec {
  uint32_t uid = 0;  // who runs the command (> 0)
  uint32_t gid = 0;
  std::string user = "app";          // its name in /etc/passwd
  std::string hostname = "berth";
  std::string netns;                 // a network namespace file to join ("" = the caller's)
  std::string root;                  // an existing directory the new root is mounted on
  std::string app_dir;               // /app bound read-write (when there are no app_layers)
  std::vector<std::string> app_layers;  // set: /app = overlay of these (top first) + a tmpfs
  int64_t app_mb = 512;              // the size of that writable tmpfs layer
  std::vector<Bind> binds;           // after /app (volumes inside /app, caches, the berth binary)
  std::vector<std::string> system;   // host directories shown read-only where they are
  std::vector<std::string> hide;     // host paths covered by an empty read-only tmpfs
  int64_t tmp_mb = 64;               // size of the private /tmp (memory, counted in the cgroup)
  std::string cwd = "/app";
  std::string home = "/app";
  std::vector<std::string> argv;     // argv[0] an absolute path inside
  std::vector<std::string> env;      // "K=V", exactly what the command gets
  std::vector<std::string> cgroup_procs;
};

Json ToJson(const Spec& s);
Result<Spec> SpecFromJson(const Json& j);

// The host's system directories that exist: /usr, /etc, /opt and the top-level links or
// directories of a merged or split /usr (/bin, /sbin, /lib, /lib32, /lib64, /libx32).
std::vector<std::string> DefaultSystemPaths();

// One step of building the sandbox's root, in order (see Plan). Exposed for tests: what a
// sandbox can see is decided here, as data.
struct Step {
  enum class Op {
    kMkdir,      // path (and parents), mode
    kTouch,      // an empty file at path (a mount point for a file bind)
    kSymlink,    // path → data
    kWrite,      // a file at path with content data
    kMount,      // mount(source, path, fstype, flags, data)
    kRemount,    // mount(NULL, path, NULL, MS_REMOUNT|MS_BIND|flags, NULL)
    kChown,      // path to uid:gid in `data` ("uid:gid")
    kUnmount,    // umount2(path, MNT_DETACH), then rmdir(path)
  } op;
  std::string path;
  std::string source;
  std::string fstype;
  unsigned long flags = 0;
  std::string data;
  unsigned mode = 0755;
  std::string what;  // for the error a person reads: "mounting /app (overlay)"
  // The new root: below it no existing component of `path` may be a symlink (an artifact's or
  // a volume's links must not lead the making of the root out to the host's files).
  std::string inside;
};

// The steps that build `spec`'s root under spec.root (before pivot_root). Validates paths:
// every target absolute and without "..", overlay layers free of ',', ':' and '\\'.
Result<std::vector<Step>> Plan(const Spec& spec);

// A started sandbox.
struct Started {
  pid_t init = 0;  // the init's pid here (a child of the caller; reap it with waitpid)
  pid_t app = 0;   // the command's pid here: the leader of its process group and session
  int report = -1; // read end of the init's report pipe (close it after Finish)
};

// Starts spec.argv in a new sandbox with stdin /dev/null and the given stdout/stderr, and
// returns once the command runs (or the set-up failed: the error says which step and why).
Result<Started> Start(const Spec& spec, int stdout_fd, int stderr_fd);

// After the caller reaped `s.init` with `init_status`: the command's own wait status (as
// waitpid gives it), read from the init's report; the init's status when it left none.
int CommandStatus(const Started& s, int init_status);

// A command run inside a running sandbox (health checks of kind "command"; later `berth exec`):
// it joins the namespaces of the sandbox's process `pid` — which must still be the process that
// started at `start_ticks` (/proc/<pid>/stat field 22), so a recycled pid is never joined — and
// its cgroups, and runs as `uid`/`gid` in `cwd` with exactly `env`.
struct JoinSpec {
  int pid = 0;
  int64_t start_ticks = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string cwd = "/app";
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::vector<std::string> cgroup_procs;
};
Json ToJson(const JoinSpec& s);
Result<JoinSpec> JoinSpecFromJson(const Json& j);

// Runs `spec` (from a single-threaded process: `berth sandbox-join`) with stdin /dev/null and
// the caller's stdout/stderr; returns the command's wait status.
Result<int> Join(const JoinSpec& spec);

// What the server decided at start about sandboxing, shared by the builder and the runtime.
struct Config {
  bool enabled = false;
  std::string exe;         // the berth binary (sandbox-run, sandbox-join, `berth static`)
  std::string root;        // an empty directory every sandbox mounts its new root on
  std::string netns_dir;   // team networks: <netns_dir>/<team> ("" = the host's network)
  std::vector<std::string> system;  // shown read-only
  std::vector<std::string> hide;    // covered (the data dir, where it lies under those)
  std::function<Result<uint32_t>(const std::string& team)> team_uid;
  std::vector<std::string> env;     // "K=V" every build step and instance gets (egress proxy)
  // The PATH of every build step and every instance ("" = Path()'s default). Builds and
  // instances get the same one, so what a build found is found at start.
  std::string path;
  // Told about a team's network each time a sandbox is made for it (the server serves the
  // egress proxy inside it; idempotent).
  std::function<Status(const std::string& team, const std::string& netns)> on_network;
  // The teams' disks (team_disk.h); null: plain directories under <data>/teams.
  std::shared_ptr<TeamDisks> disks;
  std::string data_dir;  // absolute; where teams/ is when `disks` is null

  // DATA/teams/<team>, ready for the team's code to write in (its filesystem mounted when the
  // sandbox is on). Everything a team's builds and instances write to disk lives there.
  Result<std::string> TeamDir(const std::string& team) const;

  // `path` when set; else kSystemPath under the sandbox (what it shows), and the server's own
  // PATH without one (a developer's toolchains under ~/.local work as in their shell).
  std::string Path() const;

  // "<netns_dir>/<team>", or "" without team networks.
  std::string TeamNetns(const std::string& team) const {
    return !enabled || netns_dir.empty() ? "" : netns_dir + "/" + team;
  }
  // A Spec with the platform's part filled in: identity, network (made if missing), root,
  // system, hide, and the berth binary shown where it is when it lies outside `system`.
  Result<Spec> Base(const std::string& team, const std::string& hostname) const;
};

// Gives `path` and everything under it to uid:gid `uid` (lchown: links are changed, never
// followed). With `if_top_differs`, nothing is done when `path` itself already belongs to it
// (a volume or cache given once stays given; walking it at every start would be slow).
void GiveTree(const std::string& path, uint32_t uid, bool if_top_differs);

// Whether this machine can run sandboxes, found by starting one (`exe sandbox-run` with a
// trivial command) as `uid`. Empty = yes; otherwise what is missing, for people.
std::string Check(const std::string& exe, const std::string& root, uint32_t uid);

}  // namespace berth::sandbox
