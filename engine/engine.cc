#include "engine/engine.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <future>
#include <map>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/logging.h"
#include "common/status.h"
#include "engine/backend/backend.h"
#include "engine/chat/render.h"
#include "engine/chat/tool_call_parser.h"
#include "engine/model/bert.h"
#include "engine/model/gguf.h"
#include "engine/model/llama.h"
#include "engine/model/safetensors.h"
#include "engine/text_stream.h"
#include "engine/tokenizer/gguf_vocab.h"
#include "engine/tokenizer/hf_json_tokenizer.h"
#include "engine/tokenizer/spm_model.h"
#include "engine/tokenizer/vocab.h"
#include "engine/tokenizer/wordpiece_tokenizer.h"
#include "nlohmann/json.hpp"

namespace tessera::engine {

std::string_view ModelKindName(ModelKind kind) {
  switch (kind) {
    case ModelKind::kAuto: return "auto";
    case ModelKind::kGeneration: return "generation";
    case ModelKind::kEmbedding: return "embedding";
    case ModelKind::kRerank: return "rerank";
  }
  return "?";
}

// Runs encoder calls that arrive together as one forward pass: the first caller to find the
// model idle becomes the leader and runs everything queued (up to the token budget), the others
// wait for their results.
class EncoderBatcher {
 public:
  struct Job {
    std::vector<std::vector<int32_t>> sequences;
    std::vector<std::vector<int32_t>> type_ids;  // rerank only
    std::promise<absl::StatusOr<std::vector<std::vector<float>>>> result;
  };

  EncoderBatcher(BertModel* model, bool rerank, int max_batch_tokens)
      : model_(model), rerank_(rerank), max_batch_tokens_(max_batch_tokens) {}

  absl::StatusOr<std::vector<std::vector<float>>> Run(std::vector<std::vector<int32_t>> sequences,
                                                      std::vector<std::vector<int32_t>> type_ids) {
    auto job = std::make_shared<Job>();
    job->sequences = std::move(sequences);
    job->type_ids = std::move(type_ids);
    auto future = job->result.get_future();
    bool lead = false;
    {
      absl::MutexLock lock(&mu_);
      queue_.push_back(job);
      if (!busy_) busy_ = lead = true;
    }
    while (lead) {
      std::vector<std::shared_ptr<Job>> batch;
      {
        absl::MutexLock lock(&mu_);
        int64_t tokens = 0;
        while (!queue_.empty()) {
          int64_t t = 0;
          for (const auto& s : queue_.front()->sequences) t += static_cast<int64_t>(s.size());
          if (!batch.empty() && tokens + t > max_batch_tokens_) break;
          tokens += t;
          batch.push_back(queue_.front());
          queue_.erase(queue_.begin());
        }
        if (batch.empty()) {
          busy_ = false;
          break;
        }
      }
      RunBatch(batch);
    }
    return future.get();
  }

 private:
  void RunBatch(const std::vector<std::shared_ptr<Job>>& batch) {
    std::vector<std::vector<int32_t>> seqs, types;
    for (const auto& j : batch) {
      seqs.insert(seqs.end(), j->sequences.begin(), j->sequences.end());
      types.insert(types.end(), j->type_ids.begin(), j->type_ids.end());
    }
    absl::StatusOr<std::vector<std::vector<float>>> out;
    if (rerank_) {
      auto scores = model_->Score(seqs, types);
      if (scores.ok()) {
        std::vector<std::vector<float>> rows;
        for (float s : *scores) rows.push_back({s});
        out = std::move(rows);
      } else {
        out = scores.status();
      }
    } else {
      out = model_->Embed(seqs);
    }
    size_t at = 0;
    for (const auto& j : batch) {
      if (!out.ok()) {
        j->result.set_value(out.status());
        continue;
      }
      std::vector<std::vector<float>> mine(out->begin() + at, out->begin() + at + j->sequences.size());
      at += j->sequences.size();
      j->result.set_value(std::move(mine));
    }
  }

