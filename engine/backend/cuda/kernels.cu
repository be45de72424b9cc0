// The CUDA backend's kernels (see kernels.h) other than the matvecs (matvec.cu), attention
// (attention.cu) and TopK (topk.cu): embedding lookups, conversions, elementwise ops, norms, RoPE
// and the KV cache write. Correctness first: simple, readable kernels that match the CPU backend's
// arithmetic closely.
#include <atomic>
#include <cstdlib>
#include <string>

#include "engine/backend/cuda/common.cuh"

namespace tessera::engine::cuda {
namespace {

// -1: not decided yet (TESSERA_CUDA_PDL read on first use); 0 off; 1 on.
std::atomic<int> g_pdl{-1};

}  // namespace

bool PdlEnabled() {
  int v = g_pdl.load(std::memory_order_relaxed);
  if (v < 0) {
    const char* env = std::getenv("TESSERA_CUDA_PDL");
    int expected = -1;
    g_pdl.compare_exchange_strong(expected, env != nullptr && std::string(env) == "1" ? 1 : 0);
    v = g_pdl.load(std::memory_order_relaxed);
  }
  return v == 1;
}

void SetPdl(bool on) { g_pdl.store(on ? 1 : 0, std::memory_order_relaxed); }

namespace {

__global__ void GetRowsKernel(WType t, const uint8_t* w, int64_t row_bytes, int64_t cols,
                              const int32_t* ids, int64_t n, float* out) {
  PdlWait();
  PdlTrigger();
  const int64_t total = n * cols;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = e / cols, c = e % cols;
    out[e] = LoadElem(t, w + static_cast<int64_t>(ids[i]) * row_bytes, c);
  }
}

__global__ void GatherRowsKernel(const float* x, const int32_t* rows, int64_t n, int64_t dim,
                                 float* out) {
  PdlWait();
  PdlTrigger();
  const int64_t total = n * dim;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[e] = x[static_cast<int64_t>(rows[e / dim]) * dim + e % dim];
  }
}

template <typename H>
__device__ __forceinline__ H FromFloat(float f);
template <>
__device__ __forceinline__ __half FromFloat<__half>(float f) { return __float2half_rn(f); }
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float f) {
  return __float2bfloat16_rn(f);
}

template <typename H>
__global__ void DequantizeKernel(WType t, const uint8_t* w, int64_t row_bytes, int64_t rows,
                                 int64_t cols, H* out) {
  const int64_t total = rows * cols;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[e] = FromFloat<H>(LoadElem(t, w + (e / cols) * row_bytes, e % cols));
  }
}

template <typename H>
__global__ void ConvertKernel(const float* x, int64_t n, H* out) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = FromFloat<H>(x[i]);
  }
}

// ---- elementwise ----

__global__ void AddRowKernel(const float* bias, int64_t n, int64_t cols, float* y) {
  const int64_t total = n * cols;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[e] += bias[e % cols];
  }
}

__global__ void AddKernel(const float* x, int64_t n, float* y) {
  PdlWait();
  PdlTrigger();
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[i] += x[i];
  }
}

__global__ void SiluMulKernel(float* gate, const float* up, int64_t n) {
  PdlWait();
  PdlTrigger();
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    gate[i] = SiluMulValue(gate[i], up[i]);
  }
}

__global__ void GeluKernel(float* x, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float v = x[i];
    x[i] = 0.5f * v * (1.0f + erff(v * 0.70710678f));
  }
}

// One block per row. With `vec` (dim % 4 == 0, every pointer 16-byte aligned) threads read
// float4s: thread i
// sums the squares of chunks i, i + blockDim.x, ... in that order (SumSquares4), so that
// AddRmsNormKernel reproduces RmsNormKernel's bits.
__device__ __forceinline__ float SumSquares4(float ss, float4 v) {
  return ss + (v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w);
}

__device__ __forceinline__ float4 ScaleMul4(float4 v, float scale, float4 w) {
  return make_float4(v.x * scale * w.x, v.y * scale * w.y, v.z * scale * w.z, v.w * scale * w.w);
}

