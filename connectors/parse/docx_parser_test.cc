#include "connectors/parse/docx_parser.h"

#include <random>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "connectors/parse/test_util.h"
#include "connectors/parse/zip_archive.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::parse {
namespace {

using ::testing::AllOf;
using testing::BuildDocx;
using testing::BuildZip;
using testing::DocxParagraph;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

MATCHER_P2(Section, heading, text, "") {
  return ::testing::ExplainMatchResult(heading, arg.heading, result_listener) &&
         ::testing::ExplainMatchResult(text, arg.text, result_listener);
}

std::string Fixture(absl::string_view name) {
  absl::StatusOr<std::string> data = testing::ReadTestData(name);
  EXPECT_TRUE(data.ok()) << data.status();
  return data.ok() ? *std::move(data) : "";
}

ParsedDocument MustParse(absl::string_view bytes, const ParseOptions& options = {}) {
  absl::StatusOr<ParsedDocument> doc = ParseDocx(bytes, options);
  EXPECT_TRUE(doc.ok()) << doc.status();
  return doc.ok() ? *std::move(doc) : ParsedDocument{};
}

TEST(DocxParserTest, HyperlinkFixture) {
  const ParsedDocument doc = MustParse(Fixture("par-hyperlinks.docx"));
  EXPECT_EQ(doc.mime_type,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document");
  EXPECT_THAT(doc.sections,
              ElementsAre(Section("",
                                  "No hyperlinks\n\nOne awesome hyperlink.\n\n"
                                  "Three hyperlinks: the first one here, the second one, "
                                  "and the third.")));
  EXPECT_EQ(doc.title, "No hyperlinks");
  EXPECT_THAT(doc.warnings, IsEmpty());
}

TEST(DocxParserTest, TablesFixture) {
  // A 2x2 table holding only "T2", between paragraphs "P1" and "P3".
  EXPECT_THAT(MustParse(Fixture("blk-inner-content.docx")).sections,
              ElementsAre(Section("", "P1\n\nT2\n\nP3")));
  // Empty tables vanish; a nested table is flattened into its cell.
  EXPECT_THAT(MustParse(Fixture("blk-paras-and-tables.docx")).sections,
              ElementsAre(Section("",
                                  "Lorem ipsum dolor sit amet, consectetur adipiscing elit."
                                  "\n\nText before Table Between Text after\n\n"
                                  "Donec semper facilisis metus finibus malesuada.")));
}

TEST(DocxParserTest, HeadingsOpenSections) {
  const std::string body =
      absl::StrCat(DocxParagraph("Employee Handbook", "Title"), DocxParagraph("Welcome aboard."),
                   DocxParagraph("Leave", "Heading1"), DocxParagraph("25 days per year."),
                   DocxParagraph("Sick leave", "heading2"), DocxParagraph("Tell your manager."),
                   DocxParagraph("Not a heading", "Heading10"));
  const ParsedDocument doc = MustParse(BuildDocx(body));
  EXPECT_EQ(doc.title, "Employee Handbook");
  EXPECT_THAT(doc.sections,
              ElementsAre(Section("Employee Handbook", "Welcome aboard."),
                          Section("Leave", "25 days per year."),
                          Section("Sick leave", "Tell your manager.\n\nNot a heading")));
}

TEST(DocxParserTest, LocalisedHeadingStylesComeFromStylesXml) {
  // German Word: styleId "berschrift1" named "heading 1"; a custom style with
  // an outline level; a paragraph-level outline level.
  const std::string styles =
      "<w:style w:type=\"paragraph\" w:styleId=\"berschrift1\"><w:name w:val=\"heading 1\"/>"
      "</w:style>"
      "<w:style w:type=\"paragraph\" w:styleId=\"Kapitel\"><w:name w:val=\"Kapitel\"/>"
      "<w:pPr><w:outlineLvl w:val=\"1\"/></w:pPr></w:style>"
      "<w:style w:type=\"character\" w:styleId=\"Heading1Char\"><w:name w:val=\"heading 1\"/>"
      "</w:style>";
  const std::string body = absl::StrCat(
      DocxParagraph("Einleitung", "berschrift1"), DocxParagraph("Text eins."),
      DocxParagraph("Zweites Kapitel", "Kapitel"), DocxParagraph("Text zwei."),
      "<w:p><w:pPr><w:outlineLvl w:val=\"2\"/></w:pPr><w:r><w:t>Drittens</w:t></w:r></w:p>",
      DocxParagraph("Text drei."));
  const ParsedDocument doc = MustParse(BuildDocx(body, styles, "Handbuch"));
  EXPECT_EQ(doc.title, "Handbuch");
  EXPECT_THAT(doc.sections, ElementsAre(Section("Einleitung", "Text eins."),
                                        Section("Zweites Kapitel", "Text zwei."),
                                        Section("Drittens", "Text drei.")));
}

TEST(DocxParserTest, TablesBecomeTabSeparatedRows) {
  auto cell = [](absl::string_view text) {
    return absl::StrCat("<w:tc><w:tcPr><w:tcW w:w=\"100\"/></w:tcPr>", DocxParagraph(text),
                        "</w:tc>");
  };
  const std::string body = absl::StrCat(
      DocxParagraph("Team:"), "<w:tbl><w:tblPr/><w:tblGrid/>", "<w:tr>", cell("Name"), cell("Role"),
      "</w:tr>", "<w:tr>", cell("Ann"), cell("Engineer"), "</w:tr>", "<w:tr>", cell(""),
      cell("Intern"), "</w:tr>", "<w:tr>", cell(""), cell(""), "</w:tr>",
      "<w:tr><w:tc><w:p><w:r><w:t>two</w:t><w:br/><w:t>lines</w:t></w:r></w:p>"
      "<w:p><w:r><w:t>paras</w:t></w:r></w:p></w:tc>",
      cell("x"), "</w:tr>", "</w:tbl>", DocxParagraph("After."));
  const ParsedDocument doc = MustParse(BuildDocx(body));
  EXPECT_THAT(doc.sections, ElementsAre(Section("",
                                                "Team:\n\nName\tRole\nAnn\tEngineer\n\tIntern\n"
                                                "two lines paras\tx\n\nAfter.")));
}

TEST(DocxParserTest, RunsTabsBreaksAndSkippedContent) {
  const std::string body =
      "<w:p><w:pPr><w:tabs><w:tab w:val=\"left\" w:pos=\"720\"/></w:tabs></w:pPr>"
      "<w:r><w:rPr><w:b/></w:rPr><w:t xml:space=\"preserve\">Name: </w:t></w:r>"
      "<w:r><w:tab/><w:t>Ann</w:t><w:br/><w:t>Line two</w:t></w:r>"
      "<w:r><w:t xml:space=\"preserve\"> </w:t></w:r>"
      "<w:ins><w:r><w:t>inserted</w:t></w:r></w:ins>"
      "<w:del><w:r><w:delText>deleted</w:delText></w:r></w:del>"
      "<w:r><w:instrText>HYPERLINK \"x\"</w:instrText></w:r>"
      "<w:r><w:t>&amp; &lt;done&gt;</w:t></w:r></w:p>"
      "<w:p><w:r><mc:AlternateContent "
      "xmlns:mc=\"http://schemas.openxmlformats.org/markup-compatibility/2006\">"
      "<mc:Choice Requires=\"wps\"><w:drawing><w:txbxContent>"
      "<w:p><w:r><w:t>boxed</w:t></w:r></w:p></w:txbxContent></w:drawing></mc:Choice>"
      "<mc:Fallback><w:pict><w:txbxContent><w:p><w:r><w:t>boxed again</w:t></w:r></w:p>"
      "</w:txbxContent></w:pict></mc:Fallback></mc:AlternateContent></w:r>"
      "<w:r><w:t>text</w:t></w:r></w:p>";
  const ParsedDocument doc = MustParse(BuildDocx(body));
  EXPECT_THAT(doc.sections,
              ElementsAre(Section("", "Name: \tAnn\nLine two inserted& <done>\n\nboxed text")));
}

TEST(DocxParserTest, InvalidUtf8InTextIsReplaced) {
  const ParsedDocument doc = MustParse(BuildDocx(DocxParagraph("bad \xFF byte")));
  EXPECT_THAT(doc.sections, ElementsAre(Section("", "bad \xEF\xBF\xBD byte")));
  EXPECT_THAT(doc.warnings, ElementsAre(HasSubstr("invalid UTF-8")));
}

TEST(DocxParserTest, EmptyBodyHasNoSections) {
  EXPECT_THAT(MustParse(BuildDocx("")).sections, IsEmpty());
}

TEST(DocxParserTest, ZipWithoutDocumentXmlIsDataLoss) {
  const std::string zip = BuildZip({{"readme.txt", "hello"}, {"data/x.csv", "a,b"}});
  EXPECT_FALSE(LooksLikeDocx(zip));
  absl::StatusOr<ParsedDocument> doc = ParseDocx(zip, ParseOptions{});
  EXPECT_EQ(doc.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(doc.status().message(), HasSubstr("word/document.xml"));
}

TEST(DocxParserTest, MalformedXmlIsDataLoss) {
  const std::string zip =
      BuildZip({{"word/document.xml", "<w:document><w:body><w:p><w:t>unclosed</w:p></w:body>"}});
  EXPECT_TRUE(LooksLikeDocx(zip));
  absl::StatusOr<ParsedDocument> doc = ParseDocx(zip, ParseOptions{});
  EXPECT_EQ(doc.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(doc.status().message(), HasSubstr("not well-formed XML"));

  const std::string no_body = BuildZip({{"word/document.xml", "<w:document/>"}});
  EXPECT_EQ(ParseDocx(no_body, ParseOptions{}).status().code(), absl::StatusCode::kDataLoss);
}

TEST(DocxParserTest, BrokenStylesXmlIsOnlyAWarning) {
  std::string docx = BuildZip({
      {"word/document.xml",
       "<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">"
       "<w:body><w:p><w:r><w:t>fine</w:t></w:r></w:p></w:body></w:document>"},
      {"word/styles.xml", "<w:styles><oops"},
  });
  const ParsedDocument doc = MustParse(docx);
  EXPECT_THAT(doc.sections, ElementsAre(Section("", "fine")));
  EXPECT_THAT(doc.warnings, ElementsAre(HasSubstr("ignored word/styles.xml")));
}

TEST(DocxParserTest, ZipBombIsRefusedBeforeDecompressing) {
  // 80 MiB of one character compresses to ~80 KiB; over the default 64 MiB.
  const std::string huge(80 << 20, 'a');
  const std::string bomb =
      BuildZip({{"word/document.xml", absl::StrCat("<w:document><w:body><w:p><w:r><w:t>", huge,
                                                   "</w:t></w:r></w:p></w:body></w:document>")}});
  ASSERT_LT(bomb.size(), 1u << 20);
  absl::StatusOr<ParsedDocument> doc = ParseDocx(bomb, ParseOptions{});
  EXPECT_EQ(doc.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(doc.status().message(), HasSubstr("zip bomb"));

  // The limit follows max_output_bytes.
  ParseOptions small;
  small.max_output_bytes = 1 << 20;
  const std::string two_mib = BuildDocx(DocxParagraph(std::string(2 << 20, 'b')));
  EXPECT_EQ(ParseDocx(two_mib, small).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(DocxParserTest, CorruptEntryIsDataLoss) {
  // Stored (uncompressed) entry: flip a byte of its data so the CRC fails.
  const std::string text =
      "<w:document><w:body><w:p><w:r><w:t>payload-marker</w:t></w:r>"
      "</w:p></w:body></w:document>";
  std::string zip = BuildZip({{"word/document.xml", text, /*compress=*/false}});
  const size_t at = zip.find("payload-marker");
  ASSERT_NE(at, std::string::npos);
  zip[at] = 'P';
  absl::StatusOr<ParsedDocument> doc = ParseDocx(zip, ParseOptions{});
  EXPECT_EQ(doc.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(doc.status().message(), HasSubstr("CRC"));
}

TEST(DocxParserTest, TruncatedAndRandomInputsAreDataLoss) {
  const std::string docx = Fixture("par-hyperlinks.docx");
  for (size_t cut : {size_t{4}, docx.size() / 2, docx.size() - 10}) {
    EXPECT_EQ(ParseDocx(docx.substr(0, cut), ParseOptions{}).status().code(),
              absl::StatusCode::kDataLoss)
        << "cut at " << cut;
  }
  std::mt19937 rng(7);
  std::string noise = "PK\x03\x04";
  for (int i = 0; i < 4096; ++i) noise.push_back(static_cast<char>(rng()));
  EXPECT_EQ(ParseDocx(noise, ParseOptions{}).status().code(), absl::StatusCode::kDataLoss);
}

TEST(DocxParserTest, OleCompoundFileIsInvalidArgument) {
  const std::string ole = std::string("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", 8) + std::string(512, 0);
  absl::StatusOr<ParsedDocument> doc = ParseDocx(ole, ParseOptions{});
  EXPECT_EQ(doc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(doc.status().message(), HasSubstr("legacy .doc"));
}

TEST(DocxParserTest, DeepNestingIsSafe) {
  std::string body;
  for (int i = 0; i < 200000; ++i) body += "<w:sdt><w:sdtContent>";
  body += DocxParagraph("deep");
  for (int i = 0; i < 200000; ++i) body += "</w:sdtContent></w:sdt>";
  EXPECT_THAT(MustParse(BuildDocx(body)).sections, ElementsAre(Section("", "deep")));
}

TEST(DocxParserTest, DeadlineIsCheckedBetweenParagraphs) {
  testing::TickingClock clock(absl::Seconds(1));
  ParseOptions options;
  options.clock = &clock;
  options.timeout = absl::Seconds(5);
  std::string body;
  for (int i = 0; i < 50; ++i) body += DocxParagraph("paragraph");
  EXPECT_EQ(ParseDocx(BuildDocx(body), options).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(ZipArchiveTest, ReadsEntriesWithinLimits) {
  const std::string zip = BuildZip({{"a.txt", "alpha"}, {"b.txt", std::string(1000, 'b')}});
  absl::StatusOr<std::unique_ptr<ZipArchive>> archive = ZipArchive::Open(zip);
  ASSERT_TRUE(archive.ok()) << archive.status();
  EXPECT_EQ((*archive)->num_entries(), 2);
  EXPECT_TRUE((*archive)->Contains("a.txt"));
  EXPECT_FALSE((*archive)->Contains("A.TXT"));
  EXPECT_EQ(*(*archive)->Read("a.txt", 5), "alpha");
  EXPECT_EQ((*archive)->Read("b.txt", 999).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ((*archive)->Read("c.txt", 999).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ZipArchive::Open("not a zip").status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace tessera::parse
