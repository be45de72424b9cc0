// LexicalHashEmbedder: a deterministic, model-free Embedder used when no
// embedding model is configured (and as a fast fake in tests).
//
// A text becomes a bag of hashed features, projected to `dimensions` floats:
//   - tokenisation: ASCII letters and digits are lowercased; every byte >= 0x80
//     (UTF-8 multibyte sequences, and also invalid UTF-8) counts as a word
//     character, so "Zürich" and "東京" stay one word each; every other ASCII
//     byte separates words. Only ASCII is case-folded.
//   - features: word unigrams (weight 1.0), word bigrams (0.5) and character
//     3-, 4- and 5-grams of each word padded as "<word>" (0.25), counted over
//     UTF-8 code points (an invalid byte counts as one character). Character
//     n-grams use at most the first 64 characters of a word, so one huge
//     "word" (a base64 blob) cannot dominate the cost.
//   - term frequency: sublinear, weight * (1 + ln tf).
//   - projection: each feature's 64-bit FNV-1a hash, mixed with the seed,
//     seeds a splitmix64 stream that yields that feature's ±1 row of a random
//     projection on the fly (no matrix is stored). Weights are accumulated in
//     fixed point (integers), so the result does not depend on feature order,
//     and the final vector is L2-normalised.
// The output is bit-identical across runs, processes and machines (no
// std::hash / absl::Hash, no floating-point accumulation order effects).
// A text with no word characters (empty, whitespace, punctuation only)
// embeds to the all-zero vector: it has no direction, so it matches nothing.
//
// Thread-safe: the object is immutable after Create.
#ifndef TESSERA_SERVICES_RETRIEVAL_INDEX_LEXICAL_HASH_EMBEDDER_H_
#define TESSERA_SERVICES_RETRIEVAL_INDEX_LEXICAL_HASH_EMBEDDER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/retrieval/index/embedder.h"

namespace tessera::retrieval {

class LexicalHashEmbedder final : public Embedder {
 public:
  // "TESSERA1" in ASCII. Changing the seed changes every vector (and name()).
  static constexpr uint64_t kDefaultSeed = 0x5445535345524131ULL;
  static constexpr int kMaxDimensions = 1 << 16;

  struct Options {
    int dimensions = 384;
    uint64_t seed = kDefaultSeed;
  };

  // INVALID_ARGUMENT unless 0 < dimensions <= kMaxDimensions.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<LexicalHashEmbedder>> Create(Options options);
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<LexicalHashEmbedder>> Create() {
    return Create(Options{});
  }

  int dimensions() const override { return options_.dimensions; }

  // "lexical-hash-<dimensions>" for the default seed ("lexical-hash-384"),
  // "lexical-hash-<dimensions>-s<seed as hex>" otherwise.
  std::string name() const override;

  // Never fails.
  [[nodiscard]] absl::StatusOr<std::vector<std::vector<float>>> Embed(
      const std::vector<std::string>& texts) override;

  // The vector of one text (what Embed returns for it).
  std::vector<float> EmbedText(absl::string_view text) const;

 private:
  explicit LexicalHashEmbedder(Options options) : options_(options) {}

  const Options options_;
};

}  // namespace tessera::retrieval

#endif  // TESSERA_SERVICES_RETRIEVAL_INDEX_LEXICAL_HASH_EMBEDDER_H_
