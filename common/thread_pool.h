// ThreadPool: a fixed set of worker threads running queued closures in FIFO
// order. Used for blocking work (parsing, SQLite, fan-out of connector pages)
// that must not run on gRPC reactor threads.
//
// Thread-safe. The destructor stops accepting work, runs what is queued, and
// joins the workers. Closures must not throw.
#ifndef TESSERA_COMMON_THREAD_POOL_H_
#define TESSERA_COMMON_THREAD_POOL_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace tessera {

class ThreadPool {
 public:
  struct Options {
    int num_threads = 4;  // must be >= 1
    // Schedule() fails with RESOURCE_EXHAUSTED when this many closures are
    // waiting (backpressure instead of unbounded memory). 0 = unbounded.
    size_t max_queue = 0;
    std::string name = "pool";  // used in thread names for debuggers
  };
  explicit ThreadPool(Options options);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues `fn`. FAILED_PRECONDITION after Shutdown(); RESOURCE_EXHAUSTED when
  // the queue is full.
  [[nodiscard]] absl::Status Schedule(std::function<void()> fn);

  // Queues `fn` and returns a future for its result. If the closure cannot be
  // queued, the returned status says why.
  template <typename F>
  [[nodiscard]] absl::Status Submit(F fn, std::future<std::invoke_result_t<F>>* out) {
    using R = std::invoke_result_t<F>;
    auto task = std::make_shared<std::packaged_task<R()>>(std::move(fn));
    *out = task->get_future();
    return Schedule([task] { (*task)(); });
  }

  // Blocks until the queue is empty and no worker is running a closure.
  void WaitIdle();
  // Stops accepting work, drains the queue, joins the workers. Idempotent.
  void Shutdown();

  int num_threads() const { return static_cast<int>(workers_.size()); }

 private:
  void WorkerLoop();

  const size_t max_queue_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  int active_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace tessera

#endif  // TESSERA_COMMON_THREAD_POOL_H_
