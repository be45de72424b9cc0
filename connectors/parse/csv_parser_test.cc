#include "connectors/parse/csv_parser.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::parse {
namespace {

using ::testing::HasSubstr;

ParsedDocument MustParse(absl::string_view bytes, const ParseOptions& options = {}) {
  absl::StatusOr<ParsedDocument> doc = ParseCsv(bytes, options);
  EXPECT_TRUE(doc.ok()) << doc.status();
  return doc.ok() ? *std::move(doc) : ParsedDocument{};
}

TEST(CsvParserTest, HeaderRowsBecomePairs) {
  const ParsedDocument doc =
      MustParse("Region,Revenue,Owner\r\nEMEA,1200,\"Smith, Jane\"\r\nAPAC,900,Lee\r\n");
  EXPECT_EQ(doc.mime_type, "text/csv");
  ASSERT_EQ(doc.sections.size(), 1u);
  EXPECT_EQ(doc.sections[0].text,
            "Region\tRevenue\tOwner\n\n"
            "Region: EMEA; Revenue: 1200; Owner: Smith, Jane\n"
            "Region: APAC; Revenue: 900; Owner: Lee");
}

TEST(CsvParserTest, QuotesEscapesAndEmbeddedNewlines) {
  const ParsedDocument doc = MustParse("1,\"say \"\"hi\"\"\",\"two\nlines\"\n2,x\n");
  ASSERT_EQ(doc.sections.size(), 1u);
  // First row has numbers: no header; embedded line break becomes a space.
  EXPECT_EQ(doc.sections[0].text, "1\tsay \"hi\"\ttwo lines\n2\tx");
}

TEST(CsvParserTest, RaggedRowsAndEmptyCells) {
  const ParsedDocument doc = MustParse("name,city\nann\nbob,rome,extra\n,paris\n");
  EXPECT_EQ(doc.sections[0].text,
            "name\tcity\n\nname: ann\nname: bob; city: rome; extra\ncity: paris");
}

TEST(CsvParserTest, Tsv) {
  absl::StatusOr<ParsedDocument> doc = ParseTsv("k\tv\na,b\t1\n", {});
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc->mime_type, "text/tab-separated-values");
  EXPECT_EQ(doc->sections[0].text, "k\tv\n\nk: a,b; v: 1");
}

TEST(CsvParserTest, Windows1252AndBom) {
  EXPECT_EQ(MustParse("caf\xE9,1\n").sections[0].text, "caf\xC3\xA9\t1");
  EXPECT_EQ(MustParse("\xEF\xBB\xBFx,1\n").sections[0].text, "x\t1");
}

TEST(CsvParserTest, RowCapAddsNote) {
  ParseOptions options;
  options.max_table_rows = 2;
  const ParsedDocument doc = MustParse("1\n2\n3\n4\n5\n", options);
  EXPECT_EQ(doc.sections[0].text,
            "1\n2\n\n[CSV truncated: only the first 2 rows were extracted; 3 more were left out]");
  ASSERT_EQ(doc.warnings.size(), 1u);
}

TEST(CsvParserTest, HugeFieldIsCut) {
  ParseOptions options;
  options.max_cell_bytes = 10;
  const ParsedDocument doc =
      MustParse("1,\"" + std::string(1000, 'x') + "\"\n2," + std::string(20, 'y'), options);
  EXPECT_EQ(doc.sections[0].text, "1\txxxxxxxxxx [...]\n2\tyyyyyyyyyy [...]");
  ASSERT_EQ(doc.warnings.size(), 1u);
  EXPECT_THAT(doc.warnings[0], HasSubstr("2 cells"));
}

TEST(CsvParserTest, UnterminatedQuoteWarns) {
  const ParsedDocument doc = MustParse("a,\"open\nrest");
  EXPECT_EQ(doc.sections[0].text, "a\topen rest");
  EXPECT_THAT(doc.warnings[0], HasSubstr("unterminated"));
}

TEST(CsvParserTest, Limits) {
  ParseOptions options;
  options.max_output_bytes = 100;
  EXPECT_EQ(ParseCsv(std::string(1000, 'a') + "\n", options).status().code(),
            absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace tessera::parse
