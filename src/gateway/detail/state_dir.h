// The gateway role's state directory (docs/gateway.md "Role"): the last good snapshot,
// encrypted at rest, and the process's lock and status files.
//
//   DIR/snapshot.key   32 random bytes (0600), created on first use
//   DIR/snapshot.enc   "BGS1" + 24-byte nonce + secretbox(snapshot JSON) (0600)
//   DIR/gateway.lock   flock held for the life of the process: one gateway per DIR
//   DIR/gateway.pid    the pid of the gateway holding the lock
//   DIR/gateway.json   {"pid", "http", "https", "admin", "started_at"} once listening
//
// The snapshot holds certificate private keys, so it never touches the disk in clear text;
// writes go to a temp file that is fsynced and renamed, so a crash leaves the old or the new
// snapshot, never half of one.
// Thread-safety: StateDir is immutable after Open; Load/Save may be called from any thread
// but not concurrently with each other (the role saves from its one control thread).
// Move-only: it owns the lock.
#pragma once

#include <memory>
#include <string>

#include "core/env.h"
#include "core/status.h"

namespace berth::gateway::detail {

class StateDir {
 public:
  // Creates DIR (0700) if needed, takes DIR/gateway.lock (non-blocking; an error names the
  // pid holding it), writes DIR/gateway.pid, and loads or creates the key. The lock is
  // released when the StateDir is destroyed or the process exits, also on kill -9.
  static Result<StateDir> Open(const std::string& dir);
  StateDir(StateDir&& other) noexcept;
  StateDir& operator=(StateDir&&) = delete;
  StateDir(const StateDir&) = delete;
  ~StateDir();

  // The persisted snapshot's JSON text; NotFound when none was saved yet. A file that does
  // not decrypt (wrong key, truncated, tampered) is an error naming the file.
  Result<std::string> LoadSnapshot() const;
  Status SaveSnapshot(const std::string& json) const;

  // Writes DIR/gateway.json atomically.
  Status WriteStatus(const std::string& json) const;
  void RemoveStatus() const;

  const std::string& dir() const { return dir_; }
  std::string snapshot_path() const { return dir_ + "/snapshot.enc"; }
  std::string key_path() const { return dir_ + "/snapshot.key"; }

 private:
  StateDir() = default;
  std::string dir_;
  std::unique_ptr<FileLock> lock_;
  std::string key_;  // crypto_secretbox_KEYBYTES raw bytes
};

}  // namespace berth::gateway::detail
