#include "common/thread_pool.h"

#include <pthread.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace tessera {

ThreadPool::ThreadPool(Options options) : max_queue_(options.max_queue) {
  if (options.num_threads < 1) std::abort();  // programming error
  workers_.reserve(static_cast<size_t>(options.num_threads));
  for (int i = 0; i < options.num_threads; ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
    std::string name = absl::StrCat(options.name.substr(0, 10), "-", i);
    pthread_setname_np(workers_.back().native_handle(), name.c_str());
  }
}

ThreadPool::~ThreadPool() { Shutdown(); }

absl::Status ThreadPool::Schedule(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::FailedPreconditionError("thread pool is shut down");
  if (max_queue_ > 0 && queue_.size() >= max_queue_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("thread pool queue is full (", max_queue_, " waiting)"));
  }
  queue_.push_back(std::move(fn));
  return absl::OkStatus();
}

void ThreadPool::WaitIdle() {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return queue_.empty() && active_ == 0; };
  mu_.Await(absl::Condition(&idle));
}

void ThreadPool::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
  }
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
  workers_.clear();
}

void ThreadPool::WorkerLoop() {
  while (true) {
    std::function<void()> fn;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping and drained
      fn = std::move(queue_.front());
      queue_.pop_front();
      ++active_;
    }
    fn();
    absl::MutexLock lock(&mu_);
    --active_;
  }
}

}  // namespace tessera
