// One named logger per module (spdlog), writing structured `key=value` messages to stderr.
//
// Messages often carry values taken from requests (paths, names, header values). Every
// logger made here escapes control characters, DEL and bytes that are not valid UTF-8 in the
// whole message (EscapeForLog) when it formats a line, so no request can end a log line early
// or forge the next one ("/api/v1/hooks/%0A..." is logged as "\x0a..."). That is the one place
// this happens: call sites never need to escape on their own.
// Thread-safety: loggers are thread-safe; SetLogLevel is meant for start-up.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace berth {

// Returns the logger for `module` ("store", "api", ...), creating it on first use.
std::shared_ptr<spdlog::logger> Logger(const std::string& module);
// "trace", "debug", "info", "warn", "error", "off". Returns false for an unknown level.
bool SetLogLevel(const std::string& level);

// `s` with \n, \r, \t written as such, every other byte below 0x20, DEL and every byte of an
// invalid UTF-8 sequence as \xNN, and '\' as "\\" (so an escape in the output is never
// ambiguous). Valid UTF-8 text passes unchanged.
std::string EscapeForLog(std::string_view s);

}  // namespace berth
