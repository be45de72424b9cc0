// UTF-8 validation and decoding of text of unknown encoding.
//
// Every parser's output is valid UTF-8: ill-formed sequences are replaced with
// U+FFFD (one per maximal ill-formed subpart, as the Unicode standard
// recommends) rather than rejected, so one bad byte never loses a document.
// DecodeToUtf8 also honours byte-order marks: a UTF-8 BOM is dropped and
// UTF-16 (LE or BE, with BOM) is converted with glibc's iconv.
//
// All functions are thread-safe.
#ifndef TESSERA_CONNECTORS_PARSE_UTF8_H_
#define TESSERA_CONNECTORS_PARSE_UTF8_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera::parse {

// The UTF-8 encoding of U+FFFD REPLACEMENT CHARACTER.
inline constexpr absl::string_view kReplacementChar = "\xEF\xBF\xBD";

// True if `text` is entirely well-formed UTF-8 (no overlongs, surrogates or
// code points above U+10FFFF).
[[nodiscard]] bool IsValidUtf8(absl::string_view text);

// Length of the longest prefix of `text` that is well-formed UTF-8, except
// that a sequence cut short by the end of `text` counts as valid. Used to
// sniff the first bytes of a file, which may end mid-character.
[[nodiscard]] size_t ValidUtf8PrefixAllowingTruncation(absl::string_view text);

// Appends `text` to `*out`, replacing each maximal ill-formed subpart with
// U+FFFD. Returns the number of replacements made.
size_t AppendSanitizedUtf8(absl::string_view text, std::string* out);

// Returns the longest prefix of the valid UTF-8 string `text` that is at most
// `max_bytes` long and does not split a character.
[[nodiscard]] absl::string_view TruncateUtf8(absl::string_view text, size_t max_bytes);

struct DecodedText {
  std::string text;                   // valid UTF-8, BOM removed
  std::vector<std::string> warnings;  // e.g. how many bytes were replaced
};

// Decodes file bytes to UTF-8 using the byte-order mark, if any (UTF-8,
// UTF-16LE, UTF-16BE); without one the bytes are taken as UTF-8. Invalid
// sequences become U+FFFD and produce a warning.
// Errors: RESOURCE_EXHAUSTED if the decoded text would exceed
// `max_output_bytes`; INTERNAL if iconv cannot convert UTF-16.
[[nodiscard]] absl::StatusOr<DecodedText> DecodeToUtf8(absl::string_view bytes,
                                                       size_t max_output_bytes);

}  // namespace tessera::parse

#endif  // TESSERA_CONNECTORS_PARSE_UTF8_H_
