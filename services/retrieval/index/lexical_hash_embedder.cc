#include "services/retrieval/index/lexical_hash_embedder.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tessera::retrieval {
namespace {

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
constexpr uint64_t kFnvPrime = 0x100000001b3ULL;

// Feature classes. The tag is hashed into the feature so that the word "abc"
// and the character trigram "abc" are different features.
enum FeatureClass : uint8_t { kUnigram = 0, kBigram = 1, kCharGram = 2, kNumClasses = 3 };
// Fixed-point weights (units of 1/1024) per class, before the TF factor.
constexpr double kClassWeight[kNumClasses] = {1.0, 0.5, 0.25};
constexpr double kFixedPointScale = 1024.0;

constexpr int kMinCharGram = 3;
constexpr int kMaxCharGram = 5;
constexpr size_t kMaxCharsForGrams = 64;

inline uint64_t FnvByte(uint64_t h, uint8_t b) { return (h ^ b) * kFnvPrime; }

inline uint64_t FnvBytes(uint64_t h, absl::string_view s) {
  for (unsigned char c : s) h = FnvByte(h, c);
  return h;
}

// splitmix64 (Steele, Lea, Flood 2014): the state advances by the golden
// gamma and each output is the state passed through the finaliser.
inline uint64_t SplitMix64Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline uint64_t SplitMix64Next(uint64_t& state) {
  state += 0x9e3779b97f4a7c15ULL;
  return SplitMix64Mix(state);
}

inline bool IsWordByte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
}

inline unsigned char LowerAscii(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c - 'A' + 'a') : c;
}

// Length in bytes of the "character" starting at word[i]: a UTF-8 lead byte
// with the continuation bytes that follow it (at most 3), else one byte.
inline size_t CharLength(absl::string_view word, size_t i) {
  const unsigned char c = static_cast<unsigned char>(word[i]);
  size_t want = 1;
  if (c >= 0xF0 && c <= 0xF4) {
    want = 4;
  } else if (c >= 0xE0) {
    want = c <= 0xEF ? 3 : 1;
  } else if (c >= 0xC2) {
    want = 2;
  }
  size_t len = 1;
  while (len < want && i + len < word.size() &&
         (static_cast<unsigned char>(word[i + len]) & 0xC0) == 0x80) {
    ++len;
  }
  return len;
}

// Feature hash -> (count, class). Open addressing with linear probing: a few
// million increments for a large document, so it is kept simple and flat.
class FeatureBag {
 public:
  struct Slot {
    uint64_t hash;
    uint32_t count;  // 0 = empty slot
    uint8_t feature_class;
  };

  FeatureBag() : slots_(1024) {}

  void Add(uint64_t hash, FeatureClass c) {
    size_t i = Home(hash);
    while (slots_[i].count != 0) {
      if (slots_[i].hash == hash) {
        ++slots_[i].count;
        return;
      }
      i = (i + 1) & (slots_.size() - 1);
    }
    slots_[i] = Slot{hash, 1, c};
    if (++size_ * 2 > slots_.size()) Grow();
  }

  bool empty() const { return size_ == 0; }
  // Occupied slots have count > 0.
  const std::vector<Slot>& slots() const { return slots_; }

