#include "engine/runtime/scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"

namespace tessera::engine {

struct Scheduler::Sequence {
  GenerationRequest request;
  std::shared_ptr<GenerationHandle> handle;
  std::vector<int32_t> tokens;  // prompt, then generated tokens
  int computed = 0;             // tokens whose keys/values are in the cache
  int generated = 0;
  int limit = 0;                // the most tokens this sequence may hold
  std::vector<int32_t> blocks;  // reserved cache blocks, in position order
  Sampler sampler;

  explicit Sequence(GenerationRequest r)
      : request(std::move(r)), handle(std::make_shared<GenerationHandle>()),
        sampler(request.sampling) {}
};

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(LlamaModel* model,
                                                             const SchedulerOptions& options) {
  SchedulerOptions o = options;
  if (o.block_size <= 0 || o.max_running <= 0 || o.max_queued < 0 || o.step_token_budget <= 0) {
    return absl::InvalidArgumentError("scheduler options must be positive");
  }
  const int ctx = model->config().context_length;
  if (o.num_blocks <= 0) {
    o.num_blocks = o.max_running * ((ctx + o.block_size - 1) / o.block_size);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<KvCache> cache, model->NewCache(o.num_blocks, o.block_size));
  return absl::WrapUnique(new Scheduler(model, o, std::move(cache)));
}

Scheduler::Scheduler(LlamaModel* model, const SchedulerOptions& options,
                     std::unique_ptr<KvCache> cache)
    : model_(model), options_(options), cache_(std::move(cache)) {
  {
    absl::MutexLock lock(&mu_);
    free_blocks_.reserve(options_.num_blocks);
    for (int b = options_.num_blocks - 1; b >= 0; --b) free_blocks_.push_back(b);
  }
  thread_ = std::thread([this] { Loop(); });
}

Scheduler::~Scheduler() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

int Scheduler::BlocksFor(int length) const {
  return (length + options_.block_size - 1) / options_.block_size;
}

absl::StatusOr<std::shared_ptr<GenerationHandle>> Scheduler::Submit(GenerationRequest request) {
  const int ctx = model_->config().context_length;
  if (request.prompt.empty()) return absl::InvalidArgumentError("the prompt is empty");
  if (static_cast<int64_t>(request.prompt.size()) >= ctx) {
    return absl::InvalidArgumentError(absl::StrCat("the prompt has ", request.prompt.size(),
                                                   " tokens; the model's context is ", ctx,
                                                   " (prompt and output together)"));
  }
  for (int32_t t : request.prompt) {
    if (t < 0 || t >= model_->config().vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("prompt token ", t, " is outside the vocabulary"));
    }
  }
  if (request.max_tokens < 0) return absl::InvalidArgumentError("max_tokens must be >= 0");
  RETURN_IF_ERROR(ValidateSamplingOptions(request.sampling));
  auto seq = std::make_unique<Sequence>(std::move(request));
  const int64_t prompt_len = static_cast<int64_t>(seq->request.prompt.size());
  seq->limit = seq->request.max_tokens > 0
                   ? static_cast<int>(std::min<int64_t>(ctx, prompt_len + seq->request.max_tokens))
                   : ctx;
  if (BlocksFor(seq->limit) > options_.num_blocks) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the request needs ", BlocksFor(seq->limit), " cache blocks; the cache has ",
        options_.num_blocks, " (lower max_tokens or raise the engine's kv cache size)"));
  }
  seq->tokens = seq->request.prompt;
  for (int32_t t : seq->tokens) seq->sampler.Observe(t);
  auto handle = seq->handle;
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("the engine is shutting down");
  if (static_cast<int>(waiting_.size()) >= options_.max_queued) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the engine's queue is full (", options_.max_queued, " waiting requests); retry later"));
  }
  waiting_.push_back(std::move(seq));
  return handle;
}

SchedulerStats Scheduler::stats() const {
  absl::MutexLock lock(&mu_);
  SchedulerStats s;
  s.running = running_count_;
  s.waiting = static_cast<int>(waiting_.size());
  s.free_blocks = static_cast<int>(free_blocks_.size());
  s.total_blocks = options_.num_blocks;
  s.steps = steps_;
  s.tokens_generated = tokens_generated_;
  return s;
}

