// Maps (method, path) to a route. Patterns are '/'-separated with `{param}` segments
// ("/api/v1/teams/{team}/apps/{app}"). The route table also drives the OpenAPI document, so
// every route carries its summary, tag and body/response schema names.
// Thread-safety: build with Add() before serving; Match() is then safe from any thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "api/http.h"
#include "auth/access.h"
#include "model/json_util.h"

namespace berth::api {

// What a route handler gets.
struct Ctx {
  const HttpRequest& req;
  std::map<std::string, std::string> params;
  auth::Principal who;  // empty for public routes
  const std::string& P(const std::string& name) const { return params.at(name); }
};

// What a route handler returns on success.
struct Reply {
  int status = 200;
  Json body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<StreamSource> stream;
};

using RouteFn = std::function<Result<Reply>(Ctx&)>;

struct Route {
  std::string method;
  std::string pattern;
  std::string summary;
  std::string tag;
  std::string request_schema;   // OpenAPI schema name of the body, "" for none
  std::string response_schema;  // schema name of the success body ("" = generic)
  bool is_list = false;         // response is {"items":[schema], "next", "revision"}
  int success_status = 200;
  bool public_route = false;    // no token needed
  bool blocking = false;        // runs on the blocking pool (password hashing)
  // Service accounts (the gateway) may call it; every other route answers them 403
  // service_account_scope, so a service credential reaches only what its service needs.
  bool service_account = false;
  bool slow = false;            // runs on the slow pool (waits on outside servers: git)
  // The token may come as the password of HTTP basic auth (git's smart HTTP), and a 401
  // carries WWW-Authenticate: Basic so that git asks for it; a stream is sent as is.
  bool basic_auth = false;
  // The body is streamed to a file (HttpRequest::body_file) of at most ApiOptions::upload_limit
  // bytes; `upload_min_role` is checked in the route's {team} before the body is read.
  bool body_to_file = false;
  model::Role upload_min_role = model::Role::kDeveloper;
  RouteFn fn;
  std::vector<std::string> segments;  // filled by Add
};

class Router {
 public:
  void Add(Route route);
  // The matching route and its parameters; route_not_found (404) or method_not_allowed (405).
  Result<const Route*> Match(const std::string& method, const std::string& path,
                             std::map<std::string, std::string>* params) const;
  const std::vector<std::unique_ptr<Route>>& routes() const { return routes_; }

 private:
  std::vector<std::unique_ptr<Route>> routes_;
};

std::vector<std::string> SplitPath(const std::string& path);

}  // namespace berth::api
