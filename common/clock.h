// Clock: the injected source of time. Business logic never calls absl::Now()
// or sleeps directly; it asks a Clock, so tests can drive time with
// SimulatedClock (backoff, schedules, token expiry) without real waiting.
#ifndef TESSERA_COMMON_CLOCK_H_
#define TESSERA_COMMON_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tessera {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
  // Blocks the calling thread for `d` of this clock's time.
  virtual void SleepFor(absl::Duration d) = 0;
};

// The process-wide wall clock. Never null, never deleted. Thread-safe.
Clock* RealClock();

// A clock that moves only when told. Thread-safe.
//  - Advance(d) moves time forward and wakes sleepers whose deadline passed.
//  - SleepFor(d) blocks until another thread advances past the deadline, or,
//    with auto_advance, moves time forward itself and returns at once (handy
//    for single-threaded retry tests: the "sleeps" are recorded, not waited).
class SimulatedClock : public Clock {
 public:
  struct Options {
    absl::Time start = absl::FromUnixSeconds(1'700'000'000);  // 2023-11-14T22:13:20Z
    bool auto_advance = false;
  };
  SimulatedClock() : SimulatedClock(Options{}) {}
  explicit SimulatedClock(Options options);

  absl::Time Now() override;
  void SleepFor(absl::Duration d) override;

  void Advance(absl::Duration d);
  void SetTime(absl::Time t);  // CHECK-fails if t is before Now().
  // Total time requested through SleepFor so far.
  absl::Duration TotalSlept();
  // Number of threads currently blocked in SleepFor.
  int Sleepers();
  // Blocks (in real time, up to `timeout`) until `n` threads are in SleepFor.
  bool AwaitSleepers(int n, absl::Duration timeout = absl::Seconds(10));

 private:
  const bool auto_advance_;
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  absl::Duration slept_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
  int sleepers_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tessera

#endif  // TESSERA_COMMON_CLOCK_H_
