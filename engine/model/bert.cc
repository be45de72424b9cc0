#include "engine/model/bert.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "engine/model/llama.h"

namespace tessera::engine {
namespace {

absl::StatusOr<int> PositiveInt(absl::StatusOr<int64_t> v, std::string_view key) {
  if (!v.ok()) return v.status();
  if (*v <= 0 || *v > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(key), " = ", *v, " is out of range"));
  }
  return static_cast<int>(*v);
}

absl::StatusOr<int64_t> JsonInt64(const nlohmann::json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end() || !it->is_number_integer()) {
    return absl::InvalidArgumentError(absl::StrCat("config.json: ", key, " is missing or not an integer"));
  }
  return it->get<int64_t>();
}

}  // namespace

absl::Status BertModel::Validate() const {
  const BertConfig& c = config_;
  if (c.dim <= 0 || c.num_layers <= 0 || c.num_heads <= 0 || c.ffn_dim <= 0 ||
      c.vocab_size <= 0 || c.max_positions <= 0) {
    return absl::InvalidArgumentError("the model's hyperparameters are missing or zero");
  }
  if (c.dim % c.num_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("hidden size ", c.dim, " is not a multiple of the head count ", c.num_heads));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<BertModel>> BertModel::FromGguf(const GgufFile& f,
                                                               Backend* backend) {
  const std::string arch(f.architecture());
  if (arch != "bert") {
    return absl::InvalidArgumentError(absl::StrCat("architecture '", arch, "' is not bert"));
  }
  BertConfig c;
  ASSIGN_OR_RETURN(c.dim, PositiveInt(f.GetInt("bert.embedding_length"), "bert.embedding_length"));
  ASSIGN_OR_RETURN(c.num_layers, PositiveInt(f.GetInt("bert.block_count"), "bert.block_count"));
  ASSIGN_OR_RETURN(c.num_heads,
                   PositiveInt(f.GetInt("bert.attention.head_count"), "bert.attention.head_count"));
  ASSIGN_OR_RETURN(c.ffn_dim,
                   PositiveInt(f.GetInt("bert.feed_forward_length"), "bert.feed_forward_length"));
  if (auto ctx = f.GetInt("bert.context_length"); ctx.ok()) {
    ASSIGN_OR_RETURN(c.max_positions, PositiveInt(ctx, "bert.context_length"));
  }
  if (auto eps = f.GetFloat("bert.attention.layer_norm_epsilon"); eps.ok()) {
    c.norm_eps = static_cast<float>(*eps);
  }
  if (auto pooling = f.GetInt("bert.pooling_type"); pooling.ok()) {
    switch (*pooling) {
      case 1: c.pooling = Pooling::kMean; break;
      case 2: c.pooling = Pooling::kCls; break;
      case 4: c.pooling = Pooling::kCls; c.is_reranker = true; break;
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            "bert.pooling_type ", *pooling, " is not supported (1 mean, 2 cls, 4 rank)"));
    }
  }
  const TensorView* embd = f.FindTensor("token_embd.weight");
  if (embd == nullptr) return absl::InvalidArgumentError("the model file has no token_embd.weight");
  c.vocab_size = static_cast<int>(embd->rows());
  const TensorView* types = f.FindTensor("token_types.weight");
  c.type_vocab_size = types != nullptr ? static_cast<int>(types->rows()) : 0;
  if (f.FindTensor("cls.output.weight") != nullptr) c.is_reranker = true;

  auto model = absl::WrapUnique(new BertModel(c, backend));
  RETURN_IF_ERROR(model->Validate());
  const int64_t d = c.dim;
  ASSIGN_OR_RETURN(model->token_embd_, LoadTensor(backend, f, "token_embd.weight", c.vocab_size, d));
  ASSIGN_OR_RETURN(model->pos_embd_, LoadTensor(backend, f, "position_embd.weight", c.max_positions, d));
  if (types != nullptr) {
    ASSIGN_OR_RETURN(model->type_embd_, LoadTensor(backend, f, "token_types.weight", -1, d));
  }
  ASSIGN_OR_RETURN(model->embd_norm_w_, LoadTensor(backend, f, "token_embd_norm.weight", 1, d));
  ASSIGN_OR_RETURN(model->embd_norm_b_, LoadTensor(backend, f, "token_embd_norm.bias", 1, d));
  for (int l = 0; l < c.num_layers; ++l) {
    Layer L;
    auto w = [&](const char* n, int64_t rows, int64_t cols) {
      return LoadTensor(backend, f, absl::StrCat("blk.", l, ".", n), rows, cols);
    };
    ASSIGN_OR_RETURN(L.wq, w("attn_q.weight", d, d));
    ASSIGN_OR_RETURN(L.bq, w("attn_q.bias", 1, d));
    ASSIGN_OR_RETURN(L.wk, w("attn_k.weight", d, d));
    ASSIGN_OR_RETURN(L.bk, w("attn_k.bias", 1, d));
    ASSIGN_OR_RETURN(L.wv, w("attn_v.weight", d, d));
    ASSIGN_OR_RETURN(L.bv, w("attn_v.bias", 1, d));
    ASSIGN_OR_RETURN(L.wo, w("attn_output.weight", d, d));
    ASSIGN_OR_RETURN(L.bo, w("attn_output.bias", 1, d));
    ASSIGN_OR_RETURN(L.attn_norm_w, w("attn_output_norm.weight", 1, d));
    ASSIGN_OR_RETURN(L.attn_norm_b, w("attn_output_norm.bias", 1, d));
    ASSIGN_OR_RETURN(L.ffn_up, w("ffn_up.weight", c.ffn_dim, d));
    ASSIGN_OR_RETURN(L.ffn_up_b, w("ffn_up.bias", 1, c.ffn_dim));
    ASSIGN_OR_RETURN(L.ffn_down, w("ffn_down.weight", d, c.ffn_dim));
    ASSIGN_OR_RETURN(L.ffn_down_b, w("ffn_down.bias", 1, d));
    ASSIGN_OR_RETURN(L.out_norm_w, w("layer_output_norm.weight", 1, d));
    ASSIGN_OR_RETURN(L.out_norm_b, w("layer_output_norm.bias", 1, d));
    model->layers_.push_back(std::move(L));
  }
  if (c.is_reranker) {
    ASSIGN_OR_RETURN(model->pooler_w_, LoadTensor(backend, f, "cls.weight", d, d));
    ASSIGN_OR_RETURN(model->pooler_b_, LoadTensor(backend, f, "cls.bias", 1, d));
    ASSIGN_OR_RETURN(model->cls_w_, LoadTensor(backend, f, "cls.output.weight", 1, d));
    ASSIGN_OR_RETURN(model->cls_b_, LoadTensor(backend, f, "cls.output.bias", 1, 1));
  }
  return model;
}

