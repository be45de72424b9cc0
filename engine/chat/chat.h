// Chat conversations as the engine sees them: messages (system, user, assistant with tool calls,
// tool results), the tools offered to the model, and their mapping from the OpenAI-style JSON
// ("messages" / "tools" of a chat completion request) used by the OpenAI-compatible endpoints
// and by tests. Rendering into a model's prompt lives in render.h, formats in chat_format.h.
// Plain value types; the functions are stateless and thread-safe.
#ifndef TESSERA_ENGINE_CHAT_CHAT_H_
#define TESSERA_ENGINE_CHAT_CHAT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera::engine {

enum class ChatRole { kSystem, kUser, kAssistant, kTool };

// "system", "user", "assistant", "tool".
absl::string_view ChatRoleName(ChatRole role);

// One call of a tool by the model.
struct ToolCall {
  // Identifies the call so its result can refer to it. Mistral v3 to v11 want 9 characters
  // [A-Za-z0-9]; the tool-call parser makes one up when the model gave none.
  std::string id;
  std::string name;
  // The arguments as JSON text (an object), for example {"location":"Paris"}.
  std::string arguments_json;

  bool operator==(const ToolCall&) const = default;
};

struct ChatMessage {
  ChatRole role = ChatRole::kUser;
  // Text. Empty for an assistant message that only calls tools.
  std::string content;
  // Assistant messages only.
  std::vector<ToolCall> tool_calls;
  // Tool messages only: the id of the call this message answers.
  std::string tool_call_id;
  // Tool messages: the name of the tool that answered (optional).
  std::string name;

  bool operator==(const ChatMessage&) const = default;
};

// A tool offered to the model (an OpenAI "function" tool).
struct ToolSpec {
  std::string name;
  std::string description;
  // JSON schema of the arguments, as JSON text of an object ("{}" when there are none).
  std::string parameters_json = "{}";

  bool operator==(const ToolSpec&) const = default;
};

// Whether `name` can name a tool or function for Mistral models: [A-Za-z0-9_-]{1,64}.
[[nodiscard]] bool IsValidToolName(absl::string_view name);

// Whether `id` is a Mistral tool-call id: exactly 9 characters [A-Za-z0-9].
[[nodiscard]] bool IsValidMistralCallId(absl::string_view id);

// Parses OpenAI-style chat messages: either a JSON array of messages or an object with a
// "messages" array (a whole chat completion request). Per message: "role" (system, developer
// (read as system), user, assistant, tool), "content" (string, null, or an array of
// {"type":"text","text":...} parts, joined with "\n\n"), "tool_calls" (assistant: [{"id",
// "type":"function", "function":{"name","arguments"}}] where arguments is JSON text or an
// object; stored compact, "" read as {}), "tool_call_id" and "name" (tool). Unknown fields are
// ignored. INVALID_ARGUMENT naming the path of the bad field, for example
// "messages[2].tool_calls[0].function.arguments: not valid JSON (...)". Structure (which role
// may follow which) is checked when rendering, since it depends on the format.
[[nodiscard]] absl::StatusOr<std::vector<ChatMessage>> ParseOpenAiMessages(absl::string_view json);

// Parses OpenAI-style tools: a JSON array of {"type":"function","function":{"name",
// "description","parameters"}} or an object with a "tools" array (absent or null: no tools).
// INVALID_ARGUMENT naming the path of the bad field.
[[nodiscard]] absl::StatusOr<std::vector<ToolSpec>> ParseOpenAiTools(absl::string_view json);

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_CHAT_CHAT_H_
