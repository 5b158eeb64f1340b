#include "builder/source.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "builder/detail/process.h"
#include "core/safe_fs.h"

namespace berth::builder {
namespace {

namespace fs = std::filesystem;

Status Bad(const std::string& m, const std::string& field = "source") { return InvalidArgument(m, field); }

// Lexically normalises a relative path; false when it is absolute or climbs out with "..".
bool SafeRelative(const std::string& p, std::string* out) {
  if (p.empty() || p[0] == '/') return false;
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    std::string seg = p.substr(i, j - i);
    if (seg == "..") {
      if (parts.empty()) return false;
      parts.pop_back();
    } else if (!seg.empty() && seg != ".") {
      parts.push_back(seg);
    }
    i = j + 1;
  }
  std::string r;
  for (const auto& s : parts) r += (r.empty() ? "" : "/") + s;
  *out = r;
  return true;
}

std::string Dirname(const std::string& rel) {
  size_t s = rel.rfind('/');
  return s == std::string::npos ? "" : rel.substr(0, s);
}

Status CopyTree(const fs::path& from_path, const fs::path& to, const SourceLimits& limits) {
  // Without a trailing '/', so the entries' paths start with it element by element.
  fs::path from = from_path;
  while (!from.has_filename() && from.has_parent_path() && from != from.root_path()) {
    from = from.parent_path();
  }
  std::error_code ec;
  fs::create_directories(to, ec);
  if (ec) return Internal("cannot create " + to.string() + ": " + ec.message());
  int64_t bytes = 0, files = 0;
  fs::recursive_directory_iterator it(from, fs::directory_options::none, ec), end;
  if (ec) return Bad("cannot read source directory " + from.string() + ": " + ec.message(), "source.path");
  for (; it != end; it.increment(ec)) {
    if (ec) return Bad("cannot read source directory " + from.string() + ": " + ec.message(), "source.path");
    const fs::path& p = it->path();
    if (p.filename() == ".git") {
      it.disable_recursion_pending();
      continue;
    }
    if (++files > limits.max_files) {
      return Bad("the source has more than " + std::to_string(limits.max_files) + " files", "source.path");
    }
    // Lexically: fs::relative resolves symlinks, which made a link's copy land at its target's
    // path relative to the source ("x -> /etc/passwd" was copied to dest/../../etc/passwd).
    fs::path rel = p.lexically_relative(from);
    fs::path target = to / rel;
    auto st = it->symlink_status(ec);
    if (fs::is_symlink(st)) {
      fs::copy_symlink(p, target, ec);
    } else if (fs::is_directory(st)) {
      fs::create_directories(target, ec);
    } else if (fs::is_regular_file(st)) {
      bytes += static_cast<int64_t>(it->file_size(ec));
      if (bytes > limits.max_bytes) {
        return Bad("the source is larger than " + std::to_string(limits.max_bytes) + " bytes", "source.path");
      }
      fs::copy_file(p, target, fs::copy_options::overwrite_existing, ec);
    } else {
      continue;  // sockets, FIFOs, devices: not source
    }
    if (ec) return Internal("cannot copy " + p.string() + ": " + ec.message());
  }
  return Status::Ok();
}

// Moves the contents of a single top-level directory up (GitHub-style archives).
void Flatten(const fs::path& dest) {
  std::error_code ec;
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(dest, ec)) entries.push_back(e.path());
  if (entries.size() != 1 || !fs::is_directory(fs::symlink_status(entries[0], ec))) return;
  fs::path tmp = dest.string() + ".flatten";
  fs::rename(entries[0], tmp, ec);
  if (ec) return;
  fs::remove(dest, ec);
  fs::rename(tmp, dest, ec);
}

