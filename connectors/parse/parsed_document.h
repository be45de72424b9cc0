// Parsed-document types shared by every format parser in connectors/parse/.
//
// A parser turns the bytes of one file (PDF, DOCX, XLSX, PPTX, HTML, CSV/TSV,
// Markdown, plain text)
// into a ParsedDocument: a title plus an ordered list of sections, each with an
// optional heading, its UTF-8 text, and (for paginated formats) a page number.
// Connectors attach source metadata and ACLs; retrieval chunks the sections.
//
// Most callers want document_parser.h, which picks the parser for a file.
#ifndef TESSERA_CONNECTORS_PARSE_PARSED_DOCUMENT_H_
#define TESSERA_CONNECTORS_PARSE_PARSED_DOCUMENT_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace tessera::parse {

// Canonical MIME types of the supported formats (ParsedDocument::mime_type).
inline constexpr absl::string_view kMimePlainText = "text/plain";
inline constexpr absl::string_view kMimeMarkdown = "text/markdown";
inline constexpr absl::string_view kMimeHtml = "text/html";
inline constexpr absl::string_view kMimePdf = "application/pdf";
inline constexpr absl::string_view kMimeDocx =
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
inline constexpr absl::string_view kMimeXlsx =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
inline constexpr absl::string_view kMimePptx =
    "application/vnd.openxmlformats-officedocument.presentationml.presentation";
inline constexpr absl::string_view kMimeCsv = "text/csv";
inline constexpr absl::string_view kMimeTsv = "text/tab-separated-values";

struct ParsedSection {
  // Heading text that opens the section; empty for text before the first
  // heading and for formats without headings (PDF pages, plain text).
  std::string heading;
  // Valid UTF-8. Paragraphs are separated by a blank line ("\n\n"); table rows
  // are lines with tab-separated cells.
  std::string text;
  // 1-based page number for paginated formats (PDF pages, PPTX slides); 0
  // when unknown.
  int page = 0;
};

struct ParsedDocument {
  // From document metadata when present (<title>, PDF info, DOCX core
  // properties or Title style), else the first heading, else the first line.
  std::string title;
  // Sections in document order. Sections with neither heading nor text are
  // dropped, so empty input gives no sections.
  std::vector<ParsedSection> sections;
  // Canonical MIME type of the parser that produced this document.
  std::string mime_type;
  // Things a user may want to know that did not stop the parse: replaced
  // invalid UTF-8, pages without extractable text, and so on.
  std::vector<std::string> warnings;
};

struct ParseOptions {
  // Inputs larger than this fail with RESOURCE_EXHAUSTED before any parsing.
  size_t max_input_bytes = 256 << 20;
  // Bound on the extracted text (all headings and section text) and on any
  // decompressed zip parts an Office parser reads (DOCX, XLSX, PPTX; one
  // budget per file): RESOURCE_EXHAUSTED.
  size_t max_output_bytes = 64 << 20;
  // Wall time a parse may take; checked between pages, paragraphs and nodes,
  // so a single library call (opening a PDF) can overrun it. Past it, the
  // parse fails with DEADLINE_EXCEEDED.
  absl::Duration timeout = absl::Seconds(60);
  // Source of time for `timeout`. Not owned; must outlive the call. Null means
  // RealClock().
  Clock* clock = nullptr;
  // Character set of text inputs (text, Markdown, CSV/TSV, HTML) as declared
  // by the source, e.g. a Content-Type "charset=" parameter ("shift_jis").
  // Empty: ParseDocument takes it from a "; charset=" parameter of its
  // filename_or_mime argument, HTML from <meta charset>; otherwise UTF-8 or,
  // for invalid UTF-8, windows-1252. A byte-order mark always wins.
  std::string charset;
  // Tables (CSV/TSV rows, rows of each XLSX sheet): rows past this many are
  // not extracted; a warning and a note at the end of the text say so.
  size_t max_table_rows = 100'000;
  // Table cells (CSV/TSV fields, XLSX cell values) longer than this are cut
  // at a character boundary and end with " [...]"; a warning says how many.
  size_t max_cell_bytes = 32 << 10;
};

}  // namespace tessera::parse

#endif  // TESSERA_CONNECTORS_PARSE_PARSED_DOCUMENT_H_
