#include "services/agents/agents_config.h"

#include <cstring>

#include "gtest/gtest.h"

namespace tessera::agents_service {
namespace {

const char* FakeEnv(const char* name) {
  if (std::strcmp(name, "KEY") == 0) return "sk-123";
  return nullptr;
}

TEST(AgentsConfig, ReadsOpenAiModelsWithKeysFromTheEnvironment) {
  auto c = ParseAgentsConfig(
      R"({"openai_models": {"small": {"base_url": "http://h/v1", "model": "m", "api_key_env": "KEY"}},
          "history_messages": 6})",
      FakeEnv);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->history_messages, 6);
  EXPECT_EQ(c->openai_models.at("small").api_key, "sk-123");
  EXPECT_EQ(c->openai_models.at("small").model, "m");
}

TEST(AgentsConfig, ErrorsNameTheField) {
  EXPECT_EQ(ParseAgentsConfig("[", FakeEnv).status().code(), absl::StatusCode::kInvalidArgument);
  auto missing = ParseAgentsConfig(R"({"openai_models": {"s": {"base_url": "http://h", "api_key_env": "NOPE"}}})", FakeEnv);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(missing.status().message().find("openai_models.s.api_key_env"), std::string::npos);
  auto bad = ParseAgentsConfig(R"({"openai_models": {"s": {"url": "x"}}})", FakeEnv);
  EXPECT_NE(bad.status().message().find("openai_models.s: unknown field \"url\""), std::string::npos);
  EXPECT_EQ(ParseAgentsConfig(R"({"history": 1})", FakeEnv).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AgentsConfig, CredentialsComeFromTheEnvironmentOnly) {
  EXPECT_EQ(*ResolveEnvCredential("env:KEY", FakeEnv), "sk-123");
  EXPECT_EQ(ResolveEnvCredential("env:NOPE", FakeEnv).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ResolveEnvCredential("cred-42", FakeEnv).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace tessera::agents_service
