#include "cli/detail/flags.h"

#include <charconv>
#include <filesystem>
#include <tuple>

#include "core/names.h"

namespace berth::cli {
namespace {

bool ParseInt(std::string_view s, int* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

Status BadPort(std::string_view spec, const std::string& why) {
  return InvalidArgument("invalid --port \"" + std::string(spec) + "\": " + why +
                             " (expected PORT[/PROTOCOL][:inner|outer], e.g. 8080/http or "
                             "5432/tcp:inner)",
                         "port");
}

std::string Absolute(const std::string& path, const std::string& cwd) {
  std::filesystem::path p(path);
  if (p.is_absolute() || cwd.empty()) return p.lexically_normal().string();
  return (std::filesystem::path(cwd) / p).lexically_normal().string();
}

}  // namespace

Result<PortSpec> ParsePortSpec(std::string_view spec) {
  PortSpec out;
  std::string_view rest = spec;
  size_t colon = rest.find(':');
  std::string_view vis;
  if (colon != std::string_view::npos) {
    vis = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  size_t slash = rest.find('/');
  std::string_view num = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::string_view proto = rest.substr(slash + 1);
    if (proto != "http" && proto != "tcp" && proto != "udp" && proto != "grpc") {
      return BadPort(spec, "unknown protocol \"" + std::string(proto) +
                               "\" (use http, tcp, udp or grpc)");
    }
    out.protocol = std::string(proto);
  }
  if (!ParseInt(num, &out.port) || out.port < 1 || out.port > 65535) {
    return BadPort(spec, "the port must be a number from 1 to 65535");
  }
  if (colon != std::string_view::npos) {
    if (vis == "inner") {
      out.outer = false;
    } else if (vis == "outer") {
      out.inner = false;
    } else if (vis != "both" && vis != "inner,outer" && vis != "outer,inner") {
      return BadPort(spec, "the visibility after ':' must be inner, outer or both");
    }
  }
  return out;
}

Json PortSpecToJson(const PortSpec& spec) {
  return Json{{"port", spec.port},
              {"protocol", spec.protocol},
              {"inner", spec.inner},
              {"outer", spec.outer}};
}

std::string FormatPort(const Json& port) {
  if (!port.is_object()) return Cell(port);
  std::string s = Cell(port.value("port", Json()));
  std::string proto = port.value("protocol", std::string());
  if (!proto.empty()) s += "/" + proto;
  bool inner = port.value("inner", true), outer = port.value("outer", true);
  if (inner && !outer) s += ":inner";
  if (!inner && outer) s += ":outer";
  if (!inner && !outer) s += ":none";
  return s;
}

Result<EnvAssignment> ParseEnvAssignment(std::string_view text, bool allow_remove) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos) {
    return InvalidArgument("invalid --env \"" + std::string(text) + "\": expected KEY=VALUE" +
                               (allow_remove ? " (or KEY= to remove KEY)" : ""),
                           "env");
  }
  EnvAssignment out;
  out.key = std::string(text.substr(0, eq));
  if (Status s = ValidateEnvName(out.key, "env"); !s.ok()) {
    return InvalidArgument("invalid --env \"" + std::string(text) + "\": " + s.message(), "env");
  }
  std::string_view value = text.substr(eq + 1);
  if (!(allow_remove && value.empty())) out.value = std::string(value);
  return out;
}

Result<bool> ParseBoolFlag(std::string_view text, std::string_view flag) {
  if (text == "true" || text == "yes" || text == "1") return true;
  if (text == "false" || text == "no" || text == "0") return false;
  return InvalidArgument(std::string(flag) + " must be true or false, not \"" +
                             std::string(text) + "\"",
                         std::string(flag));
}

Result<int64_t> ParseDurationMs(std::string_view text, std::string_view flag) {
  auto bad = [&] {
    return InvalidArgument(std::string(flag) + " takes a duration such as 1500ms, 30s, 5m or 1h, not \"" +
                               std::string(text.substr(0, 64)) + "\"",
                           std::string(flag));
  };
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 12) return bad();
  int64_t n = std::stoll(std::string(text.substr(0, digits)));
  std::string_view unit = text.substr(digits);
  int64_t scale = 0;
  if (unit == "ms") {
    scale = 1;
  } else if (unit.empty() || unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = 60 * 1000;
  } else if (unit == "h") {
    scale = 3600 * 1000;
  } else {
    return bad();
  }
  constexpr int64_t kMaxMs = int64_t{365} * 24 * 3600 * 1000;
  if (n > kMaxMs / scale) return bad();
  return n * scale;
}

