// Cancellation: one run's "stop now" flag, shared by the agent loop, its model call and its tool
// calls. Cancel() may come from any thread (the client went away, the server shuts down); blocking
// work registers a callback that interrupts it (a gRPC context's TryCancel, an MCP token).
#ifndef TESSERA_AGENTS_ORCHESTRATOR_CANCELLATION_H_
#define TESSERA_AGENTS_ORCHESTRATOR_CANCELLATION_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace tessera::agents {

// Thread-safe. Callbacks run once, on the thread that calls Cancel() (or at once, on the
// registering thread, when already cancelled); they must not block.
class Cancellation {
 public:
  void Cancel() {
    std::map<int64_t, std::function<void()>> callbacks;
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_.exchange(true)) return;
      callbacks.swap(callbacks_);
    }
    for (auto& [id, fn] : callbacks) fn();
  }
  [[nodiscard]] bool cancelled() const { return cancelled_.load(); }

  // Returns an id for RemoveCallback.
  int64_t AddCallback(std::function<void()> fn) {
    {
      absl::MutexLock lock(&mu_);
      if (!cancelled_.load()) {
        callbacks_.emplace(next_id_, std::move(fn));
        return next_id_++;
      }
    }
    fn();
    return -1;
  }
  void RemoveCallback(int64_t id) {
    absl::MutexLock lock(&mu_);
    callbacks_.erase(id);
  }

 private:
  std::atomic<bool> cancelled_{false};
  absl::Mutex mu_;
  std::map<int64_t, std::function<void()>> callbacks_ ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
};

// Registers a callback for the scope of a blocking call.
class ScopedCancelCallback {
 public:
  ScopedCancelCallback(Cancellation& c, std::function<void()> fn) : c_(c), id_(c.AddCallback(std::move(fn))) {}
  ~ScopedCancelCallback() {
    if (id_ >= 0) c_.RemoveCallback(id_);
  }
  ScopedCancelCallback(const ScopedCancelCallback&) = delete;
  ScopedCancelCallback& operator=(const ScopedCancelCallback&) = delete;

 private:
  Cancellation& c_;
  int64_t id_;
};

}  // namespace tessera::agents

#endif  // TESSERA_AGENTS_ORCHESTRATOR_CANCELLATION_H_
