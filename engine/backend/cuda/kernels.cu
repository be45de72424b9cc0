// The CUDA backend's kernels (see kernels.h). Correctness first: simple, readable kernels that
// match the CPU backend's arithmetic closely; the one written for bandwidth is MatVec (decode).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_pipeline.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "engine/backend/cuda/kernels.h"

namespace tessera::engine::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;

int Blocks(int64_t n, int threads = kThreads) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>((n + threads - 1) / threads, kMaxBlocks)));
}

// ---- programmatic dependent launch (Hopper) ----
// The decode step's kernels are launched with PDL (LaunchPdl): the next kernel in the stream may
// be scheduled before this one ends, and runs its prologue (a matvec prefetches its first weight
// rows into L2) while this one finishes. Every kernel launched so calls PdlWait() before it reads
// anything an earlier kernel wrote, in every thread (so its completion implies its predecessors'),
// then PdlTrigger() to let its own successor be scheduled. Without PDL both are no-ops.
// Off by default (not yet run on a GPU): TESSERA_CUDA_PDL=1 turns it on (read at the first launch),
// SetPdl switches it for the launches that follow (process-wide).
__device__ __forceinline__ void PdlWait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void PdlTrigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}

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

// kernel<<<grid, block, smem, stream>>>(args...), with the programmatic-serialization attribute
// when PDL is on (the kernel must call PdlWait, see above).
template <typename... KArgs, typename... Args>
void LaunchPdl(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
               Args&&... args) {
  if (!PdlEnabled()) {
    kernel<<<grid, block, smem, stream>>>(std::forward<Args>(args)...);
    return;
  }
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attr;
  config.numAttrs = 1;
  cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

__device__ __forceinline__ float H2F(uint16_t h) { return __half2float(__ushort_as_half(h)); }
__device__ __forceinline__ float B2F(uint16_t h) {
  return __uint_as_float(static_cast<uint32_t>(h) << 16);
}
__device__ __forceinline__ uint16_t LoadU16(const uint8_t* p) {
  return *reinterpret_cast<const uint16_t*>(p);  // p is 2-byte aligned in every block layout
}

// The 6-bit scale and min of sub-block j of a Q4_K block (GGML's packing).
__device__ __forceinline__ void ScaleMinK4(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Element c of a weight row, dequantized exactly as engine/model/dtype.cc's DequantizeRow.
__device__ float LoadElem(WType t, const uint8_t* row, int64_t c) {
  switch (t) {
    case WType::kF32:
      return reinterpret_cast<const float*>(row)[c];
    case WType::kF16:
      return H2F(reinterpret_cast<const uint16_t*>(row)[c]);
    case WType::kBF16:
      return B2F(reinterpret_cast<const uint16_t*>(row)[c]);
    case WType::kQ8_0: {
      const uint8_t* b = row + (c / 32) * 34;
      return __fmul_rn(H2F(LoadU16(b)), static_cast<float>(static_cast<int8_t>(b[2 + c % 32])));
    }
    case WType::kQ4_0: {
      const uint8_t* b = row + (c / 32) * 18;
      const int j = static_cast<int>(c % 32);
      const uint8_t byte = b[2 + (j % 16)];
      const int nib = j < 16 ? (byte & 0xF) : (byte >> 4);
      return __fmul_rn(static_cast<float>(nib - 8), H2F(LoadU16(b)));
    }
    case WType::kQ4_K: {
      const uint8_t* b = row + (c / 256) * 144;
      const float d = H2F(LoadU16(b)), dmin = H2F(LoadU16(b + 2));
      const int e = static_cast<int>(c % 256), u = e / 32;
      const uint8_t byte = b[16 + 32 * (u / 2) + e % 32];
      const int nib = (u % 2 == 0) ? (byte & 0xF) : (byte >> 4);
      int sc, m;
      ScaleMinK4(u, b + 4, &sc, &m);
      const float d1 = __fmul_rn(d, static_cast<float>(sc));
      const float m1 = __fmul_rn(dmin, static_cast<float>(m));
      return __fsub_rn(__fmul_rn(d1, static_cast<float>(nib)), m1);
    }
  }
  return 0.0f;
}

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

// ---- MatVec: one warp per output row, fused dequantization ----

// Elements per "unit" a lane dequantizes at once: 8 (16 or 32 bytes) for float types, one
// 32-element block (or Q4_K sub-block) for quantized ones.
template <WType T>
constexpr int kUnit = (T == WType::kF32 || T == WType::kF16 || T == WType::kBF16) ? 8 : 32;

// The 8 values of a 16-byte unit of F16 or BF16 weights.
template <WType T>
__device__ __forceinline__ void Unpack16(const uint4 raw, float* v) {
  const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const uint16_t lo = static_cast<uint16_t>(words[j] & 0xFFFF);
    const uint16_t hi = static_cast<uint16_t>(words[j] >> 16);
    if constexpr (T == WType::kF16) {
      v[2 * j] = H2F(lo);
      v[2 * j + 1] = H2F(hi);
    } else {
      v[2 * j] = B2F(lo);
      v[2 * j + 1] = B2F(hi);
    }
  }
}

template <WType T>
__device__ __forceinline__ void LoadUnit(const uint8_t* row, int64_t u, float* v) {
  if constexpr (T == WType::kF32) {
    const float4* p = reinterpret_cast<const float4*>(row) + 2 * u;
    const float4 a = __ldg(p), b = __ldg(p + 1);
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
    v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
  } else if constexpr (T == WType::kF16 || T == WType::kBF16) {
    Unpack16<T>(__ldg(reinterpret_cast<const uint4*>(row) + u), v);
  } else if constexpr (T == WType::kQ8_0) {
    const uint8_t* b = row + u * 34;
    const float d = H2F(LoadU16(b));
    const uint16_t* q = reinterpret_cast<const uint16_t*>(b + 2);
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      const uint16_t two = q[j];
      v[2 * j] = d * static_cast<float>(static_cast<int8_t>(two & 0xFF));
      v[2 * j + 1] = d * static_cast<float>(static_cast<int8_t>(two >> 8));
    }
  } else if constexpr (T == WType::kQ4_0) {
    const uint8_t* b = row + u * 18;
    const float d = H2F(LoadU16(b));
    const uint16_t* q = reinterpret_cast<const uint16_t*>(b + 2);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const uint16_t two = q[j];
      const int b0 = two & 0xFF, b1 = two >> 8;
      v[2 * j] = static_cast<float>((b0 & 0xF) - 8) * d;
      v[2 * j + 1] = static_cast<float>((b1 & 0xF) - 8) * d;
      v[2 * j + 16] = static_cast<float>((b0 >> 4) - 8) * d;
      v[2 * j + 17] = static_cast<float>((b1 >> 4) - 8) * d;
    }
  } else {  // Q4_K: unit u is sub-block u % 8 of super-block u / 8
    const uint8_t* b = row + (u / 8) * 144;
    const int sub = static_cast<int>(u % 8);
    const float d = H2F(LoadU16(b)), dmin = H2F(LoadU16(b + 2));
    int sc, m;
    ScaleMinK4(sub, b + 4, &sc, &m);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
    const uint4* q = reinterpret_cast<const uint4*>(b + 16 + 32 * (sub / 2));
    const uint4 r0 = q[0], r1 = q[1];
    const uint32_t words[8] = {r0.x, r0.y, r0.z, r0.w, r1.x, r1.y, r1.z, r1.w};
    const int shift = (sub % 2) * 4;
#pragma unroll
    for (int j = 0; j < 32; ++j) {
      const int byte = (words[j / 4] >> (8 * (j % 4))) & 0xFF;
      v[j] = d1 * static_cast<float>((byte >> shift) & 0xF) - m1;
    }
  }
}

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

constexpr int kMatVecWarps = kMatVecWarpsPerBlock;
// Units of 16-bit weights each lane has in flight before any arithmetic (4 x 16 bytes; 8 measured
// no faster on an H200).
constexpr int kMatVecInFlight = 4;
// MatVecAsyncKernel: groups of kMatVecInFlight units per lane in flight through shared memory
// (kMatVecStages - 1 of them per warp), and the blocks per multiprocessor its shared-memory
// carveout is sized for: 5 x 33 KB (about 120 KB in flight), leaving about 60 KB of an H100/H200
// multiprocessor's 256 KB to L1 for the activations (a 14336-float row is 56 KB).
constexpr int kMatVecStages = 4;
constexpr int kMatVecAsyncBlocksPerSm = 5;

// silu(g) * u (SwiGLU), one formula for SiluMulKernel and the fused gate/up matvec (same bits).
__device__ __forceinline__ float SiluMulValue(float g, float u) {
  return g / (1.0f + expf(-g)) * u;
}

// Adds the products of weight unit u (values v) with the n inputs to acc.
template <WType T, int N>
__device__ __forceinline__ void MatVecAccumulate(const float* __restrict__ x, int64_t cols, int n,
                                                 int64_t u, const float* v, float* acc) {
  constexpr int U = kUnit<T>;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    if (i < n) {
      const float4* xp = reinterpret_cast<const float4*>(x + i * cols + u * U);
      float s = 0.0f;
#pragma unroll
      for (int e = 0; e < U / 4; ++e) {
        const float4 xv = xp[e];
        s += v[4 * e] * xv.x + v[4 * e + 1] * xv.y + v[4 * e + 2] * xv.z + v[4 * e + 3] * xv.w;
      }
      acc[i] += s;
    }
  }
}

