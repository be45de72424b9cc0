// CudaBackend: the Backend of engine/backend/backend.h on one NVIDIA GPU (built for sm_90,
// H100/H200, plus compute_90 PTX).
//
// Memory: activations (Buffer) come from a caching pool of plain cudaMalloc allocations (no
// managed memory); weights are uploaded once at LoadWeight into their own cudaMalloc block (the
// caller's host data is not referenced afterwards); 1-D weights also keep an F32 copy. The KV
// cache is F16 in device memory with the CPU backend's layout: per layer, K then V, each
// [num_blocks * block_size slots, num_kv_heads * head_dim].
//
// Execution: every op is queued on one CUDA stream; CopyToHost waits for it. Per-call metadata
// (token ids, positions, slots, block tables) is copied to the device on the same stream, and
// skipped when it equals what is already there (the layers of one forward pass share it).
//
// Steps (Backend::BeginStep/EndStep, one forward pass): the ops in between are recorded, not
// launched, with their metadata laid out in one pinned arena (step_recorder.h). At EndStep (or a
// copy, or an op from another thread) the arena goes to the device in one copy and the ops run:
// as the cached CUDA graph of an earlier step with the same signature (every launch argument
// equal), as a newly captured graph the second time a signature is seen (updating the most
// recent graph in place when the topology allows), or one by one. A failure to capture turns
// graphs off for the backend (logged, and reported by GetCudaGraphStats) and the ops run one by
// one, so results never depend on graphs.
//
// MatMul: for up to a few activation rows (decode) a fused kernel reads each weight row once
// with 1, 2 or 4 warps (any weight type, F32 activations and accumulation) on a grid of resident
// blocks (TESSERA_CUDA_MATVEC_PERSISTENT=0: one block per few rows); for more rows cuBLAS:
// SGEMM for F32 weights, cublasGemmEx for F16 / BF16 weights with the activations rounded to
// the weight's type, and Q8_0 / Q4_0 / Q4_K weights dequantized to BF16 (with BF16 activations)
// first; F32 accumulation throughout.
//
// PagedAttention: decode steps (one token per sequence) use a kernel with one block per (token,
// kv head) that serves the kv head's query heads together (head sizes 64/128/256, 1/2/4/8 query
// heads per kv head; TESSERA_CUDA_GROUPED_DECODE=0 turns it off). Runs of 64 or more tokens of
// one sequence (prefill chunks) go through cuBLAS on the tensor cores: keys and values gathered
// into contiguous F16, queries rounded to F16, batched GEMMs for scores and values around a
// masked softmax whose probabilities are F16 (TESSERA_CUDA_GEMM_PREFILL=0: the tiled kernel);
// shorter runs use query tiles through shared memory.
//
// Paths off by default until measured on a GPU, each with the same results bit for bit:
// TESSERA_CUDA_PDL=1 (process-wide) launches the decode step's kernels with programmatic
// dependent launch (engine/backend/cuda/common.cuh); TESSERA_CUDA_FUSED_ROPE_KV=1,
// TESSERA_CUDA_FUSED_SWIGLU=1 and TESSERA_CUDA_FUSED_SPLIT_MERGE=1 fuse a decode layer's RoPE and
// KV write, its gate/up projections and SwiGLU, and its attention's split merge;
// TESSERA_CUDA_MATVEC_ASYNC=1 stages the matvecs' bytes in flight through shared memory (the
// setters below switch them per backend).
//
// Thread-safety: ops may be called from several threads (the models of one engine share the
// backend); a mutex serialises them. Errors: bad shapes are caller bugs and abort with a message,
// as in the CPU backend; so do CUDA errors inside an op (a device fault leaves no way to go on).
#ifndef TESSERA_ENGINE_BACKEND_CUDA_CUDA_BACKEND_H_
#define TESSERA_ENGINE_BACKEND_CUDA_CUDA_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/backend/backend.h"

