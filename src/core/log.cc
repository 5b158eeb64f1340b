#include "core/log.h"

#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace berth {
namespace {
std::mutex g_mu;
spdlog::level::level_enum g_level = spdlog::level::info;  // guarded by g_mu
}  // namespace

std::shared_ptr<spdlog::logger> Logger(const std::string& module) {
  std::lock_guard<std::mutex> l(g_mu);
  if (auto existing = spdlog::get(module)) return existing;
  auto logger = spdlog::stderr_color_mt(module, spdlog::color_mode::never);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %L %n %v", spdlog::pattern_time_type::utc);
  logger->set_level(g_level);
  return logger;
}

bool SetLogLevel(const std::string& level) {
  auto lv = spdlog::level::from_str(level);
  if (lv == spdlog::level::off && level != "off") return false;
  std::lock_guard<std::mutex> l(g_mu);
  g_level = lv;
  spdlog::apply_all([lv](const std::shared_ptr<spdlog::logger>& lg) { lg->set_level(lv); });
  return true;
}

}  // namespace berth
