#include "builder/detail/artifact.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

namespace berth::builder::detail {
namespace {

namespace fs = std::filesystem;

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) { EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr); }
  void Update(const void* d, size_t n) { EVP_DigestUpdate(ctx_.get(), d, n); }
  void Update(const std::string& s) { Update(s.data(), s.size()); }
  std::string Hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_.get(), md, &n);
    static const char* kHex = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < n; ++i) {
      out += kHex[md[i] >> 4];
      out += kHex[md[i] & 15];
    }
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

// Hashes a regular file without following a link: the tree is the build's, and a file it
// swapped for a symlink after the listing must not make the server read elsewhere.
Result<std::string> FileDigest(const fs::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Internal("cannot read " + p.string() + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Internal("cannot read " + p.string() + ": not a regular file");
  }
  Sha256 h;
  std::vector<char> buf(1 << 16);
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return Internal("cannot read " + p.string() + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    h.Update(buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return h.Hex();
}

}  // namespace

std::string Sha256Hex(const std::string& data) {
  Sha256 h;
  h.Update(data);
  return h.Hex();
}

Result<TreeDigest> DigestTree(const std::string& dir, const std::string& config_json) {
  std::vector<std::pair<std::string, fs::path>> entries;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    // Lexically: fs::relative resolves symlinks, so a link would be named by its target.
    entries.emplace_back(it->path().lexically_relative(fs::path(dir)).generic_string(), it->path());
  }
  if (ec) return Internal("cannot read " + dir + ": " + ec.message());
  std::sort(entries.begin(), entries.end());
  Sha256 manifest;
  TreeDigest out;
  for (const auto& [rel, p] : entries) {
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) return Internal("cannot stat " + p.string());
    std::string line;
    if (S_ISLNK(st.st_mode)) {
      line = "l " + rel + " -> " + fs::read_symlink(p, ec).string();
    } else if (S_ISDIR(st.st_mode)) {
      line = "d " + rel;
    } else if (S_ISREG(st.st_mode)) {
      BERTH_ASSIGN_OR_RETURN(std::string d, FileDigest(p));
      line = std::string((st.st_mode & 0111) ? "x " : "f ") + rel + " " + std::to_string(st.st_size) + " " + d;
      out.size_bytes += st.st_size;
      ++out.files;
    } else {
      continue;
    }
    manifest.Update(line);
    manifest.Update("\n", 1);
  }
  manifest.Update("config\n");
  manifest.Update(config_json);
  out.hex = manifest.Hex();
  return out;
}

}  // namespace berth::builder::detail