std::string EncodeComponent(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Result<Json> BuildComponentBody(const std::string& name, const ComponentFlags& f, bool patch,
                                const std::string& cwd) {
  Json body = Json::object();
  if (!patch) body["name"] = name;
  if (f.kind) {
    const std::string& k = *f.kind;
    if (k != "service" && k != "stateful" && k != "job" && k != "cronjob") {
      return InvalidArgument("--kind must be service, stateful, job or cronjob, not \"" + k + "\"",
                             "kind");
    }
    body["kind"] = k;
  }
  if (f.schedule) body["schedule"] = *f.schedule;

  int sources = (f.source_dir ? 1 : 0) + (f.git_url ? 1 : 0) + (f.archive ? 1 : 0);
  if (sources > 1) {
    return InvalidArgument("give only one of --source, --git and --archive", "source");
  }
  if (f.git_ref && !f.git_url && !patch) {
    return InvalidArgument("--ref needs --git URL", "ref");
  }
  if (sources == 1 || f.git_ref) {
    Json src = Json::object();
    // In a merge patch a new source type must clear the fields of the old one.
    Json cleared = patch ? Json() : Json("");
    if (f.source_dir) {
      src = {{"type", "dir"}, {"path", Absolute(*f.source_dir, cwd)}};
      if (patch) src.update(Json{{"url", cleared}, {"ref", cleared}, {"archive", cleared}});
    } else if (f.git_url) {
      src = {{"type", "git"}, {"url", *f.git_url}};
      if (f.git_ref) {
        src["ref"] = *f.git_ref;
      } else if (patch) {
        src["ref"] = cleared;
      }
      if (patch) src.update(Json{{"path", cleared}, {"archive", cleared}});
    } else if (f.archive) {
      src = {{"type", "archive"}, {"archive", Absolute(*f.archive, cwd)}};
      if (patch) src.update(Json{{"path", cleared}, {"url", cleared}, {"ref", cleared}});
    } else {
      src = {{"ref", *f.git_ref}};  // patch: change the ref of the existing git source
    }
    body["source"] = src;
  }

  Json build = Json::object();
  if (f.build_command) build["command"] = *f.build_command;
  if (f.start_command) build["start_command"] = *f.start_command;
  if (f.subdir) build["subdir"] = *f.subdir;
  if (!build.empty()) body["build"] = build;

  if (f.ports) {
    Json ports = Json::array();
    for (const auto& p : *f.ports) {
      BERTH_ASSIGN_OR_RETURN(PortSpec spec, ParsePortSpec(p));
      ports.push_back(PortSpecToJson(spec));
    }
    body["ports"] = ports;
  }
  if (f.env) {
    Json env = Json::object();
    for (const auto& e : *f.env) {
      BERTH_ASSIGN_OR_RETURN(EnvAssignment a, ParseEnvAssignment(e, patch));
      env[a.key] = a.value ? Json(*a.value) : Json();
    }
    body["env"] = env;
  }

  Json resources = Json::object();
  if (f.memory_mb) {
    if (*f.memory_mb < 0) return InvalidArgument("--memory must be >= 0 (0 = no limit)", "memory");
    resources["memory_mb"] = *f.memory_mb;
  }
  if (f.cpu_millis) {
    if (*f.cpu_millis < 0) return InvalidArgument("--cpu must be >= 0 (0 = no limit)", "cpu");
    resources["cpu_millis"] = *f.cpu_millis;
  }
  if (!resources.empty()) body["resources"] = resources;
  if (f.replicas) {
    if (*f.replicas < 0) return InvalidArgument("--replicas must be >= 0", "replicas");
    body["replicas"] = *f.replicas;
  }
  if (f.connection_env) {
    Json env = Json::object();
    for (const auto& e : *f.connection_env) {
      BERTH_ASSIGN_OR_RETURN(EnvAssignment a, ParseEnvAssignment(e, patch));
      env[a.key] = a.value ? Json(*a.value) : Json();
    }
    body["connection_env"] = env;
  }
  Json rollout = Json::object();
  for (auto [given, key, flag] :
       {std::tuple{&f.max_surge, "max_surge", "--max-surge"},
        std::tuple{&f.max_unavailable, "max_unavailable", "--max-unavailable"}}) {
    if (!*given) continue;
    const std::string& v = **given;
    // A count goes as a number, a percentage as "N%"; the server checks the range.
    bool pct = !v.empty() && v.back() == '%';
    std::string digits = pct ? v.substr(0, v.size() - 1) : v;
    if (digits.empty() || digits.size() > 3 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      return InvalidArgument(std::string(flag) + " must be a count (2) or a percentage (25%)",
                             key);
    }
    rollout[key] = pct ? Json(v) : Json(std::stoi(digits));
  }
  if (!rollout.empty()) body["rollout"] = rollout;
  if (f.grace_period_s) {
    if (*f.grace_period_s < 0) return InvalidArgument("--grace-period must be >= 0", "grace_period_s");
    body["grace_period_s"] = *f.grace_period_s;
  }
  Json job = Json::object();
  if (f.retries) job["retries"] = *f.retries;
  if (f.job_timeout_s) job["timeout_s"] = *f.job_timeout_s;
  if (f.history_limit) job["history_limit"] = *f.history_limit;
  if (f.concurrency_policy) job["concurrency_policy"] = *f.concurrency_policy;
  if (f.suspend) {
    if (*f.suspend != "true" && *f.suspend != "false") {
      return InvalidArgument("--suspend must be true or false", "job.suspend");
    }
    job["suspend"] = *f.suspend == "true";
  }
  if (!job.empty()) body["job"] = job;
  if (patch && body.empty()) {
    return InvalidArgument("nothing to change: give at least one flag (see --help)");
  }
  return body;
}

}  // namespace berth::cli
