// CSV (text/csv, RFC 4180) and TSV (text/tab-separated-values) parser.
//
// The bytes are decoded with DecodeText (charset.h: BOM, options.charset,
// UTF-8, else windows-1252). Records follow RFC 4180, read leniently: fields
// may be quoted with '"' ("" inside quotes is one quote), quoted fields may
// hold delimiters and line breaks, records end with CRLF, LF or CR, rows may
// have different numbers of fields, and a quote in the middle of an unquoted
// field is kept as text. An unterminated quote runs to the end of the input
// (with a warning). TSV uses the same rules with a tab as the delimiter.
//
// Output: one untitled section; one line per row (TableWriter). When the
// first row looks like a header (two or more cells, all non-empty, distinct,
// not numbers, at most 128 bytes, and more rows follow), each later row is
// written as "Header: value; Header: value" pairs, so that a search for
// "Region: EMEA" finds the row; otherwise cells are tab-separated.
// options.max_table_rows caps the rows and options.max_cell_bytes the
// fields (a 50 MB field is never held in memory whole); a note line and a
// warning report what was left out. Title: the first line.
//
// Errors: RESOURCE_EXHAUSTED (input or output over the limits),
// DEADLINE_EXCEEDED. Thread-safe: no shared state.
#ifndef TESSERA_CONNECTORS_PARSE_CSV_PARSER_H_
#define TESSERA_CONNECTORS_PARSE_CSV_PARSER_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "connectors/parse/parsed_document.h"

namespace tessera::parse {

[[nodiscard]] absl::StatusOr<ParsedDocument> ParseCsv(absl::string_view bytes,
                                                      const ParseOptions& options);

[[nodiscard]] absl::StatusOr<ParsedDocument> ParseTsv(absl::string_view bytes,
                                                      const ParseOptions& options);

}  // namespace tessera::parse

#endif  // TESSERA_CONNECTORS_PARSE_CSV_PARSER_H_
