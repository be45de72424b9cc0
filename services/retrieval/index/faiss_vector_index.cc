#include "services/retrieval/index/faiss_vector_index.h"

#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/clone_index.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/HNSW.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <new>
#include <typeinfo>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "common/logging.h"
#include "common/status.h"
#include "services/retrieval/index/simd_flat.h"

namespace tessera::retrieval {
namespace {

using idx_t = faiss::Index::idx_t;

// ---------------------------------------------------------------------------
// Exceptions -> Status. Every FAISS call runs inside Guard.

template <typename F>
auto Guard(absl::string_view what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(absl::StrCat(what, ": FAISS: ", e.what()));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": out of memory"));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what()));
  }
}

faiss::MetricType ToFaiss(FaissVectorIndex::Metric m) {
  return m == FaissVectorIndex::Metric::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
}

const char* MetricName(FaissVectorIndex::Metric m) {
  return m == FaissVectorIndex::Metric::kL2 ? "l2" : "inner_product";
}

// ---------------------------------------------------------------------------
// The selector: FAISS hands it the wrapped index's internal sequential ids
// (IndexIDMap2 is bypassed, see the header); it answers for our ids.

class TranslatingSelector final : public faiss::IDSelector {
 public:
  TranslatingSelector(const std::vector<idx_t>& id_map, const std::vector<uint8_t>& dead,
                      const IdFilter* filter)
      : id_map_(id_map.data()),
        size_(static_cast<idx_t>(id_map.size())),
        dead_(dead.empty() ? nullptr : dead.data()),
        filter_(filter) {}

  bool is_member(idx_t internal) const override {
    if (internal < 0 || internal >= size_) return false;
    if (dead_ != nullptr && dead_[internal]) return false;
    return filter_ == nullptr || filter_->Contains(id_map_[internal]);
  }

 private:
  const idx_t* id_map_;
  idx_t size_;
  const uint8_t* dead_;
  const IdFilter* filter_;
};

// ---------------------------------------------------------------------------
// In-memory FAISS serialisation without extra copies.

struct StringIOWriter final : faiss::IOWriter {
  explicit StringIOWriter(std::string* out) : out(out) {}
  size_t operator()(const void* ptr, size_t size, size_t nitems) override {
    out->append(static_cast<const char*>(ptr), size * nitems);
    return nitems;
  }
  std::string* out;
};

struct StringViewIOReader final : faiss::IOReader {
  explicit StringViewIOReader(absl::string_view data) : data(data) {}
  size_t operator()(void* ptr, size_t size, size_t nitems) override {
    if (size == 0 || nitems == 0) return 0;
    const size_t avail = (data.size() - pos) / size;
    const size_t n = std::min(avail, nitems);
    std::memcpy(ptr, data.data() + pos, n * size);
    pos += n * size;
    return n;
  }
  absl::string_view data;
  size_t pos = 0;
};

// Little-endian fixed-width fields for our file envelope.
void PutU8(std::string& s, uint8_t v) { s.push_back(static_cast<char>(v)); }
void PutU64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutBytes(std::string& s, absl::string_view b) {
  PutU64(s, b.size());
  s.append(b.data(), b.size());
}

class ByteReader {
 public:
  explicit ByteReader(absl::string_view data) : rest_(data) {}
  bool ok() const { return ok_; }
  bool done() const { return rest_.empty(); }
  uint8_t U8() { return static_cast<uint8_t>(Fixed(1)); }
  uint32_t U32() { return static_cast<uint32_t>(Fixed(4)); }
  uint64_t U64() { return Fixed(8); }
  absl::string_view Bytes() {
    const uint64_t n = U64();
    if (!ok_ || n > rest_.size()) {
      ok_ = false;
      return {};
    }
    absl::string_view out = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return out;
  }

 private:
  uint64_t Fixed(int n) {
    if (!ok_ || rest_.size() < static_cast<size_t>(n)) {
      ok_ = false;
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t{static_cast<unsigned char>(rest_[i])} << (8 * i);
    rest_.remove_prefix(n);
    return v;
  }
  absl::string_view rest_;
  bool ok_ = true;
};

uint64_t Fnv1a64(absl::string_view data) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : data) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

// File: magic | u32 version | u64 payload size | payload | u64 checksum, the
// FNV-1a 64 of everything between the magic and the checksum.
constexpr absl::string_view kMagic = "TSRVIDX\x01";
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kEnvelopeHead = 8 + 4 + 8;
constexpr size_t kEnvelopeTail = 8;

}  // namespace

