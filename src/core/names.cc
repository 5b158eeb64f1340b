#include "core/names.h"

namespace berth {
namespace {

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s.substr(0, 80)) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\') {
      out += '?';
    } else {
      out += c;
    }
  }
  if (s.size() > 80) out += "...";
  return out + "\"";
}

}  // namespace

Status ValidateDnsLabel(std::string_view name, std::string_view what, std::string field) {
  auto bad = [&](std::string_view why) {
    return InvalidName(std::string(what) + " " + Quote(name) + " is not valid: " +
                           std::string(why) +
                           " (use lower-case letters, digits and '-', start with a letter, "
                           "at most 63 characters)",
                       std::move(field));
  };
  if (name.empty()) return bad("it is empty");
  if (name.size() > 63) return bad("it is longer than 63 characters");
  if (!IsLower(name.front())) return bad("it must start with a lower-case letter");
  if (name.back() == '-') return bad("it must not end with '-'");
  for (char c : name) {
    if (!IsLower(c) && !IsDigit(c) && c != '-') return bad("it contains a character not allowed");
  }
  return Status::Ok();
}

Status ValidateUserName(std::string_view name, std::string field) {
  auto bad = [&](std::string_view why) {
    return InvalidName("user name " + Quote(name) + " is not valid: " + std::string(why) +
                           " (use lower-case letters, digits, '.', '_' and '-', start with a "
                           "letter, at most 63 characters)",
                       std::move(field));
  };
  if (name.empty()) return bad("it is empty");
  if (name.size() > 63) return bad("it is longer than 63 characters");
  if (!IsLower(name.front())) return bad("it must start with a lower-case letter");
  char last = name.back();
  if (last == '.' || last == '_' || last == '-') return bad("it must end with a letter or digit");
  for (char c : name) {
    if (!IsLower(c) && !IsDigit(c) && c != '-' && c != '.' && c != '_') {
      return bad("it contains a character not allowed");
    }
  }
  return Status::Ok();
}

Status ValidateEnvName(std::string_view name, std::string field) {
  bool ok = !name.empty() && name.size() <= 255 && !IsDigit(name.front());
  for (char c : name) {
    if (!(IsLower(c) || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '_')) ok = false;
  }
  if (ok) return Status::Ok();
  return InvalidArgument("environment variable name " + Quote(name) +
                             " is not valid: use letters, digits and '_', not starting with a "
                             "digit",
                         std::move(field));
}

Status ValidateRelativePath(std::string_view path, std::string field) {
  auto unsafe = [&](std::string m) {
    return Status(Code::kInvalidArgument, "unsafe_path", std::move(m), field);
  };
  if (path.empty()) return InvalidArgument("path is empty", std::move(field));
  if (path.size() > 1024) return InvalidArgument("path is longer than 1024 bytes", std::move(field));
  if (path.front() == '/') {
    return unsafe("path " + Quote(path) + " must be relative to the instance directory");
  }
  if (path.find('\0') != std::string_view::npos) return unsafe("path contains a NUL byte");
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(start, end - start) == "..") {
      return unsafe("path " + Quote(path) + " must not contain '..'");
    }
    start = end + 1;
  }
  return Status::Ok();
}

size_t Utf8SequenceLength(std::string_view s, size_t i) {
  if (i >= s.size()) return 0;
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  unsigned char c = b(0);
  if (c < 0x80) return 1;
  size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xc0) != 0x80) return 0;
  }
  if (c == 0xe0 && b(1) < 0xa0) return 0;  // overlong
  if (c == 0xed && b(1) > 0x9f) return 0;  // UTF-16 surrogates
  if (c == 0xf0 && b(1) < 0x90) return 0;  // overlong
  if (c == 0xf4 && b(1) > 0x8f) return 0;  // above U+10FFFF
  return n;
}

bool IsPrintableUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return false;
    size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

}  // namespace berth
