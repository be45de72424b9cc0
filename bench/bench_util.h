// Small helpers shared by the retrieval benchmark's sections: a monotonic
// stopwatch, order statistics, a plain-text table printer and a seeded
// synthetic text corpus (documents and queries from a Zipfian vocabulary).
//
// Nothing here asserts on speed: the benchmark prints ratios against peers
// measured in the same run (see docs/BENCHMARKS.md).
#ifndef TESSERA_BENCH_BENCH_UTIL_H_
#define TESSERA_BENCH_BENCH_UTIL_H_

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace tessera::bench {

// Seconds since construction (steady clock).
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  double Millis() const { return Seconds() * 1e3; }

 private:
  std::chrono::steady_clock::time_point start_;
};

// The q-quantile (0..1) of `v`, nearest-rank on a sorted copy; 0 when empty.
double Quantile(std::vector<double> v, double q);
double Median(std::vector<double> v);

// A table printed with aligned columns. Cells are strings; format numbers
// with Fmt().
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  // Prints to stdout, preceded by `title`.
  void Print(const std::string& title) const;
  // The same table as GitHub Markdown (for docs/BENCHMARKS.md).
  std::string Markdown() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// A data dependency's path for a benchmark started with `bazel run`: relative to the working
// directory (the runfiles root), else under RUNFILES_DIR or argv0.runfiles.
std::string Runfile(const std::string& rel, const char* argv0);

// An output path as the user meant it: relative paths are taken from where `bazel run` was
// invoked (BUILD_WORKING_DIRECTORY).
std::string OutputPath(const std::string& path);

// printf-style formatting into a std::string.
std::string Fmt(const char* format, ...) __attribute__((format(printf, 1, 2)));

// A seeded synthetic corpus: words drawn from a Zipfian vocabulary of
// made-up pronounceable words, so BM25 sees realistic term statistics.
class SyntheticText {
 public:
  SyntheticText(uint64_t seed, int vocabulary_size);
  // `words` words, with a full stop every ~12 words.
  std::string Text(int words);
  // A title of 3-6 words.
  std::string Title();
  // A query of 2-4 distinct mid-frequency words (ranks 20..2000).
  std::string Query();
  std::mt19937_64& rng() { return rng_; }

 private:
  const std::string& Word();
  std::mt19937_64 rng_;
  std::vector<std::string> vocabulary_;
  std::vector<double> cumulative_;  // Zipf(1.0) CDF over vocabulary_
};

}  // namespace tessera::bench

#endif  // TESSERA_BENCH_BENCH_UTIL_H_
