// The CLI's stored identity: which server, user, token and team `berth` talks to.
//
// Stored as JSON {"server","user","token","team"} in ~/.config/berth/config (or the file named
// by BERTH_CONFIG), mode 0600 in directories created 0700, written atomically (temp file +
// rename) so a crash never leaves half a token behind. Unknown fields in the file are ignored.
// Effective values: --server flag > BERTH_SERVER > file > default for the server; BERTH_TOKEN >
// file for the token; --team flag > file > "default" for the team.
// Thread-safety: free functions; concurrent saves to one path race (last rename wins).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace berth::cli {

inline constexpr std::string_view kDefaultServer = "http://127.0.0.1:7070";
inline constexpr std::string_view kDefaultTeam = "default";

struct ClientConfig {
  std::string server;  // "http://127.0.0.1:7070"; empty = not set
  std::string user;
  std::string token;
  std::string team;
};

// Looks up an environment variable; returns nullptr when unset (the shape of ::getenv, so the
// real environment can be passed as `::getenv` and tests can pass a map lookup).
using EnvLookup = std::function<const char*(const char*)>;

// BERTH_CONFIG if set and non-empty, else $HOME/.config/berth/config. Fails when neither
// BERTH_CONFIG nor HOME is set.
Result<std::string> ClientConfigPath(const EnvLookup& env);

// Reads the file at `path`. A missing file is an empty config (not an error); unreadable or
// malformed files are errors naming the path.
Result<ClientConfig> LoadClientConfig(const std::string& path);

// Writes `config` to `path` with mode 0600, creating missing parent directories with mode
// 0700. Empty fields are written as "".
Status SaveClientConfig(const std::string& path, const ClientConfig& config);

// Applies the environment and flag overrides and defaults to a stored config. `flag_server`
// and `flag_team` are empty when the flags were not given.
ClientConfig ResolveClientConfig(ClientConfig stored, const EnvLookup& env,
                                 std::string_view flag_server, std::string_view flag_team);

}  // namespace berth::cli
