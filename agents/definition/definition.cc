#include "agents/definition/definition.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"

namespace tessera::agents {
namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::EnumDescriptor;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::OneofDescriptor;
using Json = ::nlohmann::json;
using ::tessera::v1::AgentDefinition;
using ::tessera::v1::McpServerTool;

// ---------------------------------------------------------------------------------------------
// Problems and paths.

// Collects "<path>: <message>" problems in the order they are found.
class Problems {
 public:
  void Add(absl::string_view path, absl::string_view message) {
    ++count_;
    if (static_cast<int>(items_.size()) < kMaxReportedProblems) {
      items_.push_back(absl::StrCat(path.empty() ? "$" : path, ": ", message));
    }
  }
  bool empty() const { return count_ == 0; }
  absl::Status ToStatus() const {
    if (count_ == 0) return absl::OkStatus();
    std::string message = absl::StrJoin(items_, "; ");
    if (count_ > static_cast<int>(items_.size())) {
      absl::StrAppend(&message, " (and ", count_ - static_cast<int>(items_.size()), " more)");
    }
    return absl::InvalidArgumentError(message);
  }

 private:
  std::vector<std::string> items_;
  int count_ = 0;
};

std::string Field(absl::string_view path, absl::string_view name) {
  return path.empty() ? std::string(name) : absl::StrCat(path, ".", name);
}
std::string Index(absl::string_view path, size_t i) { return absl::StrCat(path, "[", i, "]"); }
std::string Key(absl::string_view path, absl::string_view key) {
  return absl::StrCat(path, "[", Json(std::string(key)).dump(), "]");
}

// Number of Unicode code points of valid UTF-8 (continuation bytes are not counted).
size_t CharCount(absl::string_view s) {
  return std::count_if(s.begin(), s.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

// ---------------------------------------------------------------------------------------------
// JSON syntax: a SAX pass that bounds nesting before anything recursive touches the document.

class DepthGuard {
 public:
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(Json::number_integer_t) { return true; }
  bool number_unsigned(Json::number_unsigned_t) { return true; }
  bool number_float(Json::number_float_t, const std::string&) { return true; }
  bool string(std::string&) { return true; }
  bool binary(Json::binary_t&) { return true; }
  bool start_object(size_t) { return Enter(); }
  bool key(std::string&) { return true; }
  bool end_object() { return Leave(); }
  bool start_array(size_t) { return Enter(); }
  bool end_array() { return Leave(); }
  bool parse_error(size_t, const std::string&, const Json::exception& e) {
    error_ = e.what();
    return false;
  }

  bool too_deep() const { return too_deep_; }
  const std::string& error() const { return error_; }

 private:
  bool Enter() {
    if (++depth_ > kMaxJsonDepth) {
      too_deep_ = true;
      return false;
    }
    return true;
  }
  bool Leave() {
    --depth_;
    return true;
  }

  int depth_ = 0;
  bool too_deep_ = false;
  std::string error_;
};

// Turns nlohmann's "[json.exception.parse_error.101] parse error at line 3, column 5: syntax
// error ..." into "$: not valid JSON at line 3 column 5: syntax error ...".
absl::Status SyntaxError(absl::string_view raw) {
  // nlohmann quotes the bytes it last read, which may be invalid UTF-8; keep the message ASCII.
  std::string ascii;
  for (char c : raw) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      ascii.push_back(c);
    } else {
      absl::StrAppend(&ascii, "\\x", absl::Hex(u, absl::kZeroPad2));
    }
  }
  absl::string_view what = ascii;
  size_t at = what.find("at line ");
  if (at != absl::string_view::npos) {
    absl::string_view rest = what.substr(at);
    size_t comma = rest.find(", column ");
    if (comma != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("$: not valid JSON ", rest.substr(0, comma),
                                                     " column ", rest.substr(comma + 9)));
    }
    return absl::InvalidArgumentError(absl::StrCat("$: not valid JSON ", rest));
  }
  size_t bracket = what.find("] ");
  if (bracket != absl::string_view::npos) what.remove_prefix(bracket + 2);
  return absl::InvalidArgumentError(absl::StrCat("$: not valid JSON: ", what));
}

// ---------------------------------------------------------------------------------------------
// Structure: the parsed JSON checked against the message descriptors.

std::string TypeName(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "boolean";
    case Json::value_t::string:
      return "string";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return "number";
    case Json::value_t::array:
      return "array";
    case Json::value_t::object:
      return "object";
    default:
      return "value";
  }
}

// "string \"many\"", "number 3.5", "array": what was found, short enough for a message.
std::string Describe(const Json& j) {
  if (j.is_array() || j.is_object() || j.is_null()) return TypeName(j);
  std::string shown = j.dump();
  if (shown.size() > 40) shown = absl::StrCat(shown.substr(0, 37), "...");
  return absl::StrCat(TypeName(j), " ", shown);
}

