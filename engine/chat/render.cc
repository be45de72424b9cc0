#include "engine/chat/render.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status.h"
#include "engine/chat/json_util.h"

namespace tessera::engine {
namespace {

using chat_internal::DumpPython;
using chat_internal::Json;
using chat_internal::ParseJson;

// One piece of a prompt: BOS, EOS, a control token by its piece, or text to encode.
struct Segment {
  enum class Kind { kBos, kEos, kControl, kText };
  Kind kind;
  std::string text;
};

class Segments {
 public:
  void Bos() { list_.push_back({Segment::Kind::kBos, ""}); }
  void Eos() { list_.push_back({Segment::Kind::kEos, ""}); }
  void Control(absl::string_view piece) {
    list_.push_back({Segment::Kind::kControl, std::string(piece)});
  }
  // Empty text encodes to nothing, so it is left out.
  void Text(std::string text) {
    if (!text.empty()) list_.push_back({Segment::Kind::kText, std::move(text)});
  }
  std::vector<Segment>& list() { return list_; }

 private:
  std::vector<Segment> list_;
};

bool IsPreV7(ChatFormat f) {
  return f == ChatFormat::kMistralV1 || f == ChatFormat::kMistralV2 || f == ChatFormat::kMistralV3;
}

// Formats that render call ids and so constrain them to Mistral's 9 alphanumerics.
bool RendersCallIds(ChatFormat f) {
  return f == ChatFormat::kMistralV3 || f == ChatFormat::kMistralV7 || f == ChatFormat::kMistralV11;
}

std::string MessagePath(size_t i) { return absl::StrCat("messages[", i, "]"); }

absl::Status Invalid(absl::string_view path, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", problem));
}

// A message after merging consecutive messages of the same role.
struct Turn {
  ChatRole role;
  std::string content;
  std::vector<ToolCall> calls;
  std::string tool_call_id;
  std::string name;    // tool turns: the tool's name, from the message or its call
  size_t first_index;  // the first source message, for errors
};

absl::StatusOr<Json> ParseObject(absl::string_view text, absl::string_view path) {
  if (text.find_first_not_of(" \t\r\n") == absl::string_view::npos) return Json::object();
  ASSIGN_OR_RETURN(Json value, ParseJson(text, path));
  if (!value.is_object()) return Invalid(path, "expected a JSON object");
  return value;
}

absl::Status ValidateTools(ChatFormat format, absl::Span<const ToolSpec> tools) {
  if (tools.empty()) return absl::OkStatus();
  if (format == ChatFormat::kMistralV1) {
    return Invalid("tools",
                   "format mistral-v1 has no tool calling; pass no tools (or configure "
                   "the model's real chat format)");
  }
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string path = absl::StrCat("tools[", i, "]");
    if (!IsValidToolName(tools[i].name)) {
      return Invalid(
          absl::StrCat(path, ".name"),
          absl::StrCat("\"", tools[i].name, "\" must be 1 to 64 characters a-z, A-Z, 0-9, _ or -"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (tools[j].name == tools[i].name) {
        return Invalid(absl::StrCat(path, ".name"),
                       absl::StrCat("\"", tools[i].name, "\" is also the name of tools[", j, "]"));
      }
    }
    RETURN_IF_ERROR(
        ParseObject(tools[i].parameters_json, absl::StrCat(path, ".parameters")).status());
  }
  return absl::OkStatus();
}

absl::Status ValidateCall(ChatFormat format, const ToolCall& call, absl::string_view path) {
  if (!IsValidToolName(call.name)) {
    return Invalid(
        absl::StrCat(path, ".name"),
        absl::StrCat("\"", call.name, "\" must be 1 to 64 characters a-z, A-Z, 0-9, _ or -"));
  }
  if (RendersCallIds(format) && !IsValidMistralCallId(call.id)) {
    return Invalid(absl::StrCat(path, ".id"),
                   absl::StrCat("\"", call.id,
                                "\" must be exactly 9 characters a-z, A-Z, 0-9 "
                                "for format ",
                                ChatFormatName(format)));
  }
  if (format == ChatFormat::kMistralV13 && call.id.empty()) {
    return Invalid(absl::StrCat(path, ".id"), "missing (tool results name their call by id)");
  }
  return ParseObject(call.arguments_json, absl::StrCat(path, ".arguments")).status();
}

bool AllowedAfter(ChatRole prev, ChatRole next) {
  switch (prev) {
    case ChatRole::kSystem:
      return next != ChatRole::kTool;
    case ChatRole::kUser:
      return next != ChatRole::kTool;
    case ChatRole::kAssistant:
      return next != ChatRole::kSystem;
    case ChatRole::kTool:
      return next == ChatRole::kAssistant || next == ChatRole::kTool;
  }
  return false;
}

// Checks the conversation (rules in render.h). Fills `tool_names` with, for each message, the
// tool name a tool message answers for (its own name, else its call's).
absl::Status ValidateMessages(ChatFormat format, absl::Span<const ChatMessage> messages,
                              const RenderOptions& options, std::vector<std::string>* tool_names) {
  const absl::string_view format_name = ChatFormatName(format);
  if (messages.empty()) return Invalid("messages", "the conversation is empty");
  tool_names->assign(messages.size(), "");
  bool seen_user = false;
  std::vector<const ToolCall*> pending;  // calls not yet answered
  size_t pending_from = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const std::string path = MessagePath(i);
    if (i > 0 && !AllowedAfter(messages[i - 1].role, m.role)) {
      std::string hint;
      if (m.role == ChatRole::kTool) {
        hint =
            " (a tool message must follow the assistant message that made the call, or "
            "another tool message)";
      }
      return Invalid(path, absl::StrCat("a ", ChatRoleName(m.role), " message cannot follow a ",
                                        ChatRoleName(messages[i - 1].role), " message", hint));
    }
    if (m.role == ChatRole::kUser) seen_user = true;
    if (!seen_user && m.role != ChatRole::kSystem) {
      return Invalid(path,
                     "the conversation must start with a user message (after any system "
                     "messages)");
    }
    if (m.role != ChatRole::kTool && !pending.empty()) {
      return Invalid(MessagePath(pending_from), absl::StrCat("tool call \"", pending.front()->id,
                                                             "\" (", pending.front()->name,
                                                             ") has no tool message answering it "
                                                             "before ",
                                                             path));
    }
    if (m.role != ChatRole::kAssistant && !m.tool_calls.empty()) {
      return Invalid(absl::StrCat(path, ".tool_calls"), "only assistant messages make tool calls");
    }
    switch (m.role) {
      case ChatRole::kSystem:
      case ChatRole::kUser:
        break;
      case ChatRole::kAssistant: {
        if (m.content.empty() && m.tool_calls.empty()) {
          return Invalid(path, "an assistant message needs content or tool_calls");
        }
        if (!m.tool_calls.empty() && format == ChatFormat::kMistralV1) {
          return Invalid(absl::StrCat(path, ".tool_calls"),
                         "format mistral-v1 has no tool calling");
        }
        for (size_t j = 0; j < m.tool_calls.size(); ++j) {
          RETURN_IF_ERROR(
              ValidateCall(format, m.tool_calls[j], absl::StrCat(path, ".tool_calls[", j, "]")));
        }
        for (const ToolCall& call : m.tool_calls) pending.push_back(&call);
        pending_from = i;
        break;
      }
      case ChatRole::kTool: {
        if (format == ChatFormat::kMistralV1) {
          return Invalid(path, "format mistral-v1 has no tool messages");
        }
        if (!m.name.empty() && !IsValidToolName(m.name)) {
          return Invalid(
              absl::StrCat(path, ".name"),
              absl::StrCat("\"", m.name, "\" must be 1 to 64 characters a-z, A-Z, 0-9, _ or -"));
        }
        if (m.tool_call_id.empty() && format != ChatFormat::kMistralV2) {
          return Invalid(absl::StrCat(path, ".tool_call_id"),
                         absl::StrCat("missing: format ", format_name,
                                      " needs the id of the call this message answers"));
        }
        size_t match = pending.size();
        for (size_t k = 0; k < pending.size() && match == pending.size(); ++k) {
          if (!m.tool_call_id.empty()) {
            if (pending[k]->id == m.tool_call_id) match = k;
          } else if (m.name.empty() || pending[k]->name == m.name) {
            match = k;
          }
        }
        if (match == pending.size()) {
          if (m.tool_call_id.empty()) {
            return Invalid(path, absl::StrCat("no unanswered tool call of the assistant message "
                                              "at ",
                                              MessagePath(pending_from), " matches this result"));
          }
          return Invalid(absl::StrCat(path, ".tool_call_id"),
                         absl::StrCat("\"", m.tool_call_id,
                                      "\" matches no unanswered tool call of the assistant "
                                      "message at ",
                                      MessagePath(pending_from)));
        }
        (*tool_names)[i] = m.name.empty() ? pending[match]->name : m.name;
        pending.erase(pending.begin() + match);
        break;
      }
    }
  }
  if (!seen_user) return Invalid("messages", "the conversation has no user message");
  if (!pending.empty()) {
    return Invalid(MessagePath(pending_from),
                   absl::StrCat("tool call \"", pending.front()->id, "\" (", pending.front()->name,
                                ") has no tool message answering it; add the results before "
                                "generating"));
  }
  const ChatMessage& last = messages.back();
  const std::string last_path = MessagePath(messages.size() - 1);
  if (options.continue_final_message) {
    if (last.role != ChatRole::kAssistant) {
      return Invalid(last_path, "continue_final_message needs an assistant message last");
    }
  } else if (last.role != ChatRole::kUser && last.role != ChatRole::kTool) {
    return Invalid(last_path,
                   absl::StrCat("the conversation must end with a user or tool message, not ",
                                ChatRoleName(last.role),
                                " (set continue_final_message to continue an assistant "
                                "message)"));
  }
  return absl::OkStatus();
}

void AppendJoined(std::string* out, absl::string_view text) {
  if (text.empty()) return;
  if (!out->empty()) out->append("\n\n");
  out->append(text.data(), text.size());
}

// Merges consecutive user and assistant messages; pre-v7 formats drop system messages (they
// go into `system_prompt`); v11 and v13 order each block of tool results as its calls.
absl::StatusOr<std::vector<Turn>> Normalize(ChatFormat format,
                                            absl::Span<const ChatMessage> messages,
                                            const std::vector<std::string>& tool_names,
                                            std::string* system_prompt) {
  std::vector<Turn> turns;
  system_prompt->clear();
  for (size_t i = 0; i < messages.size();) {
    const ChatRole role = messages[i].role;
    size_t end = i + 1;
    while (end < messages.size() && messages[end].role == role) ++end;
    if (role == ChatRole::kSystem) {
      for (size_t k = i; k < end; ++k) {
        if (IsPreV7(format)) {
          AppendJoined(system_prompt, messages[k].content);
        } else {
          turns.push_back({role, messages[k].content, {}, "", "", k});
        }
      }
    } else if (role == ChatRole::kTool) {
      std::vector<Turn> block;
      for (size_t k = i; k < end; ++k) {
        block.push_back(
            {role, messages[k].content, {}, messages[k].tool_call_id, tool_names[k], k});
      }
      if (format == ChatFormat::kMistralV11 || format == ChatFormat::kMistralV13) {
        // Results in the order of the calls they answer.
        const Turn* caller = nullptr;
        for (auto it = turns.rbegin(); it != turns.rend(); ++it) {
          if (it->role == ChatRole::kAssistant) {
            caller = &*it;
            break;
          }
        }
        std::vector<Turn> ordered;
        std::vector<bool> used(block.size(), false);
        if (caller != nullptr) {
          for (const ToolCall& call : caller->calls) {
            for (size_t b = 0; b < block.size(); ++b) {
              if (!used[b] && block[b].tool_call_id == call.id) {
                used[b] = true;
                ordered.push_back(block[b]);
                break;
              }
            }
          }
        }
        for (size_t b = 0; b < block.size(); ++b) {
          if (!used[b]) ordered.push_back(block[b]);
        }
        block = std::move(ordered);
      }
      for (Turn& t : block) turns.push_back(std::move(t));
    } else {
      Turn turn{role, "", {}, "", "", i};
      for (size_t k = i; k < end; ++k) {
        AppendJoined(&turn.content, messages[k].content);
        turn.calls.insert(turn.calls.end(), messages[k].tool_calls.begin(),
                          messages[k].tool_calls.end());
      }
      if (role == ChatRole::kAssistant && IsPreV7(format) && !turn.content.empty() &&
          !turn.calls.empty()) {
        return Invalid(end - i > 1 ? absl::StrCat(MessagePath(i), " to ", MessagePath(end - 1))
                                   : MessagePath(i),
                       absl::StrCat("format ", ChatFormatName(format),
                                    " cannot hold content and tool_calls in one assistant turn "
                                    "(consecutive assistant messages are merged into one)"));
      }
      turns.push_back(std::move(turn));
    }
    i = end;
  }
  return turns;
}

// Tool-message content as mistral-common v2/v3 render it: the JSON value when the text is JSON,
// else the text as a string; empty text is {}.
Json ContentValue(const std::string& content) {
  if (content.empty()) return Json::object();
  absl::StatusOr<Json> parsed = ParseJson(content, "content");
  if (parsed.ok()) return *std::move(parsed);
  return Json(content);
}

// Validated before: arguments are a JSON object (or blank).
Json ArgumentsValue(const std::string& arguments_json) {
  absl::StatusOr<Json> parsed = ParseObject(arguments_json, "arguments");
  return parsed.ok() ? *std::move(parsed) : Json::object();
}

std::string ToolsJson(absl::Span<const ToolSpec> tools) {
  Json array = Json::array();
  for (const ToolSpec& tool : tools) {
    Json function = Json::object();
    function["name"] = tool.name;
    function["description"] = tool.description;
    absl::StatusOr<Json> parameters = ParseObject(tool.parameters_json, "parameters");
    function["parameters"] = parameters.ok() ? *std::move(parameters) : Json::object();
    Json entry = Json::object();
    entry["type"] = "function";
    entry["function"] = std::move(function);
    array.push_back(std::move(entry));
  }
  return DumpPython(array);
}

void RenderToolCalls(ChatFormat format, const std::vector<ToolCall>& calls, Segments* out) {
  if (format == ChatFormat::kMistralV11 || format == ChatFormat::kMistralV13) {
    for (const ToolCall& call : calls) {
      out->Control("[TOOL_CALLS]");
      out->Text(call.name);
      if (format == ChatFormat::kMistralV11) {
        out->Control("[CALL_ID]");
        out->Text(call.id);
      }
      out->Control("[ARGS]");
      out->Text(DumpPython(ArgumentsValue(call.arguments_json)));
    }
    return;
  }
  Json array = Json::array();
  for (const ToolCall& call : calls) {
    Json entry = Json::object();
    entry["name"] = call.name;
    entry["arguments"] = ArgumentsValue(call.arguments_json);
    if (format != ChatFormat::kMistralV2 && !call.id.empty() && call.id != "null") {
      entry["id"] = call.id;
    }
    array.push_back(std::move(entry));
  }
  out->Control("[TOOL_CALLS]");
  out->Text(DumpPython(array));
}

absl::StatusOr<std::vector<Segment>> BuildSegments(ChatFormat format,
                                                   absl::Span<const ChatMessage> messages,
                                                   absl::Span<const ToolSpec> tools,
                                                   const RenderOptions& options) {
  RETURN_IF_ERROR(ValidateTools(format, tools));
  std::vector<std::string> tool_names;
  RETURN_IF_ERROR(ValidateMessages(format, messages, options, &tool_names));
  std::string system_prompt;
  ASSIGN_OR_RETURN(std::vector<Turn> turns,
                   Normalize(format, messages, tool_names, &system_prompt));

  std::optional<size_t> first_user;
  size_t last_user = 0;
  for (size_t k = 0; k < turns.size(); ++k) {
    if (turns[k].role != ChatRole::kUser) continue;
    if (!first_user.has_value()) first_user = k;
    last_user = k;
  }
  const size_t tools_at = format == ChatFormat::kMistralV13 ? *first_user : last_user;

  Segments out;
  out.Bos();
  for (size_t k = 0; k < turns.size(); ++k) {
    const Turn& turn = turns[k];
    switch (turn.role) {
      case ChatRole::kSystem:
        out.Control("[SYSTEM_PROMPT]");
        out.Text(turn.content);
        out.Control("[/SYSTEM_PROMPT]");
        break;
      case ChatRole::kUser: {
        std::string content = turn.content;
        const bool system_here =
            (format == ChatFormat::kMistralV1 && k == *first_user) ||
            ((format == ChatFormat::kMistralV2 || format == ChatFormat::kMistralV3) &&
             k == last_user);
        if (system_here && !system_prompt.empty()) {
          content = absl::StrCat(system_prompt, "\n\n", content);
        }
        if (format == ChatFormat::kMistralV1) {
          out.Text(absl::StrCat("[INST] ", content, " [/INST]"));
          break;
        }
        if (k == tools_at && !tools.empty()) {
          out.Control("[AVAILABLE_TOOLS]");
          out.Text(ToolsJson(tools));
          out.Control("[/AVAILABLE_TOOLS]");
        }
        out.Control("[INST]");
        out.Text(std::move(content));
        out.Control("[/INST]");
        break;
      }
      case ChatRole::kAssistant: {
        if (format == ChatFormat::kMistralV2 && !turn.calls.empty() && k < last_user) break;
        if (!turn.content.empty()) {
          if (format == ChatFormat::kMistralV1) {
            out.Text(turn.content);
          } else {
            absl::string_view text = turn.content;
            while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
            out.Text(std::string(text));
          }
        }
        if (!turn.calls.empty()) RenderToolCalls(format, turn.calls, &out);
        if (!(options.continue_final_message && k + 1 == turns.size())) out.Eos();
        break;
      }
      case ChatRole::kTool: {
        switch (format) {
          case ChatFormat::kMistralV1:
            break;  // rejected by validation
          case ChatFormat::kMistralV2: {
            // One block for each run of results; none before the last user message.
            if (k < last_user || (k > 0 && turns[k - 1].role == ChatRole::kTool)) break;
            Json results = Json::array();
            for (size_t r = k; r < turns.size() && turns[r].role == ChatRole::kTool; ++r) {
              Json entry = Json::object();
              entry["name"] = turns[r].name;
              entry["content"] = ContentValue(turns[r].content);
              results.push_back(std::move(entry));
            }
            out.Control("[TOOL_RESULTS]");
            out.Text(DumpPython(results));
            out.Control("[/TOOL_RESULTS]");
            break;
          }
          case ChatFormat::kMistralV3: {
            Json result = Json::object();
            result["content"] = ContentValue(turn.content);
            result["call_id"] = turn.tool_call_id;
            out.Control("[TOOL_RESULTS]");
            out.Text(DumpPython(result));
            out.Control("[/TOOL_RESULTS]");
            break;
          }
          case ChatFormat::kMistralV7:
          case ChatFormat::kMistralV11:
            out.Control("[TOOL_RESULTS]");
            out.Text(turn.tool_call_id);
            out.Control("[TOOL_CONTENT]");
            out.Text(turn.content);
            out.Control("[/TOOL_RESULTS]");
            break;
          case ChatFormat::kMistralV13:
            out.Control("[TOOL_RESULTS]");
            out.Text(turn.content);
            out.Control("[/TOOL_RESULTS]");
            break;
        }
        break;
      }
    }
  }
  return std::move(out.list());
}

absl::StatusOr<int32_t> ControlId(const Tokenizer& tokenizer, ChatFormat format,
                                  const Segment& segment) {
  int32_t id = -1;
  absl::string_view what;
  if (segment.kind == Segment::Kind::kBos) {
    id = tokenizer.bos_id();
    what = "a beginning-of-sequence token";
  } else if (segment.kind == Segment::Kind::kEos) {
    id = tokenizer.eos_id();
    what = "an end-of-sequence token";
  } else {
    std::optional<int32_t> found = tokenizer.TokenId(segment.text);
    if (found.has_value() && tokenizer.IsControl(*found)) id = *found;
    what = segment.text;
  }
  if (id < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("the tokenizer has no control token ", what, ", which chat format ",
                     ChatFormatName(format), " needs: is this the model's chat format?"));
  }
  return id;
}

}  // namespace