// The lane's share of a weight row's dot products with the n inputs over units [u_begin, u_end):
// lane l adds units u_begin + l, + 32, + 64, ... in that order. Every matvec kernel sums the same
// products in this order (MatVecAsyncKernel reads the units through shared memory), so they agree
// bit for bit.
template <WType T, int N>
__device__ __forceinline__ void MatVecLaneDot(const uint8_t* __restrict__ row, int64_t u_begin,
                                              int64_t u_end, int64_t cols,
                                              const float* __restrict__ x, int n, float* acc) {
  constexpr int U = kUnit<T>;
  const int lane = threadIdx.x % 32;
  if constexpr (T == WType::kF16 || T == WType::kBF16) {
    // 16-bit weights stay packed (4 registers a unit) until used: R units in flight cost 4R
    // registers, not 8R.
    constexpr int R = kMatVecInFlight;
    const uint4* row16 = reinterpret_cast<const uint4*>(row);
    for (int64_t u0 = u_begin + lane; u0 < u_end; u0 += 32 * R) {
      uint4 raw[R];
#pragma unroll
      for (int j = 0; j < R; ++j) {
        if (u0 + 32 * j < u_end) raw[j] = __ldg(row16 + u0 + 32 * j);
      }
#pragma unroll
      for (int j = 0; j < R; ++j) {
        const int64_t u = u0 + 32 * j;
        if (u >= u_end) break;
        float v[8];
        Unpack16<T>(raw[j], v);
        MatVecAccumulate<T, N>(x, cols, n, u, v, acc);
      }
    }
  } else {
    // F32: 4 units (32 bytes each) in flight; quantized: one block at a time.
    constexpr int R = U == 8 ? 4 : 1;
    for (int64_t u0 = u_begin + lane; u0 < u_end; u0 += 32 * R) {
      float v[R][U];
#pragma unroll
      for (int j = 0; j < R; ++j) {
        if (u0 + 32 * j < u_end) LoadUnit<T>(row, u0 + 32 * j, v[j]);
      }
#pragma unroll
      for (int j = 0; j < R; ++j) {
        const int64_t u = u0 + 32 * j;
        if (u >= u_end) break;
        MatVecAccumulate<T, N>(x, cols, n, u, v[j], acc);
      }
    }
  }
}

// Sums each lane's acc over its warp, then over the W warps that share a row (W = 1, 2 or 4, in
// warp order, through shared memory), and writes the rows of the block's warps: y[i * rows + r] =
// sum (+ bias[r]), or with kSwiGlu (acc: the gate row's sums, acc_up: the up row's)
// y[i * rows + r] = silu(gate sum) * up sum, the bits of the two matvecs then SiluMul. Every
// thread of the block calls it (it synchronises the block when W > 1).
template <int N, int W, bool kSwiGlu>
__device__ __forceinline__ void MatVecFinish(float* acc, float* acc_up, int64_t r, int64_t rows,
                                             int n, const float* __restrict__ bias,
                                             float* __restrict__ y) {
  __shared__ float s_part[kSwiGlu ? 2 : 1][kMatVecWarps][N];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    acc[i] = WarpSum(acc[i]);
    if constexpr (kSwiGlu) acc_up[i] = WarpSum(acc_up[i]);
  }
  if constexpr (W > 1) {
    __syncthreads();  // the previous row group's sums have been read
    if (lane == 0) {
#pragma unroll
      for (int i = 0; i < N; ++i) {
        s_part[0][warp][i] = acc[i];
        if constexpr (kSwiGlu) s_part[kSwiGlu ? 1 : 0][warp][i] = acc_up[i];
      }
    }
    __syncthreads();
    if (warp % W == 0) {
#pragma unroll
      for (int i = 0; i < N; ++i) {
        float total = s_part[0][warp][i];
#pragma unroll
        for (int p = 1; p < W; ++p) total += s_part[0][warp + p][i];
        acc[i] = total;
        if constexpr (kSwiGlu) {
          float up = s_part[kSwiGlu ? 1 : 0][warp][i];
#pragma unroll
          for (int p = 1; p < W; ++p) up += s_part[kSwiGlu ? 1 : 0][warp + p][i];
          acc_up[i] = up;
        }
      }
    }
  }
  if (r >= rows || warp % W != 0 || lane != 0) return;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    if (i < n) {
      if constexpr (kSwiGlu) {
        // "+ 0.0f": the unfused matvecs add their absent bias as 0 (which turns -0 into +0).
        y[i * rows + r] = SiluMulValue(acc[i] + 0.0f, acc_up[i] + 0.0f);
      } else {
        y[i * rows + r] = acc[i] + (bias != nullptr ? bias[r] : 0.0f);
      }
    }
  }
}

// Block `block` of a single-matrix matvec: its 4 warps cover 4 / W rows, W warps per row, each
// over its contiguous part of the row's units. Small matrices (the k and v projections) get W > 1
// so that enough warps stream their bytes.
template <WType T, int N, int W>
__device__ __forceinline__ void MatVecBlock(int64_t block, const uint8_t* __restrict__ w,
                                            int64_t row_bytes, int64_t rows, int64_t cols,
                                            const float* __restrict__ x, int n,
                                            const float* __restrict__ bias,
                                            float* __restrict__ y) {
  const int warp = threadIdx.x / 32;
  const int64_t r = block * (kMatVecWarps / W) + warp / W;
  const int part = warp % W;
  float acc[N];
#pragma unroll
  for (int i = 0; i < N; ++i) acc[i] = 0.0f;
  if (r < rows) {
    const int64_t units = cols / kUnit<T>;
    MatVecLaneDot<T, N>(w + r * row_bytes, part * units / W, (part + 1) * units / W, cols, x, n,
                        acc);
  }
  MatVecFinish<N, W, false>(acc, nullptr, r, rows, n, bias, y);
}

// Asks L2 for the bytes of a warp's part `part` (of W) of weight row r: the weights do not depend
// on earlier kernels, so this runs before PdlWait, while the kernel before finishes.
template <int W>
__device__ __forceinline__ void MatVecPrefetch(const uint8_t* w, int64_t row_bytes, int64_t r,
                                               int64_t rows, int part) {
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const uint8_t* begin = w + r * row_bytes + part * row_bytes / W;
  const int64_t bytes = row_bytes / W;
  for (int64_t off = int64_t{lane} * 128; off < bytes; off += 32 * 128) {
    asm volatile("prefetch.global.L2 [%0];" ::"l"(begin + off));
  }
}

// Both kernels run over `total` blocks' worth of rows with any grid size (grid-stride): a grid
// of as many blocks as stay resident streams every row without the launch and tail costs of one
// short-lived block per few rows.
template <WType T, int N, int W>
__global__ void __launch_bounds__(kMatVecWarps * 32)
    MatVecKernel(const uint8_t* __restrict__ w, int64_t row_bytes, int64_t rows, int64_t cols,
                 const float* __restrict__ x, int n, const float* __restrict__ bias,
                 float* __restrict__ y, int64_t total) {
  if (blockIdx.x < total) {
    const int warp = threadIdx.x / 32;
    MatVecPrefetch<W>(w, row_bytes, int64_t{blockIdx.x} * (kMatVecWarps / W) + warp / W, rows,
                      warp % W);
  }
  PdlWait();
  PdlTrigger();
  for (int64_t b = blockIdx.x; b < total; b += gridDim.x) {
    MatVecBlock<T, N, W>(b, w, row_bytes, rows, cols, x, n, bias, y);
  }
}

// What one warp of block b of a multi-part launch computes: its part `seg` (of W) of row r of
// matrix p. Blocks [0, parts[0].blocks) serve matrix 0, the next parts[1].blocks matrix 1, and so
// on, 4 / W rows a block. With kSwiGlu (two matrices of equal rows, gate and up) the blocks cover
// the gate's rows and each warp also computes the same part of the same up row.
struct MatVecTask {
  int p;
  int seg;
  int64_t r;
};

template <int W>
__device__ __forceinline__ MatVecTask MatVecTaskOf(const MatVecMultiArgs& a, int64_t b, int warp) {
  int p = 0;
  while (p + 1 < a.num_parts && b >= a.parts[p].blocks) {
    b -= a.parts[p].blocks;
    ++p;
  }
  return MatVecTask{p, warp % W, b * (kMatVecWarps / W) + warp / W};
}

// Several matrices over one input in one launch (see MatVecTaskOf).
template <WType T, int N, int W, bool kSwiGlu>
__global__ void __launch_bounds__(kMatVecWarps * 32)
    MatVecMultiKernel(const __grid_constant__ MatVecMultiArgs a, int64_t total) {  // a: in place
  const int warp = threadIdx.x / 32;
  if (blockIdx.x < total) {
    const MatVecTask t = MatVecTaskOf<W>(a, blockIdx.x, warp);
    MatVecPrefetch<W>(static_cast<const uint8_t*>(a.parts[t.p].w), a.parts[t.p].row_bytes, t.r,
                      a.parts[t.p].rows, t.seg);
  }
  PdlWait();
  PdlTrigger();
  const int64_t units = a.cols / kUnit<T>;
  for (int64_t b = blockIdx.x; b < total; b += gridDim.x) {
    const MatVecTask t = MatVecTaskOf<W>(a, b, warp);
    const MatVecPart& part = a.parts[t.p];
    const int64_t u_begin = t.seg * units / W, u_end = (t.seg + 1) * units / W;
    float acc[N], acc_up[N];
#pragma unroll
    for (int i = 0; i < N; ++i) acc[i] = acc_up[i] = 0.0f;
    if (t.r < part.rows) {
      MatVecLaneDot<T, N>(static_cast<const uint8_t*>(part.w) + t.r * part.row_bytes, u_begin,
                          u_end, a.cols, a.x, a.n, acc);
      if constexpr (kSwiGlu) {
        MatVecLaneDot<T, N>(static_cast<const uint8_t*>(a.parts[1].w) + t.r * a.parts[1].row_bytes,
                            u_begin, u_end, a.cols, a.x, a.n, acc_up);
      }
    }
    MatVecFinish<N, W, kSwiGlu>(acc, acc_up, t.r, part.rows, a.n, nullptr, part.y);
  }
}

