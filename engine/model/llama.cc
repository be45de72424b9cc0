#include "engine/model/llama.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace tessera::engine {

absl::StatusOr<WeightData> ToWeightData(const TensorView& t, int64_t rows, int64_t cols) {
  if ((cols >= 0 && t.cols() != cols) || (rows >= 0 && t.rows() != rows)) {
    return absl::InvalidArgumentError(absl::StrCat("tensor ", t.name, " has shape [", t.rows(), ", ",
                                                   t.cols(), "], expected [", rows, ", ", cols,
                                                   "]"));
  }
  return WeightData{t.type, t.rows(), t.cols(), t.data};
}

absl::StatusOr<std::unique_ptr<Weight>> LoadTensor(Backend* backend, const ModelFile& file,
                                                   std::string_view name, int64_t rows,
                                                   int64_t cols) {
  const TensorView* t = file.FindTensor(name);
  if (t == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("the model file has no tensor ", std::string(name)));
  }
  ASSIGN_OR_RETURN(WeightData data, ToWeightData(*t, rows, cols));
  auto weight = backend->LoadWeight(data);
  if (!weight.ok()) return ::tessera::Annotate(weight.status(), absl::StrCat("tensor ", std::string(name)));
  return weight;
}

namespace {

absl::StatusOr<int> GgufInt(const GgufFile& f, const std::string& key) {
  ASSIGN_OR_RETURN(int64_t v, f.GetInt(key));
  if (v < 0 || v > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError(absl::StrCat(key, " = ", v, " is out of range"));
  }
  return static_cast<int>(v);
}

template <typename T>
T OrDefault(absl::StatusOr<T> v, T def) {
  return v.ok() ? *v : def;
}

// llama.cpp's GGUF names; the output projection falls back to the tied embedding table.
std::string GgufTensorName(LlamaTensor t, int l, bool has_output) {
  auto blk = [l](const char* n) { return absl::StrCat("blk.", l, ".", n, ".weight"); };
  switch (t) {
    case LlamaTensor::kTokenEmbd: return "token_embd.weight";
    case LlamaTensor::kOutputNorm: return "output_norm.weight";
    case LlamaTensor::kOutput: return has_output ? "output.weight" : "token_embd.weight";
    case LlamaTensor::kAttnNorm: return blk("attn_norm");
    case LlamaTensor::kWq: return blk("attn_q");
    case LlamaTensor::kWk: return blk("attn_k");
    case LlamaTensor::kWv: return blk("attn_v");
    case LlamaTensor::kWo: return blk("attn_output");
    case LlamaTensor::kFfnNorm: return blk("ffn_norm");
    case LlamaTensor::kGate: return blk("ffn_gate");
    case LlamaTensor::kUp: return blk("ffn_up");
    case LlamaTensor::kDown: return blk("ffn_down");
  }
  return "";
}

// Hugging Face LlamaForCausalLM / MistralForCausalLM names; lm_head falls back to the tied
// embedding table.
std::string HfTensorName(LlamaTensor t, int l, bool has_head) {
  auto layer = [l](const char* n) { return absl::StrCat("model.layers.", l, ".", n, ".weight"); };
  switch (t) {
    case LlamaTensor::kTokenEmbd: return "model.embed_tokens.weight";
    case LlamaTensor::kOutputNorm: return "model.norm.weight";
    case LlamaTensor::kOutput: return has_head ? "lm_head.weight" : "model.embed_tokens.weight";
    case LlamaTensor::kAttnNorm: return layer("input_layernorm");
    case LlamaTensor::kWq: return layer("self_attn.q_proj");
    case LlamaTensor::kWk: return layer("self_attn.k_proj");
    case LlamaTensor::kWv: return layer("self_attn.v_proj");
    case LlamaTensor::kWo: return layer("self_attn.o_proj");
    case LlamaTensor::kFfnNorm: return layer("post_attention_layernorm");
    case LlamaTensor::kGate: return layer("mlp.gate_proj");
    case LlamaTensor::kUp: return layer("mlp.up_proj");
    case LlamaTensor::kDown: return layer("mlp.down_proj");
  }
  return "";
}

}  // namespace

