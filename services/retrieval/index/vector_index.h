// VectorIndex: approximate (or exact) nearest-neighbour search over dense
// vectors keyed by caller-chosen 64-bit ids (Tessera uses chunk ids), with a
// per-query id filter so that permission and metadata filtering happens
// inside the search rather than by trimming a longer result list.
//
// IdFilter: which ids a search may return. IdSetFilter is the in-memory set
// implementation the retrieval service builds from the ACL-visible chunk ids.
//
// Implementations of VectorIndex (FaissVectorIndex) are thread-safe: any
// number of concurrent Search calls may run alongside Add / Remove.
#ifndef TESSERA_SERVICES_RETRIEVAL_INDEX_VECTOR_INDEX_H_
#define TESSERA_SERVICES_RETRIEVAL_INDEX_VECTOR_INDEX_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tessera::retrieval {

// Which ids a search may return. Implementations must be thread-safe for
// concurrent reads: one filter may be shared by concurrent searches, and a
// search calls Contains from FAISS's (OpenMP) worker threads. Contains is
// called once per candidate vector, so it must be cheap.
class IdFilter {
 public:
  virtual ~IdFilter();
  virtual bool Contains(int64_t id) const = 0;
};

// An immutable set of allowed ids (hash set; O(1) Contains). Thread-safe.
class IdSetFilter : public IdFilter {
 public:
  // `ids` need not be sorted or unique.
  explicit IdSetFilter(const std::vector<int64_t>& ids);
  explicit IdSetFilter(absl::flat_hash_set<int64_t> ids);

  bool Contains(int64_t id) const override;
  // Number of distinct allowed ids.
  int64_t size() const { return static_cast<int64_t>(ids_.size()); }

 private:
  absl::flat_hash_set<int64_t> ids_;
};

struct VectorHit {
  int64_t id;
  // Higher is better: the inner product for inner-product indexes (cosine
  // for unit vectors), the negated squared L2 distance for L2 indexes.
  float score;
};

class VectorIndex {
 public:
  virtual ~VectorIndex();

  // Length of every vector; fixed at creation.
  virtual int dimensions() const = 0;

  // Number of live (added and not removed) vectors.
  virtual int64_t size() const = 0;

  // Adds ids.size() vectors; `vectors` is ids.size() x dimensions() floats,
  // row-major, read during the call only. All-or-nothing.
  // ALREADY_EXISTS when an id is already live (Remove it first to replace
  // it); INVALID_ARGUMENT for a negative id, an id repeated in the batch, a
  // null `vectors` with non-empty ids, or a non-finite value.
  [[nodiscard]] virtual absl::Status Add(const std::vector<int64_t>& ids, const float* vectors) = 0;

  // Removes the vectors with these ids; unknown ids are ignored.
  [[nodiscard]] virtual absl::Status Remove(const std::vector<int64_t>& ids) = 0;

  // The top-k hits by score, best first, among live ids accepted by `filter`
  // (null = all). Returns exactly min(k, #accepted live vectors) hits: the
  // filter is applied inside the search, never by trimming a larger top-k.
  // `query` is dimensions() floats. `filter` is borrowed for the call.
  // INVALID_ARGUMENT for k < 0 or a null query.
  [[nodiscard]] virtual absl::StatusOr<std::vector<VectorHit>> Search(
      const float* query, int k, const IdFilter* filter) const = 0;

  // Writes the index to `path` atomically (temp file + rename): a reader
  // sees the old file or the new one, never a mix.
  [[nodiscard]] virtual absl::Status Save(const std::string& path) const = 0;

  // One line for logs and admin pages: factory, metric, counts, state.
  virtual std::string Describe() const = 0;

  // Convenience overloads that check sizes, which the raw-pointer forms
  // cannot: INVALID_ARGUMENT when query.size() != dimensions() or
  // vectors.size() != ids.size() * dimensions(). Derived classes re-expose
  // them with `using VectorIndex::Search; using VectorIndex::Add;`.
  [[nodiscard]] absl::StatusOr<std::vector<VectorHit>> Search(
      const std::vector<float>& query, int k, const IdFilter* filter = nullptr) const;
  [[nodiscard]] absl::Status Add(const std::vector<int64_t>& ids,
                                 const std::vector<float>& vectors);
};

}  // namespace tessera::retrieval

#endif  // TESSERA_SERVICES_RETRIEVAL_INDEX_VECTOR_INDEX_H_
