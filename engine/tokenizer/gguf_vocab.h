// VocabFromGguf: reads the tokenizer a GGUF file embeds (the tokenizer.ggml.* metadata keys written
// by llama.cpp's converters) into a Vocab, ready for CreateTokenizer.
#ifndef TESSERA_ENGINE_TOKENIZER_GGUF_VOCAB_H_
#define TESSERA_ENGINE_TOKENIZER_GGUF_VOCAB_H_

#include "absl/status/statusor.h"
#include "engine/model/gguf.h"
#include "engine/tokenizer/vocab.h"

namespace tessera::engine {

// Reads tokenizer.ggml.model ("llama" -> kLlamaSpm, "bert" -> kWordPiece, "gpt2" -> kBpe), tokens,
// scores, token_type, merges, the special ids (bos/eos/unknown/padding/seperator/cls/mask
// _token_id) and add_bos_token/add_eos_token/add_space_prefix. Missing optional keys keep the
// Vocab defaults, except that WordPiece vocabularies default to add_bos = false and
// add_space_prefix = false. NOT_FOUND when the file has no tokenizer (tokenizer.ggml.model or
// .tokens missing), UNIMPLEMENTED for another tokenizer model, INVALID_ARGUMENT for values of the
// wrong type or inconsistent sizes (via ValidateVocab). Thread-safe (reads `file` only).
absl::StatusOr<Vocab> VocabFromGguf(const GgufFile& file);

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_TOKENIZER_GGUF_VOCAB_H_
