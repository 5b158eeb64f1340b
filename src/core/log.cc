#include "core/log.h"

#include <mutex>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include "core/names.h"

namespace berth {
namespace {
std::mutex g_mu;
spdlog::level::level_enum g_level = spdlog::level::info;  // guarded by g_mu

constexpr char kPattern[] = "%Y-%m-%dT%H:%M:%S.%eZ %L %n %*";

// The message part of a line, escaped (the "%*" flag of kPattern).
class EscapedPayload final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string_view v(msg.payload.data(), msg.payload.size());
    // The common case, nothing to escape, costs one scan and no copy.
    bool clean = true;
    for (char ch : v) {
      unsigned char c = static_cast<unsigned char>(ch);
      if (c < 0x20 || c == 0x7f || c == '\\' || c >= 0x80) {
        clean = false;
        break;
      }
    }
    if (clean) {
      dest.append(v.data(), v.data() + v.size());
      return;
    }
    std::string e = EscapeForLog(v);
    dest.append(e.data(), e.data() + e.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<EscapedPayload>();
  }
};

}  // namespace

std::string EscapeForLog(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t n = Utf8SequenceLength(s, i);
      if (n > 0) {
        out.append(s.substr(i, n));
        i += n;
        continue;
      }
    } else if (c >= 0x20 && c != 0x7f && c != '\\') {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\\': out += "\\\\"; break;
      default:
        out += "\\x";
        out += kHex[c >> 4];
        out += kHex[c & 0xf];
    }
    ++i;
  }
  return out;
}

std::shared_ptr<spdlog::logger> Logger(const std::string& module) {
  std::lock_guard<std::mutex> l(g_mu);
  if (auto existing = spdlog::get(module)) return existing;
  auto logger = spdlog::stderr_color_mt(module, spdlog::color_mode::never);
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<EscapedPayload>('*').set_pattern(kPattern);
  logger->set_formatter(std::move(formatter));
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
