// Fuzzes what the API reads from a request target before routing: percent-decoding, query
// parsing, path splitting (the same SetTarget the transport uses) and the target check: what
// CheckRequestTarget accepts is UTF-8 text without control characters, and what it refuses is
// refused with the stable code invalid_path.
#include <cstdint>
#include <string>

#include "api/http.h"
#include "api/router.h"
#include "core/names.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string target(reinterpret_cast<const char*>(data), size);
  berth::HttpRequest req;
  berth::SetTarget(&req, target);
  size_t q = target.find('?');
  if (req.path != berth::PercentDecode(target.substr(0, q), false)) __builtin_trap();
  auto segments = berth::api::SplitPath(req.path);
  for (const auto& s : segments) {
    if (s.empty()) __builtin_trap();  // SplitPath never yields empty segments
  }
  berth::Status st = berth::CheckRequestTarget(req);
  if (st.ok()) {
    if (!berth::IsPrintableUtf8(req.path)) __builtin_trap();
    for (const auto& [k, v] : req.query) {
      if (!berth::IsPrintableUtf8(k) || !berth::IsPrintableUtf8(v)) __builtin_trap();
    }
  } else if (st.reason() != "invalid_path" || st.message().find('\n') != std::string::npos) {
    __builtin_trap();
  }
  return 0;
}
