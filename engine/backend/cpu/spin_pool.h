// SpinPool: the fork-join thread pool of the CPU backend's kernels. One call
// runs tasks 0..n-1 on the calling thread and the workers and returns when all
// are done. A decode step issues hundreds of small parallel ops, so the latency
// of waking workers matters more than throughput: idle workers spin (with
// pause) for a short while after each op, then sleep on a futex
// (std::atomic::wait), and the caller spins for completion.
//
// Tasks are handed out dynamically, so which thread runs a task varies; kernels
// keep results deterministic by making each output depend only on its task,
// never on the thread.
//
// Thread-safe: concurrent Run() calls (two models sharing the backend, an
// embedding batch beside a decode step) take turns; Run() must not be called
// from inside a task.
#ifndef TESSERA_ENGINE_BACKEND_CPU_SPIN_POOL_H_
#define TESSERA_ENGINE_BACKEND_CPU_SPIN_POOL_H_

#include <atomic>
#include <mutex>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"

namespace tessera::engine::cpu {

class SpinPool {
 public:
  // num_threads counts the caller: num_threads - 1 workers are started (none
  // for 1).
  explicit SpinPool(int num_threads);
  ~SpinPool();
  SpinPool(const SpinPool&) = delete;
  SpinPool& operator=(const SpinPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn(task) for every task in [0, num_tasks); returns when all have
  // finished.
  void Run(int64_t num_tasks, absl::FunctionRef<void(int64_t)> fn);

 private:
  void WorkerLoop();
  void DoTasks();

  std::vector<std::thread> workers_;
  std::mutex run_mu_;  // one job at a time
  std::atomic<uint64_t> generation_{0};  // bumped to start a job (or to stop)
  std::atomic<int64_t> next_task_{0};
  std::atomic<int> pending_workers_{0};  // workers not yet done with the current job
  std::atomic<bool> stop_{false};
  // The current job; written by Run before the generation bump (release), read
  // by workers after they observe it (acquire).
  int64_t num_tasks_ = 0;
  const absl::FunctionRef<void(int64_t)>* fn_ = nullptr;
};

}  // namespace tessera::engine::cpu

#endif  // TESSERA_ENGINE_BACKEND_CPU_SPIN_POOL_H_