absl::StatusOr<std::unique_ptr<BertModel>> BertModel::FromSafetensors(const SafetensorsModel& st,
                                                                      Backend* backend) {
  const nlohmann::json& cfg = st.config();
  if (!cfg.is_object()) return absl::InvalidArgumentError("config.json is not an object");
  BertConfig c;
  ASSIGN_OR_RETURN(c.dim, PositiveInt(JsonInt64(cfg, "hidden_size"), "hidden_size"));
  ASSIGN_OR_RETURN(c.num_layers, PositiveInt(JsonInt64(cfg, "num_hidden_layers"), "num_hidden_layers"));
  ASSIGN_OR_RETURN(c.num_heads, PositiveInt(JsonInt64(cfg, "num_attention_heads"), "num_attention_heads"));
  ASSIGN_OR_RETURN(c.ffn_dim, PositiveInt(JsonInt64(cfg, "intermediate_size"), "intermediate_size"));
  ASSIGN_OR_RETURN(c.vocab_size, PositiveInt(JsonInt64(cfg, "vocab_size"), "vocab_size"));
  ASSIGN_OR_RETURN(c.max_positions,
                   PositiveInt(JsonInt64(cfg, "max_position_embeddings"), "max_position_embeddings"));
  c.type_vocab_size = static_cast<int>(cfg.value("type_vocab_size", 2));
  c.norm_eps = static_cast<float>(cfg.value("layer_norm_eps", 1e-12));
  if (auto it = cfg.find("tessera_pooling"); it != cfg.end() && it->is_string()) {
    if (*it == "mean") c.pooling = Pooling::kMean;
  }
  const std::string prefix = st.FindTensor("bert.embeddings.word_embeddings.weight") != nullptr ? "bert." : "";
  c.is_reranker = st.FindTensor("classifier.weight") != nullptr;

  auto model = absl::WrapUnique(new BertModel(c, backend));
  RETURN_IF_ERROR(model->Validate());
  const int64_t d = c.dim;
  auto w = [&](const std::string& n, int64_t rows, int64_t cols) {
    return LoadTensor(backend, st, prefix + n, rows, cols);
  };
  ASSIGN_OR_RETURN(model->token_embd_, w("embeddings.word_embeddings.weight", c.vocab_size, d));
  ASSIGN_OR_RETURN(model->pos_embd_, w("embeddings.position_embeddings.weight", c.max_positions, d));
  if (st.FindTensor(prefix + "embeddings.token_type_embeddings.weight") != nullptr) {
    ASSIGN_OR_RETURN(model->type_embd_, w("embeddings.token_type_embeddings.weight", -1, d));
  } else {
    model->config_.type_vocab_size = 0;
  }
  ASSIGN_OR_RETURN(model->embd_norm_w_, w("embeddings.LayerNorm.weight", 1, d));
  ASSIGN_OR_RETURN(model->embd_norm_b_, w("embeddings.LayerNorm.bias", 1, d));
  for (int l = 0; l < c.num_layers; ++l) {
    Layer L;
    const std::string p = absl::StrCat("encoder.layer.", l, ".");
    ASSIGN_OR_RETURN(L.wq, w(p + "attention.self.query.weight", d, d));
    ASSIGN_OR_RETURN(L.bq, w(p + "attention.self.query.bias", 1, d));
    ASSIGN_OR_RETURN(L.wk, w(p + "attention.self.key.weight", d, d));
    ASSIGN_OR_RETURN(L.bk, w(p + "attention.self.key.bias", 1, d));
    ASSIGN_OR_RETURN(L.wv, w(p + "attention.self.value.weight", d, d));
    ASSIGN_OR_RETURN(L.bv, w(p + "attention.self.value.bias", 1, d));
    ASSIGN_OR_RETURN(L.wo, w(p + "attention.output.dense.weight", d, d));
    ASSIGN_OR_RETURN(L.bo, w(p + "attention.output.dense.bias", 1, d));
    ASSIGN_OR_RETURN(L.attn_norm_w, w(p + "attention.output.LayerNorm.weight", 1, d));
    ASSIGN_OR_RETURN(L.attn_norm_b, w(p + "attention.output.LayerNorm.bias", 1, d));
    ASSIGN_OR_RETURN(L.ffn_up, w(p + "intermediate.dense.weight", c.ffn_dim, d));
    ASSIGN_OR_RETURN(L.ffn_up_b, w(p + "intermediate.dense.bias", 1, c.ffn_dim));
    ASSIGN_OR_RETURN(L.ffn_down, w(p + "output.dense.weight", d, c.ffn_dim));
    ASSIGN_OR_RETURN(L.ffn_down_b, w(p + "output.dense.bias", 1, d));
    ASSIGN_OR_RETURN(L.out_norm_w, w(p + "output.LayerNorm.weight", 1, d));
    ASSIGN_OR_RETURN(L.out_norm_b, w(p + "output.LayerNorm.bias", 1, d));
    model->layers_.push_back(std::move(L));
  }
  if (c.is_reranker) {
    ASSIGN_OR_RETURN(model->pooler_w_, w("pooler.dense.weight", d, d));
    ASSIGN_OR_RETURN(model->pooler_b_, w("pooler.dense.bias", 1, d));
    ASSIGN_OR_RETURN(model->cls_w_, LoadTensor(backend, st, "classifier.weight", 1, d));
    ASSIGN_OR_RETURN(model->cls_b_, LoadTensor(backend, st, "classifier.bias", 1, 1));
  }
  return model;
}

