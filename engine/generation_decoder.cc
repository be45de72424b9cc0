#include "engine/generation_decoder.h"

namespace tessera::engine {

GenerationDecoder::GenerationDecoder(const Tokenizer* tokenizer, std::function<void(const GenerateEvent&)> sink,
                                     std::vector<std::string> stop, std::optional<ChatFormat> tool_format,
                                     int prompt_tokens)
    : tokenizer_(tokenizer), sink_(std::move(sink)), text_(std::move(stop)), prompt_tokens_(prompt_tokens) {
  if (tool_format.has_value()) tools_ = std::make_unique<ToolCallParser>(*tool_format, *tokenizer_);
}

bool GenerationDecoder::OnToken(int32_t id) {
  std::string bytes = tokenizer_->TokenText(prev_, id);
  prev_ = id;
  if (tools_ != nullptr) {
    // The parser decides what is answer text and what spells a tool call.
    bytes = tools_->Feed(id, bytes);
  }
  pending_ids_.push_back(id);
  std::string out = text_.Push(bytes);
  if (!out.empty()) {
    GenerateEvent e{GenerateEvent::Type::kText};
    e.text = std::move(out);
    e.token_ids = std::move(pending_ids_);
    pending_ids_.clear();
    sink_(e);
  }
  return !text_.stopped();
}

void GenerationDecoder::OnDone(StopReason reason, const absl::Status& status, int generated) {
  std::string rest = text_.Flush();
  GenerateEvent fin{GenerateEvent::Type::kFinish};
  std::vector<ToolCall> calls;
  if (tools_ != nullptr) {
    ToolCallParseResult parsed = tools_->Finish(reason == StopReason::kLength);
    rest += text_.Push(parsed.final_text) + text_.Flush();
    calls = std::move(parsed.tool_calls);
    if (!parsed.error.ok()) {
      // Malformed calls: none is run; the error is worded for the agent loop to show the model.
      calls.clear();
      fin.reason = FinishReason::kToolCalls;
      fin.status = parsed.error;
    }
  }
  if (!rest.empty()) {
    GenerateEvent e{GenerateEvent::Type::kText};
    e.text = std::move(rest);
    e.token_ids = std::move(pending_ids_);
    sink_(e);
  }
  for (ToolCall& call : calls) {
    GenerateEvent e{GenerateEvent::Type::kToolCall};
    e.tool_call = std::move(call);
    sink_(e);
    fin.reason = FinishReason::kToolCalls;
  }
  fin.prompt_tokens = prompt_tokens_;
  fin.completion_tokens = generated;
  const bool tool_calls = fin.reason == FinishReason::kToolCalls;
  if (!tool_calls || reason == StopReason::kCancelled || reason == StopReason::kError) {
    fin.status = absl::OkStatus();
    switch (reason) {
      case StopReason::kEos: fin.reason = FinishReason::kStop; break;
      case StopReason::kLength: fin.reason = FinishReason::kLength; break;
      case StopReason::kCallback:
        fin.reason = FinishReason::kStopSequence;
        fin.stop_sequence = text_.matched_stop();
        break;
      case StopReason::kCancelled: fin.reason = FinishReason::kCancelled; break;
      case StopReason::kError:
        fin.reason = FinishReason::kError;
        fin.status = status;
        break;
    }
  }
  sink_(fin);
}

}  // namespace tessera::engine
