// LlamaSpmTokenizer: SentencePiece-style tokenization from a plain vocabulary (the one llama.cpp
// embeds in GGUF files as tokenizer.ggml.model = "llama"), without libsentencepiece.
//
// Encoding: spaces become "▁", a "▁" is prepended when add_space_prefix (once per stretch of text
// between special tokens), then adjacent symbols are fused while their concatenation is a normal
// token, best first. Two priorities are supported: the token's score (SentencePiece BPE, GGUF
// "llama") or the rank of the pair in a merges list (the Hugging Face tokenizer.json form of the
// same vocabularies, model "BPE" with byte_fallback). A symbol that is not a token falls back to
// its bytes ("<0xXX>" tokens), or to the unknown token when the vocabulary has no byte tokens.
// User-defined tokens (type 4) are always matched in the text; control tokens (type 3, "<s>") and
// the unknown token only with parse_special.
//
// Decoding is SentencePiece's (see sentencepiece_tokenizer.h): "▁" -> space, byte tokens
// reassembled, control tokens dropped unless keep_special, and the leading space of a word removed
// at the start of the text and after a control token. Concatenated TokenText equals Decode.
//
// Thread-safe: immutable after construction.
#ifndef TESSERA_ENGINE_TOKENIZER_LLAMA_SPM_TOKENIZER_H_
#define TESSERA_ENGINE_TOKENIZER_LLAMA_SPM_TOKENIZER_H_

#include <array>
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

class LlamaSpmTokenizer : public Tokenizer {
 public:
  // How adjacent symbols are chosen for fusing.
  enum class MergeMode {
    kByScore,  // the fused token's score, higher first (vocab.scores required)
    kByRank,   // the pair's position in vocab.merges, earlier first (vocab.merges required)
  };

  // INVALID_ARGUMENT when the vocabulary is malformed (see ValidateVocab) or lacks what the mode
  // needs (scores, or merges naming tokens).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Create(const Vocab& vocab,
                                                           MergeMode mode = MergeMode::kByScore);

  std::string_view kind() const override { return kind_; }
  std::vector<int32_t> Encode(std::string_view text, bool add_special,
                              bool parse_special = false) const override;
  std::string Decode(absl::Span<const int32_t> ids, bool keep_special = false) const override;
  std::string TokenText(int32_t prev, int32_t id) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(vocab_.tokens.size()); }
  std::optional<int32_t> TokenId(std::string_view piece) const override;
  std::string Piece(int32_t id) const override;
  bool IsControl(int32_t id) const override;
  int32_t bos_id() const override { return vocab_.bos; }
  int32_t eos_id() const override { return vocab_.eos; }
  int32_t unk_id() const override { return vocab_.unk; }
  int32_t pad_id() const override { return vocab_.pad; }

 private:
  LlamaSpmTokenizer(Vocab vocab, MergeMode mode);
  int32_t Type(int32_t id) const {
    return vocab_.token_types.empty() ? kTokenNormal : vocab_.token_types[id];
  }
  bool InRange(int32_t id) const { return id >= 0 && id < vocab_size(); }
  void EncodeText(std::string_view text, std::vector<int32_t>* out) const;

  Vocab vocab_;
  MergeMode mode_;
  std::string_view kind_;
  std::unordered_map<std::string_view, int32_t> token_to_id_;  // keys point into vocab_.tokens
  // kByRank: "left right" -> rank.
  std::unordered_map<std::string, int32_t> merge_rank_;
  std::array<int32_t, 256> byte_to_id_;
  std::vector<int16_t> id_to_byte_;  // -1 unless a byte token
  tokenizer_internal::SpecialTokenSplitter always_splitter_;   // user-defined tokens
  tokenizer_internal::SpecialTokenSplitter special_splitter_;  // + control and unknown
};

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_TOKENIZER_LLAMA_SPM_TOKENIZER_H_