Result<FetchResult> FetchGit(const model::Source& s, const std::string& dest,
                             const SourceLimits& limits,
                             const std::function<void(const std::string&)>& log,
                             const std::atomic<bool>& cancel) {
  // The model refused every other kind of URL already; checked again here because a build
  // request stored by an older server was never checked.
  auto kind = model::CheckGitUrl(s.url, "source.url");
  if (!kind.ok()) return kind.status();
  BERTH_RETURN_IF_ERROR(model::CheckGitRef(s.ref, "source.ref"));
  const bool local = *kind == model::GitUrlKind::kLocal;
  const std::string protocols = local ? "http:https:ssh:file" : "http:https:ssh";
  std::vector<std::string> env = {
      "PATH=/usr/local/bin:/usr/bin:/bin", "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=/bin/true",
      "SSH_ASKPASS=/bin/true", "HOME=/nonexistent", "LANG=C.UTF-8", "GIT_CONFIG_NOSYSTEM=1",
      // Only these transports, whatever a URL or a redirect asks for; never a remote helper.
      "GIT_ALLOW_PROTOCOL=" + protocols, "GIT_PROTOCOL_FROM_USER=0",
      // A server that stops sending (or never answers) is abandoned after 30 s below 1 KB/s.
      "GIT_HTTP_LOW_SPEED_LIMIT=1000", "GIT_HTTP_LOW_SPEED_TIME=30",
      "GIT_SSH_COMMAND=ssh -o BatchMode=yes -o ConnectTimeout=20 -o ServerAliveInterval=10 "
      "-o ServerAliveCountMax=3"};
  if (const char* p = std::getenv("PATH")) env[0] = std::string("PATH=") + p;
  std::string config = "-c protocol.allow=never";
  for (const char* p : {"http", "https", "ssh"}) config += std::string(" -c protocol.") + p + ".allow=always";
  config += std::string(" -c protocol.file.allow=") + (local ? "always" : "never");
  config += " -c core.hooksPath=/dev/null -c core.fsmonitor=false";
  const std::string git = "git " + config + " ";
  std::string url = s.url;
  fs::path parent = fs::path(dest).parent_path();
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + limits.git_timeout;
  // `quiet`: the output is an answer to read (rev-parse), not progress for the build log.
  auto run = [&](const std::string& cmd, const std::string& cwd,
                 bool quiet = false) -> Result<detail::RunResult> {
    out.clear();
    detail::RunSpec spec{cmd, cwd, env, deadline};
    return detail::RunShell(spec, [&](const std::string& l) {
      out += l + "\n";
      if (!quiet) log(l);
    }, cancel);
  };
  auto timed_out = [&](const std::string& what) {
    return Status(Code::kTimeout, "source_timeout",
                  what + " took longer than " + std::to_string(limits.git_timeout.count()) +
                      " s and was stopped",
                  "source.url");
  };
  log("-----> git clone " + url);
  BERTH_ASSIGN_OR_RETURN(detail::RunResult r,
                         run(git + "clone --quiet --no-checkout --template= -- " +
                                 detail::ShellQuote(url) + " " + detail::ShellQuote(dest),
                             parent.string()));
  if (r.cancelled) return Status(Code::kConflict, "cancelled", "cancelled");
  if (r.timed_out) return timed_out("git clone of " + url);
  if (!r.ok()) {
    return FailedPrecondition("git clone of " + url + " failed (exit code " + std::to_string(r.exit_code) +
                              "): " + out.substr(0, 1000));
  }
  std::string ref = s.ref.empty() ? "HEAD" : s.ref;
  std::string checkout = git + "-c advice.detachedHead=false checkout --quiet --detach ";
  BERTH_ASSIGN_OR_RETURN(r, run(checkout + detail::ShellQuote(ref) + " --", dest));
  if (!r.ok() && !r.cancelled && !r.timed_out && !s.ref.empty()) {
    BERTH_ASSIGN_OR_RETURN(r, run(checkout + detail::ShellQuote("origin/" + ref) + " --", dest));
  }
  if (r.cancelled) return Status(Code::kConflict, "cancelled", "cancelled");
  if (r.timed_out) return timed_out("git checkout of " + url);
  if (!r.ok()) {
    return FailedPrecondition("git checkout of ref \"" + ref + "\" failed: no such branch, tag or commit in " + url);
  }
  BERTH_ASSIGN_OR_RETURN(r, run(git + "rev-parse HEAD", dest, /*quiet=*/true));
  if (r.timed_out) return timed_out("git rev-parse in " + url);
  FetchResult fr;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  fr.commit = out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
  log("-----> checked out " + ref + " at " + fr.commit);
  std::error_code ec;
  fs::remove_all(fs::path(dest) / ".git", ec);
  return fr;
}

