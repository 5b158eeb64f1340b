#include "runtime/detail/shim_files.h"

#include <sstream>

#include "core/env.h"

namespace berth::runtime::detail {

Json ShimSpecToJson(const ShimSpec& s) {
  const LaunchSpec& l = s.launch;
  Json files = Json::array();
  for (const auto& f : l.config_files) files.push_back({{"path", f.path}, {"content", f.content}});
  Json ports = Json::object();
  for (const auto& [d, p] : l.ports) ports[std::to_string(d)] = p;
  Json j = {{"team", l.ref.team},
          {"app", l.ref.app},
          {"component", l.ref.component},
          {"instance", l.instance},
          {"process", l.process},
          {"version", l.version},
          {"fingerprint", l.fingerprint},
          {"command", l.command},
          {"artifact_dir", l.artifact_dir},
          {"config_files", files},
          {"env", l.env},
          {"port", l.port},
          {"ports", ports},
          {"restarts", l.restarts},
          {"memory_mb", l.resources.memory_mb},
          {"cpu_millis", l.resources.cpu_millis},
          {"grace_s", l.grace_s},
          {"workdir", s.workdir},
          {"log_path", s.log_path},
          {"log_max_bytes", s.log_max_bytes},
          {"log_keep", s.log_keep},
          {"pids_max", s.pids_max}};
  if (s.sandbox) j["sandbox"] = sandbox::ToJson(*s.sandbox);
  return j;
}

Result<ShimSpec> ShimSpecFromJson(const Json& j) {
  if (!j.is_object()) return InvalidArgument("shim spec is not a JSON object");
  try {
    ShimSpec s;
    LaunchSpec& l = s.launch;
    l.ref.team = j.at("team").get<std::string>();
    l.ref.app = j.at("app").get<std::string>();
    l.ref.component = j.at("component").get<std::string>();
    l.instance = j.at("instance").get<std::string>();
    l.process = j.value("process", "");
    l.version = j.value("version", "");
    l.fingerprint = j.value("fingerprint", "");
    l.command = j.at("command").get<std::string>();
    l.artifact_dir = j.value("artifact_dir", "");
    const Json files = j.value("config_files", Json::array());
    for (const auto& f : files) {
      l.config_files.push_back({f.at("path").get<std::string>(), f.at("content").get<std::string>()});
    }
    l.env = j.value("env", std::map<std::string, std::string>{});
    l.port = j.value("port", 0);
    const Json ports = j.value("ports", Json::object());
    for (const auto& [k, v] : ports.items()) l.ports[std::stoi(k)] = v.get<int>();
    l.restarts = j.value("restarts", 0);
    l.resources.memory_mb = j.value("memory_mb", int64_t{0});
    l.resources.cpu_millis = j.value("cpu_millis", int64_t{0});
    l.grace_s = j.value("grace_s", 10);
    s.workdir = j.at("workdir").get<std::string>();
    s.log_path = j.at("log_path").get<std::string>();
    s.log_max_bytes = j.value("log_max_bytes", int64_t{10 << 20});
    s.log_keep = j.value("log_keep", 2);
    s.pids_max = j.value("pids_max", int64_t{0});
    if (j.contains("sandbox")) {
      auto sb = sandbox::SpecFromJson(j["sandbox"]);
      if (!sb.ok()) return sb.status();
      s.sandbox = std::move(sb).value();
    }
    return s;
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("bad shim spec: ") + e.what());
  }
}

Json ShimStateToJson(const ShimState& s) {
  return {{"state", s.state},
          {"shim_pid", s.shim_pid},
          {"app_pid", s.app_pid},
          {"app_start", s.app_start},
          {"started_at_ms", s.started_at_ms},
          {"exit_code", s.exit.code},
          {"signal", s.exit.signal},
          {"oom", s.exit.oom},
          {"exited_at_ms", s.exit.at_ms}};
}

