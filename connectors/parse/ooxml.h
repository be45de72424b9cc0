// Shared pieces of the Office Open XML parsers (XLSX, PPTX): loading parts of
// a ZipArchive as pugixml documents against one decompression budget, reading
// relationship parts (.rels) and resolving their targets, and the title in
// docProps/core.xml.
//
// Element and attribute names are matched by local name (the part after any
// "prefix:"), so documents written with unusual namespace prefixes still
// parse. Internal to connectors/parse. Thread-compatible.
#ifndef TESSERA_CONNECTORS_PARSE_OOXML_H_
#define TESSERA_CONNECTORS_PARSE_OOXML_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "connectors/parse/zip_archive.h"
#include "pugixml.hpp"

namespace tessera::parse::ooxml {

// "a:t" -> "t", "t" -> "t".
[[nodiscard]] absl::string_view LocalName(absl::string_view qualified);

// The first child element of `node` with local name `name`; empty if none.
[[nodiscard]] pugi::xml_node Child(const pugi::xml_node& node, absl::string_view name);

// The attribute of `node` with local name `name` (e.g. "id" for "r:id").
[[nodiscard]] absl::string_view Attr(const pugi::xml_node& node, absl::string_view name);

// The relationship id of `node`: its "r:id" attribute (any prefix), not a
// plain "id".
[[nodiscard]] absl::string_view RelId(const pugi::xml_node& node);

// One XML part parsed in place; the buffer lives as long as the document.
struct XmlPart {
  std::string buffer;
  pugi::xml_document doc;
  pugi::xml_node root() const { return doc.document_element(); }
};

// Reads entry `name` (at most `*budget` bytes, which are then charged) and
// parses it. Errors: NOT_FOUND (no entry), RESOURCE_EXHAUSTED (over the
// budget), DATA_LOSS (corrupt entry, malformed XML, no root element).
[[nodiscard]] absl::StatusOr<std::unique_ptr<XmlPart>> ReadXmlPart(const ZipArchive& zip,
                                                                   absl::string_view name,
                                                                   size_t* budget);

// Relationship Id -> resolved part name, and Id -> Type.
struct Relationships {
  absl::flat_hash_map<std::string, std::string> target;
  absl::flat_hash_map<std::string, std::string> type;
};

// The .rels part that belongs to `part`: "xl/workbook.xml" ->
// "xl/_rels/workbook.xml.rels".
[[nodiscard]] std::string RelsPartFor(absl::string_view part);

// Resolves a relationship target relative to the folder of `source_part`
// ("xl/workbook.xml" + "worksheets/sheet1.xml" -> "xl/worksheets/sheet1.xml";
// "/xl/x.xml" -> "xl/x.xml"; ".." segments are applied). External targets
// (with a scheme) resolve to "".
[[nodiscard]] std::string ResolveTarget(absl::string_view source_part, absl::string_view target);

// Reads the relationships of `part`. A missing .rels part gives an empty set.
// Errors as ReadXmlPart, except NOT_FOUND.
[[nodiscard]] absl::StatusOr<Relationships> ReadRelationships(const ZipArchive& zip,
                                                              absl::string_view part,
                                                              size_t* budget);

// The main part named by _rels/.rels (officeDocument relationship), else
// `fallback`.
[[nodiscard]] std::string MainPart(const ZipArchive& zip, absl::string_view fallback,
                                   size_t* budget);

// dc:title of docProps/core.xml; "" if absent or unreadable.
[[nodiscard]] std::string CoreTitle(const ZipArchive& zip, size_t* budget);

}  // namespace tessera::parse::ooxml

#endif  // TESSERA_CONNECTORS_PARSE_OOXML_H_