// MatVecMultiKernel for 16-bit weights with the weight bytes in flight held in shared memory
// instead of registers (cp.async): each warp keeps kMatVecStages - 1 groups of kMatVecInFlight
// units per lane on their way while it sums the oldest, across the rows of its grid-stride loop,
// so a resident grid has several times the bytes in flight of MatVecMultiKernel (its registers
// cap it at 4 units a lane). Each lane copies and then reads back only its own units, in
// MatVecLaneDot's order: the results are MatVecMultiKernel's, bit for bit.
template <WType T, int N, int W, bool kSwiGlu>
__global__ void __launch_bounds__(kMatVecWarps * 32)
    MatVecAsyncKernel(const __grid_constant__ MatVecMultiArgs a, int64_t total) {
  static_assert(T == WType::kF16 || T == WType::kBF16, "16-bit weights only");
  constexpr int R = kMatVecInFlight, S = kMatVecStages;
  constexpr int64_t kPerStage = 32 * R;  // units a warp copies per stage
  constexpr int kMats = kSwiGlu ? 2 : 1;  // rows a warp reads per task: gate then up
  __shared__ uint4 ring[kMatVecWarps][S][kPerStage];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t units = a.cols / 8;
  const int seg = warp % W;  // the same part of every row the warp reads
  const int64_t u_begin = seg * units / W, u_end = (seg + 1) * units / W;
  const int64_t row_stages = (u_end - u_begin + kPerStage - 1) / kPerStage;
  const int64_t per_row = row_stages > 0 ? row_stages : 1;
  const int64_t per_task = kMats * per_row;
  const int64_t iters =
      blockIdx.x < total ? (total - blockIdx.x + gridDim.x - 1) / gridDim.x : 0;
  const int64_t stages = iters * per_task;
  // Stage q: task q / per_task of the warp (its grid-stride iteration), in it matrix
  // (q % per_task) / per_row (with kSwiGlu: 0 gate, 1 up) and that row's (q % per_row)-th
  // kPerStage units, into slot q % S; one commit group per stage (empty past the end, so the
  // count of groups to wait for stays the same).
  auto issue = [&](int64_t q) {
    if (q < stages) {
      const MatVecTask t = MatVecTaskOf<W>(a, blockIdx.x + (q / per_task) * gridDim.x, warp);
      const MatVecPart& part = a.parts[kSwiGlu ? (q % per_task) / per_row : t.p];
      if (t.r < part.rows) {
        const uint4* row16 = reinterpret_cast<const uint4*>(static_cast<const uint8_t*>(part.w) +
                                                            t.r * part.row_bytes);
        const int64_t u0 = u_begin + (q % per_row) * kPerStage + lane;
#pragma unroll
        for (int j = 0; j < R; ++j) {
          if (u0 + 32 * j < u_end) {
            __pipeline_memcpy_async(&ring[warp][q % S][lane + 32 * j], row16 + u0 + 32 * j,
                                    sizeof(uint4));
          }
        }
      }
    }
    __pipeline_commit();
  };
  // The weights do not depend on earlier kernels: the first stages start before PdlWait.
  for (int64_t q = 0; q < S - 1; ++q) issue(q);
  PdlWait();
  PdlTrigger();
  int64_t q = 0;
  for (int64_t k = 0; k < iters; ++k) {
    const MatVecTask t = MatVecTaskOf<W>(a, blockIdx.x + k * gridDim.x, warp);
    const MatVecPart& part = a.parts[t.p];
    float acc[kMats][N];
#pragma unroll
    for (int m = 0; m < kMats; ++m) {
#pragma unroll
      for (int i = 0; i < N; ++i) acc[m][i] = 0.0f;
    }
#pragma unroll
    for (int m = 0; m < kMats; ++m) {
      for (int64_t s = 0; s < per_row; ++s, ++q) {
        issue(q + S - 1);  // into the slot the lane finished reading one stage ago
        __pipeline_wait_prior(S - 1);  // stage q has landed (this lane's copies)
        __syncwarp();  // also a compiler barrier: the reads below stay after the wait
        if (t.r < part.rows) {
          const int64_t u0 = u_begin + s * kPerStage + lane;
#pragma unroll
          for (int j = 0; j < R; ++j) {
            const int64_t u = u0 + 32 * j;
            if (u >= u_end) break;
            float v[8];
            Unpack16<T>(ring[warp][q % S][lane + 32 * j], v);
            MatVecAccumulate<T, N>(a.x, a.cols, a.n, u, v, acc[m]);
          }
        }
      }
    }
    MatVecFinish<N, W, kSwiGlu>(acc[0], acc[kMats - 1], t.r, part.rows, a.n, nullptr, part.y);
  }
  __pipeline_wait_prior(0);
}

// The grid for `total` blocks of `kernel`: all of them, or (persistent) at most as many as the
// device holds resident at once (occupancy per multiprocessor times multiprocessors, looked up
// once per kernel and device). `smem_blocks` > 0 (kernels with large static shared memory): first
// asks for a shared-memory carveout that holds that many blocks per multiprocessor, leaving the
// rest to L1, where the matvecs read their activations from.
int64_t MatVecGrid(const void* kernel, int64_t total, bool persistent, int smem_blocks = 0) {
  static std::mutex mu;
  static std::map<std::pair<const void*, int>, int64_t>* resident =
      new std::map<std::pair<const void*, int>, int64_t>();
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return total;
  std::lock_guard<std::mutex> lock(mu);
  auto it = resident->find({kernel, device});
  if (it == resident->end()) {
    if (smem_blocks > 0) {
      cudaFuncAttributes attr;
      int per_sm_smem = 0;
      if (cudaFuncGetAttributes(&attr, kernel) == cudaSuccess &&
          cudaDeviceGetAttribute(&per_sm_smem, cudaDevAttrMaxSharedMemoryPerMultiprocessor,
                                 device) == cudaSuccess &&
          per_sm_smem > 0) {
        // + 1 KB: the shared memory the system reserves per block.
        const int64_t want = int64_t{smem_blocks} * (attr.sharedSizeBytes + 1024);
        const int percent =
            static_cast<int>(std::min<int64_t>(100, (100 * want + per_sm_smem - 1) / per_sm_smem));
        cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, percent);
      }
      cudaGetLastError();  // a refused hint is not an error of the launch that follows
    }
    int per_sm = 0, sms = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kMatVecWarps * 32, 0) !=
            cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
        per_sm <= 0 || sms <= 0) {
      // Remembered as "no cap" (one block per row group); the failed query's error is cleared
      // (not sticky), or the launch after it would report it.
      cudaGetLastError();
      it = resident->emplace(std::make_pair(kernel, device), int64_t{0}).first;
    } else {
      it = resident->emplace(std::make_pair(kernel, device), int64_t{per_sm} * sms).first;
    }
  }
  if (!persistent) return total;
  return it->second > 0 ? std::min(total, it->second) : total;
}

template <WType T, int N, int W>
void LaunchMatVecW(int64_t rows, const uint8_t* wp, int64_t row_bytes, int64_t cols,
                    const float* x, int n, const float* bias, float* y, bool persistent,
                    cudaStream_t stream) {
  const int rows_per_block = kMatVecWarps / W;
  const int64_t total = (rows + rows_per_block - 1) / rows_per_block;
  const auto kernel = &MatVecKernel<T, N, W>;
  const auto grid = static_cast<unsigned>(
      MatVecGrid(reinterpret_cast<const void*>(kernel), total, persistent));
  LaunchPdl(kernel, grid, kMatVecWarps * 32, 0, stream, wp, row_bytes, rows, cols, x, n, bias, y,
            total);
}

template <WType T, int N>
void LaunchMatVecN(int wpr, int64_t rows, const uint8_t* wp, int64_t row_bytes, int64_t cols,
                   const float* x, int n, const float* bias, float* y, bool persistent,
                   cudaStream_t stream) {
  if (wpr == 1) {
    LaunchMatVecW<T, N, 1>(rows, wp, row_bytes, cols, x, n, bias, y, persistent, stream);
  } else if (wpr == 2) {
    LaunchMatVecW<T, N, 2>(rows, wp, row_bytes, cols, x, n, bias, y, persistent, stream);
  } else {
    LaunchMatVecW<T, N, 4>(rows, wp, row_bytes, cols, x, n, bias, y, persistent, stream);
  }
}

template <WType T, int N, int W, bool kSwiGlu>
void LaunchMatVecMultiK(const MatVecMultiArgs& a, int64_t total, cudaStream_t stream) {
  if constexpr ((T == WType::kF16 || T == WType::kBF16) && N <= 2) {
    if (a.async != 0) {
      const auto kernel = &MatVecAsyncKernel<T, N, W, kSwiGlu>;
      const auto grid = static_cast<unsigned>(MatVecGrid(reinterpret_cast<const void*>(kernel),
                                                         total, a.persistent != 0,
                                                         kMatVecAsyncBlocksPerSm));
      LaunchPdl(kernel, grid, kMatVecWarps * 32, 0, stream, a, total);
      return;
    }
  }
  const auto kernel = &MatVecMultiKernel<T, N, W, kSwiGlu>;
  const auto grid = static_cast<unsigned>(
      MatVecGrid(reinterpret_cast<const void*>(kernel), total, a.persistent != 0));
  LaunchPdl(kernel, grid, kMatVecWarps * 32, 0, stream, a, total);
}

template <WType T, int N, int W>
void LaunchMatVecMultiW(const MatVecMultiArgs& a, cudaStream_t stream) {
  int64_t total = 0;
  for (int p = 0; p < a.num_parts; ++p) total += a.parts[p].blocks;
  if (a.swiglu != 0) {
    total = a.parts[0].blocks;  // the up rows ride along with the gate rows
    LaunchMatVecMultiK<T, N, W, true>(a, total, stream);
  } else {
    LaunchMatVecMultiK<T, N, W, false>(a, total, stream);
  }
}

template <WType T, int N>
void LaunchMatVecMultiN(const MatVecMultiArgs& a, cudaStream_t stream) {
  if (a.warps_per_row == 1) {
    LaunchMatVecMultiW<T, N, 1>(a, stream);
  } else if (a.warps_per_row == 2) {
    LaunchMatVecMultiW<T, N, 2>(a, stream);
  } else {
    LaunchMatVecMultiW<T, N, 4>(a, stream);
  }
}

template <WType T>
cudaError_t MatVecMultiTyped(const MatVecMultiArgs& a, cudaStream_t stream) {
  int64_t rows = 0;
  for (int p = 0; p < a.num_parts; ++p) rows += a.parts[p].rows;
  if (rows == 0) return cudaSuccess;
  if (a.n == 1) {
    LaunchMatVecMultiN<T, 1>(a, stream);
  } else if (a.n == 2) {
    LaunchMatVecMultiN<T, 2>(a, stream);
  } else if (a.n <= 4) {
    LaunchMatVecMultiN<T, 4>(a, stream);
  } else {
    LaunchMatVecMultiN<T, 8>(a, stream);
  }
  return cudaGetLastError();
}

