// The compute backend interface: every operation the models need, on memory the backend owns.
// The models (engine/model/llama, bert) are written once against this interface; the CPU backend
// (engine/backend/cpu) implements it with SIMD kernels chosen at run time and a thread pool, the
// CUDA backend (engine/backend/cuda) with device memory and kernels. Pointers inside Buffer and
// the cache are backend memory: host memory for the CPU backend, device memory for CUDA. Small
// per-call metadata (token ids, positions, block tables) is passed as host spans; a device
// backend copies it over itself.
//
// Conventions: activations are F32, row-major, one row per token: a [n, dim] buffer holds token
// i's vector at data + i * dim. A weight matrix is [rows = out_features, cols = in_features] in
// GGML layout (each row contiguous over the input dimension, quantized in blocks along it), so
// MatMul computes y[i][r] = sum_c x[i][c] * W[r][c]. Operations are synchronous from the caller's
// point of view (a device backend may queue them; CopyToHost waits).
#ifndef TESSERA_ENGINE_BACKEND_BACKEND_H_
#define TESSERA_ENGINE_BACKEND_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/model/dtype.h"

namespace tessera::engine {

// F32 activations in backend memory. Move-only; freed by the backend that made it.
class Buffer {
 public:
  virtual ~Buffer() = default;
  virtual float* data() = 0;
  virtual const float* data() const = 0;
  virtual int64_t size() const = 0;  // in floats
};

// A weight tensor placed in backend memory (or, on the CPU, aliasing the memory-mapped file).
// 1-D tensors (norm weights, biases) have rows == 1.
class Weight {
 public:
  virtual ~Weight() = default;
  DType type() const { return type_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }

 protected:
  Weight(DType type, int64_t rows, int64_t cols) : type_(type), rows_(rows), cols_(cols) {}

 private:
  DType type_;
  int64_t rows_, cols_;
};

// Host-side description of a weight to upload: `data` holds rows * RowBytes(type, cols) bytes
// and must stay valid as long as the Weight (the CPU backend aliases it).
struct WeightData {
  DType type;
  int64_t rows;
  int64_t cols;
  const void* data;
};

// Paged key/value storage for every layer of one model: `num_blocks` blocks of `block_size`
// token slots. A slot is block * block_size + offset. Per layer and slot it holds
// num_kv_heads * head_dim keys and as many values.
struct KvCacheShape {
  int num_layers = 0;
  int num_blocks = 0;
  int block_size = 16;
  int num_kv_heads = 0;
  int head_dim = 0;
};

class KvCache {
 public:
  virtual ~KvCache() = default;
  const KvCacheShape& shape() const { return shape_; }
  int64_t kv_dim() const { return int64_t{shape_.num_kv_heads} * shape_.head_dim; }
  int64_t num_slots() const { return int64_t{shape_.num_blocks} * shape_.block_size; }

 protected:
  explicit KvCache(const KvCacheShape& shape) : shape_(shape) {}

 private:
  KvCacheShape shape_;
};

// The tokens of one forward pass over paged attention. Tokens of several sequences are
// concatenated; token t belongs to sequence token_seq[t] at position token_pos[t], and attends
// (causally) to positions [max(0, pos - window + 1), pos] of its own sequence, which must
// already be written to the cache (its own position included). Sequence s's positions live in
// the slots of block_tables[s] in order: position p is in block block_tables[s][p / block_size]
// at offset p % block_size.
struct PagedAttentionBatch {
  absl::Span<const int32_t> token_seq;
  absl::Span<const int32_t> token_pos;
  std::vector<absl::Span<const int32_t>> block_tables;
  int sliding_window = 0;  // 0: unlimited
};

// RoPE variants: kNormal rotates adjacent pairs (x[2i], x[2i+1]) (Llama in GGUF, whose q/k
// weights are permuted for it); kNeox rotates halves (x[i], x[i + d/2]) (Hugging Face layout).
enum class RopeStyle { kNormal, kNeox };

struct RopeParams {
  RopeStyle style = RopeStyle::kNormal;
  int rotary_dim = 0;         // dimensions rotated per head (<= head_dim); 0 means head_dim
  float theta = 10000.0f;     // base frequency
  float freq_scale = 1.0f;    // linear scaling: position * freq_scale
};

// Sampling candidates computed where the logits are (Backend::TopK): a few values per row cross
// to the host instead of whole rows of the vocabulary. engine/runtime/sampler.h turns them into
// the same choices it makes from a whole row.
inline constexpr int kMaxTopK = 64;

struct TopKRequest {
  int k = 1;                                // candidates per row, 1..kMaxTopK
  absl::Span<const float> sum_temperature;  // per row: > 0 also sums the row's softmax terms
  absl::Span<const float> penalty;          // per row: repetition penalty factor (1: none)
  absl::Span<const int32_t> penalty_ids;    // the tokens each row penalises, concatenated
  absl::Span<const int32_t> penalty_starts; // rows + 1 offsets into penalty_ids
};

struct TopKRows {
  int k = 0;
  // [rows, k]: the k largest finite logits of each row in descending order (equal values: lower
  // id first). A row with fewer finite logits pads with id -1 (value -inf).
  std::vector<float> values;
  std::vector<int32_t> ids;
  // [rows]: sum over the row's finite logits l of float(exp((l - max) / t)) in double, max the
  // row's largest finite logit and t its sum_temperature (0 when that is not > 0).
  std::vector<double> sum_exp;
  // [rows]: logits that are NaN or infinite.
  std::vector<int32_t> nonfinite;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // "cpu-avx512", "cpu-avx2", "cpu-scalar", "cuda:0 NVIDIA H200", ...
  virtual std::string name() const = 0;

