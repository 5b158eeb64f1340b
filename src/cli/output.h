// Rendering of API responses for people (aligned tables, "key: value" lines) and for scripts
// (the API's JSON, pretty-printed, key order preserved).
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace berth::cli {

// Ordered so `-o json` shows fields in the order the server sent them.
using Json = nlohmann::ordered_json;

enum class OutputFormat { kTable, kJson };

// "table" or "json".
Result<OutputFormat> ParseOutputFormat(std::string_view text);

// kubectl-style table: a header row (as given; callers pass upper case), columns left-aligned
// and separated by three spaces, no trailing spaces, one '\n' per row. Widths count UTF-8 code
// points. Rows shorter than the header are padded with empty cells.
std::string RenderTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows);

// `text` without terminal escape sequences (CSI such as colours, OSC, two-byte escapes) and
// other control characters except '\n' and '\t': what a table cell or a "key: value" line
// may show. Tables and key/value lines apply it to every value.
std::string StripTerminalControls(std::string_view text);

// Pretty JSON (2-space indent) plus '\n'; invalid UTF-8 is replaced, never thrown.
std::string RenderJson(const Json& value);

// One table cell for a JSON value: strings as-is, null/missing as "", numbers and booleans as
// JSON, arrays of scalars joined with ",", other arrays and objects as compact JSON.
std::string Cell(const Json& value);
// Cell(object[key]) or "" when the key is missing or `object` is not an object.
std::string Field(const Json& object, const char* key);

// "key: value" lines with values aligned, for `show`. Nested objects are flattened with dotted
// keys ("quota.memory_mb"); arrays of scalars are joined with ", "; arrays of objects become
// one line per element ("ports[0]: {...}" in compact JSON); empty objects/arrays show "".
std::string RenderKeyValues(const Json& object);

// How many long-running instances a component should have: the sum of its process types'
// counts (`process_types`: web, worker, ...), else its replicas.
int WantedInstances(const Json& component);
// Whether an instance is one of those (not a one-off run's or a release's).
bool IsReplica(const Json& instance);

}  // namespace berth::cli
