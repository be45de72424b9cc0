// MakeBertGguf: a BERT encoder GGUF with seeded random weights and a real WordPiece vocabulary,
// laid out exactly as llama.cpp's `bert` architecture expects (tensor names, shapes, metadata),
// so that llama.cpp (through node-llama-cpp) and our engine can run the same model and be
// compared (tests/engine/bert_golden_test.cc, tests/engine/tools/bert_golden.sh).
//
// Determinism: weights come from a SplitMix64 stream turned into approximately normal values
// with integer and exact floating-point arithmetic only (no libm), so the same options and
// vocabulary give the same bytes on every machine. The F16 variant holds the same weights
// rounded; 1-D tensors (norms, biases) and token_types stay F32 in every variant, as in
// llama.cpp's converter.
#ifndef TESSERA_TESTS_ENGINE_BERT_TEST_MODEL_H_
#define TESSERA_TESTS_ENGINE_BERT_TEST_MODEL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/model/dtype.h"
#include "engine/model/gguf.h"

namespace tessera::engine::testing {

struct BertTestModelOptions {
  uint64_t seed = 20240501;
  DType dtype = DType::kF32;  // of the 2-D tensors: kF32 or kF16
  int pooling_type = 2;       // bert.pooling_type: 1 mean, 2 CLS (4 with `reranker`)
  // A cross-encoder: pooling type 4 (rank) and the classification head (cls.weight and .bias,
  // cls.output.weight and .bias), drawn after every other weight (the other tensors keep their
  // bytes).
  bool reranker = false;
  // bge-small-en-v1.5 shapes.
  int dim = 384;
  int num_layers = 12;
  int num_heads = 12;
  int ffn_dim = 1536;
  int max_positions = 512;
  int type_vocab = 2;
  float norm_eps = 1e-12f;
  // Standard deviations: embedding tables, layer matrices, LayerNorm gammas around 1, biases.
  float embd_std = 0.02f;
  float matrix_std = 0.02f;
  float norm_std = 0.1f;
  float bias_std = 0.02f;
};

// The serialized GGUF file: general.* and bert.* metadata, every tokenizer.ggml.* key of `vocab`
// (copied with its type), and the tensors. INVALID_ARGUMENT when `vocab` lacks
// tokenizer.ggml.tokens or the options are inconsistent.
absl::StatusOr<std::string> MakeBertGguf(const GgufFile& vocab, const BertTestModelOptions& options);

// FNV-1a 64 of `bytes`, as 16 lower-case hex digits (the golden file records the model's).
std::string Fnv1a64Hex(std::string_view bytes);

}  // namespace tessera::engine::testing

#endif  // TESSERA_TESTS_ENGINE_BERT_TEST_MODEL_H_
