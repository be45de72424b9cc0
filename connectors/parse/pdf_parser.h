// PDF parser (application/pdf), the one adapter around poppler-cpp.
//
// One section per page that has text, with `page` set to its 1-based number
// and the page's text in poppler's reading order (lines kept). Title = the
// document info Title, else the first line of text. Pages without text
// (scanned images; there is no OCR) are reported in one warning.
//
// Poppler's diagnostics never reach stderr: the first call installs a quiet
// error handler for the whole process (poppler::set_debug_error_function);
// messages raised during a parse become the error detail or warnings.
// Poppler may throw (std::bad_alloc); nothing escapes this adapter.
//
// Errors: INVALID_ARGUMENT for a password-protected PDF; DATA_LOSS for a
// corrupt, truncated or non-PDF file or one without pages; RESOURCE_EXHAUSTED
// for input/output over the limits; DEADLINE_EXCEEDED (checked between pages;
// opening the file and extracting one page cannot be interrupted).
// Thread-safe: poppler documents are per call.
#ifndef TESSERA_CONNECTORS_PARSE_PDF_PARSER_H_
#define TESSERA_CONNECTORS_PARSE_PDF_PARSER_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "connectors/parse/parsed_document.h"

namespace tessera::parse {

[[nodiscard]] absl::StatusOr<ParsedDocument> ParsePdf(absl::string_view bytes,
                                                      const ParseOptions& options);

}  // namespace tessera::parse

#endif  // TESSERA_CONNECTORS_PARSE_PDF_PARSER_H_
