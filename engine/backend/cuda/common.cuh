// Device code shared by the CUDA backend's kernel files (kernels.cu, matvec.cu, attention.cu,
// topk.cu): launch helpers (programmatic dependent launch), weight element decoding, warp and block
// reductions. Private to engine/backend/cuda; everything is in an anonymous namespace (each file
// gets its own copy).
#ifndef TESSERA_ENGINE_BACKEND_CUDA_COMMON_CUH_
#define TESSERA_ENGINE_BACKEND_CUDA_COMMON_CUH_

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
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

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
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

// silu(g) * u (SwiGLU), one formula for SiluMulKernel and the fused gate/up matvec (same bits).
__device__ __forceinline__ float SiluMulValue(float g, float u) {
  return g / (1.0f + expf(-g)) * u;
}

}  // namespace
}  // namespace tessera::engine::cuda

#endif  // TESSERA_ENGINE_BACKEND_CUDA_COMMON_CUH_
