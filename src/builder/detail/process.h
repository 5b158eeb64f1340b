// Running one build step: `/bin/sh -c COMMAND` in its own process group, output (stdout and
// stderr together) delivered line by line, with a deadline and a cancel flag. On timeout or
// cancel the whole process group is killed (SIGKILL), so nothing a step started outlives it.
// The step inherits no descriptor but 0, 1 and 2.
// Private to the build module. Thread-safety: RunShell may run on many threads at once.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <optional>

#include "core/status.h"
#include "sandbox/sandbox.h"

namespace berth::builder::detail {

struct RunSpec {
  std::string command;
  std::string cwd;
  std::vector<std::string> env;  // "KEY=VALUE"; the child gets exactly these
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  // Set: the step runs in this sandbox through `<sandbox_exe> sandbox-run` (its argv and env
  // are filled in from command and env; cwd is inside the sandbox).
  std::optional<sandbox::Spec> sandbox;
  std::string sandbox_exe;
  // Set: the step is ended (RunResult::disk_full) once the disk holding this path is full
  // (core/disk.h), checked every second. A sandboxed step writes into its team's sparse disk
  // image on that disk; once the disk is full those writes fail as I/O errors deep in the
  // kernel, and a step can stall on them instead of failing (docs/security.md "Disk").
  std::string disk_watch;
};

struct RunResult {
  int exit_code = -1;     // when the shell exited normally
  int signal = 0;         // when it was killed by a signal
  bool timed_out = false;
  bool cancelled = false;
  bool disk_full = false;  // ended because the disk of RunSpec::disk_watch filled
  bool ok() const { return exit_code == 0 && !timed_out && !cancelled && !disk_full; }
};

// Lines longer than this are split.
inline constexpr size_t kMaxLine = 16 << 10;

// `on_start`, when set, is called once the shell runs, with its pid (= its process group id).
Result<RunResult> RunShell(const RunSpec& spec, const std::function<void(const std::string&)>& on_line,
                           const std::atomic<bool>& cancel,
                           const std::function<void(int pid)>& on_start = {});

// 'single-quoted' for /bin/sh.
std::string ShellQuote(const std::string& s);

}  // namespace berth::builder::detail
