// Renders a conversation into the prompt a model was trained on (Mistral instruct formats, see
// chat_format.h). The prompt is built as a sequence of segments: control tokens, inserted by id
// (Tokenizer::TokenId), and text, encoded with parse_special=false. Text from users, documents
// and tool results therefore can never become a control token, whatever it contains. (Format v1
// has no control tokens: its "[INST]" markers are text, like everything else in it.)
//
// Validation, before anything is encoded (INVALID_ARGUMENT naming the message, "messages[3]:"):
//   * at least one user message; before the first user message only system messages;
//   * order: after system comes user, assistant or system; after user: assistant, system or
//     user; after assistant: assistant, user or tool; after tool: assistant or tool;
//   * an assistant message has content, tool calls or both (v2/v3: not both, also after merging
//     consecutive assistant messages); v1 has no tools, tool calls or tool messages at all;
//   * every tool call of an assistant message is answered by exactly one of the tool messages
//     directly after it, which name it by tool_call_id (v2 may omit it: then by name or order),
//     before the next user or assistant message and before generation;
//   * call ids: 9 characters [A-Za-z0-9] for v3, v7 and v11 (those render them); non-empty for
//     v13 (results are matched by id, rendered in call order); anything for v2;
//   * tool and function names match [A-Za-z0-9_-]{1,64}, tool names are unique, parameters and
//     arguments are JSON objects;
//   * the last message is a user or tool message, or an assistant message to be continued when
//     RenderOptions::continue_final_message is set.
// Rendering follows mistral-common: consecutive user (or assistant) messages are merged with
// "\n\n"; v1-v3 join the system messages with "\n\n" and put them before the first (v1) or last
// (v2, v3) user message; [AVAILABLE_TOOLS] goes right before the last [INST] (v2-v11) or the
// first (v13); v2 drops tool calls and results that come before the last user message.
//
// Stateless and thread-safe (the tokenizer is only read).
#ifndef TESSERA_ENGINE_CHAT_RENDER_H_
#define TESSERA_ENGINE_CHAT_RENDER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/chat/chat.h"
#include "engine/chat/chat_format.h"
#include "engine/tokenizer/tokenizer.h"

namespace tessera::engine {

struct RenderOptions {
  // The last message is an assistant message the model should continue: it is rendered
  // without its end-of-sequence token.
  bool continue_final_message = false;
};

// The prompt as token ids, starting with BOS. INVALID_ARGUMENT for a conversation the format
// does not accept (see above); FAILED_PRECONDITION when the tokenizer lacks a control token the
// format needs (the wrong format for this model).
[[nodiscard]] absl::StatusOr<std::vector<int32_t>> RenderChat(
    ChatFormat format, absl::Span<const ChatMessage> messages, absl::Span<const ToolSpec> tools,
    const Tokenizer& tokenizer, const RenderOptions& options = {});

// The same prompt as text for logs: control tokens as their pieces ("<s>", "[INST]"), text as
// given (without the word-boundary spaces a tokenizer may add). Needs no tokenizer; the same
// validation and errors as RenderChat.
[[nodiscard]] absl::StatusOr<std::string> RenderChatText(ChatFormat format,
                                                         absl::Span<const ChatMessage> messages,
                                                         absl::Span<const ToolSpec> tools,
                                                         const RenderOptions& options = {});

// The pieces of `ids` concatenated ("<s>[INST]▁What's..."): how the reference vectors show a
// rendered prompt, with every token boundary's word marker visible.
[[nodiscard]] std::string JoinPieces(const Tokenizer& tokenizer, absl::Span<const int32_t> ids);

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_CHAT_RENDER_H_
