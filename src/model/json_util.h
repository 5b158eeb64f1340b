// Strict reading of JSON request bodies: typed getters that name the offending field in
// their error, and a check that rejects fields the resource does not have.
// Thread-safety: a JsonReader is used by one thread; it borrows the JSON it reads.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace berth {

using Json = nlohmann::json;

// How deep arrays and objects may nest in JSON from outside (request bodies, webhook payloads,
// a source's package.json). Nothing berth reads nests deeper than a handful of levels.
inline constexpr int kMaxJsonDepth = 64;

// A linear scan (no recursion, no allocation) that refuses text whose arrays and objects nest
// deeper than `max_depth`, before any parser or recursive copy/dump of a deep value could
// exhaust the stack. Brackets inside strings do not count. Errors: 400 json_too_deep.
Status CheckJsonDepth(std::string_view text, int max_depth = kMaxJsonDepth);

// Parses a request body: it must be a JSON object nested at most kMaxJsonDepth deep.
// Errors: json_too_deep (checked first), invalid_json.
Result<Json> ParseJsonObject(const std::string& body);

// Reads the fields of one JSON object. The first error sticks; later calls do nothing.
// Keys listed in `ignored` (read-only fields such as "revision") are accepted and skipped.
class JsonReader {
 public:
  JsonReader(const Json& object, std::string path, std::set<std::string> ignored = {});

  void Str(const char* key, std::string* out, size_t max_len = 1024);
  void Int(const char* key, int64_t* out, int64_t min, int64_t max);
  void Int(const char* key, int* out, int min, int max);
  void Bool(const char* key, bool* out);
  void Enum(const char* key, std::string* out, std::initializer_list<const char*> allowed);
  // A nested object (absent or null → fn not called).
  void Obj(const char* key, const std::function<void(JsonReader&)>& fn);
  // An array of objects; fn gets each element's reader and index.
  void Arr(const char* key, const std::function<void(JsonReader&, size_t)>& fn,
           size_t max_items = 100);
  // An object of string → string (e.g. env). fn validates each pair.
  void StrMap(const char* key,
              const std::function<void(const std::string&, const std::string&)>& fn,
              size_t max_items = 500);
  // Any JSON value, copied as is.
  void Raw(const char* key, Json* out);
  void Fail(Status s);
  // Rejects keys that no getter asked for. Call last.
  void Finish();

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  // "ports[0].port"
  std::string FieldPath(const std::string& key) const;
  bool Has(const char* key) const;
  const std::string& path() const { return path_; }

 private:
  const Json* Lookup(const char* key);  // nullptr when absent or null; marks key as seen

  const Json& object_;
  std::string path_;
  std::set<std::string> ignored_;
  std::set<std::string> seen_;
  Status status_;
};

}  // namespace berth
