// tests/cuda/device_probe: a minimal CUDA library that proves the build plumbing end to end
// (nvcc via //bazel:cuda.bzl, cudart linking, kernel launch, bf16/fp16 headers) and reports
// which GPU a test machine has. It is plain C++: no CUDA types, no exceptions, no absl, so it
// compiles with gcc alone. Every function returns an error code: 0 on success, otherwise the
// numeric cudaError_t (ProbeErrorString() names it). All functions are thread-safe to the
// extent the CUDA runtime is; they use the calling thread's current device.
#ifndef TESSERA_TESTS_CUDA_DEVICE_PROBE_H_
#define TESSERA_TESTS_CUDA_DEVICE_PROBE_H_

#include <cstddef>
#include <cstdint>

namespace tessera::cuda_probe {

// One CUDA device, as reported by the runtime.
struct DeviceInfo {
  int device_count = 0;   // devices visible to this process
  int ordinal = 0;        // the device described below
  char name[256] = {};    // e.g. "NVIDIA H200", NUL-terminated
  int compute_major = 0;  // compute capability, e.g. 9.0 for Hopper
  int compute_minor = 0;
  int multiprocessor_count = 0;  // SMs
  std::size_t total_memory_bytes = 0;
  std::size_t free_memory_bytes = 0;
  int driver_version = 0;   // e.g. 13000 for CUDA 13.0
  int runtime_version = 0;  // the cudart this binary was linked with
};

// Number of devices in *count. Without a GPU or driver this returns an error
// (cudaErrorNoDevice, cudaErrorInsufficientDriver, ...) and sets *count to 0.
int GetDeviceCount(int* count);

// Fills *info for device `ordinal` (and makes it the current device).
int QueryDevice(int ordinal, DeviceInfo* info);

// out[i] = a * x[i] + y[i] in fp32 on the current device, for i < n (n >= 0).
// x, y and out are host arrays of n floats; `out` is copied to the device before the
// kernel runs and back afterwards, so elements the kernel fails to write keep whatever
// the caller put there (tests poison `out` with NaN). Invalid arguments return
// cudaErrorInvalidValue before any CUDA call, so that check works without a GPU.
int AxpyF32(float a, const float* x, const float* y, float* out, std::int64_t n);

// The 16-bit floating-point storage formats AxpyHalfToF32 reads.
enum class HalfFormat { kBf16, kFp16 };

// out[i] = a * float(x[i]) + float(y[i]) with fp32 arithmetic, where x and y hold raw
// bf16 (__nv_bfloat16) or IEEE fp16 (__half) bit patterns; same contract as AxpyF32.
int AxpyHalfToF32(HalfFormat format, float a, const std::uint16_t* x, const std::uint16_t* y,
                  float* out, std::int64_t n);

// Human-readable name of an error code returned above (static storage, never null).
const char* ProbeErrorString(int code);

}  // namespace tessera::cuda_probe

#endif  // TESSERA_TESTS_CUDA_DEVICE_PROBE_H_
