#include "common/clock.h"

#include <thread>

#include "gtest/gtest.h"

namespace tessera {
namespace {

TEST(RealClockTest, MovesForward) {
  absl::Time a = RealClock()->Now();
  RealClock()->SleepFor(absl::Milliseconds(2));
  EXPECT_GE(RealClock()->Now() - a, absl::Milliseconds(2));
}

TEST(SimulatedClockTest, AutoAdvanceRecordsSleeps) {
  SimulatedClock clock({.auto_advance = true});
  absl::Time start = clock.Now();
  clock.SleepFor(absl::Seconds(30));
  clock.SleepFor(absl::Minutes(2));
  EXPECT_EQ(clock.Now() - start, absl::Seconds(150));
  EXPECT_EQ(clock.TotalSlept(), absl::Seconds(150));
}

TEST(SimulatedClockTest, SleeperWakesOnlyWhenAdvancedPastDeadline) {
  SimulatedClock clock;
  std::atomic<bool> woke{false};
  std::thread sleeper([&] {
    clock.SleepFor(absl::Seconds(10));
    woke = true;
  });
  ASSERT_TRUE(clock.AwaitSleepers(1));
  clock.Advance(absl::Seconds(9));
  absl::SleepFor(absl::Milliseconds(20));  // real time: give it a chance to (wrongly) wake
  EXPECT_FALSE(woke.load());
  EXPECT_EQ(clock.Sleepers(), 1);
  clock.Advance(absl::Seconds(1));
  sleeper.join();
  EXPECT_TRUE(woke.load());
  EXPECT_EQ(clock.Sleepers(), 0);
}

TEST(SimulatedClockTest, SetTimeAndZeroSleep) {
  SimulatedClock clock;
  absl::Time t = clock.Now() + absl::Hours(1);
  clock.SetTime(t);
  EXPECT_EQ(clock.Now(), t);
  clock.SleepFor(absl::ZeroDuration());  // returns at once
  EXPECT_EQ(clock.Now(), t);
}

}  // namespace
}  // namespace tessera
