// Launchers for the CUDA backend's kernels (kernels.cu, matvec.cu, attention.cu, topk.cu; device
// helpers they share in common.cuh). Private to engine/backend/cuda: the
// CudaBackend (cuda_backend.cc, plain C++) calls these with device pointers; every launcher
// enqueues on `stream` and returns the launch error (cudaSuccess when fine), never waits.
//
// This header is read by both gcc and nvcc, so it uses no absl and no engine headers (the
// element types below mirror engine/model/dtype.h's DType numbering and GGML block layouts).
#ifndef TESSERA_ENGINE_BACKEND_CUDA_KERNELS_H_
#define TESSERA_ENGINE_BACKEND_CUDA_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace tessera::engine::cuda {

// GGML type ids, as DType (engine/model/dtype.h).
enum class WType : int { kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ8_0 = 8, kQ4_K = 12, kBF16 = 30 };

// 16-bit float formats for activations converted before a cuBLAS GEMM.
enum class HalfKind { kF16, kBF16 };

// out[i, c] = dequantized row ids[i] of w (rows row_bytes apart, cols columns), i < n.
cudaError_t LaunchGetRows(WType type, const void* w, int64_t row_bytes, int64_t cols,
                          const int32_t* ids, int64_t n, float* out, cudaStream_t stream);

// out[i * dim + c] = x[rows[i] * dim + c] for i < n.
cudaError_t LaunchGatherRows(const float* x, const int32_t* rows, int64_t n, int64_t dim,
                             float* out, cudaStream_t stream);

// Dequantizes rows [0, rows) of w into a dense row-major [rows, cols] F16 or BF16 matrix.
cudaError_t LaunchDequantize(WType type, const void* w, int64_t row_bytes, int64_t rows,
                             int64_t cols, HalfKind kind, void* out, cudaStream_t stream);

// out[i] = (half or bf16) x[i] for i < n.
cudaError_t LaunchConvertF32(const float* x, int64_t n, HalfKind kind, void* out,
                             cudaStream_t stream);

// Programmatic dependent launch of the decode step's kernels (common.cuh): process-wide, off unless
// TESSERA_CUDA_PDL=1 or SetPdl(true). Graphs captured with it keep it when replayed; either way
// results are the same.
bool PdlEnabled();
void SetPdl(bool on);

// Whether LaunchMatVec handles this weight (type and shape).
bool MatVecSupported(WType type, int64_t cols);
// Warps sharing each output row of a matvec over `rows` rows on a device with `sm_count`
// multiprocessors: 1, 2 or 4, the fewest that give about two resident waves of warps (a few
// thousand rows of one warp each leave the memory system idle part of the time).
int MatVecWarpsPerRow(int64_t rows, int sm_count);
// y[i * ldy + r] = sum_c x[i * cols + c] * W[r][c] (+ bias[r]) for i < n, r < rows:
// `warps_per_row` warps per output row (1, 2 or 4, each over a part of the row) read the weight
// row once for all n (n <= 8 per launch: the launcher splits larger n). F32 activations, F32
// accumulation, fused dequantization. `persistent`: a grid of the blocks the device holds
// resident, each looping over row groups (otherwise one block per row group).
cudaError_t LaunchMatVec(WType type, const void* w, int64_t row_bytes, int64_t rows,
                         int64_t cols, const float* x, int64_t n, const float* bias, float* y,
                         int warps_per_row, bool persistent, cudaStream_t stream);

// Several matrices of one weight type and width over the same input in one launch (a layer's
// q/k/v or gate/up projections): part p writes y[i * rows + r] for its rows, as LaunchMatVec.
inline constexpr int kMaxMatVecParts = 4;
inline constexpr int kMatVecWarpsPerBlock = 4;  // a block covers 4 / warps_per_row rows
struct MatVecPart {
  const void* w = nullptr;
  int64_t row_bytes = 0;
  int64_t rows = 0;
  int64_t blocks = 0;  // ceil(rows / (kMatVecWarpsPerBlock / warps_per_row))
  float* y = nullptr;
};
struct MatVecMultiArgs {
  MatVecPart parts[kMaxMatVecParts];
  int64_t cols = 0;
  const float* x = nullptr;
  int n = 0;  // 1..8
  int num_parts = 0;
  int warps_per_row = 1;  // MatVecWarpsPerRow(sum of the parts' rows)
  int persistent = 1;     // as LaunchMatVec's (an int: the struct stays free of padding, it is
                          // part of a step's signature)
  // 1: two parts of equal shape, gate and up of a SwiGLU feed-forward (each warp reads its part
  // of a gate row, then of the same up row): parts[0].y[i * rows + r] = silu(gate row r . x_i) *
  // (up row r . x_i), the bits of the two matvecs (warps_per_row for both parts' rows) then
  // LaunchSiluMul. parts[1].y is not written.
  int swiglu = 0;
  // 1 (F16/BF16 weights, n <= 2): the weight bytes in flight go through shared memory (cp.async),
  // several times as many as the registers hold; the same results bit for bit.
  int async = 0;
};
static_assert(sizeof(MatVecMultiArgs) == kMaxMatVecParts * 40 + 8 + 8 + 6 * 4,
              "MatVecMultiArgs must stay free of padding");
