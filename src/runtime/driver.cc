#include "runtime/driver.h"

#include <string.h>

#include <cstdio>

namespace berth::runtime {
namespace {

Json ProbeJson(const std::optional<model::Probe>& p) {
  if (!p) return nullptr;
  return {{"type", p->type},         {"port", p->port},
          {"path", p->path},         {"command", p->command},
          {"interval_s", p->interval_s}, {"timeout_s", p->timeout_s},
          {"failure_threshold", p->failure_threshold}, {"expect_status", p->expect_status}};
}

}  // namespace

std::string InstanceTemplate::Fingerprint() const {
  Json files = Json::array();
  for (const auto& f : config_files) files.push_back({f.path, f.content});
  Json ports_json = Json::array();
  for (const auto& p : ports) ports_json.push_back({p.port, p.protocol});
  Json j = {{"version", version},
            {"artifact", artifact_dir},
            {"command", start_command},
            {"env", env},
            {"files", files},
            {"ports", ports_json},
            {"health", {ProbeJson(health.startup), ProbeJson(health.readiness),
                        ProbeJson(health.liveness)}},
            {"resources", {resources.memory_mb, resources.cpu_millis}},
            {"restart", restart_generation}};
  // Only a non-default grace period is part of the digest, so instances started before the
  // setting existed keep their fingerprint (and are not replaced by an upgrade of berth).
  if (grace_s != 10) j["grace"] = grace_s;
  if (no_port) j["no_port"] = true;  // only when set: older fingerprints stay as they were
  if (!volumes.empty()) {
    Json vols = Json::array();
    for (const auto& v : volumes) vols.push_back({v.name, v.path, v.per_instance});
    j["volumes"] = vols;
  }
  // FNV-1a 64: stable across processes and builds (the fingerprint is stored in shim specs).
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char ch : j.dump()) {
    h ^= ch;
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string LastExit::Describe() const {
  if (oom) return "was killed for exceeding its memory limit (OOM)";
  if (signal > 0) {
    const char* abbrev = ::sigabbrev_np(signal);
    return "was killed by signal " + std::to_string(signal) +
           (abbrev ? std::string(" (SIG") + abbrev + ")" : std::string());
  }
  return "exited with code " + std::to_string(code);
}

Json LastExitToJson(const LastExit& e) {
  return {{"code", e.code},
          {"signal", e.signal},
          {"oom", e.oom},
          {"at", e.at_ms ? Json(FormatTime(FromUnixMillis(e.at_ms))) : Json(nullptr)},
          {"reason", e.Describe()}};
}

Json InstanceToJson(const InstanceStatus& s) {
  Json ports = Json::object();
  for (const auto& [declared, real] : s.ports) ports[std::to_string(declared)] = real;
  Json last = s.last_exit ? LastExitToJson(*s.last_exit) : Json(nullptr);
  Json j = {{"name", s.name},
          {"version", s.version},
          {"state", s.state},
          {"ready", s.ready},
          {"outdated", s.outdated},
          {"pid", s.pid},
          {"shim_pid", s.shim_pid},
          {"port", s.port},
          {"ports", ports},
          {"restarts", s.restarts},
          {"started_at", s.started_at_ms ? Json(FormatTime(FromUnixMillis(s.started_at_ms)))
                                         : Json(nullptr)},
          {"last_exit", last},
          {"message", s.message}};
  if (!s.netns.empty()) j["netns"] = s.netns;
  if (!s.process.empty()) j["process"] = s.process;
  return j;
}

}  // namespace berth::runtime