template <WType T>
cudaError_t MatVecTyped(const void* w, int64_t row_bytes, int64_t rows, int64_t cols,
                        const float* x, int64_t n, const float* bias, float* y, int wpr,
                        bool persistent, cudaStream_t stream) {
  const auto* wp = static_cast<const uint8_t*>(w);
  for (int64_t i0 = 0; i0 < n; i0 += 8) {
    const int nn = static_cast<int>(std::min<int64_t>(8, n - i0));
    const float* xi = x + i0 * cols;
    float* yi = y + i0 * rows;
    if (nn == 1) {
      LaunchMatVecN<T, 1>(wpr, rows, wp, row_bytes, cols, xi, nn, bias, yi, persistent, stream);
    } else if (nn == 2) {
      LaunchMatVecN<T, 2>(wpr, rows, wp, row_bytes, cols, xi, nn, bias, yi, persistent, stream);
    } else if (nn <= 4) {
      LaunchMatVecN<T, 4>(wpr, rows, wp, row_bytes, cols, xi, nn, bias, yi, persistent, stream);
    } else {
      LaunchMatVecN<T, 8>(wpr, rows, wp, row_bytes, cols, xi, nn, bias, yi, persistent, stream);
    }
    if (cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
  }
  return cudaSuccess;
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

// Sum over the block (blockDim.x a multiple of 32, at most 1024) of a float, double or int: warp
// sums by butterfly shuffles, then the warps' sums in warp order; every thread gets the result.
template <typename T>
__device__ T BlockSum(T v) {
  __shared__ T partial[32];
  __syncthreads();  // partial may still be read by a previous call
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  T s = 0;
  const int warps = blockDim.x / 32;
  for (int i = 0; i < warps; ++i) s += partial[i];
  return s;
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

// ---- attention: one block per (token, query head), warps split the keys, online softmax ----

constexpr int kAttnWarps = 4;
constexpr int kMaxHeadDim = 256;

// Keys and values of the paged F16 cache.
struct PagedKv {
  const uint16_t* kc;
  const uint16_t* vc;
  const int32_t* table;
  int block_size;
  int64_t kv_dim;
  int64_t head_off;
  __device__ int64_t Base(int p) const {
    return (static_cast<int64_t>(table[p / block_size]) * block_size + p % block_size) * kv_dim +
           head_off;
  }
  __device__ float K(int64_t base, int d) const { return H2F(kc[base + d]); }
  __device__ float V(int64_t base, int d) const { return H2F(vc[base + d]); }
};

// Keys and values of dense F32 [tokens, width] buffers.
struct DenseKv {
  const float* k;
  const float* v;
  int64_t width;
  int64_t head_off;
  __device__ int64_t Base(int j) const { return static_cast<int64_t>(j) * width + head_off; }
  __device__ float K(int64_t base, int d) const { return k[base + d]; }
  __device__ float V(int64_t base, int d) const { return v[base + d]; }
};

// Attends q (head_dim floats) over keys [begin, end) of kv; writes out (head_dim floats).
template <int HPL, typename Kv>
__device__ void AttendBlock(const Kv& kv, const float* q, int begin, int end, int head_dim,
                            float scale, float* out) {
  __shared__ float s_max[kAttnWarps], s_sum[kAttnWarps];
  __shared__ float s_acc[kAttnWarps][kMaxHeadDim];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float qv[HPL], acc[HPL];
#pragma unroll
  for (int i = 0; i < HPL; ++i) {
    const int d = lane + 32 * i;
    qv[i] = d < head_dim ? q[d] : 0.0f;
    acc[i] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int p = begin + warp; p < end; p += kAttnWarps) {
    const int64_t base = kv.Base(p);
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < HPL; ++i) {
      const int d = lane + 32 * i;
      if (d < head_dim) s += qv[i] * kv.K(base, d);
    }
    s = WarpSum(s) * scale;
    const float mn = fmaxf(m, s);
    const float corr = expf(m - mn);
    const float e = expf(s - mn);
    l = l * corr + e;
#pragma unroll
    for (int i = 0; i < HPL; ++i) {
      const int d = lane + 32 * i;
      if (d < head_dim) acc[i] = acc[i] * corr + e * kv.V(base, d);
    }
    m = mn;
  }
  if (lane == 0) {
    s_max[warp] = m;
    s_sum[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < HPL; ++i) {
    const int d = lane + 32 * i;
    if (d < head_dim) s_acc[warp][d] = acc[i];
  }
  __syncthreads();
  float mx = -INFINITY;
  for (int w = 0; w < kAttnWarps; ++w) mx = fmaxf(mx, s_max[w]);
  float total = 0.0f;
  for (int w = 0; w < kAttnWarps; ++w) {
    if (s_sum[w] > 0.0f) total += s_sum[w] * expf(s_max[w] - mx);
  }
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float o = 0.0f;
    for (int w = 0; w < kAttnWarps; ++w) {
      if (s_sum[w] > 0.0f) o += s_acc[w][d] * expf(s_max[w] - mx);
    }
    out[d] = o / total;
  }
}

template <int HPL>
__global__ void __launch_bounds__(kAttnWarps * 32) PagedAttentionKernel(PagedAttentionArgs a) {
  const int64_t t = blockIdx.x;
  const int h = blockIdx.y;
  const int pos = a.token_pos[t];
  const int start = a.sliding_window > 0 ? max(0, pos - a.sliding_window + 1) : 0;
  const int group = a.num_heads / a.num_kv_heads;
  const int64_t width = static_cast<int64_t>(a.num_heads) * a.head_dim;
  PagedKv kv{a.kc,
             a.vc,
             a.tables + a.table_start[a.token_seq[t]],
             a.block_size,
             static_cast<int64_t>(a.num_kv_heads) * a.head_dim,
             static_cast<int64_t>(h / group) * a.head_dim};
  const int64_t off = t * width + static_cast<int64_t>(h) * a.head_dim;
  AttendBlock<HPL>(kv, a.q + off, start, pos + 1, a.head_dim, a.scale, a.out + off);
}

// ---- grouped decode attention: one block per (token, kv head) ----

constexpr int kDecodeWarps = 8;
constexpr int kDecodeUnroll = 4;         // keys per lane loaded before any arithmetic
constexpr int kDecodeMaxGroupDims = 1024;  // group * head_dim (shared memory for the merge)

__device__ __forceinline__ void Halves8(const uint4 raw, float* f) {
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    f[2 * j] = H2F(static_cast<uint16_t>(w[j] & 0xFFFF));
    f[2 * j + 1] = H2F(static_cast<uint16_t>(w[j] >> 16));
  }
}

// Merges online-softmax state (m2, l2, acc2) into (m, l, acc).
template <int N>
__device__ __forceinline__ void MergeSoftmax(float& m, float& l, float* acc, float m2, float l2,
                                             const float* acc2) {
  const float mn = fmaxf(m, m2);
  if (mn == -INFINITY) return;  // both empty
  const float c1 = expf(m - mn), c2 = expf(m2 - mn);
  l = l * c1 + l2 * c2;
#pragma unroll
  for (int j = 0; j < N; ++j) acc[j] = acc[j] * c1 + acc2[j] * c2;
  m = mn;
}

// Element d of the merged output of one (token, query head) from its `splits` split states at
// `part` ([split][head_dim + 2]: max, sum, then the unnormalised head_dim values), read through L2
// (__ldcg: another block may have written them in this kernel).
__device__ __forceinline__ float MergeSplitsAt(const float* part, int splits, int head_dim, int d) {
  float mx = -INFINITY;
  for (int z = 0; z < splits; ++z) mx = fmaxf(mx, __ldcg(part + z * (head_dim + 2)));
  float total = 0.0f, o = 0.0f;
  for (int z = 0; z < splits; ++z) {
    const float* pz = part + z * (head_dim + 2);
    const float l = __ldcg(pz + 1);
    if (l > 0.0f) {
      const float c = expf(__ldcg(pz) - mx);
      total += l * c;
      o += __ldcg(pz + 2 + d) * c;
    }
  }
  return o / total;
}

// L lanes read one key row (8 halves each: head_dim = 8 * L), so a warp reads 32 / L keys at a
// time; each lane keeps the softmax state of the G query heads for its 8 dimensions over the
// keys it read; lanes, then warps, merge their states at the end.
template <int L, int G>
__global__ void __launch_bounds__(kDecodeWarps * 32) GroupedDecodeKernel(PagedAttentionArgs a) {
  PdlWait();
  PdlTrigger();
  constexpr int KPW = 32 / L;
  constexpr int HD = 8 * L;
  __shared__ float s_m[kDecodeWarps][G], s_l[kDecodeWarps][G];
  __shared__ float s_acc[kDecodeWarps][G * HD];
  const int64_t t = blockIdx.x;
  const int kvh = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int sub = lane % L, kslot = lane / L;
  const int pos = a.token_pos[t];
  const int first = a.sliding_window > 0 ? max(0, pos - a.sliding_window + 1) : 0;
  // Split z of a.splits takes its share of the token's keys [first, pos].
  const int per_split = (pos + 1 - first + a.splits - 1) / a.splits;
  const int begin = first + static_cast<int>(blockIdx.z) * per_split;
  const int end = min(pos + 1, begin + per_split);
  const int32_t* table = a.tables + a.table_start[a.token_seq[t]];
  const int64_t kv_dim = static_cast<int64_t>(a.num_kv_heads) * HD;
  const int64_t head_off = static_cast<int64_t>(kvh) * HD + sub * 8;
  const int64_t width = static_cast<int64_t>(a.num_heads) * HD;
  float q[G][8], m[G], l[G], acc[G][8];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const float4* qp =
        reinterpret_cast<const float4*>(a.q + t * width + static_cast<int64_t>(kvh * G + g) * HD + sub * 8);
    const float4 x0 = qp[0], x1 = qp[1];
    q[g][0] = x0.x; q[g][1] = x0.y; q[g][2] = x0.z; q[g][3] = x0.w;
    q[g][4] = x1.x; q[g][5] = x1.y; q[g][6] = x1.z; q[g][7] = x1.w;
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[g][j] = 0.0f;
  }
  constexpr int kStride = kDecodeWarps * KPW;  // keys the block reads at once
  // The loop bound is uniform across the warp (every lane runs every shuffle).
  for (int base = begin + warp * KPW; base < end; base += kStride * kDecodeUnroll) {
    uint4 kr[kDecodeUnroll], vr[kDecodeUnroll];
    bool valid[kDecodeUnroll];
#pragma unroll
    for (int u = 0; u < kDecodeUnroll; ++u) {
      const int p = base + kslot + u * kStride;
      valid[u] = p < end;
      if (valid[u]) {
        const int64_t slot = static_cast<int64_t>(table[p / a.block_size]) * a.block_size + p % a.block_size;
        const int64_t off = slot * kv_dim + head_off;
        kr[u] = __ldg(reinterpret_cast<const uint4*>(a.kc + off));
        vr[u] = __ldg(reinterpret_cast<const uint4*>(a.vc + off));
      } else {
        kr[u] = make_uint4(0, 0, 0, 0);
        vr[u] = make_uint4(0, 0, 0, 0);
      }
    }
#pragma unroll
    for (int u = 0; u < kDecodeUnroll; ++u) {
      float k8[8], v8[8], s[G];
      Halves8(kr[u], k8);
#pragma unroll
      for (int g = 0; g < G; ++g) {
        s[g] = 0.0f;
#pragma unroll
        for (int j = 0; j < 8; ++j) s[g] += q[g][j] * k8[j];
      }
#pragma unroll
      for (int o = L / 2; o > 0; o >>= 1) {
#pragma unroll
        for (int g = 0; g < G; ++g) s[g] += __shfl_xor_sync(0xffffffffu, s[g], o);
      }
      if (!valid[u]) continue;
      Halves8(vr[u], v8);
#pragma unroll
      for (int g = 0; g < G; ++g) {
        const float sc = s[g] * a.scale;
        const float mn = fmaxf(m[g], sc);
        const float corr = expf(m[g] - mn);
        const float e = expf(sc - mn);
        l[g] = l[g] * corr + e;
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[g][j] = acc[g][j] * corr + e * v8[j];
        m[g] = mn;
      }
    }
  }
  // Merge the key slots of the warp (lanes with the same `sub`).
#pragma unroll
  for (int o = L; o < 32; o <<= 1) {
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const float m2 = __shfl_xor_sync(0xffffffffu, m[g], o);
      const float l2 = __shfl_xor_sync(0xffffffffu, l[g], o);
      float a2[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) a2[j] = __shfl_xor_sync(0xffffffffu, acc[g][j], o);
      MergeSoftmax<8>(m[g], l[g], acc[g], m2, l2, a2);
    }
  }
  if (kslot == 0) {
#pragma unroll
    for (int g = 0; g < G; ++g) {
#pragma unroll
      for (int j = 0; j < 8; ++j) s_acc[warp][g * HD + sub * 8 + j] = acc[g][j];
      if (sub == 0) {
        s_m[warp][g] = m[g];
        s_l[warp][g] = l[g];
      }
    }
  }
  __syncthreads();
  // Merge the warps: thread i writes output elements i, i + blockDim.x, ... of the G heads
  // (with splits: the split's unnormalised state, for SplitMergeKernel).
  for (int idx = threadIdx.x; idx < G * HD; idx += blockDim.x) {
    const int g = idx / HD, d = idx % HD;
    float mx = -INFINITY;
    for (int w = 0; w < kDecodeWarps; ++w) mx = fmaxf(mx, s_m[w][g]);
    float total = 0.0f, o = 0.0f;
    for (int w = 0; w < kDecodeWarps; ++w) {
      if (s_l[w][g] > 0.0f) {
        const float c = expf(s_m[w][g] - mx);
        total += s_l[w][g] * c;
        o += s_acc[w][idx] * c;
      }
    }
    const int h = kvh * G + g;
    if (a.splits == 1) {
      a.out[t * width + static_cast<int64_t>(h) * HD + d] = o / total;
    } else {
      float* part = a.partial + ((t * a.num_heads + h) * a.splits + blockIdx.z) * (HD + 2);
      part[2 + d] = o;
      if (d == 0) {
        part[0] = mx;
        part[1] = total;
      }
    }
  }
  if (a.splits == 1 || a.merge_in_kernel == 0) return;
  // The last of the token's splits to finish merges them (SplitMergeKernel's arithmetic), one
  // launch fewer: every block publishes its state, then counts itself in. (A launch that dies
  // part way leaves counters set; the backend treats any device error as fatal.)
  __shared__ int s_last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned int* done = a.split_done + t * a.num_kv_heads + kvh;
    s_last = atomicAdd(done, 1u) == static_cast<unsigned int>(a.splits - 1);
    if (s_last) atomicExch(done, 0u);  // ready for the next launch (the stream runs them in order)
  }
  __syncthreads();
  if (!s_last) return;
  __threadfence();
  for (int idx = threadIdx.x; idx < G * HD; idx += blockDim.x) {
    const int g = idx / HD, d = idx % HD;
    const int64_t th = t * a.num_heads + kvh * G + g;
    a.out[th * HD + d] = MergeSplitsAt(a.partial + th * a.splits * (HD + 2), a.splits, HD, d);
  }
}

