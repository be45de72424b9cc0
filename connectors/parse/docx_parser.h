// DOCX parser (Word 2007+ .docx), built on ZipArchive (libzip) and pugixml.
//
// Reads word/document.xml: paragraphs (w:p) made of runs (w:t text, w:tab as
// a tab, w:br/w:cr as a line break), including those inside hyperlinks,
// content controls, insertions and text boxes; deleted and moved-away text and
// mc:Fallback duplicates are skipped. A paragraph whose style is a heading
// (styleId Heading1..9 or Title, or a style that word/styles.xml names
// "heading N"/"Title" or gives an outline level, as localised Word files do)
// opens a section with that heading. Each top-level table becomes one
// paragraph with a line per row and tab-separated cells (nested tables are
// flattened into their cell). Headers, footers, footnotes and comments are not
// read. Title = docProps/core.xml dc:title, else the first Title paragraph,
// else the first heading, else the first line.
//
// Zip bombs: each part's declared uncompressed size is checked against
// max_output_bytes (and the parts together against the same budget) before it
// is decompressed; only three parts are ever read. Malformed XML is DATA_LOSS.
// Traversal is iterative: nesting depth cannot overflow the stack.
//
// Errors: DATA_LOSS (not a zip, no word/document.xml, corrupt entry, malformed
// XML); INVALID_ARGUMENT for an OLE compound file (legacy .doc, or an Office
// file protected with a password); RESOURCE_EXHAUSTED; DEADLINE_EXCEEDED.
// Thread-safe: no shared state.
#ifndef TESSERA_CONNECTORS_PARSE_DOCX_PARSER_H_
#define TESSERA_CONNECTORS_PARSE_DOCX_PARSER_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "connectors/parse/parsed_document.h"

namespace tessera::parse {

[[nodiscard]] absl::StatusOr<ParsedDocument> ParseDocx(absl::string_view bytes,
                                                       const ParseOptions& options);

// True if `bytes` is a zip archive with a word/document.xml entry. Cheap: reads
// only the zip directory.
[[nodiscard]] bool LooksLikeDocx(absl::string_view bytes);

// True if `bytes` starts with the OLE compound file signature (legacy .doc,
// .xls, .ppt, or an encrypted OOXML file).
[[nodiscard]] bool IsOleCompoundFile(absl::string_view bytes);

}  // namespace tessera::parse

#endif  // TESSERA_CONNECTORS_PARSE_DOCX_PARSER_H_