absl::StatusOr<std::unique_ptr<Buffer>> BertModel::Encode(
    const std::vector<std::vector<int32_t>>& sequences,
    const std::vector<std::vector<int32_t>>* type_ids, std::vector<int32_t>* starts) {
  const BertConfig& c = config_;
  if (sequences.empty()) return absl::InvalidArgumentError("no sequences");
  std::vector<int32_t> tokens, positions, types;
  starts->assign(1, 0);
  for (size_t s = 0; s < sequences.size(); ++s) {
    const auto& seq = sequences[s];
    if (seq.empty()) return absl::InvalidArgumentError("empty sequence");
    if (static_cast<int>(seq.size()) > c.max_positions) {
      return absl::InvalidArgumentError(absl::StrCat("a sequence of ", seq.size(),
                                                     " tokens is longer than the model's ",
                                                     c.max_positions));
    }
    if (type_ids != nullptr && (*type_ids)[s].size() != seq.size()) {
      return absl::InvalidArgumentError("type ids and tokens differ in length");
    }
    for (size_t i = 0; i < seq.size(); ++i) {
      if (seq[i] < 0 || seq[i] >= c.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat("token id ", seq[i], " is outside the vocabulary"));
      }
      tokens.push_back(seq[i]);
      positions.push_back(static_cast<int32_t>(i));
      const int32_t type = type_ids != nullptr ? (*type_ids)[s][i] : 0;
      if (type < 0 || (type_embd_ != nullptr ? type >= c.type_vocab_size : type != 0)) {
        return absl::InvalidArgumentError(absl::StrCat("token type ", type, " is out of range"));
      }
      types.push_back(type);
    }
    starts->push_back(static_cast<int32_t>(tokens.size()));
  }
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t d = c.dim;
  Backend& b = *backend_;
  auto x = b.Alloc(n * d), tmp = b.Alloc(n * d), q = b.Alloc(n * d), k = b.Alloc(n * d),
       v = b.Alloc(n * d), attn = b.Alloc(n * d), ffn = b.Alloc(n * c.ffn_dim);
  b.GetRows(*token_embd_, tokens, *x);
  b.GetRows(*pos_embd_, positions, *tmp);
  b.Add(*tmp, n * d, *x);
  if (type_embd_ != nullptr) {
    b.GetRows(*type_embd_, types, *tmp);
    b.Add(*tmp, n * d, *x);
  }
  b.LayerNorm(*x, n, d, *embd_norm_w_, *embd_norm_b_, c.norm_eps, *x);
  const int head_dim = c.dim / c.num_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  for (const Layer& L : layers_) {
    b.MatMul(*L.wq, *x, n, *q, L.bq.get());
    b.MatMul(*L.wk, *x, n, *k, L.bk.get());
    b.MatMul(*L.wv, *x, n, *v, L.bv.get());
    b.DenseAttention(*q, *k, *v, *starts, c.num_heads, head_dim, scale, *attn);
    b.MatMul(*L.wo, *attn, n, *tmp, L.bo.get());
    b.Add(*tmp, n * d, *x);
    b.LayerNorm(*x, n, d, *L.attn_norm_w, *L.attn_norm_b, c.norm_eps, *x);
    b.MatMul(*L.ffn_up, *x, n, *ffn, L.ffn_up_b.get());
    b.Gelu(*ffn, n * c.ffn_dim);
    b.MatMul(*L.ffn_down, *ffn, n, *tmp, L.ffn_down_b.get());
    b.Add(*tmp, n * d, *x);
    b.LayerNorm(*x, n, d, *L.out_norm_w, *L.out_norm_b, c.norm_eps, *x);
  }
  return x;
}