// Merges the splits of the grouped decode kernel: one block per (token, query head), one thread
// per dimension.
__global__ void SplitMergeKernel(const float* partial, int splits, int head_dim, int num_heads,
                                 float* out) {
  PdlWait();
  PdlTrigger();
  const int64_t t = blockIdx.x;
  const int h = blockIdx.y;
  const float* part = partial + (t * num_heads + h) * splits * (head_dim + 2);
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    out[(t * num_heads + h) * static_cast<int64_t>(head_dim) + d] =
        MergeSplitsAt(part, splits, head_dim, d);
  }
}

template <int L>
cudaError_t LaunchGroupedDecodeSplits(const PagedAttentionArgs& a, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(a.num_tokens), static_cast<unsigned>(a.num_kv_heads),
                  static_cast<unsigned>(a.splits));
  switch (a.num_heads / a.num_kv_heads) {
    case 1: LaunchPdl(&GroupedDecodeKernel<L, 1>, grid, kDecodeWarps * 32, 0, stream, a); break;
    case 2: LaunchPdl(&GroupedDecodeKernel<L, 2>, grid, kDecodeWarps * 32, 0, stream, a); break;
    case 4: LaunchPdl(&GroupedDecodeKernel<L, 4>, grid, kDecodeWarps * 32, 0, stream, a); break;
    case 8:
      if constexpr (8 * 8 * L <= kDecodeMaxGroupDims) {
        LaunchPdl(&GroupedDecodeKernel<L, 8>, grid, kDecodeWarps * 32, 0, stream, a);
        break;
      }
      return cudaErrorInvalidValue;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

template <int L>
cudaError_t LaunchGroupedDecode(const PagedAttentionArgs& a, cudaStream_t stream) {
  if (a.splits < 1 || a.splits > 65535 || (a.splits > 1 && a.partial == nullptr) ||
      (a.splits > 1 && a.merge_in_kernel != 0 && a.split_done == nullptr)) {
    return cudaErrorInvalidValue;
  }
  if (cudaError_t err = LaunchGroupedDecodeSplits<L>(a, stream); err != cudaSuccess) return err;
  if (a.splits == 1 || a.merge_in_kernel != 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>(a.num_tokens), static_cast<unsigned>(a.num_heads));
  LaunchPdl(&SplitMergeKernel, grid, 8 * L, 0, stream, a.partial, a.splits, 8 * L, a.num_heads,
            a.out);
  return cudaGetLastError();
}

constexpr int kTileK = 32;  // keys per shared-memory tile (one per lane)
constexpr int kQueriesPerWarp = kAttentionTileQueries / kAttnWarps;

size_t TiledSharedBytes(int head_dim) {
  return sizeof(float) * (static_cast<size_t>(kAttentionTileQueries) * head_dim +
                          static_cast<size_t>(kTileK) * (head_dim + 1) +
                          static_cast<size_t>(kTileK) * head_dim);
}

// The attention of one block's query tile: nq queries, query qi being head h0 + qi % hpb of token
// first + qi / hpb (q and out rows `width` floats apart), each attending to the keys whose
// positions are in its range(qi) = [start, pos]; the keys of [kmin, kmax] (the union) pass through
// shared memory 32 at a time, load_key(p, skr, svr) writing key p's head_dim keys and values (as
// floats) into skr and svr, each warp loading whole key rows. Warp w owns queries w, w + 4, ...;
// within a key tile lane j scores key j, the softmax is updated online once per tile, and each
// lane accumulates its own dimensions of the output.
template <int HPL, typename Range, typename LoadKey>
__device__ __forceinline__ void TiledAttend(float* smem, const float* q, float* out, int64_t width,
                                            int64_t first, int nq, int hpb, int h0, int hd,
                                            float scale, int kmin, int kmax, Range range,
                                            LoadKey load_key) {
  float* sq = smem;                                  // [kAttentionTileQueries][hd]
  float* sk = sq + kAttentionTileQueries * hd;       // [kTileK][hd + 1] (padded: no bank conflicts)
  float* sv = sk + kTileK * (hd + 1);                // [kTileK][hd]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int e = threadIdx.x; e < nq * hd; e += blockDim.x) {
    const int qi = e / hd, d = e % hd;
    const int64_t t = first + qi / hpb;
    const int h = h0 + qi % hpb;
    sq[qi * hd + d] = q[t * width + static_cast<int64_t>(h) * hd + d];
  }
  float m[kQueriesPerWarp], l[kQueriesPerWarp], acc[kQueriesPerWarp][HPL];
  int qpos[kQueriesPerWarp], qstart[kQueriesPerWarp];
#pragma unroll
  for (int r = 0; r < kQueriesPerWarp; ++r) {
    const int qi = warp + kAttnWarps * r;
    qpos[r] = -1;
    qstart[r] = 0;
    if (qi < nq) range(qi, &qstart[r], &qpos[r]);
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int i = 0; i < HPL; ++i) acc[r][i] = 0.0f;
  }
  for (int k0 = kmin; k0 <= kmax; k0 += kTileK) {
    __syncthreads();  // the previous tile (and, the first time, the queries) are ready / consumed
    for (int j = warp; j < kTileK; j += kAttnWarps) {
      const int p = k0 + j;
      float* skr = sk + j * (hd + 1);
      float* svr = sv + j * hd;
      if (p > kmax) {
        for (int d = lane; d < hd; d += 32) skr[d] = svr[d] = 0.0f;
        continue;
      }
      load_key(p, skr, svr);
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < kQueriesPerWarp; ++r) {
      const int qi = warp + kAttnWarps * r;
      // Warp-uniform: skip queries with no key in this tile.
      if (qi >= nq || k0 > qpos[r] || k0 + kTileK - 1 < qstart[r]) continue;
      const int p = k0 + lane;
      const bool valid = p >= qstart[r] && p <= qpos[r];
      float s = -INFINITY;
      if (valid) {
        float dot = 0.0f;
        const float* qv = sq + qi * hd;
        const float* kv = sk + lane * (hd + 1);
        for (int d = 0; d < hd; ++d) dot += qv[d] * kv[d];
        s = dot * scale;
      }
      float tile_max = s;
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, o));
      const float mn = fmaxf(m[r], tile_max);
      const float corr = expf(m[r] - mn);
      const float pj = valid ? expf(s - mn) : 0.0f;
      l[r] = l[r] * corr + WarpSum(pj);
