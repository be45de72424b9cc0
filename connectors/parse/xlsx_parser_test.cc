#include "connectors/parse/xlsx_parser.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "connectors/parse/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::parse {
namespace {

using ::testing::HasSubstr;

constexpr absl::string_view kMain = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
constexpr absl::string_view kRel =
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships";

struct Sheet {
  std::string name;
  std::string rows;  // inside <sheetData>
};

// A workbook whose sheets are listed in `sheets` order but stored under
// part names in reverse, so order must come from workbook.xml.
std::string BuildXlsx(const std::vector<Sheet>& sheets, absl::string_view shared_strings = "",
                      absl::string_view styles = "", bool date1904 = false) {
  std::string list, rels;
  std::vector<testing::ZipEntry> entries;
  for (size_t i = 0; i < sheets.size(); ++i) {
    const std::string part = absl::StrCat("worksheets/sheet", sheets.size() - i, ".xml");
    absl::StrAppend(&list, "<sheet name=\"", sheets[i].name, "\" sheetId=\"", i + 1,
                    "\" r:id=\"rId", i + 10, "\"/>");
    absl::StrAppend(&rels, "<Relationship Id=\"rId", i + 10, "\" Type=\"", kRel,
                    "/worksheet\" Target=\"", part, "\"/>");
    entries.push_back({absl::StrCat("xl/", part),
                       absl::StrCat("<worksheet xmlns=\"", kMain, "\"><sheetData>", sheets[i].rows,
                                    "</sheetData></worksheet>")});
  }
  entries.push_back(
      {"xl/workbook.xml",
       absl::StrCat("<workbook xmlns=\"", kMain, "\" xmlns:r=\"", kRel, "\"><workbookPr",
                    date1904 ? " date1904=\"1\"" : "", "/><sheets>", list,
                    "</sheets></workbook>")});
  entries.push_back({"xl/_rels/workbook.xml.rels",
                     absl::StrCat("<Relationships xmlns=\"http://schemas.openxmlformats.org/"
                                  "package/2006/relationships\">",
                                  rels, "</Relationships>")});
  if (!shared_strings.empty()) {
    entries.push_back({"xl/sharedStrings.xml",
                       absl::StrCat("<sst xmlns=\"", kMain, "\">", shared_strings, "</sst>")});
  }
  if (!styles.empty()) {
    entries.push_back({"xl/styles.xml",
                       absl::StrCat("<styleSheet xmlns=\"", kMain, "\">", styles, "</styleSheet>")});
  }
  return testing::BuildZip(entries);
}

ParsedDocument MustParse(absl::string_view bytes, const ParseOptions& options = {}) {
  absl::StatusOr<ParsedDocument> doc = ParseXlsx(bytes, options);
  EXPECT_TRUE(doc.ok()) << doc.status();
  return doc.ok() ? *std::move(doc) : ParsedDocument{};
}

TEST(XlsxParserTest, RealFileWithSharedStrings) {
  absl::StatusOr<std::string> data = testing::ReadTestData("temperature.xlsx");
  ASSERT_TRUE(data.ok()) << data.status();
  const ParsedDocument doc = MustParse(*data);
  EXPECT_EQ(doc.mime_type, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
  ASSERT_EQ(doc.sections.size(), 1u);
  EXPECT_EQ(doc.sections[0].heading, "Sheet1");
  EXPECT_EQ(doc.sections[0].text, "label\tvalue\ncelsius\t22.2222\nfahrenheit\t72");
  EXPECT_EQ(doc.title, "Sheet1");
}

TEST(XlsxParserTest, RealFileWithDates) {
  absl::StatusOr<std::string> data = testing::ReadTestData("date.xlsx");
  ASSERT_TRUE(data.ok()) << data.status();
  const ParsedDocument doc = MustParse(*data);
  ASSERT_EQ(doc.sections.size(), 1u);
  // yyyy-mm-dd cells are dates; [hh]:mm:ss is an elapsed time.
  EXPECT_EQ(doc.sections[0].text, "2021-01-01\t15\n2021-01-02\t16\n255:10:10\t17");
}

TEST(XlsxParserTest, CellTypesAndSheetOrder) {
  const std::string xlsx = BuildXlsx(
      {{"Sales",
        "<row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c><c r=\"C1\" t=\"s\"><v>1</v></c></row>"
        "<row r=\"2\"><c r=\"A2\" t=\"inlineStr\"><is><t>inline</t></is></c>"
        "<c r=\"B2\" t=\"b\"><v>1</v></c><c r=\"C2\" t=\"e\"><v>#DIV/0!</v></c>"
        "<c r=\"D2\" t=\"str\"><f>A1&amp;\"x\"</f><v>Regionx</v></c>"
        "<c r=\"E2\"><f>SUM(A1:A2)</f></c><c r=\"F2\"><v>1.5E3</v></c></row>"},
       {"Notes", "<row><c t=\"s\"><v>2</v></c></row>"}},
      "<si><t>Region</t></si><si><r><t>Rich </t></r><r><rPr/><t>text</t></r>"
      "<rPh><t>PHONETIC</t></rPh></si><si><t>second sheet</t></si>");
  const ParsedDocument doc = MustParse(xlsx);
  ASSERT_EQ(doc.sections.size(), 2u);
  EXPECT_EQ(doc.sections[0].heading, "Sales");
  EXPECT_EQ(doc.sections[0].text, "Region\t\tRich text\ninline\tTRUE\t#DIV/0!\tRegionx\t\t1500");
  EXPECT_EQ(doc.sections[1].heading, "Notes");
  EXPECT_EQ(doc.sections[1].text, "second sheet");
  ASSERT_EQ(doc.warnings.size(), 1u);
  EXPECT_THAT(doc.warnings[0], HasSubstr("1 formula cells have no cached value"));
}

TEST(XlsxParserTest, DateStylesAndSystems) {
  const std::string styles =
      "<numFmts><numFmt numFmtId=\"170\" formatCode=\"dd/mm/yyyy\\ hh:mm\"/>"
      "<numFmt numFmtId=\"171\" formatCode=\"0.00&quot;d&quot;\"/></numFmts>"
      "<cellXfs><xf numFmtId=\"0\"/><xf numFmtId=\"14\"/><xf numFmtId=\"170\"/>"
      "<xf numFmtId=\"171\"/><xf numFmtId=\"20\"/></cellXfs>";
  const std::string rows =
      "<row><c s=\"1\"><v>1</v></c><c s=\"1\"><v>59</v></c><c s=\"1\"><v>60</v></c>"
      "<c s=\"1\"><v>61</v></c><c s=\"2\"><v>45292.5</v></c><c s=\"3\"><v>2.5</v></c>"
      "<c s=\"4\"><v>0.75</v></c><c s=\"0\"><v>44197</v></c></row>";
  EXPECT_EQ(MustParse(BuildXlsx({{"S", rows}}, "", styles)).sections[0].text,
            "1900-01-01\t1900-02-28\t1900-02-29\t1900-03-01\t2024-01-01 12:00:00\t2.5\t18:00:00"
            "\t44197");
  EXPECT_EQ(MustParse(BuildXlsx({{"S", "<row><c s=\"1\"><v>0</v></c><c s=\"1\"><v>1461</v></c>"
                                       "</row>"}},
                                "", styles, /*date1904=*/true))
                .sections[0]
                .text,
            "1904-01-01\t1908-01-01");
}

TEST(XlsxParserTest, FormatExcelSerial) {
  EXPECT_EQ(FormatExcelSerial(44197, ExcelDateKind::kDate, false), "2021-01-01");
  EXPECT_EQ(FormatExcelSerial(44197, ExcelDateKind::kDate, true), "2025-01-02");
  EXPECT_EQ(FormatExcelSerial(0.999999999, ExcelDateKind::kDateTime, false),
            "1900-01-01 00:00:00");
  EXPECT_EQ(FormatExcelSerial(-1, ExcelDateKind::kDate, false), "");
  EXPECT_EQ(FormatExcelSerial(1e12, ExcelDateKind::kDate, false), "");
}

TEST(XlsxParserTest, RowCapPerSheet) {
  std::string rows;
  for (int i = 1; i <= 5; ++i) absl::StrAppend(&rows, "<row><c><v>", i, "</v></c></row>");
  ParseOptions options;
  options.max_table_rows = 3;
  const ParsedDocument doc = MustParse(BuildXlsx({{"S", rows}}), options);
  EXPECT_EQ(doc.sections[0].text,
            "1\n2\n3\n\n[sheet 'S' truncated: only the first 3 rows were extracted; 2 more were "
            "left out]");
}

TEST(XlsxParserTest, Errors) {
  EXPECT_EQ(ParseXlsx("not a zip", {}).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParseXlsx(testing::BuildZip({{"a.txt", "x"}}), {}).status().code(),
            absl::StatusCode::kDataLoss);
  const std::string ole = std::string("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", 8) + std::string(512, 0);
  EXPECT_EQ(ParseXlsx(ole, {}).status().code(), absl::StatusCode::kInvalidArgument);
  const std::string xlsx = BuildXlsx({{"S", "<row><c><v>1</v></c></row>"}});
  for (size_t cut : {xlsx.size() / 3, xlsx.size() / 2, xlsx.size() - 10}) {
    EXPECT_EQ(ParseXlsx(xlsx.substr(0, cut), {}).status().code(), absl::StatusCode::kDataLoss)
        << cut;
  }
}

}  // namespace
}  // namespace tessera::parse
