#include "core/netns.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace berth {
namespace {

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

bool IsNsfs(int fd) {
  struct statfs st {};
  return ::fstatfs(fd, &st) == 0 && static_cast<unsigned long>(st.f_type) == NSFS_MAGIC;
}

// The calling thread's own namespace, opened once per thread (SocketIn returns to it).
int HomeNetns() {
  thread_local int fd = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  return fd;
}

}  // namespace

bool IsNetns(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = IsNsfs(fd);
  ::close(fd);
  return ok;
}

Status EnsureNetns(const std::string& path) {
  static std::mutex mu;
  std::lock_guard<std::mutex> l(mu);
  if (IsNetns(path)) return Status::Ok();
  int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Internal(Errno("cannot create " + path));
  ::close(fd);
  // A child makes the namespace and binds it onto the file; the server's threads never move.
  // Only system calls between fork and _exit (the parent may have other threads).
  const char* target = path.c_str();
  pid_t pid = ::fork();
  if (pid < 0) return Internal(Errno("fork"));
  if (pid == 0) {
    if (::unshare(CLONE_NEWNET) != 0) ::_exit(10);
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) ::_exit(11);
    struct ifreq ifr {};
    std::memcpy(ifr.ifr_name, "lo", 3);
    if (::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) ::_exit(12);
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) ::_exit(13);
    if (::mount("/proc/self/ns/net", target, nullptr, MS_BIND, nullptr) != 0) ::_exit(14);
    ::_exit(0);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    const char* step = code == 10 ? "unshare(CLONE_NEWNET)"
                       : code == 14 ? "binding the namespace onto the file"
                                    : "bringing its loopback up";
    return Internal("cannot make a network namespace at " + path + " (" + step + " failed)");
  }
  if (!IsNetns(path)) return Internal("the network namespace at " + path + " did not stay");
  return Status::Ok();
}

Status RemoveNetns(const std::string& path) {
  if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return Internal(Errno("cannot unmount " + path));
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Internal(Errno("cannot remove " + path));
  return Status::Ok();
}

Result<int> OpenNetns(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound(Errno("cannot open the network namespace " + path));
  if (!IsNsfs(fd)) {
    ::close(fd);
    return NotFound(path + " is not a network namespace");
  }
  return fd;
}

Result<int> SocketIn(int netns_fd, int domain, int type, int protocol) {
  int home = HomeNetns();
  if (home < 0) return Internal(Errno("cannot open this thread's network namespace"));
  if (::setns(netns_fd, CLONE_NEWNET) != 0) return Internal(Errno("setns"));
  int fd = ::socket(domain, type | SOCK_CLOEXEC, protocol);
  int saved = errno;
  if (::setns(home, CLONE_NEWNET) != 0) std::abort();  // never serve from the wrong network
  if (fd < 0) {
    errno = saved;
    return Internal(Errno("socket"));
  }
  return fd;
}

}  // namespace berth
