// Our side of the engine benchmark: the same work llama-bench and llama-batched-bench do, run
// in-process through LlamaModel::Forward (prefill, batch-1 decode), the Scheduler (N concurrent
// decoding streams) and BertModel::Embed (embeddings), on the same GGUF files.
#ifndef TESSERA_BENCH_ENGINE_OURS_H_
#define TESSERA_BENCH_ENGINE_OURS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/backend/backend.h"
#include "engine/model/bert.h"
#include "engine/model/gguf.h"
#include "engine/model/llama.h"

namespace tessera::bench {

// A decoder loaded from a GGUF file (weights alias the file mapping, as llama.cpp's mmap does).
class OurLlama {
 public:
  static absl::StatusOr<std::unique_ptr<OurLlama>> Load(const std::string& path,
                                                        engine::Backend* backend);

  // Bytes of weights read per decoded token: every weight but the token embedding table (one
  // row of it is read).
  int64_t weight_bytes_per_token() const { return weight_bytes_per_token_; }

  // Like llama-bench's pp test: one sequence of n random tokens in one forward pass, logits of
  // the last token only. One warm-up, then tokens/s of each of `reps` runs.
  absl::StatusOr<std::vector<double>> Prefill(int n, int reps);
  // Like llama-bench's tg test: n tokens decoded one at a time from an empty cache (positions
  // 0..n-1), each forward pass computing the logits and the next token (greedy).
  absl::StatusOr<std::vector<double>> Decode(int n, int reps);
  // `streams` requests submitted together to a Scheduler, each with a prompt of n_prompt random
  // tokens and n_gen greedy tokens. Returns the aggregate decode tokens/s: the tokens generated
  // after every stream got its first token, over the time from then to the last token.
  absl::StatusOr<double> Streams(int streams, int n_prompt, int n_gen);

 private:
  OurLlama() = default;
  std::unique_ptr<engine::GgufFile> file_;
  std::unique_ptr<engine::LlamaModel> model_;
  std::unique_ptr<engine::KvCache> cache_;  // for Prefill and Decode
  std::vector<int32_t> block_table_;
  int block_size_ = 16;
  int64_t weight_bytes_per_token_ = 0;
};

class OurBert {
 public:
  static absl::StatusOr<std::unique_ptr<OurBert>> Load(const std::string& path,
                                                       engine::Backend* backend);
  // Embeddings/s embedding `count` random sequences of `length` tokens ([CLS] ... [SEP]),
  // `batch` sequences per Embed call. One warm-up, then `reps` timed runs.
  absl::StatusOr<std::vector<double>> Embed(int count, int length, int batch, int reps);

 private:
  OurBert() = default;
  std::unique_ptr<engine::GgufFile> file_;
  std::unique_ptr<engine::BertModel> model_;
};

}  // namespace tessera::bench

#endif  // TESSERA_BENCH_ENGINE_OURS_H_