#pragma unroll
      for (int i = 0; i < HPL; ++i) acc[r][i] *= corr;
      for (int j = 0; j < kTileK; ++j) {
        const float w = __shfl_sync(0xffffffffu, pj, j);
        if (w == 0.0f) continue;  // warp-uniform
#pragma unroll
        for (int i = 0; i < HPL; ++i) {
          const int d = lane + 32 * i;
          if (d < hd) acc[r][i] += w * sv[j * hd + d];
        }
      }
      m[r] = mn;
    }
  }
#pragma unroll
  for (int r = 0; r < kQueriesPerWarp; ++r) {
    const int qi = warp + kAttnWarps * r;
    if (qi >= nq) continue;
    const int64_t t = first + qi / hpb;
    const int h = h0 + qi % hpb;
    float* o = out + t * width + static_cast<int64_t>(h) * hd;
#pragma unroll
    for (int i = 0; i < HPL; ++i) {
      const int d = lane + 32 * i;
      if (d < hd) o[d] = acc[r][i] / l[r];
    }
  }
}

// One block per (query tile, head group) of paged attention: its queries are the (token, head)
// pairs of the tile's tokens and the group's heads, all reading the same sequence and kv head,
// whose F16 keys and values TiledAttend loads from the cache (16 bytes per lane).
template <int HPL>
__global__ void __launch_bounds__(kAttnWarps * 32) PagedAttentionTiledKernel(PagedAttentionArgs a) {
  extern __shared__ float smem[];
  const int hd = a.head_dim;
  const int first = a.tile_first[blockIdx.x];
  const int hpb = a.heads_per_block;
  const int nq = a.tile_count[blockIdx.x] * hpb;
  const int h0 = blockIdx.y * hpb;
  const int group = a.num_heads / a.num_kv_heads;
  const int64_t kd = static_cast<int64_t>(a.num_kv_heads) * hd;
  const int64_t head_off = static_cast<int64_t>(h0 / group) * hd;
  const int64_t width = static_cast<int64_t>(a.num_heads) * hd;
  const int32_t* table = a.tables + a.table_start[a.token_seq[first]];
  const int lane = threadIdx.x % 32;
  const bool vec = hd % 8 == 0;
  int kmin = 0x7fffffff, kmax = -1;
  for (int i = 0; i < a.tile_count[blockIdx.x]; ++i) {
    const int pos = a.token_pos[first + i];
    kmin = min(kmin, a.sliding_window > 0 ? max(0, pos - a.sliding_window + 1) : 0);
    kmax = max(kmax, pos);
  }
  auto range = [&](int qi, int* start, int* pos) {
    *pos = a.token_pos[first + qi / hpb];
    *start = a.sliding_window > 0 ? max(0, *pos - a.sliding_window + 1) : 0;
  };
  auto load_key = [&](int p, float* skr, float* svr) {
    const int64_t base =
        (static_cast<int64_t>(table[p / a.block_size]) * a.block_size + p % a.block_size) * kd +
        head_off;
    if (vec) {
      for (int c = lane; c < hd / 8; c += 32) {
        const uint4 kr = __ldg(reinterpret_cast<const uint4*>(a.kc + base) + c);
        const uint4 vr = __ldg(reinterpret_cast<const uint4*>(a.vc + base) + c);
        const uint32_t kw[4] = {kr.x, kr.y, kr.z, kr.w};
        const uint32_t vw[4] = {vr.x, vr.y, vr.z, vr.w};
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          skr[8 * c + 2 * e] = H2F(static_cast<uint16_t>(kw[e] & 0xFFFF));
          skr[8 * c + 2 * e + 1] = H2F(static_cast<uint16_t>(kw[e] >> 16));
          svr[8 * c + 2 * e] = H2F(static_cast<uint16_t>(vw[e] & 0xFFFF));
          svr[8 * c + 2 * e + 1] = H2F(static_cast<uint16_t>(vw[e] >> 16));
        }
      }
    } else {
      for (int d = lane; d < hd; d += 32) {
        skr[d] = H2F(a.kc[base + d]);
        svr[d] = H2F(a.vc[base + d]);
      }
    }
  };
  TiledAttend<HPL>(smem, a.q, a.out, width, first, nq, hpb, h0, hd, a.scale, kmin, kmax, range,
                   load_key);
}

// Dense (encoder) attention tiled the same way: one block per (16 consecutive tokens, head),
// whose queries attend to every token of their own sequence (tiles may straddle sequences: the
// keys of the union pass through shared memory, each query scoring only its own). Keys and values
// are the F32 k and v rows, 16 bytes per lane when head_dim % 4 == 0.
template <int HPL>
__global__ void __launch_bounds__(kAttnWarps * 32)
    DenseAttentionTiledKernel(const float* q, const float* k, const float* v,
                              const int32_t* seq_starts, const int32_t* seq_of, int64_t num_tokens,
                              int num_heads, int head_dim, float scale, float* out) {
  extern __shared__ float smem[];
  const int hd = head_dim;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kAttentionTileQueries;
  const int64_t left = num_tokens - first;
  const int nq = left < kAttentionTileQueries ? static_cast<int>(left) : kAttentionTileQueries;
  const int h = blockIdx.y;
  const int64_t width = static_cast<int64_t>(num_heads) * hd;
  const int64_t head_off = static_cast<int64_t>(h) * hd;
  const int lane = threadIdx.x % 32;
  // Token positions are token indices: query t sees [seq start, seq end - 1] of its sequence.
  auto range = [&](int qi, int* start, int* pos) {
    const int s = seq_of[first + qi];
    *start = seq_starts[s];
    *pos = seq_starts[s + 1] - 1;
  };
  int kmin, kmax, unused;
  range(0, &kmin, &unused);
  range(nq - 1, &unused, &kmax);
  auto load_key = [&](int p, float* skr, float* svr) {
    const float* kr = k + p * width + head_off;
    const float* vr = v + p * width + head_off;
    if (hd % 4 == 0) {
      for (int c = lane; c < hd / 4; c += 32) {
        const float4 k4 = __ldg(reinterpret_cast<const float4*>(kr) + c);
        const float4 v4 = __ldg(reinterpret_cast<const float4*>(vr) + c);
        skr[4 * c] = k4.x; skr[4 * c + 1] = k4.y; skr[4 * c + 2] = k4.z; skr[4 * c + 3] = k4.w;
        svr[4 * c] = v4.x; svr[4 * c + 1] = v4.y; svr[4 * c + 2] = v4.z; svr[4 * c + 3] = v4.w;
      }
    } else {
      for (int d = lane; d < hd; d += 32) {
        skr[d] = kr[d];
        svr[d] = vr[d];
      }
    }
  };
  TiledAttend<HPL>(smem, q, out, width, first, nq, 1, h, hd, scale, kmin, kmax, range, load_key);
}

// Raises a tiled kernel's dynamic shared memory limit to what head_dim 32 * HPL needs, once per
// kernel and device (not at every launch: the launch may be being captured into a graph).
template <int HPL>
cudaError_t EnsureTiledSharedMemory(const void* kernel) {
  static std::mutex mu;
  static std::set<std::pair<const void*, int>> done;
  int device = 0;
  if (cudaError_t err = cudaGetDevice(&device); err != cudaSuccess) return err;
  std::lock_guard<std::mutex> lock(mu);
  if (done.count({kernel, device}) != 0) return cudaSuccess;
  const cudaError_t err = cudaFuncSetAttribute(kernel,
                                               cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               static_cast<int>(TiledSharedBytes(32 * HPL)));
  if (err == cudaSuccess) done.insert({kernel, device});
  return err;
}

template <int HPL>
cudaError_t LaunchTiled(const PagedAttentionArgs& a, cudaStream_t stream) {
  const size_t bytes = TiledSharedBytes(a.head_dim);
  if (cudaError_t err = EnsureTiledSharedMemory<HPL>(
          reinterpret_cast<const void*>(&PagedAttentionTiledKernel<HPL>));
      err != cudaSuccess) {
    return err;
  }
  const dim3 grid(static_cast<unsigned>(a.num_tiles),
                  static_cast<unsigned>(a.num_heads / a.heads_per_block));
  PagedAttentionTiledKernel<HPL><<<grid, kAttnWarps * 32, bytes, stream>>>(a);
  return cudaGetLastError();
}

template <int HPL>
__global__ void __launch_bounds__(kAttnWarps * 32)
    DenseAttentionKernel(const float* q, const float* k, const float* v, const int32_t* seq_starts,
                         const int32_t* seq_of, int num_heads, int head_dim, float scale,
                         float* out) {
  const int64_t t = blockIdx.x;
  const int h = blockIdx.y;
  const int64_t width = static_cast<int64_t>(num_heads) * head_dim;
  const int s = seq_of[t];
  DenseKv kv{k, v, width, static_cast<int64_t>(h) * head_dim};
  const int64_t off = t * width + static_cast<int64_t>(h) * head_dim;
  AttendBlock<HPL>(kv, q + off, seq_starts[s], seq_starts[s + 1], head_dim, scale, out + off);
}

// ---- prefill attention through cuBLAS: gather, masked softmax ----

__global__ void GatherKvKernel(const uint16_t* kc, const uint16_t* vc, const int32_t* table,
                               int block_size, int64_t kv_dim, int k0, int64_t t_k, uint16_t* ko,
                               uint16_t* vo) {
  // 8 halves (16 bytes) per thread: kv_dim is a multiple of 8.
  const int64_t per_row = kv_dim / 8, total = t_k * per_row;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t j = e / per_row, c = e % per_row;
    const int p = k0 + static_cast<int>(j);
    const int64_t slot = static_cast<int64_t>(table[p / block_size]) * block_size + p % block_size;
    reinterpret_cast<uint4*>(ko)[e] = reinterpret_cast<const uint4*>(kc + slot * kv_dim)[c];
    reinterpret_cast<uint4*>(vo)[e] = reinterpret_cast<const uint4*>(vc + slot * kv_dim)[c];
  }
}

__device__ float BlockMax(float v) {
  __shared__ float partial[32];
  __syncthreads();
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  float m = -INFINITY;
  for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) m = fmaxf(m, partial[w]);
  return m;
}

