// CreateBackend: maps a device name to a backend implementation. This is the
// one place that knows which backends are built in, and holds the project's only
// #ifdef for CUDA: TESSERA_WITH_CUDA is defined (BUILD.bazel) when Bazel found nvcc
// and engine/backend/cuda is linked in.
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "engine/backend/backend.h"
#include "engine/backend/cpu/cpu_backend.h"
#ifdef TESSERA_WITH_CUDA
#include "engine/backend/cuda/cuda_backend.h"
#endif

namespace tessera::engine {
namespace {

// "cuda" or "cuda:N". FAILED_PRECONDITION when this build has no CUDA backend or the machine
// has no usable device.
absl::StatusOr<std::unique_ptr<Backend>> CreateCuda(std::string_view device) {
  int ordinal = 0;
  if (device.size() > 5) {
    const std::string_view digits = device.substr(5);
    if (digits.size() > 4 || digits.find_first_not_of("0123456789") != std::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("bad CUDA device \"", std::string(device),
                                                     "\" (expected cuda or cuda:N)"));
    }
    ordinal = std::stoi(std::string(digits));
  }
#ifdef TESSERA_WITH_CUDA
  cuda::CudaBackendOptions options;
  options.device = ordinal;
  return cuda::CreateCudaBackend(options);
#else
  (void)ordinal;
  return absl::FailedPreconditionError(
      "this build has no CUDA backend (it was built without the CUDA toolkit, or with "
      "BAZEL_NO_CUDA=1); use device \"cpu\" or \"auto\"");
#endif
}

// Whether "auto" should pick CUDA: built in and at least one device present.
bool CudaPresent() {
#ifdef TESSERA_WITH_CUDA
  return cuda::CudaDeviceCount() > 0;
#else
  return false;
#endif
}

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(std::string_view device, int num_threads) {
  if (num_threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_threads must be >= 0 (0: all cores), got ", num_threads));
  }
  cpu::CpuBackendOptions cpu_options;
  cpu_options.num_threads = num_threads;
  if (device.empty() || device == "auto") {
    // Auto: CUDA when built in and present, unless TESSERA_DEVICE=cpu;
    // TESSERA_DEVICE=cuda insists on CUDA (and fails without it). A device this
    // build cannot use (older than sm_90) falls back to the CPU.
    const char* forced = std::getenv("TESSERA_DEVICE");
    const std::string_view force = forced != nullptr ? forced : "";
    if (force == "cuda") return CreateCuda("cuda");
    if (force != "cpu" && CudaPresent()) {
      absl::StatusOr<std::unique_ptr<Backend>> cuda = CreateCuda("cuda");
      if (cuda.ok() || cuda.status().code() != absl::StatusCode::kFailedPrecondition) return cuda;
    }
    return cpu::CreateCpuBackend(cpu_options);
  }
  if (device == "cpu") return cpu::CreateCpuBackend(cpu_options);
  if (device == "cuda" || device.substr(0, 5) == "cuda:") return CreateCuda(device);
  return absl::InvalidArgumentError(absl::StrCat("unknown compute device \"", std::string(device),
                                                 "\" (expected auto, cpu or cuda)"));
}

}  // namespace tessera::engine
