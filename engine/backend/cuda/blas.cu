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

int BlasAttentionScores(void* handle, int64_t t_q, int64_t t_k, int64_t hd, int64_t batch,
                        float scale, const void* q, int64_t ldq, const void* k, int64_t ldk,
                        float* s) {
  // Column-major: S^T [t_k, t_q] = K [t_k, hd] (stored [hd, t_k], ld ldk, transposed) times
  // Q^T [hd, t_q] (stored [hd, t_q], ld ldq); batch b moves Q by hd columns, S by t_q * t_k.
  const float zero = 0.0f;
  return cublasGemmStridedBatchedEx(static_cast<cublasHandle_t>(handle), CUBLAS_OP_T, CUBLAS_OP_N,
                                    t_k, t_q, hd, &scale, k, CUDA_R_16F, ldk, 0, q, CUDA_R_16F,
                                    ldq, hd, &zero, s, CUDA_R_32F, t_k, t_q * t_k, batch,
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

int BlasAttentionValues(void* handle, int64_t t_q, int64_t t_k, int64_t hd, int64_t batch,
                        const void* p, const void* v, int64_t ldv, float* out, int64_t ldo) {
  // Column-major: O^T [hd, t_q] = V^T [hd, t_k] (stored [hd, t_k], ld ldv) times P^T [t_k, t_q]
  // (stored [t_k, t_q], ld t_k); batch b moves P by t_q * t_k, O by hd columns.
  const float one = 1.0f, zero = 0.0f;
  return cublasGemmStridedBatchedEx(static_cast<cublasHandle_t>(handle), CUBLAS_OP_N, CUBLAS_OP_N,
                                    hd, t_q, t_k, &one, v, CUDA_R_16F, ldv, 0, p, CUDA_R_16F, t_k,
                                    t_q * t_k, &zero, out, CUDA_R_32F, ldo, hd, batch,
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

}  // namespace tessera::engine::cuda
