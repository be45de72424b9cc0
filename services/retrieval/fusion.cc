#include "services/retrieval/fusion.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace tessera::retrieval {
namespace {

// Min-max normalisation; a list of one (or all equal) maps to 1.
std::vector<double> Normalise(const std::vector<ScoredId>& list) {
  std::vector<double> out(list.size(), 1.0);
  if (list.empty()) return out;
  double lo = list[0].score, hi = list[0].score;
  for (const auto& s : list) {
    lo = std::min(lo, s.score);
    hi = std::max(hi, s.score);
  }
  if (hi - lo <= 1e-12) return out;
  for (size_t i = 0; i < list.size(); ++i) out[i] = (list[i].score - lo) / (hi - lo);
  return out;
}

bool IsUtf8Continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

size_t BackToBoundary(absl::string_view s, size_t pos) {
  while (pos > 0 && pos < s.size() && IsUtf8Continuation(s[pos])) --pos;
  return pos;
}

}  // namespace

std::vector<FusedHit> Fuse(const std::vector<ScoredId>& bm25, const std::vector<ScoredId>& vector,
                           const FusionOptions& options, int k) {
  absl::flat_hash_map<int64_t, FusedHit> by_id;
  const bool rrf = options.method == FusionMethod::kReciprocalRank;
  const std::vector<double> bn = rrf ? std::vector<double>() : Normalise(bm25);
  const std::vector<double> vn = rrf ? std::vector<double>() : Normalise(vector);
  for (size_t i = 0; i < bm25.size(); ++i) {
    FusedHit& h = by_id[bm25[i].id];
    h.id = bm25[i].id;
    h.bm25 = bm25[i].score;
    h.bm25_rank = static_cast<int>(i) + 1;
    h.fused += rrf ? 1.0 / (options.rrf_k + static_cast<double>(i + 1)) : options.bm25_weight * bn[i];
  }
  for (size_t i = 0; i < vector.size(); ++i) {
    FusedHit& h = by_id[vector[i].id];
    h.id = vector[i].id;
    h.vector = vector[i].score;
    h.vector_rank = static_cast<int>(i) + 1;
    h.fused += rrf ? 1.0 / (options.rrf_k + static_cast<double>(i + 1))
                   : options.vector_weight * vn[i];
  }
  std::vector<FusedHit> out;
  out.reserve(by_id.size());
  for (auto& [id, h] : by_id) out.push_back(h);
  std::sort(out.begin(), out.end(), [](const FusedHit& a, const FusedHit& b) {
    if (a.fused != b.fused) return a.fused > b.fused;
    return a.id < b.id;
  });
  if (k >= 0 && out.size() > static_cast<size_t>(k)) out.resize(static_cast<size_t>(k));
  return out;
}

std::string Snippet(absl::string_view text, absl::string_view query, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  const std::string lower = absl::AsciiStrToLower(text);
  size_t hit = std::string::npos;
  std::string term;
  for (size_t i = 0; i <= query.size(); ++i) {
    if (i == query.size() || !absl::ascii_isalnum(static_cast<unsigned char>(query[i]))) {
      if (term.size() >= 2) {
        size_t p = lower.find(term);
        if (p != std::string::npos && p < hit) hit = p;
      }
      term.clear();
    } else {
      term.push_back(absl::ascii_tolower(static_cast<unsigned char>(query[i])));
    }
  }
  size_t start = 0;
  if (hit != std::string::npos && hit > max_bytes / 3) start = hit - max_bytes / 3;
  start = BackToBoundary(text, start);
  size_t end = std::min(text.size(), start + max_bytes);
  end = BackToBoundary(text, end);
  std::string out;
  if (start > 0) out = "...";
  absl::StrAppend(&out, text.substr(start, end - start));
  if (end < text.size()) out += "...";
  return out;
}

}  // namespace tessera::retrieval
