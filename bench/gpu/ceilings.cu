// See ceilings.h. Timed with CUDA events on one stream.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_profiler_api.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

#include "bench/gpu/ceilings.h"

namespace tessera::bench_gpu {
namespace {

__global__ void FillBf16(__nv_bfloat16* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    uint32_t x = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    x ^= x >> 13;
    x *= 0x5bd1e995u;
    x ^= x >> 15;
    p[i] = __float2bfloat16((x & 0xFFFF) / 65536.0f - 0.5f);
  }
}

#define RETURN_IF(expr)                       \
  do {                                        \
    const int rc_ = static_cast<int>(expr);   \
    if (rc_ != 0) return rc_;                 \
  } while (0)

// Runs `fn` `iters` times on the default stream between two events; *ms is the time between
// them. Returns the error of waiting for the last run.
template <typename Fn>
cudaError_t TimeMs(int iters, Fn fn, float* ms) {
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start);
  for (int i = 0; i < iters; ++i) fn();
  cudaEventRecord(stop);
  const cudaError_t err = cudaEventSynchronize(stop);
  *ms = 0;
  cudaEventElapsedTime(ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return err;
}

}  // namespace

int MeasureCopyBandwidth(size_t bytes, int iters, double* gb_per_s) {
  void *a = nullptr, *b = nullptr;
  RETURN_IF(cudaMalloc(&a, bytes));
  if (cudaError_t e = cudaMalloc(&b, bytes); e != cudaSuccess) {
    cudaFree(a);
    return e;
  }
  cudaMemset(a, 1, bytes);
  cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);  // warm-up
  float ms = 0;
  const cudaError_t err = TimeMs(
      iters, [&] { cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice); }, &ms);
  *gb_per_s = 2.0 * bytes * iters / (ms * 1e-3) / 1e9;
  cudaFree(a);
  cudaFree(b);
  return err;
}

int MeasureBf16Gemm(int m, int n, int k, int iters, double* tflops) {
  __nv_bfloat16 *a = nullptr, *b = nullptr;
  float* c = nullptr;
  RETURN_IF(cudaMalloc(&a, sizeof(__nv_bfloat16) * m * k));
  RETURN_IF(cudaMalloc(&b, sizeof(__nv_bfloat16) * k * n));
  RETURN_IF(cudaMalloc(&c, sizeof(float) * m * n));
  FillBf16<<<1024, 256>>>(a, static_cast<size_t>(m) * k, 1);
  FillBf16<<<1024, 256>>>(b, static_cast<size_t>(k) * n, 2);
  cublasHandle_t h;
  if (cublasStatus_t st = cublasCreate(&h); st != CUBLAS_STATUS_SUCCESS) return 1000 + st;
  const float one = 1.0f, zero = 0.0f;
  auto gemm = [&] {
    return cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, a, CUDA_R_16BF, m, b,
                        CUDA_R_16BF, k, &zero, c, CUDA_R_32F, m, CUBLAS_COMPUTE_32F,
                        CUBLAS_GEMM_DEFAULT);
  };
  for (int i = 0; i < 3; ++i) {
    if (cublasStatus_t st = gemm(); st != CUBLAS_STATUS_SUCCESS) return 1000 + st;
  }
  float ms = 0;
  const cudaError_t err = TimeMs(iters, gemm, &ms);
  *tflops = 2.0 * m * n * static_cast<double>(k) * iters / (ms * 1e-3) / 1e12;
  cublasDestroy(h);
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
  return err;
}

int DeviceSummary(char* name, size_t name_len, double* free_gib, double* total_gib) {
  cudaDeviceProp prop;
  RETURN_IF(cudaGetDeviceProperties(&prop, 0));
  std::strncpy(name, prop.name, name_len - 1);
  name[name_len - 1] = '\0';
  size_t f = 0, t = 0;
  RETURN_IF(cudaMemGetInfo(&f, &t));
  *free_gib = f / 1073741824.0;
  *total_gib = t / 1073741824.0;
  return 0;
}

const char* CeilingErrorString(int code) {
  if (code >= 1000) return cublasGetStatusString(static_cast<cublasStatus_t>(code - 1000));
  return cudaGetErrorString(static_cast<cudaError_t>(code));
}

void ProfilerRange(bool start) {
  cudaDeviceSynchronize();
  if (start) {
    cudaProfilerStart();
  } else {
    cudaProfilerStop();
  }
}

}  // namespace tessera::bench_gpu
