#include "services/retrieval/index/vector_index.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace tessera::retrieval {

IdFilter::~IdFilter() = default;

IdSetFilter::IdSetFilter(const std::vector<int64_t>& ids) : ids_(ids.begin(), ids.end()) {}

IdSetFilter::IdSetFilter(absl::flat_hash_set<int64_t> ids) : ids_(std::move(ids)) {}

bool IdSetFilter::Contains(int64_t id) const { return ids_.contains(id); }

VectorIndex::~VectorIndex() = default;

absl::StatusOr<std::vector<VectorHit>> VectorIndex::Search(const std::vector<float>& query, int k,
                                                           const IdFilter* filter) const {
  if (static_cast<int64_t>(query.size()) != dimensions()) {
    return absl::InvalidArgumentError(
        absl::StrCat("query has ", query.size(), " dimensions; the index has ", dimensions()));
  }
  return Search(query.data(), k, filter);
}

absl::Status VectorIndex::Add(const std::vector<int64_t>& ids, const std::vector<float>& vectors) {
  const uint64_t want = static_cast<uint64_t>(ids.size()) * static_cast<uint64_t>(dimensions());
  if (vectors.size() != want) {
    return absl::InvalidArgumentError(absl::StrCat("got ", vectors.size(), " floats for ",
                                                   ids.size(), " ids of ", dimensions(),
                                                   " dimensions (want ", want, ")"));
  }
  return Add(ids, vectors.empty() ? nullptr : vectors.data());
}

}  // namespace tessera::retrieval
