#include "engine/backend/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <condition_variable>
#include <mutex>
#include <string>
#include <functional>
#include <initializer_list>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "engine/backend/cuda/kernels.h"
#include "engine/backend/cuda/step_recorder.h"
#include "engine/model/dtype.h"

namespace tessera::engine::cuda {
namespace {

// Ops take no Status: a shape mismatch is a bug in the model code and a CUDA error inside an
// op leaves the device unusable, so both abort loudly.
[[noreturn]] void CheckFailed(const char* file, int line, const std::string& what) {
  std::fprintf(stderr, "%s:%d: CUDA backend check failed: %s\n", file, line, what.c_str());
  std::abort();
}
#define CU_CHECK(cond) \
  if (!(cond)) CheckFailed(__FILE__, __LINE__, #cond)
#define CUDA_OK(expr)                                                                   \
  do {                                                                                  \
    const cudaError_t cu_err_ = (expr);                                                 \
    if (cu_err_ != cudaSuccess) {                                                       \
      CheckFailed(__FILE__, __LINE__,                                                   \
                  absl::StrCat(#expr, ": ", cudaGetErrorName(cu_err_), " (",            \
                               cudaGetErrorString(cu_err_), ")"));                      \
    }                                                                                   \
  } while (0)
#define CUBLAS_OK(expr)                                                                 \
  do {                                                                                  \
    const int cb_st_ = (expr);                                                          \
    if (cb_st_ != 0) {                                                                  \
      CheckFailed(__FILE__, __LINE__,                                                   \
                  absl::StrCat(#expr, ": cuBLAS status ", cb_st_, " (",                 \
                               BlasStatusString(cb_st_), ")"));                         \
    }                                                                                   \
  } while (0)

// Activation rows up to which MatMul uses the fused one-warp-per-row kernel rather than cuBLAS.
constexpr int64_t kMatVecMaxRowsFloat = 2;  // measured on H200: cuBLAS wins from 3 rows
constexpr int64_t kMatVecMaxRowsQuant = 8;
// Activation rows the shared-memory pipelined matvec takes (kernels.h, MatVecMultiArgs::async).
constexpr int64_t kMatVecAsyncMaxRows = 2;

// A cache of cudaMalloc'd blocks by rounded size. Freed blocks are kept for reuse; ops on the
// backend's one stream are ordered, so a block released by one op can be handed to the next.
class DevicePool {
 public:
  ~DevicePool() { Trim(); }

  // A cached block or a new cudaMalloc; null when the device is out of memory (the caller may
  // Trim, once no queued work can still use a cached block, and try again).
  void* TryAllocate(size_t bytes) {
    const size_t size = Round(bytes);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(size);
      if (it != free_.end()) {
        void* p = it->second;
        free_.erase(it);
        return p;
      }
    }
    void* p = nullptr;
    if (cudaMalloc(&p, size) != cudaSuccess) {
      cudaGetLastError();
      return nullptr;
    }
    return p;
  }

  void Release(void* p, size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.emplace(Round(bytes), p);
  }

  void Trim() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [size, p] : free_) cudaFree(p);
    free_.clear();
  }

 private:
  // Powers of two up to 4 MiB, then multiples of 4 MiB.
  static size_t Round(size_t bytes) {
    bytes = std::max<size_t>(bytes, 256);
    constexpr size_t kLarge = size_t{4} << 20;
    if (bytes >= kLarge) return (bytes + kLarge - 1) / kLarge * kLarge;
    size_t s = 256;
    while (s < bytes) s <<= 1;
    return s;
  }

  std::mutex mu_;
  std::multimap<size_t, void*> free_ ABSL_GUARDED_BY(mu_);
};

class CudaBuffer final : public Buffer {
 public:
  CudaBuffer(std::shared_ptr<DevicePool> pool, float* data, int64_t size)
      : pool_(std::move(pool)), data_(data), size_(size) {}
  ~CudaBuffer() override { pool_->Release(data_, BytesOf(size_)); }
  float* data() override { return data_; }
  const float* data() const override { return data_; }
  int64_t size() const override { return size_; }
  static size_t BytesOf(int64_t floats) { return static_cast<size_t>(floats) * sizeof(float); }

 private:
  std::shared_ptr<DevicePool> pool_;  // may outlive the backend
  float* data_;
  int64_t size_;
};

// Runs, before a weight or cache is freed, the ops the backend still holds (recorded in an open
// step) that may read it. Shared by the backend and what it allocated, which may outlive it.
class FreeGuard {
 public:
  void Set(std::function<void()> flush) {
    std::lock_guard<std::mutex> lock(mu_);
    flush_ = std::move(flush);
  }
  void BeforeFree() {
    std::lock_guard<std::mutex> lock(mu_);
    if (flush_) flush_();
  }

 private:
  std::mutex mu_;
  std::function<void()> flush_;
};

class CudaWeight final : public Weight {
 public:
  CudaWeight(const WeightData& w, size_t row_bytes, void* data, float* f32,
             std::shared_ptr<FreeGuard> guard)
      : Weight(w.type, w.rows, w.cols),
        data_(data),
        row_bytes_(row_bytes),
        f32_(f32),
        guard_(std::move(guard)) {}
  ~CudaWeight() override {
    guard_->BeforeFree();
    if (f32_ != nullptr && f32_ != data_) cudaFree(f32_);
    cudaFree(data_);
  }
  const void* data() const { return data_; }
  size_t row_bytes() const { return row_bytes_; }
  // The values of a 1-D weight as F32 on the device (null for 2-D weights).
  const float* row_f32() const { return f32_; }

 private:
  void* data_;
  size_t row_bytes_;
  float* f32_;
  std::shared_ptr<FreeGuard> guard_;
};

class CudaKvCache final : public KvCache {
 public:
  CudaKvCache(const KvCacheShape& shape, uint16_t* data, int64_t layer_stride,
              std::shared_ptr<FreeGuard> guard)
      : KvCache(shape), data_(data), layer_stride_(layer_stride), guard_(std::move(guard)) {}
  ~CudaKvCache() override {
    guard_->BeforeFree();
    cudaFree(data_);
  }
  uint16_t* k(int layer) const { return data_ + 2 * layer * layer_stride_; }
  uint16_t* v(int layer) const { return data_ + (2 * layer + 1) * layer_stride_; }

 private:
  uint16_t* data_;
  int64_t layer_stride_;
  std::shared_ptr<FreeGuard> guard_;
};

const CudaWeight& AsCuda(const Weight& w) { return static_cast<const CudaWeight&>(w); }
const CudaKvCache& AsCuda(const KvCache& c) { return static_cast<const CudaKvCache&>(c); }

// A device copy of small int32 metadata, re-sent only when it changes.
class MetaSlot {
 public:
  ~MetaSlot() {
    if (dev_ != nullptr) cudaFree(dev_);
  }
  const int32_t* Upload(const int32_t* host, size_t n, cudaStream_t stream) {
    if (n == 0) return dev_;
    if (dev_ != nullptr && n == host_.size() &&
        std::memcmp(host, host_.data(), n * sizeof(int32_t)) == 0) {
      return dev_;
    }
    if (n > capacity_) {
      if (dev_ != nullptr) CUDA_OK(cudaFree(dev_));  // synchronises: no queued op still reads it
      capacity_ = std::max<size_t>(n, 2 * capacity_);
      CUDA_OK(cudaMalloc(reinterpret_cast<void**>(&dev_), capacity_ * sizeof(int32_t)));
    }
    host_.assign(host, host + n);
    // From pageable memory: returns once `host` has been staged, ordered on `stream` after the
    // ops that still read the old contents.
    CUDA_OK(cudaMemcpyAsync(dev_, host_.data(), n * sizeof(int32_t), cudaMemcpyHostToDevice,
                            stream));
    return dev_;
  }

 private:
  int32_t* dev_ = nullptr;
  size_t capacity_ = 0;
  std::vector<int32_t> host_;
};

// Grow-only device scratch space (activations converted to 16 bits, dequantized weights).
class Scratch {
 public:
  ~Scratch() {
    if (dev_ != nullptr) cudaFree(dev_);
  }
  size_t capacity() const { return capacity_; }
  void* Get(size_t bytes) {
    if (bytes > capacity_) {
      if (dev_ != nullptr) CUDA_OK(cudaFree(dev_));  // synchronises
      capacity_ = std::max(bytes, capacity_ + capacity_ / 2);
      CUDA_OK(cudaMalloc(&dev_, capacity_));
    }
    return dev_;
  }

 private:
  void* dev_ = nullptr;
  size_t capacity_ = 0;
};

WType ToWType(DType t) { return static_cast<WType>(static_cast<int>(t)); }

// Whether environment variable `name` is "1" (the switches of paths that are off by default).
bool EnvIsOne(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && std::string(v) == "1";
}