__global__ void RmsNormKernel(const float* x, int64_t dim, const float* w, float eps, float* out,
                              bool vec) {
  PdlWait();
  PdlTrigger();
  const float* xr = x + static_cast<int64_t>(blockIdx.x) * dim;
  float* o = out + static_cast<int64_t>(blockIdx.x) * dim;
  float ss = 0.0f;
  if (vec) {
    const int64_t d4 = dim / 4;
    const float4* x4 = reinterpret_cast<const float4*>(xr);
    for (int64_t c = threadIdx.x; c < d4; c += blockDim.x) ss = SumSquares4(ss, x4[c]);
    ss = BlockSum(ss);
    const float scale = 1.0f / sqrtf(ss / static_cast<float>(dim) + eps);
    const float4* w4 = reinterpret_cast<const float4*>(w);
    float4* o4 = reinterpret_cast<float4*>(o);
    for (int64_t c = threadIdx.x; c < d4; c += blockDim.x) o4[c] = ScaleMul4(x4[c], scale, w4[c]);
    return;
  }
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) ss += xr[c] * xr[c];
  ss = BlockSum(ss);
  const float scale = 1.0f / sqrtf(ss / static_cast<float>(dim) + eps);
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) o[c] = xr[c] * scale * w[c];
}

// Add then RmsNorm in one pass with RmsNormKernel's arithmetic and reduction order (the same
// bits as the two kernels).
__global__ void AddRmsNormKernel(const float* o, float* x, int64_t dim, const float* w, float eps,
                                 float* out, bool vec) {
  PdlWait();
  PdlTrigger();
  float* xr = x + static_cast<int64_t>(blockIdx.x) * dim;
  const float* orow = o + static_cast<int64_t>(blockIdx.x) * dim;
  float* res = out + static_cast<int64_t>(blockIdx.x) * dim;
  float ss = 0.0f;
  if (vec) {
    const int64_t d4 = dim / 4;
    float4* x4 = reinterpret_cast<float4*>(xr);
    const float4* o4 = reinterpret_cast<const float4*>(orow);
    for (int64_t c = threadIdx.x; c < d4; c += blockDim.x) {
      const float4 a = x4[c], b = o4[c];
      const float4 v = make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
      x4[c] = v;
      ss = SumSquares4(ss, v);
    }
    ss = BlockSum(ss);
    const float scale = 1.0f / sqrtf(ss / static_cast<float>(dim) + eps);
    const float4* w4 = reinterpret_cast<const float4*>(w);
    float4* r4 = reinterpret_cast<float4*>(res);
    for (int64_t c = threadIdx.x; c < d4; c += blockDim.x) r4[c] = ScaleMul4(x4[c], scale, w4[c]);
    return;
  }
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
    const float v = xr[c] + orow[c];
    xr[c] = v;
    ss += v * v;
  }
  ss = BlockSum(ss);
  const float scale = 1.0f / sqrtf(ss / static_cast<float>(dim) + eps);
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) res[c] = xr[c] * scale * w[c];
}

// Whether the norm kernels may read float4s.
bool NormVec(int64_t dim, std::initializer_list<const void*> ptrs) {
  if (dim % 4 != 0) return false;
  for (const void* p : ptrs) {
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  }
  return true;
}

// Threads per norm block: one float4 (or float) each up to 1024 (a row in one round trip).
int NormThreads(int64_t dim, bool vec) {
  const int64_t per = vec ? dim / 4 : dim;
  return static_cast<int>(std::min<int64_t>(1024, std::max<int64_t>(32, (per + 31) / 32 * 32)));
}

__global__ void LayerNormKernel(const float* x, int64_t dim, const float* gamma, const float* beta,
                                float eps, float* out) {
  const float* xr = x + static_cast<int64_t>(blockIdx.x) * dim;
  float* o = out + static_cast<int64_t>(blockIdx.x) * dim;
  float s = 0.0f;
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) s += xr[c];
  const float mean = BlockSum(s) / static_cast<float>(dim);
  float v = 0.0f;
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) v += (xr[c] - mean) * (xr[c] - mean);
  const float var = BlockSum(v) / static_cast<float>(dim);
  const float inv = static_cast<float>(1.0 / sqrt(static_cast<double>(var) + eps));
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) o[c] = (xr[c] - mean) * inv * gamma[c] + beta[c];
}

// Heads per RopeKernel thread: its pair's angle is computed once for them, and their values are
// all loaded before any is stored (independent loads in flight, not one round trip per head).
constexpr int kRopeHeads = 4;