void Scheduler::Finish(std::unique_ptr<Sequence>& seq, StopReason reason,
                       const absl::Status& status) {
  if (seq->request.on_done) seq->request.on_done(reason, status, seq->generated);
  absl::MutexLock lock(&mu_);
  free_blocks_.insert(free_blocks_.end(), seq->blocks.begin(), seq->blocks.end());
  seq.reset();
}

void Scheduler::Loop() {
  std::vector<std::unique_ptr<Sequence>> running;
  auto finish = [this](std::unique_ptr<Sequence>& seq, StopReason reason,
                       const absl::Status& status) { Finish(seq, reason, status); };
  while (true) {
    bool stopping;
    {
      absl::MutexLock lock(&mu_);
      auto has_work = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !running.empty() || !waiting_.empty();
      };
      mu_.Await(absl::Condition(&has_work));
      stopping = stopping_;
      // Admit waiting requests, first come first served, while their blocks are free.
      while (!stopping && !waiting_.empty() &&
             static_cast<int>(running.size()) < options_.max_running) {
        Sequence& next = *waiting_.front();
        const int need = BlocksFor(next.limit);
        if (need > static_cast<int>(free_blocks_.size())) break;
        next.blocks.assign(free_blocks_.end() - need, free_blocks_.end());
        free_blocks_.resize(free_blocks_.size() - need);
        running.push_back(std::move(waiting_.front()));
        waiting_.pop_front();
      }
      running_count_ = static_cast<int>(running.size());
    }
    if (stopping) {
      std::deque<std::unique_ptr<Sequence>> waiting;
      {
        absl::MutexLock lock(&mu_);
        waiting.swap(waiting_);
      }
      for (auto& seq : running) finish(seq, StopReason::kCancelled, absl::CancelledError("engine shutting down"));
      for (auto& seq : waiting) finish(seq, StopReason::kCancelled, absl::CancelledError("engine shutting down"));
      return;
    }
    // Drop cancelled sequences before spending compute on them.
    for (auto& seq : running) {
      if (seq->handle->cancelled()) finish(seq, StopReason::kCancelled, absl::CancelledError("cancelled"));
    }
    running.erase(std::remove(running.begin(), running.end(), nullptr), running.end());
    if (running.empty()) {
      // Cancelled requests still waiting are removed here so they do not hold the queue.
      std::vector<std::unique_ptr<Sequence>> cancelled;
      {
        absl::MutexLock lock(&mu_);
        for (auto it = waiting_.begin(); it != waiting_.end();) {
          if ((*it)->handle->cancelled()) {
            cancelled.push_back(std::move(*it));
            it = waiting_.erase(it);
          } else {
            ++it;
          }
        }
        running_count_ = 0;
      }
      for (auto& seq : cancelled) finish(seq, StopReason::kCancelled, absl::CancelledError("cancelled"));
      continue;
    }
    Step(running);
    // Sequences that ended were finished inside Step and left as nullptr.
    running.erase(std::remove(running.begin(), running.end(), nullptr), running.end());
    {
      absl::MutexLock lock(&mu_);
      running_count_ = static_cast<int>(running.size());
    }
  }
}

