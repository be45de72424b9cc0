#include "services/agents/agents_config.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace tessera::agents_service {

absl::StatusOr<AgentsConfig> ParseAgentsConfig(const std::string& text,
                                               const std::function<const char*(const char*)>& getenv) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return absl::InvalidArgumentError("agents config: not a JSON object");
  AgentsConfig c;
  for (const auto& [key, value] : j.items()) {
    if (key == "history_messages") {
      if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() > 1000) {
        return absl::InvalidArgumentError("history_messages: must be an integer in [0, 1000]");
      }
      c.history_messages = value.get<int>();
    } else if (key == "openai_models") {
      if (!value.is_object()) return absl::InvalidArgumentError("openai_models: must be an object of model ids");
      for (const auto& [id, m] : value.items()) {
        const std::string path = absl::StrCat("openai_models.", id);
        if (!m.is_object()) return absl::InvalidArgumentError(absl::StrCat(path, ": must be an object"));
        agents::OpenAiChatModel::Options o;
        for (const auto& [field, v] : m.items()) {
          if (!v.is_string()) return absl::InvalidArgumentError(absl::StrCat(path, ".", field, ": must be a string"));
          const std::string s = v.get<std::string>();
          if (field == "base_url") {
            o.base_url = s;
          } else if (field == "model") {
            o.model = s;
          } else if (field == "api_key_env") {
            const char* key = getenv(s.c_str());
            if (key == nullptr || *key == '\0') {
              return absl::FailedPreconditionError(
                  absl::StrCat(path, ".api_key_env: the environment variable ", s, " is not set"));
            }
            o.api_key = key;
          } else {
            return absl::InvalidArgumentError(
                absl::StrCat(path, ": unknown field \"", field, "\" (base_url, model, api_key_env)"));
          }
        }
        if (o.base_url.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ".base_url: required"));
        c.openai_models[id] = o;
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown field \"", key, "\" (openai_models, history_messages)"));
    }
  }
  return c;
}

absl::StatusOr<std::string> ResolveEnvCredential(const std::string& ref,
                                                 const std::function<const char*(const char*)>& getenv) {
  if (!absl::StartsWith(ref, "env:") || ref.size() == 4) {
    return absl::NotFoundError(absl::StrCat("credential '", ref,
                                            "': agents read credentials from the environment; write \"env:NAME\""));
  }
  const char* v = getenv(ref.substr(4).c_str());
  if (v == nullptr || *v == '\0') {
    return absl::NotFoundError(absl::StrCat("credential '", ref, "': the environment variable is not set"));
  }
  return std::string(v);
}

}  // namespace tessera::agents_service