__global__ void MaskedSoftmaxKernel(const float* s, int64_t t_q, int64_t t_k, const int32_t* pos,
                                    int k0, int window, __half* p) {
  const int64_t row = blockIdx.x;  // b * t_q + i
  const int64_t i = row % t_q;
  const float* sr = s + row * t_k;
  __half* pr = p + row * t_k;
  const int qp = pos[i];
  // Keys j with k0 + j in [lo, qp].
  const int lo = window > 0 ? max(0, qp - window + 1) : 0;
  const int64_t j_lo = max(0, lo - k0), j_hi = min(t_k, static_cast<int64_t>(qp) - k0 + 1);
  float m = -INFINITY;
  for (int64_t j = j_lo + threadIdx.x; j < j_hi; j += blockDim.x) m = fmaxf(m, sr[j]);
  m = BlockMax(m);
  float sum = 0.0f;
  for (int64_t j = j_lo + threadIdx.x; j < j_hi; j += blockDim.x) sum += expf(sr[j] - m);
  sum = BlockSum(sum);
  const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
  for (int64_t j = threadIdx.x; j < t_k; j += blockDim.x) {
    pr[j] = __float2half_rn(j >= j_lo && j < j_hi ? expf(sr[j] - m) * inv : 0.0f);
  }
}

// ---- sampling candidates: penalty, a radix select of the k best, the softmax sum ----

constexpr int kTopKThreads = 1024;
constexpr int kTopKWarps = kTopKThreads / 32;
constexpr int kMaxTopKCandidates = 64;  // engine::kMaxTopK

// Whether candidate (v, i) comes before (bv, bi) in (value descending, id ascending).
__device__ __forceinline__ bool TopKBefore(float v, int i, float bv, int bi) {
  return v > bv || (v == bv && i < bi);
}

// An unsigned key with the order of the finite floats (-0 and +0 share one key, as they compare
// equal): the radix select's digits.
__device__ __forceinline__ uint32_t TopKKey(float v) {
  const uint32_t u = v == 0.0f ? 0u : __float_as_uint(v);
  return (u & 0x80000000u) != 0 ? ~u : (u | 0x80000000u);
}

// One block per row: the penalty in place, the count of non-finite logits, then the k best
// finite logits under (value descending, id ascending), as the host's TopKRow:
//  1. a most-significant-digit-first radix select (four 8-bit passes over the row, histograms in
//     shared memory) finds the key T of the k-th best and how many logits equal to T it takes;
//  2. one pass collects the logits above T, and the first of those equal to T in id order (a
//     block-wide scan, chunk by chunk, only when more logits tie at T than are needed);
//  3. the (at most 64) candidates are ranked against each other and written in order.
// Then the softmax sum over the row, as before: float terms summed in double.
__global__ void __launch_bounds__(kTopKThreads)
    TopKKernel(float* logits, int64_t cols, int k, const float* temperature, const float* penalty,
               const int32_t* pen_ids, const int32_t* pen_starts, float* values, int32_t* ids,
               double* sum_exp, int32_t* nonfinite) {
  PdlWait();
  PdlTrigger();
  __shared__ int s_hist[256];
  __shared__ uint32_t s_prefix, s_mask;
  __shared__ int s_need, s_found;
  __shared__ float s_cv[kMaxTopKCandidates];
  __shared__ int s_ci[kMaxTopKCandidates];
  __shared__ int s_warp[kTopKWarps];
  const int64_t r = blockIdx.x;
  float* row = logits + r * cols;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const float f = penalty[r];
  if (f != 1.0f) {
    for (int32_t p = pen_starts[r] + tid; p < pen_starts[r + 1]; p += blockDim.x) {
      const int32_t t = pen_ids[p];
      if (t >= 0 && t < cols) {
        const float l = row[t];
        row[t] = l > 0 ? __fdiv_rn(l, f) : __fmul_rn(l, f);
      }
    }
  }
  __syncthreads();  // the penalised logits are visible to the whole block
  int bad = 0;
  for (int64_t c = tid; c < cols; c += blockDim.x) bad += isfinite(row[c]) ? 0 : 1;
  bad = BlockSum(bad);
  if (tid == 0) nonfinite[r] = bad;
  const int64_t finite = cols - bad;
  const int take = static_cast<int>(finite < k ? finite : k);  // candidates that exist

  // 1. Radix select: after the passes, every logit with key > prefix is in, and `need` of those
  // with key == prefix (the first in id order). With take == finite every finite logit is in.
  if (tid == 0) {
    s_prefix = 0;
    s_mask = 0;
    s_need = take;
    s_found = 0;
  }
  __syncthreads();
  if (take > 0 && take < finite) {
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int i = tid; i < 256; i += blockDim.x) s_hist[i] = 0;
      __syncthreads();
      const uint32_t prefix = s_prefix, mask = s_mask;
      // Four loads in flight per thread; the trip count is uniform (warp-wide matches).
      constexpr int kLoads = 4;
      for (int64_t c0 = 0; c0 < cols; c0 += kLoads * blockDim.x) {
        float v[kLoads];
#pragma unroll
        for (int j = 0; j < kLoads; ++j) {
          const int64_t c = c0 + j * blockDim.x + tid;
          v[j] = c < cols ? row[c] : NAN;
        }
#pragma unroll
        for (int j = 0; j < kLoads; ++j) {
          int digit = -1;
          if (isfinite(v[j])) {
            const uint32_t key = TopKKey(v[j]);
            if ((key & mask) == prefix) digit = static_cast<int>((key >> shift) & 0xFF);
          }
          // Lanes with the same digit add once (shared-memory atomics on a few hot bins).
          const unsigned same = __match_any_sync(0xffffffffu, digit);
          if (digit >= 0 && lane == __ffs(same) - 1) atomicAdd(&s_hist[digit], __popc(same));
        }
      }
      __syncthreads();
      if (warp == 0) {
        // Lane l owns bins [8l, 8l + 8); suffix sums from the top bin down find the digit.
        int own = 0;
#pragma unroll
        for (int j = 0; j < 8; ++j) own += s_hist[lane * 8 + j];
        int above = 0;  // logits in the bins of higher lanes (every lane runs every shuffle)
        for (int o = 0; o < 32; ++o) {
          const int v = __shfl_sync(0xffffffffu, own, o);
          if (o > lane) above += v;
        }
        const int need = s_need;
        const bool here = above < need && above + own >= need;
        const unsigned who = __ballot_sync(0xffffffffu, here);
        if (here && lane == __ffs(who) - 1) {
          int cum = above, d = lane * 8 + 7;
          while (cum + s_hist[d] < need) cum += s_hist[d--];
          s_need = need - cum;
          s_prefix = prefix | (static_cast<uint32_t>(d) << shift);
          s_mask = mask | (0xFFu << shift);
        }
      }
      __syncthreads();
    }
  }
  // 2. Collect the candidates: key > T, and the first s_need with key == T.
  const uint32_t threshold = s_prefix;
  const bool all = take == finite;
  const int need_eq = s_need;
  int eq_total = 0;
  if (take > 0) {
    int eq = 0;
    for (int64_t c = tid; c < cols; c += blockDim.x) {
      const float v = row[c];
      if (!isfinite(v)) continue;
      const uint32_t key = TopKKey(v);
      if (all || key > threshold) {
        const int slot = atomicAdd(&s_found, 1);
        if (slot < kMaxTopKCandidates) {
          s_cv[slot] = v;
          s_ci[slot] = static_cast<int>(c);
        }
      } else if (key == threshold) {
        ++eq;
      }
    }
    eq_total = all ? 0 : BlockSum(eq);
  }
  __syncthreads();
  if (take > 0 && !all) {
    if (eq_total == need_eq) {
      // Every tie is in: no order needed.
      for (int64_t c = tid; c < cols; c += blockDim.x) {
        const float v = row[c];
        if (isfinite(v) && TopKKey(v) == threshold) {
          const int slot = atomicAdd(&s_found, 1);
          if (slot < kMaxTopKCandidates) {
            s_cv[slot] = v;
            s_ci[slot] = static_cast<int>(c);
          }
        }
      }
    } else {
      // More ties than places: the first need_eq in id order, chunk by chunk.
      int taken = 0;
      const int base = s_found;
      for (int64_t c0 = 0; c0 < cols && taken < need_eq; c0 += blockDim.x) {
        const int64_t c = c0 + tid;
        float v = 0.0f;
        bool tie = false;
        if (c < cols) {
          v = row[c];
          tie = isfinite(v) && TopKKey(v) == threshold;
        }
        const unsigned b = __ballot_sync(0xffffffffu, tie);
        __syncthreads();  // s_warp of the previous chunk has been read
        if (lane == 0) s_warp[warp] = __popc(b);
        __syncthreads();
        int before = 0, total = 0;
        for (int w = 0; w < kTopKWarps; ++w) {
          before += w < warp ? s_warp[w] : 0;
          total += s_warp[w];
        }
        const int rank = taken + before + __popc(b & ((1u << lane) - 1));
        if (tie && rank < need_eq && base + rank < kMaxTopKCandidates) {
          s_cv[base + rank] = v;
          s_ci[base + rank] = static_cast<int>(c);
        }
        taken += total;  // the same in every thread: the loop ends together
      }
    }
  }
  __syncthreads();
  // 3. Rank the candidates; pad with (-inf, -1).
  for (int j = tid; j < k; j += blockDim.x) {
    if (j < take) {
      const float v = s_cv[j];
      const int i = s_ci[j];
      int rank = 0;
      for (int o = 0; o < take; ++o) rank += TopKBefore(s_cv[o], s_ci[o], v, i) ? 1 : 0;
      values[r * k + rank] = v;
      ids[r * k + rank] = i;
    } else {
      values[r * k + j] = -INFINITY;
      ids[r * k + j] = -1;
    }
  }
  // The best value (for the softmax sum): the candidate no other beats.
  float max_v = -INFINITY;
  for (int o = 0; o < take; ++o) max_v = fmaxf(max_v, s_cv[o]);
  const float t = temperature[r];
  double sum = 0;
  if (t > 0 && take > 0) {  // as the host sampler: float terms, summed in double
    for (int64_t c = tid; c < cols; c += blockDim.x) {
      const float v = row[c];
      if (isfinite(v)) sum += static_cast<double>(expf(__fdiv_rn(__fsub_rn(v, max_v), t)));
    }
  }
  sum = BlockSum(sum);
  if (tid == 0) sum_exp[r] = t > 0 ? sum : 0.0;
}

}  // namespace

