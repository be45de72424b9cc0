// TableWriter: turns rows of cells (CSV/TSV records, XLSX sheet rows) into
// section text, enforcing ParseOptions::max_table_rows and max_cell_bytes.
//
// Each row becomes one line: with a header, "Name: value; Name: value" (empty
// cells are left out, cells beyond the header are added as they are);
// without one, the cells joined by tabs. Tabs and line breaks inside a cell
// become spaces. Lines are grouped into paragraphs of up to kRowsPerParagraph
// rows. Rows past the cap are counted, not written; Finish adds a note line
// and a warning saying what was left out, and a warning for cut cells.
//
// Internal to connectors/parse. Not thread-safe.
#ifndef TESSERA_CONNECTORS_PARSE_TABLE_WRITER_H_
#define TESSERA_CONNECTORS_PARSE_TABLE_WRITER_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "connectors/parse/document_builder.h"

namespace tessera::parse {

inline constexpr size_t kRowsPerParagraph = 50;
// Appended to a cell cut at max_cell_bytes.
inline constexpr absl::string_view kCutMarker = " [...]";

// Cuts `cell` (valid UTF-8) to at most `max_bytes` at a character boundary
// and appends kCutMarker; returns whether it was cut.
bool CapCell(std::string& cell, size_t max_bytes);

class TableWriter {
 public:
  // `what` names the table in notes and warnings ("CSV", "sheet 'Q3'").
  TableWriter(DocumentBuilder& builder, std::string what);

  // Rows are written as "header: value" pairs from now on.
  void SetHeader(std::vector<std::string> header) { header_ = std::move(header); }

  // True once max_table_rows rows were written; later rows are only counted.
  bool full() const { return rows_ >= builder_.options().max_table_rows; }

  // Writes (or, past the cap, counts) one row. Cells longer than
  // max_cell_bytes are cut here unless the caller already did (and said so
  // with NoteCutCell). Errors: those of DocumentBuilder::AddParagraph.
  [[nodiscard]] absl::Status AddRow(std::vector<std::string> cells);
  // Records a row past the cap without its content.
  void SkipRow() { ++dropped_; }
  // Records a cell the caller cut itself.
  void NoteCutCell() { ++cut_cells_; }

  // Flushes the last paragraph and adds the notes and warnings.
  [[nodiscard]] absl::Status Finish();

 private:
  DocumentBuilder& builder_;
  const std::string what_;
  std::vector<std::string> header_;
  std::string paragraph_;
  size_t rows_in_paragraph_ = 0;
  size_t rows_ = 0;
  size_t dropped_ = 0;
  size_t cut_cells_ = 0;
};

}  // namespace tessera::parse

#endif  // TESSERA_CONNECTORS_PARSE_TABLE_WRITER_H_
