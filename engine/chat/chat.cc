#include "engine/chat/chat.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "engine/chat/json_util.h"

namespace tessera::engine {
namespace {

using chat_internal::DumpCompact;
using chat_internal::Json;
using chat_internal::ParseJson;

absl::Status Invalid(absl::string_view path, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", problem));
}

absl::string_view TypeName(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "an object";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::boolean:
      return "a boolean";
    default:
      return "a number";
  }
}

// Reads an optional string field: absent or null gives "".
absl::StatusOr<std::string> OptionalString(const Json& object, const char* key,
                                           absl::string_view path) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return Invalid(absl::StrCat(path, ".", key),
                   absl::StrCat("expected a string, got ", TypeName(*it)));
  }
  return it->get<std::string>();
}

absl::StatusOr<std::string> ParseContent(const Json& message, absl::string_view path) {
  auto it = message.find("content");
  if (it == message.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  const std::string content_path = absl::StrCat(path, ".content");
  if (!it->is_array()) {
    return Invalid(content_path, absl::StrCat("expected a string or an array of text parts, got ",
                                              TypeName(*it)));
  }
  std::string text;
  bool first = true;
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& part = (*it)[i];
    const std::string part_path = absl::StrCat(content_path, "[", i, "]");
    if (!part.is_object()) {
      return Invalid(part_path, absl::StrCat("expected an object, got ", TypeName(part)));
    }
    ASSIGN_OR_RETURN(std::string type, OptionalString(part, "type", part_path));
    if (type != "text") {
      return Invalid(absl::StrCat(part_path, ".type"),
                     absl::StrCat("\"", type, "\" is not supported (only \"text\" parts)"));
    }
    ASSIGN_OR_RETURN(std::string part_text, OptionalString(part, "text", part_path));
    if (part_text.empty()) continue;
    if (!first) text.append("\n\n");
    first = false;
    text.append(part_text);
  }
  return text;
}

// Arguments given as JSON text or as an object; returned as compact JSON of an object.
absl::StatusOr<std::string> ParseArguments(const Json& function, absl::string_view path) {
  const std::string args_path = absl::StrCat(path, ".arguments");
  auto it = function.find("arguments");
  if (it == function.end() || it->is_null()) return std::string("{}");
  if (it->is_object()) return DumpCompact(*it);
  if (!it->is_string()) {
    return Invalid(args_path, absl::StrCat("expected JSON text or an object, got ", TypeName(*it)));
  }
  const std::string& text = it->get_ref<const std::string&>();
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return std::string("{}");
  ASSIGN_OR_RETURN(Json args, ParseJson(text, args_path));
  if (!args.is_object()) {
    return Invalid(args_path, absl::StrCat("expected a JSON object, got ", TypeName(args)));
  }
  return DumpCompact(args);
}

absl::StatusOr<std::vector<ToolCall>> ParseToolCalls(const Json& message, absl::string_view path) {
  std::vector<ToolCall> calls;
  auto it = message.find("tool_calls");
  if (it == message.end() || it->is_null()) return calls;
  const std::string calls_path = absl::StrCat(path, ".tool_calls");
  if (!it->is_array()) {
    return Invalid(calls_path, absl::StrCat("expected an array, got ", TypeName(*it)));
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& call = (*it)[i];
    const std::string call_path = absl::StrCat(calls_path, "[", i, "]");
    if (!call.is_object()) {
      return Invalid(call_path, absl::StrCat("expected an object, got ", TypeName(call)));
    }
    ToolCall out;
    ASSIGN_OR_RETURN(out.id, OptionalString(call, "id", call_path));
    ASSIGN_OR_RETURN(std::string type, OptionalString(call, "type", call_path));
    if (!type.empty() && type != "function") {
      return Invalid(absl::StrCat(call_path, ".type"),
                     absl::StrCat("\"", type, "\" is not supported (only \"function\")"));
    }
    auto function = call.find("function");
    const std::string function_path = absl::StrCat(call_path, ".function");
    if (function == call.end() || !function->is_object()) {
      return Invalid(function_path, "missing (expected an object with name and arguments)");
    }
    ASSIGN_OR_RETURN(out.name, OptionalString(*function, "name", function_path));
    if (out.name.empty()) return Invalid(absl::StrCat(function_path, ".name"), "missing");
    ASSIGN_OR_RETURN(out.arguments_json, ParseArguments(*function, function_path));
    calls.push_back(std::move(out));
  }
  return calls;
}