// The rotation of pair i at position p (already times freq_scale): angles in double, as the CPU
// backend (a float angle at position 10^5 is off by ~10^-2).
__device__ __forceinline__ void RopeCosSin(double p, int i, int rotary_dim, float theta, float* c,
                                           float* s) {
  const double inv_freq = pow(static_cast<double>(theta), -2.0 * i / rotary_dim);
  double sd, cd;
  sincos(p * inv_freq, &sd, &cd);
  *c = static_cast<float>(cd);
  *s = static_cast<float>(sd);
}

// Rotates elements a and b of `heads` (<= kRopeHeads) consecutive heads starting at `v`, all loads
// before the stores, with the CPU's unfused float arithmetic (so RopeKernel and RopeWriteKvKernel
// give the same bits); with `kc`, the rotated values also go there as F16 (the same offsets).
__device__ __forceinline__ void RotateHeads(float* v, int heads, int head_dim, int a, int b,
                                            float c, float s, uint16_t* kc) {
  float x0[kRopeHeads], x1[kRopeHeads];
#pragma unroll
  for (int h = 0; h < kRopeHeads; ++h) {
    if (h < heads) {
      x0[h] = v[h * head_dim + a];
      x1[h] = v[h * head_dim + b];
    }
  }
#pragma unroll
  for (int h = 0; h < kRopeHeads; ++h) {
    if (h < heads) {
      const float y0 = __fsub_rn(__fmul_rn(x0[h], c), __fmul_rn(x1[h], s));
      const float y1 = __fadd_rn(__fmul_rn(x0[h], s), __fmul_rn(x1[h], c));
      v[h * head_dim + a] = y0;
      v[h * head_dim + b] = y1;
      if (kc != nullptr) {
        kc[h * head_dim + a] = __half_as_ushort(__float2half_rn(y0));
        kc[h * head_dim + b] = __half_as_ushort(__float2half_rn(y1));
      }
    }
  }
}

// Block (t, y) rotates heads [y * kRopeHeads, (y + 1) * kRopeHeads) of token t; thread i handles
// rotation pair i (and i + blockDim.x, ...).
__global__ void RopeKernel(float* x, const int32_t* positions, int num_heads, int head_dim,
                           int rotary_dim, bool neox, float theta, float freq_scale) {
  PdlWait();
  PdlTrigger();
  const int64_t t = blockIdx.x;
  const int h0 = blockIdx.y * kRopeHeads;
  const int half = rotary_dim / 2;
  const int64_t width = static_cast<int64_t>(num_heads) * head_dim;
  const double p = static_cast<double>(positions[t]) * static_cast<double>(freq_scale);
  float* v = x + t * width + static_cast<int64_t>(h0) * head_dim;
  const int heads = min(kRopeHeads, num_heads - h0);
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    float c, s;
    RopeCosSin(p, i, rotary_dim, theta, &c, &s);
    RotateHeads(v, heads, head_dim, neox ? i : 2 * i, neox ? i + half : 2 * i + 1, c, s, nullptr);
  }
}

// Rope of q and k and the cache write of k and v for token t (RopeWriteKv): blocks y < qg rotate
// q's head groups, the next kg blocks k's (also storing them, and k's unrotated dimensions, in the
// cache at the token's slot), the last block stores v.
__global__ void RopeWriteKvKernel(float* q, float* k, const float* v, const int32_t* positions,
                                  const int32_t* slots, int num_heads, int num_kv_heads,
                                  int head_dim, int rotary_dim, bool neox, float theta,
                                  float freq_scale, uint16_t* kc, uint16_t* vc) {
  PdlWait();
  PdlTrigger();
  const int64_t t = blockIdx.x;
  const int y = blockIdx.y;
  const int qg = (num_heads + kRopeHeads - 1) / kRopeHeads;
  const int kg = (num_kv_heads + kRopeHeads - 1) / kRopeHeads;
  const int64_t kv_dim = static_cast<int64_t>(num_kv_heads) * head_dim;
  const int64_t slot_off = static_cast<int64_t>(slots[t]) * kv_dim;
  if (y == qg + kg) {
    for (int64_t d = threadIdx.x; d < kv_dim; d += blockDim.x) {
      vc[slot_off + d] = __half_as_ushort(__float2half_rn(v[t * kv_dim + d]));
    }
    return;
  }
  const bool is_k = y >= qg;
  const int num = is_k ? num_kv_heads : num_heads;
  const int h0 = (is_k ? y - qg : y) * kRopeHeads;
  const int heads = min(kRopeHeads, num - h0);
  float* row = (is_k ? k : q) + t * num * static_cast<int64_t>(head_dim) +
               static_cast<int64_t>(h0) * head_dim;
  uint16_t* cache = is_k ? kc + slot_off + static_cast<int64_t>(h0) * head_dim : nullptr;
  const int half = rotary_dim / 2;
  const double p = static_cast<double>(positions[t]) * static_cast<double>(freq_scale);
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    float c, s;
    RopeCosSin(p, i, rotary_dim, theta, &c, &s);
    RotateHeads(row, heads, head_dim, neox ? i : 2 * i, neox ? i + half : 2 * i + 1, c, s, cache);
  }
  if (is_k) {  // dimensions past rotary_dim go to the cache unrotated
    const int rest = head_dim - rotary_dim;
    for (int e = threadIdx.x; e < heads * rest; e += blockDim.x) {
      const int off = (e / rest) * head_dim + rotary_dim + e % rest;
      cache[off] = __half_as_ushort(__float2half_rn(row[off]));
    }
  }
}