// ---------------------------------------------------------------------------
// Part: one FAISS index wrapped in IndexIDMap2, with its tombstones.

struct FaissVectorIndex::Part {
  std::unique_ptr<faiss::IndexIDMap2> map;  // owns the wrapped index
  Kind kind = Kind::kFlat;
  faiss::IndexHNSW* hnsw = nullptr;  // map->index, when kind == kHnsw
  faiss::IndexIVF* ivf = nullptr;    // map->index, when kind == kIvf
  // Per internal id: 1 = removed. Empty for kFlat, which removes for real.
  // Removed ids are also erased from map->rev_map, which thus holds exactly
  // the live ids.
  std::vector<uint8_t> dead;
  int64_t num_dead = 0;

  int64_t stored() const { return map->ntotal; }
  int64_t live() const { return map->ntotal - num_dead; }
  bool Contains(int64_t id) const { return map->rev_map.count(id) != 0; }

  // Takes ownership of `inner`. Throws like FAISS.
  static std::unique_ptr<Part> Make(std::unique_ptr<faiss::Index> inner, Kind kind) {
    auto part = std::make_unique<Part>();
    part->kind = kind;
    faiss::Index* raw = inner.get();
    part->map = std::make_unique<faiss::IndexIDMap2>(raw);
    inner.release();
    part->map->own_fields = true;
    part->Bind();
    return part;
  }

  void Bind() {
    hnsw = kind == Kind::kHnsw ? dynamic_cast<faiss::IndexHNSW*>(map->index) : nullptr;
    UseSimdStorage(hnsw);  // SIMD distances; Debian's FAISS build has scalar ones
    ivf = kind == Kind::kIvf ? dynamic_cast<faiss::IndexIVF*>(map->index) : nullptr;
  }

  // FAISS 1.7.3 ignores SearchParametersHNSW::efSearch (HNSW::search reads
  // the member), so the member is set once here, before any search.
  void Tune(const Options& options) {
    if (hnsw != nullptr) hnsw->hnsw.efSearch = options.hnsw_ef_search;
  }

  // Throws like FAISS.
  void Add(int64_t n, const float* x, const idx_t* ids) {
    if (n == 0) return;
    map->add_with_ids(n, x, ids);
    if (kind != Kind::kFlat) dead.resize(map->ntotal, 0);
  }

  // Unknown ids are ignored. Throws like FAISS.
  void Remove(const std::vector<int64_t>& ids) {
    if (kind == Kind::kFlat) {
      std::vector<idx_t> present;
      for (int64_t id : ids) {
        if (Contains(id)) present.push_back(id);
      }
      if (present.empty()) return;
      faiss::IDSelectorBatch sel(present.size(), present.data());
      map->remove_ids(sel);  // compacts the flat codes and id_map together
      return;
    }
    for (int64_t id : ids) {
      auto it = map->rev_map.find(id);
      if (it == map->rev_map.end()) continue;
      dead[it->second] = 1;
      ++num_dead;
      map->rev_map.erase(it);
    }
  }

  // The live ids and vectors (row-major). Throws like FAISS.
  void CollectLive(int dims, std::vector<idx_t>* ids, std::vector<float>* vectors) const {
    const int64_t n = stored();
    std::vector<float> all(static_cast<size_t>(n) * dims);
    if (n > 0) map->index->reconstruct_n(0, n, all.data());
    ids->clear();
    vectors->clear();
    ids->reserve(live());
    vectors->reserve(static_cast<size_t>(live()) * dims);
    for (int64_t i = 0; i < n; ++i) {
      if (!dead.empty() && dead[i]) continue;
      ids->push_back(map->id_map[i]);
      vectors->insert(vectors->end(), all.begin() + i * dims, all.begin() + (i + 1) * dims);
    }
  }
};

