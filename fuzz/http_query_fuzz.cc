// Fuzzes what the API reads from a request target before routing: percent-decoding, query
// parsing and path splitting.
#include <cstdint>
#include <string>

#include "api/http.h"
#include "api/router.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string target(reinterpret_cast<const char*>(data), size);
  size_t q = target.find('?');
  std::string path = berth::PercentDecode(target.substr(0, q), false);
  if (q != std::string::npos) (void)berth::ParseQuery(target.substr(q + 1));
  auto segments = berth::api::SplitPath(path);
  for (const auto& s : segments) {
    if (s.empty()) __builtin_trap();  // SplitPath never yields empty segments
  }
  return 0;
}
