#include "engine/tokenizer/wordpiece_tokenizer.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "unicode/locid.h"
#include "unicode/normalizer2.h"
#include "unicode/uchar.h"
#include "unicode/unistr.h"

namespace tessera::engine {

namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, llama.cpp's word-start mark
constexpr size_t kMaxWordChars = 100;

bool IsWhitespace(UChar32 c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || u_charType(c) == U_SPACE_SEPARATOR;
}

// Python's unicodedata category starting with "C", except the whitespace controls.
bool IsControlChar(UChar32 c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  switch (u_charType(c)) {
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_SURROGATE:
    case U_PRIVATE_USE_CHAR:
    case U_UNASSIGNED:
      return true;
    default:
      return false;
  }
}

bool IsPunctuation(UChar32 c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
      (c >= 123 && c <= 126)) {
    return true;
  }
  switch (u_charType(c)) {
    case U_DASH_PUNCTUATION:
    case U_START_PUNCTUATION:
    case U_END_PUNCTUATION:
    case U_CONNECTOR_PUNCTUATION:
    case U_OTHER_PUNCTUATION:
    case U_INITIAL_PUNCTUATION:
    case U_FINAL_PUNCTUATION:
      return true;
    default:
      return false;
  }
}

bool IsCjk(UChar32 c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

std::vector<std::string> WordPieceTokenizer::BasicTokenize(std::string_view text) {
  const std::u32string code_points = tokenizer_internal::DecodeToCodePoints(text);
  // Clean up and space out CJK ideographs.
  icu::UnicodeString cleaned;
  for (const char32_t c32 : code_points) {
    const UChar32 c = static_cast<UChar32>(c32);
    if (c == 0 || c == 0xFFFD || IsControlChar(c)) continue;
    if (IsWhitespace(c)) {
      cleaned.append(static_cast<UChar32>(' '));
    } else if (IsCjk(c)) {
      cleaned.append(static_cast<UChar32>(' '));
      cleaned.append(c);
      cleaned.append(static_cast<UChar32>(' '));
    } else {
      cleaned.append(c);
    }
  }
  cleaned.toLower(icu::Locale::getRoot());
  UErrorCode error = U_ZERO_ERROR;
  const icu::Normalizer2* nfd = icu::Normalizer2::getNFDInstance(error);
  icu::UnicodeString decomposed;
  if (U_SUCCESS(error) && nfd != nullptr) {
    decomposed = nfd->normalize(cleaned, error);
  }
  if (U_FAILURE(error)) decomposed = cleaned;  // ICU data missing: keep accents

  std::vector<std::string> words;
  std::string current;
  auto flush = [&] {
    if (!current.empty()) words.push_back(std::move(current));
    current.clear();
  };
  for (int32_t i = 0; i < decomposed.length();) {
    const UChar32 c = decomposed.char32At(i);
    i += U16_LENGTH(c);
    if (u_charType(c) == U_NON_SPACING_MARK) continue;
    if (IsWhitespace(c)) {
      flush();
    } else if (IsPunctuation(c)) {
      flush();
      tokenizer_internal::AppendUtf8(static_cast<char32_t>(c), &current);
      flush();
    } else {
      tokenizer_internal::AppendUtf8(static_cast<char32_t>(c), &current);
    }
  }
  flush();
  return words;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> WordPieceTokenizer::Create(const Vocab& input) {
  if (absl::Status status = ValidateVocab(input); !status.ok()) return status;
  Vocab vocab = input;
  // Old vocabularies only name their specials by piece.
  auto find = [&](std::string_view piece) -> int32_t {
    for (size_t i = 0; i < vocab.tokens.size(); ++i) {
      if (vocab.tokens[i] == piece) return static_cast<int32_t>(i);
    }
    return -1;
  };
  if (vocab.unk < 0) vocab.unk = find("[UNK]");
  if (vocab.cls < 0) vocab.cls = find("[CLS]");
  if (vocab.sep < 0) vocab.sep = find("[SEP]");
  if (vocab.pad < 0) vocab.pad = find("[PAD]");
  if (vocab.mask < 0) vocab.mask = find("[MASK]");
  if (vocab.unk < 0) {
    return absl::InvalidArgumentError("WordPiece vocabulary has no unknown token ([UNK])");
  }
  return std::unique_ptr<Tokenizer>(new WordPieceTokenizer(std::move(vocab)));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> WordPieceTokenizer::FromVocabText(
    std::string_view text) {
  Vocab vocab;
  vocab.kind = Vocab::Kind::kWordPiece;
  vocab.add_bos = false;
  vocab.add_space_prefix = false;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    vocab.tokens.emplace_back(line);
    start = end + 1;
  }
  if (vocab.tokens.empty()) return absl::InvalidArgumentError("vocab.txt is empty");
  vocab.token_types.assign(vocab.tokens.size(), kTokenNormal);
  for (size_t i = 0; i < vocab.tokens.size(); ++i) {
    const std::string& t = vocab.tokens[i];
    if (t == "[UNK]") vocab.token_types[i] = kTokenUnknown;
    if (t == "[CLS]" || t == "[SEP]" || t == "[PAD]" || t == "[MASK]") {
      vocab.token_types[i] = kTokenControl;
    }
  }
  return Create(vocab);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> WordPieceTokenizer::FromVocabFile(
    std::string_view path) {
  const std::string p(path);
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("WordPiece vocabulary not found: ", p));
  }
  if (st.st_size > (int64_t{64} << 20)) {
    return absl::InvalidArgumentError(absl::StrCat("vocab.txt is over 64 MiB: ", p));
  }
  std::ifstream in(p, std::ios::binary);
  if (!in) return absl::PermissionDeniedError(absl::StrCat("cannot read ", p));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return FromVocabText(buffer.str());
}

WordPieceTokenizer::WordPieceTokenizer(Vocab vocab) : vocab_(std::move(vocab)) {
  const size_t n = vocab_.tokens.size();
  control_.assign(n, false);
  continuation_.assign(n, false);
  text_.resize(n);
  // Which spelling: GGUF marks word starts with "▁", vocab.txt marks continuations with "##".
  size_t marked_starts = 0, marked_continuations = 0;
  for (const auto& t : vocab_.tokens) {
    marked_starts += StartsWith(t, kSpace);
    marked_continuations += StartsWith(t, "##") && t.size() > 2;
  }
  const bool gguf_spelling = marked_starts > marked_continuations;
  std::vector<std::pair<std::string, int32_t>> specials;
  for (size_t i = 0; i < n; ++i) {
    const int32_t id = static_cast<int32_t>(i);
    const std::string& t = vocab_.tokens[i];
    piece_to_id_.emplace(t, id);
    const int32_t type = vocab_.token_types.empty() ? kTokenNormal : vocab_.token_types[i];
    const bool special = type == kTokenControl || type == kTokenUnknown ||
                         id == vocab_.cls || id == vocab_.sep || id == vocab_.pad ||
                         id == vocab_.mask || id == vocab_.unk;
    if (special) {
      control_[i] = type != kTokenUnknown && id != vocab_.unk;
      text_[i] = t;
      specials.emplace_back(t, id);
      continue;
    }
    if (gguf_spelling) {
      if (StartsWith(t, kSpace)) {
        text_[i] = t.substr(kSpace.size());
        word_start_.emplace(text_[i], id);
      } else {
        text_[i] = t;
        continuation_[i] = true;
        continuation_map_.emplace(t, id);
      }
    } else if (StartsWith(t, "##") && t.size() > 2) {
      text_[i] = t.substr(2);
      continuation_[i] = true;
      continuation_map_.emplace(text_[i], id);
    } else {
      text_[i] = t;
      word_start_.emplace(t, id);
    }
  }
  special_splitter_ = tokenizer_internal::SpecialTokenSplitter(specials);
}

void WordPieceTokenizer::EncodeWord(std::string_view word, std::vector<int32_t>* out) const {
  // Character boundaries.
  std::vector<size_t> bounds;
  for (size_t i = 0; i < word.size();) {
    bounds.push_back(i);
    i += tokenizer_internal::Utf8CharLength(static_cast<unsigned char>(word[i]));
  }
  bounds.push_back(word.size());
  const size_t chars = bounds.size() - 1;
  if (chars > kMaxWordChars) {
    out->push_back(vocab_.unk);
    return;
  }
  const size_t mark = out->size();
  std::string key;
  size_t start = 0;
  while (start < chars) {
    int32_t found = -1;
    size_t end = chars;
    const auto& map = start == 0 ? word_start_ : continuation_map_;
    for (; end > start; --end) {
      key.assign(word.substr(bounds[start], bounds[end] - bounds[start]));
      const auto it = map.find(key);
      if (it != map.end()) {
        found = it->second;
        break;
      }
    }
    if (found < 0) {
      out->resize(mark);
      out->push_back(vocab_.unk);
      return;
    }
    out->push_back(found);
    start = end;
  }
}

void WordPieceTokenizer::EncodeText(std::string_view text, std::vector<int32_t>* out) const {
  for (const std::string& word : BasicTokenize(text)) EncodeWord(word, out);
}

std::vector<int32_t> WordPieceTokenizer::Encode(std::string_view text, bool add_special,
                                                bool parse_special) const {
  const std::string clean = tokenizer_internal::SanitizeUtf8(text);
  std::vector<int32_t> out;
  if (add_special && vocab_.cls >= 0) out.push_back(vocab_.cls);
  if (parse_special && !special_splitter_.empty()) {
    for (const auto& segment : special_splitter_.Split(clean)) {
      if (segment.id >= 0) {
        out.push_back(segment.id);
      } else {
        EncodeText(segment.text, &out);
      }
    }
  } else {
    EncodeText(clean, &out);
  }
  if (add_special && vocab_.sep >= 0) out.push_back(vocab_.sep);
  return out;
}

std::string WordPieceTokenizer::TokenText(int32_t prev, int32_t id) const {
  if (!InRange(id) || control_[id]) return std::string();
  if (continuation_[id]) return text_[id];
  if (prev < 0 || IsControl(prev)) return text_[id];
  return absl::StrCat(" ", text_[id]);
}

std::string WordPieceTokenizer::Decode(absl::Span<const int32_t> ids, bool keep_special) const {
  std::string out;
  int32_t prev = -1;
  for (const int32_t id : ids) {
    if (!InRange(id)) continue;
    if (control_[id]) {
      if (!keep_special) {
        prev = id;
        continue;
      }
      if (!out.empty() && out.back() != ' ') out += ' ';
      out += vocab_.tokens[id];
      out += ' ';  // a kept marker stands apart, like a word
      prev = -1;
      continue;
    }
    out += TokenText(prev, id);
    prev = id;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return tokenizer_internal::SanitizeUtf8(out);
}

std::optional<int32_t> WordPieceTokenizer::TokenId(std::string_view piece) const {
  const auto it = piece_to_id_.find(piece);
  if (it == piece_to_id_.end()) return std::nullopt;
  return it->second;
}

std::string WordPieceTokenizer::Piece(int32_t id) const {
  return InRange(id) ? vocab_.tokens[id] : std::string();
}

bool WordPieceTokenizer::IsControl(int32_t id) const { return InRange(id) && control_[id]; }

}  // namespace tessera::engine