// LaunchMatVecMulti with its arguments by value (a recorded op keeps them).
cudaError_t LaunchMatVecMultiFn(WType type, MatVecMultiArgs a, cudaStream_t stream) {
  return LaunchMatVecMulti(type, a, stream);
}

enum Meta { kIds, kPositions, kSlots, kTokSeq, kTokPos, kTables, kTableStart, kSeqStarts, kSeqOf,
            kTileFirst, kTileCount, kGather, kTopKParams, kTopKPenalised, kTopKStarts, kNumMeta };

// What an op's launch returned: a CUDA error or a cuBLAS status.
struct OpStatus {
  cudaError_t cuda = cudaSuccess;
  int blas = 0;
  bool ok() const { return cuda == cudaSuccess && blas == 0; }
  std::string ToString() const {
    if (cuda != cudaSuccess) {
      return absl::StrCat(cudaGetErrorName(cuda), " (", cudaGetErrorString(cuda), ")");
    }
    return absl::StrCat("cuBLAS status ", blas, " (", BlasStatusString(blas), ")");
  }
};
inline OpStatus ToOpStatus(cudaError_t e) { return OpStatus{e, 0}; }
inline OpStatus ToOpStatus(int blas) { return OpStatus{cudaSuccess, blas}; }

// Metadata values the step arena holds (4 MiB pinned on the host, as much on the device).
constexpr int64_t kArenaValues = int64_t{1} << 20;
// Recorded steps with fewer ops run eagerly: a graph would not pay for itself.
constexpr size_t kMinGraphOps = 8;

// A run of one sequence's tokens [t0, t1) long enough for attention through cuBLAS: their
// queries against keys [k0, k1), with its scratch layout.
struct GemmRun {
  int64_t t0, t1;
  int seq;
  int k0, k1;
  // Plan(): scratch offsets (bytes) of the contiguous F16 keys and values, the F16 queries, and
  // a chunk of scores (F32) and probabilities (F16) for `chunk` queries of every head of a group.
  int64_t chunk = 0;
  size_t k16 = 0, v16 = 0, q16 = 0, scores = 0, probs = 0, bytes = 0;

  void Plan(int head_dim, int num_heads, int group, int64_t kv_dim) {
    auto align = [](size_t b) { return (b + 255) / 256 * 256; };
    const int64_t tq = t1 - t0, tk = k1 - k0;
    // Scores of at most kScoreBytes per chunk (a 2048-token prompt at context 32k: 80 queries).
    constexpr int64_t kScoreBytes = int64_t{256} << 20;
    chunk = std::max<int64_t>(1, std::min<int64_t>(tq, kScoreBytes / (int64_t{group} * tk * 6)));
    const size_t kv_bytes = align(static_cast<size_t>(tk * kv_dim) * 2);
    k16 = 0;
    v16 = k16 + kv_bytes;
    q16 = v16 + kv_bytes;
    scores = q16 + align(static_cast<size_t>(tq) * num_heads * head_dim * 2);
    probs = scores + align(static_cast<size_t>(group) * chunk * tk * 4);
    bytes = probs + align(static_cast<size_t>(group) * chunk * tk * 2);
  }
};

