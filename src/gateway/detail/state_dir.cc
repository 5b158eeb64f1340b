#include "gateway/detail/state_dir.h"

#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "core/env.h"

namespace berth::gateway::detail {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[] = "BGS1";
constexpr size_t kMagicLen = 4;

// Writes are durable: temp file, fsync, rename, fsync of the directory (core/env.h).
Status WriteFileDurably(const std::string& path, const std::string& content, unsigned mode) {
  return Env::Default().WriteFileAtomic(path, content, mode);
}

Result<std::string> ReadWhole(const std::string& path) { return Env::Default().ReadFile(path); }

}  // namespace

StateDir::StateDir(StateDir&& other) noexcept
    : dir_(std::move(other.dir_)), lock_(std::move(other.lock_)), key_(std::move(other.key_)) {}

StateDir::~StateDir() {
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
  auto lock = Env::Default().LockFile(lock_path);
  if (!lock.ok() && lock.status().code() == Code::kConflict) {
    auto pid = ReadWhole(dir + "/gateway.pid");
    std::string who = pid.ok() ? *pid : "?";
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    return FailedPrecondition("another berth gateway (pid " + who + ") uses the state directory " +
                              dir);
  }
  if (!lock.ok()) return lock.status();
  s.lock_ = std::move(lock).value();
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
