#include "connectors/testing/fault_injector.h"

#include "common/clock.h"
#include "gtest/gtest.h"

namespace tessera::connectors::testing {
namespace {

enum class Kind { kA, kB };

TEST(FaultInjectorTest, FirstMatchingFaultWithRequestsLeftIsTaken) {
  FaultInjector<Kind> faults;
  EXPECT_EQ(faults.Take("/v1/x"), std::nullopt);
  faults.Inject("/v1/changes", Kind::kA, 2);
  faults.Inject("/v1", Kind::kB);
  EXPECT_EQ(faults.Take("/v1/changes/startPageToken"), Kind::kA);
  EXPECT_EQ(faults.Take("/v1/files"), Kind::kB);
  EXPECT_EQ(faults.Take("/v1/files"), std::nullopt);
  EXPECT_EQ(faults.Take("/v1/changes"), Kind::kA);
  EXPECT_EQ(faults.Take("/v1/changes"), std::nullopt);
}

TEST(FaultInjectorTest, ClearDropsUnusedFaults) {
  FaultInjector<Kind> faults;
  faults.Inject("/", Kind::kA, 5);
  faults.Clear();
  EXPECT_EQ(faults.Take("/x"), std::nullopt);
}

TEST(RetryAfterTest, SecondsAndHttpDate) {
  SimulatedClock clock(SimulatedClock::Options{.start = absl::FromUnixSeconds(784111777)});
  FakeHttpResponse seconds;
  AddRetryAfter(RetryAfterForm::kSeconds, absl::Seconds(2), clock, seconds);
  EXPECT_EQ(seconds.headers.Get("Retry-After"), "2");
  FakeHttpResponse date;
  AddRetryAfter(RetryAfterForm::kHttpDate, absl::Seconds(2), clock, date);
  EXPECT_EQ(date.headers.Get("Retry-After"), "Sun, 06 Nov 1994 08:49:39 GMT");
}

}  // namespace
}  // namespace tessera::connectors::testing
