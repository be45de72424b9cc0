#include "connectors/parse/table_writer.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "connectors/parse/utf8.h"

namespace tessera::parse {
namespace {

// One line: tabs and line breaks become spaces, outer whitespace goes.
std::string Flatten(absl::string_view cell) {
  std::string out(absl::StripAsciiWhitespace(cell));
  for (char& c : out) {
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

}  // namespace

bool CapCell(std::string& cell, size_t max_bytes) {
  if (cell.size() <= max_bytes) return false;
  cell.resize(TruncateUtf8(cell, max_bytes).size());
  cell.append(kCutMarker.data(), kCutMarker.size());
  return true;
}

TableWriter::TableWriter(DocumentBuilder& builder, std::string what)
    : builder_(builder), what_(std::move(what)) {}

absl::Status TableWriter::AddRow(std::vector<std::string> cells) {
  if (full()) {
    ++dropped_;
    return absl::OkStatus();
  }
  std::string line;
  bool any = false;
  for (size_t i = 0; i < cells.size(); ++i) {
    if (CapCell(cells[i], builder_.options().max_cell_bytes)) ++cut_cells_;
    std::string cell = Flatten(cells[i]);
    if (!header_.empty()) {
      if (cell.empty()) continue;
      if (any) line.append("; ");
      if (i < header_.size() && !header_[i].empty()) absl::StrAppend(&line, header_[i], ": ");
      line.append(cell);
      any = true;
    } else {
      if (i > 0) line.push_back('\t');
      line.append(cell);
      any = any || !cell.empty();
    }
  }
  if (!any) return absl::OkStatus();  // blank rows are not counted
  ++rows_;
  if (!paragraph_.empty()) paragraph_.push_back('\n');
  const absl::string_view trimmed = absl::StripTrailingAsciiWhitespace(line);
  paragraph_.append(trimmed.data(), trimmed.size());
  if (++rows_in_paragraph_ >= kRowsPerParagraph) {
    rows_in_paragraph_ = 0;
    return builder_.AddParagraph(std::exchange(paragraph_, {}));
  }
  return absl::OkStatus();
}

absl::Status TableWriter::Finish() {
  if (absl::Status s = builder_.AddParagraph(std::exchange(paragraph_, {})); !s.ok()) return s;
  if (cut_cells_ > 0) {
    builder_.AddWarning(absl::StrCat(what_, ": ", cut_cells_, " cells longer than ",
                                     builder_.options().max_cell_bytes, " bytes were cut"));
  }
  if (dropped_ > 0) {
    const std::string note =
        absl::StrCat("[", what_, " truncated: only the first ", rows_, " rows were extracted; ",
                     dropped_, " more were left out]");
    builder_.AddWarning(note.substr(1, note.size() - 2));
    return builder_.AddParagraph(note);
  }
  return absl::OkStatus();
}

}  // namespace tessera::parse
