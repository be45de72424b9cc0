// Embedder: turns texts into fixed-size dense vectors for vector search.
//
// Retrieval embeds chunks at ingest time and queries at search time with the
// same Embedder, so both land in one vector space; name() identifies that
// space (an index built with one embedder must not be searched with another).
//
// Contract for implementations:
//   - Thread-safe: Embed may be called concurrently from many threads.
//   - Embed returns exactly texts.size() vectors, each of dimensions() floats,
//     in input order, L2-normalised (unit length), so inner product equals
//     cosine similarity. An implementation may return the all-zero vector for
//     a text with no content (it must document when).
//   - Errors: INVALID_ARGUMENT for input the model cannot take, UNAVAILABLE /
//     DEADLINE_EXCEEDED when a remote engine is unreachable or slow, INTERNAL
//     for bugs. Never throws.
#ifndef TESSERA_SERVICES_RETRIEVAL_INDEX_EMBEDDER_H_
#define TESSERA_SERVICES_RETRIEVAL_INDEX_EMBEDDER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::retrieval {

class Embedder {
 public:
  virtual ~Embedder();

  // Length of every vector Embed returns; constant for the object's life.
  virtual int dimensions() const = 0;

  // Stable identifier of the vector space, e.g. "lexical-hash-384". Stored
  // next to indexes so that a mismatch is detected on load.
  virtual std::string name() const = 0;

  // One unit-length vector per text, in order. See the file comment.
  [[nodiscard]] virtual absl::StatusOr<std::vector<std::vector<float>>> Embed(
      const std::vector<std::string>& texts) = 0;
};

}  // namespace tessera::retrieval

#endif  // TESSERA_SERVICES_RETRIEVAL_INDEX_EMBEDDER_H_
