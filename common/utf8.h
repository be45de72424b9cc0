// UTF-8 decoding shared by everything that walks text character by character
// (tokenizers, chunkers, FTS sanitising). Thread-safe, stateless.
#ifndef TESSERA_COMMON_UTF8_H_
#define TESSERA_COMMON_UTF8_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace tessera {

// Decodes the character starting at text[i] (i < text.size()). Returns its
// length in bytes (>= 1) and sets *code_point; an invalid, overlong,
// surrogate or truncated sequence counts as one byte with *code_point = -1,
// so callers always make progress.
size_t DecodeUtf8(absl::string_view text, size_t i, int32_t* code_point);

}  // namespace tessera

#endif  // TESSERA_COMMON_UTF8_H_
