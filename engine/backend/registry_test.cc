#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "engine/backend/backend.h"
#include "gtest/gtest.h"

namespace tessera::engine {
namespace {

TEST(RegistryTest, CpuDevices) {
  for (const char* device : {"", "auto", "cpu"}) {
    absl::StatusOr<std::unique_ptr<Backend>> b = CreateBackend(device, 2);
    ASSERT_TRUE(b.ok()) << device << ": " << b.status();
    EXPECT_TRUE(absl::StartsWith((*b)->name(), "cpu-")) << (*b)->name();
    EXPECT_TRUE(absl::EndsWith((*b)->name(), "(2 threads)")) << (*b)->name();
  }
}

TEST(RegistryTest, CudaIsNotBuiltIn) {
  EXPECT_EQ(CreateBackend("cuda", 1).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CreateBackend("cuda:0", 1).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(RegistryTest, UnknownDeviceAndBadThreads) {
  EXPECT_EQ(CreateBackend("tpu", 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateBackend("cpu", -1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RegistryTest, IsaOverrideFromEnvironment) {
  setenv("TESSERA_CPU_ISA", "scalar", 1);
  absl::StatusOr<std::unique_ptr<Backend>> b = CreateBackend("cpu", 1);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->name(), "cpu-scalar (1 thread)");
  setenv("TESSERA_CPU_ISA", "sse9", 1);
  EXPECT_EQ(CreateBackend("cpu", 1).status().code(), absl::StatusCode::kInvalidArgument);
  unsetenv("TESSERA_CPU_ISA");
}

}  // namespace
}  // namespace tessera::engine
