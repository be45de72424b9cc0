#include "engine/tokenizer/llama_spm_tokenizer.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/tokenizer/symbol_merger.h"

namespace tessera::engine {

namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";         // U+2581 "▁"
constexpr std::string_view kUnkSurface = " \xE2\x81\x87 ";  // " ⁇ ", as SentencePiece decodes it

std::string ReplaceSpaceMarks(std::string_view piece) {
  std::string out;
  out.reserve(piece.size());
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kSpace.size(), kSpace) == 0) {
      out.push_back(' ');
      i += kSpace.size();
    } else {
      out.push_back(piece[i++]);
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LlamaSpmTokenizer::Create(const Vocab& vocab,
                                                                     MergeMode mode) {
  if (absl::Status status = ValidateVocab(vocab); !status.ok()) return status;
  if (mode == MergeMode::kByScore && vocab.scores.size() != vocab.tokens.size()) {
    return absl::InvalidArgumentError(
        "a SentencePiece-style vocabulary needs one score per token (tokenizer.ggml.scores)");
  }
  if (mode == MergeMode::kByRank) {
    for (size_t i = 0; i < vocab.merges.size(); ++i) {
      const std::string& merge = vocab.merges[i];
      const size_t space = merge.find(' ');
      if (space == std::string::npos || space == 0 || space + 1 == merge.size() ||
          merge.find(' ', space + 1) != std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("merge ", i, " (\"", merge, "\") is not of the form \"left right\""));
      }
    }
  }
  return std::unique_ptr<Tokenizer>(new LlamaSpmTokenizer(vocab, mode));
}

LlamaSpmTokenizer::LlamaSpmTokenizer(Vocab vocab, MergeMode mode)
    : vocab_(std::move(vocab)), mode_(mode), kind_(mode == MergeMode::kByScore ? "llama-spm" : "bpe") {
  byte_to_id_.fill(-1);
  id_to_byte_.assign(vocab_.tokens.size(), -1);
  std::vector<std::pair<std::string, int32_t>> always;
  std::vector<std::pair<std::string, int32_t>> special;
  for (int32_t id = 0; id < vocab_size(); ++id) {
    const std::string& token = vocab_.tokens[id];
    token_to_id_.emplace(token, id);  // the first id wins for duplicates
    const int32_t type = Type(id);
    if (type == kTokenByte || (vocab_.token_types.empty() && token.size() == 6)) {
      if (auto byte = tokenizer_internal::ParseBytePiece(token)) {
        id_to_byte_[id] = *byte;
        if (byte_to_id_[*byte] < 0) byte_to_id_[*byte] = id;
      }
    }
    if (type == kTokenUserDefined) {
      always.emplace_back(token, id);
      special.emplace_back(token, id);
    } else if (type == kTokenControl || type == kTokenUnknown) {
      special.emplace_back(token, id);
    }
  }
  if (mode_ == MergeMode::kByRank) {
    for (size_t i = 0; i < vocab_.merges.size(); ++i) {
      merge_rank_.emplace(vocab_.merges[i], static_cast<int32_t>(i));
    }
  }
  always_splitter_ = tokenizer_internal::SpecialTokenSplitter(always);
  special_splitter_ = tokenizer_internal::SpecialTokenSplitter(special);
}

