// Character-set detection and conversion to UTF-8 for text inputs (plain
// text, Markdown, CSV/TSV, HTML), the one adapter around ICU's converters
// (ucnv).
//
// DecodeText picks the encoding in this order:
//  1. a byte-order mark: UTF-8, UTF-16LE or UTF-16BE (the BOM is dropped);
//  2. the declared charset (a Content-Type "charset=" parameter, or an HTML
//     <meta charset>), when ICU knows it; "utf-8" declared means UTF-8 with
//     invalid sequences replaced; labels that WHATWG maps to windows-1252
//     (iso-8859-1, latin1, us-ascii) decode as windows-1252;
//  3. UTF-8 when the bytes are valid UTF-8;
//  4. otherwise windows-1252, the usual encoding of legacy Western text.
// Bytes the chosen converter cannot map become U+FFFD and produce a warning.
// An unknown declared charset is ignored with a warning (then 3, 4).
//
// All functions are thread-safe (each call opens its own converters).
#ifndef TESSERA_CONNECTORS_PARSE_CHARSET_H_
#define TESSERA_CONNECTORS_PARSE_CHARSET_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "connectors/parse/utf8.h"

namespace tessera::parse {

// Decodes `bytes` to UTF-8 as described above. `declared_charset` may be
// empty. Errors: RESOURCE_EXHAUSTED if the UTF-8 text would exceed
// `max_output_bytes`; INTERNAL if ICU fails for another reason.
[[nodiscard]] absl::StatusOr<DecodedText> DecodeText(absl::string_view bytes,
                                                     absl::string_view declared_charset,
                                                     size_t max_output_bytes);

// The value of the "charset" parameter of a MIME type such as
// "text/csv; charset=Shift_JIS" (quotes removed, lower case); "" if none.
[[nodiscard]] std::string CharsetFromMimeType(absl::string_view mime_type);

// The charset an HTML document declares in its first 4 KiB: <meta
// charset="x"> or <meta http-equiv="Content-Type" content="...; charset=x">
// (lower case); "" if none. A prescan in the spirit of the HTML5 encoding
// sniffing algorithm, not a full one.
[[nodiscard]] std::string HtmlMetaCharset(absl::string_view bytes);

}  // namespace tessera::parse

#endif  // TESSERA_CONNECTORS_PARSE_CHARSET_H_
