// Which prompt format a model was trained on, and how to tell from its tokenizer. The formats
// are the Mistral instruct versions of mistral-common (see /work/shared/reference/mcp.md §4):
//
//   v1   "[INST] ... [/INST]" as plain text, no tools (Mistral 7B v0.1/v0.2, Mixtral 8x7B).
//   v2   control tokens; tool calls as a JSON array after [TOOL_CALLS]; history tool calls and
//        results before the last user message dropped; results as [{"name","content"}]
//        (Mixtral 8x22B). Same vocabulary as v3, so only explicit configuration selects it.
//   v3   as v2 plus call ids, history kept, results {"content","call_id"} (Mistral 7B v0.3).
//   v7   [SYSTEM_PROMPT] blocks in place; results "id[TOOL_CONTENT]text"; content and calls in
//        one assistant turn.
//   v11  calls as "[TOOL_CALLS]name[CALL_ID]id[ARGS]{json}", one block per call.
//   v13  calls as "[TOOL_CALLS]name[ARGS]{json}" (no ids, results in call order), tools before
//        the first user message.
//
// Stateless and thread-safe.
#ifndef TESSERA_ENGINE_CHAT_CHAT_FORMAT_H_
#define TESSERA_ENGINE_CHAT_CHAT_FORMAT_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/tokenizer/tokenizer.h"

namespace tessera::engine {

enum class ChatFormat {
  kMistralV1,
  kMistralV2,
  kMistralV3,
  kMistralV7,
  kMistralV11,
  kMistralV13,
};

// The format a model's vocabulary supports, from the control tokens it has (the most capable
// that applies, checked in this order):
//   [ARGS] and [CALL_ID]                     -> v11
//   [ARGS] without [CALL_ID]                 -> v13
//   [SYSTEM_PROMPT] and [TOOL_CONTENT]       -> v7
//   [INST] and [TOOL_CALLS]                  -> v3
//   anything else                            -> v1 (plain-text [INST])
// A vocabulary cannot tell v2 from v3 (identical control tokens) nor, usually, v13 from v11
// (tekken vocabularies carry every control token): configure those explicitly with
// ParseChatFormat from the model's tokenizer version (tekken.json / tokenizer_config).
[[nodiscard]] ChatFormat DetectChatFormat(const Tokenizer& tokenizer);

// "mistral-v1", "mistral-v2", "mistral-v3", "mistral-v7", "mistral-v11", "mistral-v13"
// (case-insensitive). INVALID_ARGUMENT listing the accepted names otherwise.
[[nodiscard]] absl::StatusOr<ChatFormat> ParseChatFormat(absl::string_view name);

// The name ParseChatFormat accepts ("mistral-v7").
absl::string_view ChatFormatName(ChatFormat format);

// Whether the format has control tokens for tools (all but v1).
bool HasToolControlTokens(ChatFormat format);

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_CHAT_CHAT_FORMAT_H_
