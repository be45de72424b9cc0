// ScriptedMistralModel: a ChatModel whose weights are replaced by a script, and nothing else. Each
// request is rendered with the real Mistral chat template (engine/chat, real tokenizer), the
// script reads the rendered prompt and writes what the model "says" as raw Mistral output text
// (control tokens spelt literally, e.g. `[TOOL_CALLS][{"name": ..., "arguments": {...}}]` or, for
// v11+, `[TOOL_CALLS]name[ARGS]{...}`), which is tokenized and read back through the engine's own
// GenerationDecoder (tool-call parser, UTF-8 stream, stop strings). So the agent tests exercise the
// real templates, parsing and tool plumbing; only the choice of tokens is scripted.
#ifndef TESSERA_TESTS_AGENTS_SCRIPTED_MISTRAL_MODEL_H_
#define TESSERA_TESTS_AGENTS_SCRIPTED_MISTRAL_MODEL_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agents/orchestrator/chat_model.h"
#include "engine/chat/chat_format.h"
#include "engine/tokenizer/tokenizer.h"

namespace tessera::agents::testing {

struct ScriptTurn {
  int index = 0;             // 0 for the first request of the model's life
  std::string prompt_text;   // the rendered prompt, control tokens included
  tessera::v1::GenerateRequest request;
};

struct ScriptReply {
  std::string output;             // raw model output (see the file comment)
  bool stop_at_length = false;    // end as if max_tokens was reached instead of with EOS
  absl::Status fail;              // non-OK: Generate returns this before any event
  absl::Duration per_token_delay; // to test cancellation mid-stream
};

class ScriptedMistralModel final : public ChatModel {
 public:
  using Script = std::function<ScriptReply(const ScriptTurn&)>;

  // Loads the tokenizer (a Mistral SentencePiece .model) for `format`.
  static absl::StatusOr<std::unique_ptr<ScriptedMistralModel>> Create(const std::string& tokenizer_path,
                                                                      engine::ChatFormat format, Script script);

  absl::Status Generate(const tessera::v1::GenerateRequest& request, Cancellation& cancel,
                        const std::function<void(const tessera::v1::GenerateResponse&)>& on_event) override;
  std::string Describe() const override { return "scripted-mistral"; }

  // Every turn seen so far.
  std::vector<ScriptTurn> turns() const;

 private:
  ScriptedMistralModel() = default;
  std::unique_ptr<engine::Tokenizer> tokenizer_;
  engine::ChatFormat format_;
  Script script_;
  mutable absl::Mutex mu_;
  std::vector<ScriptTurn> turns_ ABSL_GUARDED_BY(mu_);
};

// The path of a Mistral tokenizer in the test's runfiles: "v3" or "v7".
std::string MistralTokenizerPath(const std::string& version);

}  // namespace tessera::agents::testing

#endif  // TESSERA_TESTS_AGENTS_SCRIPTED_MISTRAL_MODEL_H_