// Query runs of at least this many tokens use GemmAttention.
constexpr int64_t kGemmAttentionRun = 64;

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, std::string device_name, int sm_count, cudaStream_t stream,
              void* cublas, void* cublas_workspace, bool graphs)
      : device_(device),
        sm_count_(sm_count),
        device_name_(std::move(device_name)),
        stream_(stream),
        cublas_(cublas),
        cublas_workspace_(cublas_workspace) {
    stats_.enabled = graphs;
    if (!graphs) stats_.disabled_reason = "turned off (TESSERA_CUDA_GRAPHS=0 or the options)";
    const char* env = std::getenv("TESSERA_CUDA_GROUPED_DECODE");
    grouped_decode_ = env == nullptr || std::string(env) != "0";
    const char* gemm_env = std::getenv("TESSERA_CUDA_GEMM_PREFILL");
    gemm_prefill_ = gemm_env == nullptr || std::string(gemm_env) != "0";
    const char* persistent_env = std::getenv("TESSERA_CUDA_MATVEC_PERSISTENT");
    matvec_persistent_ = persistent_env == nullptr || std::string(persistent_env) != "0";
    fused_rope_kv_ = EnvIsOne("TESSERA_CUDA_FUSED_ROPE_KV");
    fused_swiglu_ = EnvIsOne("TESSERA_CUDA_FUSED_SWIGLU");
    matvec_async_ = EnvIsOne("TESSERA_CUDA_MATVEC_ASYNC");
    fused_split_merge_ = EnvIsOne("TESSERA_CUDA_FUSED_SPLIT_MERGE");
    tiled_dense_attention_ = EnvIsOne("TESSERA_CUDA_TILED_DENSE_ATTENTION");
    free_guard_->Set([this] {
      auto lock = Enter();
      FlushRecorded();
    });
  }

  ~CudaBackend() override {
    free_guard_->Set(nullptr);  // weights and caches may outlive the backend
    cudaSetDevice(device_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      FlushRecorded();
    }
    cudaStreamSynchronize(stream_);
    for (cudaGraphExec_t e : graphs_.Clear()) cudaGraphExecDestroy(e);
    if (arena_copied_ != nullptr) cudaEventDestroy(arena_copied_);
    if (arena_dev_ != nullptr) cudaFree(arena_dev_);
    if (arena_host_ != nullptr) cudaFreeHost(arena_host_);
    if (pinned_ != nullptr) cudaFreeHost(pinned_);
    BlasDestroy(cublas_);
    cudaFree(cublas_workspace_);
    cudaStreamDestroy(stream_);
  }

  std::string name() const override { return absl::StrCat("cuda:", device_, " ", device_name_); }

  CudaGraphStats graph_stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

  // The switches of the paths that can be compared (tests and benchmarks): from the next op on.
  enum class Path {
    kGroupedDecode,
    kGemmPrefill,
    kMatVecPersistent,
    kFusedRopeKv,
    kFusedSwiGlu,
    kMatVecAsync,
    kFusedSplitMerge,
    kTiledDenseAttention
  };
  void SetPath(Path path, bool on) {
    auto lock = Enter();
    FlushRecorded();
    switch (path) {
      case Path::kGroupedDecode: grouped_decode_ = on; break;
      case Path::kGemmPrefill: gemm_prefill_ = on; break;
      case Path::kMatVecPersistent: matvec_persistent_ = on; break;
      case Path::kFusedRopeKv: fused_rope_kv_ = on; break;
      case Path::kFusedSwiGlu: fused_swiglu_ = on; break;
      case Path::kMatVecAsync: matvec_async_ = on; break;
      case Path::kFusedSplitMerge: fused_split_merge_ = on; break;
      case Path::kTiledDenseAttention: tiled_dense_attention_ = on; break;
    }
  }

  void SetGraphs(bool on) {
    auto lock = Enter();
    FlushRecorded();  // from the next BeginStep on; an open step goes on recording
    stats_.enabled = on;
    stats_.disabled_reason = on ? "" : "turned off by SetCudaGraphs";
  }

  // Takes the op lock and makes this backend's device current on the calling thread (the
  // current device is per thread; the scheduler's threads start on device 0).
  std::unique_lock<std::mutex> Enter() {
    std::unique_lock<std::mutex> lock(mu_);
    CUDA_OK(cudaSetDevice(device_));
    return lock;
  }

  void BeginStep() override {
    auto lock = Enter();
    const std::thread::id me = std::this_thread::get_id();
    // One step at a time: another thread's open step ends first (its ops stay one graph).
    step_done_.wait(lock, [&] { return !step_open_ || step_thread_ == me; });
    FlushRecorded();
    step_open_ = true;
    step_thread_ = me;
    recording_ = stats_.enabled && EnsureArena();
  }

  void EndStep() override {
    auto lock = Enter();
    if (!step_open_ || step_thread_ != std::this_thread::get_id()) return;
    FlushRecorded();
    step_open_ = false;
    recording_ = false;
    step_done_.notify_all();
  }

  std::unique_ptr<Buffer> Alloc(int64_t num_floats) override {
    CU_CHECK(num_floats >= 0);
    auto lock = Enter();
    const size_t bytes = CudaBuffer::BytesOf(num_floats);
    void* p = pool_->TryAllocate(bytes);
    if (p == nullptr) {
      // Give the cached blocks back once nothing queued can use them, and try once more.
      FlushRecorded();
      CUDA_OK(cudaStreamSynchronize(stream_));
      pool_->Trim();
      p = pool_->TryAllocate(bytes);
      if (p == nullptr) {
        CheckFailed(__FILE__, __LINE__,
                    absl::StrCat("out of device memory allocating ", bytes, " bytes"));
      }
    }
    return std::make_unique<CudaBuffer>(pool_, static_cast<float*>(p), num_floats);
  }

  absl::StatusOr<std::unique_ptr<Weight>> LoadWeight(const WeightData& w) override {
    absl::StatusOr<size_t> row_bytes = CheckWeightData(w);
    if (!row_bytes.ok()) return row_bytes.status();
    const size_t bytes = static_cast<size_t>(w.rows) * *row_bytes;
    auto lock = Enter();
    FlushRecorded();
    void* dev = nullptr;
    if (cudaError_t err = cudaMalloc(&dev, bytes); err != cudaSuccess) {
      cudaGetLastError();
      return absl::ResourceExhaustedError(absl::StrCat("cannot allocate ", bytes,
                                                       " bytes of device memory for a weight: ",
                                                       cudaGetErrorString(err)));
    }
    // On the backend's stream (non-blocking: the legacy default stream would not order the
    // copy before the kernels that read the weight), then waited for.
    if (cudaError_t err = cudaMemcpyAsync(dev, w.data, bytes, cudaMemcpyHostToDevice, stream_);
        err == cudaSuccess ? (err = cudaStreamSynchronize(stream_)) != cudaSuccess : true) {
      cudaFree(dev);
      return absl::InternalError(
          absl::StrCat("uploading a weight to the device: ", cudaGetErrorString(err)));
    }
    float* f32 = nullptr;
    if (w.rows == 1) {
      if (w.type == DType::kF32) {
        f32 = static_cast<float*>(dev);
      } else {
        std::vector<float> host(w.cols);
        DequantizeRow(w.type, w.data, host.data(), w.cols);
        if (cudaError_t err = cudaMalloc(reinterpret_cast<void**>(&f32), w.cols * sizeof(float)); err != cudaSuccess) {
          cudaGetLastError();
          cudaFree(dev);
          return absl::ResourceExhaustedError("cannot allocate device memory for a weight");
        }
        CUDA_OK(cudaMemcpyAsync(f32, host.data(), w.cols * sizeof(float), cudaMemcpyHostToDevice,
                                stream_));
        CUDA_OK(cudaStreamSynchronize(stream_));
      }
    }
    return std::make_unique<CudaWeight>(w, *row_bytes, dev, f32, free_guard_);
  }

  absl::StatusOr<std::unique_ptr<KvCache>> AllocKvCache(const KvCacheShape& s) override {
    absl::StatusOr<int64_t> stride = CheckKvCacheShape(s);
    if (!stride.ok()) return stride.status();
    const int64_t layer_stride = *stride;
    const size_t bytes = static_cast<size_t>(2 * s.num_layers * layer_stride) * sizeof(uint16_t);
    auto lock = Enter();
    FlushRecorded();
    void* p = nullptr;
    if (cudaError_t err = cudaMalloc(&p, bytes); err != cudaSuccess) {
      cudaGetLastError();
      return absl::ResourceExhaustedError(absl::StrCat(
          "cannot allocate a KV cache of ", bytes, " bytes on the device: ", cudaGetErrorString(err)));
    }
    CUDA_OK(cudaMemsetAsync(p, 0, bytes, stream_));
    CUDA_OK(cudaStreamSynchronize(stream_));
    return std::make_unique<CudaKvCache>(s, static_cast<uint16_t*>(p), layer_stride, free_guard_);
  }

  void CopyFromHost(const float* src, int64_t n, Buffer& dst, int64_t dst_offset) override {
    CU_CHECK(n >= 0 && dst_offset >= 0 && dst_offset + n <= dst.size());
    if (n == 0) return;
    auto lock = Enter();
    FlushRecorded();
    CUDA_OK(cudaMemcpyAsync(dst.data() + dst_offset, src, n * sizeof(float),
                            cudaMemcpyHostToDevice, stream_));
  }

  void CopyToHost(const Buffer& src, int64_t src_offset, int64_t n, float* dst) override {
    CU_CHECK(n >= 0 && src_offset >= 0 && src_offset + n <= src.size());
    auto lock = Enter();
    FlushRecorded();
    const size_t bytes = static_cast<size_t>(n) * sizeof(float);
    if (n > 0 && bytes <= kMaxPinnedBytes) {
      // Through pinned staging memory: a pageable copy is several times slower (logits).
      void* pinned = PinnedStaging(bytes);
      CUDA_OK(cudaMemcpyAsync(pinned, src.data() + src_offset, bytes, cudaMemcpyDeviceToHost,
                              stream_));
      CUDA_OK(cudaStreamSynchronize(stream_));
      std::memcpy(dst, pinned, bytes);
      return;
    }
    if (n > 0) {
      CUDA_OK(cudaMemcpyAsync(dst, src.data() + src_offset, bytes, cudaMemcpyDeviceToHost,
                              stream_));
    }
    CUDA_OK(cudaStreamSynchronize(stream_));
  }

  void GetRows(const Weight& table, absl::Span<const int32_t> ids, Buffer& out) override {
    const CudaWeight& t = AsCuda(table);
    const int64_t cols = t.cols();
    CU_CHECK(static_cast<int64_t>(ids.size()) * cols <= out.size());
    for (int32_t id : ids) CU_CHECK(id >= 0 && id < t.rows());
    if (ids.empty()) return;
    auto lock = Enter();
    const bool rec = Record({ids.size()});
    Launch(rec, &LaunchGetRows, ToWType(t.type()), t.data(), static_cast<int64_t>(t.row_bytes()),
           cols, DevMeta(rec, kIds, ids), static_cast<int64_t>(ids.size()), out.data());
  }

  void GatherRows(const Buffer& x, absl::Span<const int32_t> rows, int64_t dim,
                  Buffer& out) override {
    CU_CHECK(dim >= 0 && static_cast<int64_t>(rows.size()) * dim <= out.size());
    CU_CHECK(x.data() != out.data() || rows.empty());
    for (int32_t r : rows) CU_CHECK(r >= 0 && (r + int64_t{1}) * dim <= x.size());
    if (rows.empty() || dim == 0) return;
    auto lock = Enter();
    const bool rec = Record({rows.size()});
    Launch(rec, &LaunchGatherRows, static_cast<const float*>(x.data()), DevMeta(rec, kGather, rows),
           static_cast<int64_t>(rows.size()), dim, out.data());
  }

  void MatMul(const Weight& weight, const Buffer& x, int64_t n, Buffer& y,
              const Weight* bias) override {
    const CudaWeight& w = AsCuda(weight);
    const int64_t rows = w.rows(), k = w.cols();
    CU_CHECK(n >= 0 && x.size() >= n * k && y.size() >= n * rows);
    if (bias != nullptr) CU_CHECK(bias->rows() == 1 && bias->cols() == rows);
    if (n == 0) return;
    const float* b = bias != nullptr ? AsCuda(*bias).row_f32() : nullptr;
    const WType type = ToWType(w.type());
    const bool is_float =
        w.type() == DType::kF32 || w.type() == DType::kF16 || w.type() == DType::kBF16;
    const int64_t matvec_max = is_float ? kMatVecMaxRowsFloat : kMatVecMaxRowsQuant;
    auto lock = Enter();
    const bool rec = Record({});
    const auto row_bytes = static_cast<int64_t>(w.row_bytes());
    if (n <= matvec_max && MatVecSupported(type, k)) {
      if (matvec_async_ && bias == nullptr && IsHalf(w.type()) && n <= kMatVecAsyncMaxRows) {
        // The shared-memory pipelined kernel serves one matrix as a multi-part launch of one.
        MatVecMultiArgs a = MatVecArgsFor(k, x, n, rows);
        a.num_parts = 1;
        a.async = 1;
        a.parts[0] = MatVecPartFor(w, y, a.warps_per_row);
        Launch(rec, &LaunchMatVecMultiFn, type, a);
        return;
      }
      Launch(rec, &LaunchMatVec, type, w.data(), row_bytes, rows, k,
             static_cast<const float*>(x.data()), n, b, y.data(),
             MatVecWarpsPerRow(rows, sm_count_), matvec_persistent_);
      return;
    }
    if (w.type() == DType::kF32) {
      Launch(rec, +[](void* h, int64_t r, int64_t nn, int64_t kk, const float* wp, const float* xp,
                      float* yp, cudaStream_t) { return BlasMatMulF32(h, r, nn, kk, wp, xp, yp); },
             cublas_, rows, n, k, static_cast<const float*>(w.data()),
             static_cast<const float*>(x.data()), y.data());
    } else {
      const HalfKind kind = w.type() == DType::kF16 ? HalfKind::kF16 : HalfKind::kBF16;
      void* xh = ScratchFor(act_scratch_, static_cast<size_t>(n * k) * 2);
      Launch(rec, &LaunchConvertF32, static_cast<const float*>(x.data()), n * k, kind, xh);
      const void* wh = w.data();
      if (!is_float) {
        void* deq = ScratchFor(weight_scratch_, static_cast<size_t>(rows * k) * 2);
        Launch(rec, &LaunchDequantize, type, w.data(), row_bytes, rows, k, kind, deq);
        wh = deq;
      }
      Launch(rec, +[](void* h, HalfKind kd, int64_t r, int64_t nn, int64_t kk, const void* wp,
                      const void* xp, float* yp, cudaStream_t) {
               return BlasMatMulHalf(h, kd, r, nn, kk, wp, xp, yp);
             },
             cublas_, kind, rows, n, k, wh, static_cast<const void*>(xh), y.data());
    }
    if (b != nullptr) Launch(rec, &LaunchAddRow, b, n, rows, y.data());
  }

  void MatMuls(absl::Span<const Weight* const> ws, const Buffer& x, int64_t n,
               absl::Span<Buffer* const> ys) override {
    CU_CHECK(ws.size() == ys.size());
    if (ws.empty() || n == 0) return;
    MatVecMultiArgs a;
    if (!PlanMatVecMulti(ws, x, n, ys, &a)) {
      for (size_t j = 0; j < ws.size(); ++j) MatMul(*ws[j], x, n, *ys[j], nullptr);
      return;
    }
    LaunchMatVecMultiOp(ws[0]->type(), a);
  }

  void MatMulSwiGlu(const Weight& w_gate, const Weight& w_up, const Buffer& x, int64_t n,
                    Buffer& gate, Buffer& up) override {
    const Weight* ws[] = {&w_gate, &w_up};
    Buffer* ys[] = {&gate, &up};
    MatVecMultiArgs a;
    // Fused: one matvec launch in which each warp reads its part of a gate row and of the same up
    // row (planned as the two-part launch it replaces, so the sums are the same).
    if (fused_swiglu_ && n > 0 && w_gate.rows() == w_up.rows() &&
        PlanMatVecMulti(ws, x, n, ys, &a)) {
      a.swiglu = 1;
      LaunchMatVecMultiOp(w_gate.type(), a);
      return;
    }
    Backend::MatMulSwiGlu(w_gate, w_up, x, n, gate, up);
  }

  void AddRmsNorm(const Buffer& o, int64_t n, int64_t dim, Buffer& x, const Weight& weight,
                  float eps, Buffer& out) override {
    const CudaWeight& w = AsCuda(weight);
    CU_CHECK(w.rows() == 1 && w.cols() == dim && n >= 0);
    CU_CHECK(o.size() >= n * dim && x.size() >= n * dim && out.size() >= n * dim);
    CU_CHECK(out.data() != x.data() && out.data() != o.data());
    auto lock = Enter();
    const bool rec = Record({});
    Launch(rec, &LaunchAddRmsNorm, static_cast<const float*>(o.data()), n, dim, x.data(),
           w.row_f32(), eps, out.data());
  }

  void Add(const Buffer& x, int64_t n, Buffer& y) override {
    CU_CHECK(n >= 0 && x.size() >= n && y.size() >= n);
    auto lock = Enter();
    const bool rec = Record({});
    Launch(rec, &LaunchAdd, static_cast<const float*>(x.data()), n, y.data());
  }

  void AddRow(const Weight& row, int64_t n, Buffer& y) override {
    const CudaWeight& r = AsCuda(row);
    CU_CHECK(r.rows() == 1 && n >= 0 && y.size() >= n * r.cols());
    auto lock = Enter();
    const bool rec = Record({});
    Launch(rec, &LaunchAddRow, r.row_f32(), n, r.cols(), y.data());
  }

  void RmsNorm(const Buffer& x, int64_t n, int64_t dim, const Weight& weight, float eps,
               Buffer& out) override {
    const CudaWeight& w = AsCuda(weight);
    CU_CHECK(w.rows() == 1 && w.cols() == dim && x.size() >= n * dim && out.size() >= n * dim);
    auto lock = Enter();
    const bool rec = Record({});
    Launch(rec, &LaunchRmsNorm, static_cast<const float*>(x.data()), n, dim, w.row_f32(), eps,
           out.data());
  }

  void LayerNorm(const Buffer& x, int64_t n, int64_t dim, const Weight& gamma, const Weight& beta,
                 float eps, Buffer& out) override {
    const CudaWeight& g = AsCuda(gamma);
    const CudaWeight& bt = AsCuda(beta);
    CU_CHECK(g.rows() == 1 && g.cols() == dim && bt.rows() == 1 && bt.cols() == dim);
    CU_CHECK(x.size() >= n * dim && out.size() >= n * dim);
    auto lock = Enter();
    const bool rec = Record({});
    Launch(rec, &LaunchLayerNorm, static_cast<const float*>(x.data()), n, dim, g.row_f32(),
           bt.row_f32(), eps, out.data());
  }

  void SiluMul(Buffer& gate, const Buffer& up, int64_t n) override {
    CU_CHECK(n >= 0 && gate.size() >= n && up.size() >= n);
    auto lock = Enter();
    const bool rec = Record({});
    Launch(rec, &LaunchSiluMul, gate.data(), static_cast<const float*>(up.data()), n);
  }

  void Gelu(Buffer& x, int64_t n) override {
    CU_CHECK(n >= 0 && x.size() >= n);
    auto lock = Enter();
    const bool rec = Record({});
    Launch(rec, &LaunchGelu, x.data(), n);
  }

  void Rope(Buffer& x, absl::Span<const int32_t> positions, int num_heads, int head_dim,
            const RopeParams& params) override {
    const int rd = params.rotary_dim == 0 ? head_dim : params.rotary_dim;
    CU_CHECK(rd > 0 && rd <= head_dim && rd % 2 == 0);
    const int64_t width = int64_t{num_heads} * head_dim;
    CU_CHECK(x.size() >= static_cast<int64_t>(positions.size()) * width);
    if (positions.empty()) return;
    auto lock = Enter();
    const bool rec = Record({positions.size()});
    Launch(rec, &LaunchRope, x.data(), DevMeta(rec, kPositions, positions),
           static_cast<int64_t>(positions.size()), num_heads, head_dim, rd,
           params.style == RopeStyle::kNeox, params.theta, params.freq_scale);
  }

  void WriteKv(KvCache& cache, int layer, const Buffer& k, const Buffer& v,
               absl::Span<const int32_t> slots) override {
    const CudaKvCache& c = AsCuda(cache);
    CU_CHECK(layer >= 0 && layer < c.shape().num_layers);
    const int64_t kd = c.kv_dim();
    const int64_t n = slots.size();
    CU_CHECK(k.size() >= n * kd && v.size() >= n * kd);
    for (int32_t s : slots) CU_CHECK(s >= 0 && s < c.num_slots());
    if (n == 0) return;
    auto lock = Enter();
    const bool rec = Record({slots.size()});
    Launch(rec, &LaunchWriteKv, static_cast<const float*>(k.data()),
           static_cast<const float*>(v.data()), DevMeta(rec, kSlots, slots), n, kd, c.k(layer),
           c.v(layer));
  }

  void RopeWriteKv(Buffer& q, Buffer& k, const Buffer& v, absl::Span<const int32_t> positions,
                   int num_heads, int num_kv_heads, int head_dim, const RopeParams& params,
                   KvCache& cache, int layer, absl::Span<const int32_t> slots) override {
    if (!fused_rope_kv_) {
      Backend::RopeWriteKv(q, k, v, positions, num_heads, num_kv_heads, head_dim, params, cache,
                           layer, slots);
      return;
    }
    const CudaKvCache& c = AsCuda(cache);
    const int rd = params.rotary_dim == 0 ? head_dim : params.rotary_dim;
    CU_CHECK(rd > 0 && rd <= head_dim && rd % 2 == 0);
    CU_CHECK(layer >= 0 && layer < c.shape().num_layers);
    const int64_t kd = c.kv_dim();
    CU_CHECK(kd == int64_t{num_kv_heads} * head_dim && num_heads > 0);
    const int64_t n = positions.size();
    CU_CHECK(static_cast<int64_t>(slots.size()) == n);
    CU_CHECK(q.size() >= n * num_heads * head_dim && k.size() >= n * kd && v.size() >= n * kd);
    for (int32_t s : slots) CU_CHECK(s >= 0 && s < c.num_slots());
    if (n == 0) return;
    auto lock = Enter();
    const bool rec = Record({positions.size(), slots.size()});
    Launch(rec, &LaunchRopeWriteKv, q.data(), k.data(), static_cast<const float*>(v.data()),
           DevMeta(rec, kPositions, positions), DevMeta(rec, kSlots, slots), n, num_heads,
           num_kv_heads, head_dim, rd, params.style == RopeStyle::kNeox, params.theta,
           params.freq_scale, c.k(layer), c.v(layer));
  }

  void PagedAttention(const KvCache& cache, int layer, const Buffer& q,
                      const PagedAttentionBatch& batch, int num_heads, float scale,
                      Buffer& out) override {
    const CudaKvCache& c = AsCuda(cache);
    const KvCacheShape& s = c.shape();
    CU_CHECK(layer >= 0 && layer < s.num_layers);
    CU_CHECK(num_heads > 0 && num_heads % s.num_kv_heads == 0);
    CU_CHECK(batch.token_seq.size() == batch.token_pos.size());
    const int64_t tokens = batch.token_seq.size();
    const int64_t width = int64_t{num_heads} * s.head_dim;
    CU_CHECK(q.size() >= tokens * width && out.size() >= tokens * width);
    const int64_t num_seqs = batch.block_tables.size();
    // The host checks the CPU backend makes, plus every block a token reads.
    std::vector<int32_t> max_pos(num_seqs, -1);
    for (int64_t t = 0; t < tokens; ++t) {
      const int32_t seq = batch.token_seq[t], pos = batch.token_pos[t];
      CU_CHECK(seq >= 0 && seq < num_seqs && pos >= 0);
      CU_CHECK(pos / s.block_size < static_cast<int64_t>(batch.block_tables[seq].size()));
      max_pos[seq] = std::max(max_pos[seq], pos);
    }
    std::vector<int32_t> flat, starts(num_seqs);
    for (int64_t i = 0; i < num_seqs; ++i) {
      starts[i] = static_cast<int32_t>(flat.size());
      const auto& table = batch.block_tables[i];
      for (int64_t b = 0; b <= max_pos[i] / s.block_size && max_pos[i] >= 0; ++b) {
        CU_CHECK(table[b] >= 0 && table[b] < s.num_blocks);
      }
      flat.insert(flat.end(), table.begin(), table.end());
    }
    if (tokens == 0) return;
    if (flat.empty()) flat.push_back(0);
    // Runs of consecutive tokens of one sequence. Long ones (prefill chunks) go through cuBLAS
    // on the tensor cores (GemmAttention); the others are cut into tiles of tokens_per_tile
    // tokens times groups of heads_per_block query heads of one kv head. Tiled when there is a
    // prefill run (keys shared by several tokens) or enough tiles to fill the GPU; decode steps
    // (one token per sequence) use the grouped kernel when it handles the shapes, else one block
    // per token and head, whose warps split the keys.
    const int group = num_heads / s.num_kv_heads;
    int hpb = std::min(group, kAttentionTileQueries);
    while (group % hpb != 0) --hpb;
    const int tokens_per_tile = kAttentionTileQueries / hpb;
    std::vector<int32_t> tile_first, tile_count;
    std::vector<GemmRun> long_runs;
    bool prefill = false;
    const bool gemm_ok = gemm_prefill_ && s.head_dim % 8 == 0;
    for (int64_t t = 0; t < tokens;) {
      int64_t e = t + 1;
      while (e < tokens && batch.token_seq[e] == batch.token_seq[t]) ++e;
      prefill |= e - t > 1;
      if (gemm_ok && e - t >= kGemmAttentionRun) {
        int32_t lo = batch.token_pos[t], hi = batch.token_pos[t];
        for (int64_t i = t; i < e; ++i) {
          lo = std::min(lo, batch.token_pos[i]);
          hi = std::max(hi, batch.token_pos[i]);
        }
        const int k0 = batch.sliding_window > 0 ? std::max(0, lo - batch.sliding_window + 1) : 0;
        long_runs.push_back({t, e, batch.token_seq[t], k0, hi + 1});
      } else {
        for (int64_t b = t; b < e; b += tokens_per_tile) {
          tile_first.push_back(static_cast<int32_t>(b));
          tile_count.push_back(static_cast<int32_t>(std::min<int64_t>(tokens_per_tile, e - b)));
        }
      }
      t = e;
    }
    const int64_t blocks = static_cast<int64_t>(tile_first.size()) * (num_heads / hpb);
    const bool grouped = !prefill && grouped_decode_ && GroupedDecodeSupported(s.head_dim, group);
    const bool tiled = !grouped && (prefill || blocks >= 2 * sm_count_);
    // Few decode tokens over long contexts: split each token's keys over several blocks.
    int splits = 1;
    if (grouped) {
      int max_keys = 0;
      for (int64_t t = 0; t < tokens; ++t) {
        const int pos = batch.token_pos[t];
        const int first = batch.sliding_window > 0 ? std::max(0, pos - batch.sliding_window + 1) : 0;
        max_keys = std::max(max_keys, pos + 1 - first);
      }
      const int64_t grouped_blocks = tokens * s.num_kv_heads;
      while (splits < kDecodeMaxSplits && grouped_blocks * 2 * splits <= sm_count_ &&
             max_keys / (2 * splits) >= kDecodeMinSplitKeys) {
        splits *= 2;
      }
    }
    size_t gemm_bytes = 0;
    for (GemmRun& r : long_runs) {
      r.Plan(s.head_dim, num_heads, group, c.kv_dim());
      gemm_bytes = std::max(gemm_bytes, r.bytes);
    }
    auto lock = Enter();
    char* gemm_scratch =
        gemm_bytes > 0 ? static_cast<char*>(ScratchFor(attn_scratch_, gemm_bytes)) : nullptr;
    float* partial =
        splits > 1 ? static_cast<float*>(ScratchFor(
                         split_scratch_, static_cast<size_t>(tokens) * num_heads * splits *
                                             (s.head_dim + 2) * sizeof(float)))
                   : nullptr;
    // Splits merged in the attention kernel: its per-(token, kv head) counters.
    auto* split_done =
        splits > 1 && fused_split_merge_
            ? static_cast<unsigned int*>(ZeroedScratchFor(
                  split_done_scratch_,
                  static_cast<size_t>(tokens) * s.num_kv_heads * sizeof(unsigned int)))
            : nullptr;
    const bool rec = Record({static_cast<size_t>(tokens), static_cast<size_t>(tokens), flat.size(),
                             starts.size(), tiled ? tile_first.size() : 0,
                             tiled ? tile_count.size() : 0});
    PagedAttentionArgs a;
    std::memset(static_cast<void*>(&a), 0, sizeof(a));
    a.kc = c.k(layer);
    a.vc = c.v(layer);
    a.q = q.data();
    a.out = out.data();
    a.token_seq = DevMeta(rec, kTokSeq, batch.token_seq);
    a.token_pos = DevMeta(rec, kTokPos, batch.token_pos);
    a.tables = DevMeta(rec, kTables, flat);
    a.table_start = DevMeta(rec, kTableStart, starts);
    a.num_tokens = tokens;
    a.num_heads = num_heads;
    a.num_kv_heads = s.num_kv_heads;
    a.head_dim = s.head_dim;
    a.block_size = s.block_size;
    a.sliding_window = batch.sliding_window;
    a.scale = scale;
    a.tile_first = nullptr;
    a.tile_count = nullptr;
    a.num_tiles = 0;
    a.heads_per_block = 1;
    a.grouped = grouped ? 1 : 0;
    a.splits = splits;
    a.partial = partial;
    a.merge_in_kernel = split_done != nullptr ? 1 : 0;
    a.split_done = split_done;
    if (tiled && !tile_first.empty()) {
      a.heads_per_block = hpb;
      a.num_tiles = tile_first.size();
      a.tile_first = DevMeta(rec, kTileFirst, tile_first);
      a.tile_count = DevMeta(rec, kTileCount, tile_count);
    }
    if (long_runs.empty() || !tile_first.empty()) {
      Launch(rec, +[](PagedAttentionArgs args, cudaStream_t st) {
        return LaunchPagedAttention(args, st);
      }, a);
    }
    for (const GemmRun& r : long_runs) {
      GemmAttention(rec, r, a, starts[r.seq], group, gemm_scratch);
    }
  }

  void TopK(Buffer& logits, int64_t rows, int64_t cols, const TopKRequest& r,
            TopKRows* out) override {
    CheckTopKRequest(logits, rows, cols, r);
    const int k = r.k;
    out->k = k;
    out->values.assign(rows * k, 0.0f);
    out->ids.assign(rows * k, -1);
    out->sum_exp.assign(rows, 0.0);
    out->nonfinite.assign(rows, 0);
    if (rows == 0) return;
    auto lock = Enter();
    FlushRecorded();  // synchronous, like CopyToHost
    // The per-row floats travel as their bits through the int32 metadata slots.
    std::vector<int32_t> params(2 * rows);
    std::memcpy(params.data(), r.sum_temperature.data(), rows * sizeof(float));
    std::memcpy(params.data() + rows, r.penalty.data(), rows * sizeof(float));
    const int32_t* d_params = meta_[kTopKParams].Upload(params.data(), params.size(), stream_);
    const int32_t* d_pen = meta_[kTopKPenalised].Upload(r.penalty_ids.data(),
                                                         r.penalty_ids.size(), stream_);
    const int32_t* d_starts = meta_[kTopKStarts].Upload(r.penalty_starts.data(),
                                                        r.penalty_starts.size(), stream_);
    // Results, packed: sum_exp (doubles first, for alignment), values, ids, nonfinite.
    const size_t n_sum = rows * sizeof(double), n_val = rows * k * sizeof(float),
                 n_ids = rows * k * sizeof(int32_t), n_bad = rows * sizeof(int32_t);
    const size_t bytes = n_sum + n_val + n_ids + n_bad;
    auto* dev = static_cast<char*>(topk_scratch_.Get(bytes));
    const auto* fparams = reinterpret_cast<const float*>(d_params);
    CheckOp(ToOpStatus(LaunchTopK(logits.data(), rows, cols, k, fparams, fparams + rows, d_pen,
                                  d_starts, reinterpret_cast<float*>(dev + n_sum),
                                  reinterpret_cast<int32_t*>(dev + n_sum + n_val),
                                  reinterpret_cast<double*>(dev),
                                  reinterpret_cast<int32_t*>(dev + n_sum + n_val + n_ids),
                                  stream_)));
    auto* host = static_cast<char*>(PinnedStaging(bytes));
    CUDA_OK(cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, stream_));
    CUDA_OK(cudaStreamSynchronize(stream_));
    std::memcpy(out->sum_exp.data(), host, n_sum);
    std::memcpy(out->values.data(), host + n_sum, n_val);
    std::memcpy(out->ids.data(), host + n_sum + n_val, n_ids);
    std::memcpy(out->nonfinite.data(), host + n_sum + n_val + n_ids, n_bad);
  }

  void DenseAttention(const Buffer& q, const Buffer& k, const Buffer& v,
                      absl::Span<const int32_t> seq_starts, int num_heads, int head_dim,
                      float scale, Buffer& out) override {
    CU_CHECK(!seq_starts.empty() && seq_starts[0] == 0);
    const int64_t tokens = seq_starts.back();
    const int64_t width = int64_t{num_heads} * head_dim;
    CU_CHECK(q.size() >= tokens * width && k.size() >= tokens * width &&
             v.size() >= tokens * width && out.size() >= tokens * width);
    std::vector<int32_t> seq_of(tokens);
    for (size_t sidx = 0; sidx + 1 < seq_starts.size(); ++sidx) {
      CU_CHECK(seq_starts[sidx] <= seq_starts[sidx + 1]);
      for (int32_t t = seq_starts[sidx]; t < seq_starts[sidx + 1]; ++t) seq_of[t] = sidx;
    }
    if (tokens == 0) return;
    auto lock = Enter();
    const bool rec = Record({seq_starts.size(), seq_of.size()});
    Launch(rec, &LaunchDenseAttention, static_cast<const float*>(q.data()),
           static_cast<const float*>(k.data()), static_cast<const float*>(v.data()),
           DevMeta(rec, kSeqStarts, seq_starts), DevMeta(rec, kSeqOf, seq_of), tokens, num_heads,
           head_dim, scale, out.data(), tiled_dense_attention_);
  }

 private:
  static bool IsHalf(DType t) { return t == DType::kF16 || t == DType::kBF16; }

  // The arguments shared by every part of a decode matvec launch over `total_rows` rows.
  MatVecMultiArgs MatVecArgsFor(int64_t cols, const Buffer& x, int64_t n,
                                int64_t total_rows) const {
    MatVecMultiArgs a;
    std::memset(static_cast<void*>(&a), 0, sizeof(a));  // the struct is part of the signature
    a.cols = cols;
    a.x = x.data();
    a.n = static_cast<int>(n);
    a.warps_per_row = MatVecWarpsPerRow(total_rows, sm_count_);
    a.persistent = matvec_persistent_ ? 1 : 0;
    a.async = 0;
    a.swiglu = 0;
    return a;
  }

  static MatVecPart MatVecPartFor(const CudaWeight& w, Buffer& y, int warps_per_row) {
    const int64_t rows_per_block = kMatVecWarpsPerBlock / warps_per_row;
    MatVecPart part;
    part.w = w.data();
    part.row_bytes = static_cast<int64_t>(w.row_bytes());
    part.rows = w.rows();
    part.blocks = (w.rows() + rows_per_block - 1) / rows_per_block;
    part.y = y.data();
    return part;
  }

  // One matvec launch for several weights over the same input: false unless every weight is a
  // matvec of the same type and width (and n is a decode's few rows). With the shared-memory
  // pipeline on (SetMatVecAsync), 16-bit weights use it.
  bool PlanMatVecMulti(absl::Span<const Weight* const> ws, const Buffer& x, int64_t n,
                       absl::Span<Buffer* const> ys, MatVecMultiArgs* out) const {
    const DType type = ws[0]->type();
    const int64_t k = ws[0]->cols();
    const bool is_float = type == DType::kF32 || IsHalf(type);
    bool fuse = ws.size() <= static_cast<size_t>(kMaxMatVecParts) &&
                n <= (is_float ? kMatVecMaxRowsFloat : kMatVecMaxRowsQuant) &&
                MatVecSupported(ToWType(type), k) && x.size() >= n * k;
    int64_t total_rows = 0;
    for (size_t j = 0; j < ws.size() && fuse; ++j) {
      fuse = ws[j]->type() == type && ws[j]->cols() == k && ys[j]->size() >= n * ws[j]->rows();
      total_rows += ws[j]->rows();
    }
    if (!fuse) return false;
    MatVecMultiArgs a = MatVecArgsFor(k, x, n, total_rows);
    a.num_parts = static_cast<int>(ws.size());
    a.async = matvec_async_ && IsHalf(type) && n <= kMatVecAsyncMaxRows ? 1 : 0;
    for (size_t j = 0; j < ws.size(); ++j) {
      a.parts[j] = MatVecPartFor(AsCuda(*ws[j]), *ys[j], a.warps_per_row);
    }
    *out = a;
    return true;
  }

  void LaunchMatVecMultiOp(DType type, const MatVecMultiArgs& a) {
    auto lock = Enter();
    const bool rec = Record({});
    Launch(rec, &LaunchMatVecMultiFn, ToWType(type), a);
  }

  // Attention of a long query run on the tensor cores: its keys and values gathered from the
  // paged cache into contiguous F16, its queries rounded to F16, then per kv head and chunk of
  // queries one batched GEMM for the scores of the group's query heads, a masked softmax to F16
  // probabilities, and one batched GEMM into `out` (F32 accumulation throughout).
  void GemmAttention(bool rec, const GemmRun& r, const PagedAttentionArgs& a, int32_t table_start,
                     int group, char* scratch) {
    const int64_t hd = a.head_dim, width = int64_t{a.num_heads} * hd;
    const int64_t kvd = int64_t{a.num_kv_heads} * hd;
    const int64_t tq = r.t1 - r.t0, tk = r.k1 - r.k0;
    auto* k16 = reinterpret_cast<uint16_t*>(scratch + r.k16);
    auto* v16 = reinterpret_cast<uint16_t*>(scratch + r.v16);
    auto* q16 = reinterpret_cast<uint16_t*>(scratch + r.q16);
    auto* sc = reinterpret_cast<float*>(scratch + r.scores);
    auto* pr = reinterpret_cast<uint16_t*>(scratch + r.probs);
    Launch(rec, &LaunchGatherKv, a.kc, a.vc, a.tables + table_start, a.block_size, kvd, r.k0, tk,
           k16, v16);
    Launch(rec, &LaunchConvertF32, static_cast<const float*>(a.q + r.t0 * width), tq * width,
           HalfKind::kF16, static_cast<void*>(q16));
    for (int kh = 0; kh < a.num_kv_heads; ++kh) {
      for (int64_t c0 = 0; c0 < tq; c0 += r.chunk) {
        const int64_t n = std::min(r.chunk, tq - c0);
        const int64_t head0 = int64_t{kh} * group * hd;
        Launch(rec,
               +[](void* h, int64_t nq, int64_t nk, int64_t d, int64_t b, float scale,
                   const void* qp, int64_t ldq, const void* kp, int64_t ldk, float* sp,
                   cudaStream_t) {
                 return BlasAttentionScores(h, nq, nk, d, b, scale, qp, ldq, kp, ldk, sp);
               },
               cublas_, n, tk, hd, int64_t{group}, a.scale,
               static_cast<const void*>(q16 + (c0 * width + head0)), width,
               static_cast<const void*>(k16 + int64_t{kh} * hd), kvd, sc);
        Launch(rec, &LaunchMaskedSoftmax, static_cast<const float*>(sc), int64_t{group}, n, tk,
               a.token_pos + (r.t0 + c0), r.k0, a.sliding_window, pr);
        Launch(rec,
               +[](void* h, int64_t nq, int64_t nk, int64_t d, int64_t b, const void* pp,
                   const void* vp, int64_t ldv, float* op, int64_t ldo, cudaStream_t) {
                 return BlasAttentionValues(h, nq, nk, d, b, pp, vp, ldv, op, ldo);
               },
               cublas_, n, tk, hd, int64_t{group}, static_cast<const void*>(pr),
               static_cast<const void*>(v16 + int64_t{kh} * hd), kvd,
               a.out + ((r.t0 + c0) * width + head0), width);
      }
    }
  }

  // Pinned host memory for copies to the host (grown as needed, up to kMaxPinnedBytes).
  void* PinnedStaging(size_t bytes) {
    if (bytes > pinned_bytes_) {
      if (pinned_ != nullptr) CUDA_OK(cudaFreeHost(pinned_));
      pinned_bytes_ = std::max(bytes, std::min(kMaxPinnedBytes, 2 * pinned_bytes_));
      CUDA_OK(cudaMallocHost(&pinned_, pinned_bytes_));
    }
    return pinned_;
  }

  static void CheckOp(const OpStatus& st) {
    if (!st.ok()) CheckFailed(__FILE__, __LINE__, "launching an op: " + st.ToString());
  }

  // ---- recording a step (see step_recorder.h) ----

  bool Recording() const {
    return recording_ && step_thread_ == std::this_thread::get_id();
  }

  // The pinned host arena, its device copy and the event marking the copy's completion; false
  // (graphs then stay off, with the reason in stats_) when they cannot be allocated.
  bool EnsureArena() {
    if (arena_ != nullptr) return true;
    const size_t bytes = kArenaValues * sizeof(int32_t);
    cudaError_t err = cudaMallocHost(reinterpret_cast<void**>(&arena_host_), bytes);
    if (err == cudaSuccess) err = cudaMalloc(reinterpret_cast<void**>(&arena_dev_), bytes);
    if (err == cudaSuccess) err = cudaEventCreateWithFlags(&arena_copied_, cudaEventDisableTiming);
    if (err != cudaSuccess) {
      cudaGetLastError();
      if (arena_copied_ != nullptr) cudaEventDestroy(arena_copied_);
      if (arena_dev_ != nullptr) cudaFree(arena_dev_);
      if (arena_host_ != nullptr) cudaFreeHost(arena_host_);
      arena_copied_ = nullptr;
      arena_dev_ = nullptr;
      arena_host_ = nullptr;
      DisableGraphs(absl::StrCat("allocating the step arena: ", cudaGetErrorString(err)));
      return false;
    }
    arena_ = std::make_unique<MetaArena>(arena_host_, kArenaValues);
    return true;
  }

  // Whether the op about to be issued is recorded (true) or run now (false). `meta` lists the
  // sizes of the metadata it will stage: when they do not fit what is left of the arena, what
  // was recorded runs first; an op whose metadata exceeds the whole arena runs eagerly. An op
  // from another thread than the step's runs eagerly, after what was recorded.
  bool Record(std::initializer_list<size_t> meta) {
    if (!recording_) return false;
    if (!Recording()) {
      FlushRecorded();
      return false;
    }
    int64_t need = 0;
    for (size_t n : meta) need += MetaArena::Reserve(static_cast<int64_t>(n));
    if (arena_->used() + need > arena_->capacity()) FlushRecorded();
    return need <= arena_->capacity();
  }

  // The device address of `host` metadata for an op: staged in the step arena when the op is
  // recorded (copied before the step runs), else copied now (skipped when unchanged).
  const int32_t* DevMeta(bool record, Meta kind, absl::Span<const int32_t> host) {
    if (!record) return meta_[kind].Upload(host.data(), host.size(), stream_);
    if (arena_in_flight_) {
      // The host arena is being copied to the device for what ran before: wait for that copy.
      CUDA_OK(cudaEventSynchronize(arena_copied_));
      arena_in_flight_ = false;
    }
    std::optional<int64_t> off = arena_->Stage(kind, host.data(), host.size());
    CU_CHECK(off.has_value());  // Record() made room
    return arena_dev_ + *off;
  }

  // Scratch space for an op: grown (which frees the old block) only after the recorded ops that
  // use the old block have run.
  void* ScratchFor(Scratch& scratch, size_t bytes) {
    if (bytes > scratch.capacity()) FlushRecorded();
    return scratch.Get(bytes);
  }

  // ScratchFor whose memory is zero when (re)allocated, on the stream before any op after it
  // (counters that the kernels using them leave at zero).
  void* ZeroedScratchFor(Scratch& scratch, size_t bytes) {
    if (bytes <= scratch.capacity()) return scratch.Get(bytes);
    FlushRecorded();
    void* p = scratch.Get(bytes);
    CUDA_OK(cudaMemsetAsync(p, 0, scratch.capacity(), stream_));
    return p;
  }

  // Issues `fn(args..., stream)` now, or records it (with its arguments as its signature). fn is
  // a launcher of kernels.h or a captureless lambda; every argument is a plain value, so two
  // recorded steps with equal signatures launch the same kernels with the same arguments.
  template <typename R, typename... P, typename... Args>
  void Launch(bool record, R (*fn)(P...), Args... args) {
    if (!record) {
      CheckOp(ToOpStatus(fn(args..., stream_)));
      return;
    }
    sig_.Add(reinterpret_cast<uintptr_t>(fn), args...);
    ops_.push_back([fn, args..., stream = stream_]() { return ToOpStatus(fn(args..., stream)); });
  }

  // Runs what was recorded: replays the graph of an equal earlier step, captures one the
  // second time a step is seen, or launches the ops one by one.
  void FlushRecorded() {
    if (ops_.empty()) {
      sig_.Clear();
      if (arena_ != nullptr) arena_->Reset();
      return;
    }
    if (arena_->used() > 0) {
      CUDA_OK(cudaMemcpyAsync(arena_dev_, arena_host_, arena_->used() * sizeof(int32_t),
                              cudaMemcpyHostToDevice, stream_));
      CUDA_OK(cudaEventRecord(arena_copied_, stream_));
      arena_in_flight_ = true;
    }
    // Kernels launched with programmatic dependent launch make other graph edges: turning it on
    // or off (SetCudaPdl) makes new step signatures, so no graph is replayed in the other mode.
    sig_.Add(0, static_cast<uint8_t>(PdlEnabled() ? 1 : 0));
    cudaGraphExec_t exec = nullptr;
    GraphAction action = GraphAction::kEager;
    if (stats_.enabled && ops_.size() >= kMinGraphOps) action = graphs_.Decide(sig_.bytes(), &exec);
    bool done = false;
    if (action == GraphAction::kReplay) {
      CUDA_OK(cudaGraphLaunch(exec, stream_));
      ++stats_.steps_replayed;
      done = true;
    } else if (action == GraphAction::kCapture) {
      done = CaptureAndLaunch();
    }
    if (!done) {
      for (const auto& op : ops_) CheckOp(op());
      ++stats_.steps_eager;
    }
    ops_.clear();
    sig_.Clear();
    arena_->Reset();
  }

  // Captures the recorded ops as a graph, updates the most recent graph to it (same topology)
  // or instantiates a new one, and launches it. False (graphs turned off for this backend, with
  // the reason kept) when capture fails; nothing has run then.
  bool CaptureAndLaunch() {
    cudaError_t err = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal);
    if (err != cudaSuccess) {
      cudaGetLastError();
      DisableGraphs(absl::StrCat("cudaStreamBeginCapture: ", cudaGetErrorString(err)));
      return false;
    }
    OpStatus st;
    for (const auto& op : ops_) {
      st = op();
      if (!st.ok()) break;
    }
    cudaGraph_t graph = nullptr;
    err = cudaStreamEndCapture(stream_, &graph);
    if (!st.ok() || err != cudaSuccess || graph == nullptr) {
      if (graph != nullptr) cudaGraphDestroy(graph);
      cudaGetLastError();
      DisableGraphs(!st.ok() ? "an op failed under capture: " + st.ToString()
                             : absl::StrCat("cudaStreamEndCapture: ", cudaGetErrorString(err)));
      return false;
    }
    cudaGraphExec_t exec = nullptr;
    if (std::optional<cudaGraphExec_t> victim = graphs_.UpdateCandidate()) {
      cudaGraphExecUpdateResultInfo info;
      if (cudaGraphExecUpdate(*victim, graph, &info) == cudaSuccess) {
        exec = *victim;
        graphs_.RekeyCandidate(sig_.bytes());
        ++stats_.graphs_updated;
      } else {
        cudaGetLastError();  // a different topology: instantiate instead (the old one stays valid)
      }
    }
    if (exec == nullptr) {
      err = cudaGraphInstantiate(&exec, graph, 0);
      if (err != cudaSuccess) {
        cudaGetLastError();
        cudaGraphDestroy(graph);
        DisableGraphs(absl::StrCat("cudaGraphInstantiate: ", cudaGetErrorString(err)));
        return false;
      }
      for (cudaGraphExec_t old : graphs_.Insert(sig_.bytes(), exec)) {
        CUDA_OK(cudaGraphExecDestroy(old));
      }
      ++stats_.graphs_captured;
    }
    cudaGraphDestroy(graph);
    CUDA_OK(cudaGraphLaunch(exec, stream_));
    ++stats_.steps_replayed;
    return true;
  }

  // Later steps run op by op. The open step, if any, goes on recording (so its ops keep their
  // order) and runs op by op when flushed.
  void DisableGraphs(std::string why) {
    std::fprintf(stderr, "cuda backend: CUDA graphs turned off: %s\n", why.c_str());
    stats_.enabled = false;
    stats_.disabled_reason = std::move(why);
  }

  const int device_;
  const int sm_count_;  // multiprocessors, for work-split choices
  // Decode attention with the grouped kernel (TESSERA_CUDA_GROUPED_DECODE=0: the older
  // per-(token, head) and tiled kernels, for comparison).
  bool grouped_decode_ = true;
  // Long prefill runs through GemmAttention (TESSERA_CUDA_GEMM_PREFILL=0: the tiled kernel).
  bool gemm_prefill_ = true;
  // Matvecs on a resident grid (TESSERA_CUDA_MATVEC_PERSISTENT=0: one block per row group).
  bool matvec_persistent_ = true;
  // RopeWriteKv as one kernel (TESSERA_CUDA_FUSED_ROPE_KV=1; off until measured on a GPU).
  bool fused_rope_kv_ = false;
  // MatMulSwiGlu as one matvec launch (TESSERA_CUDA_FUSED_SWIGLU=1; off until measured).
  bool fused_swiglu_ = false;
  // Decode matvecs of 16-bit weights through the shared-memory pipeline
  // (TESSERA_CUDA_MATVEC_ASYNC=1; off until measured).
  bool matvec_async_ = false;
  // Grouped decode splits merged by the last block of each (token, kv head) instead of a second
  // kernel (TESSERA_CUDA_FUSED_SPLIT_MERGE=1; off until measured).
  bool fused_split_merge_ = false;
  // DenseAttention (encoders) through query tiles sharing key loads
  // (TESSERA_CUDA_TILED_DENSE_ATTENTION=1; off until measured).
  bool tiled_dense_attention_ = false;
  const std::string device_name_;
  cudaStream_t stream_;
  void* cublas_;  // cublasHandle_t, bound to stream_
  void* cublas_workspace_;
  std::shared_ptr<DevicePool> pool_ = std::make_shared<DevicePool>();
  std::shared_ptr<FreeGuard> free_guard_ = std::make_shared<FreeGuard>();
  // Serialises ops: they share the stream, the scratch space and the metadata slots.
  std::mutex mu_;
  MetaSlot meta_[kNumMeta] ABSL_GUARDED_BY(mu_);
  Scratch act_scratch_ ABSL_GUARDED_BY(mu_);
  static constexpr size_t kMaxPinnedBytes = size_t{64} << 20;
  void* pinned_ ABSL_GUARDED_BY(mu_) = nullptr;  // cudaMallocHost staging for CopyToHost
  size_t pinned_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  Scratch weight_scratch_ ABSL_GUARDED_BY(mu_);
  Scratch topk_scratch_ ABSL_GUARDED_BY(mu_);
  Scratch attn_scratch_ ABSL_GUARDED_BY(mu_);   // GemmAttention
  Scratch split_scratch_ ABSL_GUARDED_BY(mu_);  // grouped decode splits
  Scratch split_done_scratch_ ABSL_GUARDED_BY(mu_);  // their per-(token, kv head) counters

  // The open step (between BeginStep and EndStep, by step_thread_) and whether its ops are
  // being recorded.
  bool step_open_ ABSL_GUARDED_BY(mu_) = false;
  bool recording_ ABSL_GUARDED_BY(mu_) = false;
  std::thread::id step_thread_ ABSL_GUARDED_BY(mu_);
  std::condition_variable step_done_;
  std::vector<std::function<OpStatus()>> ops_ ABSL_GUARDED_BY(mu_);
  OpSignature sig_ ABSL_GUARDED_BY(mu_);
  int32_t* arena_host_ = nullptr;  // pinned
  int32_t* arena_dev_ = nullptr;
  cudaEvent_t arena_copied_ = nullptr;
  bool arena_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<MetaArena> arena_ ABSL_GUARDED_BY(mu_);
  GraphCache<cudaGraphExec_t> graphs_ ABSL_GUARDED_BY(mu_);
  CudaGraphStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

