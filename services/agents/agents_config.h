// The agents' part of the server configuration (`tessera serve --agents_config=FILE.json`): the
// models served by OpenAI-compatible servers, and the conversation history window.
//
//   {"openai_models": {"mistral-small": {"base_url": "https://api.mistral.ai/v1",
//                                         "api_key_env": "MISTRAL_API_KEY",
//                                         "model": "mistral-small-latest"}},
//    "history_messages": 20}
//
// API keys are never written in the file: "api_key_env" names the environment variable holding it.
#ifndef TESSERA_SERVICES_AGENTS_AGENTS_CONFIG_H_
#define TESSERA_SERVICES_AGENTS_AGENTS_CONFIG_H_

#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "agents/models/openai_chat_model.h"

namespace tessera::agents_service {

struct AgentsConfig {
  std::map<std::string, agents::OpenAiChatModel::Options> openai_models;
  int history_messages = 20;
};

// INVALID_ARGUMENT naming the bad field; FAILED_PRECONDITION when an api_key_env is not set.
absl::StatusOr<AgentsConfig> ParseAgentsConfig(const std::string& json,
                                               const std::function<const char*(const char*)>& getenv);

// Resolves a credential_ref of the form "env:NAME" from the environment. Other forms are
// NOT_FOUND (stored credentials for agents are not supported yet).
absl::StatusOr<std::string> ResolveEnvCredential(const std::string& ref,
                                                 const std::function<const char*(const char*)>& getenv);

}  // namespace tessera::agents_service

#endif  // TESSERA_SERVICES_AGENTS_AGENTS_CONFIG_H_
