// //bench:engine: our inference engine against native llama.cpp, side by side in one run on the
// same GGUF files and thread count (see docs/BENCHMARKS.md).
//
//   bazel run -c opt //bench:engine -- [--quick | --full] [--threads=2]
//
// 1. Builds llama-bench and llama-batched-bench once (bench/engine/build_llama_bench.sh, from
//    the llama.cpp source inside the pinned node-llama-cpp npm package) into
//    ~/.cache/tessera/llama.cpp-build, and writes the model files once into
//    ~/.cache/tessera/bench-engine (bench/engine/bench_models.h).
// 2. Rounds, alternating ours and llama.cpp (A B, then B A), a memory-bandwidth reading right
//    before each run: prefill 512 tokens and batch-1 decode of 128 tokens on Mistral-7B shapes
//    with 2 layers (F16 and Q8_0), embeddings of 64-token sequences on bge-small shapes.
// 3. Aggregate decode throughput at 1, 4, 16 and 64 concurrent streams: our Scheduler against
//    llama-batched-bench.
// The last line is machine-readable (the worse of the F16 and Q8_0 ratios for the decoder):
//   RESULT decode_vs_llamacpp=<r> prefill_vs_llamacpp=<r> embed_vs_llamacpp=<r>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/bench_util.h"
#include "bench/engine/bench_models.h"
#include "bench/engine/llamacpp_peer.h"
#include "bench/engine/membw.h"
#include "bench/engine/ours.h"
#include "engine/backend/backend.h"
#include "engine/model/dtype.h"

ABSL_FLAG(bool, quick, true, "Quick (the default): under 10 minutes on 2 vCPUs once llama.cpp is built.");
ABSL_FLAG(bool, full, false, "More rounds, longer stream runs, both weight types for the streams.");
ABSL_FLAG(int, threads, 2, "Threads for both engines.");
ABSL_FLAG(int, rounds, 0, "Override the number of alternating rounds.");
ABSL_FLAG(int, repetitions, 3, "Timed runs per engine per round (llama-bench -r).");
ABSL_FLAG(int, layers, 2, "Decoder layers of the Mistral-7B-shaped files.");
ABSL_FLAG(std::string, sections, "decoder,embed,streams", "Comma-separated: decoder, embed, streams.");
ABSL_FLAG(std::string, stream_types, "", "Weight types for the streams section (default: Q8_0 "
          "quick, F16,Q8_0 full).");
ABSL_FLAG(std::string, cache_dir, "", "Model files (default ~/.cache/tessera/bench-engine).");
ABSL_FLAG(std::string, llama_cpp_dir, "", "llama.cpp source and build (default ~/.cache/tessera/llama.cpp-build).");
ABSL_FLAG(std::string, node_dir, "", "bench/engine/node of the workspace (default: from BUILD_WORKSPACE_DIRECTORY).");
ABSL_FLAG(std::string, bge_vocab, "", "ggml-vocab-bert-bge.gguf (default: from runfiles).");
ABSL_FLAG(bool, llamacpp, true, "Run llama.cpp (false: ours only, for a quick look at our numbers).");
ABSL_FLAG(std::string, markdown_out, "", "If set, the tables are also written here as Markdown.");