int CudaDeviceCount(std::string* why) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the runtime's sticky last error for later callers
    if (why != nullptr) *why = absl::StrCat(cudaGetErrorName(err), ": ", cudaGetErrorString(err));
    return 0;
  }
  if (count == 0 && why != nullptr) *why = "the driver reports no CUDA device";
  return count;
}

absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend(const CudaBackendOptions& options) {
  std::string why;
  const int count = CudaDeviceCount(&why);
  if (count == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("no CUDA device is available (", why,
                     "); use device \"cpu\" or \"auto\" on this machine"));
  }
  if (options.device < 0 || options.device >= count) {
    return absl::InvalidArgumentError(absl::StrCat("CUDA device ", options.device,
                                                   " does not exist (this machine has ", count,
                                                   count == 1 ? " device)" : " devices)"));
  }
  auto fail = [](const char* what, cudaError_t err) {
    cudaGetLastError();
    return absl::InternalError(absl::StrCat(what, ": ", cudaGetErrorString(err)));
  };
  if (cudaError_t err = cudaSetDevice(options.device); err != cudaSuccess) {
    return fail("cudaSetDevice", err);
  }
  cudaDeviceProp prop;
  if (cudaError_t err = cudaGetDeviceProperties(&prop, options.device); err != cudaSuccess) {
    return fail("cudaGetDeviceProperties", err);
  }
  if (prop.major < 9) {
    return absl::FailedPreconditionError(absl::StrCat(
        "CUDA device ", options.device, " (", prop.name, ") has compute capability ", prop.major,
        ".", prop.minor, "; this build carries only sm_90 code and compute_90 PTX (H100/H200 "
        "and newer). Use device \"cpu\"."));
  }
  cudaStream_t stream = nullptr;
  if (cudaError_t err = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
      err != cudaSuccess) {
    return fail("cudaStreamCreate", err);
  }
  // cuBLAS's workspace from a plain allocation of ours (32 MiB, enough for Hopper's kernels).
  constexpr size_t kWorkspace = size_t{32} << 20;
  void* workspace = nullptr;
  if (cudaError_t err = cudaMalloc(&workspace, kWorkspace); err != cudaSuccess) {
    cudaStreamDestroy(stream);
    return fail("cudaMalloc (cuBLAS workspace)", err);
  }
  // Default math mode: no TF32 for F32 weights (they are F32 because their precision matters).
  void* cublas = nullptr;
  if (int st = BlasCreate(stream, workspace, kWorkspace, &cublas); st != 0) {
    cudaFree(workspace);
    cudaStreamDestroy(stream);
    return absl::InternalError(absl::StrCat("creating the cuBLAS handle: ", BlasStatusString(st)));
  }
  bool graphs = options.graphs;
  if (const char* env = std::getenv("TESSERA_CUDA_GRAPHS"); env != nullptr && std::string(env) == "0") {
    graphs = false;
  }
  return std::make_unique<CudaBackend>(options.device, prop.name, prop.multiProcessorCount, stream,
                                       cublas, workspace, graphs);
}