ShimState ReadShimState(const std::string& run_dir) {
  ShimState s;
  auto text = ReadFile(run_dir + "/state.json");
  if (!text.ok()) return s;
  Json j = Json::parse(*text, nullptr, false);
  if (!j.is_object()) return s;
  s.state = j.value("state", "");
  s.shim_pid = j.value("shim_pid", 0);
  s.app_pid = j.value("app_pid", 0);
  s.app_start = j.value("app_start", int64_t{0});
  s.started_at_ms = j.value("started_at_ms", int64_t{0});
  s.exit.code = j.value("exit_code", -1);
  s.exit.signal = j.value("signal", 0);
  s.exit.oom = j.value("oom", false);
  s.exit.at_ms = j.value("exited_at_ms", int64_t{0});
  return s;
}

Result<std::string> ReadFile(const std::string& path) { return Env::Default().ReadFile(path); }

// 0644, the mode these records always had (umask aside).
Status WriteFileAtomic(const std::string& path, const std::string& content) {
  return Env::Default().WriteFileAtomic(path, content, 0644);
}

Json LaunchRecordToJson(const LaunchRecord& r) {
  return {{"shim_pid", r.shim_pid}, {"shim_start", r.shim_start}};
}

LaunchRecord ReadLaunchRecord(const std::string& run_dir) {
  LaunchRecord r;
  auto text = ReadFile(run_dir + "/launch.json");
  if (!text.ok()) return r;
  Json j = Json::parse(*text, nullptr, false);
  if (!j.is_object()) return r;
  r.shim_pid = j.value("shim_pid", 0);
  r.shim_start = j.value("shim_start", int64_t{0});
  return r;
}

int LiveShim(const ShimState& state, const LaunchRecord& launched, const std::string& run_dir,
             const std::string& proc_root) {
  if (IsShim(state.shim_pid, run_dir, proc_root)) return state.shim_pid;
  if (IsSameProcess(launched.shim_pid, launched.shim_start, proc_root)) return launched.shim_pid;
  return 0;
}

bool IsShim(int pid, const std::string& run_dir, const std::string& proc_root) {
  if (pid <= 0) return false;
  auto text = ReadFile(proc_root + "/" + std::to_string(pid) + "/cmdline");
  if (!text.ok() || text->empty()) return false;  // gone, or a zombie (empty cmdline)
  std::vector<std::string> args;
  size_t i = 0;
  while (i < text->size()) {
    size_t j = text->find('\0', i);
    if (j == std::string::npos) j = text->size();
    args.push_back(text->substr(i, j - i));
    i = j + 1;
  }
  return args.size() >= 4 && args[1] == "shim" && args[2] == "--dir" && args[3] == run_dir;
}

int64_t ProcessStartTicks(int pid, const std::string& proc_root) {
  if (pid <= 0) return 0;
  auto text = ReadFile(proc_root + "/" + std::to_string(pid) + "/stat");
  if (!text.ok()) return 0;
  // The command name (field 2) may hold spaces; fields after the last ')' are plain.
  size_t close = text->rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(text->substr(close + 2));
  std::string field;
  // Field 3 is the state; starttime is field 22.
  std::string state;
  rest >> state;
  if (state == "Z" || state == "X") return 0;
  for (int f = 4; f <= 22; ++f) {
    if (!(rest >> field)) return 0;
  }
  try {
    return std::stoll(field);
  } catch (...) {
    return 0;
  }
}

bool IsSameProcess(int pid, int64_t start_ticks, const std::string& proc_root) {
  return pid > 0 && start_ticks > 0 && ProcessStartTicks(pid, proc_root) == start_ticks;
}

std::string RenderTemplate(const std::string& text, const std::map<std::string, std::string>& env) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      size_t end = text.find('}', i + 2);
      if (end != std::string::npos) {
        std::string name = text.substr(i + 2, end - i - 2);
        auto it = env.find(name);
        if (it != env.end()) {
          out += it->second;
          i = end + 1;
          continue;
        }
      }
    }
    out += text[i++];
  }
  return out;
}

}  // namespace berth::runtime::detail
