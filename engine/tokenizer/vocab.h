// Vocab: a tokenizer vocabulary as plain data (tokens, scores, GGUF token types, BPE merges and the
// special ids), the form in which GGUF files embed their tokenizer. VocabFromGguf (gguf_vocab.h)
// reads one from a GGUF file; tests and tokenizer.json loading build them directly.
// CreateTokenizer validates a Vocab and builds the matching Tokenizer.
#ifndef TESSERA_ENGINE_TOKENIZER_VOCAB_H_
#define TESSERA_ENGINE_TOKENIZER_VOCAB_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"

namespace tessera::engine {

// GGUF token types (tokenizer.ggml.token_type).
enum VocabTokenType : int32_t {
  kTokenNormal = 1,
  kTokenUnknown = 2,
  kTokenControl = 3,
  kTokenUserDefined = 4,
  kTokenUnused = 5,
  kTokenByte = 6,
};

struct Vocab {
  // kLlamaSpm: SentencePiece-style merges by score with byte fallback ("llama" in GGUF).
  // kWordPiece: BERT ("bert"). kBpe: merges by rank ("gpt2"; byte-level BPE, not supported yet).
  enum class Kind { kLlamaSpm, kWordPiece, kBpe } kind = Kind::kLlamaSpm;
  std::vector<std::string> tokens;
  std::vector<float> scores;         // empty, or one per token (kLlamaSpm needs them)
  std::vector<int32_t> token_types;  // empty (all normal), or one VocabTokenType per token
  std::vector<std::string> merges;   // BPE only, "a b"
  int32_t bos = -1, eos = -1, unk = -1, pad = -1, sep = -1, cls = -1, mask = -1;
  bool add_bos = true, add_eos = false;
  bool add_space_prefix = true;
};

// Checks sizes (scores/token_types empty or one per token), special ids (-1 or in range), token
// types (1..6) and that the vocabulary is not empty. INVALID_ARGUMENT naming the problem.
absl::Status ValidateVocab(const Vocab& vocab);

// Validates `vocab` and builds its tokenizer: kLlamaSpm -> "llama-spm", kWordPiece -> "wordpiece".
// kBpe (GPT-2 byte-level) is UNIMPLEMENTED. Defined in the :vocab target (vocab.cc).
absl::StatusOr<std::unique_ptr<Tokenizer>> CreateTokenizer(const Vocab& vocab);

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_TOKENIZER_VOCAB_H_