cudaError_t LaunchGatherKv(const uint16_t* kc, const uint16_t* vc, const int32_t* table,
                           int block_size, int64_t kv_dim, int k0, int64_t t_k, uint16_t* ko,
                           uint16_t* vo, cudaStream_t stream) {
  if (t_k == 0) return cudaSuccess;
  if (kv_dim % 8 != 0) return cudaErrorInvalidValue;
  GatherKvKernel<<<Blocks(t_k * kv_dim / 8), kThreads, 0, stream>>>(kc, vc, table, block_size,
                                                                    kv_dim, k0, t_k, ko, vo);
  return cudaGetLastError();
}

cudaError_t LaunchMaskedSoftmax(const float* s, int64_t batch, int64_t t_q, int64_t t_k,
                                const int32_t* pos, int k0, int window, uint16_t* p,
                                cudaStream_t stream) {
  if (batch * t_q == 0) return cudaSuccess;
  if (batch * t_q > 0x7fffffff) return cudaErrorInvalidValue;
  MaskedSoftmaxKernel<<<static_cast<unsigned>(batch * t_q), kThreads, 0, stream>>>(
      s, t_q, t_k, pos, k0, window, reinterpret_cast<__half*>(p));
  return cudaGetLastError();
}

bool GroupedDecodeSupported(int head_dim, int group) {
  return (head_dim == 64 || head_dim == 128 || head_dim == 256) &&
         (group == 1 || group == 2 || group == 4 || group == 8) &&
         group * head_dim <= kDecodeMaxGroupDims;
}

cudaError_t LaunchTopK(float* logits, int64_t rows, int64_t cols, int k, const float* temperature,
                       const float* penalty, const int32_t* pen_ids, const int32_t* pen_starts,
                       float* values, int32_t* ids, double* sum_exp, int32_t* nonfinite,
                       cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  if (k < 1 || k > kMaxTopKCandidates || cols <= 0 || cols > 0x7fffffff || rows > 0x7fffffff) {
    return cudaErrorInvalidValue;
  }
  LaunchPdl(&TopKKernel, static_cast<unsigned>(rows), kTopKThreads, 0, stream, logits, cols, k,
            temperature, penalty, pen_ids, pen_starts, values, ids, sum_exp, nonfinite);
  return cudaGetLastError();
}

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

bool MatVecSupported(WType type, int64_t cols) {
  switch (type) {
    case WType::kF32:
    case WType::kF16:
    case WType::kBF16:
      return cols % 8 == 0;
    case WType::kQ8_0:
    case WType::kQ4_0:
      return cols % 32 == 0;
    case WType::kQ4_K:
      return cols % 256 == 0;
  }
  return false;
}

int MatVecWarpsPerRow(int64_t rows, int sm_count) {
  // Two waves of 32 resident warps per multiprocessor (the register limit of these kernels).
  const int64_t target = int64_t{64} * std::max(sm_count, 1);
  if (rows >= target) return 1;
  if (2 * rows >= target) return 2;
  return 4;
}

cudaError_t LaunchMatVec(WType type, const void* w, int64_t row_bytes, int64_t rows,
                         int64_t cols, const float* x, int64_t n, const float* bias, float* y,
                         int warps_per_row, bool persistent, cudaStream_t stream) {
  if (n == 0 || rows == 0) return cudaSuccess;
  if (!MatVecSupported(type, cols) ||
      (warps_per_row != 1 && warps_per_row != 2 && warps_per_row != 4)) {
    return cudaErrorInvalidValue;
  }
  switch (type) {
    case WType::kF32:
      return MatVecTyped<WType::kF32>(w, row_bytes, rows, cols, x, n, bias, y, warps_per_row, persistent, stream);
    case WType::kF16:
      return MatVecTyped<WType::kF16>(w, row_bytes, rows, cols, x, n, bias, y, warps_per_row, persistent, stream);
    case WType::kBF16:
      return MatVecTyped<WType::kBF16>(w, row_bytes, rows, cols, x, n, bias, y, warps_per_row, persistent, stream);
    case WType::kQ8_0:
      return MatVecTyped<WType::kQ8_0>(w, row_bytes, rows, cols, x, n, bias, y, warps_per_row, persistent, stream);
    case WType::kQ4_0:
      return MatVecTyped<WType::kQ4_0>(w, row_bytes, rows, cols, x, n, bias, y, warps_per_row, persistent, stream);
    case WType::kQ4_K:
      return MatVecTyped<WType::kQ4_K>(w, row_bytes, rows, cols, x, n, bias, y, warps_per_row, persistent, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t LaunchMatVecMulti(WType type, const MatVecMultiArgs& a, cudaStream_t stream) {
  if (a.n < 1 || a.n > 8 || a.num_parts < 1 || a.num_parts > kMaxMatVecParts ||
      !MatVecSupported(type, a.cols) ||
      (a.warps_per_row != 1 && a.warps_per_row != 2 && a.warps_per_row != 4)) {
    return cudaErrorInvalidValue;
  }
  if (a.swiglu != 0 && (a.num_parts != 2 || a.parts[0].rows != a.parts[1].rows ||
                        a.parts[0].row_bytes != a.parts[1].row_bytes)) {
    return cudaErrorInvalidValue;
  }
  if (a.async != 0 && (a.n > 2 || (type != WType::kF16 && type != WType::kBF16))) {
    return cudaErrorInvalidValue;
  }
  switch (type) {
    case WType::kF32: return MatVecMultiTyped<WType::kF32>(a, stream);
    case WType::kF16: return MatVecMultiTyped<WType::kF16>(a, stream);
    case WType::kBF16: return MatVecMultiTyped<WType::kBF16>(a, stream);
    case WType::kQ8_0: return MatVecMultiTyped<WType::kQ8_0>(a, stream);
    case WType::kQ4_0: return MatVecMultiTyped<WType::kQ4_0>(a, stream);
    case WType::kQ4_K: return MatVecMultiTyped<WType::kQ4_K>(a, stream);
  }
  return cudaErrorInvalidValue;
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

cudaError_t LaunchPagedAttention(const PagedAttentionArgs& a, cudaStream_t stream) {
  if (a.num_tokens == 0) return cudaSuccess;
  if (a.head_dim <= 0 || a.head_dim > kMaxHeadDim || a.num_heads > 65535 ||
      a.num_tokens > 0x7fffffff) {
    return cudaErrorInvalidValue;
  }
  if (a.num_tiles == 0 && a.grouped != 0) {
    if (!GroupedDecodeSupported(a.head_dim, a.num_heads / a.num_kv_heads) ||
        a.num_kv_heads > 65535) {
      return cudaErrorInvalidValue;
    }
    if (a.head_dim == 64) return LaunchGroupedDecode<8>(a, stream);
    if (a.head_dim == 128) return LaunchGroupedDecode<16>(a, stream);
    return LaunchGroupedDecode<32>(a, stream);
  }
  const int hpl = (a.head_dim + 31) / 32;
  if (a.num_tiles > 0) {
    if (a.heads_per_block <= 0 || a.num_heads % a.heads_per_block != 0 ||
        (a.num_heads / a.num_kv_heads) % a.heads_per_block != 0 || a.num_tiles > 0x7fffffff) {
      return cudaErrorInvalidValue;
    }
    if (hpl <= 2) return LaunchTiled<2>(a, stream);
    if (hpl <= 4) return LaunchTiled<4>(a, stream);
    return LaunchTiled<8>(a, stream);
  }
  const dim3 grid(static_cast<unsigned>(a.num_tokens), static_cast<unsigned>(a.num_heads));
  if (hpl <= 2) {
    PagedAttentionKernel<2><<<grid, kAttnWarps * 32, 0, stream>>>(a);
  } else if (hpl <= 4) {
    PagedAttentionKernel<4><<<grid, kAttnWarps * 32, 0, stream>>>(a);
  } else {
    PagedAttentionKernel<8><<<grid, kAttnWarps * 32, 0, stream>>>(a);
  }
  return cudaGetLastError();
}

namespace {

template <int HPL>
cudaError_t LaunchDenseAttentionHpl(const float* q, const float* k, const float* v,
                                    const int32_t* seq_starts, const int32_t* seq_of,
                                    int64_t num_tokens, int num_heads, int head_dim, float scale,
                                    float* out, bool tiled, cudaStream_t stream) {
  if (!tiled) {
    const dim3 grid(static_cast<unsigned>(num_tokens), static_cast<unsigned>(num_heads));
    DenseAttentionKernel<HPL><<<grid, kAttnWarps * 32, 0, stream>>>(
        q, k, v, seq_starts, seq_of, num_heads, head_dim, scale, out);
    return cudaGetLastError();
  }
  if (num_tokens > 0x7fffffff - kTileK) return cudaErrorInvalidValue;  // key tiles stay in int
  const auto kernel = &DenseAttentionTiledKernel<HPL>;
  if (cudaError_t err = EnsureTiledSharedMemory<HPL>(reinterpret_cast<const void*>(kernel));
      err != cudaSuccess) {
    return err;
  }
  const dim3 grid(
      static_cast<unsigned>((num_tokens + kAttentionTileQueries - 1) / kAttentionTileQueries),
      static_cast<unsigned>(num_heads));
  kernel<<<grid, kAttnWarps * 32, TiledSharedBytes(head_dim), stream>>>(
      q, k, v, seq_starts, seq_of, num_tokens, num_heads, head_dim, scale, out);
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchDenseAttention(const float* q, const float* k, const float* v,
                                 const int32_t* seq_starts, const int32_t* seq_of,
                                 int64_t num_tokens, int num_heads, int head_dim, float scale,
                                 float* out, bool tiled, cudaStream_t stream) {
  if (num_tokens == 0) return cudaSuccess;
  if (head_dim <= 0 || head_dim > kMaxHeadDim || num_heads > 65535 || num_tokens > 0x7fffffff) {
    return cudaErrorInvalidValue;
  }
  const int hpl = (head_dim + 31) / 32;
  if (hpl <= 2) {
    return LaunchDenseAttentionHpl<2>(q, k, v, seq_starts, seq_of, num_tokens, num_heads, head_dim,
                                      scale, out, tiled, stream);
  }
  if (hpl <= 4) {
    return LaunchDenseAttentionHpl<4>(q, k, v, seq_starts, seq_of, num_tokens, num_heads, head_dim,
                                      scale, out, tiled, stream);
  }
  return LaunchDenseAttentionHpl<8>(q, k, v, seq_starts, seq_of, num_tokens, num_heads, head_dim,
                                    scale, out, tiled, stream);
}

}  // namespace tessera::engine::cuda
