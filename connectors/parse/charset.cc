#include "connectors/parse/charset.h"

#include <unicode/ucnv.h>
#include <unicode/ucnv_cb.h>
#include <unicode/ucnv_err.h>
#include <unicode/utypes.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace tessera::parse {
namespace {

struct ConverterCloser {
  void operator()(UConverter* c) const { ucnv_close(c); }
};
using ConverterPtr = std::unique_ptr<UConverter, ConverterCloser>;

// Counts the bytes replaced with U+FFFD, then substitutes as ICU's default
// callback does.
void CountingSubstitute(const void* context, UConverterToUnicodeArgs* args, const char* code_units,
                        int32_t length, UConverterCallbackReason reason, UErrorCode* err) {
  if (reason == UCNV_UNASSIGNED || reason == UCNV_ILLEGAL || reason == UCNV_IRREGULAR) {
    ++*static_cast<size_t*>(const_cast<void*>(context));
  }
  UCNV_TO_U_CALLBACK_SUBSTITUTE(nullptr, args, code_units, length, reason, err);
}

// Opens a converter for `charset`; null if ICU does not know the name.
ConverterPtr OpenConverter(const std::string& charset) {
  UErrorCode err = U_ZERO_ERROR;
  ConverterPtr converter(ucnv_open(charset.c_str(), &err));
  if (U_FAILURE(err)) return nullptr;
  return converter;
}

// Converts all of `bytes` from `charset` to UTF-8 with ICU.
absl::Status Convert(absl::string_view bytes, const std::string& charset, size_t max_output_bytes,
                     DecodedText* result) {
  ConverterPtr source = OpenConverter(charset);
  if (source == nullptr) return absl::InternalError(absl::StrCat("ICU has no converter for ", charset));
  ConverterPtr utf8 = OpenConverter("UTF-8");
  if (utf8 == nullptr) return absl::InternalError("ICU has no UTF-8 converter");
  size_t replaced = 0;
  UErrorCode err = U_ZERO_ERROR;
  ucnv_setToUCallBack(source.get(), CountingSubstitute, &replaced, nullptr, nullptr, &err);
  if (U_FAILURE(err)) {
    return absl::InternalError(absl::StrCat("ICU: cannot set callback: ", u_errorName(err)));
  }
  std::string& out = result->text;
  out.resize(bytes.size() + bytes.size() / 2 + 16);
  const char* in = bytes.data();
  const char* const in_end = bytes.data() + bytes.size();
  UChar pivot[4096];
  UChar* pivot_source = pivot;
  UChar* pivot_target = pivot;
  size_t filled = 0;
  bool reset = true;
  while (true) {
    char* target = out.data() + filled;
    err = U_ZERO_ERROR;
    ucnv_convertEx(utf8.get(), source.get(), &target, out.data() + out.size(), &in, in_end, pivot,
                   &pivot_source, &pivot_target, pivot + 4096, reset, /*flush=*/true, &err);
    reset = false;
    filled = static_cast<size_t>(target - out.data());
    if (filled > max_output_bytes) break;
    if (err == U_BUFFER_OVERFLOW_ERROR) {
      out.resize(out.size() * 2);
      continue;
    }
    if (U_FAILURE(err)) {
      return absl::InternalError(
          absl::StrCat("ICU failed converting ", charset, " to UTF-8: ", u_errorName(err)));
    }
    break;
  }
  if (filled > max_output_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("decoded ", charset,
                                                     " text exceeds max_output_bytes (",
                                                     max_output_bytes, ")"));
  }
  out.resize(filled);
  if (replaced > 0) {
    result->warnings.push_back(absl::StrCat("replaced ", replaced, " unconvertible ", charset,
                                            " sequences with U+FFFD"));
  }
  return absl::OkStatus();
}

// The converter name to use for a declared label; "" for UTF-8.
std::string NormalizeLabel(absl::string_view label) {
  std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(label));
  if (lower == "utf-8" || lower == "utf8" || lower == "unicode-1-1-utf-8") return "";
  // WHATWG Encoding: these labels mean windows-1252 on the web.
  for (absl::string_view alias : {"iso-8859-1", "iso8859-1", "latin1", "l1", "us-ascii", "ascii",
                                  "iso_8859-1", "cp819", "ibm819", "cp1252", "x-cp1252"}) {
    if (lower == alias) return "windows-1252";
  }
  return lower;
}

