#include "bench/engine/ours.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bench/bench_util.h"
#include "engine/runtime/scheduler.h"

namespace tessera::bench {
namespace {

using engine::ForwardBatch;

int32_t Argmax(const float* v, int n) {
  return static_cast<int32_t>(std::max_element(v, v + n) - v);
}

}  // namespace

absl::StatusOr<std::unique_ptr<OurLlama>> OurLlama::Load(const std::string& path,
                                                         engine::Backend* backend) {
  auto o = std::unique_ptr<OurLlama>(new OurLlama());
  auto file = engine::GgufFile::Open(path);
  if (!file.ok()) return file.status();
  o->file_ = std::move(*file);
  auto model = engine::LlamaModel::FromGguf(*o->file_, backend);
  if (!model.ok()) return model.status();
  o->model_ = std::move(*model);
  for (const engine::TensorView& t : o->file_->tensors()) {
    o->weight_bytes_per_token_ +=
        t.name == "token_embd.weight" ? static_cast<int64_t>(t.nbytes / t.rows())
                                      : static_cast<int64_t>(t.nbytes);
  }
  // One sequence of up to 1024 positions for Prefill and Decode.
  const int blocks = 1024 / o->block_size_;
  auto cache = o->model_->NewCache(blocks, o->block_size_);
  if (!cache.ok()) return cache.status();
  o->cache_ = std::move(*cache);
  for (int b = 0; b < blocks; ++b) o->block_table_.push_back(b);
  return o;
}

absl::StatusOr<std::vector<double>> OurLlama::Prefill(int n, int reps) {
  if (n > static_cast<int>(block_table_.size()) * block_size_) {
    return absl::InvalidArgumentError("prefill longer than the benchmark cache");
  }
  std::mt19937 rng(42);
  const int vocab = model_->config().vocab_size;
  std::vector<int32_t> tokens(n), seq(n, 0), pos(n), slots(n);
  for (int i = 0; i < n; ++i) {
    tokens[i] = static_cast<int32_t>(rng() % vocab);
    pos[i] = i;
    slots[i] = block_table_[i / block_size_] * block_size_ + i % block_size_;
  }
  const int32_t last = n - 1;
  ForwardBatch batch;
  batch.tokens = tokens;
  batch.token_seq = seq;
  batch.token_pos = pos;
  batch.slots = slots;
  batch.block_tables = {block_table_};
  batch.logits_for = absl::MakeConstSpan(&last, 1);
  std::vector<float> logits;
  std::vector<double> out;
  for (int r = 0; r <= reps; ++r) {
    Stopwatch sw;
    if (absl::Status s = model_->Forward(batch, *cache_, &logits); !s.ok()) return s;
    if (r > 0) out.push_back(n / sw.Seconds());
  }
  return out;
}

absl::StatusOr<std::vector<double>> OurLlama::Decode(int n, int reps) {
  if (n > static_cast<int>(block_table_.size()) * block_size_) {
    return absl::InvalidArgumentError("decode longer than the benchmark cache");
  }
  const int vocab = model_->config().vocab_size;
  std::vector<float> logits;
  std::vector<double> out;
  for (int r = 0; r <= reps; ++r) {
    const int steps = r == 0 ? 4 : n;  // a short warm-up, like llama-bench's
    int32_t token = 1;                 // BOS
    Stopwatch sw;
    for (int i = 0; i < steps; ++i) {
      const int32_t seq = 0, pos = i, slot = block_table_[i / block_size_] * block_size_ + i % block_size_;
      const int32_t row = 0;
      ForwardBatch batch;
      batch.tokens = absl::MakeConstSpan(&token, 1);
      batch.token_seq = absl::MakeConstSpan(&seq, 1);
      batch.token_pos = absl::MakeConstSpan(&pos, 1);
      batch.slots = absl::MakeConstSpan(&slot, 1);
      batch.block_tables = {block_table_};
      batch.logits_for = absl::MakeConstSpan(&row, 1);
      if (absl::Status s = model_->Forward(batch, *cache_, &logits); !s.ok()) return s;
      token = Argmax(logits.data(), vocab);
    }
    if (r > 0) out.push_back(steps / sw.Seconds());
  }
  return out;
}

absl::StatusOr<double> OurLlama::Streams(int streams, int n_prompt, int n_gen) {
  engine::SchedulerOptions so;
  so.block_size = block_size_;
  so.max_running = streams;
  so.num_blocks = streams * ((n_prompt + n_gen + block_size_ - 1) / block_size_ + 1);
  so.max_queued = streams;
  auto sched = engine::Scheduler::Create(model_.get(), so);
  if (!sched.ok()) return sched.status();

  struct State {
    absl::Mutex mu;
    std::vector<double> first, last;  // seconds since start, per stream
    std::vector<int> generated;
    int done = 0;
    absl::Status error;
  } st;
  st.first.assign(streams, -1);
  st.last.assign(streams, -1);
  st.generated.assign(streams, 0);
  std::mt19937 rng(7);
  const int vocab = model_->config().vocab_size;
  Stopwatch sw;
  std::vector<std::shared_ptr<engine::GenerationHandle>> handles;
  for (int s = 0; s < streams; ++s) {
    engine::GenerationRequest req;
    for (int i = 0; i < n_prompt; ++i) req.prompt.push_back(static_cast<int32_t>(rng() % vocab));
    req.sampling.temperature = 0;
    req.max_tokens = n_gen;
    req.on_token = [&st, &sw, s](int32_t) {
      const double t = sw.Seconds();
      absl::MutexLock lock(&st.mu);
      if (st.first[s] < 0) st.first[s] = t;
      st.last[s] = t;
      ++st.generated[s];
      return true;
    };
    req.on_done = [&st](engine::StopReason, const absl::Status& status, int) {
      absl::MutexLock lock(&st.mu);
      if (!status.ok() && st.error.ok()) st.error = status;
      ++st.done;
    };
    auto h = (*sched)->Submit(std::move(req));
    if (!h.ok()) return h.status();
    handles.push_back(*h);
  }
  {
    absl::MutexLock lock(&st.mu);
    st.mu.Await(absl::Condition(
        +[](State* s) { return s->done == static_cast<int>(s->first.size()); }, &st));
    if (!st.error.ok()) return st.error;
  }
  sched->reset();
  const double start = *std::max_element(st.first.begin(), st.first.end());
  const double end = *std::max_element(st.last.begin(), st.last.end());
  int64_t tokens = 0;
  for (int g : st.generated) tokens += g - 1;  // the first token comes from the prefill pass
  if (end <= start || tokens <= 0) return absl::InternalError("streams produced no decode window");
  return tokens / (end - start);
}

absl::StatusOr<std::unique_ptr<OurBert>> OurBert::Load(const std::string& path,
                                                       engine::Backend* backend) {
  auto o = std::unique_ptr<OurBert>(new OurBert());
  auto file = engine::GgufFile::Open(path);
  if (!file.ok()) return file.status();
  o->file_ = std::move(*file);
  auto model = engine::BertModel::FromGguf(*o->file_, backend);
  if (!model.ok()) return model.status();
  o->model_ = std::move(*model);
  return o;
}

absl::StatusOr<std::vector<double>> OurBert::Embed(int count, int length, int batch, int reps) {
  std::mt19937 rng(3);
  std::vector<std::vector<int32_t>> seqs(count);
  for (auto& s : seqs) {
    s.push_back(101);  // [CLS]
    while (static_cast<int>(s.size()) < length - 1) s.push_back(1000 + static_cast<int32_t>(rng() % 28000));
    s.push_back(102);  // [SEP]
  }
  std::vector<double> out;
  for (int r = 0; r <= reps; ++r) {
    Stopwatch sw;
    for (int i = 0; i < count; i += batch) {
      std::vector<std::vector<int32_t>> part(seqs.begin() + i,
                                             seqs.begin() + std::min(count, i + batch));
      auto e = model_->Embed(part);
      if (!e.ok()) return e.status();
    }
    if (r > 0) out.push_back(count / sw.Seconds());
  }
  return out;
}

}  // namespace tessera::bench