namespace tessera::engine::cuda {

struct CudaBackendOptions {
  int device = 0;  // CUDA device ordinal
  // Record the ops between Backend::BeginStep and EndStep and replay recurring steps as CUDA
  // graphs. TESSERA_CUDA_GRAPHS=0 in the environment turns this off.
  bool graphs = true;
};

// How the steps of a backend ran (see BeginStep in backend.h).
struct CudaGraphStats {
  bool enabled = false;         // false: every op runs when called
  std::string disabled_reason;  // why enabled is false
  int64_t steps_replayed = 0;   // steps launched as one graph (captured, updated or cached)
  int64_t graphs_captured = 0;  // graphs instantiated
  int64_t graphs_updated = 0;   // graphs updated in place for a step of the same topology
  int64_t steps_eager = 0;      // recorded steps run op by op (first sightings, short steps)
};

// The counters of a backend made by CreateCudaBackend; zeros for any other backend.
CudaGraphStats GetCudaGraphStats(Backend& backend);
// Turns graphs on or off from the next step on (tests and benchmarks compare the two); no effect
// on other backends.
void SetCudaGraphs(Backend& backend, bool on);
// Turns the grouped decode attention kernel on or off (off: the per-(token, head) and tiled
// kernels), for comparisons; TESSERA_CUDA_GROUPED_DECODE=0 sets it off at creation.
void SetCudaGroupedDecode(Backend& backend, bool on);
// Turns attention through cuBLAS for long prefill runs on or off (off: the tiled kernel), for
// comparisons; TESSERA_CUDA_GEMM_PREFILL=0 sets it off at creation.
void SetCudaGemmPrefill(Backend& backend, bool on);
// Runs decode matvecs on a grid of resident blocks that loop over the rows (on) or one block per
// few rows (off), for comparisons; TESSERA_CUDA_MATVEC_PERSISTENT=0 sets it off at creation.
void SetCudaMatVecPersistent(Backend& backend, bool on);
// RopeWriteKv (a layer's q/k rotation and cache write) as one kernel instead of three (off by
// default: not yet measured on a GPU); TESSERA_CUDA_FUSED_ROPE_KV=1 sets it on at creation.
void SetCudaFusedRopeKv(Backend& backend, bool on);
// Backend::MatMulSwiGlu (a layer's gate and up projections and SwiGLU) as one matvec launch
// instead of a launch and a SiluMul (off by default: not yet measured on a GPU);
// TESSERA_CUDA_FUSED_SWIGLU=1 sets it on at creation.
void SetCudaFusedSwiGlu(Backend& backend, bool on);
// Decode matvecs of F16/BF16 weights with their bytes in flight staged through shared memory
// (cp.async), several times as many as the registers hold; the same results bit for bit (off by
// default: not yet measured on a GPU); TESSERA_CUDA_MATVEC_ASYNC=1 sets it on at creation.
void SetCudaMatVecAsync(Backend& backend, bool on);
// Grouped decode attention with its key splits merged by the last block of each (token, kv
// head) instead of a second kernel (off by default: not yet measured on a GPU);
// TESSERA_CUDA_FUSED_SPLIT_MERGE=1 sets it on at creation.
void SetCudaFusedSplitMerge(Backend& backend, bool on);
// DenseAttention (encoders: BERT embeddings and reranking) with one block per 16 tokens and head,
// loading each key and value once for the 16 queries, instead of one block per token and head
// (off by default: not yet measured on a GPU); TESSERA_CUDA_TILED_DENSE_ATTENTION=1 sets it on at
// creation.
void SetCudaTiledDenseAttention(Backend& backend, bool on);
// Programmatic dependent launch for the decode step's kernels, for every CUDA backend of the
// process (tests and benchmarks compare the two); TESSERA_CUDA_PDL=1 turns it on at start. Off by
// default: not yet measured on a GPU.
void SetCudaPdl(bool on);

// Number of CUDA devices this process can use; 0 when there is no device or no driver (never
// fails). `why`, when given, receives the CUDA error text in that case.
int CudaDeviceCount(std::string* why = nullptr);

// FAILED_PRECONDITION when no device is present (or the device predates sm_90, for which this
// build has no code); INVALID_ARGUMENT for a bad ordinal; INTERNAL when CUDA or cuBLAS fail to
// initialise.
absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend(const CudaBackendOptions& options);

}  // namespace tessera::engine::cuda

#endif  // TESSERA_ENGINE_BACKEND_CUDA_CUDA_BACKEND_H_
