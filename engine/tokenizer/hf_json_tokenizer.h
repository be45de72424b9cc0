// TokenizerFromHfJson: builds a Tokenizer from a Hugging Face tokenizer.json.
//
// Supported: model "WordPiece" (BERT: BertNormalizer/BertPreTokenizer, "##" continuations) and
// model "BPE" in the SentencePiece style of Llama/Mistral tokenizer.json files (normalizer
// Prepend("▁") + Replace(" ", "▁"), or a Metaspace pre-tokenizer; byte_fallback "<0xXX>" tokens;
// merges as "a b" strings or ["a", "b"] pairs), plus added_tokens (special ones become control
// tokens recognised with parse_special; the others are always matched). Byte-level BPE (GPT-2
// style ByteLevel pre-tokenizer) is UNIMPLEMENTED, and so is any other model type.
#ifndef TESSERA_ENGINE_TOKENIZER_HF_JSON_TOKENIZER_H_
#define TESSERA_ENGINE_TOKENIZER_HF_JSON_TOKENIZER_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"

namespace tessera::engine {

// From the JSON text. INVALID_ARGUMENT for malformed JSON or a missing/ill-typed field (the message
// names it), UNIMPLEMENTED for unsupported models or pre-tokenizers.
absl::StatusOr<std::unique_ptr<Tokenizer>> TokenizerFromHfJsonString(std::string_view json);
// From a tokenizer.json file: NOT_FOUND when missing, otherwise as above.
absl::StatusOr<std::unique_ptr<Tokenizer>> TokenizerFromHfJson(std::string_view path);

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_TOKENIZER_HF_JSON_TOKENIZER_H_