absl::StatusOr<ChatMessage> ParseMessage(const Json& message, absl::string_view path) {
  if (!message.is_object()) {
    return Invalid(path, absl::StrCat("expected an object, got ", TypeName(message)));
  }
  ChatMessage out;
  ASSIGN_OR_RETURN(std::string role, OptionalString(message, "role", path));
  if (role == "system" || role == "developer") {
    out.role = ChatRole::kSystem;
  } else if (role == "user") {
    out.role = ChatRole::kUser;
  } else if (role == "assistant") {
    out.role = ChatRole::kAssistant;
  } else if (role == "tool") {
    out.role = ChatRole::kTool;
  } else if (role.empty()) {
    return Invalid(absl::StrCat(path, ".role"), "missing");
  } else {
    return Invalid(absl::StrCat(path, ".role"),
                   absl::StrCat("\"", role, "\" is not one of system, user, assistant, tool"));
  }
  ASSIGN_OR_RETURN(out.content, ParseContent(message, path));
  ASSIGN_OR_RETURN(out.tool_calls, ParseToolCalls(message, path));
  if (!out.tool_calls.empty() && out.role != ChatRole::kAssistant) {
    return Invalid(absl::StrCat(path, ".tool_calls"),
                   absl::StrCat("only assistant messages make tool calls, this one is ", role));
  }
  ASSIGN_OR_RETURN(out.tool_call_id, OptionalString(message, "tool_call_id", path));
  ASSIGN_OR_RETURN(out.name, OptionalString(message, "name", path));
  return out;
}

// The array under `key` when `root` is an object, or `root` itself when it is an array.
absl::StatusOr<const Json*> TopArray(const Json& root, const char* key, bool absent_ok) {
  if (root.is_array()) return &root;
  if (root.is_object()) {
    auto it = root.find(key);
    if (it == root.end() || it->is_null()) {
      if (absent_ok) return nullptr;
      return Invalid(key, "missing");
    }
    if (!it->is_array())
      return Invalid(key, absl::StrCat("expected an array, got ", TypeName(*it)));
    return &*it;
  }
  return Invalid(
      key, absl::StrCat("expected an array or an object with \"", key, "\", got ", TypeName(root)));
}

}  // namespace

absl::string_view ChatRoleName(ChatRole role) {
  switch (role) {
    case ChatRole::kSystem:
      return "system";
    case ChatRole::kUser:
      return "user";
    case ChatRole::kAssistant:
      return "assistant";
    case ChatRole::kTool:
      return "tool";
  }
  return "unknown";
}

bool IsValidToolName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  }
  return true;
}

bool IsValidMistralCallId(absl::string_view id) {
  if (id.size() != 9) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::StatusOr<std::vector<ChatMessage>> ParseOpenAiMessages(absl::string_view json) {
  ASSIGN_OR_RETURN(Json root, ParseJson(json, "messages"));
  ASSIGN_OR_RETURN(const Json* array, TopArray(root, "messages", /*absent_ok=*/false));
  std::vector<ChatMessage> messages;
  messages.reserve(array->size());
  for (size_t i = 0; i < array->size(); ++i) {
    ASSIGN_OR_RETURN(ChatMessage message,
                     ParseMessage((*array)[i], absl::StrCat("messages[", i, "]")));
    messages.push_back(std::move(message));
  }
  return messages;
}

absl::StatusOr<std::vector<ToolSpec>> ParseOpenAiTools(absl::string_view json) {
  ASSIGN_OR_RETURN(Json root, ParseJson(json, "tools"));
  ASSIGN_OR_RETURN(const Json* array, TopArray(root, "tools", /*absent_ok=*/true));
  std::vector<ToolSpec> tools;
  if (array == nullptr) return tools;
  for (size_t i = 0; i < array->size(); ++i) {
    const Json& tool = (*array)[i];
    const std::string path = absl::StrCat("tools[", i, "]");
    if (!tool.is_object()) {
      return Invalid(path, absl::StrCat("expected an object, got ", TypeName(tool)));
    }
    ASSIGN_OR_RETURN(std::string type, OptionalString(tool, "type", path));
    if (!type.empty() && type != "function") {
      return Invalid(absl::StrCat(path, ".type"),
                     absl::StrCat("\"", type, "\" is not supported (only \"function\")"));
    }
    auto function = tool.find("function");
    const std::string function_path = absl::StrCat(path, ".function");
    if (function == tool.end() || !function->is_object()) {
      return Invalid(function_path, "missing (expected an object with name and parameters)");
    }
    ToolSpec spec;
    ASSIGN_OR_RETURN(spec.name, OptionalString(*function, "name", function_path));
    if (spec.name.empty()) return Invalid(absl::StrCat(function_path, ".name"), "missing");
    ASSIGN_OR_RETURN(spec.description, OptionalString(*function, "description", function_path));
    auto parameters = function->find("parameters");
    if (parameters != function->end() && !parameters->is_null()) {
      if (!parameters->is_object()) {
        return Invalid(absl::StrCat(function_path, ".parameters"),
                       absl::StrCat("expected a JSON schema object, got ", TypeName(*parameters)));
      }
      spec.parameters_json = DumpCompact(*parameters);
    }
    tools.push_back(std::move(spec));
  }
  return tools;
}

}  // namespace tessera::engine
