// ParseEngineOptions: the engine's JSON configuration (see engine.h).
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/engine.h"
#include "nlohmann/json.hpp"

namespace tessera::engine {
namespace {

using Json = nlohmann::json;

absl::Status Unknown(const Json& obj, std::initializer_list<std::string_view> known,
                     const std::string& path) {
  for (const auto& [k, v] : obj.items()) {
    bool ok = false;
    for (std::string_view n : known) ok |= (k == n);
    if (!ok) return absl::InvalidArgumentError(absl::StrCat(path, k, ": unknown field"));
  }
  return absl::OkStatus();
}

absl::Status GetString(const Json& obj, const char* key, const std::string& path, std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end()) return absl::OkStatus();
  if (!it->is_string()) return absl::InvalidArgumentError(absl::StrCat(path, key, ": must be a string"));
  *out = it->get<std::string>();
  return absl::OkStatus();
}

absl::Status GetInt(const Json& obj, const char* key, const std::string& path, int min, int* out) {
  auto it = obj.find(key);
  if (it == obj.end()) return absl::OkStatus();
  if (!it->is_number_integer() || it->get<int64_t>() < min || it->get<int64_t>() > (1 << 30)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, key, ": must be an integer >= ", min));
  }
  *out = it->get<int>();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<EngineOptions> ParseEngineOptions(std::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("engine configuration: not valid JSON");
  if (!j.is_object()) return absl::InvalidArgumentError("engine configuration: must be an object");
  EngineOptions o;
  if (auto s = Unknown(j, {"device", "threads", "models"}, ""); !s.ok()) return s;
  if (auto s = GetString(j, "device", "", &o.device); !s.ok()) return s;
  if (auto s = GetInt(j, "threads", "", 0, &o.num_threads); !s.ok()) return s;
  auto models = j.find("models");
  if (models == j.end()) return o;
  if (!models->is_array()) return absl::InvalidArgumentError("models: must be an array");
  for (size_t i = 0; i < models->size(); ++i) {
    const Json& m = (*models)[i];
    const std::string path = absl::StrCat("models[", i, "].");
    if (!m.is_object()) return absl::InvalidArgumentError(absl::StrCat("models[", i, "]: must be an object"));
    if (auto s = Unknown(m, {"id", "path", "kind", "chat_format", "context_length", "kv_cache_mb",
                             "max_running", "max_queued", "max_batch_tokens"},
                         path);
        !s.ok()) {
      return s;
    }
    ModelConfig mc;
    std::string kind;
    if (auto s = GetString(m, "id", path, &mc.id); !s.ok()) return s;
    if (auto s = GetString(m, "path", path, &mc.path); !s.ok()) return s;
    if (auto s = GetString(m, "kind", path, &kind); !s.ok()) return s;
    if (auto s = GetString(m, "chat_format", path, &mc.chat_format); !s.ok()) return s;
    if (auto s = GetInt(m, "context_length", path, 0, &mc.context_length); !s.ok()) return s;
    if (auto s = GetInt(m, "kv_cache_mb", path, 1, &mc.kv_cache_mb); !s.ok()) return s;
    if (auto s = GetInt(m, "max_running", path, 1, &mc.max_running); !s.ok()) return s;
    if (auto s = GetInt(m, "max_queued", path, 0, &mc.max_queued); !s.ok()) return s;
    if (auto s = GetInt(m, "max_batch_tokens", path, 1, &mc.max_batch_tokens); !s.ok()) return s;
    if (mc.id.empty()) return absl::InvalidArgumentError(absl::StrCat(path, "id: required"));
    if (mc.path.empty()) return absl::InvalidArgumentError(absl::StrCat(path, "path: required"));
    if (kind.empty() || kind == "auto") {
      mc.kind = ModelKind::kAuto;
    } else if (kind == "generation") {
      mc.kind = ModelKind::kGeneration;
    } else if (kind == "embedding") {
      mc.kind = ModelKind::kEmbedding;
    } else if (kind == "rerank") {
      mc.kind = ModelKind::kRerank;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          path, "kind: '", kind, "' is not one of auto, generation, embedding, rerank"));
    }
    o.models.push_back(std::move(mc));
  }
  return o;
}

}  // namespace tessera::engine
