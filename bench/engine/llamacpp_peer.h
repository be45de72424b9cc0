// Runs native llama.cpp's benchmark tools (llama-bench, llama-batched-bench, built by
// build_llama_bench.sh from the source the pinned node-llama-cpp package carries) as child
// processes and parses their JSONL output.
#ifndef TESSERA_BENCH_ENGINE_LLAMACPP_PEER_H_
#define TESSERA_BENCH_ENGINE_LLAMACPP_PEER_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::bench {

// Runs `command` through /bin/sh, appending its stderr to `log_path`, and returns its stdout
// (with `merge_stderr`: stdout and stderr together, also appended to the log). INTERNAL with the
// exit status when it fails.
absl::StatusOr<std::string> RunCommand(const std::string& command, const std::string& log_path,
                                       bool merge_stderr = false);

struct LlamaBenchResult {
  // Tokens/s of each repetition (llama-bench's samples_ts), for the prompt test and the
  // generation test; empty when the test was not run.
  std::vector<double> prefill_samples, decode_samples;
};

struct LlamaBenchOptions {
  std::string bin_dir;  // holds llama-bench and llama-batched-bench
  std::string log_path;
  int threads = 2;
  int repetitions = 3;
};

// llama-bench -m model -t threads -p n_prompt -n n_gen -r reps -o jsonl [-embd 1].
absl::StatusOr<LlamaBenchResult> RunLlamaBench(const LlamaBenchOptions& o, const std::string& model,
                                               int n_prompt, int n_gen, bool embeddings);

// llama-batched-bench with prompts of n_prompt tokens (one per sequence) and n_gen generated
// tokens per sequence, for each parallel count; returns parallel count -> aggregate decode
// tokens/s (its speed_tg: pl * tg / time of the generation phase).
absl::StatusOr<std::map<int, double>> RunBatchedBench(const LlamaBenchOptions& o,
                                                      const std::string& model, int n_prompt,
                                                      int n_gen, const std::vector<int>& parallel);

}  // namespace tessera::bench

#endif  // TESSERA_BENCH_ENGINE_LLAMACPP_PEER_H_
