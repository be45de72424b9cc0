// Value types of the MCP client API: tools as a server lists them, content
// blocks and the result of tools/call, plus their parsing from JSON. Parsing
// is lenient where the spec allows growth (unknown content types are kept as
// kUnknown with their raw JSON) and strict where we depend on a field.
#ifndef TESSERA_AGENTS_MCP_TYPES_H_
#define TESSERA_AGENTS_MCP_TYPES_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agents/mcp/json_rpc.h"

namespace tessera::mcp {

inline constexpr char kModernVersion[] = "2026-07-28";
inline constexpr char kLatestLegacyVersion[] = "2025-11-25";

struct ToolInfo {
  std::string name;
  std::string title;
  std::string description;
  Json input_schema = Json::object();
  Json output_schema;  // null when the tool declares none
  Json annotations;    // untrusted hints; null when absent
  std::string task_support = "forbidden";
};

struct ContentItem {
  enum class Type { kText, kImage, kAudio, kResourceLink, kResource, kUnknown };
  Type type = Type::kUnknown;
  std::string type_name;  // as sent ("text", "image", ...)
  std::string text;       // kText; kResource with a text body
  std::string data;       // base64 for kImage / kAudio; kResource "blob"
  std::string mime_type;
  std::string uri;        // kResourceLink, kResource
  std::string name;       // kResourceLink
  std::string description;
  Json annotations;       // null when absent
  Json raw;               // the block as received
};

struct CallToolResult {
  std::vector<ContentItem> content;
  std::optional<Json> structured_content;
  // The tool ran and failed (execution error): feed the content back to the
  // model. Protocol errors are a non-OK Status instead, never this flag.
  bool is_error = false;
  Json meta;  // result._meta, null when absent
};

// True when `name` is 1..128 characters of [A-Za-z0-9_.-].
[[nodiscard]] bool IsValidToolName(const std::string& name);

// Parses one entry of tools/list. INVALID_ARGUMENT names the problem.
[[nodiscard]] absl::StatusOr<ToolInfo> ParseTool(const Json& tool);
// Parses one content block; never fails for unknown types.
[[nodiscard]] absl::StatusOr<ContentItem> ParseContentItem(const Json& block);
// Parses a tools/call result object.
[[nodiscard]] absl::StatusOr<CallToolResult> ParseCallToolResult(const Json& result);

// Joins the text of a result for display: text blocks as is, resources as
// their text or URI, images/audio as "[image/png, N bytes base64]".
[[nodiscard]] std::string RenderContentAsText(const CallToolResult& result);

}  // namespace tessera::mcp

#endif  // TESSERA_AGENTS_MCP_TYPES_H_