cudaError_t LaunchMatVecMulti(WType type, const MatVecMultiArgs& a, cudaStream_t stream);

// x[i] += o[i] over n rows of width dim, then out = RmsNorm(x) (the same bits as LaunchAdd then
// LaunchRmsNorm).
cudaError_t LaunchAddRmsNorm(const float* o, int64_t n, int64_t dim, float* x, const float* w,
                             float eps, float* out, cudaStream_t stream);

// y[i, c] += bias[c] for i < n rows of width cols.
cudaError_t LaunchAddRow(const float* bias, int64_t n, int64_t cols, float* y,
                         cudaStream_t stream);
// y[i] += x[i].
cudaError_t LaunchAdd(const float* x, int64_t n, float* y, cudaStream_t stream);
// gate[i] = silu(gate[i]) * up[i].
cudaError_t LaunchSiluMul(float* gate, const float* up, int64_t n, cudaStream_t stream);
// x[i] = gelu(x[i]) (erf form).
cudaError_t LaunchGelu(float* x, int64_t n, cudaStream_t stream);

cudaError_t LaunchRmsNorm(const float* x, int64_t n, int64_t dim, const float* w, float eps,
                          float* out, cudaStream_t stream);
cudaError_t LaunchLayerNorm(const float* x, int64_t n, int64_t dim, const float* gamma,
                            const float* beta, float eps, float* out, cudaStream_t stream);

// RoPE in place over x [num_tokens, num_heads * head_dim]; neox: rotate halves, else pairs.
cudaError_t LaunchRope(float* x, const int32_t* positions, int64_t num_tokens, int num_heads,
                       int head_dim, int rotary_dim, bool neox, float theta, float freq_scale,
                       cudaStream_t stream);

// kc[slots[i] * kv_dim + d] = half(k[i * kv_dim + d]) and the same for v.
cudaError_t LaunchWriteKv(const float* k, const float* v, const int32_t* slots, int64_t n,
                          int64_t kv_dim, uint16_t* kc, uint16_t* vc, cudaStream_t stream);

// LaunchRope of q (num_heads) and k (num_kv_heads), then LaunchWriteKv of k and v (kv_dim =
// num_kv_heads * head_dim), in one kernel with the same results bit for bit.
cudaError_t LaunchRopeWriteKv(float* q, float* k, const float* v, const int32_t* positions,
                              const int32_t* slots, int64_t num_tokens, int num_heads,
                              int num_kv_heads, int head_dim, int rotary_dim, bool neox,
                              float theta, float freq_scale, uint16_t* kc, uint16_t* vc,
                              cudaStream_t stream);

// Paged causal attention (see Backend::PagedAttention). tables: every sequence's block table
// concatenated; table_start[s]: where sequence s's begins. One thread block per (token, head).
struct PagedAttentionArgs {
  const uint16_t* kc;  // F16 [slots, kv_dim] of the layer
  const uint16_t* vc;
  const float* q;
  float* out;
  const int32_t* token_seq;
  const int32_t* token_pos;
  const int32_t* tables;
  const int32_t* table_start;
  int64_t num_tokens;
  int num_heads;
  int num_kv_heads;
  int head_dim;
  int block_size;
  int sliding_window;
  float scale;
  // Tiled mode (num_tiles > 0; planned in CudaBackend::PagedAttention): tile i is
  // tile_count[i] consecutive tokens of one sequence from tile_first[i]; one thread block per
  // (tile, group of heads_per_block query heads sharing a kv head) handles those
  // tile_count * heads_per_block (<= kAttentionTileQueries) queries, loading each tile of keys
  // and values into shared memory once for all of them (prefill, and decode of many streams).
  // Otherwise one block per (token, query head) whose warps split the keys (few tokens).
  const int32_t* tile_first = nullptr;
  const int32_t* tile_count = nullptr;
  int64_t num_tiles = 0;
  int heads_per_block = 1;
  // Grouped decode mode (num_tiles == 0, grouped != 0; see GroupedDecodeSupported): one block
  // per (token, kv head) serves all the query heads of that kv head, reading each key and value
  // row once with 16-byte loads, its warps splitting the keys (decode steps: one token per
  // sequence).
  int grouped = 0;
  // Grouped decode only: each token's keys split over `splits` blocks (long contexts with few
  // tokens), whose unnormalised states ([token][query head][split][head_dim + 2] floats) go to
  // `partial` and are merged by a second kernel. 1: no split.
  int splits = 1;
  // With splits > 1: the last block of each (token, kv head) to finish merges the splits itself
  // (no second kernel), counting in split_done[token * num_kv_heads + kv head], which must be
  // zero before the launch and is zero again after it.
  int merge_in_kernel = 0;
  float* partial = nullptr;
  unsigned int* split_done = nullptr;
};
// No padding bytes: the CUDA backend uses the struct's bytes as part of a step's signature.
static_assert(sizeof(PagedAttentionArgs) == 8 * 8 + 8 + 6 * 4 + 2 * 8 + 8 + 2 * 4 + 2 * 4 + 2 * 8,
              "PagedAttentionArgs must stay free of padding");
