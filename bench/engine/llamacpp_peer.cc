#include "bench/engine/llamacpp_peer.h"

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace tessera::bench {
namespace {

// Single-quotes `s` for /bin/sh.
std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// The JSON objects among the lines of `text` (the tools print other lines too).
std::vector<nlohmann::json> JsonLines(const std::string& text) {
  std::vector<nlohmann::json> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line.front() != '{') continue;
    nlohmann::json j = nlohmann::json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> RunCommand(const std::string& command, const std::string& log_path,
                                       bool merge_stderr) {
  const std::string full =
      merge_stderr ? absl::StrCat("(", command, ") 2>&1 | tee -a ", Quote(log_path))
                   : absl::StrCat(command, " 2>>", Quote(log_path));
  FILE* p = popen(full.c_str(), "r");
  if (p == nullptr) return absl::InternalError(absl::StrCat("cannot run: ", command));
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int rc = pclose(p);  // with merge_stderr, tee's status (pipefail is not POSIX)
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("'", command, "' failed (status ", WEXITSTATUS(rc),
                                            "); see ", log_path));
  }
  return out;
}

absl::StatusOr<LlamaBenchResult> RunLlamaBench(const LlamaBenchOptions& o, const std::string& model,
                                               int n_prompt, int n_gen, bool embeddings) {
  std::string cmd = absl::StrCat(Quote(o.bin_dir + "/llama-bench"), " -m ", Quote(model), " -t ",
                                 o.threads, " -p ", n_prompt, " -n ", n_gen, " -r ", o.repetitions,
                                 " -o jsonl");
  if (embeddings) cmd += " -embd 1";
  auto out = RunCommand(cmd, o.log_path);
  if (!out.ok()) return out.status();
  LlamaBenchResult r;
  for (const nlohmann::json& j : JsonLines(*out)) {
    if (!j.contains("samples_ts") || !j["samples_ts"].is_array()) continue;
    std::vector<double> samples = j["samples_ts"].get<std::vector<double>>();
    const int np = j.value("n_prompt", 0), ng = j.value("n_gen", 0);
    if (np > 0 && ng == 0) r.prefill_samples = samples;
    if (ng > 0 && np == 0) r.decode_samples = samples;
  }
  if ((n_prompt > 0 && r.prefill_samples.empty()) || (n_gen > 0 && r.decode_samples.empty())) {
    return absl::InternalError(absl::StrCat("llama-bench printed no result; see ", o.log_path));
  }
  return r;
}

absl::StatusOr<std::map<int, double>> RunBatchedBench(const LlamaBenchOptions& o,
                                                      const std::string& model, int n_prompt,
                                                      int n_gen, const std::vector<int>& parallel) {
  const int max_pl = *std::max_element(parallel.begin(), parallel.end());
  const int ctx = max_pl * (n_prompt + n_gen) + 64;
  const std::string cmd = absl::StrCat(
      Quote(o.bin_dir + "/llama-batched-bench"), " -m ", Quote(model), " -t ", o.threads, " -tb ",
      o.threads, " -c ", ctx, " -b 2048 -ub 512 -npp ", n_prompt, " -ntg ", n_gen, " -npl ",
      absl::StrJoin(parallel, ","), " --output-format jsonl");
  // batched-bench logs its results through the common logger, which may go to stderr: capture both.
  auto out = RunCommand(cmd, o.log_path, /*merge_stderr=*/true);
  if (!out.ok()) return out.status();
  std::map<int, double> r;
  for (const nlohmann::json& j : JsonLines(*out)) {
    if (j.contains("pl") && j.contains("speed_tg")) r[j["pl"].get<int>()] = j["speed_tg"].get<double>();
  }
  if (r.size() != parallel.size()) {
    return absl::InternalError(absl::StrCat("llama-batched-bench printed ", r.size(), " of ",
                                            parallel.size(), " results; see ", o.log_path));
  }
  return r;
}

}  // namespace tessera::bench