  // Brackets the ops of one forward pass (a decode step). A device backend may hold the ops in
  // between and launch them together: the CUDA backend captures the step as a CUDA graph the
  // second time the same step (same shapes, buffers and metadata layout) is seen, and replays
  // the graph after that, one launch instead of hundreds. Results are the same as without the
  // bracket. Host spans passed to ops are copied when the op is called, as always; buffers,
  // weights and caches the ops use must stay alive until EndStep returns. CopyToHost and
  // CopyFromHost inside a step are allowed (they first run what was held). Steps do not nest.
  // Default: nothing (the CPU backend runs every op when called).
  virtual void BeginStep() {}
  virtual void EndStep() {}

  // The most tokens an encoder pass (BertModel::Embed, Score) should hold for this backend to run
  // it fastest, 0 for no limit. The CPU backend keeps a pass's activations within its caches
  // (2,048 tokens of bge-small run about 15% slower per token than 512); a GPU wants every token
  // it can get. Results do not depend on it.
  virtual int64_t PreferredPassTokens() const { return 0; }

  // Memory.
  virtual std::unique_ptr<Buffer> Alloc(int64_t num_floats) = 0;
  virtual absl::StatusOr<std::unique_ptr<Weight>> LoadWeight(const WeightData& w) = 0;
  virtual absl::StatusOr<std::unique_ptr<KvCache>> AllocKvCache(const KvCacheShape& shape) = 0;
  virtual void CopyFromHost(const float* src, int64_t n, Buffer& dst, int64_t dst_offset = 0) = 0;
  virtual void CopyToHost(const Buffer& src, int64_t src_offset, int64_t n, float* dst) = 0;

  // out[i] = row ids[i] of `table` (dequantized). out: [ids.size(), table.cols()].
  virtual void GetRows(const Weight& table, absl::Span<const int32_t> ids, Buffer& out) = 0;
  // out[i, :] = x[rows[i], :] for rows of width `dim` (the tokens whose logits are wanted),
  // without a trip through the host. out: [rows.size(), dim]; must not alias x.
  virtual void GatherRows(const Buffer& x, absl::Span<const int32_t> rows, int64_t dim,
                          Buffer& out) = 0;

  // y[n, w.rows()] = x[n, w.cols()] * w^T, plus bias[w.rows()] when given.
  virtual void MatMul(const Weight& w, const Buffer& x, int64_t n, Buffer& y,
                      const Weight* bias = nullptr) = 0;

  // y[j] = x * w[j]^T for each j: several weights applied to one input (a decoder layer's q/k/v
  // and gate/up projections), same shapes rules as MatMul, no bias. A device backend may run them
  // as one launch. Default: one MatMul each.
  virtual void MatMuls(absl::Span<const Weight* const> w, const Buffer& x, int64_t n,
                       absl::Span<Buffer* const> y);

  // The first half of a SwiGLU feed-forward: gate[i, r] = silu(x[i] . w_gate[r]) * (x[i] .
  // w_up[r]) for n rows (both weights [ffn, cols], same type). `up` is scratch of gate's size (it
  // may hold x * w_up^T afterwards). Default: MatMuls of both, then SiluMul; a device backend may
  // run it as one launch with the same results.
  virtual void MatMulSwiGlu(const Weight& w_gate, const Weight& w_up, const Buffer& x, int64_t n,
                            Buffer& gate, Buffer& up);

  // Elementwise over the first n floats: y += x; y *= x.
  virtual void Add(const Buffer& x, int64_t n, Buffer& y) = 0;
  // y[i, :] += row[:] for each of n rows of width row.cols() (a bias or position row).
  virtual void AddRow(const Weight& row, int64_t n, Buffer& y) = 0;

  // out[i] = x[i] / rms(x[i]) * weight, per row of width `dim` (n rows). out may alias x.
  virtual void RmsNorm(const Buffer& x, int64_t n, int64_t dim, const Weight& weight, float eps,
                       Buffer& out) = 0;
  // The residual add then the next norm: x += o over n rows of width dim, then out = RmsNorm(x)
  // (out must not alias x or o). The same results as Add then RmsNorm; a device backend may fuse
  // them. Default: Add then RmsNorm.
  virtual void AddRmsNorm(const Buffer& o, int64_t n, int64_t dim, Buffer& x,
                          const Weight& weight, float eps, Buffer& out) {
    Add(o, n * dim, x);
    RmsNorm(x, n, dim, weight, eps, out);
  }
  // out[i] = (x[i] - mean) / sqrt(var + eps) * gamma + beta, per row. out may alias x.
  virtual void LayerNorm(const Buffer& x, int64_t n, int64_t dim, const Weight& gamma,
                         const Weight& beta, float eps, Buffer& out) = 0;

