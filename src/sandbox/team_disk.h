// Where a team's code may write to disk, and how much (docs/security.md "Disk"). Every team has
// one directory, DATA/teams/<team>/, that holds all the disk its builds and instances can write:
// builds/ (the trees being built), cache/ (per-component dependency caches), volumes/ and
// artifacts/ (what its builds produced). When the sandbox is on, that directory is a filesystem
// of its own: a sparse ext4 image DATA/disks/<team>.img, loop-mounted there, sized by the
// team's disk quota (quota.disk_mb, else --team-disk-mb). A team that writes too much gets
// "no space left on device" inside its own filesystem; the platform's disk, the store and other
// teams are untouched, and the team's use is one statfs away. Without the sandbox the directory
// is a plain one (no bound).
//
// The image is made the first time the team needs disk (about 0.3 s: sparse file, mkfs.ext4
// with lazy init, mount -o loop through util-linux). When the quota grows, so does the
// filesystem: online (losetup -c, resize2fs) where the kernel allows it (CAP_SYS_RESOURCE),
// else offline (e2fsck, resize2fs) at the first use at which no sandbox holds it. It never
// shrinks. Deleted files give their blocks back to the image (mount -o discard). A disk that
// turned read-only after write errors is checked and mounted again at its next use. Mounts
// outlive the server (they are the host's); a restarted
// server finds them mounted, and after a reboot mounts the images again.
//
// Thread-safety: all methods may be called from any thread (one mutex).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "core/status.h"

namespace berth::sandbox {

struct DiskUsage {
  int64_t used_bytes = 0;
  int64_t size_bytes = 0;
};

struct TeamDisksOptions {
  std::string data_dir;          // absolute
  bool filesystems = false;      // true (sandbox on, root): an image per team; false: plain dirs
  int64_t default_mb = 10240;    // a team's disk when its quota sets none
  // The team's disk quota in MiB (0 = default_mb); null = always default_mb.
  std::function<int64_t(const std::string& team)> quota_mb;
};

class TeamDisks {
 public:
  explicit TeamDisks(TeamDisksOptions options);

  // DATA/teams/<team> (no I/O).
  std::string Dir(const std::string& team) const;
  // The team's directory, ready: with filesystems, its image made, grown to the quota and
  // mounted, its root belonging to `uid`. Errors name the step (mkfs, mount, resize2fs).
  Result<std::string> Ensure(const std::string& team, uint32_t uid);
  // What the team's filesystem holds; nullopt when it is not mounted (or there are none).
  std::optional<DiskUsage> Usage(const std::string& team) const;
  // Unmounts and deletes the team's filesystem and directory (the team was deleted).
  Status Remove(const std::string& team);

  bool filesystems() const { return opt_.filesystems; }

 private:
  // The quota grew: grows the image and its filesystem (see the header comment). Errors are
  // logged; the disk keeps its size until a later use succeeds.
  void Grow(const std::string& team, const std::string& image, const std::string& dir, int64_t want);
  // A filesystem that cannot be written (EROFS/EIO on a probe file: ext4 turns read-only when
  // its journal cannot be written, the sparse image having failed to grow on a full data
  // disk) is unmounted, checked (e2fsck -f -y) and
  // mounted again — only while no sandbox holds it; else unavailable, naming why.
  Status RepairIfReadOnly(const std::string& team, const std::string& image, const std::string& dir);

  TeamDisksOptions opt_;
  mutable std::mutex mu_;
};

// Whether `path` is a mount point (its device differs from its parent's).
bool IsMountPoint(const std::string& path);

}  // namespace berth::sandbox
