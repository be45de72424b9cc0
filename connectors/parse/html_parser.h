// HTML parser (text/html), built on gumbo, the HTML5 parsing library.
//
// Extracts what a reader sees: text of the <body> (and the <title>), skipping
// <script>, <style>, <noscript>, <template>, <iframe>, comments and elements
// with the `hidden` attribute. Entities are decoded by gumbo; runs of
// whitespace collapse to one space except inside <pre>/<textarea>. Block
// elements (p, div, li, blockquote, ...) end paragraphs, <br> breaks a line,
// <h1>..<h6> open sections (their text becomes the heading), and tables
// become one paragraph with a line per row and tab-separated cells.
// Title = <title>, else the first heading, else the first line.
//
// Input is decoded with DecodeText (charset.h): a BOM, else options.charset,
// else the <meta charset> (or http-equiv Content-Type) of the first 4 KiB,
// else UTF-8, or windows-1252 when the bytes are not valid UTF-8.
//
// Hostile input: gumbo has no depth limit and is quadratic on deeply nested
// blocks, and cannot be interrupted. The adapter therefore gives gumbo its own
// allocator, which checks the deadline and a memory cap as gumbo allocates and
// abandons the parse (freeing everything gumbo allocated) once either is
// exceeded. The tree is walked iteratively, so depth cannot overflow the stack.
//
// Errors: RESOURCE_EXHAUSTED (input/output over the limits, or a parse tree
// over 64 MiB + 8 x max_output_bytes), DEADLINE_EXCEEDED. Thread-safe: no
// shared state.
#ifndef TESSERA_CONNECTORS_PARSE_HTML_PARSER_H_
#define TESSERA_CONNECTORS_PARSE_HTML_PARSER_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "connectors/parse/parsed_document.h"

namespace tessera::parse {

[[nodiscard]] absl::StatusOr<ParsedDocument> ParseHtml(absl::string_view bytes,
                                                       const ParseOptions& options);

}  // namespace tessera::parse

#endif  // TESSERA_CONNECTORS_PARSE_HTML_PARSER_H_
