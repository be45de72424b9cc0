// Decode matvecs (kernels.h: LaunchMatVec, LaunchMatVecMulti): the kernels written for
// bandwidth. One or more warps per weight row, dequantization fused, F32 activations and sums; the
// default kernel keeps its loads in flight in registers, MatVecAsyncKernel through shared memory
// (cp.async); every variant sums the same products in the same order.
#include <cuda_pipeline.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <utility>

#include "engine/backend/cuda/common.cuh"

namespace tessera::engine::cuda {
namespace {

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

}  // namespace

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

}  // namespace tessera::engine::cuda
