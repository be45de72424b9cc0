// Hybrid ranking: fuses the BM25 and vector candidate lists of one search
// into one ranking, keeping each retriever's score and rank so a user can
// see why a hit ranked where it did. Pure functions; thread-safe.
#ifndef TESSERA_SERVICES_RETRIEVAL_FUSION_H_
#define TESSERA_SERVICES_RETRIEVAL_FUSION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace tessera::retrieval {

// One retriever's result: higher score is better, in rank order.
struct ScoredId {
  int64_t id;
  double score;
};

struct FusedHit {
  int64_t id = 0;
  std::optional<double> bm25;        // raw BM25 (higher is better)
  std::optional<int> bm25_rank;      // 1-based
  std::optional<double> vector;      // raw similarity
  std::optional<int> vector_rank;    // 1-based
  double fused = 0;
};

enum class FusionMethod { kReciprocalRank, kWeightedSum };

struct FusionOptions {
  FusionMethod method = FusionMethod::kReciprocalRank;
  int rrf_k = 60;
  // Weighted sum: each list's scores are min-max normalised to [0, 1] first.
  double vector_weight = 0.5;
  double bm25_weight = 0.5;
};

// Fuses and returns the best `k` (ties broken by id, so results are stable).
std::vector<FusedHit> Fuse(const std::vector<ScoredId>& bm25, const std::vector<ScoredId>& vector,
                           const FusionOptions& options, int k);

// A short excerpt of `text` (about `max_bytes`) around the first occurrence
// of a query term (case-insensitive ASCII), cut at UTF-8 boundaries and
// marked with "..." where text was left out.
std::string Snippet(absl::string_view text, absl::string_view query, size_t max_bytes = 240);

}  // namespace tessera::retrieval

#endif  // TESSERA_SERVICES_RETRIEVAL_FUSION_H_
