#include "connectors/framework/rest_util.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace tessera::connectors::rest {

using json = nlohmann::json;

std::string Str(const json &j, const char *key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool Bool(const json &j, const char *key, bool def) {
  if (!j.is_object()) return def;
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : def;
}

int64_t Int(const json &j, const char *key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

const json &Obj(const json &j, const char *key) {
  static const json *const kEmpty = new json(json::object());
  if (!j.is_object()) return *kEmpty;
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : *kEmpty;
}

const json &Arr(const json &j, const char *key) {
  static const json *const kEmpty = new json(json::array());
  if (!j.is_object()) return *kEmpty;
  auto it = j.find(key);
  return it != j.end() && it->is_array() ? *it : *kEmpty;
}

std::vector<std::string> StrList(const json &j, const char *key) {
  std::vector<std::string> out;
  for (const json &v : Arr(j, key)) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

bool Has(const json &j, const char *key) {
  if (!j.is_object()) return false;
  auto it = j.find(key);
  return it != j.end() && !it->is_null();
}

std::optional<absl::Time> ParseRfc3339(const std::string &s) {
  absl::Time t;
  std::string err;
  if (s.empty() || !absl::ParseTime(absl::RFC3339_full, s, &t, &err)) return std::nullopt;
  return t;
}

std::string UrlEncode(absl::string_view s, absl::string_view keep) {
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        keep.find(static_cast<char>(c)) != absl::string_view::npos) {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

absl::Status CheckProgress(absl::string_view api, bool page_empty, int *empty_pages) {
  *empty_pages = page_empty ? *empty_pages + 1 : 0;
  if (*empty_pages > kMaxEmptyPages) {
    return absl::UnavailableError(
        absl::StrCat(api, " returned ", *empty_pages, " empty pages in a row; giving up"));
  }
  return absl::OkStatus();
}

}  // namespace tessera::connectors::rest
