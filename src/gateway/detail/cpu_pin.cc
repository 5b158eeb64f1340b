#include "gateway/detail/cpu_pin.h"

#include <sched.h>

namespace berth::gateway::detail {

std::vector<int> PinPlan(PinMode mode, const std::vector<int>& allowed, int threads) {
  if (threads < 1 || mode == PinMode::kOff) return {};
  size_t n = static_cast<size_t>(threads);
  bool pin = mode == PinMode::kOn ? allowed.size() >= n : allowed.size() == n;
  if (!pin) return {};
  return std::vector<int>(allowed.begin(), allowed.begin() + static_cast<std::ptrdiff_t>(n));
}

std::vector<int> AllowedCpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

bool ParsePinMode(const std::string& text, PinMode* mode) {
  if (text == "auto") {
    *mode = PinMode::kAuto;
  } else if (text == "on" || text == "true" || text == "1") {
    *mode = PinMode::kOn;
  } else if (text == "off" || text == "false" || text == "0") {
    *mode = PinMode::kOff;
  } else {
    return false;
  }
  return true;
}

const char* PinModeName(PinMode mode) {
  switch (mode) {
    case PinMode::kOn:
      return "on";
    case PinMode::kOff:
      return "off";
    case PinMode::kAuto:
      break;
  }
  return "auto";
}

}  // namespace berth::gateway::detail
