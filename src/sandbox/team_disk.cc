#include "sandbox/team_disk.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <vector>

#include "core/log.h"

namespace berth::sandbox {
namespace {

namespace fs = std::filesystem;

// Runs a system tool (mkfs.ext4, mount, resize2fs) with a clean environment; its output is
// the error's text when it fails.
Status RunTool(const std::vector<std::string>& argv) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Internal(std::string("pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, out[1], 2);
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::string path_env = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
  char* envp[] = {path_env.data(), nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, args[0].c_str(), &fa, nullptr, cargv.data(), envp);
  posix_spawn_file_actions_destroy(&fa);
  ::close(out[1]);
  if (rc != 0) {
    ::close(out[0]);
    return Unavailable("cannot run " + args[0] + ": " + std::strerror(rc));
  }
  std::string text;
  char buf[1024];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0 && text.size() < 4096) text.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return Status::Ok();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return Internal(args[0] + " failed: " + (text.empty() ? "status " + std::to_string(st) : text));
}

// The size in bytes of the ext4 filesystem in `image`, read from its superblock (at byte 1024:
// s_blocks_count_lo at +4, s_log_block_size at +24, s_blocks_count_hi at +0x150).
std::optional<int64_t> FilesystemBytes(const std::string& image) {
  int fd = ::open(image.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  unsigned char sb[1024];
  ssize_t n = ::pread(fd, sb, sizeof sb, 1024);
  ::close(fd);
  if (n != static_cast<ssize_t>(sizeof sb) || sb[0x38] != 0x53 || sb[0x39] != 0xEF) return std::nullopt;
  auto u32 = [&](int off) {
    return static_cast<uint64_t>(sb[off]) | static_cast<uint64_t>(sb[off + 1]) << 8 |
           static_cast<uint64_t>(sb[off + 2]) << 16 | static_cast<uint64_t>(sb[off + 3]) << 24;
  };
  uint64_t blocks = u32(4);
  bool is64 = (u32(0x60) & 0x80) != 0;  // INCOMPAT_64BIT
  if (is64) blocks |= u32(0x150) << 32;
  return static_cast<int64_t>(blocks << (10 + u32(24)));
}

// Whether a mount of the filesystem at `dir` exists in another mount namespace (a sandbox's
// binds of the team's volumes or build tree): then it must not be resized offline.
bool HeldElsewhere(const std::string& dir) {
  struct stat d {};
  if (::stat(dir.c_str(), &d) != 0) return false;
  const std::string dev = std::to_string(major(d.st_dev)) + ":" + std::to_string(minor(d.st_dev));
  struct stat self {};
  if (::stat("/proc/self/ns/mnt", &self) != 0) return true;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string pid = e.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    struct stat ns {};
    if (::stat(("/proc/" + pid + "/ns/mnt").c_str(), &ns) != 0 || ns.st_ino == self.st_ino) continue;
    FILE* f = std::fopen(("/proc/" + pid + "/mountinfo").c_str(), "re");
    if (!f) continue;
    char line[4096];
    bool held = false;
    while (!held && std::fgets(line, sizeof line, f)) {
      // "<id> <parent> <major:minor> ..."
      char* p = std::strchr(line, ' ');
      p = p ? std::strchr(p + 1, ' ') : nullptr;
      if (p && std::strncmp(p + 1, dev.c_str(), dev.size()) == 0 && p[1 + dev.size()] == ' ') held = true;
    }
    std::fclose(f);
    if (held) return true;
  }
  return false;
}

}  // namespace

bool IsMountPoint(const std::string& path) {
  struct stat a {}, b {};
  if (::stat(path.c_str(), &a) != 0) return false;
  std::string parent = fs::path(path).parent_path().string();
  if (::stat(parent.c_str(), &b) != 0) return false;
  return a.st_dev != b.st_dev;
}

// discard: a file deleted on a team's disk gives its blocks back to the sparse image, so the
// data disk gets the space back (a failed build's files, a removed volume) instead of the
// image only ever growing; with the data disk full, a build's leftovers would otherwise keep
// it full after the build was cleaned up.
constexpr const char* kMountOptions = "loop,nosuid,nodev,discard";

TeamDisks::TeamDisks(TeamDisksOptions options) : opt_(std::move(options)) {}

std::string TeamDisks::Dir(const std::string& team) const { return opt_.data_dir + "/teams/" + team; }

Result<std::string> TeamDisks::Ensure(const std::string& team, uint32_t uid) {
  std::lock_guard<std::mutex> l(mu_);
  const std::string dir = Dir(team);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create " + dir + ": " + ec.message());
  if (!opt_.filesystems) return dir;

  int64_t want_mb = opt_.quota_mb ? opt_.quota_mb(team) : 0;
  if (want_mb <= 0) want_mb = opt_.default_mb;
  const int64_t want = want_mb << 20;
  const std::string image = opt_.data_dir + "/disks/" + team + ".img";
  fs::create_directories(opt_.data_dir + "/disks", ec);
  ::chmod((opt_.data_dir + "/disks").c_str(), 0700);
  struct stat st {};
  bool fresh = ::stat(image.c_str(), &st) != 0;
  if (fresh) {
    // Sparse: the image takes disk only as the team writes.
    std::string tmp = image + ".new";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::ftruncate(fd, want) != 0) {
      if (fd >= 0) ::close(fd);
      return Internal("cannot create " + tmp + ": " + std::strerror(errno));
    }
    ::close(fd);
    BERTH_RETURN_IF_ERROR(RunTool({"mkfs.ext4", "-q", "-F", "-m", "0", "-L", "berth-team",
                                   "-E", "root_owner=" + std::to_string(uid) + ":" + std::to_string(uid) +
                                             ",lazy_itable_init=1,lazy_journal_init=1",
                                   tmp}));
    if (::rename(tmp.c_str(), image.c_str()) != 0) {
      return Internal("cannot rename " + tmp + ": " + std::strerror(errno));
    }
  }
  if (!IsMountPoint(dir)) {
    BERTH_RETURN_IF_ERROR(RunTool({"mount", "-o", kMountOptions, image, dir}));
    Logger("sandbox")->info("msg=\"team disk mounted\" team={} image={} size_mb={}", team, image,
                            (fresh ? want : st.st_size) >> 20);
  }
  BERTH_RETURN_IF_ERROR(RepairIfReadOnly(team, image, dir));
  if (auto now = FilesystemBytes(image); !fresh && now && *now < want) Grow(team, image, dir, want);
  // The root belongs to the team's user (root_owner at mkfs; again for older images).
  if (::stat(dir.c_str(), &st) == 0 && st.st_uid != uid) (void)!::chown(dir.c_str(), uid, uid);
  return dir;
}

