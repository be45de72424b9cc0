// Reading SentencePiece .model files (a serialized sentencepiece.ModelProto) without
// libsentencepiece or libprotobuf, and the tokenizer that runs them.
//
// Why this exists: Debian's libsentencepiece.so.0 carries its own copy of protobuf-lite and exports
// its symbols, so a binary that links it together with Debian's libprotobuf (every gRPC binary)
// crashes during static initialisation. Product code therefore loads .model files here; the
// libsentencepiece-backed SentencePieceTokenizer remains only as a test oracle.
//
// The protobuf wire format is read by hand (varints, fixed32/64, length-delimited; unknown fields
// skipped; every length checked against the buffer), so a truncated or hostile file gives
// INVALID_ARGUMENT and never a crash. Only what SentencePiece needs to encode and decode is kept.
//
// Supported: BPE models (trainer_spec.model_type = BPE) with the "identity" normaliser (or none:
// an empty name and no precompiled character map), with or without add_dummy_prefix,
// remove_extra_whitespaces and byte_fallback; user-defined pieces (always matched in the text,
// never merged with neighbours), control pieces, unused pieces. Not supported, UNIMPLEMENTED:
// Unigram, word and char models; normalisers with character maps (nmt_nfkc, nfkc, ...);
// treat_whitespace_as_suffix; escape_whitespaces = false; a denormaliser.
//
// The tokenizer (kind "sentencepiece") behaves exactly like SentencePieceTokenizer: SentencePiece's
// BPE encoding, control pieces ("<s>", "[INST]", "[TOOL_CALLS]") recognised in text only with
// parse_special (each stretch of text between them encoded on its own, with its own dummy prefix),
// and the same decoding rules (see sentencepiece_tokenizer.h). Thread-safe: immutable once built.
#ifndef TESSERA_ENGINE_TOKENIZER_SPM_MODEL_H_
#define TESSERA_ENGINE_TOKENIZER_SPM_MODEL_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/vocab.h"

namespace tessera::engine {

// A parsed .model file: the vocabulary plus the normaliser settings a Vocab cannot express.
struct SentencePieceModel {
  // kind kLlamaSpm; tokens, scores and token types (SentencePiece's piece types have the same
  // numbers as GGUF's); unk/bos/eos/pad found by the trainer spec's piece names, as
  // SentencePiece does; add_bos = true, add_eos = false; add_space_prefix = add_dummy_prefix.
  Vocab vocab;
  bool remove_extra_whitespaces = false;  // trim, and collapse runs of spaces to one
  bool byte_fallback = false;             // unknown characters become <0xXX> pieces
};

// Parses a serialized ModelProto. INVALID_ARGUMENT for malformed bytes or an inconsistent
// vocabulary (no pieces, an empty or duplicate piece, no unknown piece, a bad piece type);
// UNIMPLEMENTED for the model kinds and normalisers listed above.
[[nodiscard]] absl::StatusOr<SentencePieceModel> ParseSentencePieceModel(std::string_view bytes);

// ParseSentencePieceModel(bytes).vocab. Note that CreateTokenizer(vocab) builds a
// LlamaSpmTokenizer, which follows llama.cpp rather than SentencePiece where they differ
// (user-defined pieces, parse_special of the unknown piece, remove_extra_whitespaces); use
// SentencePieceModelTokenizer / LoadSentencePieceModel for SentencePiece's exact behaviour.
[[nodiscard]] absl::StatusOr<Vocab> VocabFromSentencePieceModel(std::string_view bytes);

// The tokenizer for a serialized ModelProto. Errors as ParseSentencePieceModel.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Tokenizer>> SentencePieceModelTokenizer(
    std::string_view bytes);

// Reads and parses the .model file at `path`. NOT_FOUND when it does not exist, UNAVAILABLE when it
// cannot be read, otherwise as ParseSentencePieceModel.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Tokenizer>> LoadSentencePieceModel(
    std::string_view path);

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_TOKENIZER_SPM_MODEL_H_
