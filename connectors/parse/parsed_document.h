// Parsed-document types shared by every format parser in connectors/parse/.
//
// A parser turns the bytes of one file (PDF, DOCX, HTML, Markdown, plain text)
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

struct ParsedSection {
  // Heading text that opens the section; empty for text before the first
  // heading and for formats without headings (PDF pages, plain text).
  std::string heading;
  // Valid UTF-8. Paragraphs are separated by a blank line ("\n\n"); table rows
  // are lines with tab-separated cells.
  std::string text;
  // 1-based page number for paginated formats (PDF); 0 when unknown.
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
  // decompressed part a parser reads (DOCX entries): RESOURCE_EXHAUSTED.
  size_t max_output_bytes = 64 << 20;
  // Wall time a parse may take; checked between pages, paragraphs and nodes,
  // so a single library call (opening a PDF) can overrun it. Past it, the
  // parse fails with DEADLINE_EXCEEDED.
  absl::Duration timeout = absl::Seconds(60);
  // Source of time for `timeout`. Not owned; must outlive the call. Null means
  // RealClock().
  Clock* clock = nullptr;
};

}  // namespace tessera::parse

#endif  // TESSERA_CONNECTORS_PARSE_PARSED_DOCUMENT_H_
