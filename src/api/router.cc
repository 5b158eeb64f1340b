#include "api/router.h"

namespace berth::api {

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

void Router::Add(Route route) {
  route.segments = SplitPath(route.pattern);
  routes_.push_back(std::make_unique<Route>(std::move(route)));
}

Result<const Route*> Router::Match(const std::string& method, const std::string& path,
                                   std::map<std::string, std::string>* params) const {
  std::vector<std::string> segs = SplitPath(path);
  bool path_matched = false;
  std::string allowed;
  for (const auto& r : routes_) {
    if (r->segments.size() != segs.size()) continue;
    std::map<std::string, std::string> p;
    bool ok = true;
    for (size_t i = 0; i < segs.size() && ok; ++i) {
      const std::string& s = r->segments[i];
      if (s.size() > 2 && s.front() == '{' && s.back() == '}') {
        p[s.substr(1, s.size() - 2)] = segs[i];
      } else {
        ok = s == segs[i];
      }
    }
    if (!ok) continue;
    path_matched = true;
    bool method_ok = r->method == method || (method == "HEAD" && r->method == "GET");
    if (!method_ok) {
      allowed += allowed.empty() ? r->method : ", " + r->method;
      continue;
    }
    *params = std::move(p);
    return r.get();
  }
  if (path_matched) {
    return Status(Code::kMethodNotAllowed, "method_not_allowed",
                  method + " is not allowed on " + path + " (allowed: " + allowed + ")");
  }
  return Status(Code::kNotFound, "route_not_found", "no API route " + path);
}

}  // namespace berth::api
