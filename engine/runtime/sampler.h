// Choosing the next token from a row of logits: greedy, or temperature sampling restricted by
// top-k and top-p, with a CTRL-style repetition penalty over the tokens seen so far. Seeded and
// deterministic: the same seed and logits give the same choices. Without top-k only as much of
// the row is sorted as the top-p cut or the draw reaches.
#ifndef TESSERA_ENGINE_RUNTIME_SAMPLER_H_
#define TESSERA_ENGINE_RUNTIME_SAMPLER_H_

#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
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

// A row's sampling candidates, as Backend::TopK (engine/backend/backend.h) returns them: the k
// largest finite logits (after the repetition penalty) in descending order, equal values by
// lower id, padded with id -1; the row's sum of softmax terms at this sampler's temperature
// (when SumTemperature() asked for it); its count of non-finite logits; its width.
struct TopCandidates {
  const float* values = nullptr;
  const int32_t* ids = nullptr;
  int k = 0;
  double sum_exp = 0;
  int32_t nonfinite = 0;
  int64_t cols = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options);

  // Picks a token from `logits` (modified in place by the penalty). The penalty applies to the
  // tokens Observe()d so far (prompt and output).
  int32_t Sample(absl::Span<float> logits);
  void Observe(int32_t token) { seen_.insert(token); }

  // The same choice as Sample() on the whole row, from the row's candidates (the penalty already
  // applied where the logits are). `full_row` returns the whole penalised row; it is called only
  // when the candidates cannot decide: non-finite logits, a top-k larger than the candidates, a
  // top-p nucleus longer than them, or (no top-k, no top-p) a draw that falls past them. With no
  // top-k the normaliser is TopCandidates::sum_exp: Sample() sums the row in index order as the
  // CPU backend's TopK does, so the choices are identical there; a device that sums in another
  // order (or rounds expf differently) can differ only at a float-rounding boundary of the top-p
  // cut or the draw.
  int32_t SampleTop(const TopCandidates& c, absl::FunctionRef<std::vector<float>()> full_row);

  // What SampleTop needs: how many candidates (at most max_k), the temperature to sum the whole
  // row's softmax terms at (0: not needed), and the penalty with its tokens.
  int CandidatesNeeded(int max_k) const;
  float SumTemperature(int max_k) const;
  float penalty() const { return options_.repetition_penalty; }
  const absl::flat_hash_set<int32_t>& penalised() const { return seen_; }

 private:
  int32_t SamplePenalized(absl::Span<float> logits);
  // From candidates_ (sorted, cut to top-k): softmax terms, the top-p cut, the draw.
  int32_t DrawSorted();
  // The draw over candidates_ (softmax terms) whose sum is `total`.
  int32_t Draw(double total);
  // No top-k: from the row's finite logits in candidates_ (any order), its max and softmax sum,
  // the top-p cut and the draw (`drawn`: the uniform value already drawn, if any), sorting only as
  // much of the row as they reach.
  int32_t DrawFromRow(float max, double total, std::optional<double> drawn);
  // Sorts candidates_ further: [0, sorted) already holds the best in order; returns how many do
  // now (at least `want`, or all).
  size_t SortMore(size_t sorted, size_t want);
  float Term(float logit, float max) const {
    return static_cast<float>(std::exp((logit - max) / options_.temperature));
  }

  SamplingOptions options_;
  std::mt19937_64 rng_;
  absl::flat_hash_set<int32_t> seen_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_RUNTIME_SAMPLER_H_
