// `tessera generate` and `tessera embed`: try a model from the command line, either in this
// process (with --engine_config=FILE or --model_path=FILE.gguf) or against a running server's
// EngineService (with --server and a key). Each returns a process exit code (0 ok, 1 failure,
// 2 usage error); results go to `out`, diagnostics to `err`.
#ifndef TESSERA_SERVICES_ENGINE_ENGINE_COMMANDS_H_
#define TESSERA_SERVICES_ENGINE_ENGINE_COMMANDS_H_

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/engine.h"

namespace tessera::engine_service {

// Where the engine runs: locally from a configuration, or remotely.
struct EngineTarget {
  std::string engine_config;  // a JSON engine configuration file (local)
  std::string model_path;     // a single model file or directory (local); its id is "default"
  std::string server;         // remote server address, used when both of the above are empty
  std::string key;            // bearer key for the remote server
};

// The engine options for a local target (INVALID_ARGUMENT naming what is wrong).
absl::StatusOr<engine::EngineOptions> LocalEngineOptions(const EngineTarget& target);

struct GenerateCommandOptions {
  std::string model;  // model id; empty: the only generation model
  std::string prompt;
  bool chat = false;  // send the prompt as a user message through the chat template
  std::string system;
  engine::SamplingOptions sampling;
  bool seed_set = false;
  int max_tokens = 256;
  std::vector<std::string> stop;
};
// Prints the prompt (raw prompts only), then the generated text as it streams.
int GenerateCommand(const EngineTarget& target, const GenerateCommandOptions& options, FILE* out,
                    FILE* err);

struct EmbedCommandOptions {
  std::string model;  // empty: the only embedding model
  std::vector<std::string> inputs;
  bool normalize = true;
};
// Prints one JSON object per input: {"input": ..., "tokens": N, "embedding": [...]}.
int EmbedCommand(const EngineTarget& target, const EmbedCommandOptions& options, FILE* out,
                 FILE* err);

}  // namespace tessera::engine_service

#endif  // TESSERA_SERVICES_ENGINE_ENGINE_COMMANDS_H_