  BertModel* model_;
  bool rerank_;
  int64_t max_batch_tokens_;
  absl::Mutex mu_;
  std::vector<std::shared_ptr<Job>> queue_ ABSL_GUARDED_BY(mu_);
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
};

struct Engine::Model {
  ModelConfig config;
  ModelKind kind = ModelKind::kAuto;
  std::string architecture;
  int context_length = 0;
  std::unique_ptr<GgufFile> gguf;
  std::unique_ptr<SafetensorsModel> safetensors;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<LlamaModel> llama;
  std::unique_ptr<BertModel> bert;
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<EncoderBatcher> batcher;
  std::optional<ChatFormat> chat_format;
  std::string quantization;
  int64_t parameter_count = 0;
};

Engine::Engine() = default;
Engine::~Engine() {
  // Schedulers first: their threads use the models and the backend.
  for (auto& m : models_) m->scheduler.reset();
}

namespace {

absl::StatusOr<std::unique_ptr<Tokenizer>> TokenizerForDirectory(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(fs::path(dir) / "tokenizer.model", ec)) {
    return LoadSentencePieceModel((fs::path(dir) / "tokenizer.model").string());
  }
  if (fs::exists(fs::path(dir) / "tokenizer.json", ec)) {
    return TokenizerFromHfJson((fs::path(dir) / "tokenizer.json").string());
  }
  if (fs::exists(fs::path(dir) / "vocab.txt", ec)) {
    return WordPieceTokenizer::FromVocabFile((fs::path(dir) / "vocab.txt").string());
  }
  return absl::InvalidArgumentError(absl::StrCat(
      dir, " has no tokenizer (tokenizer.model, tokenizer.json or vocab.txt)"));
}

std::vector<int32_t> Cut(std::vector<int32_t> ids, size_t max, Truncate mode, bool* truncated) {
  *truncated = ids.size() > max;
  if (!*truncated) return ids;
  if (mode == Truncate::kStart) return std::vector<int32_t>(ids.end() - max, ids.end());
  ids.resize(max);
  return ids;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const EngineOptions& options) {
  auto engine = absl::WrapUnique(new Engine());
  ASSIGN_OR_RETURN(engine->backend_, CreateBackend(options.device, options.num_threads));
  for (const ModelConfig& mc : options.models) {
    if (mc.id.empty()) return absl::InvalidArgumentError("a model has no id");
    for (const auto& m : engine->models_) {
      if (m->config.id == mc.id) {
        return absl::InvalidArgumentError(absl::StrCat("model id '", mc.id, "' is used twice"));
      }
    }
    auto m = std::make_unique<Model>();
    m->config = mc;
    auto fail = [&](const absl::Status& s) {
      return ::tessera::Annotate(s, absl::StrCat("model '", mc.id, "' (", mc.path, ")"));
    };
    std::error_code ec;
    const bool is_dir = std::filesystem::is_directory(mc.path, ec);
    const ModelFile* file = nullptr;
    if (is_dir) {
      // Checkpoints carry integer buffers the models do not use (BERT's position_ids): skip them.
      SafetensorsOptions so;
      so.skip_unsupported_dtypes = true;
      auto st = SafetensorsModel::Open(mc.path, so);
      if (!st.ok()) return fail(st.status());
      m->safetensors = std::move(*st);
      file = m->safetensors.get();
      const auto& cfg = m->safetensors->config();
      m->architecture = cfg.is_object() ? cfg.value("model_type", std::string("")) : "";
      auto tok = TokenizerForDirectory(mc.path);
      if (!tok.ok()) return fail(tok.status());
      m->tokenizer = std::move(*tok);
    } else {
      auto gguf = GgufFile::Open(mc.path);
      if (!gguf.ok()) return fail(gguf.status());
      m->gguf = std::move(*gguf);
      file = m->gguf.get();
      m->architecture = std::string(m->gguf->architecture());
      auto vocab = VocabFromGguf(*m->gguf);
      if (!vocab.ok()) return fail(vocab.status());
      auto tok = CreateTokenizer(*vocab);
      if (!tok.ok()) return fail(tok.status());
      m->tokenizer = std::move(*tok);
    }
    {
      std::map<std::string, int64_t> by_type;
      for (const TensorView& t : file->tensors()) {
        m->parameter_count += t.num_elements();
        if (t.rows() > 1) by_type[std::string(DTypeName(t.type))] += t.num_elements();
      }
      int64_t best = -1;
      for (const auto& [type, count] : by_type) {
        if (count > best) {
          best = count;
          m->quantization = type;
        }
      }
    }
    const bool decoder = m->architecture == "llama" || m->architecture == "mistral";
    const bool encoder = m->architecture == "bert";
    if (!decoder && !encoder) {
      return fail(absl::InvalidArgumentError(absl::StrCat(
          "architecture '", m->architecture, "' is not supported (llama, mistral, bert)")));
    }
    if (decoder) {
      if (mc.kind != ModelKind::kAuto && mc.kind != ModelKind::kGeneration) {
        return fail(absl::InvalidArgumentError("a decoder model can only be used for generation"));
      }
      auto llama = m->gguf ? LlamaModel::FromGguf(*m->gguf, engine->backend_.get())
                           : LlamaModel::FromSafetensors(*m->safetensors, engine->backend_.get());
      if (!llama.ok()) return fail(llama.status());
      m->llama = std::move(*llama);
      m->kind = ModelKind::kGeneration;
      m->context_length = m->llama->config().context_length;
      if (mc.context_length > 0) m->context_length = std::min(m->context_length, mc.context_length);
      if (!mc.chat_format.empty()) {
        auto format = ParseChatFormat(mc.chat_format);
        if (!format.ok()) return fail(format.status());
        m->chat_format = *format;
      } else if (m->tokenizer->TokenId("[INST]").has_value()) {
        m->chat_format = DetectChatFormat(*m->tokenizer);
      }
      SchedulerOptions so;
      so.max_running = std::max(1, mc.max_running);
      so.max_queued = std::max(0, mc.max_queued);
      const LlamaConfig& lc = m->llama->config();
      // Upper bound per token (F32 keys and values); backends that store F16 use half.
      const int64_t bytes_per_block = int64_t{lc.num_layers} * 2 * lc.num_kv_heads * lc.head_dim *
                                      so.block_size * static_cast<int64_t>(sizeof(float));
      // The configured memory, but never more than every running sequence at a full context
      // needs, nor less than one full context.
      const int64_t per_context = (m->context_length + so.block_size - 1) / so.block_size;
      so.num_blocks = static_cast<int>(std::clamp<int64_t>(
          int64_t{std::max(1, mc.kv_cache_mb)} * 1024 * 1024 / bytes_per_block, per_context,
          per_context * so.max_running));
      auto sched = Scheduler::Create(m->llama.get(), so);
      if (!sched.ok()) return fail(sched.status());
      m->scheduler = std::move(*sched);
    } else {
      auto bert = m->gguf ? BertModel::FromGguf(*m->gguf, engine->backend_.get())
                          : BertModel::FromSafetensors(*m->safetensors, engine->backend_.get());
      if (!bert.ok()) return fail(bert.status());
      m->bert = std::move(*bert);
      m->kind = m->bert->config().is_reranker ? ModelKind::kRerank : ModelKind::kEmbedding;
      if (mc.kind != ModelKind::kAuto && mc.kind != m->kind) {
        return fail(absl::InvalidArgumentError(absl::StrCat(
            "the file is a ", std::string(ModelKindName(m->kind)), " model, configured as ",
            std::string(ModelKindName(mc.kind)))));
      }
      m->context_length = m->bert->config().max_positions;
      if (mc.context_length > 0) m->context_length = std::min(m->context_length, mc.context_length);
      m->batcher = std::make_unique<EncoderBatcher>(m->bert.get(), m->kind == ModelKind::kRerank,
                                                    std::max(512, mc.max_batch_tokens));
    }
    TLOG(INFO, "model loaded")
        .Field("id", mc.id)
        .Field("kind", std::string(ModelKindName(m->kind)))
        .Field("architecture", m->architecture)
        .Field("backend", engine->backend_->name());
    engine->models_.push_back(std::move(m));
  }
  return engine;
}

std::vector<ModelInfo> Engine::ListModels() const {
  std::vector<ModelInfo> out;
  for (const auto& m : models_) {
    ModelInfo info;
    info.id = m->config.id;
    info.kind = m->kind;
    info.architecture = m->architecture;
    info.context_length = m->context_length;
    info.embedding_dimensions = m->kind == ModelKind::kEmbedding ? m->bert->config().dim : 0;
    info.backend = backend_->name();
    info.tokenizer = std::string(m->tokenizer->kind());
    info.quantization = m->quantization;
    info.parameter_count = m->parameter_count;
    if (m->chat_format) info.chat_format = std::string(ChatFormatName(*m->chat_format));
    out.push_back(std::move(info));
  }
  return out;
}

absl::StatusOr<Engine::Model*> Engine::Find(const std::string& id, ModelKind kind) const {
  for (const auto& m : models_) {
    if (m->config.id != id) continue;
    if (kind != ModelKind::kAuto && m->kind != kind) {
      return absl::InvalidArgumentError(absl::StrCat("model '", id, "' is a ",
                                                     std::string(ModelKindName(m->kind)), " model, not ",
                                                     std::string(ModelKindName(kind))));
    }
    return m.get();
  }
  std::vector<std::string> ids;
  for (const auto& m : models_) ids.push_back(m->config.id);
  return absl::NotFoundError(absl::StrCat("no model '", id, "' (loaded: ",
                                          ids.empty() ? "none" : absl::StrJoin(ids, ", "), ")"));
}

absl::StatusOr<TokenizeResult> Engine::Tokenize(const std::string& model, const std::string& text,
                                                bool add_special) const {
  ASSIGN_OR_RETURN(Model * m, Find(model, ModelKind::kAuto));
  TokenizeResult r;
  r.ids = m->tokenizer->Encode(text, add_special);
  int32_t prev = -1;
  for (int32_t id : r.ids) {
    r.pieces.push_back(m->tokenizer->TokenText(prev, id));
    prev = id;
  }
  return r;
}

absl::StatusOr<EmbedResult> Engine::Embed(const EmbedParams& p) {
  ASSIGN_OR_RETURN(Model * m, Find(p.model, ModelKind::kEmbedding));
  if (p.inputs.empty()) return absl::InvalidArgumentError("inputs is empty");
  if (p.inputs.size() > 512) {
    return absl::InvalidArgumentError(absl::StrCat(p.inputs.size(), " inputs; at most 512 per call"));
  }
  const int dim = m->bert->config().dim;
  if (p.dimensions < 0 || p.dimensions > dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("dimensions ", p.dimensions, " is outside [0, ", dim, "]"));
  }
  EmbedResult r;
  std::vector<std::vector<int32_t>> seqs;
  const Tokenizer& tok = *m->tokenizer;
  for (size_t i = 0; i < p.inputs.size(); ++i) {
    std::vector<int32_t> ids = tok.Encode(p.inputs[i], /*add_special=*/false);
    const size_t room = static_cast<size_t>(m->context_length) - 2;  // [CLS] and [SEP]
    bool truncated = false;
    if (ids.size() > room && p.truncate == Truncate::kNone) {
      return absl::InvalidArgumentError(absl::StrCat("inputs[", i, "] has ", ids.size() + 2,
                                                     " tokens; the model reads at most ",
                                                     m->context_length));
    }
    ids = Cut(std::move(ids), room, p.truncate, &truncated);
    std::vector<int32_t> seq;
    if (tok.cls_id() >= 0) seq.push_back(tok.cls_id());
    seq.insert(seq.end(), ids.begin(), ids.end());
    if (tok.sep_id() >= 0) seq.push_back(tok.sep_id());
    r.token_counts.push_back(static_cast<int>(seq.size()));
    r.truncated.push_back(truncated);
    seqs.push_back(std::move(seq));
  }
  ASSIGN_OR_RETURN(r.vectors, m->batcher->Run(std::move(seqs), {}));
  r.dimensions = p.dimensions > 0 ? p.dimensions : dim;
  for (auto& v : r.vectors) {
    v.resize(r.dimensions);
    if (p.normalize) {
      double norm = 0;
      for (float f : v) norm += static_cast<double>(f) * f;
      norm = std::sqrt(norm);
      if (norm > 0) {
        for (float& f : v) f = static_cast<float>(f / norm);
      }
    }
  }
  return r;
}