// A JSON string literal of `s`, shortened to about 64 characters.
std::string Quote(const std::string& s) {
  if (s.size() <= 64) return Json(s).dump();
  return absl::StrCat(Json(s.substr(0, 61)).dump(-1, ' ', false, Json::error_handler_t::replace),
                      "...");
}

// Edit distance counting an adjacent transposition ("nmae" for "name") as one edit (optimal
// string alignment). Only called on short keys.
size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min(
          {d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// Lowercase without '_': "mcp_server", "mcpServer" and "MCPServer" all become "mcpserver".
std::string Fold(absl::string_view s) {
  std::string out;
  for (char c : s) {
    if (c != '_') out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// The known field name closest to `key`, spelled in the style of `key`, or "" if none is close.
std::string Suggest(absl::string_view key, const Descriptor* d) {
  if (key.size() > 64) return "";
  const bool snake = absl::StrContains(key, '_');
  const std::string folded = Fold(key);
  std::string best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string& spelled = snake ? f->name() : f->json_name();
    size_t distance = std::min(EditDistance(folded, Fold(f->name())), EditDistance(key, spelled));
    if (distance < best_distance) {
      best_distance = distance;
      best = spelled;
    }
  }
  size_t allowed = std::max<size_t>(1, std::min<size_t>(3, folded.size() / 3));
  return best_distance <= allowed ? best : "";
}

const FieldDescriptor* FindField(const Descriptor* d, absl::string_view key) {
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->json_name() == key || f->name() == key) return f;
  }
  return nullptr;
}

// The proto3 JSON form of a google.protobuf.Duration: "-1.5s", "30s", at most 9 fraction digits.
bool IsDurationString(absl::string_view s) {
  if (!absl::ConsumeSuffix(&s, "s")) return false;
  absl::ConsumePrefix(&s, "-");
  absl::string_view whole = s.substr(0, s.find('.'));
  absl::string_view fraction =
      s.size() > whole.size() ? s.substr(whole.size() + 1) : absl::string_view();
  if (whole.empty() || whole.size() > 12) return false;
  if (s.size() > whole.size() && (fraction.empty() || fraction.size() > 9)) return false;
  auto digits = [](absl::string_view v) {
    return std::all_of(v.begin(), v.end(), [](char c) { return absl::ascii_isdigit(c); });
  };
  if (!digits(whole) || !digits(fraction)) return false;
  int64_t seconds = 0;
  return absl::SimpleAtoi(whole, &seconds) && seconds <= 315576000000;
}

bool IsTimestampString(absl::string_view s) {
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, s, &t, &error)) return false;
  return t >= absl::FromCivil(absl::CivilSecond(1, 1, 1, 0, 0, 0), absl::UTCTimeZone()) &&
         t < absl::FromCivil(absl::CivilSecond(10000, 1, 1, 0, 0, 0), absl::UTCTimeZone());
}

class StructureChecker {
 public:
  explicit StructureChecker(Problems* problems) : problems_(*problems) {}

  void CheckMessage(const Json& j, const Descriptor* d, const std::string& path) {
    if (j.is_null()) return;  // proto3 JSON: null is the default value.
    if (!j.is_object()) {
      problems_.Add(path, absl::StrCat("expected an object, got ", Describe(j)));
      return;
    }
    absl::flat_hash_map<const FieldDescriptor*, std::string> seen;
    absl::flat_hash_map<const OneofDescriptor*, std::string> oneofs_set;
    for (const auto& [key, value] : j.items()) {
      const FieldDescriptor* f = FindField(d, key);
      if (f == nullptr) {
        std::string suggestion = Suggest(key, d);
        problems_.Add(path, absl::StrCat("unknown field ", Quote(key),
                                         suggestion.empty() ? ""
                                                            : absl::StrCat(" (did you mean \"",
                                                                           suggestion, "\"?)")));
        continue;
      }
      const std::string field_path = Field(path, f->json_name());
      auto [it, inserted] = seen.emplace(f, key);
      if (!inserted) {
        problems_.Add(field_path,
                      absl::StrCat("given twice, as \"", it->second, "\" and \"", key, "\""));
        continue;
      }
      if (const OneofDescriptor* o = f->real_containing_oneof(); o != nullptr && !value.is_null()) {
        auto [other, first] = oneofs_set.emplace(o, f->json_name());
        if (!first) {
          problems_.Add(path, absl::StrCat("only one of \"", other->second, "\" and \"",
                                           f->json_name(), "\" may be set"));
          continue;
        }
      }
      CheckField(value, f, field_path);
    }
  }