  // gate[i] = silu(gate[i]) * up[i] for the first n floats (SwiGLU).
  virtual void SiluMul(Buffer& gate, const Buffer& up, int64_t n) = 0;
  // x[i] = gelu(x[i]) (the erf form, as BERT) for the first n floats.
  virtual void Gelu(Buffer& x, int64_t n) = 0;

  // Rotates in place the heads of x: [positions.size(), num_heads * head_dim].
  virtual void Rope(Buffer& x, absl::Span<const int32_t> positions, int num_heads, int head_dim,
                    const RopeParams& params) = 0;

  // Writes the keys and values of tokens (k, v: [slots.size(), num_kv_heads * head_dim]) into
  // `layer` of the cache at the given slots.
  virtual void WriteKv(KvCache& cache, int layer, const Buffer& k, const Buffer& v,
                       absl::Span<const int32_t> slots) = 0;

  // A decoder layer's rotary step and cache write in one call: Rope(q, num_heads), Rope(k,
  // num_kv_heads) at `positions`, then WriteKv(cache, layer, k, v, slots) (one slot per
  // position). The CUDA backend can run it as one kernel; the results are the three ops'.
  virtual void RopeWriteKv(Buffer& q, Buffer& k, const Buffer& v,
                           absl::Span<const int32_t> positions, int num_heads, int num_kv_heads,
                           int head_dim, const RopeParams& params, KvCache& cache, int layer,
                           absl::Span<const int32_t> slots) {
    Rope(q, positions, num_heads, head_dim, params);
    Rope(k, positions, num_kv_heads, head_dim, params);
    WriteKv(cache, layer, k, v, slots);
  }

  // Causal grouped-query attention from the cache. q: [tokens, num_heads * head_dim];
  // out: same shape. Query head h reads kv head h / (num_heads / num_kv_heads).
  virtual void PagedAttention(const KvCache& cache, int layer, const Buffer& q,
                              const PagedAttentionBatch& batch, int num_heads, float scale,
                              Buffer& out) = 0;

  // Sampling candidates of `rows` rows of logits ([rows, cols]). First, in place, the repetition
  // penalty: for row r, each token t listed in penalty_ids[penalty_starts[r] ..
  // penalty_starts[r + 1]) (ids outside [0, cols) ignored; listed once) has its logit divided by
  // penalty[r] when positive and multiplied by it otherwise. Then TopKRows (see above). Waits for
  // the results, like CopyToHost.
  virtual void TopK(Buffer& logits, int64_t rows, int64_t cols, const TopKRequest& request,
                    TopKRows* out) = 0;

  // Bidirectional attention within each sequence (encoders): tokens of sequence s are rows
  // [seq_starts[s], seq_starts[s + 1]) of q, k, v ([tokens, num_heads * head_dim]). out: like q.
  virtual void DenseAttention(const Buffer& q, const Buffer& k, const Buffer& v,
                              absl::Span<const int32_t> seq_starts, int num_heads, int head_dim,
                              float scale, Buffer& out) = 0;
};

// BeginStep on construction, EndStep on destruction.
class StepScope {
 public:
  explicit StepScope(Backend& b) : b_(b) { b_.BeginStep(); }
  ~StepScope() { b_.EndStep(); }
  StepScope(const StepScope&) = delete;
  StepScope& operator=(const StepScope&) = delete;

 private:
  Backend& b_;
};

// The best backend on this machine: CUDA when built in and a device is present (and not
// disabled with TESSERA_DEVICE=cpu), else the CPU backend with `num_threads` (0: all cores).
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(std::string_view device, int num_threads);

// Checks shared by every backend's LoadWeight: a known type, a positive shape whose byte size does not
// overflow, data present. Returns the bytes of one row. INVALID_ARGUMENT otherwise.
[[nodiscard]] absl::StatusOr<size_t> CheckWeightData(const WeightData& w);

// Checks shared by every backend's TopK: k in [1, kMaxTopK], per-row spans of `rows` values,
// penalty_starts of rows + 1 non-decreasing offsets within penalty_ids, the logits big enough.
// Aborts with a message otherwise (a caller bug, like a shape mismatch in any op).
void CheckTopKRequest(const Buffer& logits, int64_t rows, int64_t cols, const TopKRequest& r);

// One row of TopK on the host (the CPU backend's implementation, and the reference the CUDA
// backend is tested against): penalises `row` in place, writes k values and ids, the row's
// sum_exp and its count of non-finite logits.
void TopKRow(float* row, int64_t cols, int k, float sum_temperature, float penalty,
             absl::Span<const int32_t> penalty_ids, float* values, int32_t* ids, double* sum_exp,
             int32_t* nonfinite);

// Checks shared by every backend's AllocKvCache: a positive shape whose size does not overflow.
// Returns the elements of K (or V) per layer. INVALID_ARGUMENT otherwise.
[[nodiscard]] absl::StatusOr<int64_t> CheckKvCacheShape(const KvCacheShape& s);

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_BACKEND_BACKEND_H_
