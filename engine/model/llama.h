// The Llama/Mistral decoder: token embeddings, N blocks of (RMSNorm, grouped-query attention
// with RoPE over the paged KV cache, RMSNorm, SwiGLU feed-forward), a final RMSNorm and the
// output projection. Loaded from GGUF (llama.cpp's tensor names, q/k permuted for adjacent-pair
// RoPE) or from a Hugging Face safetensors directory (LlamaForCausalLM / MistralForCausalLM
// names, half-split RoPE). Runs on any Backend; one Forward call processes the tokens of many
// sequences at once (continuous batching), each at its own positions.
#ifndef TESSERA_ENGINE_MODEL_LLAMA_H_
#define TESSERA_ENGINE_MODEL_LLAMA_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "engine/backend/backend.h"
#include "engine/model/gguf.h"
#include "engine/model/safetensors.h"

namespace tessera::engine {

struct LlamaConfig {
  std::string architecture = "llama";
  int vocab_size = 0;
  int dim = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int ffn_dim = 0;
  int context_length = 0;
  float norm_eps = 1e-5f;
  RopeParams rope;
  int sliding_window = 0;  // 0: none
};

// The tokens of one forward pass. Parallel arrays, one entry per token: its id, its sequence
// (index into block_tables), its position, and the cache slot its key/value go to. logits_for
// lists the token indices whose next-token logits the caller wants (usually the last token of
// each sequence); Forward returns them in that order.
struct ForwardBatch {
  absl::Span<const int32_t> tokens;
  absl::Span<const int32_t> token_seq;
  absl::Span<const int32_t> token_pos;
  absl::Span<const int32_t> slots;
  std::vector<absl::Span<const int32_t>> block_tables;
  absl::Span<const int32_t> logits_for;
};

// The weights of the decoder, for LlamaModel::FromWeights. Per-layer tensors come with the layer
// index; the others with -1.
enum class LlamaTensor {
  kTokenEmbd, kOutputNorm, kOutput,
  kAttnNorm, kWq, kWk, kWv, kWo, kFfnNorm, kGate, kUp, kDown,
};

class LlamaModel {
 public:
  // Loads tensor `t` of layer `layer` into the backend; it must be [rows, cols].
  using TensorSource = std::function<absl::StatusOr<std::unique_ptr<Weight>>(
      LlamaTensor t, int layer, int64_t rows, int64_t cols)>;

  // `file` must outlive the model (the CPU backend reads weights from the mapping).
  static absl::StatusOr<std::unique_ptr<LlamaModel>> FromGguf(const GgufFile& file,
                                                               Backend* backend);
  static absl::StatusOr<std::unique_ptr<LlamaModel>> FromSafetensors(
      const SafetensorsModel& model, Backend* backend);
  // A model from a config and any source of weights (both loaders above use it; the GPU
  // benchmark gives it random weights of real model shapes).
  static absl::StatusOr<std::unique_ptr<LlamaModel>> FromWeights(LlamaConfig config,
                                                                 Backend* backend,
                                                                 const TensorSource& source);

  ~LlamaModel();

  const LlamaConfig& config() const { return config_; }
  Backend* backend() const { return backend_; }

  // A cache shaped for this model with `num_blocks` blocks of `block_size` tokens.
  absl::StatusOr<std::unique_ptr<KvCache>> NewCache(int num_blocks, int block_size) const;

  // Runs the batch, writing keys/values into `cache`, and fills `logits` with
  // batch.logits_for.size() rows of vocab_size floats. Not thread-safe with itself: the
  // scheduler serialises calls.
  absl::Status Forward(const ForwardBatch& batch, KvCache& cache, std::vector<float>* logits);

  // Runs the batch like Forward but leaves the logits where the backend computed them and
  // returns sampling candidates for each logits row (Backend::TopK; request has one entry per
  // batch.logits_for row). CopyLogitsRow then copies row i of that pass's (penalised) logits,
  // for the draws the candidates do not decide.
  absl::Status ForwardTopK(const ForwardBatch& batch, KvCache& cache, const TopKRequest& request,
                           TopKRows* out);
  absl::Status CopyLogitsRow(int64_t i, std::vector<float>* row);

 private:
  struct Layer {
    std::unique_ptr<Weight> attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down;
  };
  struct Workspace;

  LlamaModel(LlamaConfig config, Backend* backend);
  absl::Status Validate() const;
  Workspace& GetWorkspace(int64_t num_tokens, int64_t num_logits);
  // Checks and runs the batch; the logits stay in workspace_->logits.
  absl::Status Run(const ForwardBatch& batch, KvCache& cache);
  // The decoder blocks over ws.x (the embedded tokens).
  void ForwardLayers(const ForwardBatch& batch, const PagedAttentionBatch& attn, int64_t n,
                     KvCache& cache, Workspace& ws);

  LlamaConfig config_;
  Backend* backend_;
  std::unique_ptr<Weight> token_embd_, output_norm_, output_;
  std::vector<Layer> layers_;
  std::unique_ptr<Workspace> workspace_;
  int64_t workspace_tokens_ = 0, workspace_logits_ = 0;
  int64_t last_rows_ = 0;  // logits rows of the last ForwardTopK
};

// Turns a TensorView (GGML order) into the backend's WeightData, checking the expected
// [rows, cols] (-1 accepts any). Shared by every model definition.
absl::StatusOr<WeightData> ToWeightData(const TensorView& t, int64_t rows, int64_t cols);
absl::StatusOr<std::unique_ptr<Weight>> LoadTensor(Backend* backend, const ModelFile& file,
                                                   std::string_view name, int64_t rows,
                                                   int64_t cols);

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_MODEL_LLAMA_H_
