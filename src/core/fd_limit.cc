#include "core/fd_limit.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

namespace berth {

OpenFileLimit RaiseOpenFileLimit() {
  OpenFileLimit out;
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return out;
  if (rl.rlim_cur < rl.rlim_max) {
    struct rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (rl.rlim_max == RLIM_INFINITY) {
      // An unlimited hard limit cannot be the soft one: the kernel's ceiling is fs.nr_open.
      uint64_t nr_open = 1 << 20;
      std::ifstream f("/proc/sys/fs/nr_open");
      f >> nr_open;
      want.rlim_cur = nr_open;
    }
    if (::setrlimit(RLIMIT_NOFILE, &want) == 0) {
      out.raised = true;
      rl = want;
    }
  }
  out.soft = rl.rlim_cur;
  out.hard = rl.rlim_max;
  return out;
}

SpareFd::SpareFd() : fd_(::open("/dev/null", O_RDONLY | O_CLOEXEC)) {}

SpareFd::~SpareFd() {
  if (fd_ >= 0) ::close(fd_);
}

int SpareFd::AcceptAndClose(int listen_fd, int max) {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  int closed = 0;
  while (closed < max) {
    int c = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0) {
      if (errno == EINTR) continue;
      break;  // EAGAIN: none waiting; EMFILE: the freed descriptor went elsewhere
    }
    ::close(c);
    ++closed;
  }
  fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  return closed;
}

}  // namespace berth