std::vector<std::pair<size_t, size_t>> BertModel::Passes(
    const std::vector<std::vector<int32_t>>& sequences) const {
  const int64_t limit = backend_->PreferredPassTokens();
  std::vector<std::pair<size_t, size_t>> passes;
  size_t begin = 0;
  int64_t tokens = 0;
  for (size_t s = 0; s < sequences.size(); ++s) {
    const auto len = static_cast<int64_t>(sequences[s].size());
    if (limit > 0 && s > begin && tokens + len > limit) {
      passes.emplace_back(begin, s);
      begin = s;
      tokens = 0;
    }
    tokens += len;
  }
  if (begin < sequences.size() || sequences.empty()) passes.emplace_back(begin, sequences.size());
  return passes;
}

absl::StatusOr<std::vector<std::vector<float>>> BertModel::Embed(
    const std::vector<std::vector<int32_t>>& sequences) {
  const auto passes = Passes(sequences);
  if (passes.size() == 1) return EmbedPass(sequences);
  std::vector<std::vector<float>> out;
  out.reserve(sequences.size());
  for (const auto& [begin, end] : passes) {
    ASSIGN_OR_RETURN(std::vector<std::vector<float>> part,
                     EmbedPass({sequences.begin() + begin, sequences.begin() + end}));
    for (auto& e : part) out.push_back(std::move(e));
  }
  return out;
}

