#include "auth/secret_box.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "auth/crypto.h"

namespace berth::auth {
namespace {

constexpr char kPrefix[] = "sb1:";

Status WriteNewKey(const std::string& path, const unsigned char* key) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Internal("cannot create " + tmp + ": " + std::strerror(errno));
  bool ok = ::write(fd, key, SecretBox::kKeyBytes) == static_cast<ssize_t>(SecretBox::kKeyBytes);
  ok = ::fchmod(fd, 0600) == 0 && ok;
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  // link() instead of rename(): two servers racing on a fresh directory cannot both win, and
  // the loser reads the winner's key.
  if (!ok) {
    ::unlink(tmp.c_str());
    return Internal("cannot write " + tmp + ": " + std::strerror(errno));
  }
  int rc = ::link(tmp.c_str(), path.c_str());
  int err = errno;
  ::unlink(tmp.c_str());
  if (rc != 0 && err != EEXIST) return Internal("cannot create " + path + ": " + std::strerror(err));
  return Status::Ok();
}

}  // namespace

Result<SecretBox> SecretBox::FromKey(const std::string& key) {
  BERTH_RETURN_IF_ERROR(InitCrypto());
  if (key.size() != kKeyBytes) {
    return InvalidArgument("a secret key has " + std::to_string(kKeyBytes) + " bytes, not " +
                           std::to_string(key.size()));
  }
  SecretBox b;
  std::memcpy(b.key_.data(), key.data(), kKeyBytes);
  return b;
}

Result<SecretBox> SecretBox::LoadOrCreate(const std::string& path) {
  BERTH_RETURN_IF_ERROR(InitCrypto());
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno != ENOENT) return Internal("cannot read " + path + ": " + std::strerror(errno));
      unsigned char key[kKeyBytes];
      randombytes_buf(key, sizeof key);
      Status s = WriteNewKey(path, key);
      sodium_memzero(key, sizeof key);
      BERTH_RETURN_IF_ERROR(s);
      continue;  // read back what is on disk (ours, or a racing server's)
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      return Internal("cannot stat " + path + ": " + std::strerror(errno));
    }
    if ((st.st_mode & 077) != 0) {
      ::close(fd);
      char mode[8];
      std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
      return FailedPrecondition(path + " is accessible to other users (mode " + mode +
                                "): chmod 600 it");
    }
    std::string key(kKeyBytes + 1, '\0');
    ssize_t n = ::read(fd, key.data(), key.size());
    ::close(fd);
    if (n != static_cast<ssize_t>(kKeyBytes)) {
      return FailedPrecondition(path + " is not a berth secret key (expected " +
                                std::to_string(kKeyBytes) + " bytes): restore it from a backup; " +
                                "without it stored certificate keys cannot be read");
    }
    key.resize(kKeyBytes);
    auto box = FromKey(key);
    sodium_memzero(key.data(), key.size());
    return box;
  }
  return Internal("cannot create " + path);
}

std::string SecretBox::Seal(const std::string& plaintext) const {
  std::string raw(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plaintext.size(), '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  randombytes_buf(out, crypto_secretbox_NONCEBYTES);
  crypto_secretbox_easy(out + crypto_secretbox_NONCEBYTES,
                        reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(),
                        out, key_.data());
  std::string b64(sodium_base64_ENCODED_LEN(raw.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(b64.data(), b64.size(), out, raw.size(), sodium_base64_VARIANT_ORIGINAL);
  b64.resize(std::strlen(b64.c_str()));
  return kPrefix + b64;
}

Result<std::string> SecretBox::Open(const std::string& sealed) const {
  auto bad = [] { return InvalidArgument("sealed secret is damaged or was sealed with another key"); };
  if (sealed.rfind(kPrefix, 0) != 0) return bad();
  std::string b64 = sealed.substr(sizeof kPrefix - 1);
  std::string raw(b64.size(), '\0');
  size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(raw.data()), raw.size(), b64.data(),
                        b64.size(), nullptr, &len, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      len < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
    return bad();
  }
  const auto* in = reinterpret_cast<const unsigned char*>(raw.data());
  size_t clen = len - crypto_secretbox_NONCEBYTES;
  std::string plain(clen - crypto_secretbox_MACBYTES, '\0');
  if (crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(plain.data()),
                                 in + crypto_secretbox_NONCEBYTES, clen, in, key_.data()) != 0) {
    return bad();
  }
  return plain;
}

}  // namespace berth::auth
