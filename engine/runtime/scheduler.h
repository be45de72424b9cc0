// Continuous batching for generation. Requests join the running batch at every step; each step
// runs one forward pass over one new token of every decoding sequence plus chunks of prompts
// still being read (chunked prefill), within a token budget. The KV cache is paged: a request is
// admitted when enough free blocks exist for its whole length (prompt + max tokens, up to the
// context), so admitted requests never stall or get preempted; the rest wait in a bounded queue
// and Submit answers RESOURCE_EXHAUSTED when it is full. One thread runs the steps; callbacks
// run on it and must not block.
#ifndef TESSERA_ENGINE_RUNTIME_SCHEDULER_H_
#define TESSERA_ENGINE_RUNTIME_SCHEDULER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/backend/backend.h"
#include "engine/model/llama.h"
#include "engine/runtime/sampler.h"

namespace tessera::engine {

enum class StopReason {
  kEos,        // the model produced one of the stop tokens (not reported through on_token)
  kLength,     // max_tokens or the end of the context
  kCallback,   // on_token returned false (a stop string, for example)
  kCancelled,  // Cancel() or scheduler shutdown
  kError,      // the forward pass failed; the status says why
};

struct GenerationRequest {
  std::vector<int32_t> prompt;  // at least one token, shorter than the context
  SamplingOptions sampling;
  int max_tokens = 0;  // 0: up to the end of the context
  absl::flat_hash_set<int32_t> stop_tokens;
  // Each generated token, in order; return false to end generation (kCallback).
  std::function<bool(int32_t token)> on_token;
  // Exactly once, last. `generated` counts the tokens passed to on_token.
  std::function<void(StopReason reason, const absl::Status& status, int generated)> on_done;
};

// Lets the submitter cancel a request (for example when its client goes away).
class GenerationHandle {
 public:
  void Cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

 private:
  std::atomic<bool> cancelled_{false};
};

struct SchedulerOptions {
  int block_size = 16;
  int num_blocks = 0;           // 0: enough for max_running sequences of a full context
  int max_running = 64;         // sequences in the batch at once
  int max_queued = 256;         // waiting requests beyond which Submit fails
  int step_token_budget = 512;  // tokens per forward pass (decode tokens first, then prefill)
};

struct SchedulerStats {
  int running = 0;
  int waiting = 0;
  int free_blocks = 0;
  int total_blocks = 0;
  int64_t steps = 0;
  int64_t tokens_generated = 0;
};

class Scheduler {
 public:
  // `model` must outlive the scheduler.
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(LlamaModel* model,
                                                           const SchedulerOptions& options);
  ~Scheduler();  // cancels every request (on_done kCancelled) and joins the thread

  // Queues a request. INVALID_ARGUMENT for an empty or too long prompt or bad sampling options,
  // RESOURCE_EXHAUSTED when the queue is full or the request could never fit in the cache.
  absl::StatusOr<std::shared_ptr<GenerationHandle>> Submit(GenerationRequest request);

  SchedulerStats stats() const;
  const LlamaModel& model() const { return *model_; }

 private:
  struct Sequence;

  Scheduler(LlamaModel* model, const SchedulerOptions& options, std::unique_ptr<KvCache> cache);
  void Loop();
  // Runs one step over `running_`; returns false when there was nothing to do.
  void Step(std::vector<std::unique_ptr<Sequence>>& running);
  int BlocksFor(int length) const;
  // Reports the end of `seq`, returns its blocks and resets it to nullptr.
  void Finish(std::unique_ptr<Sequence>& seq, StopReason reason, const absl::Status& status);

  LlamaModel* model_;
  SchedulerOptions options_;
  std::unique_ptr<KvCache> cache_;

  mutable absl::Mutex mu_;
  std::deque<std::unique_ptr<Sequence>> waiting_ ABSL_GUARDED_BY(mu_);
  std::vector<int32_t> free_blocks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int running_count_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t steps_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t tokens_generated_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_RUNTIME_SCHEDULER_H_
