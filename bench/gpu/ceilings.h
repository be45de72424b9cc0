// Measured hardware ceilings for bench/gpu (ceilings.cu): device-to-device copy bandwidth and a
// large cuBLAS bf16 GEMM. Plain C++ API (error codes are cudaError_t / cublasStatus_t values,
// 0 is success) so that the benchmark driver needs no CUDA headers.
#ifndef TESSERA_BENCH_GPU_CEILINGS_H_
#define TESSERA_BENCH_GPU_CEILINGS_H_

#include <cstddef>

namespace tessera::bench_gpu {

// Copies `bytes` device to device `iters` times after a warm-up; *gb_per_s counts bytes read
// plus bytes written (2 * bytes per copy), the traffic a bandwidth-bound kernel sees.
int MeasureCopyBandwidth(size_t bytes, int iters, double* gb_per_s);

// C[m, n] = A[m, k] B[k, n] in bf16 with F32 accumulation (cublasGemmEx), `iters` timed after
// three warm-ups; random inputs.
int MeasureBf16Gemm(int m, int n, int k, int iters, double* tflops);

// Device name, free / total memory of device 0.
int DeviceSummary(char* name, size_t name_len, double* free_gib, double* total_gib);

const char* CeilingErrorString(int code);

// Brackets what a profiler started with "--profile-from-start off" (Nsight Compute, Nsight
// Systems) records: cudaProfilerStart / cudaProfilerStop after a device synchronisation.
void ProfilerRange(bool start);

}  // namespace tessera::bench_gpu

#endif  // TESSERA_BENCH_GPU_CEILINGS_H_
