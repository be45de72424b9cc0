#include "connectors/parse/xlsx_parser.h"

#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "common/status.h"
#include "connectors/parse/docx_parser.h"
#include "connectors/parse/document_builder.h"
#include "connectors/parse/ooxml.h"
#include "connectors/parse/table_writer.h"
#include "connectors/parse/zip_archive.h"
#include "pugixml.hpp"

namespace tessera::parse {
namespace {

using ooxml::Attr;
using ooxml::Child;
using ooxml::LocalName;

constexpr absl::string_view kDefaultWorkbook = "xl/workbook.xml";
constexpr int kMaxColumns = 16384;  // Excel's limit (XFD)
constexpr double kMaxSerial = 2958466.0;  // 10000-01-01

template <typename T>
absl::StatusOr<T> WithContext(absl::StatusOr<T> result, absl::string_view context) {
  if (!result.ok()) return Annotate(result.status(), context);
  return result;
}

bool IsElement(const pugi::xml_node& node, absl::string_view name) {
  return node.type() == pugi::node_element && LocalName(node.name()) == name;
}

// Text of a shared string item or inline string: its <t>, or the <t> of each
// rich-text run <r>; phonetic runs <rPh> are skipped.
std::string RichText(const pugi::xml_node& node) {
  std::string text;
  for (pugi::xml_node child = node.first_child(); child; child = child.next_sibling()) {
    if (IsElement(child, "t")) {
      text.append(child.text().get());
    } else if (IsElement(child, "r")) {
      text.append(Child(child, "t").text().get());
    }
  }
  return text;
}

// Date/time kind of a number format; nullopt for other formats.
std::optional<ExcelDateKind> KindOfBuiltinFormat(int id) {
  if ((id >= 14 && id <= 17) || (id >= 27 && id <= 31) || (id >= 34 && id <= 36) ||
      (id >= 50 && id <= 58)) {
    return ExcelDateKind::kDate;
  }
  if ((id >= 18 && id <= 21) || id == 32 || id == 33 || id == 45 || id == 47) {
    return ExcelDateKind::kTime;
  }
  if (id == 22) return ExcelDateKind::kDateTime;
  if (id == 46) return ExcelDateKind::kDuration;
  return std::nullopt;
}

std::optional<ExcelDateKind> KindOfFormatCode(absl::string_view code) {
  if (absl::EqualsIgnoreCase(code, "general")) return std::nullopt;
  bool date = false, time = false, month = false, elapsed = false;
  for (size_t i = 0; i < code.size(); ++i) {
    const char c = absl::ascii_tolower(static_cast<unsigned char>(code[i]));
    if (c == ';') break;  // only the first (positive) section
    if (c == '"') {
      const size_t close = code.find('"', i + 1);
      if (close == absl::string_view::npos) break;
      i = close;
    } else if (c == '\\' || c == '_' || c == '*') {
      ++i;
    } else if (c == '[') {
      const size_t close = code.find(']', i + 1);
      if (close == absl::string_view::npos) break;
      const std::string inner = absl::AsciiStrToLower(code.substr(i + 1, close - i - 1));
      if (!inner.empty() && inner.find_first_not_of("hms") == std::string::npos) {
        elapsed = time = true;
      }
      i = close;
    } else if (c == 'd' || c == 'y') {
      date = true;
    } else if (c == 'h' || c == 's') {
      time = true;
    } else if (c == 'm') {
      month = true;
    }
  }
  if (date) return time ? ExcelDateKind::kDateTime : ExcelDateKind::kDate;
  if (time) return elapsed ? ExcelDateKind::kDuration : ExcelDateKind::kTime;
  if (month) return ExcelDateKind::kDate;
  return std::nullopt;
}

// Cell style index -> date kind, from xl/styles.xml.
using DateStyles = absl::flat_hash_map<int, ExcelDateKind>;

DateStyles ReadDateStyles(const pugi::xml_node& root) {
  absl::flat_hash_map<int, std::string> custom;
  for (pugi::xml_node fmt : Child(root, "numFmts").children()) {
    int id;
    if (IsElement(fmt, "numFmt") && absl::SimpleAtoi(Attr(fmt, "numFmtId"), &id)) {
      custom[id] = std::string(Attr(fmt, "formatCode"));
    }
  }
  DateStyles styles;
  int index = 0;
  for (pugi::xml_node xf : Child(root, "cellXfs").children()) {
    if (!IsElement(xf, "xf")) continue;
    int id;
    if (absl::SimpleAtoi(Attr(xf, "numFmtId"), &id)) {
      std::optional<ExcelDateKind> kind;
      if (auto it = custom.find(id); it != custom.end()) {
        kind = KindOfFormatCode(it->second);
      } else {
        kind = KindOfBuiltinFormat(id);
      }
      if (kind.has_value()) styles[index] = *kind;
    }
    ++index;
  }
  return styles;
}

// "B12" -> 2 (1-based column); 0 if malformed or past kMaxColumns.
int ColumnOf(absl::string_view ref) {
  int column = 0;
  for (char c : ref) {
    if (!absl::ascii_isalpha(static_cast<unsigned char>(c))) break;
    column = column * 26 + (absl::ascii_toupper(static_cast<unsigned char>(c)) - 'A' + 1);
    if (column > kMaxColumns) return 0;
  }
  return column;
}

// "72.0" -> "72", "1E3" -> "1000"; other numbers as written.
std::string FormatNumber(absl::string_view raw) {
  raw = absl::StripAsciiWhitespace(raw);
  double value;
  if (!absl::SimpleAtod(raw, &value) || !std::isfinite(value)) return std::string(raw);
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  return std::string(raw);
}

struct Workbook {
  std::vector<std::string> shared_strings;
  DateStyles date_styles;
  bool date1904 = false;
};

// Writes the rows of one worksheet.
absl::Status ReadSheet(const pugi::xml_node& root, const Workbook& book, DocumentBuilder& builder,
                       TableWriter& writer, size_t& formulas_without_value) {
  size_t cells_seen = 0;
  const pugi::xml_node sheet_data = Child(root, "sheetData");
  for (pugi::xml_node row = sheet_data.first_child(); row; row = row.next_sibling()) {
    if (!IsElement(row, "row")) continue;
    if (writer.full()) {
      writer.SkipRow();
      continue;
    }
    std::vector<std::string> cells;
    for (pugi::xml_node c = row.first_child(); c; c = c.next_sibling()) {
      if (!IsElement(c, "c")) continue;
      if (++cells_seen % 1024 == 0) RETURN_IF_ERROR(builder.CheckDeadline());
      const absl::string_view type = Attr(c, "t");
      const pugi::xml_node v = Child(c, "v");
      const absl::string_view raw = v.text().get();
      std::string value;
      if (type == "s") {
        size_t index;
        if (absl::SimpleAtoi(raw, &index) && index < book.shared_strings.size()) {
          value = book.shared_strings[index];
        }
      } else if (type == "inlineStr") {
        value = RichText(Child(c, "is"));
      } else if (type == "b") {
        value = raw == "1" ? "TRUE" : raw == "0" ? "FALSE" : std::string(raw);
      } else if (type == "str" || type == "e" || type == "d") {
        value = std::string(raw);
      } else if (!raw.empty()) {  // "n" or no type: a number
        value = FormatNumber(raw);
        int style;
        double serial;
        if (absl::SimpleAtoi(Attr(c, "s"), &style) && absl::SimpleAtod(raw, &serial)) {
          if (auto it = book.date_styles.find(style); it != book.date_styles.end()) {
            std::string date = FormatExcelSerial(serial, it->second, book.date1904);
            if (!date.empty()) value = std::move(date);
          }
        }
      }
      if (!v && Child(c, "f")) ++formulas_without_value;
      const int column = ColumnOf(Attr(c, "r"));
      if (column > static_cast<int>(cells.size())) cells.resize(column - 1);
      cells.push_back(std::move(value));
    }
    RETURN_IF_ERROR(writer.AddRow(std::move(cells)));
  }
  return absl::OkStatus();
}

}  // namespace

std::string FormatExcelSerial(double serial, ExcelDateKind kind, bool date1904) {
  if (!std::isfinite(serial) || serial < 0 || serial >= kMaxSerial) return "";
  if (kind == ExcelDateKind::kDuration) {
    const int64_t total = std::llround(serial * 86400);
    return absl::StrFormat("%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60);
  }
  int64_t days = static_cast<int64_t>(std::floor(serial));
  int64_t seconds = std::llround((serial - static_cast<double>(days)) * 86400);
  if (seconds >= 86400) {
    ++days;
    seconds -= 86400;
  }
  const std::string time =
      absl::StrFormat("%02d:%02d:%02d", seconds / 3600, seconds / 60 % 60, seconds % 60);
  if (kind == ExcelDateKind::kTime) return time;
  std::string date;
  if (date1904) {
    date = absl::FormatCivilTime(absl::CivilDay(1904, 1, 1) + days);
  } else if (days == 60) {
    date = "1900-02-29";  // Lotus 1-2-3's leap-year bug, kept by Excel
  } else if (days < 60) {
    date = absl::FormatCivilTime(absl::CivilDay(1899, 12, 31) + days);
  } else {
    date = absl::FormatCivilTime(absl::CivilDay(1899, 12, 30) + days);
  }
  return kind == ExcelDateKind::kDateTime ? absl::StrCat(date, " ", time) : date;
}

absl::StatusOr<ParsedDocument> ParseXlsx(absl::string_view bytes, const ParseOptions& options) {
  DocumentBuilder builder(options, kMimeXlsx);
  RETURN_IF_ERROR(CheckInputSize(bytes.size(), options));
  if (IsOleCompoundFile(bytes)) {
    return absl::InvalidArgumentError(
        "file is an OLE compound document (a legacy .xls, or an Office file protected with a "
        "password), not an XLSX; only unencrypted .xlsx is supported");
  }
  absl::StatusOr<std::unique_ptr<ZipArchive>> opened = ZipArchive::Open(bytes);
  if (!opened.ok()) return Annotate(opened.status(), "not a valid XLSX");
  const ZipArchive& zip = **opened;
  size_t budget = options.max_output_bytes;  // shared by every part read
  const std::string workbook_part = ooxml::MainPart(zip, kDefaultWorkbook, &budget);
  if (!zip.Contains(workbook_part)) {
    return absl::DataLossError(
        absl::StrCat("not a valid XLSX: the zip archive has no ", workbook_part));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<ooxml::XmlPart> workbook_xml,
                   WithContext(ooxml::ReadXmlPart(zip, workbook_part, &budget), "XLSX"));
  ASSIGN_OR_RETURN(ooxml::Relationships rels,
                   WithContext(ooxml::ReadRelationships(zip, workbook_part, &budget), "XLSX"));
  builder.SetTitle(ooxml::CoreTitle(zip, &budget));

  Workbook book;
  const pugi::xml_node workbook = workbook_xml->root();
  const absl::string_view date1904 = Attr(Child(workbook, "workbookPr"), "date1904");
  book.date1904 = date1904 == "1" || date1904 == "true";

  std::string strings_part = "xl/sharedStrings.xml";
  std::string styles_part = "xl/styles.xml";
  for (const auto& [id, type] : rels.type) {
    if (absl::EndsWith(type, "/sharedStrings")) strings_part = rels.target[id];
    if (absl::EndsWith(type, "/styles")) styles_part = rels.target[id];
  }
  if (zip.Contains(strings_part)) {
    ASSIGN_OR_RETURN(std::unique_ptr<ooxml::XmlPart> strings,
                     WithContext(ooxml::ReadXmlPart(zip, strings_part, &budget), "XLSX"));
    for (pugi::xml_node si = strings->root().first_child(); si; si = si.next_sibling()) {
      if (IsElement(si, "si")) book.shared_strings.push_back(RichText(si));
    }
  }
  if (zip.Contains(styles_part)) {
    absl::StatusOr<std::unique_ptr<ooxml::XmlPart>> styles =
        ooxml::ReadXmlPart(zip, styles_part, &budget);
    if (styles.ok()) {
      book.date_styles = ReadDateStyles((*styles)->root());
    } else if (absl::IsResourceExhausted(styles.status())) {
      return Annotate(styles.status(), "XLSX");
    } else {
      builder.AddWarning(absl::StrCat("ignored ", styles_part, " (dates are shown as numbers): ",
                                      styles.status().message()));
    }
  }
  RETURN_IF_ERROR(builder.CheckDeadline());

  size_t formulas_without_value = 0;
  for (pugi::xml_node sheet : Child(workbook, "sheets").children()) {
    if (!IsElement(sheet, "sheet")) continue;
    const std::string name(Attr(sheet, "name"));
    const auto target = rels.target.find(std::string(ooxml::RelId(sheet)));
    if (target == rels.target.end() || !zip.Contains(target->second)) {
      builder.AddWarning(absl::StrCat("sheet '", name, "' has no worksheet part; skipped"));
      continue;
    }
    ASSIGN_OR_RETURN(std::unique_ptr<ooxml::XmlPart> sheet_xml,
                     WithContext(ooxml::ReadXmlPart(zip, target->second, &budget),
                                 absl::StrCat("XLSX sheet '", name, "'")));
    RETURN_IF_ERROR(builder.StartSection(name));
    TableWriter writer(builder, absl::StrCat("sheet '", name, "'"));
    RETURN_IF_ERROR(
        ReadSheet(sheet_xml->root(), book, builder, writer, formulas_without_value));
    RETURN_IF_ERROR(writer.Finish());
  }
  if (formulas_without_value > 0) {
    builder.AddWarning(absl::StrCat(formulas_without_value,
                                    " formula cells have no cached value and were left empty"));
  }
  return std::move(builder).Finish();
}

}  // namespace tessera::parse