namespace {

// Which mechanism a FAISS index uses, or INVALID_ARGUMENT if unsupported.
absl::StatusOr<int> ClassifyInner(const faiss::Index& index, absl::string_view factory) {
  const std::type_info& t = typeid(index);
  if (t == typeid(faiss::IndexFlat) || t == typeid(faiss::IndexFlatIP) ||
      t == typeid(faiss::IndexFlatL2)) {
    return 0;
  }
  if (t == typeid(faiss::IndexHNSWFlat)) return 1;
  if (t == typeid(faiss::IndexIVFFlat) || t == typeid(faiss::IndexIVFPQ) ||
      t == typeid(faiss::IndexIVFScalarQuantizer)) {
    const auto& ivf = static_cast<const faiss::IndexIVF&>(index);
    const std::type_info& q = typeid(*ivf.quantizer);
    if (q == typeid(faiss::IndexFlat) || q == typeid(faiss::IndexFlatIP) ||
        q == typeid(faiss::IndexFlatL2)) {
      return 2;
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "factory \"", factory,
        "\": only a flat coarse quantizer is supported for IVF (its filtered search must "
        "be able to visit every list)"));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "factory \"", factory,
      "\" is not supported by FaissVectorIndex (filtered search and removal are verified "
      "only for Flat, HNSW<M>[,Flat], IVF<n>,Flat, IVF<n>,PQ<m> and IVF<n>,SQ<bits>)"));
}

}  // namespace

// ---------------------------------------------------------------------------
// Construction.

FaissVectorIndex::FaissVectorIndex(Options options, Config config)
    : options_(std::move(options)),
      config_(config),
      dimensions_(options_.dimensions),
      fs_(options_.file_system != nullptr ? options_.file_system : LocalFileSystem()) {}

FaissVectorIndex::~FaissVectorIndex() = default;

absl::StatusOr<FaissVectorIndex::Config> FaissVectorIndex::Configure(
    const Options& options, std::unique_ptr<faiss::Index>* empty) {
  if (options.dimensions <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("vector index dimensions must be positive, got ", options.dimensions));
  }
  if (options.hnsw_ef_search < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("hnsw_ef_search must be >= 1, got ", options.hnsw_ef_search));
  }
  if (options.ivf_nprobe < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("ivf_nprobe must be >= 1, got ", options.ivf_nprobe));
  }
  if (options.train_min_vectors < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("train_min_vectors must be >= 0, got ", options.train_min_vectors));
  }
  if (!(options.max_tombstone_fraction > 0.0 && options.max_tombstone_fraction <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("max_tombstone_fraction must be in (0, 1], got ",
                                                   options.max_tombstone_fraction));
  }
  std::unique_ptr<faiss::Index> index;
  try {
    index.reset(
        faiss::index_factory(options.dimensions, options.factory.c_str(), ToFaiss(options.metric)));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid FAISS factory string \"", options.factory, "\": ", e.what()));
  }
  ASSIGN_OR_RETURN(int kind, ClassifyInner(*index, options.factory));
  Config config;
  config.kind = static_cast<Kind>(kind);
  if (config.kind == Kind::kIvf) {
    const auto* ivf = static_cast<const faiss::IndexIVF*>(index.get());
    config.nlist = static_cast<int64_t>(ivf->nlist);
    int64_t codebook = 0;
    if (const auto* pq = dynamic_cast<const faiss::IndexIVFPQ*>(ivf)) {
      codebook = static_cast<int64_t>(pq->pq.ksub);
    }
    if (auto* pq = dynamic_cast<faiss::IndexIVFPQ*>(index.get())) {
      // index_factory turns on polysemous training (code reordering for
      // Hamming-distance filtering), which we never use and which makes
      // training several times slower.
      pq->do_polysemous_training = false;
    }
    config.train_floor = std::max(config.nlist, codebook);
    const int64_t automatic = 39 * std::max(config.nlist, codebook);
    if (options.train_min_vectors > 0 && options.train_min_vectors < config.train_floor) {
      return absl::InvalidArgumentError(absl::StrCat(
          "train_min_vectors ", options.train_min_vectors, " is below the ", config.train_floor,
          " vectors FAISS needs to train \"", options.factory, "\""));
    }
    config.train_min = options.train_min_vectors > 0 ? options.train_min_vectors : automatic;
  }
  *empty = std::move(index);
  return config;
}

absl::StatusOr<std::unique_ptr<FaissVectorIndex>> FaissVectorIndex::Create(Options options) {
  std::unique_ptr<faiss::Index> empty;
  ASSIGN_OR_RETURN(Config config, Configure(options, &empty));
  std::unique_ptr<FaissVectorIndex> index(new FaissVectorIndex(std::move(options), config));
  RETURN_IF_ERROR(Guard("creating the vector index", [&]() -> absl::Status {
    absl::MutexLock lock(&index->mu_);
    if (config.kind == Kind::kIvf) {
      // Untrained: vectors go to an exact side index until TrainIfReady.
      index->template_ = std::move(empty);
      index->active_ = Part::Make(
          std::make_unique<faiss::IndexFlat>(index->dimensions_, ToFaiss(index->options_.metric)),
          Kind::kFlat);
      index->trained_ = false;
    } else {
      index->active_ = Part::Make(std::move(empty), config.kind);
      index->active_->Tune(index->options_);
      index->trained_ = true;
    }
    return absl::OkStatus();
  }));
  return index;
}

