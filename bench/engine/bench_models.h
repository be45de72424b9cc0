// The model files of the engine benchmark, generated once with seeded random weights and kept in
// a cache folder (real shapes, random weights: honest for speed, see the reference notes):
//  - Mistral-7B shapes with 2 layers (dim 4096, 32 heads, 8 KV heads, head 128, FFN 14336,
//    vocab 32000, RoPE theta 1e6), as F16 and as Q8_0, with a llama-style SPM vocabulary
//    (<unk>, <s>, </s>, 256 byte tokens and synthetic pieces) so that llama.cpp loads them;
//  - bge-small shapes (BERT, dim 384, 12 layers, 12 heads, FFN 1536, 512 positions, CLS
//    pooling) in F16, with the real bge WordPiece vocabulary copied from a vocab-only GGUF.
// The files carry the GGUF keys and tensor names that llama.cpp's `llama` and `bert`
// architectures require, so both engines read the very same bytes.
#ifndef TESSERA_BENCH_ENGINE_BENCH_MODELS_H_
#define TESSERA_BENCH_ENGINE_BENCH_MODELS_H_

#include <string>

#include "absl/status/statusor.h"
#include "engine/model/dtype.h"

namespace tessera::bench {

// Mistral-7B shapes, `layers` layers, weights of `type` (F16 or Q8_0; norms stay F32).
// Returns the path of `dir`/mistral7b-shapes-<layers>l-<type>.gguf, writing it first unless a
// file of the same generator version is already there.
absl::StatusOr<std::string> EnsureMistralShapes(const std::string& dir, engine::DType type,
                                                int layers);

// bge-small shapes in F16 with the tokenizer keys of `vocab_gguf` (ggml-vocab-bert-bge.gguf).
absl::StatusOr<std::string> EnsureBgeSmallShapes(const std::string& dir,
                                                 const std::string& vocab_gguf);

}  // namespace tessera::bench

#endif  // TESSERA_BENCH_ENGINE_BENCH_MODELS_H_
