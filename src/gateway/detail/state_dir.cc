#include "gateway/detail/state_dir.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace berth::gateway::detail {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[] = "BGS1";
constexpr size_t kMagicLen = 4;

std::string Errno() { return std::strerror(errno); }

Result<std::string> ReadWhole(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound(path + " does not exist");
    return Internal("cannot read " + path + ": " + Errno());
  }
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return Internal("cannot read " + path + ": " + Errno());
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace

Status WriteFileDurably(const std::string& path, const std::string& content, unsigned mode) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Internal("cannot write " + tmp + ": " + Errno());
  bool ok = ::fchmod(fd, mode) == 0;
  size_t done = 0;
  while (ok && done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  std::string why = ok ? "" : Errno();
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (why.empty()) why = Errno();
    ::unlink(tmp.c_str());
    return Internal("cannot write " + path + ": " + why);
  }
  // The rename is durable only once the directory entry is.
  std::string parent = fs::path(path).parent_path().string();
  int dfd = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

StateDir::StateDir(StateDir&& other) noexcept
    : dir_(std::move(other.dir_)), lock_fd_(other.lock_fd_), key_(std::move(other.key_)) {
  other.lock_fd_ = -1;
}

StateDir::~StateDir() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
  sodium_memzero(key_.data(), key_.size());
}

Result<StateDir> StateDir::Open(const std::string& dir) {
  if (sodium_init() < 0) return Internal("cannot initialise libsodium");
  if (dir.empty()) return InvalidArgument("the state directory must not be empty", "state");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create the state directory " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  StateDir s;
  s.dir_ = dir;

  std::string lock_path = dir + "/gateway.lock";
  s.lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (s.lock_fd_ < 0) return Internal("cannot open " + lock_path + ": " + Errno());
  if (::flock(s.lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    auto pid = ReadWhole(dir + "/gateway.pid");
    std::string who = pid.ok() ? *pid : "?";
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    return FailedPrecondition("another berth gateway (pid " + who + ") uses the state directory " +
                              dir);
  }
  BERTH_RETURN_IF_ERROR(
      WriteFileDurably(dir + "/gateway.pid", std::to_string(::getpid()) + "\n", 0644));

  auto key = ReadWhole(s.key_path());
  if (key.ok()) {
    if (key->size() != crypto_secretbox_KEYBYTES) {
      return Internal(s.key_path() + " is not a key (" + std::to_string(key->size()) +
                      " bytes, expected " + std::to_string(crypto_secretbox_KEYBYTES) + ")");
    }
    s.key_ = std::move(key).value();
  } else if (key.status().code() == Code::kNotFound) {
    s.key_.assign(crypto_secretbox_KEYBYTES, '\0');
    crypto_secretbox_keygen(reinterpret_cast<unsigned char*>(s.key_.data()));
    BERTH_RETURN_IF_ERROR(WriteFileDurably(s.key_path(), s.key_, 0600));
    // A snapshot sealed with a lost key can never be read again: drop it with the old key.
    ::unlink(s.snapshot_path().c_str());
  } else {
    return key.status();
  }
  return s;
}

Result<std::string> StateDir::LoadSnapshot() const {
  BERTH_ASSIGN_OR_RETURN(std::string sealed, ReadWhole(snapshot_path()));
  const size_t header = kMagicLen + crypto_secretbox_NONCEBYTES;
  if (sealed.size() < header + crypto_secretbox_MACBYTES ||
      sealed.compare(0, kMagicLen, kMagic) != 0) {
    return Internal(snapshot_path() + " is not a sealed gateway snapshot");
  }
  std::string plain(sealed.size() - header - crypto_secretbox_MACBYTES, '\0');
  const auto* nonce = reinterpret_cast<const unsigned char*>(sealed.data() + kMagicLen);
  const auto* box = reinterpret_cast<const unsigned char*>(sealed.data() + header);
  if (crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(plain.data()), box,
                                 sealed.size() - header, nonce,
                                 reinterpret_cast<const unsigned char*>(key_.data())) != 0) {
    return Internal(snapshot_path() + " does not decrypt with " + key_path() +
                    " (damaged, or sealed with another key)");
  }
  return plain;
}

Status StateDir::SaveSnapshot(const std::string& json) const {
  std::string sealed(
      kMagicLen + crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + json.size(), '\0');
  std::memcpy(sealed.data(), kMagic, kMagicLen);
  auto* nonce = reinterpret_cast<unsigned char*>(sealed.data() + kMagicLen);
  randombytes_buf(nonce, crypto_secretbox_NONCEBYTES);
  crypto_secretbox_easy(nonce + crypto_secretbox_NONCEBYTES,
                        reinterpret_cast<const unsigned char*>(json.data()), json.size(), nonce,
                        reinterpret_cast<const unsigned char*>(key_.data()));
  return WriteFileDurably(snapshot_path(), sealed, 0600);
}

Status StateDir::WriteStatus(const std::string& json) const {
  return WriteFileDurably(dir_ + "/gateway.json", json, 0644);
}

void StateDir::RemoveStatus() const { ::unlink((dir_ + "/gateway.json").c_str()); }

}  // namespace berth::gateway::detail