Status OpenArchive(const std::string& path, struct archive** out) {
  struct archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_bzip2(a);
  archive_read_support_filter_xz(a);
  archive_read_support_format_tar(a);
  archive_read_support_format_gnutar(a);
  archive_read_support_format_zip(a);
  if (archive_read_open_filename(a, path.c_str(), 64 << 10) != ARCHIVE_OK) {
    std::string m = archive_error_string(a) ? archive_error_string(a) : "unknown error";
    archive_read_free(a);
    return Bad("cannot read archive " + path + ": " + m, "source.archive");
  }
  *out = a;
  return Status::Ok();
}

}  // namespace

Status CheckArchive(const std::string& path, const SourceLimits& limits) {
  struct archive* a = nullptr;
  BERTH_RETURN_IF_ERROR(OpenArchive(path, &a));
  int64_t files = 0, bytes = 0;
  struct archive_entry* e = nullptr;
  Status verdict = Status::Ok();
  int rc;
  while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    const char* n = archive_entry_pathname(e);
    std::string name = n ? n : "";
    std::string rel;
    if (!SafeRelative(name, &rel)) {
      verdict = Bad("archive entry \"" + name + "\" would be written outside the build directory "
                    "(absolute path or \"..\")", "source.archive");
      break;
    }
    auto type = archive_entry_filetype(e);
    if (type == AE_IFLNK) {
      const char* t = archive_entry_symlink(e);
      std::string target = t ? t : "", resolved;
      std::string joined = Dirname(rel).empty() ? target : Dirname(rel) + "/" + target;
      if (target.empty() || target[0] == '/' || !SafeRelative(joined, &resolved)) {
        verdict = Bad("archive entry \"" + name + "\" is a symlink to \"" + target +
                      "\", outside the build directory", "source.archive");
        break;
      }
    } else if (type != AE_IFREG && type != AE_IFDIR && type != 0) {
      verdict = Bad("archive entry \"" + name + "\" is a device, FIFO or socket", "source.archive");
      break;
    }
    if (const char* h = archive_entry_hardlink(e)) {
      std::string hr;
      if (!SafeRelative(h, &hr)) {
        verdict = Bad("archive entry \"" + name + "\" is a hard link to \"" + h +
                      "\", outside the build directory", "source.archive");
        break;
      }
    }
    if (++files > limits.max_files) {
      verdict = Bad("the archive has more than " + std::to_string(limits.max_files) + " entries", "source.archive");
      break;
    }
    bytes += archive_entry_size(e);
    if (bytes > limits.max_bytes) {
      verdict = Bad("the archive unpacks to more than " + std::to_string(limits.max_bytes) + " bytes", "source.archive");
      break;
    }
    archive_read_data_skip(a);
  }
  if (verdict.ok() && rc != ARCHIVE_EOF) {
    verdict = Bad(std::string("archive ") + path + " is damaged: " +
                  (archive_error_string(a) ? archive_error_string(a) : "read error"), "source.archive");
  }
  archive_read_free(a);
  return verdict;
}

Status ExtractArchive(const std::string& path, const std::string& dest, const SourceLimits& limits) {
  // Pass 1: validate every entry without writing anything.
  BERTH_RETURN_IF_ERROR(CheckArchive(path, limits));
  struct archive* a = nullptr;

  // Pass 2: extract with libarchive's own guards on as well (defence in depth): no "..", no
  // writing through a symlink. Paths are made absolute under the real (symlink-free) dest.
  std::error_code ec;
  fs::create_directories(dest, ec);
  if (ec) return Internal("cannot create " + dest + ": " + ec.message());
  const std::string root = fs::canonical(dest, ec).string();
  if (ec) return Internal("cannot resolve " + dest + ": " + ec.message());
  BERTH_RETURN_IF_ERROR(OpenArchive(path, &a));
  struct archive* w = archive_write_disk_new();
  archive_write_disk_set_options(w, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
                                        ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                        ARCHIVE_EXTRACT_SECURE_SYMLINKS);
  Status s = Status::Ok();
  int64_t bytes = 0;
  struct archive_entry* e = nullptr;
  int rc;
  while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    std::string rel;
    SafeRelative(archive_entry_pathname(e), &rel);
    if (rel.empty()) continue;
    archive_entry_set_pathname(e, (root + "/" + rel).c_str());
    if (const char* h = archive_entry_hardlink(e)) {
      std::string hr;
      SafeRelative(h, &hr);
      archive_entry_set_hardlink(e, (root + "/" + hr).c_str());
    }
    archive_entry_set_perm(e, archive_entry_perm(e) & 0755);
    if (archive_write_header(w, e) != ARCHIVE_OK) {
      s = Bad(std::string("cannot unpack \"") + rel + "\": " + archive_error_string(w), "source.archive");
      break;
    }
    const void* buf;
    size_t size;
    la_int64_t off;
    int r;
    while ((r = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
      bytes += static_cast<int64_t>(size);
      if (bytes > limits.max_bytes) {
        s = Bad("the archive unpacks to more than " + std::to_string(limits.max_bytes) + " bytes", "source.archive");
        break;
      }
      if (archive_write_data_block(w, buf, size, off) != ARCHIVE_OK) {
        s = Internal(std::string("cannot write \"") + rel + "\": " + archive_error_string(w));
        break;
      }
    }
    if (!s.ok()) break;
    if (r != ARCHIVE_EOF) {
      s = Bad(std::string("archive is damaged at \"") + rel + "\"", "source.archive");
      break;
    }
    archive_write_finish_entry(w);
  }
  archive_write_close(w);
  archive_write_free(w);
  archive_read_free(a);
  BERTH_RETURN_IF_ERROR(s);
  Flatten(dest);
  return Status::Ok();
}

