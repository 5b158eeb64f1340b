// The OpenAPI 3.0 document, generated from the route table so it cannot drift from the
// routes that exist. Schemas describe the JSON shapes of docs/api.md.
#include "api/detail/service.h"

namespace berth::api {
namespace {

Json Str() { return {{"type", "string"}}; }
Json Int() { return {{"type", "integer"}}; }
Json Bool() { return {{"type", "boolean"}}; }
Json Ref(const std::string& name) { return {{"$ref", "#/components/schemas/" + name}}; }
Json Enum(std::initializer_list<const char*> values) {
  Json e = Json::array();
  for (const char* v : values) e.push_back(v);
  return {{"type", "string"}, {"enum", e}};
}
Json Obj(Json props, std::initializer_list<const char*> required = {}) {
  Json o = {{"type", "object"}, {"properties", std::move(props)}, {"additionalProperties", false}};
  if (required.size()) {
    Json r = Json::array();
    for (const char* k : required) r.push_back(k);
    o["required"] = r;
  }
  return o;
}
Json Meta(Json props) {
  props["revision"] = {{"type", "integer"}, {"readOnly", true}};
  props["created_at"] = {{"type", "string"}, {"format", "date-time"}, {"readOnly", true}};
  props["updated_at"] = {{"type", "string"}, {"format", "date-time"}, {"readOnly", true}};
  return props;
}

Json Schemas() {
  Json probe = Obj({{"type", Enum({"tcp", "http", "command"})},
                    {"port", Int()},
                    {"path", Str()},
                    {"command", Str()},
                    {"interval_s", Int()},
                    {"timeout_s", Int()},
                    {"failure_threshold", Int()},
                    {"expect_status", Int()}});
  probe["nullable"] = true;
  Json s;
  // The stable codes of docs/api.md "Errors" that scripts switch on (kept equal to that table
  // by tests/integration/test_hostile_input.py).
  Json code = Str();
  code["description"] = "stable error code (docs/api.md \"Errors\")";
  code["example"] = "invalid_argument";
  code["x-berth-codes"] = {"invalid_json", "unknown_field", "invalid_name", "invalid_argument",
                           "json_too_deep", "invalid_path", "unsafe_path", "server_assigned",
                           "invalid_source", "unauthenticated", "service_account",
                           "invalid_signature", "invalid_payload", "permission_denied",
                           "service_account_scope", "team_creation_restricted",
                           "source_not_allowed", "not_found", "route_not_found",
                           "method_not_allowed", "already_exists", "revision_conflict",
                           "failed_precondition", "domain_taken", "domain_in_use", "port_taken",
                           "port_reserved", "name_reserved", "team_limit_reached",
                           "operation_in_progress", "quota_exceeded", "revision_compacted",
                           "payload_too_large", "unsupported_media_type", "rate_limited",
                           "too_many_detections", "internal", "unavailable", "insufficient_storage",
                           "source_timeout"};
  s["Error"] = Obj({{"code", code}, {"message", Str()}, {"field", Str()}}, {"code", "message"});
  s["Health"] = {{"type", "object"}, {"properties", {{"status", Str()}, {"revision", Int()}}}};
  s["LoginRequest"] = Obj({{"user", Str()}, {"password", Str()}}, {"user", "password"});
  s["LoginResponse"] = Obj({{"token", Str()}, {"user", Str()}, {"expires_at", Str()}});
  s["Whoami"] = {{"type", "object"},
                 {"properties",
                  {{"user", Ref("User")},
                   {"teams", {{"type", "array"},
                              {"items", Obj({{"team", Str()}, {"role", Str()}})}}},
                   {"can_create_teams", Bool()}}}};
  s["User"] = Obj(Meta({{"name", Str()},
                        {"display_name", Str()},
                        {"email", Str()},
                        {"admin", Bool()},
                        {"disabled", Bool()},
                        {"service", Bool()}}));
  s["UserInput"] = Obj(Meta({{"name", Str()},
                             {"display_name", Str()},
                             {"email", Str()},
                             {"admin", Bool()},
                             {"disabled", Bool()},
                             {"password", {{"type", "string"}, {"minLength", 8}, {"writeOnly", true}}},
                             {"current_password", {{"type", "string"}, {"writeOnly", true}}}}));
  s["Token"] = Obj(Meta({{"id", Str()},
                         {"name", Str()},
                         {"user", Str()},
                         {"expires_at", Str()},
                         {"last_used_at", Str()},
                         {"token", {{"type", "string"}, {"description", "the secret, only in the create response"}}}}));
  s["TokenInput"] = Obj({{"name", Str()}, {"ttl_hours", Int()}}, {"name"});
  Json quota = Obj({{"instances", Int()}, {"memory_mb", Int()}, {"cpu_millis", Int()}, {"disk_mb", Int()}});
  s["PlatformSettings"] = Obj({{"team_creation", Enum({"admins", "everyone"})},
                               {"max_teams_per_user", Int()},
                               {"default_team_quota", quota},
                               {"revision", Int()}});
  s["Team"] = Obj(Meta({{"name", Str()},
                        {"created_by", {{"type", "string"}, {"readOnly", true}}},
                        {"display_name", Str()},
                        {"quota", quota},
                        {"disk", {{"type", "object"},
                                  {"readOnly", true},
                                  {"description", "the team's own disk (sandbox): GET of one team only"},
                                  {"properties", {{"used_bytes", Int()}, {"size_bytes", Int()}}}}}}),
                  {"name"});
  s["Member"] = Obj(Meta({{"user", Str()}, {"team", Str()}, {"role", Enum({"owner", "admin", "developer", "viewer"})}}),
                    {"user", "role"});
  s["App"] = Obj(Meta({{"name", Str()}, {"team", Str()}, {"display_name", Str()}, {"description", Str()}}),
                 {"name"});
  s["Component"] = Obj(
      Meta({{"name", Str()},
            {"team", Str()},
            {"app", Str()},
            {"kind", Enum({"service", "stateful", "job", "cronjob"})},
            {"schedule", Str()},
            {"source", Obj({{"type", Enum({"none", "dir", "git", "archive", "package"})},
                            {"path", Str()},
                            {"url", Str()},
                            {"ref", Str()},
                            {"archive", Str()}})},
            {"build", Obj({{"command", Str()},
                           {"start_command", Str()},
                           {"language", Str()},
                           {"language_version", Str()},
                           {"subdir", Str()}})},
            {"ports", {{"type", "array"},
                       {"items", Obj({{"port", Int()},
                                      {"protocol", Enum({"http", "tcp", "udp", "grpc"})},
                                      {"inner", Bool()},
                                      {"outer", Bool()},
                                      {"name", Str()},
                                      {"auto", {{"type", "boolean"},
                                                {"description",
                                                 "declared by the platform: a build of a web "
                                                 "process gave the component, which declared "
                                                 "no port, this HTTP port and its default "
                                                 "domain; until the component is next "
                                                 "written through the API, a build may "
                                                 "replace or remove it"}}}},
                                     {"port"})}}},
            {"env", {{"type", "object"}, {"additionalProperties", Str()}}},
            {"config_files", {{"type", "array"}, {"items", Obj({{"path", Str()}, {"content", Str()}})}}},
            {"volumes", {{"type", "array"},
                         {"items", Obj({{"name", Str()}, {"path", Str()}, {"shared", Bool()}})}}},
            {"health", Obj({{"startup", probe}, {"readiness", probe}, {"liveness", probe}})},
            {"resources", Obj({{"memory_mb", Int()}, {"cpu_millis", Int()}})},
            {"replicas", Int()},
            {"processes", {{"type", "object"},
                           {"additionalProperties", Int()},
                           {"description", "instances of the version's other process types "
                                           "(Procfile worker, clock, ...) by type; an unlisted "
                                           "type runs 1"}}},
            {"process_types", {{"type", "object"},
                               {"additionalProperties", Int()},
                               {"readOnly", true},
                               {"description", "the process types of the version it runs "
                                               "(web, worker, ...) and the instances each "
                                               "should have"}}},
            {"desired_state", Enum({"running", "stopped"})},
            {"version", Str()},
            {"restart_generation", Int()},
            {"addresses", {{"type", "array"}, {"items", Str()}, {"readOnly", true},
                           {"description", "where the component answers through the gateway"}}},
            {"rollout", Obj({{"max_surge", {{"description", "a count or a percentage such as \"25%\""}}},
                             {"max_unavailable", {{"description", "a count or a percentage"}}}})},
            {"grace_period_s", Int()},
            {"job", Obj({{"retries", Int()},
                         {"timeout_s", Int()},
                         {"history_limit", Int()},
                         {"concurrency_policy", Enum({"allow", "forbid", "replace"})},
                         {"suspend", Bool()}})},
            {"connection_env", {{"type", "object"}, {"additionalProperties", Str()}}}}),
      {"name"});
  s["Dependency"] = Obj(Meta({{"name", Str()}, {"team", Str()}, {"app", Str()}, {"component", Str()},
                              {"target_app", Str()}, {"target_component", Str()}}));
  s["DependencyInput"] = Obj({{"target_component", Str()}, {"target_app", Str()}}, {"target_component"});
  s["Version"] = Obj(Meta({{"name", Str()},
                           {"number", Int()},
                           {"status", Enum({"queued", "building", "ready", "failed", "cancelled"})},
                           {"artifact", {{"type", "string"},
                                         {"pattern", "^(sha256:[0-9a-f]{64})?$"},
                                         {"description", "the artifact's digest (never a path)"}}},
                           {"start_command", Str()},
                           {"commit", Str()},
                           {"build_log", {{"type", "string"},
                                          {"readOnly", true},
                                          {"description", "where the server keeps the build log, "
                                                          "under its data directory; set by the "
                                                          "server only"}}},
                           {"message", Str()},
                           {"size_bytes", Int()},
                           {"built_at", Str()},
                           {"detect", {{"type", "object"}}}}));
  s["Instance"] = {{"type", "object"}, {"description", "a running replica, written by the runtime"}};
  s["Operation"] = Obj(Meta({{"type", Enum({"deploy", "rollback", "scale", "restart", "stop",
                                             "start", "update"})},
                             {"status", Enum({"in_progress", "succeeded", "failed", "cancelled"})},
                             {"detail", Str()},
                             {"by", Str()},
                             {"started_at", Str()},
                             {"finished_at", Str()},
                             {"message", {{"type", "string"},
                                          {"description",
                                           "how it ended; with a gateway, an operation of a "
                                           "routed component succeeds only once the gateway "
                                           "serves its instances (\"... the gateway routes "
                                           "them (snapshot revision N)\")"}}}}));
  s["Run"] = Obj(Meta({{"name", Str()},
                       {"team", Str()},
                       {"app", Str()},
                       {"component", Str()},
                       {"number", Int()},
                       {"status", Enum({"running", "succeeded", "failed", "cancelled"})},
                       {"trigger", Enum({"deploy", "schedule", "manual"})},
                       {"by", Str()},
                       {"version", Str()},
                       {"instance", Str()},
                       {"scheduled_at", Str()},
                       {"started_at", Str()},
                       {"finished_at", Str()},
                       {"attempts", Int()},
                       {"last_exit", {{"type", "object"}, {"nullable", true},
                                      {"description", "{code, signal, oom, at, reason}"}}},
                       {"message", Str()},
                       {"log_tail", Str()},
                       {"command", {{"type", "string"},
                                    {"description", "a one-off run's command (berth run -- CMD); "
                                                    "\"\" = the job's own"}}}}));
  s["RunInput"] = Obj({{"command", {{"type", "string"},
                                     {"description", "a one-off command (sh -c) in a fresh "
                                                     "instance of the current version; optional "
                                                     "for jobs, required for services"}}}});
  s["LogLine"] = Obj({{"time", Str()}, {"instance", Str()}, {"stream", Enum({"out", "err", "shim"})},
                      {"line", Str()}});
  s["Event"] = Obj(Meta({{"id", Str()},
                         {"type", Enum({"normal", "warning"})},
                         {"reason", Str()},
                         {"message", Str()},
                         {"app", Str()},
                         {"component", Str()},
                         {"count", Int()},
                         {"first_at", Str()},
                         {"last_at", Str()}}));
  s["AuditEntry"] = Obj({{"id", Int()},
                         {"time", Str()},
                         {"revision", Int()},
                         {"actor", Str()},
                         {"team", Str()},
                         {"action", Str()},
                         {"resource", Str()},
                         {"summary", {{"type", "object"}}}});
  // Gateway (gateway_routes.cc, docs/gateway.md).
  Json match = {{"type", "array"}, {"items", Obj({{"name", Str()}, {"value", Str()}}, {"name", "value"})}};
  Json number = {{"type", "number"}};
  Json timeouts = Obj({{"connect_ms", Int()}, {"header_ms", Int()}, {"idle_ms", Int()}, {"total_ms", Int()}});
  Json balance = Enum({"round_robin", "least_conn", "hash_cookie", "hash_ip"});
  s["HttpRule"] = Obj(
      Meta({{"name", Str()},
            {"team", Str()},
            {"app", Str()},
            {"domain", Str()},
            {"path_prefix", Str()},
            {"headers", match},
            {"cookies", match},
            {"backends", {{"type", "array"},
                          {"items", Obj({{"component", Str()}, {"port", Int()}, {"version", Str()},
                                         {"weight", Int()}},
                                        {"component"})}}},
            {"balance", balance},
            {"hash_cookie", Str()},
            {"certificate", Str()},
            {"redirect_https", Bool()},
            {"rate_limit", Obj({{"requests_per_second", number}, {"burst", Int()}})},
            {"max_body_bytes", Int()},
            {"timeouts", timeouts}}),
      {"domain", "backends"});
  s["TcpRule"] = Obj(Meta({{"name", Str()},
                           {"team", Str()},
                           {"app", Str()},
                           {"listen_port", Int()},
                           {"component", Str()},
                           {"port", Int()},
                           {"balance", Enum({"round_robin", "least_conn", "hash_ip"})},
                           {"connect_timeout_ms", Int()},
                           {"idle_timeout_ms", Int()},
                           {"status",
                            {{"type", "object"},
                             {"readOnly", true},
                             {"description", "the gateway's listener for this rule, as it last "
                                             "reported it"},
                             {"properties",
                              {{"state", Enum({"listening", "failed", "pending", "unknown"})},
                               {"address", Str()},
                               {"error", Str()},
                               {"since", Str()},
                               {"message", Str()}}}}}}),
                     {"listen_port", "component"});
  s["DomainOwner"] = Obj({{"domain", Str()},
                          {"team", Str()},
                          {"assigned", Bool()},
                          {"by", Str()},
                          {"revision", Int()}});
  s["DomainAssignment"] = Obj({{"team", Str()}}, {"team"});
  s["CredentialRotated"] = Obj({{"rotated", Bool()}, {"token_id", Str()}, {"user", Str()}});
  s["GatewayStatus"] = Obj(
      {{"revision", Int()},
       {"tcp", {{"type", "array"},
                {"items", Obj({{"route", Str()},
                               {"address", Str()},
                               {"listening", Bool()},
                               {"error", Str()}})}}}});
  s["CertificateInput"] = Obj({{"name", Str()},
                               {"cert_pem", Str()},
                               {"chain_pem", Str()},
                               {"key_pem", {{"type", "string"}, {"writeOnly", true}}}},
                              {"name", "cert_pem", "key_pem"});
  s["Certificate"] = Obj(Meta({{"name", Str()},
                               {"team", Str()},
                               {"domains", {{"type", "array"}, {"items", Str()}}},
                               {"subject", Str()},
                               {"issuer", Str()},
                               {"not_before", Str()},
                               {"not_after", Str()},
                               {"expired", Bool()},
                               {"fingerprint_sha256", Str()},
                               {"cert_pem", Str()}}));
  s["GatewaySnapshot"] = {{"type", "object"},
                          {"description", "docs/gateway.md \"Snapshot\""},
                          {"properties",
                           {{"revision", Int()},
                            {"http_routes", {{"type", "array"}, {"items", {{"type", "object"}}}}},
                            {"tcp_routes", {{"type", "array"}, {"items", {{"type", "object"}}}}},
                            {"pools", {{"type", "object"}}},
                            {"certificates", {{"type", "array"}, {"items", {{"type", "object"}}}}}}}};
  s["GatewayClaim"] = Obj({{"key", Str()},
                           {"kind", Enum({"http_rule", "tcp_rule"})},
                           {"team", Str()},
                           {"app", Str()},
                           {"rule", Str()},
                           {"stale", Bool()},
                           {"revision", Int()}});
  s["Deleted"] = Obj({{"deleted", Str()}, {"name", Str()}, {"revision", Int()}});
  s["Change"] = Obj({{"revision", Int()},
                     {"type", Enum({"put", "delete", "heartbeat", "error"})},
                     {"kind", Str()},
                     {"team", Str()},
                     {"app", Str()},
                     {"component", Str()},
                     {"name", Str()},
                     {"object", {{"type", "object"}}}});
  return s;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string BuildOpenApi(const Router& router, const std::string& version) {
  Json paths = Json::object();
  for (const auto& r : router.routes()) {
    Json op = {{"summary", r->summary}, {"tags", {r->tag}}, {"operationId", Lower(r->method) + r->pattern}};
    Json params = Json::array();
    for (const std::string& seg : r->segments) {
      if (seg.size() > 2 && seg.front() == '{') {
        params.push_back({{"name", seg.substr(1, seg.size() - 2)},
                          {"in", "path"},
                          {"required", true},
                          {"schema", Str()}});
      }
    }
    if (r->is_list) {
      params.push_back({{"name", "limit"}, {"in", "query"}, {"schema", Int()}});
      params.push_back({{"name", "after"}, {"in", "query"}, {"schema", Str()}});
    }
    if (r->method == "DELETE") params.push_back({{"name", "revision"}, {"in", "query"}, {"schema", Int()}});
    if (r->tag == "watch") params.push_back({{"name", "from"}, {"in", "query"}, {"schema", Int()}});
    if (!params.empty()) op["parameters"] = params;
    if (!r->request_schema.empty()) {
      op["requestBody"] = {{"required", true},
                           {"content", {{"application/json", {{"schema", Ref(r->request_schema)}}}}}};
    }
    Json ok_schema = r->response_schema.empty() ? Json{{"type", "object"}} : Ref(r->response_schema);
    if (r->is_list) {
      ok_schema = {{"type", "object"},
                   {"properties",
                    {{"items", {{"type", "array"}, {"items", ok_schema}}},
                     {"next", Str()},
                     {"revision", Int()}}}};
    }
    std::string media = r->tag == "watch" ? "application/x-ndjson" : "application/json";
    Json responses = {{std::to_string(r->success_status),
                       {{"description", "success"}, {"content", {{media, {{"schema", ok_schema}}}}}}}};
    Json err = {{"description", "error"}, {"content", {{"application/json", {{"schema", Ref("Error")}}}}}};
    responses["default"] = err;
    auto named = [&](int status, const char* why) {
      Json e = err;
      e["description"] = why;
      responses[std::to_string(status)] = e;
    };
    // Errors every route may give before its handler runs (docs/api.md "Errors").
    named(400, "invalid_path, invalid_json, json_too_deep or a field's own error");
    named(413, "payload_too_large");
    if (r->slow) {
      named(429, "too_many_detections: the caller's detections at once (detect_per_user)");
      named(504, "source_timeout: the git fetch took longer than detect_timeout_s");
    }
    op["responses"] = responses;
    if (r->public_route) op["security"] = Json::array();
    paths[r->pattern][Lower(r->method)] = op;
  }
  Json doc = {{"openapi", "3.0.3"},
              {"info", {{"title", "berth API"}, {"version", version},
                        {"description", "Application platform: teams, apps, components, versions. See docs/api.md."}}},
              {"servers", {{{"url", "/"}}}},
              {"security", {{{"bearer", Json::array()}}}},
              {"paths", paths},
              {"components",
               {{"schemas", Schemas()},
                {"securitySchemes", {{"bearer", {{"type", "http"}, {"scheme", "bearer"}}}}}}}};
  return doc.dump();
}

}  // namespace berth::api