// ---------------------------------------------------------------------------
// Reads.

int64_t FaissVectorIndex::size() const {
  absl::ReaderMutexLock lock(&mu_);
  return active_->live();
}

bool FaissVectorIndex::is_trained() const {
  absl::ReaderMutexLock lock(&mu_);
  return trained_;
}

int64_t FaissVectorIndex::tombstones() const {
  absl::ReaderMutexLock lock(&mu_);
  return active_->num_dead;
}

absl::StatusOr<std::vector<VectorHit>> FaissVectorIndex::Search(const float* query, int k,
                                                                const IdFilter* filter) const {
  if (query == nullptr) return absl::InvalidArgumentError("null query vector");
  if (k < 0) return absl::InvalidArgumentError(absl::StrCat("k must be >= 0, got ", k));
  if (k == 0) return std::vector<VectorHit>();
  absl::ReaderMutexLock lock(&mu_);
  return Guard("vector search", [&] { return SearchLocked(query, k, filter); });
}

absl::StatusOr<std::vector<VectorHit>> FaissVectorIndex::SearchLocked(
    const float* query, int k, const IdFilter* filter) const {
  const Part& part = *active_;
  const idx_t want = std::min<idx_t>(k, part.live());
  std::vector<VectorHit> hits;
  if (want <= 0) return hits;

  // No selector at all when everything stored is admissible: FAISS's
  // unfiltered paths are faster.
  TranslatingSelector selector(part.map->id_map, part.dead, filter);
  faiss::IDSelector* sel = (filter != nullptr || part.num_dead > 0) ? &selector : nullptr;

  std::vector<float> distances(want);
  std::vector<idx_t> labels(want, -1);
  auto found = [&] {
    return std::count_if(labels.begin(), labels.end(), [](idx_t l) { return l >= 0; });
  };
  auto reset = [&] { std::fill(labels.begin(), labels.end(), idx_t{-1}); };
  const faiss::Index* inner = part.map->index;

  switch (part.kind) {
    case Kind::kFlat: {
      faiss::SearchParameters params;
      params.sel = sel;
      inner->search(1, query, want, distances.data(), labels.data(), &params);
      break;
    }
    case Kind::kHnsw: {
      faiss::SearchParametersHNSW params;
      params.efSearch = std::max<int>(options_.hnsw_ef_search, static_cast<int>(want));
      params.sel = sel;
      part.hnsw->search(1, query, want, distances.data(), labels.data(), &params);
      if (found() < want) {
        // The graph walk met too few admitted vectors (a selective filter or
        // many tombstones). Exact scan of the same storage, same selector:
        // the storage's ids are the HNSW's internal ids.
        reset();
        faiss::SearchParameters exact;
        exact.sel = sel;
        part.hnsw->storage->search(1, query, want, distances.data(), labels.data(), &exact);
      }
      break;
    }
    case Kind::kIvf: {
      const size_t nlist = part.ivf->nlist;
      faiss::SearchParametersIVF params;
      params.nprobe = std::min<size_t>(static_cast<size_t>(options_.ivf_nprobe), nlist);
      params.sel = sel;
      part.ivf->search(1, query, want, distances.data(), labels.data(), &params);
      if (found() < want && params.nprobe < nlist) {
        // Too few admitted vectors in the probed lists: visit them all.
        reset();
        params.nprobe = nlist;
        part.ivf->search(1, query, want, distances.data(), labels.data(), &params);
      }
      break;
    }
  }

  hits.reserve(want);
  const bool l2 = options_.metric == Metric::kL2;
  for (idx_t i = 0; i < want; ++i) {
    const idx_t internal = labels[i];
    if (internal < 0 || internal >= static_cast<idx_t>(part.map->id_map.size())) continue;
    hits.push_back(VectorHit{part.map->id_map[internal], l2 ? -distances[i] : distances[i]});
  }
  return hits;
}

