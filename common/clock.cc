#include "common/clock.h"

#include <cstdlib>

namespace tessera {
namespace {

class RealClockImpl : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
  void SleepFor(absl::Duration d) override { absl::SleepFor(d); }
};

}  // namespace

Clock* RealClock() {
  static Clock* clock = new RealClockImpl();
  return clock;
}

SimulatedClock::SimulatedClock(Options options)
    : auto_advance_(options.auto_advance), now_(options.start) {}

absl::Time SimulatedClock::Now() {
  absl::MutexLock lock(&mu_);
  return now_;
}

void SimulatedClock::SleepFor(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  slept_ += d;
  if (d <= absl::ZeroDuration()) return;
  const absl::Time deadline = now_ + d;
  if (auto_advance_) {
    now_ = deadline;
    return;
  }
  ++sleepers_;
  auto reached = [this, deadline]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return now_ >= deadline;
  };
  mu_.Await(absl::Condition(&reached));
  --sleepers_;
}

void SimulatedClock::Advance(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  now_ += d;
}

void SimulatedClock::SetTime(absl::Time t) {
  absl::MutexLock lock(&mu_);
  if (t < now_) std::abort();  // time never goes backwards
  now_ = t;
}

absl::Duration SimulatedClock::TotalSlept() {
  absl::MutexLock lock(&mu_);
  return slept_;
}

int SimulatedClock::Sleepers() {
  absl::MutexLock lock(&mu_);
  return sleepers_;
}

bool SimulatedClock::AwaitSleepers(int n, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return sleepers_ >= n; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

}  // namespace tessera
