#include "engine/backend/cpu/spin_pool.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace tessera::engine::cpu {
namespace {

TEST(SpinPoolTest, RunsEveryTaskExactlyOnce) {
  for (int threads : {1, 2, 3, 5}) {
    SpinPool pool(threads);
    EXPECT_EQ(pool.num_threads(), threads);
    for (int64_t n : {0, 1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> hits(n);
      pool.Run(n, [&](int64_t t) { hits[t].fetch_add(1); });
      for (int64_t t = 0; t < n; ++t)
        EXPECT_EQ(hits[t].load(), 1) << threads << " " << n << " " << t;
    }
  }
}

TEST(SpinPoolTest, ManyBackToBackJobsWithSleepingWorkers) {
  SpinPool pool(3);
  std::atomic<int64_t> total{0};
  for (int job = 0; job < 2000; ++job) {
    pool.Run(4, [&](int64_t t) { total.fetch_add(t + 1); });
    if (job % 500 == 0) {
      // Let the workers go past their spin phase and sleep.
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  EXPECT_EQ(total.load(), 2000 * 10);
}

TEST(SpinPoolTest, DestroyWhileIdle) {
  for (int i = 0; i < 20; ++i) {
    SpinPool pool(2);
    pool.Run(2, [](int64_t) {});
  }
}

}  // namespace
}  // namespace tessera::engine::cpu
