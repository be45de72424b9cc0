// FaissVectorIndex: the VectorIndex implementation on FAISS 1.7.3, and the
// only place in Tessera that touches FAISS (which throws): every FAISS
// exception is caught here and becomes an absl::Status. No FAISS type appears
// in this header.
//
// Supported factory strings (anything else is INVALID_ARGUMENT):
//   "Flat"                 exact search.
//   "HNSW<M>", "HNSW<M>,Flat"   graph search, tuned by hnsw_ef_search.
//   "IVF<n>,Flat", "IVF<n>,PQ<m>", "IVF<n>,SQ<b>"   inverted file with a flat
//                          coarse quantizer, tuned by ivf_nprobe; needs training.
//
// External ids: the FAISS index is wrapped in faiss::IndexIDMap2, so ids are
// the caller's. FAISS 1.7.3's IndexIDMap::search rejects SearchParameters
// outright ("search params not supported for this index"), so searches go to
// the wrapped index directly, with an IDSelector that translates FAISS's
// internal sequential ids to ours (IndexIDMap2::id_map) before asking the
// IdFilter, and that also excludes tombstones. Flat, HNSW (through
// SearchParametersHNSW) and IVF (through SearchParametersIVF) honour that
// selector inside the scan in 1.7.3. Exact hit counts are then guaranteed:
//   - Flat scans everything the selector admits.
//   - HNSW explores a bounded part of the graph and can return fewer than k
//     admitted vectors for a selective filter; then the same selector is run
//     as an exact scan over the HNSW's flat storage.
//   - IVF visits ivf_nprobe lists and can likewise come up short; then the
//     search is repeated over all lists (nprobe = nlist), which is exact in
//     the number of hits.
//   Results are never obtained by filtering a larger unfiltered top-k.
//
// Removal: Flat removes for real. HNSW cannot remove (remove_ids throws) and
// IndexIDMap2::remove_ids over IVF corrupts the id mapping in 1.7.3 (it
// compacts id_map as if the sub-index renumbered, which IVF does not), so
// both keep tombstones, excluded by the selector and reported by Describe().
// CompactIfNeeded() rebuilds the index from its live vectors once
// tombstones exceed max_tombstone_fraction of the stored vectors.
//
// Other FAISS 1.7.3 quirks handled here: SearchParametersHNSW::efSearch is
// ignored (HNSW::search reads the index member), so hnsw_ef_search is set on
// the index itself; index_factory enables polysemous training for IVF-PQ,
// which we never use and which makes training several times slower, so it is
// turned off. FAISS uses OpenMP for training and batch adds; OMP_NUM_THREADS
// bounds it.
//
// Training (IVF): until trained, vectors live in an exact flat side index
// (searched and filtered the same way), so search works from the first Add.
// TrainIfReady() trains once at least train_min_vectors are present and
// moves the vectors into the trained index.
//
// Thread-safety: all methods are thread-safe. Search, size, Describe and Save
// take a reader lock and run concurrently with one another; Add and Remove
// take the writer lock briefly. TrainIfReady / Compact do their heavy work
// (snapshot, training, building the new index) without blocking searches,
// then take the writer lock only to replay the Adds and Removes that arrived
// meanwhile and swap the new index in. They may be called from a background
// thread; concurrent calls to them are serialised.
#ifndef TESSERA_SERVICES_RETRIEVAL_INDEX_FAISS_VECTOR_INDEX_H_
#define TESSERA_SERVICES_RETRIEVAL_INDEX_FAISS_VECTOR_INDEX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/file_system.h"
#include "services/retrieval/index/vector_index.h"

namespace faiss {
struct Index;
}  // namespace faiss

namespace tessera::retrieval {

class FaissVectorIndex final : public VectorIndex {
 public:
  enum class Metric {
    // Inner product; with unit vectors, cosine similarity. Score = product.
    kInnerProduct,
    // Squared Euclidean distance. Score = -distance.
    kL2,
  };

  struct Options {
    // A FAISS index_factory string; see the file comment for those accepted.
    std::string factory = "Flat";
    // Vector length. Required by Create; for Load, 0 accepts the file's.
    int dimensions = 0;
    Metric metric = Metric::kInnerProduct;
    // HNSW: candidate list size at search (raised to k when k is larger).
    int hnsw_ef_search = 128;
    // IVF: inverted lists visited per search (capped at nlist).
    int ivf_nprobe = 16;
    // IVF: vectors needed before TrainIfReady trains. 0 = automatic:
    // 39 * nlist, and at least 39 * 256 for PQ / 8-bit codebooks (FAISS's
    // advice for k-means). An explicit value must be at least what FAISS
    // needs at all (nlist, and 2^bits for PQ).
    int64_t train_min_vectors = 0;
    // CompactIfNeeded rebuilds when tombstones exceed this fraction of the
    // stored vectors. In (0, 1].
    double max_tombstone_fraction = 0.2;
    // When true, Add calls TrainIfReady and Remove calls CompactIfNeeded
    // themselves (in the calling thread, after releasing the writer lock, so
    // searches are not blocked). Set false to run them from a background
    // thread instead.
    bool inline_maintenance = true;
    // Where Save writes and Load reads. Not owned; null = LocalFileSystem().
    FileSystem* file_system = nullptr;
  };

