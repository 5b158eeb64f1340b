// Fuzzes the nesting limit of JSON from outside (model/json_util.h): CheckJsonDepth's linear
// scan must agree with the real parser — whatever it lets through nests at most kMaxJsonDepth
// deep once parsed — and ParseJsonObject must end in a value or a Status on any bytes, never a
// crash or a stack overflow, however deep the input nests.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "model/json_util.h"

using berth::Json;

namespace {

// The deepest nesting of arrays and objects in `j`, without recursion.
int Depth(const Json& j) {
  int deepest = 0;
  std::vector<std::pair<const Json*, int>> todo = {{&j, 0}};
  while (!todo.empty()) {
    auto [v, d] = todo.back();
    todo.pop_back();
    if (!v->is_structured()) continue;
    deepest = std::max(deepest, d + 1);
    for (const Json& child : *v) todo.push_back({&child, d + 1});
  }
  return deepest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  berth::Status depth = berth::CheckJsonDepth(text);
  if (!depth.ok() && depth.reason() != "json_too_deep") std::abort();
  auto parsed = berth::ParseJsonObject(text);
  if (!depth.ok()) {
    // Refused before parsing, with the stable code.
    if (parsed.ok() || parsed.status().reason() != "json_too_deep") std::abort();
    return 0;
  }
  if (!parsed.ok()) return 0;
  if (Depth(*parsed) > berth::kMaxJsonDepth) std::abort();
  // What passed may be copied and dumped like any request body.
  Json copy = *parsed;
  (void)copy.dump();
  return 0;
}
