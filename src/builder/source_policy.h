// Who may build from what (docs/security.md "Input and paths"): the server paths a source names.
//
// A remote git repository (https, http, ssh) is anyone's to use. A source that reads the
// server's own disk — `dir`, `package`, a git repository given as a path or file://, an archive
// given as a path — is admitted only
//   - under one of the admin-configured source roots (`--source-roots`), when there are some;
//   - for platform admins, when there are none (the default);
// and never inside the server's data directory (the store, keys, tokens, other teams' files).
// The one exception is an `archive` the upload route stored for this very component (its
// uploads directory, DATA/uploads/<team>/<app>/<component>/).
// Paths are compared after resolving symlinks and "..", so a link under a root that points out
// of it does not pass. Refusals are 403 `source_not_allowed` naming the field.
// Thread-safety: pure functions over the file system.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "model/model.h"

namespace berth::builder {

struct SourcePolicy {
  std::vector<std::string> roots;  // absolute directories; empty = none configured
  std::string data_dir;            // the server's data directory
};

// Checks `source` for a caller (`platform_admin`) writing it on the component whose uploads
// live in `own_uploads`: first a git URL and ref (model::CheckGitUrl/CheckGitRef, 400
// invalid_source), then the server paths. Remote git URLs and sources without a server path
// pass.
Status CheckSourceAccess(const model::Source& source, const SourcePolicy& policy,
                         bool platform_admin, const std::string& own_uploads);

// "DATA/uploads/<team>/<app>/<component>", the directory of a component's uploaded archives.
std::string UploadsDir(const std::string& data_dir, const std::string& team,
                       const std::string& app, const std::string& component);

// Checks and normalises the `--source-roots` setting: a comma-separated list of existing
// absolute directories (resolved), none of them inside `data_dir`. Errors name `setting`.
Result<std::vector<std::string>> ParseSourceRoots(const std::string& value,
                                                  const std::string& data_dir,
                                                  const std::string& setting);

}  // namespace berth::builder
