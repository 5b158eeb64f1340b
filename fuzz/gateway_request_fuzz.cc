// Fuzzes the gateway's request rules (docs/gateway.md "Request framing") with the bytes a client
// sends: the data plane's own parser and rules (gateway::ProxiedRequestForTest). Whatever the
// input, a request the gateway forwards must be one the app cannot read otherwise than the
// gateway did:
//   - origin-form target (or "*"), HTTP/1.1;
//   - at most one Host, a valid one; never Transfer-Encoding and Content-Length together, at
//     most one of each, Transfer-Encoding exactly "chunked";
//   - none of the hop-by-hop fields the gateway consumes (Connection except "Upgrade",
//     Keep-Alive, Proxy-Connection, TE, Trailer, Expect: 100-continue);
//   - and the forwarded header, given to the gateway again, is accepted and comes out the same
//     (a fixed point: nothing left for a second reader to interpret).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/gateway.h"
#include "gateway/match.h"
#include "gateway/request_rules.h"

using namespace berth::gateway;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

std::string_view Trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  std::string head;
  int status = ProxiedRequestForTest(raw, &head);
  Check(status == -1 || status == 0 || status == 400 || status == 431 || status == 501);
  if (status != 0) return 0;

  Check(head.size() >= 4 && head.compare(head.size() - 4, 4, "\r\n\r\n") == 0);
  std::vector<std::string_view> lines;
  std::string_view rest(head.data(), head.size() - 4);
  for (size_t i = 0; i <= rest.size();) {
    size_t e = rest.find("\r\n", i);
    if (e == std::string_view::npos) e = rest.size();
    lines.push_back(rest.substr(i, e - i));
    i = e + 2;
  }
  std::string_view start = lines[0];
  size_t sp1 = start.find(' '), sp2 = start.rfind(' ');
  Check(sp1 != std::string_view::npos && sp2 > sp1);
  std::string_view target = start.substr(sp1 + 1, sp2 - sp1 - 1);
  Check(start.substr(sp2 + 1) == "HTTP/1.1");
  Check(!target.empty() && (target.front() == '/' || target == "*"));

  int hosts = 0, te = 0, cl = 0;
  bool upgrade = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    Check(colon != std::string_view::npos);
    std::string_view name = lines[i].substr(0, colon), value = Trim(lines[i].substr(colon + 1));
    if (EqualsIgnoreCase(name, "host")) {
      ++hosts;
      Check(ValidHostValue(value));
    } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
      ++te;
      Check(EqualsIgnoreCase(value, "chunked"));
    } else if (EqualsIgnoreCase(name, "content-length")) {
      ++cl;
      Check(value.find(',') == std::string_view::npos);
    } else if (EqualsIgnoreCase(name, "connection")) {
      Check(EqualsIgnoreCase(value, "Upgrade"));
      upgrade = true;
    } else if (EqualsIgnoreCase(name, "upgrade")) {
      upgrade = true;
    } else {
      for (const char* hop : {"keep-alive", "proxy-connection", "te", "trailer"}) {
        Check(!EqualsIgnoreCase(name, hop));
      }
      Check(!(EqualsIgnoreCase(name, "expect") && EqualsIgnoreCase(value, "100-continue")));
    }
  }
  (void)upgrade;
  Check(hosts <= 1 && te <= 1 && cl <= 1 && !(te && cl));

  // An HTTP/1.0 request without Host goes out without one (it matches no route anyway); every
  // other forwarded header is accepted as it is.
  if (hosts == 1) {
    std::string again;
    Check(ProxiedRequestForTest(head, &again) == 0);
    Check(again == head);
  }
  return 0;
}
