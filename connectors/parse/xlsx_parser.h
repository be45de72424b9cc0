// XLSX parser (Excel 2007+ .xlsx), built on ZipArchive (libzip) and pugixml.
//
// Sheets are read in workbook order (xl/workbook.xml <sheets>, resolved
// through xl/_rels/workbook.xml.rels); each becomes one section headed with
// the sheet name, its rows written by TableWriter as tab-separated lines
// (cells placed by their "r" reference, so gaps stay aligned; blank rows are
// skipped). Cell values: shared strings (xl/sharedStrings.xml, rich-text runs
// concatenated, phonetic runs skipped), inline strings, formula string
// results, booleans (TRUE/FALSE), errors (#N/A ...) and numbers, written in
// their shortest form ("72.0" -> "72"). A number whose cell style
// (xl/styles.xml cellXfs) has a date or time format (built-in ids 14-22 and
// 45-47, or a custom format code with d, m, y, h or s outside quotes and
// brackets) is written as an ISO date "2021-01-01", date-time
// "2021-01-01 10:30:00", time "10:30:00" or, for elapsed formats such as
// [h]:mm:ss, a duration "255:10:10". Serial dates follow the workbook's date
// system: 1900 (with Excel's phantom 1900-02-29, serial 60) or 1904
// (workbookPr date1904). Formula cells without a cached value are empty (one
// warning counts them). Charts, comments and drawings are not read.
// Title = docProps/core.xml dc:title, else the first sheet name.
//
// Limits: every part read shares one decompression budget of
// max_output_bytes, checked against the declared size before inflating (a
// zip-bomb sharedStrings.xml is RESOURCE_EXHAUSTED); rows per sheet are
// capped by max_table_rows and cells by max_cell_bytes. Traversal is at
// fixed depth (sheetData/row/c); no recursion.
//
// Errors: DATA_LOSS (not a zip, no workbook, corrupt entry, malformed XML);
// INVALID_ARGUMENT for an OLE compound file (legacy .xls or a
// password-protected workbook); RESOURCE_EXHAUSTED; DEADLINE_EXCEEDED.
// Thread-safe: no shared state.
#ifndef TESSERA_CONNECTORS_PARSE_XLSX_PARSER_H_
#define TESSERA_CONNECTORS_PARSE_XLSX_PARSER_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "connectors/parse/parsed_document.h"

namespace tessera::parse {

[[nodiscard]] absl::StatusOr<ParsedDocument> ParseXlsx(absl::string_view bytes,
                                                       const ParseOptions& options);

// Formats an Excel serial date-time. `kind` selects the output:
enum class ExcelDateKind { kDate, kDateTime, kTime, kDuration };
// Returns "" when `serial` is out of range (negative, or after 9999-12-31).
[[nodiscard]] std::string FormatExcelSerial(double serial, ExcelDateKind kind, bool date1904);

}  // namespace tessera::parse

#endif  // TESSERA_CONNECTORS_PARSE_XLSX_PARSER_H_
