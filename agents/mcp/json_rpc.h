// JSON-RPC 2.0 message helpers for the MCP client: building requests,
// notifications and responses, classifying what a peer sent, and parsing and
// serialising without letting nlohmann exceptions escape.
//
// MCP ids may be integers or strings; IdKey() gives one canonical string per
// id so that maps never confuse 5 with "5". Thread-compatible, stateless.
#ifndef TESSERA_AGENTS_MCP_JSON_RPC_H_
#define TESSERA_AGENTS_MCP_JSON_RPC_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace tessera::mcp {

using Json = nlohmann::json;

// Standard JSON-RPC error codes and the MCP additions.
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;
inline constexpr int kResourceNotFound = -32002;
inline constexpr int kHeaderMismatch = -32020;       // 2026-07-28 HTTP header/body mismatch
inline constexpr int kUnsupportedVersion = -32022;   // 2026-07-28

enum class MessageKind {
  kRequest,        // method + id
  kNotification,   // method, no id
  kResult,         // id + result
  kError,          // error (id may be null when the request was unparseable)
  kInvalid,        // anything else
};

// Parses `text` as JSON without throwing. INVALID_ARGUMENT on malformed input,
// with the parser's position in the message.
[[nodiscard]] absl::StatusOr<Json> ParseJson(absl::string_view text);

// Serialises compactly on one line. Invalid UTF-8 in strings is replaced
// (U+FFFD) rather than throwing.
[[nodiscard]] std::string Serialize(const Json& value);

[[nodiscard]] MessageKind Classify(const Json& message);

// "i:<n>" for integer ids, "s:<text>" for string ids, "" for anything else
// (which is not a valid id).
[[nodiscard]] std::string IdKey(const Json& id);

[[nodiscard]] Json MakeRequest(const Json& id, absl::string_view method, Json params);
[[nodiscard]] Json MakeNotification(absl::string_view method, Json params);
[[nodiscard]] Json MakeResult(const Json& id, Json result);
[[nodiscard]] Json MakeError(const Json& id, int code, absl::string_view message,
                             Json data = nullptr);

// Maps a JSON-RPC error object ({"code","message","data"}) to a Status with
// the most specific code; the message names the method and the server's text.
[[nodiscard]] absl::Status RpcErrorToStatus(const Json& error, absl::string_view method);

// Returns the JSON-RPC error code a status made by RpcErrorToStatus carries,
// or 0 when it carries none.
[[nodiscard]] int RpcErrorCodeOf(const absl::Status& status);

// Small accessors that never throw: the member's value when present with the
// right type, else the fallback.
[[nodiscard]] std::string GetString(const Json& object, absl::string_view key,
                                    absl::string_view fallback = "");
[[nodiscard]] bool GetBool(const Json& object, absl::string_view key, bool fallback = false);
[[nodiscard]] const Json* GetObject(const Json& object, absl::string_view key);
[[nodiscard]] const Json* GetArray(const Json& object, absl::string_view key);

}  // namespace tessera::mcp

#endif  // TESSERA_AGENTS_MCP_JSON_RPC_H_
