// The engine: the models named in the configuration, loaded once, with their tokenizers, chat
// templates and schedulers, behind plain C++ calls (no gRPC types: services/engine maps these to
// EngineService). Generation is continuous-batched per model; embedding calls that arrive
// together are run as one batch.
#ifndef TESSERA_ENGINE_ENGINE_H_
#define TESSERA_ENGINE_ENGINE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/chat/chat.h"
#include "engine/generation_decoder.h"
#include "engine/runtime/sampler.h"
#include "engine/runtime/scheduler.h"

namespace tessera::engine {

enum class ModelKind { kAuto, kGeneration, kEmbedding, kRerank };
std::string_view ModelKindName(ModelKind kind);

// One model of the configuration.
struct ModelConfig {
  std::string id;    // the name clients call it by
  std::string path;  // a .gguf file, or a directory with config.json, *.safetensors and a
                     // tokenizer (tokenizer.json, tokenizer.model or vocab.txt)
  ModelKind kind = ModelKind::kAuto;  // detected from the file when kAuto
  std::string chat_format;            // "mistral-v1" ... "mistral-v13"; "" detects it
  int context_length = 0;             // 0: the model's own; otherwise a smaller cap
  int kv_cache_mb = 512;              // memory for the paged KV cache (generation)
  int max_running = 32;               // sequences decoded together
  int max_queued = 256;               // waiting requests before RESOURCE_EXHAUSTED
  int max_batch_tokens = 16384;       // tokens per embedding/rerank forward pass
};

struct EngineOptions {
  std::string device = "auto";  // "auto", "cpu", "cuda"
  int num_threads = 0;          // CPU threads; 0 = all cores
  std::vector<ModelConfig> models;
};

struct ModelInfo {
  std::string id;
  ModelKind kind;
  std::string architecture;
  int context_length = 0;
  int embedding_dimensions = 0;
  std::string backend;
  std::string tokenizer;
  std::string chat_format;
  std::string quantization;  // the type of most weights: "F32", "F16", "Q8_0", ...
  int64_t parameter_count = 0;
};

enum class Truncate { kEnd, kStart, kNone };

struct EmbedParams {
  std::string model;
  std::vector<std::string> inputs;
  bool normalize = false;
  Truncate truncate = Truncate::kEnd;
  int dimensions = 0;
};
struct EmbedResult {
  std::vector<std::vector<float>> vectors;
  std::vector<int> token_counts;
  std::vector<bool> truncated;
  int dimensions = 0;
};

struct RerankParams {
  std::string model;
  std::string query;
  std::vector<std::string> documents;
  int top_n = 0;
  Truncate truncate = Truncate::kEnd;
};
struct RerankResult {
  std::vector<std::pair<int, double>> results;  // (document index, sigmoid score), best first
  int64_t tokens = 0;
};

struct TokenizeResult {
  std::vector<int32_t> ids;
  std::vector<std::string> pieces;  // raw bytes of each token
};

struct GenerateParams {
  std::string model;
  std::optional<std::string> prompt;  // raw text, or
  std::vector<ChatMessage> messages;  // a chat rendered with the model's template
  std::vector<ToolSpec> tools;
  SamplingOptions sampling;
  bool seed_set = false;  // otherwise a random seed
  int max_tokens = 0;
  std::vector<std::string> stop;
  bool truncate_prompt = false;
};

class Engine {
 public:
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const EngineOptions& options);
  ~Engine();

  std::vector<ModelInfo> ListModels() const;
  absl::StatusOr<EmbedResult> Embed(const EmbedParams& params);
  absl::StatusOr<RerankResult> Rerank(const RerankParams& params);
  absl::StatusOr<TokenizeResult> Tokenize(const std::string& model, const std::string& text,
                                          bool add_special) const;

  // Starts generating; `sink` receives the events on the engine's thread (it must not block) and
  // is called for the last time with kFinish. Errors found before generation starts (unknown
  // model, bad parameters, prompt too long, queue full) are returned instead.
  absl::StatusOr<std::shared_ptr<GenerationHandle>> Generate(
      const GenerateParams& params, std::function<void(const GenerateEvent&)> sink);

 private:
  struct Model;
  Engine();
  absl::StatusOr<Model*> Find(const std::string& id, ModelKind kind) const;

  std::unique_ptr<Backend> backend_;
  std::vector<std::unique_ptr<Model>> models_;
};

// Reads an engine configuration from JSON: {"device": "cpu", "threads": 2, "models": [{"id": ...,
// "path": ..., "kind": "generation"|"embedding"|"rerank", ...}]}. Errors name the bad field.
absl::StatusOr<EngineOptions> ParseEngineOptions(std::string_view json);

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_ENGINE_H_
