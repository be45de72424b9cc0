#include "services/retrieval/store/chunker.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/utf8.h"

namespace tessera::retrieval {
namespace {

constexpr int kMaxWordChars = 32;


enum class CharClass { kSpace, kWord, kSingle };  // kSingle: punctuation, symbols, CJK

bool InRange(int32_t cp, int32_t lo, int32_t hi) { return cp >= lo && cp <= hi; }

CharClass ClassifyNonAscii(int32_t cp) {
  if (cp < 0) return CharClass::kWord;  // an invalid byte
  if (cp == 0x85 || cp == 0xA0 || cp == 0x1680 || InRange(cp, 0x2000, 0x200B) || cp == 0x2028 ||
      cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000 || cp == 0xFEFF) {
    return CharClass::kSpace;
  }
  if (InRange(cp, 0xA1, 0xBF) || cp == 0xD7 || cp == 0xF7 ||         // Latin-1 punctuation, symbols
      InRange(cp, 0x2010, 0x2027) || InRange(cp, 0x2030, 0x205E) ||  // general punctuation
      InRange(cp, 0x20A0, 0x20CF) ||                                 // currency
      InRange(cp, 0x2190, 0x2BFF) ||  // arrows, math, technical, boxes, shapes, dingbats
      InRange(cp, 0x3001, 0x303F) ||  // CJK punctuation
      InRange(cp, 0x3040, 0x30FF) || InRange(cp, 0x31F0, 0x31FF) ||  // kana
      InRange(cp, 0x3400, 0x4DBF) || InRange(cp, 0x4E00, 0x9FFF) ||  // CJK ideographs
      InRange(cp, 0xF900, 0xFAFF) || InRange(cp, 0x20000, 0x3FFFF) || InRange(cp, 0xFE10, 0xFE1F) ||
      InRange(cp, 0xFE30, 0xFE4F) ||                                 // vertical, compat forms
      InRange(cp, 0xFF01, 0xFF0F) || InRange(cp, 0xFF1A, 0xFF20) ||  // fullwidth punctuation
      InRange(cp, 0xFF3B, 0xFF40) || InRange(cp, 0xFF5B, 0xFF65) ||
      InRange(cp, 0x1F000, 0x1FAFF)) {  // emoji and pictographs
    return CharClass::kSingle;
  }
  return CharClass::kWord;
}

bool IsAsciiSpace(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool IsAsciiWord(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

// Paragraphs: maximal runs of non-blank lines, as byte ranges of the section text.
struct Range {
  size_t begin;
  size_t end;
};

std::vector<Range> FindParagraphs(absl::string_view text) {
  std::vector<Range> out;
  size_t pos = 0;
  bool open = false;
  Range cur{0, 0};
  while (pos < text.size()) {
    size_t line_end = text.find('\n', pos);
    if (line_end == absl::string_view::npos) line_end = text.size();
    bool blank = true;
    for (size_t i = pos; i < line_end; ++i) {
      const auto c = static_cast<unsigned char>(text[i]);
      if (c != ' ' && c != '\t' && c != '\r' && c != '\f' && c != '\v') {
        blank = false;
        break;
      }
    }
    if (!blank) {
      if (!open) cur.begin = pos, open = true;
      cur.end = line_end;
    } else if (open) {
      out.push_back(cur);
      open = false;
    }
    pos = line_end + 1;
  }
  if (open) out.push_back(cur);
  return out;
}

bool IsTerminator(absl::string_view tok, bool* needs_space) {
  *needs_space = true;
  if (tok == "." || tok == "!" || tok == "?" || tok == "\u2026" || tok == "\u203C") return true;
  *needs_space = false;
  return tok == "\u3002" || tok == "\uFF01" || tok == "\uFF1F" || tok == "\uFF0E";
}

bool IsCloser(absl::string_view tok) {
  return tok == "\"" || tok == "'" || tok == ")" || tok == "]" || tok == "}" || tok == "\u201D" ||
         tok == "\u2019" || tok == "\u00BB" || tok == "\u300D" || tok == "\u300F" ||
         tok == "\uFF09";
}

// Token index ranges [first, second) of the sentences of one paragraph's tokens.
std::vector<std::pair<size_t, size_t>> SplitSentences(absl::string_view text,
                                                      const std::vector<TokenSpan>& toks) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t start = 0;
  const size_t n = toks.size();
  auto tok_text = [&](size_t i) { return text.substr(toks[i].begin, toks[i].end - toks[i].begin); };
  for (size_t i = 0; i < n; ++i) {
    bool needs_space;
    if (!IsTerminator(tok_text(i), &needs_space)) continue;
    size_t j = i;
    bool ignored;
    while (j + 1 < n && toks[j + 1].begin == toks[j].end &&
           (IsCloser(tok_text(j + 1)) || IsTerminator(tok_text(j + 1), &ignored))) {
      ++j;
    }
    if (j + 1 < n && needs_space && toks[j + 1].begin == toks[j].end) {
      i = j;
      continue;  // "3.14", "e.g", "a.b": not a sentence end
    }
    out.emplace_back(start, j + 1);
    start = j + 1;
    i = j;
  }
  if (start < n) out.emplace_back(start, n);
  return out;
}

// Packs token runs of one section into chunks, carrying overlap between them.
class SectionPacker {
 public:
  SectionPacker(absl::string_view title, int section_index, const Section& section, int max_tokens,
                int overlap, std::vector<ChunkText>* out)
      : title_(title),
        section_index_(section_index),
        section_(section),
        max_(static_cast<size_t>(max_tokens)),
        overlap_(static_cast<size_t>(overlap)),
        out_(out) {}

  // Adds tokens [b, e) (at most max_tokens of them) to the current chunk, first closing it when
  // they do not fit beside its content.
  void Add(const TokenSpan* b, const TokenSpan* e) {
    const size_t n = static_cast<size_t>(e - b);
    if (content_ > 0 && cur_.size() + n > max_) Flush();
    if (cur_.size() + n > max_) {  // only carried overlap is there: shorten it
      cur_.erase(cur_.begin(), cur_.begin() + static_cast<ptrdiff_t>(cur_.size() + n - max_));
    }
    cur_.insert(cur_.end(), b, e);
    content_ += n;
  }

  // Emits the current chunk, if it has content beyond the carried overlap.
  void Flush() {
    if (content_ == 0) return;
    const std::string& text = section_.text;
    const size_t begin = cur_.front().begin;
    ChunkText chunk;
    chunk.section_index = section_index_;
    chunk.heading = section_.heading;
    chunk.text = text.substr(begin, cur_.back().end - begin);
    chunk.token_count = static_cast<int>(cur_.size());
    if (!title_.empty()) absl::StrAppend(&chunk.embed_text, title_, "\n");
    if (!section_.heading.empty()) absl::StrAppend(&chunk.embed_text, section_.heading, "\n");
    chunk.embed_text += chunk.text;
    out_->push_back(std::move(chunk));
    // Never carry a whole chunk: the next one would contain it.
    const size_t keep = std::min(overlap_, cur_.size() - 1);
    cur_.erase(cur_.begin(), cur_.end() - static_cast<ptrdiff_t>(keep));
    content_ = 0;
  }

 private:
  absl::string_view title_;
  int section_index_;
  const Section& section_;
  size_t max_;
  size_t overlap_;
  std::vector<ChunkText>* out_;
  std::vector<TokenSpan> cur_;  // carried overlap followed by content
  size_t content_ = 0;          // tokens in cur_ that were not carried
};

// Keeps only well-formed spans inside [base, base + size), shifted by `base`.
void AppendValidSpans(const std::vector<TokenSpan>& spans, size_t base, size_t size,
                      std::vector<TokenSpan>* out) {
  size_t last_end = 0;
  for (const TokenSpan& s : spans) {
    if (s.begin >= s.end || s.end > size || s.begin < last_end) continue;
    out->push_back({s.begin + base, s.end + base});
    last_end = s.end;
  }
}

}  // namespace

absl::Status ValidateChunkingOptions(const ChunkingOptions& options) {
  if (options.max_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunking max_tokens must be at least 1, got ", options.max_tokens));
  }
  if (options.overlap_tokens < 0 || options.overlap_tokens > options.max_tokens / 2) {
    return absl::InvalidArgumentError(absl::StrCat("chunking overlap_tokens must be in [0, ",
                                                   options.max_tokens / 2, "], got ",
                                                   options.overlap_tokens));
  }
  return absl::OkStatus();
}

std::vector<TokenSpan> WordTokenizer::Tokenize(absl::string_view text) const {
  std::vector<TokenSpan> out;
  out.reserve(text.size() / 5 + 1);
  constexpr size_t kNone = absl::string_view::npos;
  size_t word_start = kNone;
  int word_chars = 0;
  auto end_word = [&](size_t at) {
    if (word_start != kNone) out.push_back({word_start, at});
    word_start = kNone;
    word_chars = 0;
  };
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t len = 1;
    CharClass cls;
    if (c < 0x80) {
      cls = IsAsciiWord(c) ? CharClass::kWord
                           : (IsAsciiSpace(c) || c < 0x20 || c == 0x7F ? CharClass::kSpace
                                                                       : CharClass::kSingle);
    } else {
      int32_t cp;
      len = DecodeUtf8(text, i, &cp);
      cls = ClassifyNonAscii(cp);
    }
    switch (cls) {
      case CharClass::kSpace:
        end_word(i);
        break;
      case CharClass::kSingle:
        end_word(i);
        out.push_back({i, i + len});
        break;
      case CharClass::kWord:
        if (word_start != kNone && word_chars == kMaxWordChars) end_word(i);
        if (word_start == kNone) word_start = i;
        ++word_chars;
        break;
    }
    i += len;
  }
  end_word(text.size());
  return out;
}

std::vector<ChunkText> ChunkDocument(absl::string_view title, const std::vector<Section>& sections,
                                     const ChunkingOptions& options, const Tokenizer& tokenizer) {
  const int max_tokens = std::max(1, options.max_tokens);
  const int overlap = std::clamp(options.overlap_tokens, 0, max_tokens / 2);
  const size_t max = static_cast<size_t>(max_tokens);
  const size_t window = max - static_cast<size_t>(overlap);  // >= 1
  std::vector<ChunkText> out;
  std::vector<TokenSpan> toks;
  for (size_t s = 0; s < sections.size(); ++s) {
    const Section& section = sections[s];
    const absl::string_view text = section.text;
    SectionPacker packer(title, static_cast<int>(s), section, max_tokens, overlap, &out);
    for (const Range& para : FindParagraphs(text)) {
      toks.clear();
      AppendValidSpans(tokenizer.Tokenize(text.substr(para.begin, para.end - para.begin)),
                       para.begin, para.end - para.begin, &toks);
      if (toks.empty()) continue;
      if (toks.size() <= max) {
        packer.Add(toks.data(), toks.data() + toks.size());
        continue;
      }
      // An oversize paragraph: chunks of its own, cut at sentence ends, then at token boundaries.
      packer.Flush();
      for (const auto& [first, last] : SplitSentences(text, toks)) {
        if (last - first <= max) {
          packer.Add(toks.data() + first, toks.data() + last);
          continue;
        }
        for (size_t k = first; k < last; k += window) {
          packer.Add(toks.data() + k, toks.data() + std::min(k + window, last));
        }
      }
      packer.Flush();
    }
    packer.Flush();
  }
  return out;
}

}  // namespace tessera::retrieval
