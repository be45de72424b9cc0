// SentencePieceTokenizer: the Tokenizer for SentencePiece .model files (Mistral v1/v3/v7, Llama 2),
// over Debian's libsentencepiece. TEST ORACLE ONLY (testonly in BUILD): libsentencepiece exports its
// own protobuf-lite and crashes binaries that also link libprotobuf; products use spm_model.h.
// SentencePiece never recognises control tokens in text, so with
// parse_special the input is first split on the texts of the model's control pieces ("<s>",
// "[INST]", "[TOOL_CALLS]", longest match first) and each stretch of text between them is encoded
// on its own, exactly as if it were a separate input (SentencePiece's dummy-prefix "▁" applies to
// each stretch; this is how Mistral's reference tokenizer encodes a chat).
//
// Decoding follows SentencePiece: "▁" becomes a space, byte pieces "<0xXX>" are reassembled, the
// unknown piece decodes to " ⁇ ", and (when the model adds a dummy prefix) the leading space of a
// word is dropped if the token starts the text or follows a control token: that space is the dummy
// prefix Encode added to the stretch of text after the control token, so Decode(keep_special) of
// Encode(parse_special) gives the input back (Mistral's reference decoder does the same). TokenText
// applies this rule with `prev`, so concatenating TokenText over a sequence yields its Decode
// (Decode then replaces invalid UTF-8 by U+FFFD; TokenText returns raw bytes).
//
// Thread-safe: immutable after construction.
#ifndef TESSERA_ENGINE_TOKENIZER_SENTENCEPIECE_TOKENIZER_H_
#define TESSERA_ENGINE_TOKENIZER_SENTENCEPIECE_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/tokenizer/sentencepiece_adapter.h"
#include "engine/tokenizer/text_util.h"
#include "engine/tokenizer/tokenizer.h"

namespace tessera::engine {

class SentencePieceTokenizer : public Tokenizer {
 public:
  // Loads a .model file. NOT_FOUND when the file does not exist, INVALID_ARGUMENT when it is not a
  // SentencePiece model.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(std::string_view path);
  // Loads a serialized ModelProto (the bytes of a .model file). INVALID_ARGUMENT when malformed.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromSerialized(std::string_view bytes);

  std::string_view kind() const override { return "sentencepiece"; }
  std::vector<int32_t> Encode(std::string_view text, bool add_special,
                              bool parse_special = false) const override;
  std::string Decode(absl::Span<const int32_t> ids, bool keep_special = false) const override;
  std::string TokenText(int32_t prev, int32_t id) const override;
  int32_t vocab_size() const override { return size_; }
  std::optional<int32_t> TokenId(std::string_view piece) const override;
  std::string Piece(int32_t id) const override;
  bool IsControl(int32_t id) const override;
  int32_t bos_id() const override { return bos_; }
  int32_t eos_id() const override { return eos_; }
  int32_t unk_id() const override { return unk_; }
  int32_t pad_id() const override { return pad_; }

 private:
  explicit SentencePieceTokenizer(std::unique_ptr<tokenizer_internal::SentencePieceAdapter> sp);
  bool InRange(int32_t id) const { return id >= 0 && id < size_; }

  std::unique_ptr<tokenizer_internal::SentencePieceAdapter> sp_;
  int32_t size_;
  int32_t bos_, eos_, unk_, pad_;
  bool strip_leading_space_ = true;
  std::vector<int16_t> byte_of_id_;  // -1 unless the piece is "<0xXX>" of type BYTE
  tokenizer_internal::SpecialTokenSplitter control_splitter_;
};

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_TOKENIZER_SENTENCEPIECE_TOKENIZER_H_
