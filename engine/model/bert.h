// The BERT encoder for embeddings (bge, all-MiniLM, e5: absolute positions, post-LayerNorm,
// GELU, CLS or mean pooling) and the BERT cross-encoder for reranking (the [CLS] vector through
// the pooler's dense + tanh and a one-logit classifier). Loaded from GGUF (llama.cpp's `bert`
// tensor names) or a Hugging Face safetensors directory (BertModel /
// BertForSequenceClassification names, with or without the "bert." prefix). Runs on any Backend.
#ifndef TESSERA_ENGINE_MODEL_BERT_H_
#define TESSERA_ENGINE_MODEL_BERT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/backend/backend.h"
#include "engine/model/gguf.h"
#include "engine/model/safetensors.h"

namespace tessera::engine {

enum class Pooling { kCls, kMean };

struct BertConfig {
  int vocab_size = 0;
  int dim = 0;
  int num_layers = 0;
  int num_heads = 0;
  int ffn_dim = 0;
  int max_positions = 512;
  int type_vocab_size = 2;
  float norm_eps = 1e-12f;
  Pooling pooling = Pooling::kCls;
  bool is_reranker = false;  // has the pooler + classifier head
};

class BertModel {
 public:
  // `file` must outlive the model.
  static absl::StatusOr<std::unique_ptr<BertModel>> FromGguf(const GgufFile& file,
                                                             Backend* backend);
  static absl::StatusOr<std::unique_ptr<BertModel>> FromSafetensors(
      const SafetensorsModel& model, Backend* backend);

  const BertConfig& config() const { return config_; }

  // Pooled (not normalised) embeddings of each sequence: one row of dim floats per sequence.
  // Each sequence is the full token list ([CLS] ... [SEP]), at most max_positions long. Runs in
  // passes of about the backend's PreferredPassTokens (whole sequences; the results do not depend
  // on the grouping with float weights).
  absl::StatusOr<std::vector<std::vector<float>>> Embed(
      const std::vector<std::vector<int32_t>>& sequences);

  // Relevance logits of each sequence (a [CLS] query [SEP] document [SEP] pair); `type_ids`
  // parallel to each sequence (0 for the query part, 1 for the document part). Reranker only.
  absl::StatusOr<std::vector<float>> Score(const std::vector<std::vector<int32_t>>& sequences,
                                           const std::vector<std::vector<int32_t>>& type_ids);

 private:
  struct Layer {
    std::unique_ptr<Weight> wq, bq, wk, bk, wv, bv, wo, bo, attn_norm_w, attn_norm_b;
    std::unique_ptr<Weight> ffn_up, ffn_up_b, ffn_down, ffn_down_b, out_norm_w, out_norm_b;
  };

  BertModel(BertConfig config, Backend* backend) : config_(config), backend_(backend) {}
  // The passes for `sequences`: [begin, end) index ranges of consecutive sequences, each of at most
  // the backend's PreferredPassTokens tokens (or one sequence, if that alone is longer).
  std::vector<std::pair<size_t, size_t>> Passes(
      const std::vector<std::vector<int32_t>>& sequences) const;
  absl::StatusOr<std::vector<std::vector<float>>> EmbedPass(
      const std::vector<std::vector<int32_t>>& sequences);
  absl::StatusOr<std::vector<float>> ScorePass(const std::vector<std::vector<int32_t>>& sequences,
                                               const std::vector<std::vector<int32_t>>& type_ids);
  absl::Status Validate() const;
  // Runs the encoder; returns the final hidden states of every token ([tokens, dim], on the
  // backend: poolings that need a few rows gather them there instead of copying all).
  absl::StatusOr<std::unique_ptr<Buffer>> Encode(
      const std::vector<std::vector<int32_t>>& sequences,
      const std::vector<std::vector<int32_t>>* type_ids, std::vector<int32_t>* starts);

  BertConfig config_;
  Backend* backend_;
  std::unique_ptr<Weight> token_embd_, pos_embd_, type_embd_, embd_norm_w_, embd_norm_b_;
  std::vector<Layer> layers_;
  std::unique_ptr<Weight> pooler_w_, pooler_b_, cls_w_, cls_b_;
};

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_MODEL_BERT_H_