void TeamDisks::Grow(const std::string& team, const std::string& image, const std::string& dir,
                     int64_t want) {
  auto log = Logger("sandbox");
  struct stat st {};
  if (::stat(image.c_str(), &st) == 0 && st.st_size < want) {
    int fd = ::open(image.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::ftruncate(fd, want) != 0) {
      log->warn("msg=\"cannot grow a team disk\" team={} error=\"{}\"", team, std::strerror(errno));
      if (fd >= 0) ::close(fd);
      return;
    }
    ::close(fd);
  }
  // Online first: the loop device learns the new size (losetup -c), then the mounted filesystem
  // grows — through the device, never the image file, which resize2fs would take for an
  // unmounted filesystem. The kernel lets only CAP_SYS_RESOURCE do it.
  Status online = RunTool({"sh", "-c",
                           "dev=$(findmnt -n -o SOURCE --mountpoint \"$1\") && "
                           "losetup -c \"$dev\" && resize2fs \"$dev\"",
                           "sh", dir});
  if (online.ok()) {
    log->info("msg=\"team disk grown online\" team={} size_mb={}", team, want >> 20);
    return;
  }
  // Offline: only while no sandbox holds the filesystem; else at a later use.
  if (HeldElsewhere(dir)) {
    log->info("msg=\"team disk grows when nothing uses it\" team={} size_mb={} why=\"{}\"", team,
              want >> 20, online.message());
    return;
  }
  if (::umount2(dir.c_str(), 0) != 0) {
    log->info("msg=\"team disk grows when nothing uses it\" team={} error=\"{}\"", team, std::strerror(errno));
    return;
  }
  Status s = RunTool({"e2fsck", "-f", "-p", image});
  if (s.ok()) s = RunTool({"resize2fs", image});
  Status m = RunTool({"mount", "-o", kMountOptions, image, dir});
  if (!s.ok() || !m.ok()) {
    log->error("msg=\"growing a team disk failed\" team={} error=\"{}\"", team,
               (!s.ok() ? s : m).message());
    return;
  }
  log->info("msg=\"team disk grown\" team={} size_mb={}", team, want >> 20);
}

