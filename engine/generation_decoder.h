// GenerationDecoder: what becomes of a generation's tokens on their way out. It turns token ids
// into whole UTF-8 text, applies stop strings, separates answer text from the tokens that spell
// tool calls (the chat format's ToolCallParser), and produces the final event with the finish
// reason. Engine::Generate drives it from the scheduler; the agent tests drive it from scripted
// token sequences, so that the exact same code reads real and scripted model output.
#ifndef TESSERA_ENGINE_GENERATION_DECODER_H_
#define TESSERA_ENGINE_GENERATION_DECODER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/chat/chat.h"
#include "engine/chat/chat_format.h"
#include "engine/chat/tool_call_parser.h"
#include "engine/runtime/scheduler.h"
#include "engine/text_stream.h"
#include "engine/tokenizer/tokenizer.h"

namespace tessera::engine {

enum class FinishReason { kStop, kLength, kStopSequence, kToolCalls, kCancelled, kError };

// What Generate reports, in order: text and tool calls as they come, then Finish once.
struct GenerateEvent {
  enum class Type { kText, kToolCall, kFinish } type;
  std::string text;                // kText: UTF-8, whole characters
  std::vector<int32_t> token_ids;  // kText: the tokens this text came from
  ToolCall tool_call;              // kToolCall
  FinishReason reason = FinishReason::kStop;  // kFinish
  std::string stop_sequence;                  // kFinish with kStopSequence
  // kFinish with kError: what failed. kFinish with kToolCalls: INVALID_ARGUMENT when the model's
  // calls were malformed (none is reported), worded for the agent loop to show the model.
  absl::Status status;
  int prompt_tokens = 0, completion_tokens = 0;  // kFinish
};

// Not thread-safe: one generation's tokens arrive in order on one thread.
class GenerationDecoder {
 public:
  // `tokenizer` must outlive the decoder. `tool_format` set: the request declared tools and the
  // output is read with that chat format's tool-call parser.
  GenerationDecoder(const Tokenizer* tokenizer, std::function<void(const GenerateEvent&)> sink,
                    std::vector<std::string> stop, std::optional<ChatFormat> tool_format, int prompt_tokens);

  // One generated token (not the end-of-sequence token). Returns false when a stop string ended
  // the output (the generation should stop).
  bool OnToken(int32_t id);

  // The end: flushes held text, reports the tool calls and the final event.
  void OnDone(StopReason reason, const absl::Status& status, int generated);

 private:
  const Tokenizer* tokenizer_;
  std::function<void(const GenerateEvent&)> sink_;
  TextStream text_;
  std::unique_ptr<ToolCallParser> tools_;  // null when the request has no tools
  int32_t prev_ = -1;
  int prompt_tokens_ = 0;
  std::vector<int32_t> pending_ids_;
};

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_GENERATION_DECODER_H_
