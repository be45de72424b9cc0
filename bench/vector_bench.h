// Section 1 of //bench:retrieval: our FaissVectorIndex against raw FAISS
// (in-process, same M / efSearch) and hnswlib (same M, ef_construction, ef)
// at matched recall@10, single-threaded, one query at a time (k = 10), on
// real SIFT vectors (bench/testdata/sift5k) and on seeded synthetic 384-dim
// unit vectors. Also exact (Flat) search: ours against raw IndexFlat.
#ifndef TESSERA_BENCH_VECTOR_BENCH_H_
#define TESSERA_BENCH_VECTOR_BENCH_H_

#include <string>
#include <vector>

namespace tessera::bench {

struct VectorBenchOptions {
  std::string sift_dir;          // holds sift-dataset-5k.tsv and sift-query-3.tsv
  int sift_queries = 500;        // split off the 5,000 SIFT vectors (+ the 3 real queries)
  int synthetic_n = 200000;      // synthetic base vectors
  int synthetic_queries = 500;   // synthetic queries (HNSW sweep)
  int flat_queries = 100;        // queries for the exact (Flat) comparison
  int build_threads = 2;         // OpenMP / std::thread for index construction only
  int rounds = 3;                // interleaved timing rounds; medians are reported
  double target_recall = 0.95;   // the matched-recall operating point
  // Shape of the synthetic set (see MakeSynthetic): per-dimension standard
  // deviation (1 + j)^-alpha, points at `spread` x that around their centre.
  double synthetic_alpha = 0.5;
  double synthetic_spread = 1.0;
  bool skip_sift = false;
};

struct VectorBenchResult {
  // On the synthetic set: recall@10 of FaissVectorIndex("HNSW32") at the
  // service's default ef_search (128), and QPS ratios at matched recall
  // (interpolated at target_recall). Negative when not reached.
  double recall_default_ef = -1;
  double qps_vs_faiss = -1;
  double qps_vs_hnswlib = -1;
  // Markdown tables for docs/BENCHMARKS.md.
  std::string markdown;
};

VectorBenchResult RunVectorBench(const VectorBenchOptions& options);

}  // namespace tessera::bench

#endif  // TESSERA_BENCH_VECTOR_BENCH_H_
