#include "builder/auto_port.h"

namespace berth::builder {
namespace {

std::string Text(const Json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

std::string PortList(const Json& ports) {
  std::string out;
  for (const Json& p : ports) {
    if (p.is_object()) out += (out.empty() ? "" : ", ") + std::to_string(p.value("port", 0));
  }
  return out;
}

}  // namespace

AutoPortPlan PlanAutoPort(const Json& detect, const Json& component) {
  AutoPortPlan plan;
  const Json ports = component.is_object() && component.contains("ports") && component["ports"].is_array()
                         ? component["ports"]
                         : Json::array();
  plan.ports = ports;
  bool declared = false, automatic = false;
  for (const Json& p : ports) {
    (p.is_object() && p.value("auto", false) ? automatic : declared) = true;
  }
  const std::string kind = Text(component, "kind");
  if (kind == "job" || kind == "cronjob") {
    plan.reason = "a " + kind + " gets no automatic port (its runs are not routed)";
    return plan;
  }
  if (declared) {
    plan.reason = "the component declares port(s) " + PortList(ports) +
                  ": those are routed, no automatic port";
    return plan;
  }
  if (!Text(component, "version").empty()) {
    plan.reason = "the component is pinned to " + Text(component, "version") +
                  ": its ports stay as they are until it follows the newest version";
    return plan;
  }
  const std::string serves = Text(detect, "serves_http");
  const int port = detect.is_object() && detect.contains("port") && detect["port"].is_number_integer()
                       ? detect["port"].get<int>()
                       : 0;
  const bool has_web = detect.is_object() && detect.contains("processes") &&
                       detect["processes"].is_object() && detect["processes"].contains("web");
  if (serves.empty() || port <= 0 || port > 65535) {
    plan.change = automatic;
    plan.ports = Json::array();
    plan.reason = std::string(has_web ? "no sign that the web process serves HTTP (it neither "
                                        "reads PORT nor listens)"
                                      : "no web process") +
                  ": no port published" +
                  (automatic ? " (the automatic port " + PortList(ports) + " is removed)" : "") +
                  "; declare one with --port if it serves";
    return plan;
  }
  plan.ports = Json::array({{{"port", port},
                             {"protocol", "http"},
                             {"inner", true},
                             {"outer", true},
                             {"name", ""},
                             {"auto", true}}});
  plan.change = ports != plan.ports;
  plan.reason = "no port declared and " + serves + " serves HTTP: port " + std::to_string(port) +
                " published automatically with the default domain (the process listens on "
                "$PORT; --port overrides)";
  return plan;
}

}  // namespace berth::builder
