#include "engine/chat/tool_call_parser.h"

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "engine/chat/json_util.h"

namespace tessera::engine {
namespace {

using chat_internal::DumpCompact;
using chat_internal::Json;
using chat_internal::JsonValueExtent;
using chat_internal::ParseJson;

constexpr char kIdAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

int32_t ControlId(const Tokenizer& tokenizer, std::string_view piece) {
  std::optional<int32_t> id = tokenizer.TokenId(piece);
  return id.has_value() && tokenizer.IsControl(*id) ? *id : -1;
}

// Bytes at the end of `s` that start a UTF-8 sequence not complete yet.
size_t IncompleteUtf8Tail(absl::string_view s) {
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const unsigned char c = static_cast<unsigned char>(s[s.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
    size_t need = 1;
    if ((c & 0xE0) == 0xC0) {
      need = 2;
    } else if ((c & 0xF0) == 0xE0) {
      need = 3;
    } else if ((c & 0xF8) == 0xF0) {
      need = 4;
    }
    return need > back ? back : 0;
  }
  return 0;
}

// Whether `s` (leading whitespace removed) may still grow into `[{"`, and whether it already has.
enum class CallPrefix { kNo, kMaybe, kYes };
CallPrefix MatchCallPrefix(absl::string_view s) {
  const char kWant[] = {'[', '{', '"'};
  size_t want = 0;
  for (char c : s) {
    if (want > 0 && absl::ascii_isspace(static_cast<unsigned char>(c))) continue;
    if (c != kWant[want]) return CallPrefix::kNo;
    if (++want == 3) return CallPrefix::kYes;
  }
  return CallPrefix::kMaybe;
}

std::string Quote(absl::string_view s) { return DumpCompact(Json(std::string(s))); }

// v1: whether held text that starts like a JSON array of objects is meant as calls. It is
// unless it is valid JSON with no "name" in any element, or invalid JSON never mentioning one.
bool LooksLikeCalls(absl::string_view text) {
  const size_t extent = JsonValueExtent(text);
  absl::StatusOr<Json> value = extent == 0
                                   ? absl::StatusOr<Json>(absl::InvalidArgumentError("incomplete"))
                                   : ParseJson(text.substr(0, extent), "text");
  if (!value.ok()) return text.find("\"name\"") != absl::string_view::npos;
  if (!value->is_array()) return false;
  for (const Json& item : *value) {
    if (item.is_object() && item.contains("name")) return true;
  }
  return false;
}

// Arguments as JSON text of an object, or an error message.
std::optional<std::string> ArgumentsJson(const Json& value, std::string* error) {
  if (value.is_object()) return DumpCompact(value);
  if (value.is_string()) {
    absl::StatusOr<Json> parsed = ParseJson(value.get<std::string>(), "arguments");
    if (parsed.ok() && parsed->is_object()) return DumpCompact(*parsed);
  }
  *error = "\"arguments\" must be a JSON object";
  return std::nullopt;
}

}  // namespace

ToolCallParser::ToolCallParser(ChatFormat format, const Tokenizer& tokenizer,
                               ToolCallParserOptions options)
    : format_(format), tokenizer_(tokenizer), options_(std::move(options)) {
  if (format_ != ChatFormat::kMistralV1) {
    tool_calls_id_ = ControlId(tokenizer_, "[TOOL_CALLS]");
  }
  if (format_ == ChatFormat::kMistralV11 || format_ == ChatFormat::kMistralV13) {
    args_id_ = ControlId(tokenizer_, "[ARGS]");
  }
  if (format_ == ChatFormat::kMistralV11) call_id_id_ = ControlId(tokenizer_, "[CALL_ID]");
  mode_ = format_ == ChatFormat::kMistralV1 ? Mode::kLeading : Mode::kText;
}

std::string ToolCallParser::Stream(absl::string_view text) {
  std::string out = utf8_tail_;
  out.append(text.data(), text.size());
  const size_t tail = IncompleteUtf8Tail(out);
  utf8_tail_ = out.substr(out.size() - tail);
  out.resize(out.size() - tail);
  text_ += out;
  return out;
}

std::string ToolCallParser::Feed(int32_t id, absl::string_view text) {
  const bool control = tokenizer_.IsControl(id);
  if (mode_ == Mode::kCalls) {
    if (id == tokenizer_.eos_id()) return std::string();
    raw_ += control ? tokenizer_.Piece(id) : std::string(text);
    if (id == tool_calls_id_) {
      if (args_id_ >= 0) {
        blocks_.emplace_back();
        field_ = &blocks_.back().name;
      } else {
        segments_.emplace_back();
        field_ = &segments_.back();
      }
    } else if (args_id_ >= 0 && id == args_id_ && !blocks_.empty()) {
      if (blocks_.back().has_args) {
        SetError(absl::StrCat("tool call ", blocks_.size(), ": [ARGS] appears twice"));
      }
      blocks_.back().has_args = true;
      field_ = &blocks_.back().args;
    } else if (call_id_id_ >= 0 && id == call_id_id_ && !blocks_.empty()) {
      blocks_.back().has_id = true;
      field_ = &blocks_.back().id;
    } else if (control) {
      SetError(absl::StrCat("unexpected control token ", tokenizer_.Piece(id),
                            " inside the tool calls"));
    } else if (field_ != nullptr) {
      field_->append(text.data(), text.size());
    }
    return std::string();
  }
  if (id == tool_calls_id_ && tool_calls_id_ >= 0) {
    mode_ = Mode::kCalls;
    return Feed(id, text);
  }
  if (control) return std::string();
  if (mode_ == Mode::kLeading) {
    leading_.append(text.data(), text.size());
    const size_t start = leading_.find_first_not_of(" \t\r\n");
    if (start == std::string::npos) return std::string();
    switch (MatchCallPrefix(absl::string_view(leading_).substr(start))) {
      case CallPrefix::kMaybe:
        return std::string();
      case CallPrefix::kYes:
        mode_ = Mode::kCalls;
        raw_ = leading_.substr(start);
        segments_.push_back(leading_.substr(start));
        field_ = &segments_.back();
        leading_.clear();
        return std::string();
      case CallPrefix::kNo: {
        mode_ = Mode::kText;
        std::string held = std::move(leading_);
        leading_.clear();
        return Stream(held);
      }
    }
  }
  return Stream(text);
}

void ToolCallParser::SetError(std::string message) {
  if (first_error_.empty()) first_error_ = std::move(message);
}

std::string ToolCallParser::NewId() {
  // The injected generator first; should it keep repeating used ids, random ones.
  for (int attempt = 0;; ++attempt) {
    std::string id;
    if (options_.make_id && attempt < 10) {
      id = options_.make_id();
    } else {
      for (int i = 0; i < 9; ++i) {
        id.push_back(kIdAlphabet[absl::Uniform<size_t>(bitgen_, 0, sizeof(kIdAlphabet) - 1)]);
      }
    }
    bool used = id.empty();
    for (const ToolCall& call : calls_) used |= call.id == id;
    if (!used) return id;
  }
}

void ToolCallParser::AddCall(std::string name, std::string id, std::string arguments_json) {
  bool usable = IsValidMistralCallId(id);
  for (const ToolCall& call : calls_) usable = usable && call.id != id;
  calls_.push_back({usable ? std::move(id) : NewId(), std::move(name), std::move(arguments_json)});
}

void ToolCallParser::ParseJsonCalls(absl::string_view segment, bool truncated,
                                    ToolCallParseResult* result) {
  const size_t start = segment.find_first_not_of(" \t\r\n");
  if (start == absl::string_view::npos) {
    SetError(truncated ? "the tool calls were cut off by the token limit before they began"
                       : "[TOOL_CALLS] is not followed by a JSON array of calls");
    return;
  }
  segment.remove_prefix(start);
  const size_t extent = JsonValueExtent(segment);
  if (extent == 0) {
    SetError(truncated ? "the tool calls were cut off by the token limit before they were "
                         "complete"
                       : "the tool calls are not valid JSON (the array is never closed)");
    return;
  }
  absl::StatusOr<Json> value = ParseJson(segment.substr(0, extent), "the tool calls");
  if (!value.ok()) {
    SetError(std::string(value.status().message()));
    return;
  }
  absl::string_view rest = segment.substr(extent);
  if (rest.find_first_not_of(" \t\r\n") != absl::string_view::npos) {
    result->final_text.append(rest.data(), rest.size());
  }
  Json calls = value->is_object() ? Json::array({*value}) : *std::move(value);
  if (!calls.is_array()) {
    SetError("the tool calls must be a JSON array of {\"name\", \"arguments\"} objects");
    return;
  }
  for (const Json& call : calls) {
    ++call_index_;
    const std::string where = absl::StrCat("tool call ", call_index_);
    if (!call.is_object()) {
      SetError(absl::StrCat(where, ": expected an object with \"name\" and \"arguments\""));
      continue;
    }
    auto name = call.find("name");
    if (name == call.end() || !name->is_string() || name->get<std::string>().empty()) {
      SetError(absl::StrCat(where, ": missing \"name\""));
      continue;
    }
    const std::string name_text = name->get<std::string>();
    if (!IsValidToolName(name_text)) {
      SetError(absl::StrCat(where, ": ", Quote(name_text), " is not a valid tool name"));
      continue;
    }
    std::string arguments = "{}";
    auto args = call.find("arguments");
    if (args != call.end() && !args->is_null()) {
      std::string error;
      std::optional<std::string> json = ArgumentsJson(*args, &error);
      if (!json.has_value()) {
        SetError(absl::StrCat(where, " (", name_text, "): ", error));
        continue;
      }
      arguments = *std::move(json);
    }
    std::string id;
    auto id_field = call.find("id");
    if (id_field != call.end() && id_field->is_string()) id = id_field->get<std::string>();
    AddCall(name_text, std::move(id), std::move(arguments));
  }
}

void ToolCallParser::ParseBlockCalls(bool truncated) {
  for (const RawCall& block : blocks_) {
    ++call_index_;
    const std::string where = absl::StrCat("tool call ", call_index_);
    const std::string name(absl::StripAsciiWhitespace(block.name));
    if (name.empty()) {
      SetError(absl::StrCat(where, ": missing the tool name after [TOOL_CALLS]"));
      continue;
    }
    if (!IsValidToolName(name)) {
      SetError(absl::StrCat(where, ": ", Quote(name), " is not a valid tool name"));
      continue;
    }
    const bool last = call_index_ == static_cast<int>(blocks_.size());
    if (!block.has_args) {
      SetError(truncated && last
                   ? absl::StrCat(where, " (", name, ") was cut off by the token limit")
                   : absl::StrCat(where, " (", name, "): no [ARGS] after the name"));
      continue;
    }
    absl::string_view args = absl::StripAsciiWhitespace(block.args);
    const size_t extent = JsonValueExtent(args);
    if (extent == 0 && truncated && last) {
      SetError(absl::StrCat(where, " (", name, ") was cut off by the token limit"));
      continue;
    }
    if (extent != args.size()) {
      SetError(absl::StrCat(where, " (", name, "): the arguments must be one JSON object",
                            extent == 0 ? " (it is never closed)" : ", with nothing after it"));
      continue;
    }
    absl::StatusOr<Json> value = ParseJson(args, absl::StrCat(where, " (", name, ") arguments"));
    if (!value.ok()) {
      SetError(std::string(value.status().message()));
      continue;
    }
    if (!value->is_object()) {
      SetError(absl::StrCat(where, " (", name, "): the arguments must be a JSON object"));
      continue;
    }
    AddCall(name, std::string(absl::StripAsciiWhitespace(block.id)), DumpCompact(*value));
  }
}

ToolCallParseResult ToolCallParser::Finish(bool truncated) {
  ToolCallParseResult result;
  if (mode_ == Mode::kLeading) {
    result.final_text = std::move(leading_);
  } else if (mode_ == Mode::kCalls) {
    if (args_id_ >= 0) {
      ParseBlockCalls(truncated);
    } else if (format_ == ChatFormat::kMistralV1 && !LooksLikeCalls(segments_.front())) {
      result.final_text = std::move(segments_.front());  // an answer that starts with [{"
      raw_.clear();
    } else {
      for (const std::string& segment : segments_) ParseJsonCalls(segment, truncated, &result);
    }
  }
  result.final_text = utf8_tail_ + result.final_text;
  utf8_tail_.clear();
  text_ += result.final_text;
  result.text = std::move(text_);
  result.tool_calls = std::move(calls_);
  result.raw_tool_calls = std::move(raw_);
  if (!first_error_.empty()) {
    result.error = absl::InvalidArgumentError(absl::StrCat("malformed tool call: ", first_error_));
  }
  return result;
}

}  // namespace tessera::engine