namespace {

Result<FetchResult> FetchTree(const model::Source& s, const std::string& dest,
                              const SourceLimits& limits,
                              const std::function<void(const std::string&)>& log,
                              const std::atomic<bool>& cancel) {
  std::error_code ec;
  if (fs::exists(dest, ec)) return Internal("build directory " + dest + " already exists");
  fs::create_directories(fs::path(dest).parent_path(), ec);
  if (s.type == "none" || s.type.empty()) {
    return FailedPrecondition("the component has no source: set source.type to dir, git, archive or package");
  }
  if (s.type == "dir" || s.type == "package") {
    if (s.path.empty() || s.path[0] != '/') return Bad("source.path must be an absolute path", "source.path");
    auto st = fs::status(s.path, ec);
    if (fs::is_directory(st)) {
      log("-----> copying " + s.path);
      BERTH_RETURN_IF_ERROR(CopyTree(s.path, dest, limits));
      return FetchResult{};
    }
    if (s.type == "package" && fs::is_regular_file(st)) {
      log("-----> using package " + s.path);
      fs::create_directories(dest, ec);
      fs::copy_file(s.path, fs::path(dest) / fs::path(s.path).filename(), ec);
      if (ec) return Internal("cannot copy " + s.path + ": " + ec.message());
      return FetchResult{};
    }
    return Bad("source.path " + s.path + " is not a directory" +
                   (s.type == "package" ? " or file" : "") + " on the server",
               "source.path");
  }
  if (s.type == "git") {
    if (s.url.empty()) return Bad("source.url is required for a git source", "source.url");
    return FetchGit(s, dest, limits, log, cancel);
  }
  if (s.type == "archive") {
    if (s.archive.empty() || s.archive[0] != '/') {
      return Bad("source.archive must be an absolute path to a .tar.gz, .tgz, .tar or .zip file on the server",
                 "source.archive");
    }
    if (!fs::is_regular_file(s.archive, ec)) return Bad("archive " + s.archive + " not found", "source.archive");
    // The file's name only: an upload's path is the server's data directory, not the team's.
    log("-----> unpacking " + fs::path(s.archive).filename().string());
    BERTH_RETURN_IF_ERROR(ExtractArchive(s.archive, dest, limits));
    return FetchResult{};
  }
  return Bad("unknown source type \"" + s.type + "\"", "source.type");
}

}  // namespace

Result<FetchResult> FetchSource(const model::Source& s, const std::string& dest,
                                const SourceLimits& limits,
                                const std::function<void(const std::string&)>& log,
                                const std::atomic<bool>& cancel) {
  BERTH_ASSIGN_OR_RETURN(FetchResult r, FetchTree(s, dest, limits, log, cancel));
  // Whatever produced the tree (a copy, a checkout, an archive), a link in it must not lead out
  // of it: detection, the build and the server only ever see what is inside.
  std::error_code ec;
  if (fs::exists(dest, ec)) BERTH_RETURN_IF_ERROR(CheckTreeSymlinks(dest, "source"));
  return r;
}

}  // namespace berth::builder
