// The tokenizer interface every model uses: text to token ids and back. Implementations:
// SentencePiece .model files (spm_model.h, a hand-written reader; the libsentencepiece-backed
// SentencePieceTokenizer is a test oracle only), the vocabularies embedded in
// GGUF files (SentencePiece-style with scores and byte fallback; WordPiece for BERT), and Hugging
// Face tokenizer.json (BPE with merges; WordPiece). Control tokens ("<s>", "[INST]",
// "[TOOL_CALLS]") are recognised in input text only when the caller asks (parse_special), so that
// text from users and documents can never smuggle in a control token.
#ifndef TESSERA_ENGINE_TOKENIZER_TOKENIZER_H_
#define TESSERA_ENGINE_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/types/span.h"

namespace tessera::engine {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // "sentencepiece", "llama-spm", "wordpiece", "bpe": for logs and ListModels.
  virtual std::string_view kind() const = 0;

  // Text (UTF-8; invalid sequences are replaced by U+FFFD) to ids. add_special adds what the
  // model expects around a single input: BOS for SentencePiece/BPE vocabularies that ask for it,
  // [CLS] ... [SEP] for WordPiece. parse_special turns the exact text of control tokens into
  // those tokens.
  virtual std::vector<int32_t> Encode(std::string_view text, bool add_special,
                                      bool parse_special = false) const = 0;

  // Ids to text: byte-fallback tokens reassembled into UTF-8, word-boundary markers turned back
  // into spaces, control tokens left out unless keep_special. Ids out of range are skipped.
  virtual std::string Decode(absl::Span<const int32_t> ids, bool keep_special = false) const = 0;

  // The raw bytes one token contributes to decoded text when it follows `prev` (for streaming;
  // may be part of a UTF-8 sequence). prev = -1 at the start of the text.
  virtual std::string TokenText(int32_t prev, int32_t id) const = 0;

  virtual int32_t vocab_size() const = 0;
  // The token whose piece is exactly `piece` (for example "[INST]" or "[CLS]").
  virtual std::optional<int32_t> TokenId(std::string_view piece) const = 0;
  // The piece of a token as stored in the vocabulary ("▁the", "<0x0A>", "##ing").
  virtual std::string Piece(int32_t id) const = 0;
  virtual bool IsControl(int32_t id) const = 0;

  // Special ids, -1 when the vocabulary has none.
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  virtual int32_t unk_id() const = 0;
  virtual int32_t pad_id() const = 0;
  // WordPiece only (-1 elsewhere): [CLS] and [SEP].
  virtual int32_t cls_id() const { return -1; }
  virtual int32_t sep_id() const { return -1; }
};

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_TOKENIZER_TOKENIZER_H_
