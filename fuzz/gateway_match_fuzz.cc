// Fuzzes route matching with request input (Host, target, headers, cookies come from any
// client). The input is split on '\n': host, target, then "name: value" header lines; a fixed
// route table covers exact and wildcard domains, prefixes, header and cookie matches. Matching
// must never crash, and its result must satisfy the route it names.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "gateway/match.h"
#include "gateway/snapshot.h"

using namespace berth;
using namespace berth::gateway;

namespace {

std::vector<HttpRoute> Routes() {
  std::vector<HttpRoute> rs(5);
  rs[0].id = "root";
  rs[0].domains = {"shop.example.com"};
  rs[1].id = "api";
  rs[1].domains = {"shop.example.com"};
  rs[1].path_prefix = "/api";
  rs[2].id = "canary";
  rs[2].domains = {"shop.example.com"};
  rs[2].path_prefix = "/api";
  rs[2].headers = {{"X-Canary", "1"}};
  rs[2].cookies = {{"beta", "yes"}};
  rs[3].id = "wild";
  rs[3].domains = {"*.example.com"};
  rs[4].id = "deep";
  rs[4].domains = {"*.b.example.com", "localhost"};
  rs[4].path_prefix = "/x/";
  return rs;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<HttpRoute> routes = Routes();
  static const RouteTable table(routes);
  std::string in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos <= in.size() && lines.size() < 64) {
    size_t nl = in.find('\n', pos);
    if (nl == std::string::npos) nl = in.size();
    lines.push_back(in.substr(pos, nl - pos));
    pos = nl + 1;
  }
  std::string host = lines.size() > 0 ? lines[0] : "";
  std::string target = lines.size() > 1 ? lines[1] : "/";
  std::vector<std::pair<std::string, std::string>> hs;
  for (size_t i = 2; i < lines.size(); ++i) {
    size_t c = lines[i].find(':');
    if (c == std::string::npos) continue;
    std::string v = lines[i].substr(c + 1);
    while (!v.empty() && v[0] == ' ') v.erase(0, 1);
    hs.emplace_back(lines[i].substr(0, c), v);
  }
  VectorHeaders headers(hs);
  int r = table.Match(host, target, headers);
  if (r < -1 || r >= static_cast<int>(routes.size())) std::abort();
  if (r >= 0 && !PathPrefixMatches(routes[r].path_prefix, TargetPath(target))) std::abort();
  char buf[256];
  std::string_view h = NormalizeHost(host, buf);
  if (h.size() >= sizeof buf) std::abort();
  std::string_view v;
  (void)FindCookie(target, "beta", &v);
  return 0;
}
