#include "connectors/parse/csv_parser.h"

#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "connectors/parse/charset.h"
#include "connectors/parse/document_builder.h"
#include "connectors/parse/table_writer.h"

namespace tessera::parse {
namespace {

constexpr size_t kMaxHeaderCellBytes = 128;

// Reads RFC 4180 records from decoded text, keeping at most `keep_bytes` of
// each field (the rest is skipped, not copied).
class CsvReader {
 public:
  CsvReader(absl::string_view text, char delimiter, size_t keep_bytes)
      : text_(text), delimiter_(delimiter), keep_bytes_(keep_bytes) {
    stops_[0] = delimiter;
  }

  // Reads the next record into `cells`. False at the end of the input.
  bool Next(std::vector<std::string>& cells) {
    cells.clear();
    if (pos_ >= text_.size()) return false;
    while (true) {
      std::string field;
      if (text_[pos_] == '"') ReadQuoted(field);
      // Unquoted text (or text after a closing quote) up to the field's end.
      const size_t end = text_.find_first_of(absl::string_view(stops_, 3), pos_);
      Keep(field, text_.substr(pos_, end == absl::string_view::npos ? end : end - pos_));
      pos_ = end == absl::string_view::npos ? text_.size() : end;
      cells.push_back(std::move(field));
      if (pos_ >= text_.size()) return true;
      const char c = text_[pos_++];
      if (c == delimiter_) {
        if (pos_ >= text_.size()) {  // trailing delimiter: one more empty field
          cells.emplace_back();
          return true;
        }
        continue;
      }
      if (c == '\r' && pos_ < text_.size() && text_[pos_] == '\n') ++pos_;
      return true;
    }
  }

  bool unterminated_quote() const { return unterminated_quote_; }
  size_t offset() const { return pos_; }

 private:
  void Keep(std::string& field, absl::string_view chunk) const {
    if (field.size() >= keep_bytes_) return;
    chunk = chunk.substr(0, keep_bytes_ - field.size());
    field.append(chunk.data(), chunk.size());
  }

  // At an opening quote: reads up to and past the closing quote.
  void ReadQuoted(std::string& field) {
    ++pos_;
    while (true) {
      const size_t quote = text_.find('"', pos_);
      if (quote == absl::string_view::npos) {
        Keep(field, text_.substr(pos_));
        pos_ = text_.size();
        unterminated_quote_ = true;
        return;
      }
      Keep(field, text_.substr(pos_, quote - pos_));
      if (quote + 1 < text_.size() && text_[quote + 1] == '"') {
        Keep(field, "\"");
        pos_ = quote + 2;
        continue;
      }
      pos_ = quote + 1;
      return;
    }
  }

  const absl::string_view text_;
  const char delimiter_;
  const size_t keep_bytes_;
  char stops_[3] = {',', '\r', '\n'};
  size_t pos_ = 0;
  bool unterminated_quote_ = false;
};

bool LooksLikeHeader(const std::vector<std::string>& row) {
  if (row.size() < 2) return false;
  absl::flat_hash_set<absl::string_view> seen;
  for (const std::string& cell : row) {
    const absl::string_view v = absl::StripAsciiWhitespace(cell);
    double number;
    if (v.empty() || v.size() > kMaxHeaderCellBytes || absl::SimpleAtod(v, &number) ||
        !seen.insert(v).second) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<ParsedDocument> ParseDelimited(absl::string_view bytes, const ParseOptions& options,
                                              absl::string_view mime, char delimiter) {
  DocumentBuilder builder(options, mime);
  RETURN_IF_ERROR(CheckInputSize(bytes.size(), options));
  // Quotes and delimiters are not output: only max_input_bytes bounds the
  // decoded text (at most 3 bytes per input byte); the builder bounds the
  // extracted text.
  ASSIGN_OR_RETURN(DecodedText decoded,
                   DecodeText(bytes, options.charset, std::numeric_limits<size_t>::max()));
  for (std::string& w : decoded.warnings) builder.AddWarning(std::move(w));

  const std::string what = delimiter == '\t' ? "TSV" : "CSV";
  // Keep a few bytes over the cap so TableWriter sees that a field was cut.
  CsvReader reader(decoded.text, delimiter, options.max_cell_bytes + 4);
  TableWriter writer(builder, what);
  std::vector<std::string> row;
  std::vector<std::string> first;
  size_t records = 0;
  while (reader.Next(row)) {
    if (++records % 1024 == 0) RETURN_IF_ERROR(builder.CheckDeadline());
    if (records == 1) {
      first = std::move(row);
      continue;
    }
    if (records == 2) {
      if (LooksLikeHeader(first)) {
        for (std::string& h : first) {
          h = std::string(absl::StripAsciiWhitespace(h));
          if (CapCell(h, options.max_cell_bytes)) writer.NoteCutCell();
        }
        writer.SetHeader(first);
        // The header is written once as the table's first line.
        RETURN_IF_ERROR(builder.AddParagraph(absl::StrJoin(first, "\t")));
      } else {
        RETURN_IF_ERROR(writer.AddRow(std::move(first)));
      }
    }
    if (writer.full()) {
      writer.SkipRow();
    } else {
      RETURN_IF_ERROR(writer.AddRow(std::move(row)));
    }
  }
  if (records == 1) RETURN_IF_ERROR(writer.AddRow(std::move(first)));
  if (reader.unterminated_quote()) {
    builder.AddWarning(absl::StrCat(what, ": unterminated quoted field runs to the end of input"));
  }
  RETURN_IF_ERROR(writer.Finish());
  return std::move(builder).Finish();
}

}  // namespace

absl::StatusOr<ParsedDocument> ParseCsv(absl::string_view bytes, const ParseOptions& options) {
  return ParseDelimited(bytes, options, kMimeCsv, ',');
}

absl::StatusOr<ParsedDocument> ParseTsv(absl::string_view bytes, const ParseOptions& options) {
  return ParseDelimited(bytes, options, kMimeTsv, '\t');
}

}  // namespace tessera::parse
