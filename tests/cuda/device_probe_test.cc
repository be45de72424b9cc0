// End-to-end check of the CUDA build plumbing (//bazel:cuda.bzl): the nvcc-built kernels in
// device_probe.cu run on the GPU and match a CPU reference. Tagged requires-gpu; without a
// device (or driver) every GPU test calls GTEST_SKIP(), so the target passes on CPU-only hosts.
#include "tests/cuda/device_probe.h"

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace tessera::cuda_probe {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Sizes: one element, a partial last block, and more elements than one grid covers
// (the kernels cap the grid at 4096 blocks of 256 and stride over the rest).
const std::vector<std::int64_t> kSizes = {1, 257, (1 << 21) + 3};

// Tolerance. The reference is computed in double from the exact inputs. The device computes
// a*x + y in fp32 (one FMA or a rounded multiply then a rounded add), whose error is at most
// FLT_EPSILON * (|a*x| + |y|); we allow twice that.
double Tolerance(double ax, double y) { return 2.0 * FLT_EPSILON * (std::fabs(ax) + std::fabs(y)); }

float DecodeBf16(std::uint16_t bits) {
  const std::uint32_t wide = static_cast<std::uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, sizeof(f));
  return f;
}

float DecodeFp16(std::uint16_t bits) {
  const int sign = bits >> 15;
  const int exponent = (bits >> 10) & 0x1f;
  const int mantissa = bits & 0x3ff;
  float magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);  // zero / subnormal
  } else {
    EXPECT_NE(exponent, 0x1f) << "test inputs must be finite";
    magnitude = std::ldexp(1.0f + mantissa / 1024.0f, exponent - 15);
  }
  return sign ? -magnitude : magnitude;
}

// Random finite 16-bit values with magnitudes within about 2^-10 .. 2^10, plus zeros and
// (for fp16) subnormals in the first elements.
std::vector<std::uint16_t> RandomHalfBits(HalfFormat format, std::int64_t n, std::mt19937& rng) {
  std::vector<std::uint16_t> v(n);
  std::uniform_int_distribution<int> sign(0, 1);
  for (auto& bits : v) {
    if (format == HalfFormat::kBf16) {
      const int exponent = std::uniform_int_distribution<int>(127 - 10, 127 + 10)(rng);
      const int mantissa = std::uniform_int_distribution<int>(0, 0x7f)(rng);
      bits = static_cast<std::uint16_t>((sign(rng) << 15) | (exponent << 7) | mantissa);
    } else {
      const int exponent = std::uniform_int_distribution<int>(15 - 10, 15 + 10)(rng);
      const int mantissa = std::uniform_int_distribution<int>(0, 0x3ff)(rng);
      bits = static_cast<std::uint16_t>((sign(rng) << 15) | (exponent << 10) | mantissa);
    }
  }
  const std::uint16_t specials[] = {0x0000, 0x8000, 0x0001, 0x83ff};  // +-0, fp16 subnormals
  const int num_specials = format == HalfFormat::kFp16 ? 4 : 2;
  for (int i = 0; i < num_specials && i < n; ++i) v[i] = specials[i];
  return v;
}

std::vector<float> RandomFloats(std::int64_t n, std::mt19937& rng) {
  std::vector<float> v(n);
  std::uniform_real_distribution<float> dist(-100.0f, 100.0f);
  for (auto& f : v) f = dist(rng);
  return v;
}

// Compares out[i] with a*x[i] + y[i]; NaN means the kernel never wrote the element.
void ExpectAxpy(float a, const std::vector<float>& x, const std::vector<float>& y,
                const std::vector<float>& out, const std::string& what) {
  ASSERT_EQ(out.size(), x.size());
  int failures = 0;
  for (size_t i = 0; i < out.size() && failures < 10; ++i) {
    const double ax = static_cast<double>(a) * x[i];
    const double want = ax + y[i];
    if (std::isnan(out[i])) {
      ADD_FAILURE() << what << ": element " << i << " of " << out.size()
                    << " was not written (still the NaN poison)";
      ++failures;
    } else if (std::fabs(out[i] - want) > Tolerance(ax, y[i])) {
      ADD_FAILURE() << what << ": element " << i << ": got " << out[i] << ", want " << want
                    << " (a=" << a << ", x=" << x[i] << ", y=" << y[i]
                    << ", tolerance=" << Tolerance(ax, y[i]) << ")";
      ++failures;
    }
  }
}

