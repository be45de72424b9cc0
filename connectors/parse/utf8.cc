#include "connectors/parse/utf8.h"

#include <errno.h>
#include <iconv.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tessera::parse {
namespace {

// Classifies the sequence at the start of `s` (non-empty).
// Returns its length when it is a well-formed character. Otherwise returns
// the negated length of the maximal ill-formed subpart to replace (at least
// 1), and sets `*truncated` when the subpart is a valid but incomplete prefix
// that runs into the end of `s`.
int ScanSequence(absl::string_view s, bool* truncated) {
  *truncated = false;
  const auto b0 = static_cast<uint8_t>(s[0]);
  if (b0 < 0x80) return 1;
  int len;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;  // no overlongs
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;  // no overlongs
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return -1;  // continuation byte, C0/C1 or F5..FF
  }
  for (int i = 1; i < len; ++i) {
    if (static_cast<size_t>(i) >= s.size()) {
      *truncated = true;
      return -i;
    }
    const auto b = static_cast<uint8_t>(s[i]);
    const uint8_t min = i == 1 ? lo : 0x80;
    const uint8_t max = i == 1 ? hi : 0xBF;
    if (b < min || b > max) return -i;
  }
  return len;
}

}  // namespace

bool IsValidUtf8(absl::string_view text) {
  size_t i = 0;
  bool truncated;
  while (i < text.size()) {
    // Fast path for ASCII runs.
    if (static_cast<uint8_t>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const int n = ScanSequence(text.substr(i), &truncated);
    if (n < 0) return false;
    i += n;
  }
  return true;
}

size_t ValidUtf8PrefixAllowingTruncation(absl::string_view text) {
  size_t i = 0;
  bool truncated;
  while (i < text.size()) {
    const int n = ScanSequence(text.substr(i), &truncated);
    if (n < 0) return truncated ? text.size() : i;
    i += n;
  }
  return i;
}

size_t AppendSanitizedUtf8(absl::string_view text, std::string* out) {
  size_t replaced = 0;
  size_t i = 0;
  size_t run_start = 0;  // start of the pending run of valid bytes
  bool truncated;
  while (i < text.size()) {
    if (static_cast<uint8_t>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const int n = ScanSequence(text.substr(i), &truncated);
    if (n > 0) {
      i += n;
      continue;
    }
    out->append(text.data() + run_start, i - run_start);
    out->append(kReplacementChar.data(), kReplacementChar.size());
    ++replaced;
    i += -n;
    run_start = i;
  }
  out->append(text.data() + run_start, text.size() - run_start);
  return replaced;
}

absl::string_view TruncateUtf8(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t end = max_bytes;
  // Back up over continuation bytes to the start of the cut character.
  while (end > 0 && (static_cast<uint8_t>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

namespace {

// Converts UTF-16 (without BOM) in the given byte order to UTF-8 with iconv.
// Unpaired surrogates and a trailing odd byte become U+FFFD.
absl::Status ConvertUtf16(absl::string_view bytes, bool big_endian, size_t max_output_bytes,
                          DecodedText* result) {
  iconv_t cd = iconv_open("UTF-8", big_endian ? "UTF-16BE" : "UTF-16LE");
  if (cd == reinterpret_cast<iconv_t>(-1)) {
    return absl::InternalError("iconv cannot convert UTF-16 to UTF-8 on this system");
  }
  std::string& out = result->text;
  // UTF-16 code units expand to at most 3 UTF-8 bytes each (surrogate pairs:
  // 4 bytes for 4 input bytes), so 1.5x the input always suffices.
  const size_t capacity = bytes.size() / 2 * 3 + 3;
  // Each code unit yields at least one byte: reject hopeless inputs early.
  if (bytes.size() / 2 > max_output_bytes) {
    iconv_close(cd);
    return absl::ResourceExhaustedError(
        absl::StrCat("decoded UTF-16 text exceeds max_output_bytes (", max_output_bytes, ")"));
  }
  out.resize(capacity);
  char* in_ptr = const_cast<char*>(bytes.data());  // iconv does not modify input
  size_t in_left = bytes.size();
  char* out_ptr = out.data();
  size_t out_left = out.size();
  size_t replaced = 0;
  while (in_left > 0) {
    const size_t rc = iconv(cd, &in_ptr, &in_left, &out_ptr, &out_left);
    if (rc != static_cast<size_t>(-1)) break;
    if (errno == EILSEQ || errno == EINVAL) {
      // An unpaired surrogate (EILSEQ) or a truncated unit at the end
      // (EINVAL): emit U+FFFD and skip one code unit (or the odd byte).
      if (out_left < kReplacementChar.size()) break;  // cannot happen: see capacity
      for (char c : kReplacementChar) {
        *out_ptr++ = c;
        --out_left;
      }
      ++replaced;
      const size_t skip = in_left >= 2 ? 2 : in_left;
      in_ptr += skip;
      in_left -= skip;
      continue;
    }
    iconv_close(cd);
    return absl::InternalError(absl::StrCat("iconv failed converting UTF-16: errno ", errno));
  }
  iconv_close(cd);
  out.resize(out.size() - out_left);
  if (out.size() > max_output_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("decoded UTF-16 text is ", out.size(),
                                                     " bytes, over max_output_bytes (",
                                                     max_output_bytes, ")"));
  }
  if (replaced > 0) {
    result->warnings.push_back(
        absl::StrCat("replaced ", replaced, " invalid UTF-16 code units with U+FFFD"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DecodedText> DecodeToUtf8(absl::string_view bytes, size_t max_output_bytes) {
  DecodedText result;
  if (bytes.size() >= 2) {
    const auto b0 = static_cast<uint8_t>(bytes[0]);
    const auto b1 = static_cast<uint8_t>(bytes[1]);
    if ((b0 == 0xFF && b1 == 0xFE) || (b0 == 0xFE && b1 == 0xFF)) {
      const absl::Status status =
          ConvertUtf16(bytes.substr(2), /*big_endian=*/b0 == 0xFE, max_output_bytes, &result);
      if (!status.ok()) return status;
      return result;
    }
  }
  if (bytes.size() >= 3 && bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);
  if (bytes.size() > max_output_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "text is ", bytes.size(), " bytes, over max_output_bytes (", max_output_bytes, ")"));
  }
  if (IsValidUtf8(bytes)) {
    result.text.assign(bytes.data(), bytes.size());
    return result;
  }
  result.text.reserve(bytes.size() + 16);
  const size_t replaced = AppendSanitizedUtf8(bytes, &result.text);
  // Each replacement can grow the text by 2 bytes; re-check the bound.
  if (result.text.size() > max_output_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("decoded text exceeds max_output_bytes (", max_output_bytes, ")"));
  }
  result.warnings.push_back(
      absl::StrCat("replaced ", replaced, " invalid UTF-8 sequences with U+FFFD"));
  return result;
}

}  // namespace tessera::parse
