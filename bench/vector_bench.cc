#include "bench/vector_bench.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/utils/distances.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "bench/hnswlib_peer.h"
#include "common/file_system.h"
#include "services/retrieval/index/faiss_vector_index.h"
#include "services/retrieval/index/vector_index.h"

namespace tessera::bench {
namespace {

using retrieval::FaissVectorIndex;
using retrieval::IdSetFilter;

constexpr int kK = 10;
constexpr int kM = 32;                // HNSW32 everywhere
constexpr int kEfConstruction = 40;   // FAISS's IndexHNSW default; hnswlib gets the same
constexpr int kDefaultEf = 128;       // FaissVectorIndex::Options::hnsw_ef_search default
// 10 = k, the smallest ef any of the three uses; then the grid asked for.
const int kEfs[] = {10, 16, 32, 64, 128, 256};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "bench: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T OrDie(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) Die(std::string(what) + ": " + v.status().ToString());
  return std::move(*v);
}
void OrDie(const absl::Status& s, const char* what) {
  if (!s.ok()) Die(std::string(what) + ": " + s.ToString());
}

struct Dataset {
  std::string name;
  std::string description;
  int d = 0;
  bool l2 = false;
  int64_t nb = 0;
  int nq = 0;
  std::vector<float> base;
  std::vector<float> queries;
  std::vector<int64_t> gt;  // nq x kK exact neighbours
};

std::vector<std::vector<float>> ReadTsv(const std::string& path) {
  std::ifstream in(path);
  if (!in) Die("cannot read " + path + " (run from the runfiles root, or pass --sift_dir)");
  std::vector<std::vector<float>> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<float> row;
    const char* p = line.c_str();
    char* end = nullptr;
    for (float v = std::strtof(p, &end); end != p; v = std::strtof(p, &end)) {
      row.push_back(v);
      p = end;
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

Dataset LoadSift(const VectorBenchOptions& o) {
  auto rows = ReadTsv(o.sift_dir + "/sift-dataset-5k.tsv");
  auto real_queries = ReadTsv(o.sift_dir + "/sift-query-3.tsv");
  Dataset ds;
  ds.name = "sift5k";
  ds.d = 128;
  ds.l2 = true;
  // NGT's dataset rows are 128 values and a trailing object id (100001...).
  for (auto& r : rows) {
    if (r.size() == 129) r.pop_back();
    if (r.size() != 128) Die("sift row with " + std::to_string(r.size()) + " values");
  }
  // A seeded split: sift_queries rows become queries, the rest the base.
  std::vector<int> order(rows.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(5000);
  std::shuffle(order.begin(), order.end(), rng);
  const int split = std::min<int>(o.sift_queries, static_cast<int>(rows.size()) / 2);
  for (size_t i = 0; i < order.size(); ++i) {
    auto& dst = static_cast<int>(i) < split ? ds.queries : ds.base;
    dst.insert(dst.end(), rows[order[i]].begin(), rows[order[i]].end());
  }
  for (const auto& q : real_queries) {
    if (q.size() != 128) Die("sift query with wrong size");
    ds.queries.insert(ds.queries.end(), q.begin(), q.end());
  }
  ds.nb = static_cast<int64_t>(ds.base.size() / 128);
  ds.nq = static_cast<int>(ds.queries.size() / 128);
  ds.description = Fmt("SIFT 128-d, %lld base, %d queries (%d held out + %zu real), L2",
                       static_cast<long long>(ds.nb), ds.nq, split, real_queries.size());
  return ds;
}

// Unit vectors shaped like text embeddings rather than uniform noise (on
// which no graph index reaches useful recall at 384 dims): a mixture of 1,000
// clusters whose per-dimension standard deviation decays as (1 + j)^-alpha,
// as the spectra of real embedding models do, with points at `spread` times
// that scale around their centre. Distances are rotation-invariant, so the
// axis-aligned spectrum costs no generality. The defaults (alpha 0.5, spread
// 1.0) put recall@10 = 0.95 between ef 16 and 64 for HNSW32 at 50k-1M points.
Dataset MakeSynthetic(int64_t n, int nq, uint64_t seed, double alpha, double spread) {
  Dataset ds;
  ds.name = "synthetic384";
  ds.d = 384;
  ds.l2 = false;
  ds.nb = n;
  ds.nq = nq;
  const int d = ds.d;
  const int clusters = 1000;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::vector<float> sigma(d);
  for (int j = 0; j < d; ++j) sigma[j] = static_cast<float>(std::pow(1.0 + j, -alpha));
  std::vector<float> centres(static_cast<size_t>(clusters) * d);
  for (int c = 0; c < clusters; ++c) {
    for (int j = 0; j < d; ++j) centres[c * d + j] = gauss(rng) * sigma[j];
  }
  auto fill = [&](std::vector<float>* out, int64_t count) {
    out->resize(static_cast<size_t>(count) * d);
    for (int64_t i = 0; i < count; ++i) {
      const int c = static_cast<int>(rng() % clusters);
      float* v = out->data() + i * d;
      double norm = 0;
      for (int j = 0; j < d; ++j) {
        v[j] = centres[c * d + j] + static_cast<float>(spread) * gauss(rng) * sigma[j];
        norm += static_cast<double>(v[j]) * v[j];
      }
      const float inv = static_cast<float>(1.0 / std::sqrt(norm));
      for (int j = 0; j < d; ++j) v[j] *= inv;
    }
  };
  fill(&ds.base, n);
  fill(&ds.queries, nq);
  ds.description = Fmt(
      "synthetic 384-d unit vectors (seed %llu; 1,000 clusters, std (1+j)^-%.2f, spread %.2f), "
      "%lld base, %d queries, inner product",
      static_cast<unsigned long long>(seed), alpha, spread, static_cast<long long>(n), nq);
  return ds;
}

void ComputeGroundTruth(Dataset* ds, int threads) {
  omp_set_num_threads(threads);
  faiss::IndexFlat flat(ds->d, ds->l2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT);
  flat.add(ds->nb, ds->base.data());
  std::vector<float> dist(static_cast<size_t>(ds->nq) * kK);
  ds->gt.assign(static_cast<size_t>(ds->nq) * kK, -1);
  flat.search(ds->nq, ds->queries.data(), kK, dist.data(), ds->gt.data());
  omp_set_num_threads(1);
}

// One way to answer a query: fills `labels` with up to kK ids, best first.
using Searcher = std::function<void(const float* query, std::vector<int64_t>* labels)>;

struct Variant {
  std::string name;
  Searcher search;
};

struct Measured {
  std::vector<double> qps;     // per variant: median over rounds
  std::vector<double> recall;  // per variant: recall@10 over the nq queries
  std::vector<std::vector<double>> per_round;  // per variant: QPS of each round
  // Median over rounds of qps[a] / qps[b] within the same round (pairs run
  // back to back, so slow drift of a shared machine cancels out).
  double PairedRatio(size_t a, size_t b) const {
    std::vector<double> r;
    for (size_t i = 0; i < per_round[a].size(); ++i) r.push_back(per_round[a][i] / per_round[b][i]);
    return Median(r);
  }
};

// Single-thread QPS of each variant over the first `nq` queries, `rounds`
// interleaved rounds (the order rotates each round); per-variant medians.
// Recall comes from the labels of the first round.
Measured MeasureQps(const Dataset& ds, const std::vector<Variant>& variants, int nq, int rounds) {
  std::vector<std::vector<double>> qps(variants.size());
  std::vector<std::vector<int64_t>> first(variants.size());
  std::vector<int64_t> labels;
  labels.reserve(kK);
  // Warm-up: caches, page faults, lazily sized buffers.
  for (const auto& v : variants) {
    for (int i = 0; i < std::min(nq, 20); ++i) v.search(ds.queries.data() + i * ds.d, &labels);
  }
  for (int r = 0; r < rounds; ++r) {
    for (size_t k = 0; k < variants.size(); ++k) {
      const size_t vi = (k + r) % variants.size();
      std::vector<int64_t>* keep = r == 0 ? &first[vi] : nullptr;
      if (keep) keep->assign(static_cast<size_t>(nq) * kK, -1);
      Stopwatch sw;
      for (int i = 0; i < nq; ++i) {
        variants[vi].search(ds.queries.data() + static_cast<size_t>(i) * ds.d, &labels);
        if (keep) std::copy_n(labels.begin(), std::min<size_t>(kK, labels.size()),
                              keep->begin() + static_cast<size_t>(i) * kK);
      }
      qps[vi].push_back(nq / sw.Seconds());
    }
  }
  Measured out;
  out.per_round = qps;
  for (size_t v = 0; v < variants.size(); ++v) {
    out.qps.push_back(Median(qps[v]));
    int64_t hit = 0;
    for (int i = 0; i < nq; ++i) {
      const int64_t* g = ds.gt.data() + static_cast<size_t>(i) * kK;
      for (int j = 0; j < kK; ++j) {
        const int64_t l = first[v][static_cast<size_t>(i) * kK + j];
        if (l >= 0 && std::find(g, g + kK, l) != g + kK) ++hit;
      }
    }
    out.recall.push_back(static_cast<double>(hit) / (static_cast<double>(nq) * kK));
  }
  return out;
}

// QPS at exactly `target` recall, log-linear between the sweep points that
// bracket it; the first point's QPS when it already reaches the target
// (conservative); -1 when no point does.
double QpsAtRecall(const std::vector<double>& recall, const std::vector<double>& qps,
                   double target, bool* lower_bound) {
  *lower_bound = false;
  if (recall.empty()) return -1;
  if (recall[0] >= target) {
    *lower_bound = true;  // the true QPS at `target` is higher
    return qps[0];
  }
  for (size_t i = 0; i + 1 < recall.size(); ++i) {
    if (recall[i] < target && recall[i + 1] >= target) {
      const double t = (target - recall[i]) / (recall[i + 1] - recall[i]);
      return std::exp(std::log(qps[i]) + t * (std::log(qps[i + 1]) - std::log(qps[i])));
    }
  }
  return -1;
}

std::string Ratio(double a, double b) { return (a > 0 && b > 0) ? Fmt("%.2f", a / b) : "n/a"; }

struct DatasetResult {
  double recall_default_ef = -1;
  double qps_vs_faiss = -1;
  double qps_vs_hnswlib = -1;
};

Searcher OursSearcher(const FaissVectorIndex* index, const retrieval::IdFilter* filter) {
  return [index, filter](const float* q, std::vector<int64_t>* labels) {
    auto hits = index->Search(q, kK, filter);
    if (!hits.ok()) Die("FaissVectorIndex::Search: " + hits.status().ToString());
    labels->clear();
    for (const auto& h : *hits) labels->push_back(h.id);
  };
}

Searcher FaissSearcher(const faiss::Index* index) {
  return [index](const float* q, std::vector<int64_t>* labels) {
    float dist[kK];
    int64_t ids[kK];
    index->search(1, q, kK, dist, ids);
    labels->assign(ids, ids + kK);
  };
}

DatasetResult RunDataset(Dataset& ds, const VectorBenchOptions& o, std::string* markdown) {
  std::printf("\n== 1. Vector index: %s ==\n", ds.description.c_str());
  std::fflush(stdout);
  Stopwatch gt_time;
  ComputeGroundTruth(&ds, o.build_threads);
  std::printf("exact ground truth (FAISS IndexFlat, batched): %.1f s\n", gt_time.Seconds());

  const FaissVectorIndex::Metric metric =
      ds.l2 ? FaissVectorIndex::Metric::kL2 : FaissVectorIndex::Metric::kInnerProduct;
  const faiss::MetricType faiss_metric = ds.l2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
  std::vector<int64_t> ids(ds.nb);
  std::iota(ids.begin(), ids.end(), 0);
  const IdSetFilter allow_all(ids);  // what the service builds from AllowedChunkIds

  // ---- Exact search.
  {
    FaissVectorIndex::Options fo;
    fo.factory = "Flat";
    fo.dimensions = ds.d;
    fo.metric = metric;
    auto ours = OrDie(FaissVectorIndex::Create(fo), "Create Flat");
    OrDie(ours->Add(ids, ds.base.data()), "Add Flat");
    faiss::IndexFlat raw(ds.d, faiss_metric);
    raw.add(ds.nb, ds.base.data());
    const int nq = std::min(o.flat_queries, ds.nq);
    std::vector<Variant> v = {{"faiss IndexFlat (raw)", FaissSearcher(&raw)},
                              {"ours Flat", OursSearcher(ours.get(), nullptr)},
                              {"ours Flat + IdSetFilter(all)", OursSearcher(ours.get(), &allow_all)}};
    const Measured m = MeasureQps(ds, v, nq, o.rounds);
    Table t({"exact search", "recall@10", "QPS (1 thread)", "vs raw faiss"});
    for (size_t i = 0; i < v.size(); ++i) {
      t.AddRow({v[i].name, Fmt("%.3f", m.recall[i]), Fmt("%.0f", m.qps[i]),
                Fmt("%.2f", m.PairedRatio(i, 0))});
    }
    const std::string title = Fmt("[%s] Flat, k=10, %d queries, median of %d rounds", ds.name.c_str(),
                                  nq, o.rounds);
    t.Print(title);
    *markdown += "#### " + title + "\n\n" + t.Markdown() + "\n";
  }

  // ---- HNSW builds. Ours and raw FAISS are built at the same time on two
  // threads, each single-threaded: FAISS's HNSW insertion is then
  // deterministic (fixed level seed, fixed order), so both hold the very same
  // graph and give the same recall, and ours/faiss measures the wrapper
  // alone. (A multi-threaded add inserts in a racy order: two statistically
  // equal graphs whose recall differs by a point or two, which would swamp the
  // wrapper's cost at "matched recall".) hnswlib then builds with
  // build_threads threads (std::thread; addPoint is thread-safe).
  InMemoryFileSystem memfs;
  OrDie(memfs.CreateDirectories("/bench", 0700), "mkdir");
  double ours_build = 0, faiss_build = 0, hnswlib_build = 0;
  faiss::IndexHNSWFlat raw(ds.d, kM, faiss_metric);
  raw.hnsw.efConstruction = kEfConstruction;
  {
    std::thread raw_builder([&] {
      omp_set_num_threads(1);
      Stopwatch sw;
      raw.add(ds.nb, ds.base.data());
      faiss_build = sw.Seconds();
    });
    FaissVectorIndex::Options fo;
    fo.factory = "HNSW32";
    fo.dimensions = ds.d;
    fo.metric = metric;
    fo.file_system = &memfs;
    omp_set_num_threads(1);
    Stopwatch sw;
    auto ours = OrDie(FaissVectorIndex::Create(fo), "Create HNSW32");
    OrDie(ours->Add(ids, ds.base.data()), "Add HNSW32");
    ours_build = sw.Seconds();
    raw_builder.join();
    OrDie(ours->Save("/bench/hnsw.idx"), "Save");
  }
  std::unique_ptr<HnswlibPeer> hnswlib;
  {
    Stopwatch sw;
    hnswlib = std::make_unique<HnswlibPeer>(
        ds.l2 ? HnswlibPeer::Space::kL2 : HnswlibPeer::Space::kInnerProduct, ds.d, ds.base.data(),
        ds.nb, kM, kEfConstruction, o.build_threads);
    hnswlib_build = sw.Seconds();
  }
  const std::string builds = Fmt(
      "HNSW builds (M=%d, efConstruction=%d): ours %.1f s and raw FAISS %.1f s (side by side, 1 "
      "thread each), hnswlib %.1f s (%d threads)",
      kM, kEfConstruction, ours_build, faiss_build, hnswlib_build, o.build_threads);
  std::printf("%s\n", builds.c_str());
  *markdown += builds + ".\n\n";

  // ---- The ef sweep. Our index takes ef_search at creation only, so each
  // ef loads the same saved graph with a different option.
  const std::vector<std::string> names = {"ours", "ours+filter", "faiss", "hnswlib"};
  std::vector<std::vector<double>> recall(names.size()), qps(names.size());
  Table sweep({"ef", "recall ours", "recall ours+filter", "recall faiss", "recall hnswlib",
               "QPS ours", "QPS ours+filter", "QPS faiss", "QPS hnswlib", "ours/faiss",
               "ours/hnswlib"});
  for (int ef : kEfs) {
    FaissVectorIndex::Options fo;
    fo.factory = "HNSW32";
    fo.dimensions = ds.d;
    fo.metric = metric;
    fo.hnsw_ef_search = ef;
    fo.file_system = &memfs;
    auto ours = OrDie(FaissVectorIndex::Load("/bench/hnsw.idx", fo), "Load HNSW32");
    raw.hnsw.efSearch = ef;
    hnswlib->SetEf(ef);
    HnswlibPeer* h = hnswlib.get();
    std::vector<Variant> v = {
        {"ours", OursSearcher(ours.get(), nullptr)},
        {"ours+filter", OursSearcher(ours.get(), &allow_all)},
        {"faiss", FaissSearcher(&raw)},
        {"hnswlib", [h](const float* q, std::vector<int64_t>* l) { h->Search(q, kK, l); }},
    };
    const Measured m = MeasureQps(ds, v, ds.nq, o.rounds);
    const std::vector<double>& q = m.qps;
    std::vector<std::string> row = {std::to_string(ef)};
    for (size_t i = 0; i < v.size(); ++i) {
      recall[i].push_back(m.recall[i]);
      qps[i].push_back(q[i]);
      row.push_back(Fmt("%.3f", recall[i].back()));
    }
    for (size_t i = 0; i < v.size(); ++i) row.push_back(Fmt("%.0f", q[i]));
    row.push_back(Fmt("%.2f", m.PairedRatio(0, 2)));
    row.push_back(Fmt("%.2f", m.PairedRatio(0, 3)));
    sweep.AddRow(row);
  }
  const std::string sweep_title =
      Fmt("[%s] HNSW32 ef sweep, k=10, %d queries, 1 thread, median of %d rounds", ds.name.c_str(),
          ds.nq, o.rounds);
  sweep.Print(sweep_title);
  *markdown += "#### " + sweep_title + "\n\n" + sweep.Markdown() + "\n";

  DatasetResult result;
  for (size_t e = 0; e < std::size(kEfs); ++e) {
    if (kEfs[e] == kDefaultEf) result.recall_default_ef = recall[0][e];
  }
  std::vector<double> at(names.size());
  std::vector<bool> floor(names.size());
  Table matched({"at recall@10 = " + Fmt("%.2f", o.target_recall), "QPS (interpolated)",
                 "ours / this"});
  for (size_t i = 0; i < names.size(); ++i) {
    bool lb = false;
    at[i] = QpsAtRecall(recall[i], qps[i], o.target_recall, &lb);
    floor[i] = lb;
  }
  bool any_floor = false;
  for (size_t i = 0; i < names.size(); ++i) {
    std::string q = at[i] > 0 ? Fmt("%.0f", at[i]) : "not reached";
    if (floor[i]) {
      q = ">= " + q + " (ef=10 already above)";
      any_floor = true;
    }
    matched.AddRow({names[i], q, Ratio(at[0], at[i])});
  }
  if (any_floor) {
    *markdown += "(\">=\": recall at the smallest ef already exceeds the target, so the QPS there "
                 "is a lower bound and ratios against it are approximate.)\n\n";
  }
  const std::string matched_title = Fmt("[%s] matched recall", ds.name.c_str());
  matched.Print(matched_title);
  *markdown += "#### " + matched_title + "\n\n" + matched.Markdown() + "\n";
  result.qps_vs_faiss = (at[0] > 0 && at[2] > 0) ? at[0] / at[2] : -1;
  result.qps_vs_hnswlib = (at[0] > 0 && at[3] > 0) ? at[0] / at[3] : -1;
  return result;
}

// A 4-wide SSE inner product, the kind hnswlib uses at the same (baseline
// x86-64) ISA. For the distance-kernel comparison only.
float SseInnerProduct(const float* x, const float* y, size_t d) {
  __m128 sum = _mm_setzero_ps();
  size_t i = 0;
  for (; i + 4 <= d; i += 4) sum = _mm_add_ps(sum, _mm_mul_ps(_mm_loadu_ps(x + i), _mm_loadu_ps(y + i)));
  float lanes[4];
  _mm_storeu_ps(lanes, sum);
  float r = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  for (; i < d; ++i) r += x[i] * y[i];
  return r;
}

// ns per call of FAISS's fvec_inner_product (what IndexFlat and IndexHNSWFlat
// call for every distance) against the SSE loop above, at 128 and 384 dims.
void DistanceKernels(std::string* markdown) {
  Table t({"distance kernel", "ns / 128-d", "ns / 384-d"});
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  const int n = 4096;
  std::vector<float> a(static_cast<size_t>(n) * 384), b(384);
  for (float& x : a) x = u(rng);
  for (float& x : b) x = u(rng);
  auto time = [&](auto fn, int d) {
    volatile float sink = 0;
    std::vector<double> runs;
    for (int r = 0; r < 5; ++r) {
      Stopwatch sw;
      float acc = 0;
      for (int rep = 0; rep < 20; ++rep) {
        for (int i = 0; i < n; ++i) acc += fn(a.data() + static_cast<size_t>(i) * 384, b.data(), d);
      }
      sink = sink + acc;
      runs.push_back(sw.Seconds() * 1e9 / (20.0 * n));
    }
    return Median(runs);
  };
  auto faiss_ip = [](const float* x, const float* y, int d) {
    return faiss::fvec_inner_product(x, y, static_cast<size_t>(d));
  };
  auto sse_ip = [](const float* x, const float* y, int d) {
    return SseInnerProduct(x, y, static_cast<size_t>(d));
  };
  t.AddRow({"faiss::fvec_inner_product (Debian libfaiss 1.7.3)", Fmt("%.1f", time(faiss_ip, 128)),
            Fmt("%.1f", time(faiss_ip, 384))});
  t.AddRow({"4-wide SSE loop (hnswlib-style, same ISA)", Fmt("%.1f", time(sse_ip, 128)),
            Fmt("%.1f", time(sse_ip, 384))});
  t.Print("[kernel] one inner product, 1 thread (explains the FAISS vs hnswlib gap)");
  *markdown += "#### Distance kernel (1 thread)\n\n" + t.Markdown() + "\n";
}

}  // namespace

VectorBenchResult RunVectorBench(const VectorBenchOptions& o) {
  VectorBenchResult out;
  omp_set_num_threads(1);
  DistanceKernels(&out.markdown);
  if (!o.skip_sift) {
    Dataset sift = LoadSift(o);
    out.markdown += "### " + sift.description + "\n\n";
    RunDataset(sift, o, &out.markdown);
  }
  Stopwatch gen;
  Dataset syn = MakeSynthetic(o.synthetic_n, o.synthetic_queries, /*seed=*/384, o.synthetic_alpha,
                              o.synthetic_spread);
  std::printf("\n(generated %lld synthetic vectors in %.1f s)\n", static_cast<long long>(syn.nb),
              gen.Seconds());
  out.markdown += "### " + syn.description + "\n\n";
  DatasetResult r = RunDataset(syn, o, &out.markdown);
  out.recall_default_ef = r.recall_default_ef;
  out.qps_vs_faiss = r.qps_vs_faiss;
  out.qps_vs_hnswlib = r.qps_vs_hnswlib;
  return out;
}

}  // namespace tessera::bench
