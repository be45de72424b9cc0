// SIMD kernel tables of the CPU backend. The same source (kernels_impl.cc) is
// compiled once per instruction-set level with that level's compiler flags (see
// BUILD.bazel), each copy in its own namespace, and exports one KernelTable;
// GetKernelTable() hands out the one this machine (or the TESSERA_CPU_ISA
// override) can run. Everything here is stateless and thread-safe; the callers
// (CpuBackend) partition work across threads.
#ifndef TESSERA_ENGINE_BACKEND_CPU_KERNELS_H_
#define TESSERA_ENGINE_BACKEND_CPU_KERNELS_H_

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/dtype.h"

namespace tessera::engine::cpu {

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

std::string_view IsaName(Isa isa);  // "scalar", "avx2", "avx512"
// Whether this CPU can run `isa` (AVX2 also needs FMA and F16C; AVX-512 needs
// F, BW, VL, VNNI).
bool IsaSupported(Isa isa);
// The best level this CPU supports.
Isa BestIsa();
// Parses "scalar" / "avx2" / "avx512"; INVALID_ARGUMENT otherwise.
absl::StatusOr<Isa> ParseIsa(std::string_view name);
// All levels this CPU supports, best first (tests run each).
std::vector<Isa> SupportedIsas();

// Activations quantized for the integer dot products against Q8_0 / Q4_0
// weights ("Q8 rows"): blocks of 32 values, x ~= d * q. A row of k values is
// laid out as arrays, so that the kernels load the scales of 8 blocks with one
// instruction: int8 q[k], then float d[k / 32], then int32 sum[k / 32] (the sum
// of each block's q, for Q4_0's -8 offset).
struct Q8RowView {
  const int8_t* q;
  const float* d;
  const int32_t* sum;
};

// Against Q4_K weights: one block per 256 values, with the sum of each 32-value
// sub-block (for Q4_K's per-sub-block minimums).
struct BlockQ8KX {
  float d;
  int32_t bsums[8];
  int8_t qs[256];
};

// Which activation format a weight type's matmul reads.
enum class XFormat { kF32, kQ8, kQ8K };
XFormat MatMulXFormat(DType type);
// Bytes of one quantized activation row of k values in `format` (k a multiple
// of the block).
size_t XRowBytes(XFormat format, int64_t k);

// dense_attention: queries per block, and keys padded to whole vectors of every level.
constexpr int kDenseAttentionQueries = 4;
constexpr int64_t DenseAttentionKeys(int64_t len) { return (len + 15) / 16 * 16; }
// Floats of scratch dense_attention needs for a sequence of len tokens.
constexpr int64_t DenseAttentionScratch(int64_t len, int head_dim) {
  return DenseAttentionKeys(len) * (head_dim + kDenseAttentionQueries);
}

struct KernelTable {
  Isa isa;
  // Quantizes k floats (a multiple of 32, resp. 256) to blocks. Symmetric, d =
  // amax / 127, round to nearest.
  void (*quantize_q8)(const float* x, void* out_row, int64_t k);  // a Q8 row
  void (*quantize_q8k)(const float* x, BlockQ8KX* out, int64_t k);
  // y[i * ldy + r] = dot(x row i, w row r) for i in [0, n), r in [r0, r1). `x`
  // is in MatMulXFormat(type) with rows x_row_bytes apart; w rows are
  // w_row_bytes apart; k is the number of columns. Each output is computed in a
  // fixed order that does not depend on r0, r1 or n, so results do not depend
  // on how rows are split across threads.
  void (*matmul)(DType type, const void* w, size_t w_row_bytes, const void* x, size_t x_row_bytes,
                 int64_t n, int64_t k, int64_t r0, int64_t r1, float* y, int64_t ldy);
  // Attention helpers over the F16 KV cache.
  float (*dot_f16)(const uint16_t* a, const float* b, int64_t n);
  void (*axpy_f16)(float a, const uint16_t* x, float* y,
                   int64_t n);  // y += a * x
  void (*f32_to_f16)(const float* x, uint16_t* y, int64_t n);
  float (*dot_f32)(const float* a, const float* b, int64_t n);
  void (*axpy_f32)(float a, const float* x, float* y, int64_t n);
  // x[i] = gelu(x[i]) (the erf form) for i < n; within about 2e-7 * |x| of the exact value.
  void (*gelu)(float* x, int64_t n);
  // Bidirectional softmax attention of one head over one sequence of len tokens, for its queries
  // [q0, q1): q, k, v and out point at the head's first column in the sequence's first token,
  // rows `stride` floats apart. `scratch`: DenseAttentionScratch(len, head_dim) floats. The
  // results of a query do not depend on q0 and q1.
  // out = (x - mean) / sqrt(variance + eps) * g + b over one row of dim values (mean and variance
  // summed in double); out may be x.
  void (*layer_norm)(const float* x, int64_t dim, const float* g, const float* b, float eps,
                     float* out);
  void (*dense_attention)(const float* q, const float* k, const float* v, int64_t stride,
                          int64_t len, int64_t q0, int64_t q1, int head_dim, float scale,
                          float* out, float* scratch);
};

// The table for `isa`; CHECK-fails (aborts) if !IsaSupported(isa).
const KernelTable& GetKernelTable(Isa isa);

}  // namespace tessera::engine::cpu

#endif  // TESSERA_ENGINE_BACKEND_CPU_KERNELS_H_
