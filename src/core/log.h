// One named logger per module (spdlog), writing structured `key=value` messages to stderr.
// Thread-safety: loggers are thread-safe; SetLogLevel is meant for start-up.
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace berth {

// Returns the logger for `module` ("store", "api", ...), creating it on first use.
std::shared_ptr<spdlog::logger> Logger(const std::string& module);
// "trace", "debug", "info", "warn", "error", "off". Returns false for an unknown level.
bool SetLogLevel(const std::string& level);

}  // namespace berth