namespace {

using tessera::bench::Fmt;
using tessera::bench::Median;
using tessera::bench::OutputPath;
using tessera::bench::Runfile;
using tessera::engine::DType;

std::string Home() {
  const char* h = std::getenv("HOME");
  return h != nullptr ? h : "/tmp";
}

[[noreturn]] void Die(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "engine bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

template <typename T>
T OrDie(absl::StatusOr<T> v, const std::string& what) {
  if (!v.ok()) Die(what, v.status());
  return std::move(*v);
}

std::string Num(double v, const char* fmt = "%.1f") { return v > 0 ? Fmt(fmt, v) : "-"; }

// Per-round numbers of one test: ours and the peer, with the bandwidth read before each.
struct Series {
  std::vector<double> ours, peer, ours_bw, peer_bw;
  double OursMedian() const { return Median(ours); }
  double PeerMedian() const { return Median(peer); }
  // The median of the per-round ratios (drift cancels within a round).
  double Ratio() const {
    std::vector<double> r;
    for (size_t i = 0; i < std::min(ours.size(), peer.size()); ++i) {
      if (peer[i] > 0) r.push_back(ours[i] / peer[i]);
    }
    return r.empty() ? -1 : Median(r);
  }
};

// Percent of the bandwidth ceiling: bytes per token * tokens/s over the GB/s read just before.
double PercentOfCeiling(double tok_s, double bytes_per_token, double gbps) {
  return gbps > 0 ? 100.0 * tok_s * bytes_per_token / (gbps * 1e9) : -1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const bool full = absl::GetFlag(FLAGS_full);
  const int threads = absl::GetFlag(FLAGS_threads);
  const int reps = absl::GetFlag(FLAGS_repetitions);
  const int rounds = absl::GetFlag(FLAGS_rounds) > 0 ? absl::GetFlag(FLAGS_rounds) : (full ? 5 : 2);
  const std::vector<std::string> sections = absl::StrSplit(absl::GetFlag(FLAGS_sections), ',');
  auto wants = [&](const char* s) { return std::find(sections.begin(), sections.end(), s) != sections.end(); };
  std::string stream_types_flag = absl::GetFlag(FLAGS_stream_types);
  if (stream_types_flag.empty()) stream_types_flag = full ? "F16,Q8_0" : "Q8_0";
  const std::vector<std::string> stream_types = absl::StrSplit(stream_types_flag, ',');
  const int stream_prompt = 16, stream_gen = full ? 64 : 16;
  const std::vector<int> stream_counts = {1, 4, 16, 64};

  const std::string cache_dir = !absl::GetFlag(FLAGS_cache_dir).empty()
                                    ? absl::GetFlag(FLAGS_cache_dir)
                                    : Home() + "/.cache/tessera/bench-engine";
  const std::string llama_dir = !absl::GetFlag(FLAGS_llama_cpp_dir).empty()
                                    ? absl::GetFlag(FLAGS_llama_cpp_dir)
                                    : Home() + "/.cache/tessera/llama.cpp-build";
  std::string node_dir = absl::GetFlag(FLAGS_node_dir);
  if (node_dir.empty()) {
    const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY");
    if (ws == nullptr) {
      std::fprintf(stderr, "engine bench: run it with bazel run, or pass --node_dir\n");
      return 1;
    }
    node_dir = std::string(ws) + "/bench/engine/node";
  }
  const std::string bge_vocab = !absl::GetFlag(FLAGS_bge_vocab).empty()
                                    ? absl::GetFlag(FLAGS_bge_vocab)
                                    : Runfile("engine/tokenizer/testdata/ggml-vocab-bert-bge.gguf", argv[0]);
  std::filesystem::create_directories(cache_dir);
  const std::string log_path = cache_dir + "/llama.cpp.log";
  std::remove(log_path.c_str());

  tessera::bench::Stopwatch wall;
  std::printf("tessera engine benchmark (%s), %d threads, %d rounds of %d runs; llama.cpp stderr in %s\n",
              full ? "full" : "quick", threads, rounds, reps, log_path.c_str());
  std::fflush(stdout);

  // 1. The peer's tools and the model files (both cached).
  // From the workspace, not runfiles: in the runfiles tree bench/engine is this binary.
  const std::string script = std::filesystem::path(node_dir).parent_path().string() + "/build_llama_bench.sh";
  const bool with_peer = absl::GetFlag(FLAGS_llamacpp);
  std::string bin_dir;
  if (with_peer) {
    std::printf("llama.cpp tools: building unless cached (the first time takes several minutes; "
                "progress in the log)\n");
    std::fflush(stdout);
    bin_dir = OrDie(tessera::bench::RunCommand(
                        absl::StrCat("bash '", script, "' '", node_dir, "' '", llama_dir, "'"), log_path),
                    "building llama-bench");
    bin_dir = std::string(absl::StripTrailingAsciiWhitespace(bin_dir));
    bin_dir = bin_dir.substr(bin_dir.rfind('\n') + 1);
    std::printf("llama.cpp tools: %s (ready at %.0f s)\n", bin_dir.c_str(), wall.Seconds());
  }
  const int layers = absl::GetFlag(FLAGS_layers);
  const std::string f16_path = OrDie(tessera::bench::EnsureMistralShapes(cache_dir, DType::kF16, layers), "F16 file");
  const std::string q8_path = OrDie(tessera::bench::EnsureMistralShapes(cache_dir, DType::kQ8_0, layers), "Q8_0 file");
  const std::string bge_path = OrDie(tessera::bench::EnsureBgeSmallShapes(cache_dir, bge_vocab), "bge file");
  std::printf("model files ready at %.0f s\n", wall.Seconds());

  auto backend = OrDie(tessera::engine::CreateBackend("cpu", threads), "backend");
  std::printf("our backend: %s\n", backend->name().c_str());
  tessera::bench::BandwidthProbe probe(size_t{1} << 30, threads);
  tessera::bench::LlamaBenchOptions peer;
  peer.bin_dir = bin_dir;
  peer.log_path = log_path;
  peer.threads = threads;
  peer.repetitions = reps;

  struct Decoder {
    std::string type, path;
    std::unique_ptr<tessera::bench::OurLlama> ours;
    Series prefill, decode;
  };
  std::vector<Decoder> decoders;
  decoders.push_back({"F16", f16_path});
  decoders.push_back({"Q8_0", q8_path});
  for (Decoder& d : decoders) {
    d.ours = OrDie(tessera::bench::OurLlama::Load(d.path, backend.get()), "loading " + d.path);
  }
  auto bert = OrDie(tessera::bench::OurBert::Load(bge_path, backend.get()), "loading " + bge_path);
  Series embed32, embed1;
  constexpr int kPrompt = 512, kGen = 128, kEmbedLen = 64, kEmbedCount = 32;
  const int kEmbedCountBatch1 = full ? 32 : 8;  // batch 1 is slow; the rate is what matters

  // 2. Alternating rounds.
  for (int r = 0; r < rounds; ++r) {
    const bool ours_first = r % 2 == 0;
    if (wants("decoder")) {
      for (Decoder& d : decoders) {
        auto run_ours = [&] {
          const double bw = probe.ReadGBps();
          const double pp = Median(OrDie(d.ours->Prefill(kPrompt, reps), "prefill"));
          const double tg = Median(OrDie(d.ours->Decode(kGen, reps), "decode"));
          d.prefill.ours.push_back(pp);
          d.decode.ours.push_back(tg);
          d.prefill.ours_bw.push_back(bw);
          d.decode.ours_bw.push_back(bw);
          std::printf("round %d %-5s ours       pp%d %7.1f tok/s  tg%d %6.2f tok/s  (bw %5.1f GB/s)\n",
                      r + 1, d.type.c_str(), kPrompt, pp, kGen, tg, bw);
        };
        auto run_peer = [&] {
          const double bw = probe.ReadGBps();
          auto res = OrDie(tessera::bench::RunLlamaBench(peer, d.path, kPrompt, kGen, false), "llama-bench");
          const double pp = Median(res.prefill_samples), tg = Median(res.decode_samples);
          d.prefill.peer.push_back(pp);
          d.decode.peer.push_back(tg);
          d.prefill.peer_bw.push_back(bw);
          d.decode.peer_bw.push_back(bw);
          std::printf("round %d %-5s llama.cpp  pp%d %7.1f tok/s  tg%d %6.2f tok/s  (bw %5.1f GB/s)\n",
                      r + 1, d.type.c_str(), kPrompt, pp, kGen, tg, bw);
        };
        if (!with_peer) {
          run_ours();
        } else if (ours_first) {
          run_ours();
          run_peer();
        } else {
          run_peer();
          run_ours();
        }
        std::fflush(stdout);
      }
    }
    if (wants("embed")) {
      auto run_ours = [&] {
        const double bw = probe.ReadGBps();
        const double e32 = Median(OrDie(bert->Embed(kEmbedCount, kEmbedLen, 32, reps), "embed"));
        const double e1 = Median(OrDie(bert->Embed(kEmbedCountBatch1, kEmbedLen, 1, reps), "embed"));
        embed32.ours.push_back(e32);
        embed1.ours.push_back(e1);
        embed32.ours_bw.push_back(bw);
        std::printf("round %d bge   ours       %d tokens: %6.1f emb/s at batch 32 (%d seqs), %6.1f at batch 1 (%d seqs)  (bw %5.1f GB/s)\n",
                    r + 1, kEmbedLen, e32, kEmbedCount, e1, kEmbedCountBatch1, bw);
      };
      auto run_peer = [&] {
        const double bw = probe.ReadGBps();
        auto res = OrDie(tessera::bench::RunLlamaBench(peer, bge_path, kEmbedLen, 0, true), "llama-bench -embd");
        const double e = Median(res.prefill_samples) / kEmbedLen;
        embed32.peer.push_back(e);
        embed1.peer.push_back(e);
        embed32.peer_bw.push_back(bw);
        std::printf("round %d bge   llama.cpp  1 x %d tokens per pass: %6.1f emb/s  (bw %5.1f GB/s)\n",
                    r + 1, kEmbedLen, e, bw);
      };
      if (!with_peer) {
        run_ours();
      } else if (ours_first) {
        run_ours();
        run_peer();
      } else {
        run_peer();
        run_ours();
      }
      std::fflush(stdout);
    }
    std::printf("(round %d done at %.0f s)\n", r + 1, wall.Seconds());
  }

  // 3. Concurrent streams.
  struct StreamRow {
    std::string type;
    int streams;
    double ours, peer, ours_bw, peer_bw;
  };
  std::vector<StreamRow> stream_rows;
  if (wants("streams")) {
    for (const std::string& type : stream_types) {
      Decoder* d = nullptr;
      for (Decoder& x : decoders) if (x.type == type) d = &x;
      if (d == nullptr) {
        std::fprintf(stderr, "engine bench: unknown --stream_types entry %s\n", type.c_str());
        return 1;
      }
      std::vector<StreamRow> rows;
      for (int n : stream_counts) {
        const double bw = probe.ReadGBps();
        const double tps = OrDie(d->ours->Streams(n, stream_prompt, stream_gen), "streams");
        rows.push_back({type, n, tps, -1, bw, -1});
        std::printf("streams %-5s ours       %2d x (%d + %d tokens): %7.1f tok/s aggregate decode  (bw %5.1f GB/s)\n",
                    type.c_str(), n, stream_prompt, stream_gen, tps, bw);
        std::fflush(stdout);
      }
      const double bw = with_peer ? probe.ReadGBps() : -1;
      std::map<int, double> peer_tps;
      if (with_peer) {
        peer_tps = OrDie(tessera::bench::RunBatchedBench(peer, d->path, stream_prompt, stream_gen, stream_counts),
                         "llama-batched-bench");
      }
      for (StreamRow& row : rows) {
        row.peer = with_peer ? peer_tps[row.streams] : -1;
        row.peer_bw = bw;
        stream_rows.push_back(row);
        if (!with_peer) continue;
        std::printf("streams %-5s llama.cpp  %2d x (%d + %d tokens): %7.1f tok/s aggregate decode  (bw %5.1f GB/s)\n",
                    type.c_str(), row.streams, stream_prompt, stream_gen, row.peer, bw);
      }
      std::fflush(stdout);
    }
  }

  // Tables.
  tessera::bench::Table main_table({"test", "weights", "ours", "llama.cpp", "ours/llama.cpp",
                                    "ours % of BW ceiling", "llama.cpp % of BW ceiling",
                                    "BW GB/s (ours / llama.cpp runs)"});
  double worst_decode = -1, worst_prefill = -1;
  for (Decoder& d : decoders) {
    if (d.prefill.ours.empty()) continue;
    const double bpt = static_cast<double>(d.ours->weight_bytes_per_token());
    main_table.AddRow({Fmt("prefill %d (tok/s)", kPrompt), d.type, Num(d.prefill.OursMedian()),
                       Num(d.prefill.PeerMedian()), Num(d.prefill.Ratio(), "%.2f"), "", "",
                       Num(Median(d.prefill.ours_bw)) + " / " + Num(Median(d.prefill.peer_bw))});
    std::vector<double> ours_pct, peer_pct;
    for (size_t i = 0; i < d.decode.ours.size(); ++i) {
      ours_pct.push_back(PercentOfCeiling(d.decode.ours[i], bpt, d.decode.ours_bw[i]));
    }
    for (size_t i = 0; i < d.decode.peer.size(); ++i) {
      peer_pct.push_back(PercentOfCeiling(d.decode.peer[i], bpt, d.decode.peer_bw[i]));
    }
    main_table.AddRow({Fmt("decode batch 1, %d tokens (tok/s)", kGen), d.type, Num(d.decode.OursMedian(), "%.2f"),
                       Num(d.decode.PeerMedian(), "%.2f"), Num(d.decode.Ratio(), "%.2f"),
                       Num(Median(ours_pct), "%.0f%%"), Num(Median(peer_pct), "%.0f%%"),
                       Num(Median(d.decode.ours_bw)) + " / " + Num(Median(d.decode.peer_bw))});
    worst_decode = worst_decode < 0 ? d.decode.Ratio() : std::min(worst_decode, d.decode.Ratio());
    worst_prefill = worst_prefill < 0 ? d.prefill.Ratio() : std::min(worst_prefill, d.prefill.Ratio());
  }
  if (!embed32.ours.empty()) {
    main_table.AddRow({Fmt("bge-small embeddings/s, %d tokens, ours batch 32", kEmbedLen), "F16",
                       Num(embed32.OursMedian()), Num(embed32.PeerMedian()), Num(embed32.Ratio(), "%.2f"),
                       "", "", Num(Median(embed32.ours_bw)) + " / " + Num(Median(embed32.peer_bw))});
    main_table.AddRow({Fmt("bge-small embeddings/s, %d tokens, ours batch 1", kEmbedLen), "F16",
                       Num(embed1.OursMedian()), Num(embed1.PeerMedian()), Num(embed1.Ratio(), "%.2f"),
                       "", "", ""});
  }
  tessera::bench::Table stream_table({"streams", "weights", "ours (tok/s)", "llama.cpp (tok/s)",
                                      "ours/llama.cpp", "ours per stream", "ours vs 1 stream",
                                      "BW GB/s (ours / llama.cpp)"});
  for (const StreamRow& row : stream_rows) {
    double base = -1;
    for (const StreamRow& x : stream_rows) if (x.type == row.type && x.streams == 1) base = x.ours;
    stream_table.AddRow({Fmt("%d", row.streams), row.type, Num(row.ours), Num(row.peer),
                         Num(row.peer > 0 ? row.ours / row.peer : -1, "%.2f"),
                         Num(row.ours / row.streams, "%.2f"), Num(base > 0 ? row.ours / base : -1, "%.2fx"),
                         Num(row.ours_bw) + " / " + Num(row.peer_bw)});
  }
  std::printf("\n");
  main_table.Print(Fmt("Ours vs native llama.cpp, %d threads, medians of %d alternating rounds "
                       "(ratio: median of per-round ratios)", threads, rounds));
  if (!stream_rows.empty()) {
    stream_table.Print(Fmt("Aggregate decode throughput, N streams of %d prompt + %d generated tokens "
                           "(ours: Scheduler; llama.cpp: llama-batched-bench)", stream_prompt, stream_gen));
  }
  std::printf("\nwall time %.0f s\n", wall.Seconds());
  if (!absl::GetFlag(FLAGS_markdown_out).empty()) {
    std::ofstream out(OutputPath(absl::GetFlag(FLAGS_markdown_out)));
    out << main_table.Markdown() << "\n" << stream_table.Markdown();
  }
  std::printf("RESULT decode_vs_llamacpp=%.2f prefill_vs_llamacpp=%.2f embed_vs_llamacpp=%.2f\n",
              worst_decode, worst_prefill, embed32.Ratio());
  return 0;
}