struct LlamaModel::Workspace {
  std::unique_ptr<Buffer> x, h, q, k, v, attn, o, gate, up, last, logits;
};

LlamaModel::LlamaModel(LlamaConfig config, Backend* backend)
    : config_(std::move(config)), backend_(backend) {}
LlamaModel::~LlamaModel() = default;

absl::Status LlamaModel::Validate() const {
  const LlamaConfig& c = config_;
  if (c.dim <= 0 || c.num_layers <= 0 || c.num_heads <= 0 || c.num_kv_heads <= 0 ||
      c.head_dim <= 0 || c.ffn_dim <= 0 || c.vocab_size <= 0) {
    return absl::InvalidArgumentError("the model's hyperparameters are missing or zero");
  }
  if (c.num_heads % c.num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat("head count ", c.num_heads,
                                                   " is not a multiple of the kv head count ",
                                                   c.num_kv_heads));
  }
  if (c.rope.rotary_dim % 2 != 0 || c.rope.rotary_dim > c.head_dim) {
    return absl::InvalidArgumentError("rope dimension count must be even and at most the head size");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<LlamaModel>> LlamaModel::FromGguf(const GgufFile& f,
                                                                 Backend* backend) {
  const std::string arch(f.architecture());
  if (arch != "llama" && arch != "mistral") {
    return absl::InvalidArgumentError(
        absl::StrCat("architecture '", arch, "' is not a Llama/Mistral decoder"));
  }
  auto key = [&](const char* k) { return absl::StrCat(arch, ".", k); };
  LlamaConfig c;
  c.architecture = arch;
  ASSIGN_OR_RETURN(c.dim, GgufInt(f, key("embedding_length")));
  ASSIGN_OR_RETURN(c.num_layers, GgufInt(f, key("block_count")));
  ASSIGN_OR_RETURN(c.num_heads, GgufInt(f, key("attention.head_count")));
  c.num_kv_heads = OrDefault(GgufInt(f, key("attention.head_count_kv")), c.num_heads);
  ASSIGN_OR_RETURN(c.ffn_dim, GgufInt(f, key("feed_forward_length")));
  c.context_length = OrDefault(GgufInt(f, key("context_length")), 2048);
  c.head_dim = c.num_heads > 0 ? c.dim / c.num_heads : 0;
  c.head_dim = OrDefault(GgufInt(f, key("attention.key_length")), c.head_dim);
  c.norm_eps = OrDefault<float>(
      [&]() -> absl::StatusOr<float> {
        ASSIGN_OR_RETURN(double v, f.GetFloat(key("attention.layer_norm_rms_epsilon")));
        return static_cast<float>(v);
      }(),
      1e-5f);
  c.rope.style = RopeStyle::kNormal;
  c.rope.theta = OrDefault<float>(
      [&]() -> absl::StatusOr<float> {
        ASSIGN_OR_RETURN(double v, f.GetFloat(key("rope.freq_base")));
        return static_cast<float>(v);
      }(),
      10000.0f);
  c.rope.rotary_dim = OrDefault(GgufInt(f, key("rope.dimension_count")), c.head_dim);
  auto scaling = f.GetString(key("rope.scaling.type"));
  if (scaling.ok() && *scaling != "none") {
    if (*scaling != "linear") {
      return absl::InvalidArgumentError(
          absl::StrCat("rope scaling '", std::string(*scaling), "' is not supported (supported: linear)"));
    }
    auto factor = f.GetFloat(key("rope.scaling.factor"));
    if (factor.ok() && *factor > 0) c.rope.freq_scale = static_cast<float>(1.0 / *factor);
  }
  c.sliding_window = OrDefault(GgufInt(f, key("attention.sliding_window")), 0);
  const TensorView* embd = f.FindTensor("token_embd.weight");
  if (embd == nullptr) return absl::InvalidArgumentError("the model file has no token_embd.weight");
  c.vocab_size = static_cast<int>(embd->rows());

  const bool has_output = f.FindTensor("output.weight") != nullptr;
  return FromWeights(std::move(c), backend,
                     [&](LlamaTensor t, int l, int64_t rows, int64_t cols) {
                       return LoadTensor(backend, f, GgufTensorName(t, l, has_output), rows, cols);
                     });
}

namespace {

absl::StatusOr<int> JsonInt(const nlohmann::json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end() || !it->is_number_integer()) {
    return absl::InvalidArgumentError(absl::StrCat("config.json: ", key, " is missing or not an integer"));
  }
  const int64_t v = it->get<int64_t>();
  if (v < 0 || v > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError(absl::StrCat("config.json: ", key, " = ", v, " is out of range"));
  }
  return static_cast<int>(v);
}

double JsonNumber(const nlohmann::json& cfg, const char* key, double def) {
  auto it = cfg.find(key);
  return it != cfg.end() && it->is_number() ? it->get<double>() : def;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LlamaModel>> LlamaModel::FromSafetensors(
    const SafetensorsModel& st, Backend* backend) {
  const nlohmann::json& cfg = st.config();
  if (!cfg.is_object()) return absl::InvalidArgumentError("config.json is not an object");
  std::string arch = "llama";
  if (auto it = cfg.find("model_type"); it != cfg.end() && it->is_string()) {
    arch = it->get<std::string>();
  }
  if (arch != "llama" && arch != "mistral") {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json model_type '", arch, "' is not a Llama/Mistral decoder"));
  }
  LlamaConfig c;
  c.architecture = arch;
  ASSIGN_OR_RETURN(c.dim, JsonInt(cfg, "hidden_size"));
  ASSIGN_OR_RETURN(c.num_layers, JsonInt(cfg, "num_hidden_layers"));
  ASSIGN_OR_RETURN(c.num_heads, JsonInt(cfg, "num_attention_heads"));
  c.num_kv_heads = OrDefault(JsonInt(cfg, "num_key_value_heads"), c.num_heads);
  ASSIGN_OR_RETURN(c.ffn_dim, JsonInt(cfg, "intermediate_size"));
  ASSIGN_OR_RETURN(c.vocab_size, JsonInt(cfg, "vocab_size"));
  c.context_length = OrDefault(JsonInt(cfg, "max_position_embeddings"), 2048);
  c.head_dim = c.num_heads > 0 ? c.dim / c.num_heads : 0;
  if (auto it = cfg.find("head_dim"); it != cfg.end() && it->is_number_integer()) {
    ASSIGN_OR_RETURN(c.head_dim, JsonInt(cfg, "head_dim"));
  }
  c.norm_eps = static_cast<float>(JsonNumber(cfg, "rms_norm_eps", 1e-5));
  c.rope.style = RopeStyle::kNeox;
  c.rope.theta = static_cast<float>(JsonNumber(cfg, "rope_theta", 10000.0));
  c.rope.rotary_dim = c.head_dim;
  if (auto it = cfg.find("rope_scaling"); it != cfg.end() && it->is_object()) {
    std::string type = it->value("type", it->value("rope_type", std::string("linear")));
    if (type != "linear" && type != "default") {
      return absl::InvalidArgumentError(
          absl::StrCat("rope_scaling type '", type, "' is not supported (supported: linear)"));
    }
    const double factor = JsonNumber(*it, "factor", 1.0);
    if (type == "linear" && factor > 0) c.rope.freq_scale = static_cast<float>(1.0 / factor);
  }
  if (auto it = cfg.find("sliding_window"); it != cfg.end() && it->is_number_integer()) {
    ASSIGN_OR_RETURN(c.sliding_window, JsonInt(cfg, "sliding_window"));
  }
  const bool tied = cfg.value("tie_word_embeddings", false);

  const bool has_head = !tied && st.FindTensor("lm_head.weight") != nullptr;
  return FromWeights(std::move(c), backend,
                     [&](LlamaTensor t, int l, int64_t rows, int64_t cols) {
                       return LoadTensor(backend, st, HfTensorName(t, l, has_head), rows, cols);
                     });
}

absl::StatusOr<std::unique_ptr<LlamaModel>> LlamaModel::FromWeights(LlamaConfig config,
                                                                    Backend* backend,
                                                                    const TensorSource& source) {
  auto model = absl::WrapUnique(new LlamaModel(std::move(config), backend));
  RETURN_IF_ERROR(model->Validate());
  const LlamaConfig& m = model->config_;
  const int64_t qdim = int64_t{m.num_heads} * m.head_dim;
  const int64_t kvdim = int64_t{m.num_kv_heads} * m.head_dim;
  using T = LlamaTensor;
  ASSIGN_OR_RETURN(model->token_embd_, source(T::kTokenEmbd, -1, m.vocab_size, m.dim));
  ASSIGN_OR_RETURN(model->output_norm_, source(T::kOutputNorm, -1, 1, m.dim));
  ASSIGN_OR_RETURN(model->output_, source(T::kOutput, -1, m.vocab_size, m.dim));
  for (int l = 0; l < m.num_layers; ++l) {
    Layer layer;
    ASSIGN_OR_RETURN(layer.attn_norm, source(T::kAttnNorm, l, 1, m.dim));
    ASSIGN_OR_RETURN(layer.wq, source(T::kWq, l, qdim, m.dim));
    ASSIGN_OR_RETURN(layer.wk, source(T::kWk, l, kvdim, m.dim));
    ASSIGN_OR_RETURN(layer.wv, source(T::kWv, l, kvdim, m.dim));
    ASSIGN_OR_RETURN(layer.wo, source(T::kWo, l, m.dim, qdim));
    ASSIGN_OR_RETURN(layer.ffn_norm, source(T::kFfnNorm, l, 1, m.dim));
    ASSIGN_OR_RETURN(layer.w_gate, source(T::kGate, l, m.ffn_dim, m.dim));
    ASSIGN_OR_RETURN(layer.w_up, source(T::kUp, l, m.ffn_dim, m.dim));
    ASSIGN_OR_RETURN(layer.w_down, source(T::kDown, l, m.dim, m.ffn_dim));
    model->layers_.push_back(std::move(layer));
  }
  return model;
}

absl::StatusOr<std::unique_ptr<KvCache>> LlamaModel::NewCache(int num_blocks, int block_size) const {
  KvCacheShape shape;
  shape.num_layers = config_.num_layers;
  shape.num_blocks = num_blocks;
  shape.block_size = block_size;
  shape.num_kv_heads = config_.num_kv_heads;
  shape.head_dim = config_.head_dim;
  return backend_->AllocKvCache(shape);
}

LlamaModel::Workspace& LlamaModel::GetWorkspace(int64_t n, int64_t num_logits) {
  if (workspace_ == nullptr || n > workspace_tokens_ || num_logits > workspace_logits_) {
    const LlamaConfig& c = config_;
    n = std::max(n, workspace_tokens_);
    num_logits = std::max<int64_t>({num_logits, workspace_logits_, 1});
    auto ws = std::make_unique<Workspace>();
    const int64_t qdim = int64_t{c.num_heads} * c.head_dim;
    const int64_t kvdim = int64_t{c.num_kv_heads} * c.head_dim;
    ws->x = backend_->Alloc(n * c.dim);
    ws->h = backend_->Alloc(n * c.dim);
    ws->q = backend_->Alloc(n * qdim);
    ws->k = backend_->Alloc(n * kvdim);
    ws->v = backend_->Alloc(n * kvdim);
    ws->attn = backend_->Alloc(n * qdim);
    ws->o = backend_->Alloc(n * c.dim);
    ws->gate = backend_->Alloc(n * c.ffn_dim);
    ws->up = backend_->Alloc(n * c.ffn_dim);
    ws->last = backend_->Alloc(num_logits * c.dim);
    ws->logits = backend_->Alloc(num_logits * c.vocab_size);
    workspace_ = std::move(ws);
    workspace_tokens_ = n;
    workspace_logits_ = num_logits;
  }
  return *workspace_;
}

absl::Status LlamaModel::Forward(const ForwardBatch& batch, KvCache& cache,
                                 std::vector<float>* logits) {
  RETURN_IF_ERROR(Run(batch, cache));
  const int64_t num_logits = static_cast<int64_t>(batch.logits_for.size());
  logits->resize(static_cast<size_t>(num_logits) * config_.vocab_size);
  if (num_logits > 0) {
    backend_->CopyToHost(*workspace_->logits, 0, num_logits * config_.vocab_size, logits->data());
  }
  return absl::OkStatus();
}

absl::Status LlamaModel::ForwardTopK(const ForwardBatch& batch, KvCache& cache,
                                     const TopKRequest& request, TopKRows* out) {
  last_rows_ = 0;  // no row of a failed pass can be read
  RETURN_IF_ERROR(Run(batch, cache));
  const int64_t rows = static_cast<int64_t>(batch.logits_for.size());
  if (static_cast<int64_t>(request.sum_temperature.size()) != rows) {
    return absl::InvalidArgumentError("the sampling request does not have one row per logits row");
  }
  last_rows_ = rows;
  if (rows == 0) {
    *out = TopKRows{};
    out->k = request.k;
    return absl::OkStatus();
  }
  backend_->TopK(*workspace_->logits, rows, config_.vocab_size, request, out);
  return absl::OkStatus();
}

absl::Status LlamaModel::CopyLogitsRow(int64_t i, std::vector<float>* row) {
  if (workspace_ == nullptr || i < 0 || i >= last_rows_) {
    return absl::OutOfRangeError(absl::StrCat("no logits row ", i, " in the last forward pass"));
  }
  row->resize(config_.vocab_size);
  backend_->CopyToHost(*workspace_->logits, i * config_.vocab_size, config_.vocab_size,
                       row->data());
  return absl::OkStatus();
}

absl::Status LlamaModel::Run(const ForwardBatch& batch, KvCache& cache) {
  const LlamaConfig& c = config_;
  const int64_t n = static_cast<int64_t>(batch.tokens.size());
  if (n == 0) return absl::InvalidArgumentError("empty batch");
  if (batch.token_seq.size() != batch.tokens.size() ||
      batch.token_pos.size() != batch.tokens.size() || batch.slots.size() != batch.tokens.size()) {
    return absl::InvalidArgumentError("batch arrays differ in length");
  }
  for (int32_t t : batch.tokens) {
    if (t < 0 || t >= c.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", t, " is outside the vocabulary"));
    }
  }
  const int64_t num_slots = int64_t{cache.shape().num_blocks} * cache.shape().block_size;
  for (int32_t s : batch.slots) {
    if (s < 0 || s >= num_slots) return absl::InvalidArgumentError("cache slot out of range");
  }
  for (int32_t i : batch.logits_for) {
    if (i < 0 || i >= n) return absl::InvalidArgumentError("logits_for index out of range");
  }
  const int64_t num_logits = static_cast<int64_t>(batch.logits_for.size());
  Workspace& ws = GetWorkspace(n, num_logits);
  Backend& b = *backend_;

  PagedAttentionBatch attn;
  attn.token_seq = batch.token_seq;
  attn.token_pos = batch.token_pos;
  attn.block_tables = batch.block_tables;
  attn.sliding_window = c.sliding_window;

  StepScope step(b);  // on a GPU: one CUDA graph per recurring step shape
  b.GetRows(*token_embd_, batch.tokens, *ws.x);
  // ForwardLayers leaves the final states of the logits rows (in logits_for order) in ws.last.
  ForwardLayers(batch, attn, n, cache, ws);
  if (num_logits > 0) {
    // The rows whose logits are wanted (a few per step), normed and projected alone.
    b.RmsNorm(*ws.last, num_logits, c.dim, *output_norm_, c.norm_eps, *ws.last);
    b.MatMul(*output_, *ws.last, num_logits, *ws.logits);
  }
  return absl::OkStatus();
}

void LlamaModel::ForwardLayers(const ForwardBatch& batch, const PagedAttentionBatch& attn,
                               int64_t n, KvCache& cache, Workspace& ws) {
  const LlamaConfig& c = config_;
  Backend& b = *backend_;
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  b.RmsNorm(*ws.x, n, c.dim, *layers_[0].attn_norm, c.norm_eps, *ws.h);
  const int64_t qdim = int64_t{c.num_heads} * c.head_dim;
  const auto& out_rows = batch.logits_for;
  const auto m = static_cast<int64_t>(out_rows.size());
  for (int l = 0; l < c.num_layers; ++l) {
    const Layer& L = layers_[l];
    const Weight* qkv[] = {L.wq.get(), L.wk.get(), L.wv.get()};
    Buffer* qkv_out[] = {ws.q.get(), ws.k.get(), ws.v.get()};
    b.MatMuls(qkv, *ws.h, n, qkv_out);
    b.RopeWriteKv(*ws.q, *ws.k, *ws.v, batch.token_pos, c.num_heads, c.num_kv_heads, c.head_dim,
                  c.rope, cache, l, batch.slots);
    if (l + 1 == c.num_layers && m < n) {
      // The last layer, past its keys and values (which later steps read), matters only for the
      // rows whose logits are wanted: a prompt's last token, not its hundreds of others. Their
      // attention, output projection and FFN run alone (m rows); the rest stops here.
      if (m == 0) return;
      std::vector<int32_t> seq(m), pos(m);
      for (int64_t i = 0; i < m; ++i) {
        seq[i] = batch.token_seq[out_rows[i]];
        pos[i] = batch.token_pos[out_rows[i]];
      }
      PagedAttentionBatch rows = attn;
      rows.token_seq = seq;
      rows.token_pos = pos;
      b.GatherRows(*ws.q, out_rows, qdim, *ws.attn);       // their queries
      b.PagedAttention(cache, l, *ws.attn, rows, c.num_heads, scale, *ws.q);
      b.GatherRows(*ws.x, out_rows, c.dim, *ws.last);      // their residual stream
      b.MatMul(*L.wo, *ws.q, m, *ws.o);
      b.AddRmsNorm(*ws.o, m, c.dim, *ws.last, *L.ffn_norm, c.norm_eps, *ws.h);
      b.MatMulSwiGlu(*L.w_gate, *L.w_up, *ws.h, m, *ws.gate, *ws.up);
      b.MatMul(*L.w_down, *ws.gate, m, *ws.o);
      b.Add(*ws.o, m * c.dim, *ws.last);
      return;
    }
    b.PagedAttention(cache, l, *ws.q, attn, c.num_heads, scale, *ws.attn);
    b.MatMul(*L.wo, *ws.attn, n, *ws.o);
    b.AddRmsNorm(*ws.o, n, c.dim, *ws.x, *L.ffn_norm, c.norm_eps, *ws.h);
    b.MatMulSwiGlu(*L.w_gate, *L.w_up, *ws.h, n, *ws.gate, *ws.up);
    b.MatMul(*L.w_down, *ws.gate, n, *ws.o);
    // The residual add, fused with the next layer's attention norm.
    if (l + 1 < c.num_layers) {
      b.AddRmsNorm(*ws.o, n, c.dim, *ws.x, *layers_[l + 1].attn_norm, c.norm_eps, *ws.h);
    } else {
      b.Add(*ws.o, n * c.dim, *ws.x);
    }
  }
  if (m > 0) b.GatherRows(*ws.x, out_rows, c.dim, *ws.last);
}

}  // namespace tessera::engine