absl::StatusOr<RerankResult> Engine::Rerank(const RerankParams& p) {
  ASSIGN_OR_RETURN(Model * m, Find(p.model, ModelKind::kRerank));
  if (p.query.empty()) return absl::InvalidArgumentError("query is empty");
  if (p.documents.empty()) return absl::InvalidArgumentError("documents is empty");
  if (p.documents.size() > 1024) {
    return absl::InvalidArgumentError(absl::StrCat(p.documents.size(), " documents; at most 1024"));
  }
  if (p.top_n < 0) return absl::InvalidArgumentError("top_n must be >= 0");
  const Tokenizer& tok = *m->tokenizer;
  std::vector<int32_t> query = tok.Encode(p.query, false);
  const size_t ctx = static_cast<size_t>(m->context_length);
  if (query.size() + 4 > ctx) {
    return absl::InvalidArgumentError(absl::StrCat("the query has ", query.size(),
                                                   " tokens; it must leave room for a document in ",
                                                   ctx));
  }
  std::vector<std::vector<int32_t>> seqs, types;
  RerankResult r;
  for (size_t i = 0; i < p.documents.size(); ++i) {
    std::vector<int32_t> doc = tok.Encode(p.documents[i], false);
    const size_t room = ctx - query.size() - 3;
    bool truncated = false;
    if (doc.size() > room && p.truncate == Truncate::kNone) {
      return absl::InvalidArgumentError(
          absl::StrCat("documents[", i, "] does not fit in the model's context with the query"));
    }
    doc = Cut(std::move(doc), room, p.truncate, &truncated);
    std::vector<int32_t> seq = {tok.cls_id()}, type = {0};
    seq.insert(seq.end(), query.begin(), query.end());
    seq.push_back(tok.sep_id());
    type.resize(seq.size(), 0);
    seq.insert(seq.end(), doc.begin(), doc.end());
    seq.push_back(tok.sep_id());
    type.resize(seq.size(), 1);
    r.tokens += static_cast<int64_t>(seq.size());
    seqs.push_back(std::move(seq));
    types.push_back(std::move(type));
  }
  ASSIGN_OR_RETURN(auto logits, m->batcher->Run(std::move(seqs), std::move(types)));
  for (size_t i = 0; i < logits.size(); ++i) {
    r.results.push_back({static_cast<int>(i), 1.0 / (1.0 + std::exp(-static_cast<double>(logits[i][0])))});
  }
  std::stable_sort(r.results.begin(), r.results.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  if (p.top_n > 0 && static_cast<size_t>(p.top_n) < r.results.size()) r.results.resize(p.top_n);
  return r;
}

absl::StatusOr<std::shared_ptr<GenerationHandle>> Engine::Generate(
    const GenerateParams& p, std::function<void(const GenerateEvent&)> sink) {
  ASSIGN_OR_RETURN(Model * m, Find(p.model, ModelKind::kGeneration));
  if (p.prompt.has_value() == !p.messages.empty()) {
    return absl::InvalidArgumentError("set exactly one of prompt and messages");
  }
  if (p.max_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat("max_tokens must be >= 0, got ", p.max_tokens));
  }
  if (p.stop.size() > 16) return absl::InvalidArgumentError("at most 16 stop strings");
  for (const std::string& s : p.stop) {
    if (s.empty() || s.size() > 64) {
      return absl::InvalidArgumentError("stop strings must be 1 to 64 bytes");
    }
  }
  if (p.prompt.has_value() && !p.tools.empty()) {
    return absl::InvalidArgumentError("tools need chat messages, not a raw prompt");
  }
  const Tokenizer& tok = *m->tokenizer;
  std::vector<int32_t> prompt;
  if (p.prompt.has_value()) {
    prompt = tok.Encode(*p.prompt, /*add_special=*/true);
  } else {
    if (!m->chat_format.has_value()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "model '", p.model, "' has no chat template; configure chat_format or send a prompt"));
    }
    ASSIGN_OR_RETURN(prompt, RenderChat(*m->chat_format, p.messages, p.tools, tok));
  }
  if (prompt.empty()) return absl::InvalidArgumentError("the prompt is empty");
  const size_t ctx = static_cast<size_t>(m->context_length);
  if (prompt.size() >= ctx) {
    if (!p.truncate_prompt) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the prompt has ", prompt.size(), " tokens; the model's context is ", ctx,
          " (prompt and output together; set truncate_prompt to drop the oldest tokens)"));
    }
    // Keep BOS, drop the oldest tokens after it, leave a quarter of the context for output.
    const size_t keep = ctx - std::max<size_t>(1, ctx / 4);
    std::vector<int32_t> cut;
    if (tok.bos_id() >= 0 && prompt.front() == tok.bos_id()) cut.push_back(prompt.front());
    cut.insert(cut.end(), prompt.end() - (keep - cut.size()), prompt.end());
    prompt = std::move(cut);
  }
  GenerationRequest req;
  req.prompt = prompt;
  req.sampling = p.sampling;
  if (!p.seed_set) req.sampling.seed = std::random_device{}();
  req.max_tokens = p.max_tokens;
  if (static_cast<size_t>(p.max_tokens) + prompt.size() > ctx) {
    req.max_tokens = static_cast<int>(ctx - prompt.size());
  }
  if (tok.eos_id() >= 0) req.stop_tokens.insert(tok.eos_id());
  std::optional<ChatFormat> tool_format;
  if (!p.tools.empty() && m->chat_format.has_value()) tool_format = *m->chat_format;
  auto decoder = std::make_shared<GenerationDecoder>(m->tokenizer.get(), std::move(sink), p.stop, tool_format,
                                                     static_cast<int>(prompt.size()));
  req.on_token = [decoder](int32_t id) { return decoder->OnToken(id); };
  req.on_done = [decoder](StopReason reason, const absl::Status& status, int generated) {
    decoder->OnDone(reason, status, generated);
  };
  return m->scheduler->Submit(std::move(req));
}

}  // namespace tessera::engine
