// ParseDocument: turns the bytes of one file into a ParsedDocument (title,
// sections, warnings), choosing the parser from the declared MIME type or file
// extension and, when that is missing or unsupported, from the content.
//
// Supported formats (canonical MIME types in parsed_document.h):
//   PDF (poppler), DOCX, XLSX, PPTX (libzip + pugixml), HTML (gumbo), CSV and
//   TSV, Markdown, plain text. See pdf_parser.h, docx_parser.h,
//   xlsx_parser.h, pptx_parser.h, html_parser.h, csv_parser.h, text_parser.h
//   for what each extracts. Text formats are decoded with charset.h (BOM,
//   declared charset, UTF-8, else windows-1252); a "; charset=" parameter of
//   the MIME type passed to ParseDocument is used when options.charset is
//   empty.
//
// Connectors call this for every attachment, upload and file they sync, so
// every input is treated as hostile: limits in ParseOptions bound input size,
// output size, decompression and time, and no input crashes or prints.
//
// Thread-safe: parses share no mutable state and may run concurrently.
#ifndef TESSERA_CONNECTORS_PARSE_DOCUMENT_PARSER_H_
#define TESSERA_CONNECTORS_PARSE_DOCUMENT_PARSER_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "connectors/parse/parsed_document.h"  // IWYU pragma: export

namespace tessera::parse {

// Parses `bytes`. `filename_or_mime` is a file name or path ("q3/report.pdf")
// or a MIME type ("text/html; charset=utf-8"), or empty; see DetectMimeType.
// Empty input yields a document with no sections (not an error).
//
// Errors:
//   INVALID_ARGUMENT    unsupported or unrecognised format (the message names
//                       it), or a password-protected PDF/Office file;
//   DATA_LOSS           a corrupt or truncated file of a supported format;
//   RESOURCE_EXHAUSTED  input over max_input_bytes, extracted text or a
//                       decompressed part over max_output_bytes;
//   DEADLINE_EXCEEDED   the parser ran past options.timeout.
[[nodiscard]] absl::StatusOr<ParsedDocument> ParseDocument(absl::string_view bytes,
                                                           absl::string_view filename_or_mime,
                                                           const ParseOptions& options = {});

// The MIME type ParseDocument would use for `bytes`:
//  1. a supported MIME type named by `filename_or_mime`, or implied by its
//     extension (.pdf .docx .xlsx .xlsm .pptx .csv .tsv .tab .html .htm
//     .xhtml .md .markdown .txt .text);
//  2. otherwise the sniffed content type: "%PDF-" in the first 1 KiB; a zip
//     with word/document.xml, xl/workbook.xml or ppt/presentation.xml;
//     "<!doctype html", "<html", "<head" or "<body"
//     at the start; a UTF-16 BOM or NUL-free valid UTF-8 as text/plain;
//  3. otherwise the declared type (e.g. "image/png", or the type of a known
//     unsupported extension), "application/zip" for other zip archives, or
//     "application/octet-stream".
// A declared supported type wins over the content, so a corrupt file named
// .pdf is reported as a corrupt PDF rather than as an unknown format; the
// exception is a file declared DOCX, XLSX or PPTX whose content is a PDF or
// a different one of those three, which is parsed as what it is.
[[nodiscard]] std::string DetectMimeType(absl::string_view bytes,
                                         absl::string_view filename_or_mime);

}  // namespace tessera::parse

#endif  // TESSERA_CONNECTORS_PARSE_DOCUMENT_PARSER_H_
