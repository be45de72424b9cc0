#include "bench/bench_util.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>

namespace tessera::bench {

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double rank = std::ceil(q * static_cast<double>(v.size()));
  const size_t i = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return v[std::min(i, v.size() - 1)];
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string Fmt(const char* format, ...) {
  char buf[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buf, sizeof(buf), format, args);
  va_end(args);
  return buf;
}

void Table::Print(const std::string& title) const {
  std::vector<size_t> width(header_.size(), 0);
  auto widen = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  };
  widen(header_);
  for (const auto& r : rows_) widen(r);
  auto line = [&](const std::vector<std::string>& row) {
    std::string out = " ";
    for (size_t i = 0; i < width.size(); ++i) {
      const std::string cell = i < row.size() ? row[i] : "";
      // Left-align the first column, right-align the numbers.
      if (i == 0) {
        out += cell + std::string(width[i] - cell.size(), ' ');
      } else {
        out += std::string(width[i] - cell.size(), ' ') + cell;
      }
      out += i + 1 < width.size() ? "  " : "";
    }
    std::printf("%s\n", out.c_str());
  };
  std::printf("\n%s\n", title.c_str());
  line(header_);
  size_t total = 1;
  for (size_t w : width) total += w + 2;
  std::printf(" %s\n", std::string(total - 3, '-').c_str());
  for (const auto& r : rows_) line(r);
  std::fflush(stdout);
}

std::string Table::Markdown() const {
  std::string out = "|";
  for (const auto& h : header_) out += " " + h + " |";
  out += "\n|";
  for (size_t i = 0; i < header_.size(); ++i) out += i == 0 ? "---|" : "---:|";
  out += "\n";
  for (const auto& r : rows_) {
    out += "|";
    for (const auto& c : r) out += " " + c + " |";
    out += "\n";
  }
  return out;
}

SyntheticText::SyntheticText(uint64_t seed, int vocabulary_size) : rng_(seed) {
  static const char* kOnsets[] = {"b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r",
                                  "s", "t", "v", "w", "z", "br", "cl", "dr", "st", "tr", "gr", "pl"};
  static const char* kVowels[] = {"a", "e", "i", "o", "u", "ai", "ea", "ou"};
  static const char* kCodas[] = {"", "", "n", "r", "s", "t", "l", "m", "nd", "st"};
  std::set<std::string> seen;
  while (static_cast<int>(vocabulary_.size()) < vocabulary_size) {
    const int syllables = 1 + static_cast<int>(rng_() % 3);
    std::string w;
    for (int s = 0; s < syllables; ++s) {
      w += kOnsets[rng_() % (sizeof(kOnsets) / sizeof(*kOnsets))];
      w += kVowels[rng_() % (sizeof(kVowels) / sizeof(*kVowels))];
      w += kCodas[rng_() % (sizeof(kCodas) / sizeof(*kCodas))];
    }
    if (seen.insert(w).second) vocabulary_.push_back(w);
  }
  double sum = 0;
  cumulative_.reserve(vocabulary_.size());
  for (size_t i = 0; i < vocabulary_.size(); ++i) {
    sum += 1.0 / static_cast<double>(i + 1);
    cumulative_.push_back(sum);
  }
  for (double& c : cumulative_) c /= sum;
}

const std::string& SyntheticText::Word() {
  const double u = std::uniform_real_distribution<double>(0, 1)(rng_);
  const size_t i = std::lower_bound(cumulative_.begin(), cumulative_.end(), u) - cumulative_.begin();
  return vocabulary_[std::min(i, vocabulary_.size() - 1)];
}

std::string SyntheticText::Text(int words) {
  std::string out;
  out.reserve(static_cast<size_t>(words) * 8);
  for (int i = 0; i < words; ++i) {
    if (i > 0) out += (i % 12 == 0) ? ". " : " ";
    out += Word();
  }
  out += ".";
  return out;
}

std::string SyntheticText::Title() {
  const int n = 3 + static_cast<int>(rng_() % 4);
  std::string out;
  for (int i = 0; i < n; ++i) {
    if (i > 0) out += " ";
    out += Word();
  }
  return out;
}

std::string SyntheticText::Query() {
  const int n = 2 + static_cast<int>(rng_() % 3);
  const size_t lo = std::min<size_t>(20, vocabulary_.size() - 1);
  const size_t hi = std::min<size_t>(2000, vocabulary_.size());
  std::set<size_t> picked;
  while (static_cast<int>(picked.size()) < n) picked.insert(lo + rng_() % (hi - lo));
  std::string out;
  for (size_t i : picked) {
    if (!out.empty()) out += " ";
    out += vocabulary_[i];
  }
  return out;
}

std::string Runfile(const std::string& rel, const char* argv0) {
  std::vector<std::string> candidates = {rel};
  if (const char* r = std::getenv("RUNFILES_DIR")) candidates.push_back(std::string(r) + "/tessera/" + rel);
  candidates.push_back(std::string(argv0) + ".runfiles/tessera/" + rel);
  for (const auto& c : candidates) {
    if (std::filesystem::exists(c)) return std::filesystem::absolute(c).string();
  }
  return rel;
}

std::string OutputPath(const std::string& path) {
  const char* wd = std::getenv("BUILD_WORKING_DIRECTORY");
  if (path.empty() || path[0] == '/' || wd == nullptr) return path;
  return std::string(wd) + "/" + path;
}

}  // namespace tessera::bench
