#include "model/json_util.h"

namespace berth {

Status CheckJsonDepth(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        return Status(Code::kInvalidArgument, "json_too_deep",
                      "the JSON nests arrays and objects more than " + std::to_string(max_depth) +
                          " levels deep");
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return Status::Ok();
}

Result<Json> ParseJsonObject(const std::string& body) {
  BERTH_RETURN_IF_ERROR(CheckJsonDepth(body));
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Status(Code::kInvalidArgument, "invalid_json", "request body is not valid JSON");
  }
  if (!j.is_object()) {
    return Status(Code::kInvalidArgument, "invalid_json", "request body must be a JSON object");
  }
  return j;
}

JsonReader::JsonReader(const Json& object, std::string path, std::set<std::string> ignored)
    : object_(object), path_(std::move(path)), ignored_(std::move(ignored)) {
  if (!object_.is_object()) {
    status_ = InvalidArgument((path_.empty() ? std::string("value") : path_) +
                                  " must be a JSON object",
                              path_);
  }
}

std::string JsonReader::FieldPath(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

bool JsonReader::Has(const char* key) const {
  if (!object_.is_object()) return false;
  auto it = object_.find(key);
  return it != object_.end() && !it->is_null();
}

const Json* JsonReader::Lookup(const char* key) {
  if (!ok()) return nullptr;
  seen_.insert(key);
  auto it = object_.find(key);
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

void JsonReader::Fail(Status s) {
  if (status_.ok()) status_ = std::move(s);
}

void JsonReader::Str(const char* key, std::string* out, size_t max_len) {
  const Json* v = Lookup(key);
  if (!v) return;
  if (!v->is_string()) return Fail(InvalidArgument(FieldPath(key) + " must be a string", FieldPath(key)));
  const auto& s = v->get_ref<const std::string&>();
  if (s.size() > max_len) {
    return Fail(InvalidArgument(FieldPath(key) + " is longer than " + std::to_string(max_len) +
                                    " bytes",
                                FieldPath(key)));
  }
  *out = s;
}

void JsonReader::Int(const char* key, int64_t* out, int64_t min, int64_t max) {
  const Json* v = Lookup(key);
  if (!v) return;
  if (!v->is_number_integer()) {
    return Fail(InvalidArgument(FieldPath(key) + " must be an integer", FieldPath(key)));
  }
  int64_t x = v->is_number_unsigned() && v->get<uint64_t>() > INT64_MAX ? INT64_MAX
                                                                         : v->get<int64_t>();
  if (x < min || x > max) {
    return Fail(InvalidArgument(FieldPath(key) + " must be between " + std::to_string(min) +
                                    " and " + std::to_string(max) + ", got " + std::to_string(x),
                                FieldPath(key)));
  }
  *out = x;
}

void JsonReader::Int(const char* key, int* out, int min, int max) {
  int64_t x = *out;
  Int(key, &x, min, max);
  *out = static_cast<int>(x);
}

void JsonReader::Bool(const char* key, bool* out) {
  const Json* v = Lookup(key);
  if (!v) return;
  if (!v->is_boolean()) {
    return Fail(InvalidArgument(FieldPath(key) + " must be true or false", FieldPath(key)));
  }
  *out = v->get<bool>();
}

void JsonReader::Enum(const char* key, std::string* out,
                      std::initializer_list<const char*> allowed) {
  std::string s = *out;
  Str(key, &s, 64);
  if (!ok()) return;
  std::string list;
  for (const char* a : allowed) {
    if (s == a) {
      *out = s;
      return;
    }
    list += list.empty() ? a : std::string(", ") + a;
  }
  Fail(InvalidArgument(FieldPath(key) + " must be one of " + list + ", got \"" + s.substr(0, 64) +
                           "\"",
                       FieldPath(key)));
}

void JsonReader::Obj(const char* key, const std::function<void(JsonReader&)>& fn) {
  const Json* v = Lookup(key);
  if (!v) return;
  JsonReader sub(*v, FieldPath(key));
  if (sub.ok()) {
    fn(sub);
    sub.Finish();
  }
  if (!sub.ok()) Fail(sub.status());
}

void JsonReader::Arr(const char* key, const std::function<void(JsonReader&, size_t)>& fn,
                     size_t max_items) {
  const Json* v = Lookup(key);
  if (!v) return;
  if (!v->is_array()) return Fail(InvalidArgument(FieldPath(key) + " must be an array", FieldPath(key)));
  if (v->size() > max_items) {
    return Fail(InvalidArgument(FieldPath(key) + " has more than " + std::to_string(max_items) +
                                    " items",
                                FieldPath(key)));
  }
  for (size_t i = 0; i < v->size() && ok(); ++i) {
    JsonReader sub((*v)[i], FieldPath(key) + "[" + std::to_string(i) + "]");
    if (sub.ok()) {
      fn(sub, i);
      sub.Finish();
    }
    if (!sub.ok()) Fail(sub.status());
  }
}

void JsonReader::StrMap(const char* key,
                        const std::function<void(const std::string&, const std::string&)>& fn,
                        size_t max_items) {
  const Json* v = Lookup(key);
  if (!v) return;
  if (!v->is_object()) {
    return Fail(InvalidArgument(FieldPath(key) + " must be an object of strings", FieldPath(key)));
  }
  if (v->size() > max_items) {
    return Fail(InvalidArgument(FieldPath(key) + " has more than " + std::to_string(max_items) +
                                    " entries",
                                FieldPath(key)));
  }
  for (auto it = v->begin(); it != v->end() && ok(); ++it) {
    if (it->is_null()) continue;  // merge-patch removal already applied; tolerate
    if (!it->is_string()) {
      return Fail(InvalidArgument(FieldPath(key) + "." + it.key() + " must be a string",
                                  FieldPath(key) + "." + it.key()));
    }
    fn(it.key(), it->get_ref<const std::string&>());
  }
}

void JsonReader::Raw(const char* key, Json* out) {
  const Json* v = Lookup(key);
  if (v) *out = *v;
}

void JsonReader::Finish() {
  if (!ok()) return;
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    if (seen_.count(it.key()) || ignored_.count(it.key())) continue;
    return Fail(UnknownField(FieldPath(it.key())));
  }
}

}  // namespace berth
