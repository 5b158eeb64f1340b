// The operating system as berth's modules use it, behind one narrow interface (LevelDB's Env):
// replacing a file atomically and durably, reading one, an advisory lock, finding a program on
// a PATH, and the two clocks. Modules take an `Env&` (or call Env::Default()) instead of
// writing their own temp-file-and-rename or PATH walk; tests hand them a FakeEnv
// (core/fake_env.h) whose files live in memory and whose clocks move when told.
// Thread-safety: every Env is safe to use from several threads at once.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/status.h"

namespace berth {

using MonoTime = std::chrono::steady_clock::time_point;

// An advisory, exclusive lock on a file, held until this object is destroyed (and, for the
// default Env, at the latest until the process exits, also on kill -9).
class FileLock {
 public:
  virtual ~FileLock() = default;
  FileLock() = default;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
};

class Env {
 public:
  virtual ~Env() = default;

  // The real operating system. Never destroyed.
  static Env& Default();

  // Replaces `path` with `content` so that a reader, or the file after a crash or power loss,
  // shows either the whole old content or the whole new one, never a mix or a truncated file:
  // the content goes to a temp file beside `path` (same directory, so the rename stays on one
  // file system; a name unique to this process and call, so concurrent writers never share
  // one), short writes and EINTR are retried, the file gets exactly `mode` (not narrowed by the
  // umask) and is fsync'ed, renamed over `path`, and the directory is fsync'ed so the rename
  // itself survives a crash. On failure the temp file is removed and `path` is unchanged.
  // Precondition: the directory of `path` exists.
  virtual Status WriteFileAtomic(const std::string& path, std::string_view content,
                                 unsigned mode) = 0;

  // The whole content of `path`, or its first `limit` bytes. NotFound when it does not exist,
  // Internal for any other failure.
  virtual Result<std::string> ReadFile(const std::string& path,
                                       size_t limit = static_cast<size_t>(-1)) = 0;

  // Takes an exclusive advisory lock on `path` (created with mode 0600 if missing) without
  // waiting: FailedPrecondition when another holder has it (another process, or another
  // FileLock of this one), Internal when the file cannot be opened.
  virtual Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;

  // The first `dir/name` on `search_path` (a colon-separated list, empty entries skipped) that
  // is executable; "" when there is none. `name` is a bare program name.
  virtual std::string FindProgram(const std::string& name, const std::string& search_path) = 0;

  // Monotonic time, for deadlines and durations (never jumps with the wall clock).
  virtual MonoTime NowMonotonic() = 0;
  // Wall-clock time, for timestamps people and other machines read.
  virtual TimePoint NowWall() = 0;
};

}  // namespace berth