CudaGraphStats GetCudaGraphStats(Backend& backend) {
  if (auto* cuda = dynamic_cast<CudaBackend*>(&backend)) return cuda->graph_stats();
  return CudaGraphStats{};
}

void SetCudaGraphs(Backend& backend, bool on) {
  if (auto* cuda = dynamic_cast<CudaBackend*>(&backend)) cuda->SetGraphs(on);
}

namespace {

void SetPathOf(Backend& backend, CudaBackend::Path path, bool on) {
  if (auto* cuda = dynamic_cast<CudaBackend*>(&backend)) cuda->SetPath(path, on);
}

}  // namespace

void SetCudaGroupedDecode(Backend& backend, bool on) {
  SetPathOf(backend, CudaBackend::Path::kGroupedDecode, on);
}

void SetCudaGemmPrefill(Backend& backend, bool on) {
  SetPathOf(backend, CudaBackend::Path::kGemmPrefill, on);
}

void SetCudaMatVecPersistent(Backend& backend, bool on) {
  SetPathOf(backend, CudaBackend::Path::kMatVecPersistent, on);
}

void SetCudaFusedRopeKv(Backend& backend, bool on) {
  SetPathOf(backend, CudaBackend::Path::kFusedRopeKv, on);
}

void SetCudaFusedSwiGlu(Backend& backend, bool on) {
  SetPathOf(backend, CudaBackend::Path::kFusedSwiGlu, on);
}

void SetCudaMatVecAsync(Backend& backend, bool on) {
  SetPathOf(backend, CudaBackend::Path::kMatVecAsync, on);
}

void SetCudaFusedSplitMerge(Backend& backend, bool on) {
  SetPathOf(backend, CudaBackend::Path::kFusedSplitMerge, on);
}

void SetCudaTiledDenseAttention(Backend& backend, bool on) {
  SetPathOf(backend, CudaBackend::Path::kTiledDenseAttention, on);
}

void SetCudaPdl(bool on) { SetPdl(on); }

}  // namespace tessera::engine::cuda