 private:
  void CheckField(const Json& j, const FieldDescriptor* f, const std::string& path) {
    if (j.is_null()) return;
    if (f->is_map()) {
      if (!j.is_object()) {
        problems_.Add(path, absl::StrCat("expected an object, got ", Describe(j)));
        return;
      }
      const FieldDescriptor* key_field = f->message_type()->map_key();
      const FieldDescriptor* value_field = f->message_type()->map_value();
      for (const auto& [key, value] : j.items()) {
        CheckMapKey(key, key_field, Key(path, key));
        if (value.is_null()) {
          problems_.Add(Key(path, key), "must not be null");
          continue;
        }
        CheckSingular(value, value_field, Key(path, key));
      }
      return;
    }
    if (f->is_repeated()) {
      if (!j.is_array()) {
        problems_.Add(path, absl::StrCat("expected an array, got ", Describe(j)));
        return;
      }
      for (size_t i = 0; i < j.size(); ++i) {
        if (j[i].is_null()) {
          problems_.Add(Index(path, i), "must not be null");
          continue;
        }
        CheckSingular(j[i], f, Index(path, i));
      }
      return;
    }
    CheckSingular(j, f, path);
  }

  void CheckMapKey(const std::string& key, const FieldDescriptor* f, const std::string& path) {
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        return;
      case FieldDescriptor::CPPTYPE_BOOL:
        if (key != "true" && key != "false") problems_.Add(path, "key must be true or false");
        return;
      default:
        CheckInteger(Json(key), f, path);
        return;
    }
  }

  void CheckSingular(const Json& j, const FieldDescriptor* f, const std::string& path) {
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_MESSAGE:
        CheckMessageValue(j, f->message_type(), path);
        return;
      case FieldDescriptor::CPPTYPE_ENUM:
        CheckEnum(j, f->enum_type(), path);
        return;
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_INT64:
      case FieldDescriptor::CPPTYPE_UINT32:
      case FieldDescriptor::CPPTYPE_UINT64:
        CheckInteger(j, f, path);
        return;
      case FieldDescriptor::CPPTYPE_FLOAT:
      case FieldDescriptor::CPPTYPE_DOUBLE:
        CheckFloat(j, f, path);
        return;
      case FieldDescriptor::CPPTYPE_BOOL:
        if (!j.is_boolean()) {
          problems_.Add(path, absl::StrCat("expected true or false, got ", Describe(j)));
        }
        return;
      case FieldDescriptor::CPPTYPE_STRING:
        if (!j.is_string()) {
          problems_.Add(path, absl::StrCat("expected a string, got ", Describe(j)));
        }
        return;
    }
  }

  void CheckMessageValue(const Json& j, const Descriptor* d, const std::string& path) {
    const std::string& type = d->full_name();
    if (type == "google.protobuf.Duration") {
      if (!j.is_string() || !IsDurationString(j.get<std::string>())) {
        problems_.Add(path, absl::StrCat("expected a duration such as \"30s\" or \"1.5s\", got ",
                                         Describe(j)));
      }
      return;
    }
    if (type == "google.protobuf.Timestamp") {
      if (!j.is_string() || !IsTimestampString(j.get<std::string>())) {
        problems_.Add(path,
                      absl::StrCat("expected an RFC 3339 time such as \"2026-01-31T09:00:00Z\", "
                                   "got ",
                                   Describe(j)));
      }
      return;
    }
    if (absl::StartsWith(type, "google.protobuf.")) return;  // Other well-known types: protobuf.
    CheckMessage(j, d, path);
  }

  void CheckEnum(const Json& j, const EnumDescriptor* e, const std::string& path) {
    if (j.is_number_integer()) {
      // Proto3 enums are open: any int32 is kept as an unknown value (validation rejects it).
      if (j.is_number_unsigned() ? j.get<uint64_t>() > INT32_MAX
                                 : (j.get<int64_t>() < INT32_MIN || j.get<int64_t>() > INT32_MAX)) {
        problems_.Add(path, "enum number out of the 32-bit range");
      }
      return;
    }
    std::vector<std::string> names;
    for (int i = 0; i < e->value_count(); ++i) names.push_back(e->value(i)->name());
    if (!j.is_string()) {
      problems_.Add(path, absl::StrCat("expected one of ", absl::StrJoin(names, ", "), ", got ",
                                       Describe(j)));
      return;
    }
    const std::string value = j.get<std::string>();
    if (e->FindValueByName(value) != nullptr) return;
    std::string hint;
    const std::string upper = absl::AsciiStrToUpper(value);
    for (const std::string& name : names) {
      if (!value.empty() && (name == upper || absl::EndsWith(name, absl::StrCat("_", upper)))) {
        hint = absl::StrCat(" (did you mean \"", name, "\"?)");
        break;
      }
    }
    problems_.Add(path, absl::StrCat("unknown value ", Json(value).dump(), hint,
                                     "; expected one of ", absl::StrJoin(names, ", ")));
  }

  void CheckInteger(const Json& j, const FieldDescriptor* f, const std::string& path) {
    const bool is_unsigned = f->cpp_type() == FieldDescriptor::CPPTYPE_UINT32 ||
                             f->cpp_type() == FieldDescriptor::CPPTYPE_UINT64;
    const bool is_64 = f->cpp_type() == FieldDescriptor::CPPTYPE_INT64 ||
                       f->cpp_type() == FieldDescriptor::CPPTYPE_UINT64;
    // The value as a signed or unsigned 64-bit integer, whichever it fits.
    bool ok = true;
    bool negative = false;
    uint64_t magnitude = 0;
    if (j.is_number_unsigned()) {
      magnitude = j.get<uint64_t>();
    } else if (j.is_number_integer()) {
      int64_t v = j.get<int64_t>();
      negative = v < 0;
      magnitude = negative ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
    } else if (j.is_number_float()) {
      double v = j.get<double>();
      if (!std::isfinite(v) || v != std::trunc(v) || std::fabs(v) >= 1.8446744073709552e19) {
        problems_.Add(path, absl::StrCat("expected an integer, got ", Describe(j)));
        return;
      }
      negative = v < 0;
      magnitude = static_cast<uint64_t>(std::fabs(v));
    } else if (j.is_string()) {
      // Proto3 JSON writes 64-bit integers as strings and accepts strings for any integer.
      const std::string s = j.get<std::string>();
      int64_t sv = 0;
      uint64_t uv = 0;
      if (absl::SimpleAtoi(s, &uv) && !absl::StartsWith(s, "+") && !absl::StartsWith(s, " ")) {
        magnitude = uv;
      } else if (absl::SimpleAtoi(s, &sv) && !absl::StartsWith(s, " ")) {
        negative = sv < 0;
        magnitude = negative ? 0 - static_cast<uint64_t>(sv) : static_cast<uint64_t>(sv);
      } else {
        ok = false;
      }
    } else {
      ok = false;
    }
    if (!ok) {
      problems_.Add(path, absl::StrCat("expected an integer, got ", Describe(j)));
      return;
    }
    uint64_t max_positive = is_unsigned ? (is_64 ? UINT64_MAX : UINT32_MAX)
                                        : (is_64 ? static_cast<uint64_t>(INT64_MAX) : INT32_MAX);
    uint64_t max_negative = is_unsigned ? 0 : (is_64 ? uint64_t{1} << 63 : uint64_t{1} << 31);
    if (negative ? magnitude > max_negative : magnitude > max_positive) {
      problems_.Add(path, absl::StrCat("out of range for a ", is_unsigned ? "non-negative " : "",
                                       is_64 ? "64" : "32", "-bit integer: ", Describe(j)));
    }
  }

  void CheckFloat(const Json& j, const FieldDescriptor* f, const std::string& path) {
    double v = 0;
    if (j.is_number()) {
      v = j.get<double>();
    } else if (j.is_string()) {
      const std::string s = j.get<std::string>();
      if (s == "NaN" || s == "Infinity" || s == "-Infinity") return;
      if (!absl::SimpleAtod(s, &v) || s.empty() || absl::ascii_isspace(s.front())) {
        problems_.Add(path, absl::StrCat("expected a number, got ", Describe(j)));
        return;
      }
    } else {
      problems_.Add(path, absl::StrCat("expected a number, got ", Describe(j)));
      return;
    }
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_FLOAT && std::isfinite(v) &&
        std::fabs(v) > std::numeric_limits<float>::max()) {
      problems_.Add(path, absl::StrCat("out of range for a 32-bit float: ", Describe(j)));
    }
  }

  Problems& problems_;
};

