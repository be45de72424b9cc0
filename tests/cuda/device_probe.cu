// Kernels and host wrappers for tests/cuda/device_probe.h. Error codes only: no exceptions,
// no absl. Device memory is owned by DeviceBuffer and released on every return path.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <concepts>
#include <cstring>

#include "tests/cuda/device_probe.h"

namespace tessera::cuda_probe {
namespace {

constexpr int kBlockSize = 256;
constexpr std::int64_t kMaxBlocks = 4096;  // the kernels stride over the rest

// Owns one cudaMalloc allocation; frees it when it goes out of scope.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  cudaError_t Allocate(std::size_t bytes) { return cudaMalloc(&ptr_, bytes); }
  template <typename T>
  T* get() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
};

// Element types the kernel reads: fp32, or 16-bit storage converted to fp32 on load.
template <typename T>
concept AxpyInput =
    std::same_as<T, float> || std::same_as<T, __nv_bfloat16> || std::same_as<T, __half>;

__device__ inline float ToFloat(float v) { return v; }
__device__ inline float ToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ inline float ToFloat(__half v) { return __half2float(v); }

template <AxpyInput T>
__global__ void AxpyKernel(float a, const T* __restrict__ x, const T* __restrict__ y,
                           float* __restrict__ out, std::int64_t n) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    out[i] = a * ToFloat(x[i]) + ToFloat(y[i]);
  }
}

// Copies x, y and the (poisoned) out to the device, runs AxpyKernel<T>, copies out back.
// HostT is the host element type with the same bytes as T (uint16_t for the 16-bit types).
template <typename T, typename HostT>
int RunAxpy(float a, const HostT* x, const HostT* y, float* out, std::int64_t n) {
  static_assert(sizeof(T) == sizeof(HostT));
  if (n < 0 || (n > 0 && (x == nullptr || y == nullptr || out == nullptr))) {
    return cudaErrorInvalidValue;
  }
  if (n == 0) return cudaSuccess;
  const std::size_t in_bytes = static_cast<std::size_t>(n) * sizeof(T);
  const std::size_t out_bytes = static_cast<std::size_t>(n) * sizeof(float);
  DeviceBuffer dx, dy, dout;
  cudaError_t err;
  if ((err = dx.Allocate(in_bytes)) != cudaSuccess) return err;
  if ((err = dy.Allocate(in_bytes)) != cudaSuccess) return err;
  if ((err = dout.Allocate(out_bytes)) != cudaSuccess) return err;
  if ((err = cudaMemcpy(dx.get<void>(), x, in_bytes, cudaMemcpyHostToDevice)) != cudaSuccess) {
    return err;
  }
  if ((err = cudaMemcpy(dy.get<void>(), y, in_bytes, cudaMemcpyHostToDevice)) != cudaSuccess) {
    return err;
  }
  if ((err = cudaMemcpy(dout.get<void>(), out, out_bytes, cudaMemcpyHostToDevice)) != cudaSuccess) {
    return err;
  }
  const int blocks =
      static_cast<int>(std::min<std::int64_t>((n + kBlockSize - 1) / kBlockSize, kMaxBlocks));
  AxpyKernel<T>
      <<<blocks, kBlockSize>>>(a, dx.get<const T>(), dy.get<const T>(), dout.get<float>(), n);
  if ((err = cudaGetLastError()) != cudaSuccess) return err;       // launch errors
  if ((err = cudaDeviceSynchronize()) != cudaSuccess) return err;  // execution errors
  return cudaMemcpy(out, dout.get<void>(), out_bytes, cudaMemcpyDeviceToHost);
}

}  // namespace

int GetDeviceCount(int* count) {
  if (count == nullptr) return cudaErrorInvalidValue;
  *count = 0;
  const cudaError_t err = cudaGetDeviceCount(count);
  if (err != cudaSuccess) {
    *count = 0;
    cudaGetLastError();  // reset the runtime's last-error state for later callers
  }
  return err;
}

int QueryDevice(int ordinal, DeviceInfo* info) {
  if (info == nullptr) return cudaErrorInvalidValue;
  *info = DeviceInfo{};
  cudaError_t err;
  if ((err = cudaGetDeviceCount(&info->device_count)) != cudaSuccess) return err;
  if (ordinal < 0 || ordinal >= info->device_count) return cudaErrorInvalidDevice;
  info->ordinal = ordinal;
  if ((err = cudaSetDevice(ordinal)) != cudaSuccess) return err;
  cudaDeviceProp prop;
  if ((err = cudaGetDeviceProperties(&prop, ordinal)) != cudaSuccess) return err;
  std::strncpy(info->name, prop.name, sizeof(info->name) - 1);
  info->compute_major = prop.major;
  info->compute_minor = prop.minor;
  info->multiprocessor_count = prop.multiProcessorCount;
  if ((err = cudaMemGetInfo(&info->free_memory_bytes, &info->total_memory_bytes)) != cudaSuccess) {
    return err;
  }
  if ((err = cudaDriverGetVersion(&info->driver_version)) != cudaSuccess) return err;
  return cudaRuntimeGetVersion(&info->runtime_version);
}

int AxpyF32(float a, const float* x, const float* y, float* out, std::int64_t n) {
  return RunAxpy<float>(a, x, y, out, n);
}

int AxpyHalfToF32(HalfFormat format, float a, const std::uint16_t* x, const std::uint16_t* y,
                  float* out, std::int64_t n) {
  switch (format) {
    case HalfFormat::kBf16:
      return RunAxpy<__nv_bfloat16>(a, x, y, out, n);
    case HalfFormat::kFp16:
      return RunAxpy<__half>(a, x, y, out, n);
  }
  return cudaErrorInvalidValue;
}

const char* ProbeErrorString(int code) {
  return cudaGetErrorString(static_cast<cudaError_t>(code));
}

}  // namespace tessera::cuda_probe
