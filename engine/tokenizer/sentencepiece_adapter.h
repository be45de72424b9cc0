// A thin wrapper around Debian's libsentencepiece. It exists because sentencepiece_processor.h
// declares `absl::string_view` as std::string_view, which clashes with Debian's Abseil (whose
// absl::string_view is its own class): this header and its .cc never include Abseil, and the rest
// of the folder never includes sentencepiece_processor.h. Internal to engine/tokenizer/.
// Thread-safety: const methods may be called concurrently after a successful Load*.
#ifndef TESSERA_ENGINE_TOKENIZER_SENTENCEPIECE_ADAPTER_H_
#define TESSERA_ENGINE_TOKENIZER_SENTENCEPIECE_ADAPTER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}  // namespace sentencepiece

namespace tessera::engine::tokenizer_internal {

class SentencePieceAdapter {
 public:
  SentencePieceAdapter();
  ~SentencePieceAdapter();

  // Both return an empty string on success, otherwise SentencePiece's error message. Nothing
  // throws.
  std::string LoadFile(const std::string& path);
  std::string LoadSerialized(std::string_view bytes);

  int size() const;
  const std::string& piece(int id) const;
  bool is_control(int id) const;
  bool is_unknown(int id) const;
  bool is_byte(int id) const;
  int piece_to_id(std::string_view piece) const;  // unk_id() when absent
  int bos_id() const;
  int eos_id() const;
  int unk_id() const;
  int pad_id() const;

  // Encodes plain text (no special-token handling). Returns "" on success, else the error.
  std::string Encode(std::string_view text, std::vector<int>* ids) const;
  // SentencePiece's own decoding (used to learn its leading-space rule and in tests).
  std::string DecodeIds(const std::vector<int>& ids) const;

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

}  // namespace tessera::engine::tokenizer_internal

#endif  // TESSERA_ENGINE_TOKENIZER_SENTENCEPIECE_ADAPTER_H_
