// Helpers shared by the tokenizer implementations in this folder: UTF-8 clean-up, splitting input
// on the text of control tokens (parse_special), and byte-fallback pieces ("<0x0A>"). Internal to
// engine/tokenizer/; stateless functions are thread-safe, SpecialTokenSplitter is immutable after
// construction and safe to share across threads.
#ifndef TESSERA_ENGINE_TOKENIZER_TEXT_UTIL_H_
#define TESSERA_ENGINE_TOKENIZER_TEXT_UTIL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tessera::engine::tokenizer_internal {

// Returns `text` with every invalid, overlong, surrogate or truncated UTF-8 sequence replaced by
// U+FFFD (one replacement per offending byte). Valid input is returned unchanged.
std::string SanitizeUtf8(std::string_view text);

// True when `text` is valid UTF-8.
bool IsValidUtf8(std::string_view text);

// Appends the UTF-8 encoding of `code_point` (must be a valid scalar value) to `out`.
void AppendUtf8(char32_t code_point, std::string* out);

// Byte length of the UTF-8 character starting with `lead` (1 for a stray continuation byte).
inline size_t Utf8CharLength(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

// Decodes UTF-8 into code points; invalid bytes become U+FFFD.
std::u32string DecodeToCodePoints(std::string_view text);

// "<0x41>" -> 0x41; anything else -> nullopt.
std::optional<uint8_t> ParseBytePiece(std::string_view piece);

// Splits text on the exact texts of special tokens, longest match first at each position.
class SpecialTokenSplitter {
 public:
  struct Segment {
    std::string_view text;  // the plain text (empty when this is a special token)
    int32_t id = -1;        // the special token id, or -1 for plain text
  };

  SpecialTokenSplitter() = default;
  // `tokens`: (text, id) pairs. Empty texts are ignored; when a text repeats, the first id wins.
  explicit SpecialTokenSplitter(const std::vector<std::pair<std::string, int32_t>>& tokens);

  bool empty() const { return by_first_byte_.empty(); }

  // Segments of `text` in order. Plain segments are never empty; `text` must outlive the result.
  std::vector<Segment> Split(std::string_view text) const;

 private:
  // First byte -> (text, id), longest text first.
  std::unordered_map<unsigned char, std::vector<std::pair<std::string, int32_t>>> by_first_byte_;
};

}  // namespace tessera::engine::tokenizer_internal

#endif  // TESSERA_ENGINE_TOKENIZER_TEXT_UTIL_H_
