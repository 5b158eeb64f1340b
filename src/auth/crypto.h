// Secrets: password hashing (Argon2id via libsodium), API token generation and hashing,
// random identifiers. Tokens are 32 random bytes, so a fast keyed-free BLAKE2b hash is enough
// to store them; passwords are low-entropy and get a slow, salted Argon2id hash.
// Thread-safety: all functions are thread-safe (libsodium is initialised once).
#pragma once

#include <string>

#include "core/status.h"

namespace berth::auth {

// Initialises libsodium; safe to call repeatedly. Returns an error if it cannot start.
Status InitCrypto();

// Argon2id, interactive limits (~64 MiB, ~0.1 s). The result embeds salt and parameters.
Result<std::string> HashPassword(const std::string& password);
bool VerifyPassword(const std::string& hash, const std::string& password);

// "bth_" + 43 url-safe base64 characters (32 random bytes).
std::string NewTokenSecret();
// Hex BLAKE2b-256 of the secret: what the store keeps and looks tokens up by.
std::string HashToken(const std::string& secret);
// `bytes` random bytes as lower-case hex.
std::string RandomHex(size_t bytes);
// A random password of 20 characters from an unambiguous alphabet.
std::string RandomPassword();

// Lower-case hex HMAC-SHA256 of `message` under `key` (any key length), as GitHub's
// X-Hub-Signature-256 and Gitea's X-Gitea-Signature carry it.
std::string HmacSha256Hex(const std::string& key, const std::string& message);
// Compares two secrets in time that depends only on their lengths (not on where they differ),
// so a caller guessing a signature or token learns nothing from response times.
bool ConstantTimeEquals(const std::string& a, const std::string& b);

}  // namespace berth::auth
