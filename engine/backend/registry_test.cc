#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "engine/backend/backend.h"
#include "gtest/gtest.h"

namespace tessera::engine {
namespace {

TEST(RegistryTest, CpuDevices) {
  // "auto" picks CUDA on a GPU machine; TESSERA_DEVICE=cpu keeps it on the CPU everywhere.
  setenv("TESSERA_DEVICE", "cpu", 1);
  for (const char* device : {"", "auto", "cpu"}) {
    absl::StatusOr<std::unique_ptr<Backend>> b = CreateBackend(device, 2);
    ASSERT_TRUE(b.ok()) << device << ": " << b.status();
    EXPECT_TRUE(absl::StartsWith((*b)->name(), "cpu-")) << (*b)->name();
    EXPECT_TRUE(absl::EndsWith((*b)->name(), "(2 threads)")) << (*b)->name();
  }
  unsetenv("TESSERA_DEVICE");
}

TEST(RegistryTest, CudaOnlyWhereThereIsADevice) {
  // Either a CUDA backend (a GPU machine with a CUDA build) or a clear FAILED_PRECONDITION.
  for (const char* device : {"cuda", "cuda:0"}) {
    absl::StatusOr<std::unique_ptr<Backend>> b = CreateBackend(device, 1);
    if (b.ok()) {
      EXPECT_TRUE(absl::StartsWith((*b)->name(), "cuda:")) << (*b)->name();
    } else {
      EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition) << b.status();
    }
  }
  EXPECT_EQ(CreateBackend("cuda:x", 1).status().code(), absl::StatusCode::kInvalidArgument);
  // Without a device, "auto" is the CPU; insisting on CUDA fails plainly.
  setenv("TESSERA_DEVICE", "cuda", 1);
  absl::StatusOr<std::unique_ptr<Backend>> forced = CreateBackend("auto", 1);
  unsetenv("TESSERA_DEVICE");
  if (!forced.ok()) {
    EXPECT_EQ(forced.status().code(), absl::StatusCode::kFailedPrecondition);
    absl::StatusOr<std::unique_ptr<Backend>> fallback = CreateBackend("auto", 1);
    ASSERT_TRUE(fallback.ok());
    EXPECT_TRUE(absl::StartsWith((*fallback)->name(), "cpu-"));
  }
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
