#include "agents/mcp/types.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tessera::mcp {

bool IsValidToolName(const std::string& name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

absl::StatusOr<ToolInfo> ParseTool(const Json& tool) {
  if (!tool.is_object()) return absl::InvalidArgumentError("tool entry is not an object");
  ToolInfo info;
  info.name = GetString(tool, "name");
  if (!IsValidToolName(info.name)) {
    return absl::InvalidArgumentError(absl::StrCat("tool name \"", info.name.substr(0, 140),
                                                   "\" is not 1-128 characters of [A-Za-z0-9_.-]"));
  }
  info.title = GetString(tool, "title");
  info.description = GetString(tool, "description");
  if (const Json* schema = GetObject(tool, "inputSchema")) {
    info.input_schema = *schema;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("tool \"", info.name, "\" has no inputSchema object"));
  }
  if (const Json* schema = GetObject(tool, "outputSchema")) info.output_schema = *schema;
  if (const Json* annotations = GetObject(tool, "annotations")) info.annotations = *annotations;
  if (const Json* execution = GetObject(tool, "execution")) {
    info.task_support = GetString(*execution, "taskSupport", "forbidden");
  }
  return info;
}

absl::StatusOr<ContentItem> ParseContentItem(const Json& block) {
  if (!block.is_object()) return absl::InvalidArgumentError("content block is not an object");
  ContentItem item;
  item.raw = block;
  item.type_name = GetString(block, "type");
  if (const Json* a = GetObject(block, "annotations")) item.annotations = *a;
  const std::string& t = item.type_name;
  if (t == "text") {
    item.type = ContentItem::Type::kText;
    if (!block.contains("text") || !block["text"].is_string()) {
      return absl::InvalidArgumentError("text content block has no \"text\" string");
    }
    item.text = block["text"].get<std::string>();
  } else if (t == "image" || t == "audio") {
    item.type = t == "image" ? ContentItem::Type::kImage : ContentItem::Type::kAudio;
    item.data = GetString(block, "data");
    item.mime_type = GetString(block, "mimeType");
    if (item.data.empty() || item.mime_type.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(t, " content block needs \"data\" and \"mimeType\""));
    }
  } else if (t == "resource_link") {
    item.type = ContentItem::Type::kResourceLink;
    item.uri = GetString(block, "uri");
    item.name = GetString(block, "name");
    item.description = GetString(block, "description");
    item.mime_type = GetString(block, "mimeType");
    if (item.uri.empty()) return absl::InvalidArgumentError("resource_link content block has no \"uri\"");
  } else if (t == "resource") {
    item.type = ContentItem::Type::kResource;
    const Json* r = GetObject(block, "resource");
    if (r == nullptr) return absl::InvalidArgumentError("resource content block has no \"resource\" object");
    item.uri = GetString(*r, "uri");
    item.mime_type = GetString(*r, "mimeType");
    item.text = GetString(*r, "text");
    item.data = GetString(*r, "blob");
    if (item.uri.empty()) return absl::InvalidArgumentError("embedded resource has no \"uri\"");
  } else {
    item.type = ContentItem::Type::kUnknown;
  }
  return item;
}

absl::StatusOr<CallToolResult> ParseCallToolResult(const Json& result) {
  if (!result.is_object()) return absl::InvalidArgumentError("tools/call result is not an object");
  CallToolResult out;
  const Json* content = GetArray(result, "content");
  if (content == nullptr) {
    // Tolerated when structuredContent carries the answer.
    if (!result.contains("structuredContent")) {
      return absl::InvalidArgumentError("tools/call result has neither \"content\" nor \"structuredContent\"");
    }
  } else {
    for (size_t i = 0; i < content->size(); ++i) {
      auto item = ParseContentItem((*content)[i]);
      if (!item.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("content[", i, "]: ", item.status().message()));
      }
      out.content.push_back(std::move(*item));
    }
  }
  if (result.contains("structuredContent") && !result["structuredContent"].is_null()) {
    out.structured_content = result["structuredContent"];
  }
  out.is_error = GetBool(result, "isError");
  if (const Json* meta = GetObject(result, "_meta")) out.meta = *meta;
  return out;
}

std::string RenderContentAsText(const CallToolResult& result) {
  std::vector<std::string> parts;
  for (const ContentItem& item : result.content) {
    switch (item.type) {
      case ContentItem::Type::kText: parts.push_back(item.text); break;
      case ContentItem::Type::kImage:
      case ContentItem::Type::kAudio:
        parts.push_back(absl::StrCat("[", item.type_name, " ", item.mime_type, ", ", item.data.size(), " bytes base64]"));
        break;
      case ContentItem::Type::kResourceLink:
        parts.push_back(absl::StrCat("[resource link: ", item.name.empty() ? item.uri : item.name, " <", item.uri, ">]"));
        break;
      case ContentItem::Type::kResource:
        parts.push_back(item.text.empty()
                            ? absl::StrCat("[resource ", item.uri, " ", item.mime_type, ", ", item.data.size(), " bytes base64]")
                            : item.text);
        break;
      case ContentItem::Type::kUnknown:
        parts.push_back(absl::StrCat("[", item.type_name, " content]"));
        break;
    }
  }
  if (parts.empty() && result.structured_content.has_value()) return Serialize(*result.structured_content);
  return absl::StrJoin(parts, "\n");
}

}  // namespace tessera::mcp