// ---------------------------------------------------------------------------------------------
// Semantic validation.

// kExtractiveModelId for absl string functions (absl::string_view is not std::string_view here).
constexpr absl::string_view kExtractive(kExtractiveModelId.data(), kExtractiveModelId.size());

// Whether `d` is a well-formed google.protobuf.Duration (seconds and nanos in range, same sign).
bool DurationWellFormed(const google::protobuf::Duration& d) {
  if (d.seconds() < -315576000000 || d.seconds() > 315576000000) return false;
  if (d.nanos() <= -1000000000 || d.nanos() >= 1000000000) return false;
  return !((d.seconds() > 0 && d.nanos() < 0) || (d.seconds() < 0 && d.nanos() > 0));
}

absl::Duration ToAbsl(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

void CheckToolTimeout(const google::protobuf::Duration& d, const std::string& path, Problems& p) {
  if (!DurationWellFormed(d)) {
    p.Add(path, "not a valid duration (seconds and nanos out of range or of different signs)");
  } else if (ToAbsl(d) < absl::ZeroDuration()) {
    p.Add(path, "must not be negative");
  } else if (ToAbsl(d) > kMaxToolTimeout) {
    p.Add(path, absl::StrCat("must be at most ", absl::FormatDuration(kMaxToolTimeout), " (",
                             absl::ToInt64Seconds(kMaxToolTimeout), "s)"));
  }
}

// "ann@example.com": one '@', a local part, a dotted domain, no spaces or control characters.
bool LooksLikeEmail(absl::string_view s) {
  if (s.size() > 254) return false;
  size_t at = s.find('@');
  if (at == absl::string_view::npos || at == 0 || s.find('@', at + 1) != absl::string_view::npos) {
    return false;
  }
  for (char c : s) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '<' || c == '>' || c == ',' || c == ';') {
      return false;
    }
  }
  absl::string_view domain = s.substr(at + 1);
  if (domain.find('.') == absl::string_view::npos) return false;
  for (absl::string_view label : absl::StrSplit(domain, '.')) {
    if (label.empty()) return false;
  }
  return true;
}

