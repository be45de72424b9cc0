#include "connectors/parse/pdf_parser.h"

#include <random>
#include <string>

#include "absl/status/status.h"
#include "connectors/parse/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::parse {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

std::string Fixture(absl::string_view name) {
  absl::StatusOr<std::string> data = testing::ReadTestData(name);
  EXPECT_TRUE(data.ok()) << data.status();
  return data.ok() ? *std::move(data) : "";
}

// Parses and checks that poppler printed nothing to stderr.
absl::StatusOr<ParsedDocument> QuietParse(absl::string_view bytes,
                                          const ParseOptions& options = {}) {
  ::testing::internal::CaptureStderr();
  absl::StatusOr<ParsedDocument> doc = ParsePdf(bytes, options);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  return doc;
}

TEST(PdfParserTest, LibreOfficeFixture) {
  absl::StatusOr<ParsedDocument> doc = QuietParse(Fixture("002-trivial-libre-office-writer.pdf"));
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->mime_type, "application/pdf");
  ASSERT_THAT(doc->sections, SizeIs(1));
  EXPECT_EQ(doc->sections[0].page, 1);
  EXPECT_EQ(doc->sections[0].heading, "");
  EXPECT_THAT(doc->sections[0].text,
              AllOf(HasSubstr("Lorem ipsum dolor sit amet, consetetur sadipscing elitr"),
                    HasSubstr("takimata sanctus est Lorem ipsum dolor sit amet.")));
  // No Info title: the first line.
  EXPECT_EQ(doc->title,
            "Lorem ipsum dolor sit amet, consetetur sadipscing elitr, sed diam nonumy eirmod "
            "tempor");
  EXPECT_THAT(doc->warnings, IsEmpty());
}

TEST(PdfParserTest, OtherFixtures) {
  absl::StatusOr<ParsedDocument> link = QuietParse(Fixture("libre-office-link.pdf"));
  ASSERT_TRUE(link.ok()) << link.status();
  ASSERT_THAT(link->sections, SizeIs(1));
  EXPECT_THAT(link->sections[0].text, HasSubstr("This is a link to an awesome blog."));

  absl::StatusOr<ParsedDocument> pdfkit = QuietParse(Fixture("pdfkit.pdf"));
  ASSERT_TRUE(pdfkit.ok()) << pdfkit.status();
  ASSERT_THAT(pdfkit->sections, SizeIs(1));
  EXPECT_THAT(pdfkit->sections[0].text, AllOf(HasSubstr("Foo: bar"), HasSubstr("ABC: DEF")));
  EXPECT_EQ(pdfkit->title, "Header");
}

TEST(PdfParserTest, OneSectionPerPageWithPageNumbers) {
  absl::StatusOr<ParsedDocument> doc = QuietParse(
      testing::BuildPdf({"Alpha on page one", "", "Charlie on page three"}, "Quarterly Review"));
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->title, "Quarterly Review");
  ASSERT_THAT(doc->sections, SizeIs(2));
  EXPECT_EQ(doc->sections[0].page, 1);
  EXPECT_THAT(doc->sections[0].text, HasSubstr("Alpha on page one"));
  EXPECT_EQ(doc->sections[1].page, 3);
  EXPECT_THAT(doc->sections[1].text, HasSubstr("Charlie on page three"));
  EXPECT_THAT(doc->warnings, ElementsAre(HasSubstr("1 of 3 pages have no extractable text")));
}

TEST(PdfParserTest, EncryptedPdfIsInvalidArgument) {
  absl::StatusOr<ParsedDocument> doc = QuietParse(testing::BuildPdf({"secret"}, "", true));
  EXPECT_EQ(doc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(doc.status().message(), HasSubstr("encrypted"));
}

TEST(PdfParserTest, TruncatedPdfIsDataLoss) {
  const std::string pdf = Fixture("002-trivial-libre-office-writer.pdf");
  for (size_t cut : {size_t{10}, pdf.size() / 2, pdf.size() - 1000}) {
    absl::StatusOr<ParsedDocument> doc = QuietParse(pdf.substr(0, cut));
    EXPECT_EQ(doc.status().code(), absl::StatusCode::kDataLoss) << "cut at " << cut;
    EXPECT_THAT(doc.status().message(), HasSubstr("poppler:")) << "cut at " << cut;
  }
}

TEST(PdfParserTest, PdfMissingOnlyItsTrailerIsRecoveredWithWarning) {
  // Poppler rebuilds the cross-reference table when just the end is lost.
  const std::string pdf = Fixture("002-trivial-libre-office-writer.pdf");
  absl::StatusOr<ParsedDocument> doc = QuietParse(pdf.substr(0, pdf.size() - 30));
  ASSERT_TRUE(doc.ok()) << doc.status();
  ASSERT_THAT(doc->sections, SizeIs(1));
  EXPECT_THAT(doc->sections[0].text, HasSubstr("Lorem ipsum"));
  EXPECT_THAT(doc->warnings, ElementsAre(HasSubstr("poppler reported problems")));
}

TEST(PdfParserTest, RandomBytesAreDataLoss) {
  std::mt19937 rng(42);
  std::string noise(8192, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  absl::StatusOr<ParsedDocument> doc = QuietParse(noise);
  EXPECT_EQ(doc.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(doc.status().message(), HasSubstr("not a readable PDF"));
  // Even with a PDF header.
  EXPECT_EQ(QuietParse("%PDF-1.7\n" + noise).status().code(), absl::StatusCode::kDataLoss);
}

TEST(PdfParserTest, DeadlineIsCheckedBetweenPages) {
  testing::TickingClock clock(absl::Seconds(1));
  ParseOptions options;
  options.clock = &clock;
  options.timeout = absl::Seconds(3);
  std::vector<std::string> pages(10, "page text");
  EXPECT_EQ(QuietParse(testing::BuildPdf(pages), options).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(PdfParserTest, LimitsAreEnforced) {
  const std::string pdf = testing::BuildPdf({"0123456789", "0123456789", "0123456789"});
  ParseOptions options;
  options.max_output_bytes = 25;
  EXPECT_EQ(QuietParse(pdf, options).status().code(), absl::StatusCode::kResourceExhausted);
  options = ParseOptions{};
  options.max_input_bytes = pdf.size() - 1;
  EXPECT_EQ(QuietParse(pdf, options).status().code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace tessera::parse
