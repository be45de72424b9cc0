#include "tests/agents/scripted_mistral_model.h"

#include <cstdlib>
#include <thread>

#include "absl/strings/str_cat.h"
#include "engine/chat/render.h"
#include "engine/generation_decoder.h"
#include "engine/tokenizer/spm_model.h"
#include "services/engine/engine_service.h"

namespace tessera::agents::testing {

namespace v1 = ::tessera::v1;

absl::StatusOr<std::unique_ptr<ScriptedMistralModel>> ScriptedMistralModel::Create(const std::string& tokenizer_path,
                                                                                  engine::ChatFormat format,
                                                                                  Script script) {
  auto tok = engine::LoadSentencePieceModel(tokenizer_path);
  if (!tok.ok()) return tok.status();
  std::unique_ptr<ScriptedMistralModel> m(new ScriptedMistralModel());
  m->tokenizer_ = std::move(*tok);
  m->format_ = format;
  m->script_ = std::move(script);
  return m;
}

absl::Status ScriptedMistralModel::Generate(const v1::GenerateRequest& request, Cancellation& cancel,
                                            const std::function<void(const v1::GenerateResponse&)>& on_event) {
  // The same request checks and conversion as EngineService, and the real template.
  absl::StatusOr<engine::GenerateParams> params = engine_service::ToGenerateParams(request);
  if (!params.ok()) return params.status();
  absl::StatusOr<std::vector<int32_t>> prompt =
      engine::RenderChat(format_, params->messages, params->tools, *tokenizer_);
  if (!prompt.ok()) return prompt.status();
  ScriptTurn turn;
  turn.prompt_text = tokenizer_->Decode(*prompt, /*keep_special=*/true);
  turn.request = request;
  {
    absl::MutexLock lock(&mu_);
    turn.index = static_cast<int>(turns_.size());
    turns_.push_back(turn);
  }
  ScriptReply reply = script_(turn);
  if (!reply.fail.ok()) return reply.fail;

  std::optional<engine::ChatFormat> tool_format;
  if (!params->tools.empty()) tool_format = format_;
  engine::GenerationDecoder decoder(
      tokenizer_.get(),
      [&](const engine::GenerateEvent& e) {
        for (const v1::GenerateResponse& r : engine_service::ToGenerateResponses(e)) on_event(r);
      },
      params->stop, tool_format, static_cast<int>(prompt->size()));
  const std::vector<int32_t> ids = tokenizer_->Encode(reply.output, /*add_special=*/false, /*parse_special=*/true);
  int generated = 0;
  for (int32_t id : ids) {
    if (cancel.cancelled()) {
      decoder.OnDone(engine::StopReason::kCancelled, absl::CancelledError(), generated);
      return absl::OkStatus();
    }
    if (reply.per_token_delay > absl::ZeroDuration()) absl::SleepFor(reply.per_token_delay);
    ++generated;
    if (params->max_tokens > 0 && generated > params->max_tokens) {
      decoder.OnDone(engine::StopReason::kLength, absl::OkStatus(), generated - 1);
      return absl::OkStatus();
    }
    if (!decoder.OnToken(id)) {
      decoder.OnDone(engine::StopReason::kCallback, absl::OkStatus(), generated);
      return absl::OkStatus();
    }
  }
  decoder.OnDone(reply.stop_at_length ? engine::StopReason::kLength : engine::StopReason::kEos, absl::OkStatus(),
                 generated);
  return absl::OkStatus();
}

std::vector<ScriptTurn> ScriptedMistralModel::turns() const {
  absl::MutexLock lock(&mu_);
  return turns_;
}

std::string MistralTokenizerPath(const std::string& version) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  const std::string rel = absl::StrCat("engine/chat/testdata/mistral-", version, ".model");
  if (srcdir != nullptr && ws != nullptr) return absl::StrCat(srcdir, "/", ws, "/", rel);
  return rel;
}

}  // namespace tessera::agents::testing
