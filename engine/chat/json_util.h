// The one adapter between engine/chat and nlohmann::json (which throws): parsing that returns
// absl::Status instead, with a nesting limit so hostile input cannot exhaust the stack, and the
// two serialisations the chat formats need: compact JSON, and the spacing of Python's
// json.dumps(..., ensure_ascii=False) (", " and ": "), which Mistral prompts are rendered with.
// Private to engine/chat. Stateless and thread-safe.
#ifndef TESSERA_ENGINE_CHAT_JSON_UTIL_H_
#define TESSERA_ENGINE_CHAT_JSON_UTIL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace tessera::engine::chat_internal {

// Objects keep the order of their keys as written (Python dicts do too, and prompts must match).
using Json = nlohmann::ordered_json;

// Deepest nesting of arrays and objects accepted anywhere.
inline constexpr int kMaxJsonDepth = 128;

// Parses `text` as one JSON value (surrounding whitespace allowed). INVALID_ARGUMENT with the
// parser's position on bad input or nesting deeper than kMaxJsonDepth; `what` names the field
// in the message ("messages[2].tool_calls[0].function.arguments").
[[nodiscard]] absl::StatusOr<Json> ParseJson(absl::string_view text, absl::string_view what);

// Compact JSON: no spaces, keys in order, non-ASCII as UTF-8 (invalid UTF-8 replaced by U+FFFD).
[[nodiscard]] std::string DumpCompact(const Json& value);

// As Python's json.dumps(value, ensure_ascii=False): ", " between items, ": " after keys.
[[nodiscard]] std::string DumpPython(const Json& value);

// Length of the JSON value that starts at text[0] (no leading whitespace): scans brackets and
// strings only, without validating. 0 when an array, object or string is not closed within
// `text`; a number or literal runs to the next delimiter or the end.
[[nodiscard]] size_t JsonValueExtent(absl::string_view text);

}  // namespace tessera::engine::chat_internal

#endif  // TESSERA_ENGINE_CHAT_JSON_UTIL_H_