std::string FaissVectorIndex::Describe() const {
  absl::ReaderMutexLock lock(&mu_);
  const Part& part = *active_;
  std::string out = absl::StrFormat(
      "FaissVectorIndex{factory=\"%s\" metric=%s dims=%d live=%d stored=%d tombstones=%d",
      options_.factory, MetricName(options_.metric), dimensions_, part.live(), part.stored(),
      part.num_dead);
  switch (config_.kind) {
    case Kind::kFlat:
      absl::StrAppend(&out, " state=ready");
      break;
    case Kind::kHnsw:
      absl::StrAppend(&out, " state=ready ef_search=", options_.hnsw_ef_search);
      break;
    case Kind::kIvf:
      if (trained_) {
        absl::StrAppend(&out, " state=trained");
      } else {
        absl::StrAppend(&out, " state=untrained (exact side index; trains at ", config_.train_min,
                        " vectors)");
      }
      absl::StrAppend(&out, " nlist=", config_.nlist, " nprobe=", options_.ivf_nprobe);
      break;
  }
  if (rebuilding_) absl::StrAppend(&out, " rebuilding");
  absl::StrAppend(&out, "}");
  return out;
}

// ---------------------------------------------------------------------------
// Writes.

absl::Status FaissVectorIndex::Add(const std::vector<int64_t>& ids, const float* vectors) {
  if (ids.empty()) return absl::OkStatus();
  if (vectors == nullptr) return absl::InvalidArgumentError("null vectors for a non-empty Add");
  absl::flat_hash_set<int64_t> batch;
  batch.reserve(ids.size());
  for (int64_t id : ids) {
    if (id < 0) return absl::InvalidArgumentError(absl::StrCat("negative vector id ", id));
    if (!batch.insert(id).second) {
      return absl::InvalidArgumentError(absl::StrCat("vector id ", id, " repeats in the batch"));
    }
  }
  const size_t total = ids.size() * static_cast<size_t>(dimensions_);
  for (size_t i = 0; i < total; ++i) {
    if (!std::isfinite(vectors[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("vector for id ", ids[i / dimensions_], " has a non-finite value"));
    }
  }

  bool train = false;
  {
    absl::MutexLock lock(&mu_);
    for (int64_t id : ids) {
      if (active_->Contains(id)) {
        return absl::AlreadyExistsError(
            absl::StrCat("vector id ", id, " is already in the index; remove it first"));
      }
    }
    RETURN_IF_ERROR(Guard("adding vectors", [&]() -> absl::Status {
      active_->Add(static_cast<int64_t>(ids.size()), vectors, ids.data());
      return absl::OkStatus();
    }));
    if (rebuilding_) {
      for (size_t i = 0; i < ids.size(); ++i) {
        rebuild_log_[ids[i]].assign(vectors + i * dimensions_, vectors + (i + 1) * dimensions_);
      }
    }
    train = options_.inline_maintenance && !trained_ && active_->live() >= config_.train_min;
  }
  if (train) {
    absl::StatusOr<bool> trained = TrainIfReady();
    if (!trained.ok()) {
      // The vectors are in (the side index); training is retried on the
      // next Add or TrainIfReady.
      TLOG(WARNING, "vector index training failed").Field("status", trained.status());
    }
  }
  return absl::OkStatus();
}

absl::Status FaissVectorIndex::Remove(const std::vector<int64_t>& ids) {
  if (ids.empty()) return absl::OkStatus();
  bool compact = false;
  {
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(Guard("removing vectors", [&]() -> absl::Status {
      active_->Remove(ids);
      return absl::OkStatus();
    }));
    if (rebuilding_) {
      for (int64_t id : ids) rebuild_log_[id].clear();
    }
    const Part& part = *active_;
    compact = options_.inline_maintenance && part.num_dead > 0 &&
              part.num_dead > options_.max_tombstone_fraction * part.stored();
  }
  if (compact) {
    absl::StatusOr<bool> compacted = CompactIfNeeded();
    if (!compacted.ok()) {
      TLOG(WARNING, "vector index compaction failed").Field("status", compacted.status());
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Training and compaction.

absl::StatusOr<bool> FaissVectorIndex::TrainIfReady() {
  if (config_.kind != Kind::kIvf) return false;
  absl::MutexLock rebuild(&rebuild_mu_);
  {
    absl::ReaderMutexLock lock(&mu_);
    if (trained_ || active_->live() < config_.train_min) return false;
  }
  return Rebuild(/*train=*/true);
}

absl::StatusOr<bool> FaissVectorIndex::CompactIfNeeded() {
  absl::MutexLock rebuild(&rebuild_mu_);
  {
    absl::ReaderMutexLock lock(&mu_);
    const Part& part = *active_;
    if (part.num_dead == 0 || part.num_dead <= options_.max_tombstone_fraction * part.stored()) {
      return false;
    }
  }
  return Rebuild(/*train=*/false);
}

absl::Status FaissVectorIndex::Compact() {
  absl::MutexLock rebuild(&rebuild_mu_);
  return Rebuild(/*train=*/false).status();
}

std::unique_ptr<faiss::Index> FaissVectorIndex::NewEmptyInnerLocked() const {
  if (template_ != nullptr)
    return std::unique_ptr<faiss::Index>(faiss::clone_index(template_.get()));
  return std::unique_ptr<faiss::Index>(
      faiss::index_factory(dimensions_, options_.factory.c_str(), ToFaiss(options_.metric)));
}

absl::StatusOr<bool> FaissVectorIndex::Rebuild(bool train) {
  // 1. Start logging writes, then snapshot (a write between the two is both
  //    in the snapshot and in the log; replaying it is idempotent).
  {
    absl::MutexLock lock(&mu_);
    if (!train && active_->num_dead == 0) return false;
    rebuilding_ = true;
    rebuild_log_.clear();
  }
  auto abandon = [this] {
    absl::MutexLock lock(&mu_);
    rebuilding_ = false;
    rebuild_log_.clear();
  };
  std::vector<idx_t> ids;
  std::vector<float> vectors;
  std::unique_ptr<faiss::Index> empty;
  Kind kind = Kind::kFlat;
  absl::Status status = Guard("snapshotting the vector index", [&]() -> absl::Status {
    absl::ReaderMutexLock lock(&mu_);
    active_->CollectLive(dimensions_, &ids, &vectors);
    empty = NewEmptyInnerLocked();
    kind = train ? config_.kind : active_->kind;
    return absl::OkStatus();
  });
  if (!status.ok()) {
    abandon();
    return status;
  }
  if (train && static_cast<int64_t>(ids.size()) < config_.train_floor) {
    abandon();  // Removes shrank the set below what FAISS can train on.
    return false;
  }

  // 2. Build the replacement without holding mu_.
  std::unique_ptr<Part> fresh;
  std::unique_ptr<faiss::Index> trained_template;
  status = Guard(train ? "training the vector index" : "compacting the vector index",
                 [&]() -> absl::Status {
                   const int64_t n = static_cast<int64_t>(ids.size());
                   if (train) {
                     empty->train(n, vectors.data());
                     trained_template.reset(faiss::clone_index(empty.get()));
                   }
                   fresh = Part::Make(std::move(empty), kind);
                   fresh->Tune(options_);
                   fresh->Add(n, vectors.data(), ids.data());
                   return absl::OkStatus();
                 });
  if (!status.ok()) {
    abandon();
    return status;
  }
  ids = {};
  vectors = {};

  // 3. Replay what happened meanwhile, swap. The old index is freed after
  //    the lock is released.
  std::unique_ptr<Part> old;
  {
    absl::MutexLock lock(&mu_);
    status = Guard("replaying writes into the rebuilt vector index", [&]() -> absl::Status {
      std::vector<int64_t> touched;
      std::vector<idx_t> add_ids;
      std::vector<float> add_vectors;
      for (const auto& [id, vector] : rebuild_log_) {
        touched.push_back(id);
        if (!vector.empty()) {
          add_ids.push_back(id);
          add_vectors.insert(add_vectors.end(), vector.begin(), vector.end());
        }
      }
      fresh->Remove(touched);
      fresh->Add(static_cast<int64_t>(add_ids.size()), add_vectors.data(), add_ids.data());
      return absl::OkStatus();
    });
    if (status.ok()) {
      old = std::move(active_);
      active_ = std::move(fresh);
      if (train) {
        trained_ = true;
        template_ = std::move(trained_template);
      }
    }
    rebuilding_ = false;
    rebuild_log_.clear();
  }
  if (!status.ok()) return status;
  return true;
}

// ---------------------------------------------------------------------------
// Persistence.
//
// Payload: u32 metric | u32 dims | bytes factory | u8 trained | u8 kind of the
// stored index | u64 #tombstones | u64 internal id per tombstone |
// bytes FAISS IndexIDMap2 | bytes FAISS template (trained empty IVF, or empty).

absl::StatusOr<std::string> FaissVectorIndex::SerializeLocked() const {
  const Part& part = *active_;
  std::string out(kMagic);
  PutU32(out, kFormatVersion);
  PutU64(out, 0);  // payload size, patched below
  const size_t payload_start = out.size();
  PutU32(out, options_.metric == Metric::kL2 ? 1 : 0);
  PutU32(out, static_cast<uint32_t>(dimensions_));
  PutBytes(out, options_.factory);
  PutU8(out, trained_ ? 1 : 0);
  PutU8(out, static_cast<uint8_t>(part.kind));
  PutU64(out, static_cast<uint64_t>(part.num_dead));
  for (size_t i = 0; i < part.dead.size(); ++i) {
    if (part.dead[i]) PutU64(out, i);
  }
  auto put_index = [&out](const faiss::Index* index) {
    const size_t size_at = out.size();
    PutU64(out, 0);
    if (index != nullptr) {
      StringIOWriter writer(&out);
      faiss::write_index(index, &writer);
    }
    const uint64_t n = out.size() - size_at - 8;
    for (int i = 0; i < 8; ++i) out[size_at + i] = static_cast<char>((n >> (8 * i)) & 0xff);
  };
  put_index(part.map.get());
  put_index(trained_ && config_.kind == Kind::kIvf ? template_.get() : nullptr);
  const uint64_t payload_size = out.size() - payload_start;
  for (int i = 0; i < 8; ++i) {
    out[kMagic.size() + 4 + i] = static_cast<char>((payload_size >> (8 * i)) & 0xff);
  }
  PutU64(out, Fnv1a64(absl::string_view(out).substr(kMagic.size())));
  return out;
}

absl::Status FaissVectorIndex::Save(const std::string& path) const {
  std::string bytes;
  {
    absl::ReaderMutexLock lock(&mu_);
    ASSIGN_OR_RETURN(bytes,
                     Guard("serialising the vector index", [&] { return SerializeLocked(); }));
  }
  return Annotate(fs_->WriteFileAtomic(path, bytes), "saving the vector index");
}

absl::StatusOr<std::unique_ptr<FaissVectorIndex>> FaissVectorIndex::Load(const std::string& path,
                                                                         Options options) {
  return LoadImpl(path, std::move(options));
}

absl::StatusOr<std::unique_ptr<FaissVectorIndex>> FaissVectorIndex::LoadImpl(
    const std::string& path, Options options) {
  FileSystem* fs = options.file_system != nullptr ? options.file_system : LocalFileSystem();
  ASSIGN_OR_RETURN(std::string content, fs->ReadFile(path, std::numeric_limits<uint64_t>::max()));
  auto corrupt = [&path](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("vector index file ", path, ": ", why));
  };

  // Envelope.
  const absl::string_view file(content);
  if (file.size() < kMagic.size() || file.substr(0, kMagic.size()) != kMagic) {
    return corrupt("not a Tessera vector index (bad magic)");
  }
  if (file.size() < kEnvelopeHead + kEnvelopeTail) return corrupt("truncated header");
  ByteReader head(file.substr(kMagic.size(), 12));
  const uint32_t version = head.U32();
  const uint64_t payload_size = head.U64();
  if (payload_size != file.size() - kEnvelopeHead - kEnvelopeTail) {
    return corrupt(absl::StrCat("truncated or padded: header says ", payload_size,
                                " payload bytes, file has ",
                                file.size() - kEnvelopeHead - kEnvelopeTail));
  }
  ByteReader tail(file.substr(kEnvelopeHead + payload_size));
  if (tail.U64() != Fnv1a64(file.substr(kMagic.size(), 12 + payload_size))) {
    return corrupt("checksum mismatch");
  }
  if (version != kFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat("vector index file ", path,
                                                      " has format version ", version,
                                                      "; this build reads ", kFormatVersion));
  }
  const absl::string_view payload = file.substr(kEnvelopeHead, payload_size);

  // Our fields; they must agree with `options`.
  ByteReader in(payload);
  const uint32_t metric_code = in.U32();
  const uint32_t dims = in.U32();
  const std::string factory(in.Bytes());
  const bool trained = in.U8() != 0;
  const uint8_t kind_code = in.U8();
  const uint64_t num_dead = in.U64();
  if (!in.ok() || metric_code > 1 || kind_code > 2 || dims == 0 ||
      dims > static_cast<uint32_t>(std::numeric_limits<int>::max()) ||
      num_dead > payload.size() / 8) {
    return corrupt("malformed header fields");
  }
  std::vector<int64_t> dead_ids(num_dead);
  for (uint64_t i = 0; i < num_dead; ++i) dead_ids[i] = static_cast<int64_t>(in.U64());
  const absl::string_view index_blob = in.Bytes();
  const absl::string_view template_blob = in.Bytes();
  if (!in.ok() || !in.done()) return corrupt("malformed payload");

  const Metric metric = metric_code == 1 ? Metric::kL2 : Metric::kInnerProduct;
  if (metric != options.metric) {
    return absl::FailedPreconditionError(absl::StrCat("vector index file ", path, " uses metric ",
                                                      MetricName(metric), ", options ask for ",
                                                      MetricName(options.metric)));
  }
  if (options.dimensions == 0) options.dimensions = static_cast<int>(dims);
  if (static_cast<int>(dims) != options.dimensions) {
    return absl::FailedPreconditionError(absl::StrCat("vector index file ", path, " has ", dims,
                                                      " dimensions, options ask for ",
                                                      options.dimensions));
  }
  if (factory != options.factory) {
    return absl::FailedPreconditionError(
        absl::StrCat("vector index file ", path, " was built with factory \"", factory,
                     "\", options ask for \"", options.factory, "\""));
  }

  std::unique_ptr<faiss::Index> empty;
  ASSIGN_OR_RETURN(Config config, Configure(options, &empty));
  const Kind stored_kind = static_cast<Kind>(kind_code);
  const Kind expected_kind = trained ? config.kind : Kind::kFlat;
  if (stored_kind != expected_kind || (!trained && config.kind != Kind::kIvf)) {
    return corrupt("index kind does not match its factory string");
  }

  std::unique_ptr<FaissVectorIndex> index(new FaissVectorIndex(std::move(options), config));
  absl::Status status = [&]() -> absl::Status {
    std::unique_ptr<faiss::Index> loaded;
    std::unique_ptr<faiss::Index> loaded_template;
    try {
      StringViewIOReader reader(index_blob);
      loaded.reset(faiss::read_index(&reader));
      if (!template_blob.empty()) {
        StringViewIOReader template_reader(template_blob);
        loaded_template.reset(faiss::read_index(&template_reader));
      }
    } catch (const std::bad_alloc&) {
      return corrupt("FAISS data is malformed (allocation failed)");
    } catch (const std::exception& e) {
      return corrupt(absl::StrCat("FAISS data is malformed: ", e.what()));
    }
    auto* map = dynamic_cast<faiss::IndexIDMap2*>(loaded.get());
    if (map == nullptr || map->index == nullptr) return corrupt("FAISS data is not an IndexIDMap2");
    if (map->d != static_cast<int>(dims) || map->index->d != static_cast<int>(dims) ||
        map->metric_type != ToFaiss(index->options_.metric) ||
        static_cast<int64_t>(map->id_map.size()) != map->ntotal ||
        map->index->ntotal != map->ntotal) {
      return corrupt("FAISS index does not match its header");
    }
    absl::StatusOr<int> inner_kind = ClassifyInner(*map->index, index->options_.factory);
    if (!inner_kind.ok() || static_cast<Kind>(*inner_kind) != stored_kind) {
      return corrupt("FAISS index type does not match its factory string");
    }
    loaded.release();
    auto part = std::make_unique<Part>();
    part->map.reset(map);
    part->map->own_fields = true;
    part->kind = stored_kind;
    part->Bind();
    part->Tune(index->options_);
    if (stored_kind == Kind::kFlat) {
      if (!dead_ids.empty()) return corrupt("tombstones in a flat index");
    } else {
      part->dead.assign(map->ntotal, 0);
      for (int64_t d : dead_ids) {
        if (d < 0 || d >= map->ntotal || part->dead[d]) return corrupt("bad tombstone");
        part->dead[d] = 1;
      }
      part->num_dead = static_cast<int64_t>(dead_ids.size());
    }
    // read_index rebuilt rev_map from every stored id; keep live ones only.
    map->rev_map.clear();
    for (int64_t i = 0; i < map->ntotal; ++i) {
      if (!part->dead.empty() && part->dead[i]) continue;
      if (!map->rev_map.emplace(map->id_map[i], i).second) return corrupt("duplicate live id");
    }
    absl::MutexLock lock(&index->mu_);
    index->active_ = std::move(part);
    index->trained_ = trained;
    if (config.kind == Kind::kIvf) {
      if (trained) {
        if (loaded_template == nullptr || !loaded_template->is_trained ||
            loaded_template->ntotal != 0 || loaded_template->d != static_cast<int>(dims)) {
          return corrupt("missing or bad trained template");
        }
        index->template_ = std::move(loaded_template);
      } else {
        index->template_ = std::move(empty);
      }
    }
    return absl::OkStatus();
  }();
  RETURN_IF_ERROR(status);
  return index;
}

}  // namespace tessera::retrieval
