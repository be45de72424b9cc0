#include "engine/chat/chat_format.h"

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace tessera::engine {
namespace {

bool HasControl(const Tokenizer& tokenizer, std::string_view piece) {
  std::optional<int32_t> id = tokenizer.TokenId(piece);
  return id.has_value() && tokenizer.IsControl(*id);
}

constexpr ChatFormat kAllFormats[] = {ChatFormat::kMistralV1,  ChatFormat::kMistralV2,
                                      ChatFormat::kMistralV3,  ChatFormat::kMistralV7,
                                      ChatFormat::kMistralV11, ChatFormat::kMistralV13};

}  // namespace

ChatFormat DetectChatFormat(const Tokenizer& tokenizer) {
  if (HasControl(tokenizer, "[ARGS]")) {
    return HasControl(tokenizer, "[CALL_ID]") ? ChatFormat::kMistralV11 : ChatFormat::kMistralV13;
  }
  if (HasControl(tokenizer, "[SYSTEM_PROMPT]") && HasControl(tokenizer, "[TOOL_CONTENT]")) {
    return ChatFormat::kMistralV7;
  }
  if (HasControl(tokenizer, "[INST]") && HasControl(tokenizer, "[TOOL_CALLS]")) {
    return ChatFormat::kMistralV3;
  }
  return ChatFormat::kMistralV1;
}

absl::StatusOr<ChatFormat> ParseChatFormat(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  for (ChatFormat format : kAllFormats) {
    if (lower == ChatFormatName(format)) return format;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown chat format \"", name,
      "\": expected one of mistral-v1, mistral-v2, mistral-v3, mistral-v7, mistral-v11, "
      "mistral-v13"));
}

absl::string_view ChatFormatName(ChatFormat format) {
  switch (format) {
    case ChatFormat::kMistralV1:
      return "mistral-v1";
    case ChatFormat::kMistralV2:
      return "mistral-v2";
    case ChatFormat::kMistralV3:
      return "mistral-v3";
    case ChatFormat::kMistralV7:
      return "mistral-v7";
    case ChatFormat::kMistralV11:
      return "mistral-v11";
    case ChatFormat::kMistralV13:
      return "mistral-v13";
  }
  return "unknown";
}

bool HasToolControlTokens(ChatFormat format) { return format != ChatFormat::kMistralV1; }

}  // namespace tessera::engine