  // Creates an empty index. INVALID_ARGUMENT for dimensions <= 0, a factory
  // string FAISS cannot parse (with FAISS's message) or one not supported
  // here, or other out-of-range options.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<FaissVectorIndex>> Create(Options options);

  // Reads an index written by Save. NOT_FOUND when `path` does not exist;
  // DATA_LOSS when the file is corrupt or truncated (checksummed) or is not
  // an index file; FAILED_PRECONDITION when its dimensions, metric or
  // factory differ from `options` (the caller should rebuild); otherwise the
  // file system's error. Tuning options (ef_search, nprobe, ...) come from
  // `options`, not from the file.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<FaissVectorIndex>> Load(
      const std::string& path, Options options);

  ~FaissVectorIndex() override;
  FaissVectorIndex(const FaissVectorIndex&) = delete;
  FaissVectorIndex& operator=(const FaissVectorIndex&) = delete;

  using VectorIndex::Add;
  using VectorIndex::Search;

  int dimensions() const override { return dimensions_; }
  int64_t size() const override;

  // See VectorIndex. INTERNAL if FAISS fails.
  [[nodiscard]] absl::Status Add(const std::vector<int64_t>& ids, const float* vectors) override;
  [[nodiscard]] absl::Status Remove(const std::vector<int64_t>& ids) override;
  [[nodiscard]] absl::StatusOr<std::vector<VectorHit>> Search(
      const float* query, int k, const IdFilter* filter) const override;
  // The whole index is serialised in memory before the atomic write.
  [[nodiscard]] absl::Status Save(const std::string& path) const override;
  std::string Describe() const override;

  // IVF only: trains and moves the vectors out of the exact side index once
  // train_min_vectors are present. Returns true if this call trained, false
  // when there was nothing to do (not IVF, already trained, too few
  // vectors). INTERNAL if FAISS fails (the index stays untrained and usable).
  [[nodiscard]] absl::StatusOr<bool> TrainIfReady();

  // Rebuilds without tombstones if they exceed max_tombstone_fraction.
  // Returns true if it rebuilt.
  [[nodiscard]] absl::StatusOr<bool> CompactIfNeeded();

  // Rebuilds without tombstones now (no-op when there are none). For IVF-PQ
  // the live vectors are re-encoded from their decoded codes.
  [[nodiscard]] absl::Status Compact();

  // False only for an IVF index whose vectors still wait in the side index.
  bool is_trained() const;
  // Removed vectors still stored (HNSW, IVF); 0 for Flat.
  int64_t tombstones() const;

 private:
  enum class Kind { kFlat, kHnsw, kIvf };
  struct Part;  // One FAISS index with its id map and tombstones (in the .cc).

  struct Config {
    Kind kind = Kind::kFlat;  // kind of the final (trained) index
    int64_t nlist = 0;        // IVF lists
    int64_t train_min = 0;    // effective train_min_vectors
    int64_t train_floor = 0;  // fewest vectors FAISS can train on
  };

  FaissVectorIndex(Options options, Config config);

  // Validates options and works out the Config; `empty` receives a fresh
  // (untrained) inner index built from the factory string.
  static absl::StatusOr<Config> Configure(const Options& options,
                                          std::unique_ptr<faiss::Index>* empty);
  static absl::StatusOr<std::unique_ptr<FaissVectorIndex>> LoadImpl(const std::string& path,
                                                                    Options options);

  // Builds a replacement for `active_` from a snapshot of its live vectors
  // (training it first when `train`), then swaps it in. Returns false when
  // training was asked for but too few vectors remained.
  absl::StatusOr<bool> Rebuild(bool train) ABSL_EXCLUSIVE_LOCKS_REQUIRED(rebuild_mu_);
  absl::StatusOr<std::vector<VectorHit>> SearchLocked(const float* query, int k,
                                                      const IdFilter* filter) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::string> SerializeLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  std::unique_ptr<faiss::Index> NewEmptyInnerLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const Options options_;
  const Config config_;
  const int dimensions_;
  FileSystem* const fs_;

  // Serialises TrainIfReady / Compact. Acquired before mu_.
  absl::Mutex rebuild_mu_;

  mutable absl::Mutex mu_;
  std::unique_ptr<Part> active_ ABSL_GUARDED_BY(mu_);
  // False while an IVF index's vectors are in the flat side index.
  bool trained_ ABSL_GUARDED_BY(mu_) = true;
  // The empty index a rebuild starts from: the untrained IVF before
  // training, the trained but empty IVF after. Null for Flat / HNSW (made
  // from the factory string).
  std::unique_ptr<faiss::Index> template_ ABSL_GUARDED_BY(mu_);
  // While a rebuild runs: the final state of every id touched since its
  // snapshot (the vector, or empty for removed), to replay before the swap.
  bool rebuilding_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<int64_t, std::vector<float>> rebuild_log_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::retrieval

#endif  // TESSERA_SERVICES_RETRIEVAL_INDEX_FAISS_VECTOR_INDEX_H_
