// CreateBackend: maps a device name to a backend implementation. This is the
// one place that knows which backends are built in; the CUDA backend plugs in
// at the marked spot.
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "engine/backend/backend.h"
#include "engine/backend/cpu/cpu_backend.h"

namespace tessera::engine {
namespace {

absl::StatusOr<std::unique_ptr<Backend>> CreateCuda(int num_threads) {
  // TODO(cuda backend): when engine/backend/cuda is built in
  // (TESSERA_WITH_CUDA, the only #ifdef for CUDA), create it here and return
  // UNAVAILABLE when no device is present.
  return absl::FailedPreconditionError("this build has no CUDA backend");
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
    // Auto: CUDA when built in and present, unless TESSERA_DEVICE=cpu. This
    // build has no CUDA, so auto is the CPU.
    const char* forced = std::getenv("TESSERA_DEVICE");
    if (forced != nullptr && std::string_view(forced) == "cuda") return CreateCuda(num_threads);
    return cpu::CreateCpuBackend(cpu_options);
  }
  if (device == "cpu") return cpu::CreateCpuBackend(cpu_options);
  if (device == "cuda" || device.substr(0, 5) == "cuda:") return CreateCuda(num_threads);
  return absl::InvalidArgumentError(absl::StrCat("unknown compute device \"", std::string(device),
                                                 "\" (expected auto, cpu or cuda)"));
}

}  // namespace tessera::engine
