#include "core/safe_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <vector>

namespace berth {
namespace {

namespace fs = std::filesystem;

constexpr int kMaxLinks = 40;        // as the kernel's MAXSYMLINKS
constexpr int kMaxRemoveDepth = 256;  // directory levels RemoveBeneath descends

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s.substr(0, 300)) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[(c >> 4) & 0xf];
      out += kHex[c & 0xf];
    } else {
      out += c;
    }
  }
  if (s.size() > 300) out += "...";
  return out + "\"";
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// Components of a relative path, without "" and ".".
std::vector<std::string> Split(std::string_view rel) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= rel.size()) {
    size_t j = rel.find('/', i);
    if (j == std::string_view::npos) j = rel.size();
    std::string_view seg = rel.substr(i, j - i);
    if (!seg.empty() && seg != ".") out.emplace_back(seg);
    i = j + 1;
  }
  return out;
}

std::string Join(const std::vector<std::string>& parts, size_t n) {
  std::string out;
  for (size_t i = 0; i < n && i < parts.size(); ++i) out += (i ? "/" : "") + parts[i];
  return out;
}

// Why openat(O_NOFOLLOW) of `name` in `dir` failed with ELOOP/ENOTDIR.
Status Refused(int dir, const std::string& name, const std::string& shown) {
  struct stat st {};
  if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
    return UnsafePath("path " + Quote(shown) + " runs through a symlink, which is never followed");
  }
  return UnsafePath("path " + Quote(shown) + " is not a directory where one is needed");
}

// Removes `name` in `dir` (any type), descending into directories without following links.
Status RemoveAt(int dir, const std::string& name, const std::string& shown, int depth) {
  struct stat st {};
  if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Internal(Errno("cannot inspect " + shown));
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dir, name.c_str(), 0) != 0 && errno != ENOENT) {
      return Internal(Errno("cannot remove " + shown));
    }
    return Status::Ok();
  }
  if (depth > kMaxRemoveDepth) {
    return Internal("cannot remove " + shown + ": directories nested deeper than " +
                    std::to_string(kMaxRemoveDepth) + " levels");
  }
  int fd = ::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::Ok();
    return Internal(Errno("cannot open " + shown));
  }
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return Internal(Errno("cannot list " + shown));
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  Status s = Status::Ok();
  for (const std::string& n : names) {
    s = RemoveAt(::dirfd(d), n, shown + "/" + n, depth + 1);
    if (!s.ok()) break;
  }
  ::closedir(d);
  BERTH_RETURN_IF_ERROR(s);
  if (::unlinkat(dir, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return Internal(Errno("cannot remove " + shown));
  }
  return Status::Ok();
}

