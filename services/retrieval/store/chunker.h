// Token-aware chunking: cuts a document's sections into the chunks that are embedded, indexed
// for BM25, searched and cited.
//
// Rules (see ChunkDocument):
//  - A chunk never spans two sections, and overlap is carried only within a section.
//  - Paragraphs (separated by blank lines) are packed whole, greedily, up to max_tokens.
//  - A paragraph longer than max_tokens gets chunks of its own, cut at sentence ends; a sentence
//    longer than a chunk is cut at token boundaries.
//  - Consecutive chunks of a section share up to overlap_tokens tokens (fewer when the next
//    piece would not fit otherwise).
//  - A chunk's text is one exact, contiguous substring of its section's text (from its first
//    token's first byte to its last token's last byte), so it never splits a UTF-8 character as
//    long as the tokenizer's spans do not. Invalid UTF-8 bytes pass through unchanged.
//
// Thread-safety: WordTokenizer is immutable and thread-safe; ChunkDocument is a pure function.
#ifndef TESSERA_SERVICES_RETRIEVAL_STORE_CHUNKER_H_
#define TESSERA_SERVICES_RETRIEVAL_STORE_CHUNKER_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tessera::retrieval {

struct ChunkingOptions {
  // The largest chunk, in tokens. Values below 1 are treated as 1.
  int max_tokens = 512;
  // Tokens consecutive chunks of a section share. Clamped to [0, max_tokens / 2].
  int overlap_tokens = 64;
};

// INVALID_ARGUMENT unless max_tokens >= 1 and 0 <= overlap_tokens <= max_tokens / 2 (the rule of
// the retrieval API). ChunkDocument itself clamps instead of failing.
[[nodiscard]] absl::Status ValidateChunkingOptions(const ChunkingOptions& options);

// A token as a half-open byte range [begin, end) of the tokenized text.
struct TokenSpan {
  size_t begin = 0;
  size_t end = 0;
  friend bool operator==(const TokenSpan&, const TokenSpan&) = default;
};

// Splits text into tokens. Implementations must return non-empty spans in increasing order,
// non-overlapping, inside the text, each starting and ending on a UTF-8 character boundary
// (whitespace may fall between spans). Must be thread-safe.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<TokenSpan> Tokenize(absl::string_view text) const = 0;
};

// The fallback tokenizer, used when no engine tokenizer is configured: a token is a run of
// letters/digits (ASCII alphanumerics, '_' and non-ASCII characters other than the space and
// punctuation ones it knows), one punctuation character, or one CJK ideograph / kana. Runs longer
// than 32 characters are cut into pieces of 32, roughly as a subword tokenizer would. Each
// invalid UTF-8 byte is one character of a word. Thread-safe.
class WordTokenizer final : public Tokenizer {
 public:
  std::vector<TokenSpan> Tokenize(absl::string_view text) const override;
};

// A titled part of a document.
struct Section {
  std::string heading;
  std::string text;
  int page = 0;  // 1-based page the section starts on; 0 when unknown
};

struct ChunkText {
  int section_index = 0;  // 0-based index into the sections given to ChunkDocument
  std::string heading;    // the section's heading
  std::string text;       // the chunk body: an exact substring of the section's text
  // What is embedded: the non-empty ones of title and heading, each followed by '\n', then text.
  std::string embed_text;
  int token_count = 0;  // tokens of `text` (the tokenizer's spans inside it)
};

// Cuts `sections` into chunks by the rules in the file comment. Sections with no tokens (empty
// or whitespace only) give no chunks; so does an empty document. `tokenizer` is not retained.
std::vector<ChunkText> ChunkDocument(absl::string_view title, const std::vector<Section>& sections,
                                     const ChunkingOptions& options, const Tokenizer& tokenizer);

}  // namespace tessera::retrieval

#endif  // TESSERA_SERVICES_RETRIEVAL_STORE_CHUNKER_H_
