// PPTX parser (PowerPoint 2007+ .pptx), built on ZipArchive (libzip) and
// pugixml.
//
// Slides are read in presentation order (ppt/presentation.xml <sldIdLst>,
// resolved through ppt/_rels/presentation.xml.rels). Each slide becomes one
// section with `page` = its 1-based number, headed with the text of its title
// placeholder (type title or ctrTitle) or, without one, "Slide N". The text
// of every a:t run is gathered per paragraph (a:p; a:br breaks the line), in
// document order, including grouped shapes; a table becomes one paragraph
// with a line per row and tab-separated cells. Slide-number, date, header
// and footer placeholders and mc:Fallback duplicates are skipped. Speaker
// notes (the slide's notesSlide relationship) follow as one paragraph
// starting "Notes:". Title = docProps/core.xml dc:title, else the first slide
// title.
//
// Limits: every part read shares one decompression budget of
// max_output_bytes, checked against the declared size before inflating. The
// shape tree is walked iteratively: nesting depth cannot overflow the stack.
//
// Errors: DATA_LOSS (not a zip, no presentation part, corrupt entry,
// malformed XML); INVALID_ARGUMENT for an OLE compound file (legacy .ppt or a
// password-protected file); RESOURCE_EXHAUSTED; DEADLINE_EXCEEDED.
// Thread-safe: no shared state.
#ifndef TESSERA_CONNECTORS_PARSE_PPTX_PARSER_H_
#define TESSERA_CONNECTORS_PARSE_PPTX_PARSER_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "connectors/parse/parsed_document.h"

namespace tessera::parse {

[[nodiscard]] absl::StatusOr<ParsedDocument> ParsePptx(absl::string_view bytes,
                                                       const ParseOptions& options);

}  // namespace tessera::parse

#endif  // TESSERA_CONNECTORS_PARSE_PPTX_PARSER_H_
