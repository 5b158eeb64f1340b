// Fuzzes the parsers of the gateway's API bodies (HTTP rules, TCP rules, certificate uploads):
// arbitrary bytes as JSON, then the strict model parser chosen by the first byte. Parsing must
// end in a value or a Status, a parsed rule must survive a round trip through its JSON form,
// and a derived rule name must be a valid DNS label.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/names.h"
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
  switch (selector % 3) {
    case 0: {
      auto r = model::ParseHttpRule(j);
      if (!r.ok()) break;
      auto again = model::ParseHttpRule(model::ToJson(*r));
      if (!again.ok() || model::ToJson(*again) != model::ToJson(*r)) std::abort();
      if (model::HttpRuleKey(*again) != model::HttpRuleKey(*r)) std::abort();
      if (!ValidateDnsLabel(model::DefaultHttpRuleName(*r), "rule name").ok()) std::abort();
      break;
    }
    case 1: {
      auto t = model::ParseTcpRule(j);
      if (!t.ok()) break;
      auto again = model::ParseTcpRule(model::ToJson(*t));
      if (!again.ok() || model::ToJson(*again) != model::ToJson(*t)) std::abort();
      break;
    }
    case 2: (void)model::ParseCertificateInput(j); break;
  }
  return 0;
}
