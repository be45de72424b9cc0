// CpuBackend: the Backend of engine/backend/backend.h on the host CPU, with
// SIMD kernels chosen at run time (AVX-512 with VNNI, AVX2 + FMA + F16C, or
// scalar; see kernels.h) and a SpinPool of threads.
//
// Memory: buffers are 64-byte aligned host memory. LoadWeight aliases the
// caller's data (no copy) after validating its shape; only 1-D non-F32 weights
// (norm weights, biases) get a dequantized F32 copy of `cols` floats. The KV
// cache stores keys and values as F16 (half the memory traffic of F32 in
// attention): per layer, K then V, each [num_blocks * block_size slots,
// num_kv_heads * head_dim].
//
// MatMul with Q8_0 / Q4_0 weights quantizes x once per call to int8 blocks of
// 32 (Q4_K: blocks of 256 with per-32 sums) and multiplies in integers; the
// result differs from the F32 product of the dequantized weights by the
// activation rounding (at most amax(block) / 254 per value).
//
// Thread-safety: ops may be called from several threads (the models of one
// engine share the backend); they take turns on the thread pool. Results are deterministic and independent of the thread count. Bad
// shapes passed to an op are caller bugs and abort with a message.
#ifndef TESSERA_ENGINE_BACKEND_CPU_CPU_BACKEND_H_
#define TESSERA_ENGINE_BACKEND_CPU_CPU_BACKEND_H_

#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "engine/backend/backend.h"
#include "engine/backend/cpu/kernels.h"

namespace tessera::engine::cpu {

struct CpuBackendOptions {
  int num_threads = 0;  // threads computing, the caller included; 0: all hardware threads
  // Kernel level. Unset: the TESSERA_CPU_ISA environment variable (avx512,
  // avx2, scalar) when set, else the best this CPU supports.
  std::optional<Isa> isa;
};

// INVALID_ARGUMENT for a negative thread count or an unknown TESSERA_CPU_ISA
// value; FAILED_PRECONDITION when the requested level is not supported by this
// CPU.
absl::StatusOr<std::unique_ptr<Backend>> CreateCpuBackend(const CpuBackendOptions& options);

}  // namespace tessera::engine::cpu

#endif  // TESSERA_ENGINE_BACKEND_CPU_CPU_BACKEND_H_