// An absolute http or https URL with a host.
bool IsHttpUrl(absl::string_view url) {
  std::string lower = absl::AsciiStrToLower(url.substr(0, 8));
  absl::string_view rest;
  if (absl::StartsWith(lower, "https://")) {
    rest = url.substr(8);
  } else if (absl::StartsWith(lower, "http://")) {
    rest = url.substr(7);
  } else {
    return false;
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return false;
  }
  absl::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (size_t at = authority.rfind('@'); at != absl::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  absl::string_view host = authority;
  if (absl::StartsWith(authority, "[")) {  // IPv6 literal.
    size_t close = authority.find(']');
    if (close == absl::string_view::npos || close == 1) return false;
    host = authority.substr(0, close + 1);
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() != ':') return false;
  } else if (size_t colon = authority.find(':'); colon != absl::string_view::npos) {
    host = authority.substr(0, colon);
    authority.remove_prefix(colon);
  } else {
    authority = "";
  }
  if (host.empty()) return false;
  if (absl::ConsumePrefix(&authority, ":")) {
    uint32_t port = 0;
    if (authority.empty() || !absl::SimpleAtoi(authority, &port) || port == 0 || port > 65535) {
      return false;
    }
  }
  return true;
}

bool IsServerName(absl::string_view s) {
  if (s.empty() || static_cast<int>(s.size()) > kMaxServerNameChars) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
}

// A name a model can call a tool by: 1 to 64 letters, digits, '_' and '-'.
bool IsToolName(absl::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return absl::ascii_isalnum(c) || c == '_' || c == '-'; });
}