absl::string_view Strip(absl::string_view s, absl::string_view chars) {
  while (!s.empty() && chars.find(s.front()) != absl::string_view::npos) s.remove_prefix(1);
  while (!s.empty() && chars.find(s.back()) != absl::string_view::npos) s.remove_suffix(1);
  return s;
}

// The charset token after "charset" in `s` (after optional spaces, '=' and a
// quote), lower case; "" if malformed.
std::string CharsetToken(absl::string_view s) {
  s = absl::StripLeadingAsciiWhitespace(s);
  if (s.empty() || s.front() != '=') return "";
  s = absl::StripLeadingAsciiWhitespace(s.substr(1));
  if (!s.empty() && (s.front() == '"' || s.front() == '\'')) s.remove_prefix(1);
  size_t n = 0;
  while (n < s.size() && n < 40 &&
         (absl::ascii_isalnum(static_cast<unsigned char>(s[n])) ||
          absl::string_view("-_.:").find(s[n]) != absl::string_view::npos)) {
    ++n;
  }
  return absl::AsciiStrToLower(s.substr(0, n));
}

}  // namespace

std::string CharsetFromMimeType(absl::string_view mime_type) {
  const size_t semicolon = mime_type.find(';');
  if (semicolon == absl::string_view::npos) return "";
  absl::string_view params = mime_type.substr(semicolon + 1);
  while (!params.empty()) {
    const size_t end = params.find(';');
    absl::string_view param = absl::StripAsciiWhitespace(params.substr(0, end));
    const size_t eq = param.find('=');
    if (eq != absl::string_view::npos &&
        absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(param.substr(0, eq)), "charset")) {
      return absl::AsciiStrToLower(
          Strip(absl::StripAsciiWhitespace(param.substr(eq + 1)), "\"'"));
    }
    if (end == absl::string_view::npos) break;
    params.remove_prefix(end + 1);
  }
  return "";
}

std::string HtmlMetaCharset(absl::string_view bytes) {
  const std::string head = absl::AsciiStrToLower(bytes.substr(0, 4096));
  size_t pos = 0;
  while ((pos = head.find("<meta", pos)) != std::string::npos) {
    const size_t end = head.find('>', pos);
    const absl::string_view tag =
        absl::string_view(head).substr(pos, end == std::string::npos ? head.size() - pos : end - pos);
    const size_t at = tag.find("charset");
    if (at != absl::string_view::npos) {
      std::string token = CharsetToken(tag.substr(at + 7));
      if (!token.empty()) return token;
    }
    if (end == std::string::npos) break;
    pos = end;
  }
  return "";
}

absl::StatusOr<DecodedText> DecodeText(absl::string_view bytes, absl::string_view declared_charset,
                                       size_t max_output_bytes) {
  // Byte-order marks win over any declaration.
  if (absl::StartsWith(bytes, "\xEF\xBB\xBF") || absl::StartsWith(bytes, "\xFF\xFE") ||
      absl::StartsWith(bytes, "\xFE\xFF")) {
    return DecodeToUtf8(bytes, max_output_bytes);
  }
  DecodedText result;
  std::string charset = NormalizeLabel(declared_charset);
  if (!charset.empty() && OpenConverter(charset) == nullptr) {
    result.warnings.push_back(
        absl::StrCat("unknown charset '", declared_charset, "' ignored; detecting the encoding"));
    charset.clear();
  } else if (charset.empty() && !declared_charset.empty()) {
    // Declared UTF-8: trust it, replacing invalid sequences.
    return DecodeToUtf8(bytes, max_output_bytes);
  }
  if (charset.empty()) {
    if (IsValidUtf8(bytes)) return DecodeToUtf8(bytes, max_output_bytes);
    charset = "windows-1252";
    result.warnings.push_back("text is not valid UTF-8; decoded as windows-1252");
  }
  absl::Status status = Convert(bytes, charset, max_output_bytes, &result);
  if (!status.ok()) return status;
  return result;
}

}  // namespace tessera::parse
