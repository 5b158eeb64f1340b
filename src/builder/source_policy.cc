#include "builder/source_policy.h"

#include <filesystem>

namespace berth::builder {
namespace {

namespace fs = std::filesystem;

Status NotAllowed(const std::string& message, const std::string& field) {
  return Status(Code::kPermissionDenied, "source_not_allowed", message, field);
}

// The path with symlinks and ".." resolved as far as it exists.
std::string Resolved(const std::string& p) {
  std::error_code ec;
  fs::path r = fs::weakly_canonical(fs::path(p), ec);
  if (ec) r = fs::path(p).lexically_normal();
  std::string s = r.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

bool Within(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         path[dir.size()] == '/');
}

Status CheckServerPath(const std::string& path, const SourcePolicy& policy, bool platform_admin,
                       const std::string& field) {
  if (path.empty() || path.front() != '/') {
    return InvalidArgument(field + " must be an absolute path on the server", field);
  }
  const std::string at = Resolved(path);
  if (!policy.data_dir.empty() && Within(at, Resolved(policy.data_dir))) {
    return NotAllowed(field + " " + path + " is inside the server's data directory, which is never "
                      "a source", field);
  }
  if (!policy.roots.empty()) {
    for (const std::string& root : policy.roots) {
      if (Within(at, Resolved(root))) return Status::Ok();
    }
    std::string list;
    for (const std::string& root : policy.roots) list += (list.empty() ? "" : ", ") + root;
    return NotAllowed(field + " " + path + " is not under a source root of this server (" + list +
                      "): sources on the server's disk must be there", field);
  }
  if (!platform_admin) {
    return NotAllowed(field + " " + path + " is on the server's disk: with no source roots "
                      "configured (--source-roots) only platform admins may use such sources; "
                      "use a git URL or upload an archive", field);
  }
  return Status::Ok();
}

}  // namespace

std::string UploadsDir(const std::string& data_dir, const std::string& team, const std::string& app,
                       const std::string& component) {
  return data_dir + "/uploads/" + team + "/" + app + "/" + component;
}

Status CheckSourceAccess(const model::Source& s, const SourcePolicy& policy, bool platform_admin,
                         const std::string& own_uploads) {
  if (s.type == "dir" || s.type == "package") {
    return CheckServerPath(s.path, policy, platform_admin, "source.path");
  }
  if (s.type == "git") {
    auto kind = model::CheckGitUrl(s.url, "source.url");
    if (!kind.ok()) return kind.status();
    BERTH_RETURN_IF_ERROR(model::CheckGitRef(s.ref, "source.ref"));
    if (*kind == model::GitUrlKind::kRemote) return Status::Ok();
    return CheckServerPath(model::GitLocalPath(s.url), policy, platform_admin, "source.url");
  }
  if (s.type == "archive") {
    if (!own_uploads.empty() && !s.archive.empty() && s.archive.front() == '/') {
      const std::string at = Resolved(s.archive);
      const std::string mine = Resolved(own_uploads);
      if (Within(at, mine) && at.find('/', mine.size() + 1) == std::string::npos && at != mine) {
        return Status::Ok();
      }
    }
    return CheckServerPath(s.archive, policy, platform_admin, "source.archive");
  }
  return Status::Ok();
}

Result<std::vector<std::string>> ParseSourceRoots(const std::string& value,
                                                  const std::string& data_dir,
                                                  const std::string& setting) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= value.size()) {
    size_t j = value.find(',', i);
    if (j == std::string::npos) j = value.size();
    std::string p = value.substr(i, j - i);
    while (!p.empty() && p.front() == ' ') p.erase(0, 1);
    while (!p.empty() && p.back() == ' ') p.pop_back();
    i = j + 1;
    if (p.empty()) continue;
    if (p.front() != '/') return InvalidArgument(setting + ": " + p + " is not an absolute path", setting);
    std::error_code ec;
    fs::path c = fs::canonical(p, ec);
    if (ec || !fs::is_directory(c, ec)) {
      return InvalidArgument(setting + ": " + p + " is not an existing directory", setting);
    }
    // A root that contains the data directory is fine (the data directory is refused on its
    // own); one inside it would hand out the store and keys.
    if (!data_dir.empty() && Within(c.string(), Resolved(data_dir))) {
      return InvalidArgument(setting + ": " + p + " is inside the data directory", setting);
    }
    out.push_back(c.string());
  }
  return out;
}

}  // namespace berth::builder