absl::StatusOr<std::vector<int32_t>> RenderChat(ChatFormat format,
                                                absl::Span<const ChatMessage> messages,
                                                absl::Span<const ToolSpec> tools,
                                                const Tokenizer& tokenizer,
                                                const RenderOptions& options) {
  ASSIGN_OR_RETURN(std::vector<Segment> segments, BuildSegments(format, messages, tools, options));
  std::vector<int32_t> ids;
  for (const Segment& segment : segments) {
    if (segment.kind == Segment::Kind::kText) {
      std::vector<int32_t> text_ids =
          tokenizer.Encode(segment.text, /*add_special=*/false, /*parse_special=*/false);
      ids.insert(ids.end(), text_ids.begin(), text_ids.end());
    } else {
      ASSIGN_OR_RETURN(int32_t id, ControlId(tokenizer, format, segment));
      ids.push_back(id);
    }
  }
  return ids;
}

absl::StatusOr<std::string> RenderChatText(ChatFormat format,
                                           absl::Span<const ChatMessage> messages,
                                           absl::Span<const ToolSpec> tools,
                                           const RenderOptions& options) {
  ASSIGN_OR_RETURN(std::vector<Segment> segments, BuildSegments(format, messages, tools, options));
  std::string text;
  for (const Segment& segment : segments) {
    switch (segment.kind) {
      case Segment::Kind::kBos:
        text.append("<s>");
        break;
      case Segment::Kind::kEos:
        text.append("</s>");
        break;
      default:
        text.append(segment.text);
    }
  }
  return text;
}

std::string JoinPieces(const Tokenizer& tokenizer, absl::Span<const int32_t> ids) {
  std::string out;
  for (int32_t id : ids) out.append(tokenizer.Piece(id));
  return out;
}

}  // namespace tessera::engine
