// Fuzzes the parsers of API request bodies: arbitrary bytes as JSON, then through the
// strict model parser of one kind (chosen by the first byte). Whatever the input, parsing
// must end in a value or a Status — never a crash, a hang or an uncaught exception — and a
// value must survive a round trip through its JSON form.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "model/json_util.h"
#include "model/model.h"

using namespace berth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  auto parsed = ParseJsonObject(body);
  if (!parsed.ok()) return 0;
  const Json& j = *parsed;
  switch (selector % 7) {
    case 0: {
      auto c = model::ParseComponent(j);
      if (c.ok()) {
        auto again = model::ParseComponent(model::ToJson(*c));
        if (!again.ok() || model::ToJson(*again) != model::ToJson(*c)) std::abort();
      }
      break;
    }
    case 1: (void)model::ParseUser(j); break;
    case 2: {
      auto t = model::ParseTeam(j);
      if (t.ok() && !model::ParseTeam(model::ToJson(*t)).ok()) std::abort();
      break;
    }
    case 3: (void)model::ParseApp(j); break;
    case 4: (void)model::ParseMember(j); break;
    case 5: (void)model::ParseDependencyInput(j, "shop"); break;
    case 6: (void)model::ParseVersion(j); break;
  }
  return 0;
}