// The parent directory of `rel` and its last component.
std::pair<std::string, std::string> SplitLast(std::string_view rel) {
  std::vector<std::string> parts = Split(rel);
  if (parts.empty()) return {"", ""};
  std::string last = parts.back();
  return {Join(parts, parts.size() - 1), last};
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

int UniqueFd::release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

Status UnsafePath(std::string message, std::string field) {
  return Status(Code::kInvalidArgument, "unsafe_path", std::move(message), std::move(field));
}

Status ValidateBeneathPath(std::string_view rel, const std::string& field) {
  if (rel.empty()) return UnsafePath("path is empty", field);
  if (rel.size() > 4096) return UnsafePath("path is longer than 4096 bytes", field);
  if (rel.find('\0') != std::string_view::npos) return UnsafePath("path contains a NUL byte", field);
  if (rel.front() == '/') {
    return UnsafePath("path " + Quote(rel) + " must be relative, not absolute", field);
  }
  size_t i = 0;
  while (i <= rel.size()) {
    size_t j = rel.find('/', i);
    if (j == std::string_view::npos) j = rel.size();
    if (rel.substr(i, j - i) == "..") {
      return UnsafePath("path " + Quote(rel) + " must not contain '..'", field);
    }
    i = j + 1;
  }
  return Status::Ok();
}

Result<UniqueFd> OpenDirBeneath(const std::string& root, std::string_view rel, bool create) {
  if (!rel.empty() && rel != ".") BERTH_RETURN_IF_ERROR(ValidateBeneathPath(rel));
  UniqueFd dir(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) {
    if (errno == ENOENT && create) {
      std::error_code ec;
      fs::create_directories(root, ec);
      dir = UniqueFd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    }
    if (!dir) {
      if (errno == ENOENT) return NotFound("directory " + root + " does not exist");
      return Internal(Errno("cannot open " + root));
    }
  }
  std::vector<std::string> parts = Split(rel);
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& name = parts[i];
    int fd = ::openat(dir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
      if (::mkdirat(dir.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
        return Internal(Errno("cannot create " + Join(parts, i + 1)));
      }
      fd = ::openat(dir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
      if (errno == ELOOP || errno == ENOTDIR) return Refused(dir.get(), name, Join(parts, i + 1));
      if (errno == ENOENT) return NotFound("directory " + Quote(Join(parts, i + 1)) + " does not exist");
      return Internal(Errno("cannot open " + Join(parts, i + 1)));
    }
    dir = UniqueFd(fd);
  }
  return dir;
}

Result<UniqueFd> OpenBeneath(const std::string& root, std::string_view rel, int flags, mode_t mode) {
  BERTH_RETURN_IF_ERROR(ValidateBeneathPath(rel));
  auto [parent, last] = SplitLast(rel);
  if (last.empty()) return UnsafePath("path " + Quote(rel) + " names no file");
  BERTH_ASSIGN_OR_RETURN(UniqueFd dir, OpenDirBeneath(root, parent, (flags & O_CREAT) != 0));
  int fd = ::openat(dir.get(), last.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == ELOOP) {
      return UnsafePath("path " + Quote(rel) + " is a symlink, which is never followed");
    }
    if (errno == ENOENT) return NotFound("file " + Quote(rel) + " does not exist");
    if (errno == ENOTDIR || errno == EISDIR) {
      return UnsafePath("path " + Quote(rel) + " is not a file");
    }
    return Internal(Errno("cannot open " + std::string(rel)));
  }
  return UniqueFd(fd);
}

Result<std::string> ReadBeneath(const std::string& root, std::string_view rel, int64_t offset,
                                size_t max, int64_t* size) {
  // O_NONBLOCK: a FIFO planted in place of a file must not hang the reader.
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, OpenBeneath(root, rel, O_RDONLY | O_NONBLOCK));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Internal(Errno("cannot inspect " + std::string(rel)));
  if (!S_ISREG(st.st_mode)) return UnsafePath("path " + Quote(rel) + " is not a regular file");
  if (size) *size = st.st_size;
  std::string out;
  if (offset < 0) offset = 0;
  if (offset >= st.st_size) return out;
  size_t want = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(max), st.st_size - offset));
  out.resize(want);
  size_t got = 0;
  while (got < want) {
    ssize_t n = ::pread(fd.get(), out.data() + got, want - got, static_cast<off_t>(offset) + static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Internal(Errno("cannot read " + std::string(rel)));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

Status WriteBeneath(const std::string& root, std::string_view rel, std::string_view content,
                    mode_t mode) {
  BERTH_RETURN_IF_ERROR(ValidateBeneathPath(rel));
  auto [parent, last] = SplitLast(rel);
  if (last.empty()) return UnsafePath("path " + Quote(rel) + " names no file");
  BERTH_ASSIGN_OR_RETURN(UniqueFd dir, OpenDirBeneath(root, parent, true));
  if (::unlinkat(dir.get(), last.c_str(), 0) != 0 && errno != ENOENT) {
    if (errno == EISDIR || errno == EPERM) {
      return UnsafePath("path " + Quote(rel) + " is a directory where a file is to be written");
    }
    return Internal(Errno("cannot replace " + std::string(rel)));
  }
  UniqueFd fd(::openat(dir.get(), last.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       mode));
  if (!fd) return Internal(Errno("cannot create " + std::string(rel)));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Internal(Errno("cannot write " + std::string(rel)));
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status RemoveBeneath(const std::string& root, std::string_view rel) {
  BERTH_RETURN_IF_ERROR(ValidateBeneathPath(rel));
  auto [parent, last] = SplitLast(rel);
  if (last.empty()) return UnsafePath("path " + Quote(rel) + " names no entry");
  auto dir = OpenDirBeneath(root, parent, false);
  if (!dir.ok()) {
    // Nothing there to remove. A symlinked parent is not followed, so nothing is removed either:
    // what the path names (inside the tree) does not exist.
    if (dir.status().code() == Code::kNotFound || dir.status().reason() == "unsafe_path") {
      return Status::Ok();
    }
    return dir.status();
  }
  return RemoveAt(dir->get(), last, std::string(rel), 0);
}

Result<struct stat> StatBeneath(const std::string& root, std::string_view rel) {
  BERTH_RETURN_IF_ERROR(ValidateBeneathPath(rel));
  auto [parent, last] = SplitLast(rel);
  if (last.empty()) return UnsafePath("path " + Quote(rel) + " names no entry");
  BERTH_ASSIGN_OR_RETURN(UniqueFd dir, OpenDirBeneath(root, parent, false));
  struct stat st {};
  if (::fstatat(dir.get(), last.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return NotFound("file " + Quote(rel) + " does not exist");
    return Internal(Errno("cannot inspect " + std::string(rel)));
  }
  return st;
}

bool IsRealDirBeneath(const std::string& root, std::string_view rel) {
  return OpenDirBeneath(root, rel, false).ok();
}

Result<std::string> ResolveInTree(const std::string& root, std::string_view rel) {
  if (!rel.empty() && rel.front() == '/') {
    return UnsafePath("path " + Quote(rel) + " is absolute: it leaves the tree");
  }
  std::deque<std::string> todo;
  for (std::string& p : Split(rel)) todo.push_back(std::move(p));
  std::vector<std::string> done;
  int links = 0;
  while (!todo.empty()) {
    std::string c = std::move(todo.front());
    todo.pop_front();
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (done.empty()) return UnsafePath("path " + Quote(rel) + " leads above the top of the tree");
      done.pop_back();
      continue;
    }
    std::string at = root;
    for (const std::string& d : done) at += "/" + d;
    at += "/" + c;
    struct stat st {};
    if (::lstat(at.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      if (++links > kMaxLinks) {
        return UnsafePath("path " + Quote(rel) + " runs through more than 40 symlinks");
      }
      std::error_code ec;
      std::string target = fs::read_symlink(at, ec).string();
      if (ec || target.empty()) return UnsafePath("cannot read the symlink " + Quote(rel));
      if (target.front() == '/') {
        return UnsafePath("path " + Quote(rel) + " leads to the absolute path " + Quote(target) +
                          ", outside the tree");
      }
      std::vector<std::string> parts = Split(target);
      // ".." is not dropped by Split: it is resolved against what is done so far.
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) todo.push_front(*it);
      continue;
    }
    done.push_back(std::move(c));
  }
  return Join(done, done.size());
}

Status CheckTreeSymlinks(const std::string& root_path, const std::string& field) {
  std::string root = root_path;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
       !ec && it != end; it.increment(ec)) {
    std::error_code sec;
    if (!it->is_symlink(sec)) continue;
    // Lexically: fs::relative would resolve the link it is asked about.
    std::string rel = it->path().lexically_relative(fs::path(root)).generic_string();
    auto r = ResolveInTree(root, rel);
    if (!r.ok()) {
      std::string target = fs::read_symlink(it->path(), sec).string();
      return UnsafePath("source file " + Quote(rel) + " is a symlink to " + Quote(target) +
                            ", which leads outside the source: links must stay inside the tree",
                        field);
    }
  }
  if (ec) return Internal("cannot read " + root + ": " + ec.message());
  return Status::Ok();
}

}  // namespace berth
