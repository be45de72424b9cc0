// Choosing the next token from a row of logits: greedy, or temperature sampling restricted by
// top-k and top-p, with a CTRL-style repetition penalty over the tokens seen so far. Seeded and
// deterministic: the same seed and logits give the same choices.
#ifndef TESSERA_ENGINE_RUNTIME_SAMPLER_H_
#define TESSERA_ENGINE_RUNTIME_SAMPLER_H_

#include <cstdint>
#include <random>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/types/span.h"

namespace tessera::engine {

struct SamplingOptions {
  float temperature = 1.0f;         // 0: greedy
  int top_k = 0;                    // 0: no limit
  float top_p = 1.0f;               // (0, 1]
  float repetition_penalty = 1.0f;  // > 0; 1: none
  uint64_t seed = 0;
};

// INVALID_ARGUMENT naming the bad field.
absl::Status ValidateSamplingOptions(const SamplingOptions& options);

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options);

  // Picks a token from `logits` (modified in place by the penalty). `seen` are the tokens the
  // repetition penalty applies to (prompt and output so far).
  int32_t Sample(absl::Span<float> logits);
  void Observe(int32_t token) { seen_.insert(token); }

 private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
  absl::flat_hash_set<int32_t> seen_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_RUNTIME_SAMPLER_H_
