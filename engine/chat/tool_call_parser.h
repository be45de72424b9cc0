// ToolCallParser: splits what a model generates into the answer text, streamed as it comes,
// and tool calls, returned when generation ends. It follows the call syntax of the model's
// chat format (chat_format.h):
//   v2, v3, v7  [TOOL_CALLS] then a JSON array of {"name", "arguments"[, "id"]} (a single object
//               is accepted too; several [TOOL_CALLS] blocks are concatenated);
//   v11         [TOOL_CALLS]name[CALL_ID]id[ARGS]{json}, one block per call;
//   v13         [TOOL_CALLS]name[ARGS]{json}, one block per call;
//   v1          no control token: a generation whose text starts (after whitespace) with
//               `[{"` is held back and, if it is a JSON array of objects with "name", read as
//               calls; anything else is text (`[1] ...` is streamed as soon as it cannot be a
//               call).
// Calls are recognised only by control-token id, never by text: a model that writes the words
// "[TOOL_CALLS]" (say, quoting a document) produces text.
//
// Text before the calls is streamed by Feed, with incomplete UTF-8 sequences held back until
// complete; text that belongs to a call is never streamed. Finish returns the calls with ids
// (the model's when it gave a valid, unique 9-character [A-Za-z0-9] id, otherwise a generated
// one) and arguments as compact JSON. Malformed output (bad JSON, a missing name, arguments
// that are not an object, a control token inside a call, a generation cut off by the token
// limit) becomes `error` in the result, worded so the agent loop can feed it back to the model;
// never a crash.
//
// Not thread-safe: one parser per generation. The tokenizer must outlive the parser.
#ifndef TESSERA_ENGINE_CHAT_TOOL_CALL_PARSER_H_
#define TESSERA_ENGINE_CHAT_TOOL_CALL_PARSER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/chat/chat.h"
#include "engine/chat/chat_format.h"
#include "engine/tokenizer/tokenizer.h"

namespace tessera::engine {

struct ToolCallParserOptions {
  // Makes an id for a call that has none. Default: 9 random characters [A-Za-z0-9]. An id
  // already used in this generation is discarded and the generator asked again (after 10
  // repeats, the default takes over).
  std::function<std::string()> make_id;
};

struct ToolCallParseResult {
  // The whole answer text: everything Feed returned, then final_text.
  std::string text;
  // Text not returned by Feed yet (held-back bytes, or v1 output that turned out not to be a
  // call); stream it after the last Feed.
  std::string final_text;
  // The well-formed calls, in order.
  std::vector<ToolCall> tool_calls;
  // OK, or INVALID_ARGUMENT saying what is wrong with the calls; then tool_calls holds only the
  // well-formed ones and the agent loop should report the error to the model instead of
  // running any.
  absl::Status error;
  // What the model generated for its calls (control tokens as their pieces), for logs.
  std::string raw_tool_calls;
};

class ToolCallParser {
 public:
  ToolCallParser(ChatFormat format, const Tokenizer& tokenizer, ToolCallParserOptions options = {});

  // One generated token: its id and the text it contributes (Tokenizer::TokenText(prev, id)).
  // Returns the text that can be streamed to the user now (often empty). End-of-sequence and
  // other control tokens outside calls are dropped.
  std::string Feed(int32_t id, absl::string_view text);

  // Ends the generation; `truncated` when it stopped at the token limit rather than at
  // end-of-sequence. Call once; the parser is then spent.
  [[nodiscard]] ToolCallParseResult Finish(bool truncated = false);

 private:
  enum class Mode { kText, kLeading, kCalls };
  // v11/v13: one [TOOL_CALLS] block, field by field.
  struct RawCall {
    std::string name;
    std::string id;
    std::string args;
    bool has_id = false;
    bool has_args = false;
  };

  std::string Stream(absl::string_view text);
  std::string NewId();
  void AddCall(std::string name, std::string id, std::string arguments_json);
  void ParseJsonCalls(absl::string_view segment, bool truncated, ToolCallParseResult* result);
  void ParseBlockCalls(bool truncated);
  void SetError(std::string message);

  const ChatFormat format_;
  const Tokenizer& tokenizer_;
  ToolCallParserOptions options_;
  absl::BitGen bitgen_;
  int32_t tool_calls_id_ = -1;
  int32_t args_id_ = -1;
  int32_t call_id_id_ = -1;

  Mode mode_;
  std::string text_;                   // streamed so far
  std::string utf8_tail_;              // incomplete UTF-8 sequence held back
  std::string leading_;                // v1: text held while it may still be a call
  std::vector<std::string> segments_;  // JSON formats: text after each [TOOL_CALLS]
  std::vector<RawCall> blocks_;        // v11/v13
  std::string* field_ = nullptr;       // where call text goes now
  std::string raw_;
  std::string first_error_;
  std::vector<ToolCall> calls_;
  int call_index_ = 0;  // 1-based number of the call being checked, for messages
};

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_CHAT_TOOL_CALL_PARSER_H_
