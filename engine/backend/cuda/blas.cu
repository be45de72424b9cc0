// cuBLAS calls of the CUDA backend (see kernels.h). Compiled by nvcc only because cuBLAS's
// headers pull in cuda_fp16.h, which needs nvcc's include paths.
#include <cublas_v2.h>

#include <cstdint>

#include "engine/backend/cuda/kernels.h"

namespace tessera::engine::cuda {

int BlasCreate(cudaStream_t stream, void* workspace, size_t workspace_bytes, void** handle) {
  cublasHandle_t h = nullptr;
  cublasStatus_t st = cublasCreate(&h);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  if ((st = cublasSetStream(h, stream)) != CUBLAS_STATUS_SUCCESS ||
      (st = cublasSetWorkspace(h, workspace, workspace_bytes)) != CUBLAS_STATUS_SUCCESS ||
      (st = cublasSetMathMode(h, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS) {
    cublasDestroy(h);
    return st;
  }
  *handle = h;
  return CUBLAS_STATUS_SUCCESS;
}

void BlasDestroy(void* handle) {
  if (handle != nullptr) cublasDestroy(static_cast<cublasHandle_t>(handle));
}

const char* BlasStatusString(int status) {
  return cublasGetStatusString(static_cast<cublasStatus_t>(status));
}

// Row-major y[n, rows] = x[n, k] W^T is column-major y^T[rows, n] = W^T[rows, k] x^T[k, n], with
// W (row-major [rows, k]) read as the column-major [k, rows] matrix, transposed.
int BlasMatMulF32(void* handle, int64_t rows, int64_t n, int64_t k, const float* w,
                  const float* x, float* y) {
  const float one = 1.0f, zero = 0.0f;
  return cublasSgemm(static_cast<cublasHandle_t>(handle), CUBLAS_OP_T, CUBLAS_OP_N, rows, n, k,
                     &one, w, k, x, k, &zero, y, rows);
}

int BlasMatMulHalf(void* handle, HalfKind kind, int64_t rows, int64_t n, int64_t k,
                   const void* w, const void* x, float* y) {
  const float one = 1.0f, zero = 0.0f;
  const cudaDataType_t dt = kind == HalfKind::kF16 ? CUDA_R_16F : CUDA_R_16BF;
  return cublasGemmEx(static_cast<cublasHandle_t>(handle), CUBLAS_OP_T, CUBLAS_OP_N, rows, n, k,
                      &one, w, dt, k, x, dt, k, &zero, y, CUDA_R_32F, rows, CUBLAS_COMPUTE_32F,
                      CUBLAS_GEMM_DEFAULT);
}

}  // namespace tessera::engine::cuda
