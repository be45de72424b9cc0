// WordPieceTokenizer: BERT's uncased tokenizer (bge-small, all-MiniLM, bert-base-uncased).
//
// Encoding: the basic tokenizer first (drop NUL, U+FFFD and control characters, map whitespace to
// spaces, put spaces around CJK ideographs, lowercase, NFD and drop combining marks, split on
// whitespace and punctuation), then greedy longest-match-first WordPiece per word, continuation
// pieces after the first; a word longer than 100 characters or with an unmatched rest becomes
// [UNK]. add_special wraps the ids in [CLS] ... [SEP]; parse_special recognises the text of control
// tokens ("[CLS]", "[SEP]", "[MASK]", ...) before normalisation.
//
// Two vocabulary spellings are accepted: vocab.txt's (continuations "##ing", word starts "the")
// and llama.cpp's GGUF conversion (word starts "▁the", continuations "ing"). Piece() returns the
// stored spelling. Decoding joins words with single spaces and glues continuations; control
// tokens are left out unless keep_special. Concatenated TokenText equals Decode.
//
// Unicode case mapping, NFD and character categories come from ICU (libicu). Thread-safe:
// immutable after construction.
#ifndef TESSERA_ENGINE_TOKENIZER_WORDPIECE_TOKENIZER_H_
#define TESSERA_ENGINE_TOKENIZER_WORDPIECE_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/tokenizer/text_util.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/vocab.h"

namespace tessera::engine {

class WordPieceTokenizer : public Tokenizer {
 public:
  // From a Vocab of kind kWordPiece. Special ids not set in the Vocab are looked up by their usual
  // pieces ([UNK], [CLS], [SEP], [PAD], [MASK]). INVALID_ARGUMENT for a malformed vocabulary or
  // one without [UNK].
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Create(const Vocab& vocab);
  // From the text of a vocab.txt (one token per line, id = line number).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromVocabText(std::string_view text);
  // From a vocab.txt file: NOT_FOUND when missing, otherwise as FromVocabText.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromVocabFile(std::string_view path);

  // The basic tokenizer alone (exposed for tests): the normalised words and punctuation marks.
  static std::vector<std::string> BasicTokenize(std::string_view text);

  std::string_view kind() const override { return "wordpiece"; }
  std::vector<int32_t> Encode(std::string_view text, bool add_special,
                              bool parse_special = false) const override;
  std::string Decode(absl::Span<const int32_t> ids, bool keep_special = false) const override;
  std::string TokenText(int32_t prev, int32_t id) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(vocab_.tokens.size()); }
  std::optional<int32_t> TokenId(std::string_view piece) const override;
  std::string Piece(int32_t id) const override;
  bool IsControl(int32_t id) const override;
  int32_t bos_id() const override { return -1; }
  int32_t eos_id() const override { return -1; }
  int32_t unk_id() const override { return vocab_.unk; }
  int32_t pad_id() const override { return vocab_.pad; }
  int32_t cls_id() const override { return vocab_.cls; }
  int32_t sep_id() const override { return vocab_.sep; }

 private:
  explicit WordPieceTokenizer(Vocab vocab);
  bool InRange(int32_t id) const { return id >= 0 && id < vocab_size(); }
  void EncodeText(std::string_view text, std::vector<int32_t>* out) const;
  void EncodeWord(std::string_view word, std::vector<int32_t>* out) const;

  Vocab vocab_;
  std::vector<bool> control_;
  std::vector<bool> continuation_;  // per id: a "##" piece
  std::vector<std::string> text_;   // per id: the piece without "##" / "▁"
  std::unordered_map<std::string, int32_t> word_start_;
  std::unordered_map<std::string, int32_t> continuation_map_;
  std::unordered_map<std::string_view, int32_t> piece_to_id_;
  tokenizer_internal::SpecialTokenSplitter special_splitter_;
};

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_TOKENIZER_WORDPIECE_TOKENIZER_H_