// Grouped decode splits a token's keys (in powers of two, at most kDecodeMaxSplits) while the
// grid stays within one block per multiprocessor and each split keeps kDecodeMinSplitKeys keys
// (measured on an H200: batch 1 gains from 4 splits of 64 keys; 16 streams, already 128 blocks,
// lost a fifth of their throughput to splitting).
inline constexpr int kDecodeMinSplitKeys = 64;
inline constexpr int kDecodeMaxSplits = 32;
// Whether grouped decode handles this head size and query heads per kv head.
bool GroupedDecodeSupported(int head_dim, int group);
inline constexpr int kAttentionTileQueries = 16;
cudaError_t LaunchPagedAttention(const PagedAttentionArgs& a, cudaStream_t stream);

// Bidirectional attention within sequences (see Backend::DenseAttention); seq_of[t]: the
// sequence of token t; seq_starts on the device. One block per (token, head) whose warps split
// the keys, or (tiled) one per (16 consecutive tokens, head) that loads each key and value once
// for all 16 queries through shared memory.
cudaError_t LaunchDenseAttention(const float* q, const float* k, const float* v,
                                 const int32_t* seq_starts, const int32_t* seq_of,
                                 int64_t num_tokens, int num_heads, int head_dim, float scale,
                                 float* out, bool tiled, cudaStream_t stream);

// ---- prefill attention through cuBLAS (long runs of one sequence's tokens) ----

// ko[j * kv_dim + d] = kc[slot(k0 + j) * kv_dim + d] (and the same for v) for j < t_k: the keys
// and values of positions [k0, k0 + t_k) of one sequence (block table `table`), contiguous.
cudaError_t LaunchGatherKv(const uint16_t* kc, const uint16_t* vc, const int32_t* table,
                           int block_size, int64_t kv_dim, int k0, int64_t t_k, uint16_t* ko,
                           uint16_t* vo, cudaStream_t stream);
// For each of batch * t_q rows of scores s ([batch][t_q][t_k], query i at position pos[i], key j
// at position k0 + j): the causal (and sliding-window) softmax over the keys it may see, written
// as F16 probabilities p (0 for masked keys).
cudaError_t LaunchMaskedSoftmax(const float* s, int64_t batch, int64_t t_q, int64_t t_k,
                                const int32_t* pos, int k0, int window, uint16_t* p,
                                cudaStream_t stream);

// Backend::TopK on the device: one block per row. temperature and penalty are per row; the
// penalised tokens of row r are pen_ids[pen_starts[r] .. pen_starts[r + 1]). Outputs: values and
// ids [rows, k], sum_exp and nonfinite [rows].
cudaError_t LaunchTopK(float* logits, int64_t rows, int64_t cols, int k, const float* temperature,
                       const float* penalty, const int32_t* pen_ids, const int32_t* pen_starts,
                       float* values, int32_t* ids, double* sum_exp, int32_t* nonfinite,
                       cudaStream_t stream);

// ---- cuBLAS (blas.cu: cuBLAS headers need nvcc's include setup, so C++ code calls these) ----

// An opaque cuBLAS handle bound to `stream`, using `workspace` (bytes) as its workspace, with
// the default math mode (no TF32). Returns a cublasStatus_t value (0: success).
int BlasCreate(cudaStream_t stream, void* workspace, size_t workspace_bytes, void** handle);
void BlasDestroy(void* handle);
const char* BlasStatusString(int status);

// Row-major y[n, rows] = x[n, k] * W^T with W row-major [rows, k]; F32 output, F32 accumulate.
// F32 inputs: SGEMM. Half inputs (both in `kind`): cublasGemmEx.
int BlasMatMulF32(void* handle, int64_t rows, int64_t n, int64_t k, const float* w,
                  const float* x, float* y);
int BlasMatMulHalf(void* handle, HalfKind kind, int64_t rows, int64_t n, int64_t k,
                   const void* w, const void* x, float* y);

// Attention scores for `batch` query heads sharing one kv head, F16 inputs, F32 out:
// s[b][i][j] = scale * sum_d q[i * ldq + b * hd + d] * k[j * ldk + d], i < t_q, j < t_k.
int BlasAttentionScores(void* handle, int64_t t_q, int64_t t_k, int64_t hd, int64_t batch,
                        float scale, const void* q, int64_t ldq, const void* k, int64_t ldk,
                        float* s);
// out[i * ldo + b * hd + d] = sum_j p[b][i][j] * v[j * ldv + d]: F16 inputs, F32 out.
int BlasAttentionValues(void* handle, int64_t t_q, int64_t t_k, int64_t hd, int64_t batch,
                        const void* p, const void* v, int64_t ldv, float* out, int64_t ldo);

}  // namespace tessera::engine::cuda

#endif  // TESSERA_ENGINE_BACKEND_CUDA_KERNELS_H_
