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

std::string RenderTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows) {
  size_t cols = headers.size();
  for (const auto& r : rows) cols = std::max(cols, r.size());
  std::vector<size_t> width(cols, 0);
  auto measure = [&](const std::vector<std::string>& r) {
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], Width(r[i]));
  };
  measure(headers);
  for (const auto& r : rows) measure(r);
  std::string out;
  auto line = [&](const std::vector<std::string>& r) {
    std::string l;
    for (size_t i = 0; i < cols; ++i) {
      std::string_view cell = i < r.size() ? std::string_view(r[i]) : std::string_view();
      // Newlines or tabs inside a cell would break the columns for people and for awk.
      std::string clean(cell);
      std::replace(clean.begin(), clean.end(), '\n', ' ');
      std::replace(clean.begin(), clean.end(), '\t', ' ');
      l += clean;
      if (i + 1 < cols) l.append(width[i] - Width(clean) + 3, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  };
  line(headers);
  for (const auto& r : rows) line(r);
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
  for (const auto& [k, v] : lines) {
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

}  // namespace berth::cli
