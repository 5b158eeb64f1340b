#include "cli/output.h"

#include <algorithm>
#include <utility>

namespace berth::cli {
namespace {

// Display width, counting UTF-8 code points (continuation bytes do not add width).
size_t Width(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string Dump(const Json& v, int indent = -1) {
  return v.dump(indent, ' ', false, Json::error_handler_t::replace);
}

bool IsScalar(const Json& v) { return !v.is_object() && !v.is_array(); }

void Flatten(const std::string& prefix, const Json& v,
             std::vector<std::pair<std::string, std::string>>* out) {
  if (v.is_object() && !v.empty()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      Flatten(prefix.empty() ? it.key() : prefix + "." + it.key(), it.value(), out);
    }
    return;
  }
  if (v.is_array() && !v.empty() && !std::all_of(v.begin(), v.end(), IsScalar)) {
    for (size_t i = 0; i < v.size(); ++i) {
      out->emplace_back(prefix + "[" + std::to_string(i) + "]", Cell(v[i]));
    }
    return;
  }
  if (v.is_array()) {
    std::string joined;
    for (const auto& e : v) joined += (joined.empty() ? "" : ", ") + Cell(e);
    out->emplace_back(prefix, joined);
    return;
  }
  out->emplace_back(prefix, v.is_object() ? "" : Cell(v));
}

}  // namespace

Result<OutputFormat> ParseOutputFormat(std::string_view text) {
  if (text == "table" || text.empty()) return OutputFormat::kTable;
  if (text == "json") return OutputFormat::kJson;
  return InvalidArgument("unknown output format \"" + std::string(text) +
                             "\": use table or json",
                         "output");
}

std::string StripTerminalControls(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == 0x1b) {  // ESC: skip the whole sequence
      if (i + 1 >= text.size()) break;
      char kind = text[i + 1];
      if (kind == '[') {  // CSI: parameters, then one final byte 0x40-0x7e
        size_t j = i + 2;
        while (j < text.size() && !(text[j] >= 0x40 && text[j] <= 0x7e)) ++j;
        i = j;
      } else if (kind == ']') {  // OSC: up to BEL or ESC '\\'
        size_t j = i + 2;
        while (j < text.size() && text[j] != '\a' &&
               !(text[j] == 0x1b && j + 1 < text.size() && text[j + 1] == '\\')) {
          ++j;
        }
        i = (j < text.size() && text[j] == 0x1b) ? j + 1 : j;
      } else {
        i += 1;  // a two-byte escape
      }
      continue;
    }
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) continue;
    out += static_cast<char>(c);
  }
  return out;
}

std::string RenderTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows) {
  size_t cols = headers.size();
  for (const auto& r : rows) cols = std::max(cols, r.size());
  // Newlines or tabs inside a cell would break the columns for people and for awk; escape
  // sequences (a tool's colours, or text an app chose) would print raw or repaint the terminal.
  auto clean_row = [cols](const std::vector<std::string>& r) {
    std::vector<std::string> c(cols);
    for (size_t i = 0; i < r.size(); ++i) {
      c[i] = StripTerminalControls(r[i]);
      std::replace(c[i].begin(), c[i].end(), '\n', ' ');
      std::replace(c[i].begin(), c[i].end(), '\t', ' ');
    }
    return c;
  };
  std::vector<std::vector<std::string>> cells;
  cells.push_back(clean_row(headers));
  for (const auto& r : rows) cells.push_back(clean_row(r));
  std::vector<size_t> width(cols, 0);
  for (const auto& r : cells) {
    for (size_t i = 0; i < cols; ++i) width[i] = std::max(width[i], Width(r[i]));
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& r) {
    std::string l;
    for (size_t i = 0; i < cols; ++i) {
      const std::string& clean = r[i];
      l += clean;
      if (i + 1 < cols) l.append(width[i] - Width(clean) + 3, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  };
  for (const auto& r : cells) line(r);
  return out;
}

std::string RenderJson(const Json& value) { return Dump(value, 2) + "\n"; }

std::string Cell(const Json& value) {
  if (value.is_null()) return "";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_array() && std::all_of(value.begin(), value.end(), IsScalar)) {
    std::string joined;
    for (const auto& e : value) joined += (joined.empty() ? "" : ",") + Cell(e);
    return joined;
  }
  return Dump(value);
}

std::string Field(const Json& object, const char* key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  return it == object.end() ? "" : Cell(*it);
}

std::string RenderKeyValues(const Json& object) {
  std::vector<std::pair<std::string, std::string>> lines;
  Flatten("", object, &lines);
  size_t w = 0;
  for (const auto& [k, v] : lines) w = std::max(w, Width(k));
  std::string out;
  for (auto& [k, v] : lines) {
    v = StripTerminalControls(v);
    std::string l = k + ":";
    if (!v.empty()) {
      l.append(w - Width(k) + 1, ' ');
      // Multi-line values (build logs, config content) continue indented under the value.
      std::string indented;
      for (char c : v) {
        indented += c;
        if (c == '\n') indented.append(w + 2, ' ');
      }
      l += indented;
    }
    out += l + "\n";
  }
  return out;
}

int WantedInstances(const Json& component) {
  const Json types = component.is_object() ? component.value("process_types", Json::object())
                                           : Json::object();
  if (!types.is_object() || types.empty()) return component.value("replicas", 0);
  int want = 0;
  for (const auto& [type, n] : types.items()) want += n.is_number_integer() ? n.get<int>() : 0;
  return want;
}

bool IsReplica(const Json& instance) {
  const std::string p = instance.is_object() ? instance.value("process", "") : "";
  return p != "run" && p != "release";
}

}  // namespace berth::cli
