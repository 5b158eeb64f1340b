// Fuzzes the `berth server` config-file parser: any text either applies cleanly (and then
// validates or fails with a Status) or is rejected with a Status naming the line.
#include <cstdint>
#include <string>

#include "app/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  berth::ServerConfig config;
  if (berth::ApplyConfigText(text, "fuzz.conf", &config).ok()) (void)berth::Validate(&config);
  return 0;
}
