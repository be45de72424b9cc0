// //bench:retrieval: the retrieval stack against real peers, side by side in
// one run (see bench/README.md and docs/BENCHMARKS.md).
//
//   bazel run -c opt //bench:retrieval -- [--quick | --full]
//
// Sections: 1. FaissVectorIndex vs raw FAISS vs hnswlib at matched recall
// (SIFT 5k and synthetic 384-d); 2. gRPC Search latency through the gateway
// vs the same steps in-process; 3. IngestDocuments throughput vs a raw SQLite
// FTS5 insert loop. The last line is machine-readable:
//   RESULT recall10=<x> qps_vs_faiss=<r> qps_vs_hnswlib=<r> grpc_p99_ms=<x>
#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_split.h"
#include "bench/bench_util.h"
#include "bench/service_bench.h"
#include "bench/vector_bench.h"

ABSL_FLAG(bool, quick, true, "Quick sizes (the default): under ~3 minutes on 2 vCPUs.");
ABSL_FLAG(bool, full, false, "Full sizes: 1M synthetic vectors, 100k-chunk corpus, more rounds.");
ABSL_FLAG(std::string, sections, "vector,search",
          "Comma-separated: vector (section 1), search (sections 2 and 3).");
ABSL_FLAG(int, synthetic_n, 0, "Override the number of synthetic 384-d vectors.");
ABSL_FLAG(int, corpus_docs, 0, "Override the number of documents in the search corpus.");
ABSL_FLAG(int, ingest_docs, 0, "Override the number of documents ingested through gRPC.");
ABSL_FLAG(int, searches, 0, "Override the number of Search calls.");
ABSL_FLAG(int, rounds, 0, "Override the number of interleaved timing rounds.");
ABSL_FLAG(std::string, search_index, "Flat", "FAISS factory of the search collection.");
ABSL_FLAG(std::string, sift_dir, "", "Where the SIFT 5k files are (default: from runfiles).");
ABSL_FLAG(std::string, tessera_bin, "", "The tessera binary (default: from runfiles).");
ABSL_FLAG(std::string, markdown_out, "", "If set, the tables are also written here as Markdown.");
ABSL_FLAG(double, synthetic_alpha, 0.5, "Synthetic set: per-dimension std (1+j)^-alpha.");
ABSL_FLAG(double, synthetic_spread, 1.0, "Synthetic set: cluster spread.");
ABSL_FLAG(bool, skip_sift, false, "Section 1: skip the SIFT set.");
ABSL_FLAG(bool, keep, false, "Keep the service's scratch directory.");

namespace {

using tessera::bench::OutputPath;
using tessera::bench::Runfile;

std::string Num(double v, const char* fmt) {
  return v >= 0 ? tessera::bench::Fmt(fmt, v) : std::string("nan");
}

}  // namespace

int main(int argc, char** argv) {
  // Single-thread numbers: FAISS (OpenMP) and the server child inherit this.
  setenv("OMP_NUM_THREADS", "1", 1);
  omp_set_num_threads(1);
  absl::ParseCommandLine(argc, argv);
  const bool full = absl::GetFlag(FLAGS_full);
  auto pick = [](int override_value, int value) { return override_value > 0 ? override_value : value; };

  tessera::bench::Stopwatch wall;
  std::printf("tessera retrieval benchmark (%s mode); single-thread searches, OMP_NUM_THREADS=1\n",
              full ? "full" : "quick");
  std::fflush(stdout);

  std::vector<std::string> sections = absl::StrSplit(absl::GetFlag(FLAGS_sections), ',');
  auto wants = [&](const std::string& s) {
    for (const auto& x : sections) {
      if (x == s) return true;
    }
    return false;
  };

  std::string markdown;
  tessera::bench::VectorBenchResult vec;
  if (wants("vector")) {
    tessera::bench::VectorBenchOptions vo;
    vo.sift_dir = absl::GetFlag(FLAGS_sift_dir).empty() ? Runfile("bench/testdata/sift5k", argv[0])
                                                        : absl::GetFlag(FLAGS_sift_dir);
    vo.synthetic_n = pick(absl::GetFlag(FLAGS_synthetic_n), full ? 1000000 : 30000);
    vo.synthetic_queries = full ? 1000 : 300;
    vo.flat_queries = full ? 200 : 30;
    vo.synthetic_alpha = absl::GetFlag(FLAGS_synthetic_alpha);
    vo.synthetic_spread = absl::GetFlag(FLAGS_synthetic_spread);
    vo.skip_sift = absl::GetFlag(FLAGS_skip_sift);
    vo.rounds = pick(absl::GetFlag(FLAGS_rounds), full ? 5 : 3);
    vec = tessera::bench::RunVectorBench(vo);
    markdown += "## 1. Vector index\n\n" + vec.markdown;
    std::printf("\n(section 1 done at %.0f s)\n", wall.Seconds());
  }
  tessera::bench::ServiceBenchResult svc;
  if (wants("search")) {
    tessera::bench::ServiceBenchOptions so;
    so.tessera_bin = absl::GetFlag(FLAGS_tessera_bin).empty()
                         ? Runfile("services/gateway/tessera", argv[0])
                         : absl::GetFlag(FLAGS_tessera_bin);
    so.index_factory = absl::GetFlag(FLAGS_search_index);
    so.corpus_docs = pick(absl::GetFlag(FLAGS_corpus_docs), full ? 100000 : 15000);
    so.ingest_docs = pick(absl::GetFlag(FLAGS_ingest_docs), full ? 10000 : 2000);
    so.searches = pick(absl::GetFlag(FLAGS_searches), full ? 1000 : 400);
    so.keep = absl::GetFlag(FLAGS_keep);
    svc = tessera::bench::RunServiceBench(so);
    markdown += "## 2-3. Service\n\n" + svc.markdown;
    std::printf("\n(sections 2-3 done at %.0f s)\n", wall.Seconds());
  }
  if (!absl::GetFlag(FLAGS_markdown_out).empty()) {
    std::ofstream(OutputPath(absl::GetFlag(FLAGS_markdown_out))) << markdown;
  }
  std::printf("\ntotal %.0f s\n", wall.Seconds());
  std::printf("RESULT recall10=%s qps_vs_faiss=%s qps_vs_hnswlib=%s grpc_p99_ms=%s\n",
              Num(vec.recall_default_ef, "%.3f").c_str(), Num(vec.qps_vs_faiss, "%.2f").c_str(),
              Num(vec.qps_vs_hnswlib, "%.2f").c_str(), Num(svc.grpc_p99_ms, "%.2f").c_str());
  return 0;
}
