// Attention kernels (kernels.h: LaunchPagedAttention, LaunchDenseAttention, and the gather and
// masked softmax around the cuBLAS prefill GEMMs): per-(token, head) blocks, grouped decode with
// key splits, query tiles sharing key loads through shared memory.
#include <algorithm>
#include <mutex>
#include <set>
#include <utility>

#include "engine/backend/cuda/common.cuh"

namespace tessera::engine::cuda {
namespace {

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
