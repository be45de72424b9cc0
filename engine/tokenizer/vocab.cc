#include "engine/tokenizer/vocab.h"

#include "engine/tokenizer/llama_spm_tokenizer.h"
#include "engine/tokenizer/wordpiece_tokenizer.h"

namespace tessera::engine {

absl::StatusOr<std::unique_ptr<Tokenizer>> CreateTokenizer(const Vocab& vocab) {
  switch (vocab.kind) {
    case Vocab::Kind::kLlamaSpm:
      return LlamaSpmTokenizer::Create(vocab, LlamaSpmTokenizer::MergeMode::kByScore);
    case Vocab::Kind::kWordPiece:
      return WordPieceTokenizer::Create(vocab);
    case Vocab::Kind::kBpe:
      return absl::UnimplementedError(
          "byte-level BPE vocabularies (GGUF tokenizer.ggml.model \"gpt2\") are not supported yet");
  }
  return absl::InvalidArgumentError("unknown vocabulary kind");
}

}  // namespace tessera::engine