 private:
  size_t Home(uint64_t hash) const {
    return static_cast<size_t>((hash ^ (hash >> 29)) * 0x9e3779b97f4a7c15ULL >> 20) &
           (slots_.size() - 1);
  }
  void Grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    for (const Slot& s : old) {
      if (s.count == 0) continue;
      size_t i = Home(s.hash);
      while (slots_[i].count != 0) i = (i + 1) & (slots_.size() - 1);
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;
  size_t size_ = 0;
};

// Character 3..5-grams of "<" word ">". `chars` is scratch space.
void AddCharGrams(absl::string_view word, std::vector<absl::string_view>& chars, FeatureBag& bag) {
  // The padding marks are ASCII non-word bytes, so they cannot occur inside a
  // word and mark its boundaries unambiguously.
  chars.clear();
  chars.push_back("<");
  for (size_t i = 0; i < word.size() && chars.size() <= kMaxCharsForGrams;) {
    const size_t len = CharLength(word, i);
    chars.push_back(word.substr(i, len));
    i += len;
  }
  chars.push_back(">");
  const uint64_t start_hash = FnvByte(kFnvOffset, kCharGram);
  for (size_t start = 0; start + kMinCharGram <= chars.size(); ++start) {
    uint64_t h = start_hash;
    const size_t max_n = std::min<size_t>(kMaxCharGram, chars.size() - start);
    for (size_t n = 1; n <= max_n; ++n) {
      h = FnvBytes(h, chars[start + n - 1]);
      if (n >= kMinCharGram) bag.Add(FnvByte(h, static_cast<uint8_t>(n)), kCharGram);
    }
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<LexicalHashEmbedder>> LexicalHashEmbedder::Create(Options options) {
  if (options.dimensions <= 0 || options.dimensions > kMaxDimensions) {
    return absl::InvalidArgumentError(absl::StrCat("LexicalHashEmbedder dimensions must be in [1, ",
                                                   kMaxDimensions, "], got ", options.dimensions));
  }
  return std::unique_ptr<LexicalHashEmbedder>(new LexicalHashEmbedder(options));
}

std::string LexicalHashEmbedder::name() const {
  if (options_.seed == kDefaultSeed) return absl::StrCat("lexical-hash-", options_.dimensions);
  return absl::StrFormat("lexical-hash-%d-s%016x", options_.dimensions, options_.seed);
}

absl::StatusOr<std::vector<std::vector<float>>> LexicalHashEmbedder::Embed(
    const std::vector<std::string>& texts) {
  std::vector<std::vector<float>> out;
  out.reserve(texts.size());
  for (const std::string& text : texts) out.push_back(EmbedText(text));
  return out;
}

std::vector<float> LexicalHashEmbedder::EmbedText(absl::string_view text) const {
  const int dims = options_.dimensions;
  std::vector<float> out(dims, 0.0f);

  // 1. Words and their features.
  std::string lowered(text.size(), '\0');
  for (size_t i = 0; i < text.size(); ++i) {
    lowered[i] = static_cast<char>(LowerAscii(static_cast<unsigned char>(text[i])));
  }
  FeatureBag bag;
  std::vector<absl::string_view> chars;
  uint64_t prev_word_hash = 0;
  bool have_prev = false;
  const absl::string_view all(lowered);
  for (size_t i = 0; i < all.size();) {
    if (!IsWordByte(static_cast<unsigned char>(all[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < all.size() && IsWordByte(static_cast<unsigned char>(all[j]))) ++j;
    const absl::string_view word = all.substr(i, j - i);
    i = j;

    const uint64_t word_hash = FnvBytes(FnvByte(kFnvOffset, kUnigram), word);
    bag.Add(word_hash, kUnigram);
    if (have_prev) {
      // Order matters ("budget report" != "report budget"): mix the first
      // word's hash before combining.
      bag.Add(SplitMix64Mix(prev_word_hash ^ kBigram) ^ word_hash, kBigram);
    }
    prev_word_hash = word_hash;
    have_prev = true;
    AddCharGrams(word, chars, bag);
  }
  if (bag.empty()) return out;

  // 2. Project: integer accumulation, so the order of features is irrelevant.
  std::vector<int64_t> acc(dims, 0);
  const uint64_t seed_mix = SplitMix64Mix(options_.seed);
  for (const FeatureBag::Slot& slot : bag.slots()) {
    if (slot.count == 0) continue;
    const double w = kClassWeight[slot.feature_class] *
                     (1.0 + std::log(static_cast<double>(slot.count))) * kFixedPointScale;
    const int64_t q = static_cast<int64_t>(std::llround(w));
    uint64_t state = SplitMix64Mix(slot.hash ^ seed_mix);
    for (int d = 0; d < dims; d += 64) {
      uint64_t bits = SplitMix64Next(state);
      const int end = std::min(dims, d + 64);
      for (int e = d; e < end; ++e, bits >>= 1) acc[e] += (bits & 1) ? q : -q;
    }
  }

  // 3. L2-normalise (in double, in dimension order).
  double sum_sq = 0.0;
  for (int64_t a : acc) {
    const double v = static_cast<double>(a);
    sum_sq += v * v;
  }
  if (sum_sq == 0.0) return out;
  const double inv_norm = 1.0 / std::sqrt(sum_sq);
  for (int d = 0; d < dims; ++d)
    out[d] = static_cast<float>(static_cast<double>(acc[d]) * inv_norm);
  return out;
}

}  // namespace tessera::retrieval