__global__ void WriteKvKernel(const float* k, const float* v, const int32_t* slots, int64_t n,
                              int64_t kv_dim, uint16_t* kc, uint16_t* vc) {
  PdlWait();
  PdlTrigger();
  const int64_t total = n * kv_dim;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = e / kv_dim, d = e % kv_dim;
    const int64_t dst = static_cast<int64_t>(slots[i]) * kv_dim + d;
    kc[dst] = __half_as_ushort(__float2half_rn(k[e]));
    vc[dst] = __half_as_ushort(__float2half_rn(v[e]));
  }
}

}  // namespace

cudaError_t LaunchGetRows(WType type, const void* w, int64_t row_bytes, int64_t cols,
                          const int32_t* ids, int64_t n, float* out, cudaStream_t stream) {
  if (n * cols == 0) return cudaSuccess;
  LaunchPdl(&GetRowsKernel, Blocks(n * cols), kThreads, 0, stream, type,
            static_cast<const uint8_t*>(w), row_bytes, cols, ids, n, out);
  return cudaGetLastError();
}

cudaError_t LaunchGatherRows(const float* x, const int32_t* rows, int64_t n, int64_t dim,
                             float* out, cudaStream_t stream) {
  if (n * dim == 0) return cudaSuccess;
  LaunchPdl(&GatherRowsKernel, Blocks(n * dim), kThreads, 0, stream, x, rows, n, dim, out);
  return cudaGetLastError();
}

cudaError_t LaunchDequantize(WType type, const void* w, int64_t row_bytes, int64_t rows,
                             int64_t cols, HalfKind kind, void* out, cudaStream_t stream) {
  if (rows * cols == 0) return cudaSuccess;
  const auto* wp = static_cast<const uint8_t*>(w);
  if (kind == HalfKind::kF16) {
    DequantizeKernel<__half><<<Blocks(rows * cols), kThreads, 0, stream>>>(
        type, wp, row_bytes, rows, cols, static_cast<__half*>(out));
  } else {
    DequantizeKernel<__nv_bfloat16><<<Blocks(rows * cols), kThreads, 0, stream>>>(
        type, wp, row_bytes, rows, cols, static_cast<__nv_bfloat16*>(out));
  }
  return cudaGetLastError();
}

cudaError_t LaunchConvertF32(const float* x, int64_t n, HalfKind kind, void* out,
                             cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (kind == HalfKind::kF16) {
    ConvertKernel<__half><<<Blocks(n), kThreads, 0, stream>>>(x, n, static_cast<__half*>(out));
  } else {
    ConvertKernel<__nv_bfloat16>
        <<<Blocks(n), kThreads, 0, stream>>>(x, n, static_cast<__nv_bfloat16*>(out));
  }
  return cudaGetLastError();
}

cudaError_t LaunchAddRmsNorm(const float* o, int64_t n, int64_t dim, float* x, const float* w,
                             float eps, float* out, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (n > 0x7fffffff) return cudaErrorInvalidValue;
  const bool vec = NormVec(dim, {o, x, w, out});
  LaunchPdl(&AddRmsNormKernel, static_cast<unsigned>(n), NormThreads(dim, vec), 0, stream, o, x,
            dim, w, eps, out, vec);
  return cudaGetLastError();
}