Status TeamDisks::RepairIfReadOnly(const std::string& team, const std::string& image,
                                   const std::string& dir) {
  // A write probe, not only the mount flags: after its journal aborted, ext4 stays "rw" until
  // the next write starts a transaction (which then fails and remounts it read-only).
  const std::string probe = dir + "/.berth-write-check";
  if (int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
      fd >= 0) {
    ::close(fd);
    ::unlink(probe.c_str());
    return Status::Ok();
  }
  if (errno != EROFS && errno != EIO) return Status::Ok();  // another problem: the use will say
  struct statvfs v {};
  auto log = Logger("sandbox");
  const std::string why =
      "the team's disk turned read-only after write errors (its image, on the data directory's "
      "disk, could not grow: that disk was full)";
  if (HeldElsewhere(dir)) {
    return Unavailable(why + "; it is checked and mounted again once none of the team's "
                             "instances or builds use it: free space on the data disk, then stop "
                             "or restart the team's components");
  }
  log->warn("msg=\"team disk read-only: checking and mounting it again\" team={} image={}", team,
            image);
  if (::umount2(dir.c_str(), 0) != 0) {
    return Unavailable(why + "; cannot unmount it to check it: " + std::strerror(errno));
  }
  // e2fsck exits 1 when it corrected errors: that is the point here.
  Status fsck = RunTool({"sh", "-c", "e2fsck -f -y \"$1\"; [ $? -le 1 ]", "sh", image});
  Status m = RunTool({"mount", "-o", kMountOptions, image, dir});
  if (!fsck.ok() || !m.ok()) {
    return Unavailable(why + "; checking it failed: " + (!fsck.ok() ? fsck : m).message());
  }
  if (::statvfs(dir.c_str(), &v) == 0 && (v.f_flag & ST_RDONLY) != 0) {
    return Unavailable(why + "; it is still read-only after a check");
  }
  log->warn("msg=\"team disk checked and mounted again\" team={}", team);
  return Status::Ok();
}

std::optional<DiskUsage> TeamDisks::Usage(const std::string& team) const {
  const std::string dir = Dir(team);
  if (!opt_.filesystems || !IsMountPoint(dir)) return std::nullopt;
  struct statfs s {};
  if (::statfs(dir.c_str(), &s) != 0) return std::nullopt;
  DiskUsage u;
  u.size_bytes = static_cast<int64_t>(s.f_blocks) * s.f_bsize;
  u.used_bytes = static_cast<int64_t>(s.f_blocks - s.f_bfree) * s.f_bsize;
  return u;
}

Status TeamDisks::Remove(const std::string& team) {
  std::lock_guard<std::mutex> l(mu_);
  const std::string dir = Dir(team);
  if (IsMountPoint(dir) && ::umount2(dir.c_str(), MNT_DETACH) != 0) {
    return Internal("cannot unmount " + dir + ": " + std::strerror(errno));
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::remove(opt_.data_dir + "/disks/" + team + ".img", ec);
  return Status::Ok();
}

}  // namespace berth::sandbox
