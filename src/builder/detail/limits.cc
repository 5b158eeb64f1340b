#include "builder/detail/limits.h"

#include "builder/detail/process.h"

namespace berth::builder::detail {

BuildMemoryLimit::BuildMemoryLimit(const std::string& id, int64_t limit_mb,
                                   const CgroupLayout& layout, int64_t pids)
    : limit_mb_(limit_mb) {
  if (limit_mb <= 0 && pids <= 0) return;
  std::string why;
  if (layout.Empty()) {
    why = "no memory cgroup controller on this machine";
  } else {
    cgroup_ = Cgroup::Create(layout, "berth/builds/" + id, {limit_mb * 1024 * 1024, 0, pids}, &why);
    if (!why.empty()) {
      cgroup_.Remove();  // a group without its limit would only pretend
      cgroup_ = Cgroup();
    }
  }
  if (limit_mb <= 0) {
    describe_ = cgroup_.empty() ? "" : "task limit " + std::to_string(pids);
  } else if (!cgroup_.empty()) {
    describe_ = std::string("memory limit ") + std::to_string(limit_mb) + " MiB (cgroup " +
                (cgroup_.v2() ? "v2" : "v1") + ")";
    if (pids > 0) describe_ += ", at most " + std::to_string(pids) + " tasks";
    oom_seen_ = cgroup_.OomKills();
  } else {
    describe_ = "memory limit " + std::to_string(limit_mb) + " MiB as RLIMIT_AS (" + why +
                "; address space, not resident memory)";
  }
}

BuildMemoryLimit::~BuildMemoryLimit() {
  // Steps are killed as process groups before this runs; a cgroup with no processes left can
  // be removed.
  cgroup_.Remove();
}

std::string BuildMemoryLimit::Wrap(const std::string& command) const {
  if (limit_mb_ <= 0) return command;
  if (!cgroup_.empty()) {
    // The shell moves itself into the cgroup, then becomes the step: everything the step starts
    // is born inside the limit.
    return "echo $$ > " + ShellQuote(cgroup_.ProcsFiles().front()) + " && exec /bin/sh -c " +
           ShellQuote(command);
  }
  return "ulimit -v " + std::to_string(limit_mb_ * 1024) + " && exec /bin/sh -c " +
         ShellQuote(command);
}

bool BuildMemoryLimit::OomKilledSinceLastCheck() {
  int64_t now = cgroup_.OomKills();
  bool more = now > oom_seen_;
  oom_seen_ = now;
  return more;
}

}  // namespace berth::builder::detail