cudaError_t LaunchAddRow(const float* bias, int64_t n, int64_t cols, float* y,
                         cudaStream_t stream) {
  if (n * cols == 0) return cudaSuccess;
  AddRowKernel<<<Blocks(n * cols), kThreads, 0, stream>>>(bias, n, cols, y);
  return cudaGetLastError();
}

cudaError_t LaunchAdd(const float* x, int64_t n, float* y, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  LaunchPdl(&AddKernel, Blocks(n), kThreads, 0, stream, x, n, y);
  return cudaGetLastError();
}

cudaError_t LaunchSiluMul(float* gate, const float* up, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  LaunchPdl(&SiluMulKernel, Blocks(n), kThreads, 0, stream, gate, up, n);
  return cudaGetLastError();
}

cudaError_t LaunchGelu(float* x, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  GeluKernel<<<Blocks(n), kThreads, 0, stream>>>(x, n);
  return cudaGetLastError();
}

cudaError_t LaunchRmsNorm(const float* x, int64_t n, int64_t dim, const float* w, float eps,
                          float* out, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (n > 0x7fffffff) return cudaErrorInvalidValue;
  const bool vec = NormVec(dim, {x, w, out});
  LaunchPdl(&RmsNormKernel, static_cast<unsigned>(n), NormThreads(dim, vec), 0, stream, x, dim, w,
            eps, out, vec);
  return cudaGetLastError();
}

cudaError_t LaunchLayerNorm(const float* x, int64_t n, int64_t dim, const float* gamma,
                            const float* beta, float eps, float* out, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (n > 0x7fffffff) return cudaErrorInvalidValue;
  LayerNormKernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(x, dim, gamma, beta, eps,
                                                                      out);
  return cudaGetLastError();
}

cudaError_t LaunchRope(float* x, const int32_t* positions, int64_t num_tokens, int num_heads,
                       int head_dim, int rotary_dim, bool neox, float theta, float freq_scale,
                       cudaStream_t stream) {
  if (num_tokens == 0) return cudaSuccess;
  if (num_tokens > 0x7fffffff) return cudaErrorInvalidValue;
  const int threads = std::min(256, std::max(32, (rotary_dim / 2 + 31) / 32 * 32));
  const dim3 grid(static_cast<unsigned>(num_tokens),
                  static_cast<unsigned>((num_heads + kRopeHeads - 1) / kRopeHeads));
  if (grid.y > 65535) return cudaErrorInvalidValue;
  LaunchPdl(&RopeKernel, grid, threads, 0, stream, x, positions, num_heads, head_dim, rotary_dim,
            neox, theta, freq_scale);
  return cudaGetLastError();
}

cudaError_t LaunchRopeWriteKv(float* q, float* k, const float* v, const int32_t* positions,
                              const int32_t* slots, int64_t num_tokens, int num_heads,
                              int num_kv_heads, int head_dim, int rotary_dim, bool neox,
                              float theta, float freq_scale, uint16_t* kc, uint16_t* vc,
                              cudaStream_t stream) {
  if (num_tokens == 0) return cudaSuccess;
  if (num_tokens > 0x7fffffff) return cudaErrorInvalidValue;
  const int threads = std::min(256, std::max(32, (rotary_dim / 2 + 31) / 32 * 32));
  const int groups = (num_heads + kRopeHeads - 1) / kRopeHeads +
                     (num_kv_heads + kRopeHeads - 1) / kRopeHeads + 1;
  if (groups > 65535) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(num_tokens), static_cast<unsigned>(groups));
  LaunchPdl(&RopeWriteKvKernel, grid, threads, 0, stream, q, k, v, positions, slots, num_heads,
            num_kv_heads, head_dim, rotary_dim, neox, theta, freq_scale, kc, vc);
  return cudaGetLastError();
}

cudaError_t LaunchWriteKv(const float* k, const float* v, const int32_t* slots, int64_t n,
                          int64_t kv_dim, uint16_t* kc, uint16_t* vc, cudaStream_t stream) {
  if (n * kv_dim == 0) return cudaSuccess;
  LaunchPdl(&WriteKvKernel, Blocks(n * kv_dim), kThreads, 0, stream, k, v, slots, n, kv_dim, kc,
            vc);
  return cudaGetLastError();
}

}  // namespace tessera::engine::cuda