void Scheduler::Step(std::vector<std::unique_ptr<Sequence>>& running) {
  std::vector<int32_t> tokens, token_seq, token_pos, slots, logits_for;
  std::vector<absl::Span<const int32_t>> block_tables;
  std::vector<int> sampled_seq;  // running index of each logits row
  int budget = options_.step_token_budget;
  const int bs = options_.block_size;
  auto add_tokens = [&](int idx, int count) {
    Sequence& s = *running[idx];
    const int seq_id = static_cast<int>(block_tables.size());
    block_tables.push_back(s.blocks);
    for (int i = 0; i < count; ++i) {
      const int pos = s.computed + i;
      tokens.push_back(s.tokens[pos]);
      token_seq.push_back(seq_id);
      token_pos.push_back(pos);
      slots.push_back(s.blocks[pos / bs] * bs + pos % bs);
    }
    s.computed += count;
    if (s.computed == static_cast<int>(s.tokens.size())) {
      logits_for.push_back(static_cast<int32_t>(tokens.size()) - 1);
      sampled_seq.push_back(idx);
    }
    budget -= count;
  };
  // Decoding sequences first (one token each), then prompts in chunks.
  for (int i = 0; i < static_cast<int>(running.size()) && budget > 0; ++i) {
    const int pending = static_cast<int>(running[i]->tokens.size()) - running[i]->computed;
    if (pending == 1) add_tokens(i, 1);
  }
  for (int i = 0; i < static_cast<int>(running.size()) && budget > 0; ++i) {
    const int pending = static_cast<int>(running[i]->tokens.size()) - running[i]->computed;
    if (pending > 1) add_tokens(i, std::min(pending, budget));
  }
  if (tokens.empty()) return;

  ForwardBatch batch;
  batch.tokens = tokens;
  batch.token_seq = token_seq;
  batch.token_pos = token_pos;
  batch.slots = slots;
  batch.block_tables = block_tables;
  batch.logits_for = logits_for;
  // Sampling candidates come back instead of whole rows of logits (on a GPU, a few hundred bytes
  // per sequence rather than the vocabulary); the sampler asks for a whole row only when they
  // cannot decide its draw.
  std::vector<float> sum_temperature, penalty;
  std::vector<int32_t> penalty_ids, penalty_starts = {0};
  TopKRequest request;
  for (int idx : sampled_seq) {
    const Sampler& sm = running[idx]->sampler;
    request.k = std::max(request.k, sm.CandidatesNeeded(kMaxTopK));
    sum_temperature.push_back(sm.SumTemperature(kMaxTopK));
    penalty.push_back(sm.penalty());
    if (sm.penalty() != 1.0f) {
      penalty_ids.insert(penalty_ids.end(), sm.penalised().begin(), sm.penalised().end());
    }
    penalty_starts.push_back(static_cast<int32_t>(penalty_ids.size()));
  }
  request.sum_temperature = sum_temperature;
  request.penalty = penalty;
  request.penalty_ids = penalty_ids;
  request.penalty_starts = penalty_starts;
  TopKRows top;
  const absl::Status status = model_->ForwardTopK(batch, *cache_, request, &top);
  auto end = [&](int idx, StopReason reason, const absl::Status& st) {
    Finish(running[idx], reason, st);
  };
  if (!status.ok()) {
    TLOG(ERROR, "forward pass failed").Field("error", status.ToString());
    // The cache of every running sequence may be half written; fail them all.
    for (size_t i = 0; i < running.size(); ++i) end(static_cast<int>(i), StopReason::kError, status);
    return;
  }
  const int vocab = model_->config().vocab_size;
  int64_t produced = 0;
  for (size_t r = 0; r < sampled_seq.size(); ++r) {
    const int idx = sampled_seq[r];
    Sequence& s = *running[idx];
    if (s.handle->cancelled()) {
      end(idx, StopReason::kCancelled, absl::CancelledError("cancelled"));
      continue;
    }
    TopCandidates c;
    c.values = top.values.data() + r * top.k;
    c.ids = top.ids.data() + r * top.k;
    c.k = top.k;
    c.sum_exp = top.sum_exp[r];
    c.nonfinite = top.nonfinite[r];
    c.cols = vocab;
    const int32_t token = s.sampler.SampleTop(c, [&] {
      std::vector<float> row;
      if (absl::Status st = model_->CopyLogitsRow(static_cast<int64_t>(r), &row); !st.ok()) {
        TLOG(ERROR, "reading a logits row failed").Field("error", st.ToString());
        row.assign(vocab, 0.0f);
      }
      return row;
    });
    s.sampler.Observe(token);
    if (s.request.stop_tokens.contains(token)) {
      end(idx, StopReason::kEos, absl::OkStatus());
      continue;
    }
    s.tokens.push_back(token);
    ++s.generated;
    ++produced;
    const bool go_on = !s.request.on_token || s.request.on_token(token);
    if (!go_on) {
      end(idx, StopReason::kCallback, absl::OkStatus());
    } else if (static_cast<int>(s.tokens.size()) >= s.limit) {
      end(idx, StopReason::kLength, absl::OkStatus());
    }
  }
  absl::MutexLock lock(&mu_);
  ++steps_;
  tokens_generated_ += produced;
}

}  // namespace tessera::engine
