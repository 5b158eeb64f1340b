// `berth doctor`: which toolchains the server machine has for builds, their versions, and the
// Debian package that provides each missing one. Programs are looked up on the same PATH the
// builds use and asked for their version (in parallel, each with a time limit).
// Thread-safety: CheckToolchains may be called from any thread; results are cached for a short
// while so a burst of calls runs the programs once.
#pragma once

#include <string>
#include <vector>

#include "model/json_util.h"

namespace berth::builder {

struct ToolchainCheck {
  std::string language;  // "node", "python", "go", "java", "php", "ruby", "git"
  std::string program;   // "npm"; for module checks "python3 -m venv"
  std::string package;   // the Debian package that provides it
  bool found = false;
  std::string path;      // where it was found
  std::string version;   // the first line of its version output that has a digit
};

// The server's own PATH (else sandbox::kSystemPath): what unsandboxed builds and instances get.
// The doctor looks programs up and asks their versions on the same one, so it reports the node
// or mvn a build will really run, not another one earlier in some fixed list.
std::string BuildPath();

// `build_path`: the PATH build steps get ("" = BuildPath()). Sandboxed builds see only the
// system's directories, so the server passes that PATH and the report names what they find.
std::vector<ToolchainCheck> CheckToolchains(const std::string& build_path = "");
// {"toolchains":[{language, program, found, path, version, package}], "missing":[packages],
//  "install": "apt-get install ..." or ""}.
Json ToJson(const std::vector<ToolchainCheck>& checks);

}  // namespace berth::builder
