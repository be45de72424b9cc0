#include "engine/runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"

namespace tessera::engine {

absl::Status ValidateSamplingOptions(const SamplingOptions& o) {
  if (!(o.temperature >= 0.0f) || !std::isfinite(o.temperature)) {
    return absl::InvalidArgumentError(absl::StrCat("sampling.temperature must be >= 0, got ", o.temperature));
  }
  if (o.top_k < 0) {
    return absl::InvalidArgumentError(absl::StrCat("sampling.top_k must be >= 0, got ", o.top_k));
  }
  if (!(o.top_p > 0.0f && o.top_p <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("sampling.top_p must be in (0, 1], got ", o.top_p));
  }
  if (!(o.repetition_penalty > 0.0f) || !std::isfinite(o.repetition_penalty)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling.repetition_penalty must be > 0, got ", o.repetition_penalty));
  }
  return absl::OkStatus();
}

Sampler::Sampler(const SamplingOptions& options) : options_(options), rng_(options.seed) {}

int32_t Sampler::Sample(absl::Span<float> logits) {
  if (options_.repetition_penalty != 1.0f) {
    for (int32_t t : seen_) {
      if (t < 0 || t >= static_cast<int32_t>(logits.size())) continue;
      float& l = logits[t];
      l = l > 0 ? l / options_.repetition_penalty : l * options_.repetition_penalty;
    }
  }
  return SamplePenalized(logits);
}

namespace {

bool ByLogit(const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

}  // namespace

int32_t Sampler::SamplePenalized(absl::Span<float> logits) {
  const int32_t n = static_cast<int32_t>(logits.size());
  if (options_.temperature == 0.0f) {
    // Greedy; ties go to the lowest id, as in llama.cpp and llama2.c.
    int32_t best = 0;
    for (int32_t i = 1; i < n; ++i) {
      if (logits[i] > logits[best]) best = i;
    }
    return best;
  }
  candidates_.clear();
  candidates_.reserve(n);
  for (int32_t i = 0; i < n; ++i) {
    if (std::isfinite(logits[i])) candidates_.push_back({logits[i], i});
  }
  if (candidates_.empty()) return 0;
  if (options_.top_k > 0) {
    size_t keep = candidates_.size();
    if (static_cast<size_t>(options_.top_k) < keep) {
      keep = options_.top_k;
      std::partial_sort(candidates_.begin(), candidates_.begin() + keep, candidates_.end(),
                        ByLogit);
      candidates_.resize(keep);
    } else {
      std::sort(candidates_.begin(), candidates_.end(), ByLogit);
    }
    return DrawSorted();
  }
  // No top-k: the softmax over the whole row, its sum taken in index order (as Backend::TopK
  // sums it, so SampleTop agrees exactly), and only as much of the row sorted as the top-p cut or
  // the draw reaches (a whole vocabulary is rarely needed).
  float max = candidates_.front().first;
  for (const auto& c : candidates_) max = std::max(max, c.first);
  double total = 0;
  for (const auto& c : candidates_) total += Term(c.first, max);
  return DrawFromRow(max, total, std::nullopt);
}

// candidates_[0, sorted) hold the row's best `sorted` candidates in order; sorts more of them.
size_t Sampler::SortMore(size_t sorted, size_t want) {
  const size_t n = candidates_.size();
  want = std::min(want, n);
  if (want <= sorted) return sorted;
  auto first = candidates_.begin() + sorted;
  if (want < n) std::nth_element(first, candidates_.begin() + want, candidates_.end(), ByLogit);
  std::sort(first, candidates_.begin() + want, ByLogit);
  return want;
}

int32_t Sampler::DrawFromRow(float max, double total, std::optional<double> drawn) {
  const size_t n = candidates_.size();
  size_t sorted = 0, want = 64;
  if (options_.top_p < 1.0f) {
    double cum = 0;
    size_t cut = n;
    bool found = false;
    for (size_t i = 0; !found;) {
      sorted = SortMore(sorted, want);
      for (; i < sorted; ++i) {
        cum += Term(candidates_[i].first, max) / total;
        if (cum >= options_.top_p) {
          cut = i + 1;
          found = true;
          break;
        }
      }
      if (sorted == n) break;
      want *= 4;
    }
    sorted = SortMore(sorted, cut);
    candidates_.resize(cut);
    double kept = 0;
    for (auto& [l, id] : candidates_) {
      l = Term(l, max);
      kept += l;
    }
    return Draw(kept);
  }
  // A draw over the whole row.
  double r = 0;
  if (drawn.has_value()) {
    r = *drawn;
  } else {
    std::uniform_real_distribution<double> uniform(0.0, total);
    r = uniform(rng_);
  }
  for (size_t i = 0;;) {
    sorted = SortMore(sorted, want);
    for (; i < sorted; ++i) {
      r -= Term(candidates_[i].first, max);
      if (r <= 0) return candidates_[i].second;
    }
    if (sorted == n) return candidates_.back().second;
    want *= 4;
  }
}

int32_t Sampler::DrawSorted() {
  const float max = candidates_.front().first;
  double total = 0;
  for (auto& [l, id] : candidates_) {
    l = Term(l, max);
    total += l;
  }
  if (options_.top_p < 1.0f) {
    double cum = 0;
    size_t cut = candidates_.size();
    for (size_t i = 0; i < candidates_.size(); ++i) {
      cum += candidates_[i].first / total;
      if (cum >= options_.top_p) {
        cut = i + 1;
        break;
      }
    }
    candidates_.resize(cut);
    total = 0;
    for (const auto& c : candidates_) total += c.first;
  }
  return Draw(total);
}

int32_t Sampler::Draw(double total) {
  std::uniform_real_distribution<double> uniform(0.0, total);
  double r = uniform(rng_);
  for (const auto& [p, id] : candidates_) {
    r -= p;
    if (r <= 0) return id;
  }
  return candidates_.back().second;
}

int Sampler::CandidatesNeeded(int max_k) const {
  if (options_.temperature == 0.0f) return 1;
  if (options_.top_k > 0) return std::min(options_.top_k, max_k);  // beyond max_k: whole rows
  return max_k;
}

float Sampler::SumTemperature(int max_k) const {
  // Only sampling without top-k uses the whole row's normaliser.
  return options_.temperature > 0.0f && options_.top_k == 0 ? options_.temperature : 0.0f;
}

int32_t Sampler::SampleTop(const TopCandidates& c,
                           absl::FunctionRef<std::vector<float>()> full_row) {
  auto whole_row = [&] {
    std::vector<float> row = full_row();
    return SamplePenalized(absl::MakeSpan(row));
  };
  int valid = 0;
  while (valid < c.k && c.ids[valid] >= 0) ++valid;
  if (c.nonfinite > 0 || valid == 0) return whole_row();
  if (options_.temperature == 0.0f) return c.ids[0];
  const bool complete = valid == c.cols;  // every logit is a candidate
  if (options_.top_k > 0 && (complete || options_.top_k <= valid)) {
    // Exactly Sample()'s arithmetic: the same candidates in the same order.
    size_t keep = valid;
    if (static_cast<size_t>(options_.top_k) < keep) keep = options_.top_k;
    candidates_.clear();
    for (size_t i = 0; i < keep; ++i) candidates_.push_back({c.values[i], c.ids[i]});
    return DrawSorted();
  }
  // A top-k larger than the candidates: its normaliser is over logits we do not hold.
  if (options_.top_k > 0) return whole_row();
  // No top-k: the candidates' softmax terms over the whole row's sum, as Sample() computes them.
  const float max = c.values[0];
  candidates_.clear();
  for (int i = 0; i < valid; ++i) candidates_.push_back({Term(c.values[i], max), c.ids[i]});
  double total = c.sum_exp;
  if (options_.top_p < 1.0f) {
    double cum = 0;
    size_t cut = 0;
    for (size_t i = 0; i < candidates_.size(); ++i) {
      cum += candidates_[i].first / total;
      if (cum >= options_.top_p) {
        cut = i + 1;
        break;
      }
    }
    if (cut == 0) return whole_row();  // the nucleus reaches past the candidates
    candidates_.resize(cut);
    total = 0;
    for (const auto& cand : candidates_) total += cand.first;
    return Draw(total);
  }
  std::uniform_real_distribution<double> uniform(0.0, total);
  const double drawn = uniform(rng_);
  double r = drawn;
  for (const auto& [p, id] : candidates_) {
    r -= p;
    if (r <= 0) return id;
  }
  // Past the candidates: the same draw over the whole row, as Sample() walks it.
  std::vector<float> row = full_row();
  candidates_.clear();
  for (int32_t i = 0; i < static_cast<int32_t>(row.size()); ++i) {
    if (std::isfinite(row[i])) candidates_.push_back({row[i], i});
  }
  return DrawFromRow(max, total, drawn);
}

}  // namespace tessera::engine