bool IsEnvName(absl::string_view s) {
  if (s.empty() || absl::ascii_isdigit(s.front())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
}

void CheckSampling(const tessera::v1::SamplingParams& s, const std::string& path, Problems& p) {
  if (s.has_temperature() && !(s.temperature() >= 0 && std::isfinite(s.temperature()))) {
    p.Add(Field(path, "temperature"), "must be >= 0");
  }
  if (s.has_top_k() && s.top_k() < 0) p.Add(Field(path, "topK"), "must be >= 0");
  if (s.has_top_p() && !(s.top_p() > 0 && s.top_p() <= 1)) {
    p.Add(Field(path, "topP"), "must be in (0, 1]");
  }
  if (s.has_repetition_penalty() &&
      !(s.repetition_penalty() > 0 && std::isfinite(s.repetition_penalty()))) {
    p.Add(Field(path, "repetitionPenalty"), "must be > 0");
  }
  if (s.max_tokens() < 0) p.Add(Field(path, "maxTokens"), "must be >= 0");
  const std::string stop = Field(path, "stop");
  if (s.stop_size() > kMaxStopSequences) {
    p.Add(stop,
          absl::StrCat("at most ", kMaxStopSequences, " stop sequences, got ", s.stop_size()));
  }
  for (int i = 0; i < s.stop_size(); ++i) {
    if (s.stop(i).empty() || static_cast<int>(s.stop(i).size()) > kMaxStopSequenceBytes) {
      p.Add(Index(stop, i), absl::StrCat("must be 1 to ", kMaxStopSequenceBytes, " bytes"));
    }
  }
}

void CheckKnowledge(const tessera::v1::Knowledge& k, Problems& p) {
  for (int i = 0; i < k.collections_size(); ++i) {
    if (k.collections(i).empty()) p.Add(Index("knowledge.collections", i), "must not be empty");
  }
  if (k.top_k() < 0 || k.top_k() > kMaxTopK) {
    p.Add("knowledge.topK", absl::StrCat("must be in [0, ", kMaxTopK, "]"));
  }
  if (k.has_filters()) {
    const tessera::v1::SearchFilters& f = k.filters();
    if (f.document_ids_size() > 1000) {
      p.Add("knowledge.filters.documentIds", "at most 1000 document ids");
    }
    if (f.has_modified_after() && f.has_modified_before() &&
        (f.modified_after().seconds() > f.modified_before().seconds() ||
         (f.modified_after().seconds() == f.modified_before().seconds() &&
          f.modified_after().nanos() >= f.modified_before().nanos()))) {
      p.Add("knowledge.filters.modifiedBefore", "must be later than modifiedAfter");
    }
  }
  if (k.has_hybrid()) {
    const tessera::v1::HybridParams& h = k.hybrid();
    if (!tessera::v1::FusionMethod_IsValid(h.fusion())) {
      p.Add("knowledge.hybrid.fusion", "unknown fusion method");
    }
    if (h.rrf_k() < 0) p.Add("knowledge.hybrid.rrfK", "must be >= 0");
    if (h.has_vector_weight() && !(h.vector_weight() >= 0 && std::isfinite(h.vector_weight()))) {
      p.Add("knowledge.hybrid.vectorWeight", "must be >= 0");
    }
    if (h.has_bm25_weight() && !(h.bm25_weight() >= 0 && std::isfinite(h.bm25_weight()))) {
      p.Add("knowledge.hybrid.bm25Weight", "must be >= 0");
    }
    if (h.vector_candidates() < 0 || h.vector_candidates() > 1000) {
      p.Add("knowledge.hybrid.vectorCandidates", "must be in [0, 1000]");
    }
    if (h.bm25_candidates() < 0 || h.bm25_candidates() > 1000) {
      p.Add("knowledge.hybrid.bm25Candidates", "must be in [0, 1000]");
    }
    if (h.rerank_candidates() < 0 || h.rerank_candidates() > 200) {
      p.Add("knowledge.hybrid.rerankCandidates", "must be in [0, 200]");
    }
  }
}

void CheckMcpServer(const McpServerTool& s, const std::string& path, bool extractive,
                    absl::flat_hash_map<std::string, std::string>& server_names, Problems& p) {
  if (extractive) {
    p.Add(path, absl::StrCat("MCP tools need a generative model; model \"", kExtractive,
                             "\" cannot call them"));
  }
  const std::string name_path = Field(path, "name");
  if (s.name().empty()) {
    p.Add(name_path, "required");
  } else if (!IsServerName(s.name())) {
    p.Add(name_path, absl::StrCat("must be 1 to ", kMaxServerNameChars,
                                  " characters of letters, digits and '_'"));
  } else if (auto [it, inserted] = server_names.emplace(s.name(), path); !inserted) {
    p.Add(name_path, absl::StrCat("\"", s.name(), "\" is already the name of ", it->second));
  }

  const std::string transport_path = Field(path, "transport");
  const bool stdio = s.transport() == tessera::v1::MCP_TRANSPORT_STDIO;
  const bool http = s.transport() == tessera::v1::MCP_TRANSPORT_STREAMABLE_HTTP;
  if (s.transport() == tessera::v1::MCP_TRANSPORT_UNSPECIFIED) {
    p.Add(transport_path, "required: MCP_TRANSPORT_STDIO or MCP_TRANSPORT_STREAMABLE_HTTP");
  } else if (!stdio && !http) {
    p.Add(transport_path, "must be MCP_TRANSPORT_STDIO or MCP_TRANSPORT_STREAMABLE_HTTP");
  }
  if (stdio) {
    if (s.command().empty()) p.Add(Field(path, "command"), "required for MCP_TRANSPORT_STDIO");
    if (!s.url().empty()) p.Add(Field(path, "url"), "not allowed with MCP_TRANSPORT_STDIO");
    if (s.has_auth()) p.Add(Field(path, "auth"), "not allowed with MCP_TRANSPORT_STDIO");
  }
  if (http) {
    if (s.url().empty()) {
      p.Add(Field(path, "url"), "required for MCP_TRANSPORT_STREAMABLE_HTTP");
    } else if (!IsHttpUrl(s.url())) {
      p.Add(Field(path, "url"), "must be an http or https URL");
    }
    const absl::string_view why = "not allowed with MCP_TRANSPORT_STREAMABLE_HTTP";
    if (!s.command().empty()) p.Add(Field(path, "command"), why);
    if (s.args_size() > 0) p.Add(Field(path, "args"), why);
    if (!s.env().empty()) p.Add(Field(path, "env"), why);
    if (!s.secret_env().empty()) p.Add(Field(path, "secretEnv"), why);
    if (!s.cwd().empty()) p.Add(Field(path, "cwd"), why);
  }
  if (stdio) {
    // Map iteration order is unspecified; sort so that messages are stable.
    std::vector<std::string> env_names;
    for (const auto& [k, v] : s.env()) env_names.push_back(k);
    std::sort(env_names.begin(), env_names.end());
    for (const std::string& k : env_names) {
      if (!IsEnvName(k)) {
        p.Add(Key(Field(path, "env"), k), "not a valid environment variable name");
      }
    }
    std::vector<std::string> secret_names;
    for (const auto& [k, v] : s.secret_env()) secret_names.push_back(k);
    std::sort(secret_names.begin(), secret_names.end());
    for (const std::string& k : secret_names) {
      const std::string key_path = Key(Field(path, "secretEnv"), k);
      if (!IsEnvName(k)) p.Add(key_path, "not a valid environment variable name");
      if (s.secret_env().at(k).empty()) p.Add(key_path, "must name a credential");
      if (s.env().count(k) > 0) p.Add(key_path, "also set in env");
    }
  }
  if (s.has_auth()) {
    const std::string auth_path = Field(path, "auth");
    if (s.auth().has_bearer() && s.auth().bearer().credential_ref().empty()) {
      p.Add(Field(auth_path, "bearer.credentialRef"), "required");
    }
    if (s.auth().has_oauth()) {
      if (s.auth().oauth().credential_ref().empty()) {
        p.Add(Field(auth_path, "oauth.credentialRef"), "required");
      }
      for (int i = 0; i < s.auth().oauth().scopes_size(); ++i) {
        if (s.auth().oauth().scopes(i).empty()) {
          p.Add(Index(Field(auth_path, "oauth.scopes"), i), "must not be empty");
        }
      }
    }
  }

  absl::flat_hash_set<std::string> allowed;
  for (int i = 0; i < s.allowed_tools_size(); ++i) {
    if (s.allowed_tools(i).empty()) {
      p.Add(Index(Field(path, "allowedTools"), i), "must not be empty");
    }
    allowed.insert(s.allowed_tools(i));
  }
  for (int i = 0; i < s.confirm_tools_size(); ++i) {
    const std::string& tool = s.confirm_tools(i);
    const std::string tool_path = Index(Field(path, "confirmTools"), i);
    if (tool.empty()) {
      p.Add(tool_path, "must not be empty");
    } else if (tool != "*" && !allowed.empty() && !allowed.contains(tool)) {
      p.Add(tool_path, absl::StrCat("\"", tool, "\" is not in allowedTools"));
    }
  }
  if (s.has_timeout()) CheckToolTimeout(s.timeout(), Field(path, "timeout"), p);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

absl::StatusOr<AgentDefinition> ParseAgentDefinitionJson(std::string_view input) {
  const absl::string_view json(input.data(), input.size());
  if (json.size() > kMaxDefinitionBytes) {
    return absl::InvalidArgumentError(absl::StrCat("$: the definition is ", json.size(),
                                                   " bytes; at most ", kMaxDefinitionBytes,
                                                   " are allowed"));
  }
  if (std::all_of(json.begin(), json.end(), [](char c) { return absl::ascii_isspace(c); })) {
    return absl::InvalidArgumentError("$: empty document; expected a JSON object");
  }
  // nlohmann reports problems with exceptions; this is the one place they are caught.
  Json document;
  try {
    DepthGuard guard;
    if (!Json::sax_parse(json, &guard)) {
      if (guard.too_deep()) {
        return absl::InvalidArgumentError(
            absl::StrCat("$: JSON nested deeper than ", kMaxJsonDepth, " levels"));
      }
      return SyntaxError(guard.error());
    }
    document = Json::parse(json);
  } catch (const Json::exception& e) {
    return SyntaxError(e.what());
  }
  if (!document.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("$: expected a JSON object, got ", Describe(document)));
  }

  Problems problems;
  StructureChecker(&problems).CheckMessage(document, AgentDefinition::descriptor(), "");
  if (!problems.empty()) return problems.ToStatus();

  AgentDefinition definition;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const std::string normalized = document.dump();
  google::protobuf::util::Status status =
      google::protobuf::util::JsonStringToMessage(normalized, &definition, options);
  if (!status.ok()) {
    // The structure check should have caught everything protobuf rejects.
    return absl::InvalidArgumentError(absl::StrCat("$: ", std::string(status.message())));
  }
  return definition;
}

absl::Status ValidateAgentDefinition(const AgentDefinition& d) {
  Problems p;
  if (d.name().empty()) {
    p.Add("name", "required");
  } else if (CharCount(d.name()) > kMaxNameChars) {
    p.Add("name",
          absl::StrCat("at most ", kMaxNameChars, " characters, got ", CharCount(d.name())));
  }
  if (CharCount(d.description()) > kMaxDescriptionChars) {
    p.Add("description", absl::StrCat("at most ", kMaxDescriptionChars, " characters, got ",
                                      CharCount(d.description())));
  }
  const bool extractive = IsExtractive(d);
  if (d.model().empty()) {
    p.Add("model", absl::StrCat("required: a generation model id, or \"", kExtractive,
                                "\" to answer with passages of the knowledge"));
  }
  if (d.has_completion_args()) CheckSampling(d.completion_args(), "completionArgs", p);
  if (d.has_knowledge()) CheckKnowledge(d.knowledge(), p);
  if (extractive && d.knowledge().collections().empty()) {
    p.Add("knowledge.collections", absl::StrCat("required with model \"", kExtractive, "\""));
  }

  if (d.tools_size() > kMaxTools) {
    p.Add("tools", absl::StrCat("at most ", kMaxTools, " tools, got ", d.tools_size()));
  }
  std::string knowledge_tool;  // Path of the first knowledgeSearch tool.
  absl::flat_hash_map<std::string, std::string> server_names;
  for (int i = 0; i < d.tools_size(); ++i) {
    const tessera::v1::Tool& tool = d.tools(i);
    const std::string path = Index("tools", i);
    switch (tool.kind_case()) {
      case tessera::v1::Tool::kKnowledgeSearch: {
        const std::string ks = Field(path, "knowledgeSearch");
        if (!knowledge_tool.empty()) {
          p.Add(ks, absl::StrCat("only one knowledgeSearch tool is allowed; ", knowledge_tool,
                                 " is one already"));
        } else {
          knowledge_tool = path;
        }
        if (d.knowledge().collections().empty()) {
          p.Add(ks, "requires knowledge.collections");
        }
        const std::string& name = tool.knowledge_search().name();
        if (!name.empty() && !IsToolName(name)) {
          p.Add(Field(ks, "name"), "must be 1 to 64 characters of letters, digits, '_' and '-'");
        }
        break;
      }
      case tessera::v1::Tool::kMcpServer:
        CheckMcpServer(tool.mcp_server(), Field(path, "mcpServer"), extractive, server_names, p);
        break;
      case tessera::v1::Tool::KIND_NOT_SET:
        p.Add(path, "must set knowledgeSearch or mcpServer");
        break;
    }
  }

  if (d.max_iterations() < 0 || d.max_iterations() > kMaxIterations) {
    p.Add("maxIterations", absl::StrCat("must be in [0, ", kMaxIterations, "] (0 means ",
                                        kDefaultMaxIterations, ")"));
  }
  if (d.has_tool_timeout()) CheckToolTimeout(d.tool_timeout(), "toolTimeout", p);
  if (d.starter_messages_size() > kMaxStarterMessages) {
    p.Add("starterMessages", absl::StrCat("at most ", kMaxStarterMessages, " messages, got ",
                                          d.starter_messages_size()));
  }
  for (int i = 0; i < d.starter_messages_size(); ++i) {
    if (d.starter_messages(i).empty()) p.Add(Index("starterMessages", i), "must not be empty");
  }
  for (int i = 0; i < d.sharing().users_size(); ++i) {
    if (!LooksLikeEmail(d.sharing().users(i))) {
      p.Add(Index("sharing.users", i),
            absl::StrCat("\"", d.sharing().users(i), "\" is not an email address"));
    }
  }
  for (int i = 0; i < d.sharing().groups_size(); ++i) {
    if (!LooksLikeEmail(d.sharing().groups(i))) {
      p.Add(Index("sharing.groups", i),
            absl::StrCat("\"", d.sharing().groups(i), "\" is not an email address"));
    }
  }
  return p.ToStatus();
}

absl::StatusOr<AgentDefinition> ParseAndValidateAgentDefinitionJson(std::string_view json) {
  absl::StatusOr<AgentDefinition> d = ParseAgentDefinitionJson(json);
  if (!d.ok()) return d.status();
  if (absl::Status s = ValidateAgentDefinition(*d); !s.ok()) return s;
  return d;
}

std::string AgentDefinitionToJson(const AgentDefinition& d) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.preserve_proto_field_names = false;
  std::string compact;
  google::protobuf::util::Status status =
      google::protobuf::util::MessageToJsonString(d, &compact, options);
  // Printing fails only on values no parse produces (e.g. a Duration out of range in a message
  // built in code); say so in the JSON rather than print nothing.
  if (!status.ok()) {
    return Json{{"error", absl::StrCat("cannot print the definition: ", status.ToString())}}.dump(
               2) +
           "\n";
  }
  // Re-indent with two spaces, keeping protobuf's field order (ordered_json).
  nlohmann::ordered_json parsed =
      nlohmann::ordered_json::parse(compact, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return compact + "\n";
  return parsed.dump(2) + "\n";
}

int EffectiveMaxIterations(const AgentDefinition& d) {
  return d.max_iterations() > 0 ? d.max_iterations() : kDefaultMaxIterations;
}

absl::Duration EffectiveToolTimeout(const AgentDefinition& d, const McpServerTool* server) {
  if (server != nullptr && server->has_timeout() &&
      ToAbsl(server->timeout()) > absl::ZeroDuration()) {
    return ToAbsl(server->timeout());
  }
  if (d.has_tool_timeout() && ToAbsl(d.tool_timeout()) > absl::ZeroDuration()) {
    return ToAbsl(d.tool_timeout());
  }
  return kDefaultToolTimeout;
}

bool CitationsEnabled(const AgentDefinition& d) {
  return !d.has_citations_enabled() || d.citations_enabled();
}

int EffectiveTopK(const AgentDefinition& d) {
  return d.knowledge().top_k() > 0 ? d.knowledge().top_k() : kDefaultTopK;
}

bool IsExtractive(const AgentDefinition& d) { return d.model() == kExtractiveModelId; }

}  // namespace tessera::agents