absl::StatusOr<std::vector<std::vector<float>>> BertModel::EmbedPass(
    const std::vector<std::vector<int32_t>>& sequences) {
  std::vector<int32_t> starts;
  ASSIGN_OR_RETURN(std::unique_ptr<Buffer> x, Encode(sequences, nullptr, &starts));
  const int d = config_.dim;
  const int64_t m = static_cast<int64_t>(sequences.size());
  Backend& b = *backend_;
  std::vector<std::vector<float>> out(sequences.size(), std::vector<float>(d, 0.0f));
  if (config_.pooling == Pooling::kCls) {
    // Each sequence's first token, gathered where the states are: m rows cross to the host.
    auto cls = b.Alloc(m * d);
    b.GatherRows(*x, absl::MakeConstSpan(starts.data(), m), d, *cls);
    std::vector<float> host(m * d);
    b.CopyToHost(*cls, 0, m * d, host.data());
    for (int64_t s = 0; s < m; ++s) std::copy_n(host.begin() + s * d, d, out[s].begin());
    return out;
  }
  const int64_t n = starts.back();
  std::vector<float> hidden(n * d);
  b.CopyToHost(*x, 0, n * d, hidden.data());
  for (size_t s = 0; s < sequences.size(); ++s) {  // mean pooling
    const int len = starts[s + 1] - starts[s];
    for (int t = starts[s]; t < starts[s + 1]; ++t) {
      for (int i = 0; i < d; ++i) out[s][i] += hidden[int64_t{t} * d + i];
    }
    for (float& f : out[s]) f /= static_cast<float>(len);
  }
  return out;
}

absl::StatusOr<std::vector<float>> BertModel::Score(
    const std::vector<std::vector<int32_t>>& sequences,
    const std::vector<std::vector<int32_t>>& type_ids) {
  if (!config_.is_reranker) {
    return absl::FailedPreconditionError("this model has no classification head (not a reranker)");
  }
  if (type_ids.size() != sequences.size()) {
    return absl::InvalidArgumentError("type ids and sequences differ in count");
  }
  const auto passes = Passes(sequences);
  if (passes.size() == 1) return ScorePass(sequences, type_ids);
  std::vector<float> out;
  out.reserve(sequences.size());
  for (const auto& [begin, end] : passes) {
    ASSIGN_OR_RETURN(std::vector<float> part,
                     ScorePass({sequences.begin() + begin, sequences.begin() + end},
                               {type_ids.begin() + begin, type_ids.begin() + end}));
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

absl::StatusOr<std::vector<float>> BertModel::ScorePass(
    const std::vector<std::vector<int32_t>>& sequences,
    const std::vector<std::vector<int32_t>>& type_ids) {
  std::vector<int32_t> starts;
  ASSIGN_OR_RETURN(std::unique_ptr<Buffer> x, Encode(sequences, &type_ids, &starts));
  const int64_t d = config_.dim, m = static_cast<int64_t>(sequences.size());
  Backend& b = *backend_;
  auto cls = b.Alloc(m * d), pooled = b.Alloc(m * d), logit = b.Alloc(m);
  b.GatherRows(*x, absl::MakeConstSpan(starts.data(), m), d, *cls);  // first tokens, on device
  b.MatMul(*pooler_w_, *cls, m, *pooled, pooler_b_.get());
  std::vector<float> host(m * d);
  b.CopyToHost(*pooled, 0, m * d, host.data());
  for (float& f : host) f = std::tanh(f);
  b.CopyFromHost(host.data(), m * d, *pooled, 0);
  b.MatMul(*cls_w_, *pooled, m, *logit, cls_b_.get());
  std::vector<float> scores(m);
  b.CopyToHost(*logit, 0, m, scores.data());
  return scores;
}

}  // namespace tessera::engine
