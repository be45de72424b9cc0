#include "engine/chat/json_util.h"

#include <exception>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tessera::engine::chat_internal {
namespace {

// Deepest bracket nesting in `text`, counting only brackets outside strings.
int MaxDepth(absl::string_view text) {
  int depth = 0;
  int max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++depth;
      if (depth > max_depth) max_depth = depth;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

void AppendString(const std::string& s, std::string* out) {
  out->append(Json(s).dump(-1, ' ', false, Json::error_handler_t::replace));
}

void AppendPython(const Json& value, std::string* out) {
  switch (value.type()) {
    case Json::value_t::object: {
      out->push_back('{');
      bool first = true;
      for (const auto& [key, item] : value.items()) {
        if (!first) out->append(", ");
        first = false;
        AppendString(key, out);
        out->append(": ");
        AppendPython(item, out);
      }
      out->push_back('}');
      break;
    }
    case Json::value_t::array: {
      out->push_back('[');
      bool first = true;
      for (const auto& item : value) {
        if (!first) out->append(", ");
        first = false;
        AppendPython(item, out);
      }
      out->push_back(']');
      break;
    }
    default:
      out->append(value.dump(-1, ' ', false, Json::error_handler_t::replace));
  }
}

}  // namespace

absl::StatusOr<Json> ParseJson(absl::string_view text, absl::string_view what) {
  if (MaxDepth(text) > kMaxJsonDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": not valid JSON (nested deeper than ", kMaxJsonDepth, " levels)"));
  }
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not valid JSON (", e.what(), ")"));
  }
}

std::string DumpCompact(const Json& value) {
  // Depth was bounded at parse time; dump() cannot throw with the replace handler.
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string DumpPython(const Json& value) {
  std::string out;
  AppendPython(value, &out);
  return out;
}

size_t JsonValueExtent(absl::string_view text) {
  if (text.empty()) return 0;
  if (text[0] != '[' && text[0] != '{' && text[0] != '"') {
    // A number or literal: runs to the first delimiter.
    size_t i = 0;
    while (i < text.size() && text[i] != ',' && text[i] != ']' && text[i] != '}' &&
           text[i] != ' ' && text[i] != '\n' && text[i] != '\t' && text[i] != '\r') {
      ++i;
    }
    return i;  // a scalar the parser will judge, complete or not
  }
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
        if (depth == 0) return i + 1;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      if (--depth == 0) return i + 1;
    }
  }
  return 0;
}

}  // namespace tessera::engine::chat_internal