void LlamaSpmTokenizer::EncodeText(std::string_view text, std::vector<int32_t>* out) const {
  std::string normalized;
  normalized.reserve(text.size() + text.size() / 4 + kSpace.size());
  if (vocab_.add_space_prefix) normalized += kSpace;
  for (const char c : text) {
    if (c == ' ') {
      normalized += kSpace;
    } else {
      normalized.push_back(c);
    }
  }
  auto fusable = [&](std::string_view left, std::string_view right) -> std::optional<int32_t> {
    // left and right are adjacent in `normalized`, so their concatenation is a view too.
    const std::string_view joined(left.data(), left.size() + right.size());
    const auto it = token_to_id_.find(joined);
    if (it == token_to_id_.end()) return std::nullopt;
    const int32_t type = Type(it->second);
    if (type != kTokenNormal && type != kTokenUserDefined) return std::nullopt;
    return it->second;
  };
  std::vector<tokenizer_internal::MergedSymbol> symbols;
  if (mode_ == MergeMode::kByScore) {
    symbols = tokenizer_internal::MergeSymbols(
        normalized, [&](std::string_view left, std::string_view right) -> std::optional<double> {
          const auto id = fusable(left, right);
          if (!id) return std::nullopt;
          return vocab_.scores[*id];
        });
  } else {
    std::string key;
    symbols = tokenizer_internal::MergeSymbols(
        normalized, [&](std::string_view left, std::string_view right) -> std::optional<double> {
          key.assign(left);
          key.push_back(' ');
          key.append(right);
          const auto it = merge_rank_.find(key);
          if (it == merge_rank_.end() || !fusable(left, right)) return std::nullopt;
          return -static_cast<double>(it->second);
        });
  }
  for (const auto& symbol : symbols) {
    const std::string_view piece(normalized.data() + symbol.start, symbol.length);
    const auto it = token_to_id_.find(piece);
    if (it != token_to_id_.end() && Type(it->second) != kTokenControl &&
        Type(it->second) != kTokenUnused) {
      out->push_back(it->second);
      continue;
    }
    bool all_bytes = true;
    for (const char c : piece) all_bytes &= byte_to_id_[static_cast<unsigned char>(c)] >= 0;
    if (all_bytes) {
      for (const char c : piece) out->push_back(byte_to_id_[static_cast<unsigned char>(c)]);
    } else if (vocab_.unk >= 0) {
      out->push_back(vocab_.unk);
    }
  }
}

std::vector<int32_t> LlamaSpmTokenizer::Encode(std::string_view text, bool add_special,
                                               bool parse_special) const {
  const std::string clean = tokenizer_internal::SanitizeUtf8(text);
  std::vector<int32_t> out;
  if (add_special && vocab_.add_bos && vocab_.bos >= 0) out.push_back(vocab_.bos);
  const auto& splitter = parse_special ? special_splitter_ : always_splitter_;
  if (splitter.empty()) {
    if (!clean.empty()) EncodeText(clean, &out);
  } else {
    for (const auto& segment : splitter.Split(clean)) {
      if (segment.id >= 0) {
        out.push_back(segment.id);
      } else {
        EncodeText(segment.text, &out);
      }
    }
  }
  if (add_special && vocab_.add_eos && vocab_.eos >= 0) out.push_back(vocab_.eos);
  return out;
}

std::string LlamaSpmTokenizer::TokenText(int32_t prev, int32_t id) const {
  if (!InRange(id)) return std::string();
  const int32_t type = Type(id);
  if (type == kTokenControl) return std::string();
  if (id_to_byte_[id] >= 0) return std::string(1, static_cast<char>(id_to_byte_[id]));
  const std::string& token = vocab_.tokens[id];
  if (type == kTokenUnknown) return mode_ == MergeMode::kByScore ? std::string(kUnkSurface) : token;
  if (type == kTokenUserDefined) return token;
  std::string_view piece = token;
  if (vocab_.add_space_prefix && (prev < 0 || IsControl(prev)) &&
      piece.compare(0, kSpace.size(), kSpace) == 0) {
    piece.remove_prefix(kSpace.size());
  }
  return ReplaceSpaceMarks(piece);
}

std::string LlamaSpmTokenizer::Decode(absl::Span<const int32_t> ids, bool keep_special) const {
  std::string out;
  int32_t prev = -1;
  for (const int32_t id : ids) {
    if (!InRange(id)) continue;
    if (Type(id) == kTokenControl) {
      if (keep_special) out += vocab_.tokens[id];
    } else {
      out += TokenText(prev, id);
    }
    prev = id;
  }
  return tokenizer_internal::SanitizeUtf8(out);
}

std::optional<int32_t> LlamaSpmTokenizer::TokenId(std::string_view piece) const {
  const auto it = token_to_id_.find(piece);
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

std::string LlamaSpmTokenizer::Piece(int32_t id) const {
  return InRange(id) ? vocab_.tokens[id] : std::string();
}

bool LlamaSpmTokenizer::IsControl(int32_t id) const {
  return InRange(id) && Type(id) == kTokenControl;
}

}  // namespace tessera::engine
