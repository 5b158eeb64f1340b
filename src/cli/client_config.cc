#include "cli/client_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/env.h"

namespace berth::cli {
namespace {

std::string ErrnoText() { return std::strerror(errno); }

const char* Get(const EnvLookup& env, const char* name) {
  if (!env) return nullptr;
  const char* v = env(name);
  return (v != nullptr && *v != '\0') ? v : nullptr;
}

// Creates every missing directory of `dir` with mode 0700 (existing ones are left alone).
Status MakeDirs(const std::filesystem::path& dir) {
  if (dir.empty()) return Status::Ok();
  std::filesystem::path partial;
  for (const auto& part : dir) {
    partial /= part;
    if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      return Internal("cannot create directory " + partial.string() + ": " + ErrnoText());
    }
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Internal(dir.string() + " is not a directory");
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> ClientConfigPath(const EnvLookup& env) {
  if (const char* p = Get(env, "BERTH_CONFIG")) return std::string(p);
  const char* home = Get(env, "HOME");
  if (home == nullptr) {
    return InvalidArgument("cannot find the berth config: neither BERTH_CONFIG nor HOME is set");
  }
  return (std::filesystem::path(home) / ".config" / "berth" / "config").string();
}

Result<ClientConfig> LoadClientConfig(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return ClientConfig{};
    return Internal("cannot read " + path + ": " + ErrnoText());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Internal("cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  auto j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgument(path + " is not a JSON object; fix it or run `berth login --server URL --user NAME` again");
  }
  ClientConfig c;
  auto str = [&](const char* key, std::string* out) -> Status {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return Status::Ok();
    if (!it->is_string()) {
      return InvalidArgument(path + ": \"" + key + "\" must be a string", key);
    }
    *out = it->get<std::string>();
    return Status::Ok();
  };
  BERTH_RETURN_IF_ERROR(str("server", &c.server));
  BERTH_RETURN_IF_ERROR(str("user", &c.user));
  BERTH_RETURN_IF_ERROR(str("token", &c.token));
  BERTH_RETURN_IF_ERROR(str("team", &c.team));
  return c;
}

Status SaveClientConfig(const std::string& path, const ClientConfig& config) {
  std::filesystem::path p(path);
  BERTH_RETURN_IF_ERROR(MakeDirs(p.parent_path()));
  nlohmann::ordered_json j = {{"server", config.server},
                              {"user", config.user},
                              {"token", config.token},
                              {"team", config.team}};
  std::string text = j.dump(2) + "\n";
  // 0600 exactly (it holds the token), whatever the umask or an earlier file's mode.
  return Env::Default().WriteFileAtomic(path, text, 0600);
}

ClientConfig ResolveClientConfig(ClientConfig stored, const EnvLookup& env,
                                 std::string_view flag_server, std::string_view flag_team) {
  if (!flag_server.empty()) {
    stored.server = std::string(flag_server);
  } else if (const char* s = Get(env, "BERTH_SERVER")) {
    stored.server = s;
  } else if (stored.server.empty()) {
    stored.server = std::string(kDefaultServer);
  }
  if (const char* t = Get(env, "BERTH_TOKEN")) stored.token = t;
  if (!flag_team.empty()) {
    stored.team = std::string(flag_team);
  } else if (stored.team.empty()) {
    stored.team = std::string(kDefaultTeam);
  }
  return stored;
}

}  // namespace berth::cli
