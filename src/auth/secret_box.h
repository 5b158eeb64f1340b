// Secrets at rest: a server-wide 32-byte key (DATA/secret.key, mode 0600, made at the first
// start) and authenticated encryption with it (libsodium crypto_secretbox: XSalsa20-Poly1305,
// a fresh random nonce per message). Certificate private keys are stored sealed with it, so
// the store file alone — a backup, a copied database — does not reveal them.
//
// Sealed text is "sb1:" + base64(nonce || ciphertext): printable, so it fits a JSON body.
// Thread-safety: a SecretBox is immutable after construction; Seal/Open may run concurrently.
#pragma once

#include <array>
#include <string>

#include "core/status.h"

namespace berth::auth {

class SecretBox {
 public:
  static constexpr size_t kKeyBytes = 32;

  // Reads the key at `path`, or creates it (random, mode 0600, written atomically) when the
  // file does not exist. A file of the wrong size or readable by others is an error: the
  // server refuses to start rather than use a damaged or exposed key.
  static Result<SecretBox> LoadOrCreate(const std::string& path);
  // A box over a given key (tests; a key of any other size is an error).
  static Result<SecretBox> FromKey(const std::string& key);

  std::string Seal(const std::string& plaintext) const;
  // invalid_argument when `sealed` is not something Seal made with this key.
  Result<std::string> Open(const std::string& sealed) const;

 private:
  SecretBox() = default;
  std::array<unsigned char, kKeyBytes> key_{};
};

}  // namespace berth::auth