// Needs no device: arguments are checked before any CUDA call.
TEST(DeviceProbeNoGpuTest, RejectsInvalidArgumentsWithoutTouchingTheDevice) {
  float x = 1, y = 2, out = kNaN;
  EXPECT_NE(AxpyF32(1.0f, &x, &y, &out, -1), 0);
  EXPECT_NE(AxpyF32(1.0f, nullptr, &y, &out, 1), 0);
  EXPECT_NE(AxpyHalfToF32(HalfFormat::kBf16, 1.0f, nullptr, nullptr, &out, 1), 0);
  EXPECT_EQ(AxpyF32(1.0f, nullptr, nullptr, nullptr, 0), 0);  // empty is fine
  EXPECT_TRUE(std::isnan(out));
  EXPECT_NE(GetDeviceCount(nullptr), 0);
  EXPECT_NE(QueryDevice(0, nullptr), 0);
  EXPECT_NE(ProbeErrorString(1), nullptr);
}

class DeviceProbeGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int count = 0;
    const int rc = GetDeviceCount(&count);
    if (rc != 0 || count == 0) {
      GTEST_SKIP() << "No CUDA device available (cudaGetDeviceCount: " << rc << " "
                   << ProbeErrorString(rc) << ", count " << count << "); skipping GPU test.";
    }
    const int query = QueryDevice(0, &info_);
    ASSERT_EQ(query, 0) << "QueryDevice(0): " << ProbeErrorString(query);
    if (info_.compute_major < 9) {
      GTEST_SKIP() << info_.name << " has compute capability " << info_.compute_major << "."
                   << info_.compute_minor
                   << "; this build carries only sm_90 code and compute_90 PTX (//bazel:cuda.bzl)."
                   << " Skipping GPU test.";
    }
  }

  DeviceInfo info_;
};

TEST_F(DeviceProbeGpuTest, ReportsDevice) {
  EXPECT_GE(info_.device_count, 1);
  EXPECT_GT(std::strlen(info_.name), 0u);
  EXPECT_GT(info_.multiprocessor_count, 0);
  EXPECT_GT(info_.total_memory_bytes, 0u);
  EXPECT_LE(info_.free_memory_bytes, info_.total_memory_bytes);
  EXPECT_GT(info_.runtime_version, 0);
  EXPECT_GE(info_.driver_version, info_.runtime_version) << "driver older than cudart";
  std::printf(
      "device 0 of %d: %s, compute %d.%d, %d SMs, %.1f GiB (%.1f GiB free), driver %d, "
      "runtime %d\n",
      info_.device_count, info_.name, info_.compute_major, info_.compute_minor,
      info_.multiprocessor_count, info_.total_memory_bytes / 1073741824.0,
      info_.free_memory_bytes / 1073741824.0, info_.driver_version, info_.runtime_version);
}

TEST_F(DeviceProbeGpuTest, AxpyF32MatchesCpu) {
  std::mt19937 rng(42);
  for (const std::int64_t n : kSizes) {
    const float a = 1.75f;
    const std::vector<float> x = RandomFloats(n, rng), y = RandomFloats(n, rng);
    std::vector<float> out(n, kNaN);
    const int rc = AxpyF32(a, x.data(), y.data(), out.data(), n);
    ASSERT_EQ(rc, 0) << "AxpyF32(n=" << n << "): " << ProbeErrorString(rc);
    ExpectAxpy(a, x, y, out, "fp32 n=" + std::to_string(n));
  }
}

TEST_F(DeviceProbeGpuTest, AxpyHalfToF32MatchesCpu) {
  std::mt19937 rng(7);
  for (const HalfFormat format : {HalfFormat::kBf16, HalfFormat::kFp16}) {
    const bool bf16 = format == HalfFormat::kBf16;
    for (const std::int64_t n : kSizes) {
      const float a = -0.625f;
      const std::vector<std::uint16_t> x = RandomHalfBits(format, n, rng);
      const std::vector<std::uint16_t> y = RandomHalfBits(format, n, rng);
      std::vector<float> xf(n), yf(n);
      for (std::int64_t i = 0; i < n; ++i) {
        xf[i] = bf16 ? DecodeBf16(x[i]) : DecodeFp16(x[i]);
        yf[i] = bf16 ? DecodeBf16(y[i]) : DecodeFp16(y[i]);
      }
      std::vector<float> out(n, kNaN);
      const int rc = AxpyHalfToF32(format, a, x.data(), y.data(), out.data(), n);
      const std::string what = std::string(bf16 ? "bf16" : "fp16") + " n=" + std::to_string(n);
      ASSERT_EQ(rc, 0) << what << ": " << ProbeErrorString(rc);
      ExpectAxpy(a, xf, yf, out, what);
    }
  }
}

}  // namespace
}  // namespace tessera::cuda_probe
