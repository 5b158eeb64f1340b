// Content addressing of build results. An artifact is DATA/artifacts/<hex>/ holding
//   app/          the built file tree (the working directory of every process)
//   config.json   {"processes", "start_command", "env", "port", "workdir": "app"}
// — the two halves of an OCI image (one layer at /app and an image config), so the kubernetes
// driver can package a version later without rebuilding. <hex> is the SHA-256 of a canonical
// manifest of the tree (every entry's path, type, mode bit for executables, size and content
// digest, or a symlink's target) followed by config.json, so identical builds share one
// directory. Private to the build module. Thread-safety: pure functions over the filesystem.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace berth::builder::detail {

struct TreeDigest {
  std::string hex;     // 64 lowercase hex digits
  int64_t size_bytes = 0;
  int64_t files = 0;
};

Result<TreeDigest> DigestTree(const std::string& dir, const std::string& config_json);

std::string Sha256Hex(const std::string& data);

}  // namespace berth::builder::detail
