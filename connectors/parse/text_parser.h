// Parsers for plain text (text/plain) and Markdown (text/markdown).
//
// Both decode the bytes with DecodeText (charset.h: BOM, options.charset,
// UTF-8, else windows-1252, converted with ICU) and normalise line ends to
// "\n".
//  - Plain text: one untitled section; paragraphs are runs of non-blank
//    lines, kept line by line; title = first non-blank line.
//  - Markdown: ATX headings (# .. ######, optional closing #s) and setext
//    headings (a paragraph underlined with === or ---) open sections; fenced
//    code blocks (``` or ~~~) are kept verbatim as one paragraph, never read
//    as headings; inline links [text](url), reference links [text][ref] and
//    images ![alt](url) become their text; link reference definitions and
//    thematic breaks are dropped. Other syntax (emphasis, lists, quotes) is
//    kept as written. Title = first heading, else first line.
//
// Errors: RESOURCE_EXHAUSTED (input or output over the limits),
// DEADLINE_EXCEEDED. Thread-safe: no shared state.
#ifndef TESSERA_CONNECTORS_PARSE_TEXT_PARSER_H_
#define TESSERA_CONNECTORS_PARSE_TEXT_PARSER_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "connectors/parse/parsed_document.h"

namespace tessera::parse {

[[nodiscard]] absl::StatusOr<ParsedDocument> ParsePlainText(absl::string_view bytes,
                                                            const ParseOptions& options);

[[nodiscard]] absl::StatusOr<ParsedDocument> ParseMarkdown(absl::string_view bytes,
                                                           const ParseOptions& options);

// Replaces Markdown links and images in `text` with their text:
// "[a](u)" -> "a", "![alt](u)" -> "alt", "[a][ref]" -> "a". Backslash-escaped
// brackets are left alone. Linear time on any input.
[[nodiscard]] std::string StripMarkdownLinks(absl::string_view text);

}  // namespace tessera::parse

#endif  // TESSERA_CONNECTORS_PARSE_TEXT_PARSER_H_
