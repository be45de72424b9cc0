#include "common/utf8.h"

namespace tessera {

size_t DecodeUtf8(absl::string_view text, size_t i, int32_t* code_point) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  *code_point = -1;
  if (b0 < 0x80) {
    *code_point = b0;
    return 1;
  }
  size_t len;
  int32_t min;
  int32_t value;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, min = 0x80, value = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, min = 0x800, value = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, min = 0x10000, value = b0 & 0x07;
  } else {
    return 1;
  }
  if (i + len > text.size()) return 1;
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(text[i + k]);
    if ((b & 0xC0) != 0x80) return 1;
    value = (value << 6) | (b & 0x3F);
  }
  if (value < min || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return 1;
  *code_point = value;
  return len;
}

}  // namespace tessera
