#include "engine/backend/cpu/kernels.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace tessera::engine::cpu {

// Defined by the per-level copies of kernels_impl.cc.
namespace isa_scalar {
const KernelTable& Table();
}
namespace isa_avx2 {
const KernelTable& Table();
}
namespace isa_avx512 {
const KernelTable& Table();
}

std::string_view IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "unknown";
}

bool IsaSupported(Isa isa) {
  __builtin_cpu_init();
  switch (isa) {
    case Isa::kScalar:
      return true;
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c");
    case Isa::kAvx512:
      return IsaSupported(Isa::kAvx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

Isa BestIsa() {
  if (IsaSupported(Isa::kAvx512)) return Isa::kAvx512;
  if (IsaSupported(Isa::kAvx2)) return Isa::kAvx2;
  return Isa::kScalar;
}

std::vector<Isa> SupportedIsas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2, Isa::kScalar}) {
    if (IsaSupported(isa)) out.push_back(isa);
  }
  return out;
}

absl::StatusOr<Isa> ParseIsa(std::string_view name) {
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2, Isa::kScalar}) {
    if (name == IsaName(isa)) return isa;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown CPU ISA level \"", std::string(name),
                                                 "\" (expected avx512, avx2 or scalar)"));
}

XFormat MatMulXFormat(DType type) {
  switch (type) {
    case DType::kQ8_0:
    case DType::kQ4_0:
      return XFormat::kQ8;
    case DType::kQ4_K:
      return XFormat::kQ8K;
    default:
      return XFormat::kF32;
  }
}

size_t XRowBytes(XFormat format, int64_t k) {
  switch (format) {
    case XFormat::kF32:
      return static_cast<size_t>(k) * sizeof(float);
    case XFormat::kQ8:
      return static_cast<size_t>(k) + static_cast<size_t>(k / 32) * 8;
    case XFormat::kQ8K:
      return static_cast<size_t>(k / 256) * sizeof(BlockQ8KX);
  }
  return 0;
}

const KernelTable& GetKernelTable(Isa isa) {
  if (!IsaSupported(isa)) {
    std::fprintf(stderr, "GetKernelTable: this CPU cannot run %s kernels\n",
                 std::string(IsaName(isa)).c_str());
    std::abort();
  }
  switch (isa) {
    case Isa::kAvx512:
      return isa_avx512::Table();
    case Isa::kAvx2:
      return isa_avx2::Table();
    case Isa::kScalar:
      break;
  }
  return isa_scalar::Table();
}

}  // namespace tessera::engine::cpu
