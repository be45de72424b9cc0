// Backend::TopK on the device (kernels.h: LaunchTopK): the repetition penalty, then per row the
// k best logits by a radix select, the non-finite count and the softmax sum.
#include "engine/backend/cuda/common.cuh"

namespace tessera::engine::cuda {
namespace {

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

}  // namespace tessera::engine::cuda
