#include "core/env.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

namespace berth {
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

class PosixFileLock final : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override { ::close(fd_); }  // closing the last descriptor drops the flock

 private:
  int fd_;
};

class PosixEnv final : public Env {
 public:
  Status WriteFileAtomic(const std::string& path, std::string_view content,
                         unsigned mode) override {
    static std::atomic<uint64_t> seq{0};
    std::string tmp;
    int fd = -1;
    // O_EXCL: a name left behind by a crashed process that had our pid is never written
    // through (it could be a planted link); the next name is tried instead.
    for (int attempt = 0; fd < 0 && attempt < 100; ++attempt) {
      tmp = path + ".tmp." + std::to_string(::getpid()) + "." +
            std::to_string(seq.fetch_add(1, std::memory_order_relaxed));
      fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 07777);
      if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) return Internal("cannot write " + tmp + ": " + ErrnoText(errno));
    int err = 0;
    // open()'s mode is narrowed by the umask; the caller asked for exactly `mode`.
    if (::fchmod(fd, mode & 07777) != 0) err = errno;
    size_t done = 0;
    while (err == 0 && done < content.size()) {
      ssize_t n = ::write(fd, content.data() + done, content.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) err = errno;
      if (n == 0) err = EIO;  // a regular file that takes nothing would loop forever
      if (n > 0) done += static_cast<size_t>(n);
    }
    if (err == 0 && ::fsync(fd) != 0) err = errno;
    if (::close(fd) != 0 && err == 0 && errno != EINTR) err = errno;
    if (err == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
    if (err != 0) {
      ::unlink(tmp.c_str());
      return Internal("cannot write " + path + ": " + ErrnoText(err));
    }
    // The rename is durable only once the directory entry is. A failure here is not reported:
    // the new content is in place, and saying otherwise would make the caller think the old
    // one still is.
    size_t slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      (void)::fsync(dfd);
      ::close(dfd);
    }
    return Status::Ok();
  }

  Result<std::string> ReadFile(const std::string& path, size_t limit) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return NotFound(path + " does not exist");
      return Internal("cannot read " + path + ": " + ErrnoText(errno));
    }
    std::string out;
    char buf[65536];
    while (out.size() < limit) {
      size_t want = std::min(sizeof buf, limit - out.size());
      ssize_t n = ::read(fd, buf, want);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int err = errno;
        ::close(fd);
        return Internal("cannot read " + path + ": " + ErrnoText(err));
      }
      if (n == 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
  }

  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return Internal("cannot open " + path + ": " + ErrnoText(errno));
    // flock, not fcntl: a flock belongs to the open file, so a second FileLock in this same
    // process is refused too (fcntl locks are per process and would silently be shared).
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) return FailedPrecondition(path + " is locked by another holder");
      return Internal("cannot lock " + path + ": " + ErrnoText(err));
    }
    return std::unique_ptr<FileLock>(new PosixFileLock(fd));
  }

  std::string FindProgram(const std::string& name, const std::string& search_path) override {
    size_t i = 0;
    while (i <= search_path.size()) {
      size_t j = search_path.find(':', i);
      if (j == std::string::npos) j = search_path.size();
      if (j > i) {
        std::string cand = search_path.substr(i, j - i) + "/" + name;
        if (::access(cand.c_str(), X_OK) == 0) return cand;
      }
      i = j + 1;
    }
    return "";
  }

  MonoTime NowMonotonic() override { return std::chrono::steady_clock::now(); }
  TimePoint NowWall() override { return std::chrono::system_clock::now(); }
};

}  // namespace

Env& Env::Default() {
  static Env* env = new PosixEnv();  // never destroyed: usable from static destructors too
  return *env;
}

}  // namespace berth
