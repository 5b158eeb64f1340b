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
// component, no NUL, at most 1024 bytes. Absolute paths, ".." and NUL are 400 `unsafe_path`
// (docs/security.md "Input and paths"); empty or too long, invalid_argument.
Status ValidateRelativePath(std::string_view path, std::string field);

// The length of the valid UTF-8 sequence that starts at s[i] (1 for ASCII), or 0 when the
// bytes there are not valid UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF, no truncated sequence).
size_t Utf8SequenceLength(std::string_view s, size_t i);
// True when `s` is valid UTF-8 with no control characters (C0, DEL): text a request may put
// in a path, a name or a query value.
bool IsPrintableUtf8(std::string_view s);

}  // namespace berth
