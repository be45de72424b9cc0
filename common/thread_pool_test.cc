#include "common/thread_pool.h"

#include <atomic>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

TEST(ThreadPoolTest, RunsEverythingScheduled) {
  ThreadPool pool({.num_threads = 4});
  std::atomic<int> sum{0};
  for (int i = 1; i <= 1000; ++i) ASSERT_TRUE(pool.Schedule([&sum, i] { sum += i; }).ok());
  pool.WaitIdle();
  EXPECT_EQ(sum.load(), 500500);
}

TEST(ThreadPoolTest, ActuallyRunsInParallel) {
  ThreadPool pool({.num_threads = 3});
  absl::Notification release;
  std::atomic<int> running{0};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(pool.Schedule([&] {
      ++running;
      release.WaitForNotification();
    }).ok());
  }
  while (running.load() < 3) absl::SleepFor(absl::Milliseconds(1));
  release.Notify();
  pool.WaitIdle();
}

TEST(ThreadPoolTest, SubmitReturnsResult) {
  ThreadPool pool({.num_threads = 2});
  std::future<int> f;
  ASSERT_TRUE(pool.Submit([] { return 6 * 7; }, &f).ok());
  EXPECT_EQ(f.get(), 42);
}

TEST(ThreadPoolTest, BoundedQueueRejectsWithResourceExhausted) {
  ThreadPool pool({.num_threads = 1, .max_queue = 2});
  absl::Notification started, release;
  ASSERT_TRUE(pool.Schedule([&] {
    started.Notify();
    release.WaitForNotification();
  }).ok());
  started.WaitForNotification();
  ASSERT_TRUE(pool.Schedule([] {}).ok());
  ASSERT_TRUE(pool.Schedule([] {}).ok());
  EXPECT_EQ(pool.Schedule([] {}).code(), absl::StatusCode::kResourceExhausted);
  release.Notify();
  pool.WaitIdle();
  EXPECT_TRUE(pool.Schedule([] {}).ok());
}

TEST(ThreadPoolTest, ShutdownDrainsQueueThenRefuses) {
  std::atomic<int> done{0};
  ThreadPool pool({.num_threads = 1});
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(pool.Schedule([&] { ++done; }).ok());
  pool.Shutdown();
  EXPECT_EQ(done.load(), 50);
  EXPECT_EQ(pool.Schedule([] {}).code(), absl::StatusCode::kFailedPrecondition);
  pool.Shutdown();  // idempotent
}

}  // namespace
}  // namespace tessera
