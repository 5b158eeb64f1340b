// Validation of the names users choose (teams, apps, components, users, env keys, paths).
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace berth {

// DNS label: ^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$ . `what` names the object in the message
// ("app name"), `field` is the API field to blame.
Status ValidateDnsLabel(std::string_view name, std::string_view what,
                        std::string field = "name");
// User names: ^[a-z][a-z0-9._-]{0,62}$, not ending in '.', '_' or '-'.
Status ValidateUserName(std::string_view name, std::string field = "name");
// Environment variable names: ^[A-Za-z_][A-Za-z0-9_]*$, at most 255 characters.
Status ValidateEnvName(std::string_view name, std::string field);
// A relative path inside an instance's working directory: not empty, not absolute, no ".."
// component, no NUL, at most 1024 bytes.
Status ValidateRelativePath(std::string_view path, std::string field);

}  // namespace berth
