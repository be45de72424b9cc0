#include "connectors/parse/document_parser.h"

#include <random>
#include <string>

#include "absl/status/status.h"
#include "connectors/parse/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::parse {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr absl::string_view kDocx =
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

std::string Fixture(absl::string_view name) {
  absl::StatusOr<std::string> data = testing::ReadTestData(name);
  EXPECT_TRUE(data.ok()) << data.status();
  return data.ok() ? *std::move(data) : "";
}

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  out[0] = '\x01';  // never valid text: make sure it has a NUL too
  out[1] = '\0';
  return out;
}

TEST(DetectMimeTypeTest, FromExtensionOrMimeType) {
  EXPECT_EQ(DetectMimeType("", "Report.PDF"), "application/pdf");
  EXPECT_EQ(DetectMimeType("", "/a/b.c/notes.md"), "text/markdown");
  EXPECT_EQ(DetectMimeType("", "docs/readme.markdown"), "text/markdown");
  EXPECT_EQ(DetectMimeType("", "index.htm"), "text/html");
  EXPECT_EQ(DetectMimeType("", "C:\\Users\\ann\\plan.docx"), kDocx);
  EXPECT_EQ(DetectMimeType("", "notes.txt"), "text/plain");
  EXPECT_EQ(DetectMimeType("", "text/html; charset=UTF-8"), "text/html");
  EXPECT_EQ(DetectMimeType("", "Application/PDF"), "application/pdf");
  EXPECT_EQ(DetectMimeType("", std::string(kDocx)), kDocx);
  EXPECT_EQ(DetectMimeType("", "text/x-markdown"), "text/markdown");
}

TEST(DetectMimeTypeTest, SniffsContentWhenNameSaysNothing) {
  const std::string pdf = Fixture("pdfkit.pdf");
  const std::string docx = Fixture("par-hyperlinks.docx");
  EXPECT_EQ(DetectMimeType(pdf, ""), "application/pdf");
  EXPECT_EQ(DetectMimeType(pdf, "application/octet-stream"), "application/pdf");
  EXPECT_EQ(DetectMimeType(docx, "attachment"), kDocx);
  EXPECT_EQ(DetectMimeType(docx, "backup.zip"), kDocx);  // a docx by any other name
  EXPECT_EQ(DetectMimeType("  <!DOCTYPE html><p>x", ""), "text/html");
  EXPECT_EQ(DetectMimeType("\xEF\xBB\xBF<HTML><body>x", "page"), "text/html");
  EXPECT_EQ(DetectMimeType("just some words\n", ""), "text/plain");
  EXPECT_EQ(DetectMimeType("\xFF\xFEh\0i\0", ""), "text/plain");
}

TEST(DetectMimeTypeTest, DeclaredSupportedTypeWinsOverContent) {
  EXPECT_EQ(DetectMimeType("%PDF-1.4 but named .txt", "a.txt"), "text/plain");
  EXPECT_EQ(DetectMimeType(RandomBytes(100, 1), "a.pdf"), "application/pdf");
}

TEST(DetectMimeTypeTest, UnsupportedAndUnknownTypes) {
  const std::string zip = testing::BuildZip({{"a.txt", "a"}});
  EXPECT_EQ(DetectMimeType(zip, ""), "application/zip");
  EXPECT_EQ(DetectMimeType(zip, "sheet.xlsx"),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
  EXPECT_EQ(DetectMimeType(RandomBytes(100, 2), "photo.png"), "image/png");
  EXPECT_EQ(DetectMimeType("text content", "image/svg+xml"), "image/svg+xml");
  EXPECT_EQ(DetectMimeType(RandomBytes(100, 3), ""), "application/octet-stream");
  EXPECT_EQ(DetectMimeType(RandomBytes(100, 4), "file.bin"), "application/octet-stream");
}

TEST(ParseDocumentTest, DispatchesByNameAndContent) {
  absl::StatusOr<ParsedDocument> pdf = ParseDocument(Fixture("pdfkit.pdf"), "scan");
  ASSERT_TRUE(pdf.ok()) << pdf.status();
  EXPECT_EQ(pdf->mime_type, "application/pdf");
  ASSERT_THAT(pdf->sections, SizeIs(1));
  EXPECT_EQ(pdf->sections[0].page, 1);
  EXPECT_THAT(pdf->sections[0].text, HasSubstr("Foo: bar"));

  absl::StatusOr<ParsedDocument> docx = ParseDocument(Fixture("blk-paras-and-tables.docx"), kDocx);
  ASSERT_TRUE(docx.ok()) << docx.status();
  EXPECT_EQ(docx->mime_type, kDocx);
  ASSERT_THAT(docx->sections, SizeIs(1));
  EXPECT_THAT(docx->sections[0].text, HasSubstr("Donec semper facilisis metus"));

  absl::StatusOr<ParsedDocument> html =
      ParseDocument("<html><title>T</title><h1>H</h1><p>body &amp; soul</p>", "");
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_EQ(html->mime_type, "text/html");
  EXPECT_EQ(html->title, "T");
  ASSERT_THAT(html->sections, SizeIs(1));
  EXPECT_EQ(html->sections[0].heading, "H");
  EXPECT_EQ(html->sections[0].text, "body & soul");

  absl::StatusOr<ParsedDocument> md = ParseDocument("# Plan\nShip [it](x).", "plan.md");
  ASSERT_TRUE(md.ok()) << md.status();
  EXPECT_EQ(md->mime_type, "text/markdown");
  ASSERT_THAT(md->sections, SizeIs(1));
  EXPECT_EQ(md->sections[0].heading, "Plan");
  EXPECT_EQ(md->sections[0].text, "Ship it.");

  absl::StatusOr<ParsedDocument> text = ParseDocument("# not markdown", "text/plain");
  ASSERT_TRUE(text.ok()) << text.status();
  ASSERT_THAT(text->sections, SizeIs(1));
  EXPECT_EQ(text->sections[0].heading, "");
  EXPECT_EQ(text->sections[0].text, "# not markdown");
}

TEST(ParseDocumentTest, EmptyInputIsAnEmptyDocument) {
  for (absl::string_view name : {"", "a.pdf", "a.docx", "a.html", "a.md", "a.txt"}) {
    absl::StatusOr<ParsedDocument> doc = ParseDocument("", name);
    ASSERT_TRUE(doc.ok()) << name << ": " << doc.status();
    EXPECT_THAT(doc->sections, IsEmpty()) << name;
    EXPECT_EQ(doc->title, "") << name;
  }
}

TEST(ParseDocumentTest, UnsupportedFormatsAreInvalidArgument) {
  absl::StatusOr<ParsedDocument> png = ParseDocument(RandomBytes(64, 5), "photo.png");
  EXPECT_EQ(png.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(png.status().message(), HasSubstr("image/png"));

  absl::StatusOr<ParsedDocument> zip =
      ParseDocument(testing::BuildZip({{"a.txt", "a"}}), "archive.zip");
  EXPECT_EQ(zip.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(zip.status().message(), HasSubstr("application/zip"));

  absl::StatusOr<ParsedDocument> unknown = ParseDocument(RandomBytes(64, 6), "blob");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("unrecognised"));
}

TEST(ParseDocumentTest, CorruptFilesOfKnownFormatsAreDataLoss) {
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(ParseDocument(RandomBytes(4096, 8), "random.pdf").status().code(),
            absl::StatusCode::kDataLoss);
  const std::string pdf = Fixture("002-trivial-libre-office-writer.pdf");
  EXPECT_EQ(ParseDocument(pdf.substr(0, pdf.size() / 2), "half.pdf").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");

  EXPECT_EQ(ParseDocument(testing::BuildZip({{"a.txt", "a"}}), "fake.docx").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParseDocument(testing::BuildZip({{"word/document.xml", "<w:document><w:body>"}}), "")
                .status()
                .code(),
            absl::StatusCode::kDataLoss);
}

TEST(ParseDocumentTest, InvalidUtf8TextIsWindows1252WithWarning) {
  absl::StatusOr<ParsedDocument> doc = ParseDocument("ok \xC3\x28 then caf\xE9", "a.txt");
  ASSERT_TRUE(doc.ok()) << doc.status();
  ASSERT_THAT(doc->sections, SizeIs(1));
  EXPECT_EQ(doc->sections[0].text, "ok \xC3\x83( then caf\xC3\xA9");
  EXPECT_THAT(doc->warnings, SizeIs(1));
}

TEST(ParseDocumentTest, CharsetParameterOfMimeType) {
  absl::StatusOr<ParsedDocument> doc =
      ParseDocument("k,v\n\x93\xFA,1\n", "text/csv; charset=Shift_JIS");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->mime_type, "text/csv");
  EXPECT_THAT(doc->sections[0].text, HasSubstr("k: \xE6\x97\xA5; v: 1"));
  // UTF-16 with a BOM, no declaration.
  doc = ParseDocument(std::string("\xFF\xFE" "a\0,\0b\0", 8), "x.csv");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->sections[0].text, "a\tb");
}

TEST(ParseDocumentTest, NewFormatsByNameMimeAndContent) {
  const std::string xlsx = Fixture("temperature.xlsx");
  const std::string pptx = testing::BuildZip(
      {{"ppt/presentation.xml", "<p:presentation xmlns:p=\"urn:p\"/>"}});
  const std::string docx = Fixture("par-hyperlinks.docx");
  constexpr absl::string_view kXlsx =
      "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
  constexpr absl::string_view kPptx =
      "application/vnd.openxmlformats-officedocument.presentationml.presentation";
  EXPECT_EQ(DetectMimeType(xlsx, "a.xlsx"), kXlsx);
  EXPECT_EQ(DetectMimeType(xlsx, ""), kXlsx);
  EXPECT_EQ(DetectMimeType(xlsx, "application/octet-stream"), kXlsx);
  EXPECT_EQ(DetectMimeType(pptx, ""), kPptx);
  EXPECT_EQ(DetectMimeType("", "deck.PPTX"), kPptx);
  EXPECT_EQ(DetectMimeType("a,b", "data.csv"), "text/csv");
  EXPECT_EQ(DetectMimeType("a\tb", "data.tsv"), "text/tab-separated-values");
  EXPECT_EQ(DetectMimeType("a,b", "text/csv; charset=utf-8"), "text/csv");
  EXPECT_EQ(DetectMimeType("a\tb", "text/tab-separated-values"), "text/tab-separated-values");
  // Misnamed Office files are parsed as what they are.
  EXPECT_EQ(DetectMimeType(docx, "report.xlsx"),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document");
  EXPECT_EQ(DetectMimeType(testing::BuildPdf({"x"}), "report.xlsx"), "application/pdf");
  absl::StatusOr<ParsedDocument> doc = ParseDocument(xlsx, "temperature.xlsx");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_THAT(doc->sections[0].text, HasSubstr("fahrenheit\t72"));
  doc = ParseDocument(testing::BuildPdf({"hello pdf"}), "sheet.xlsx");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_THAT(doc->sections[0].text, HasSubstr("hello pdf"));
  // Text under an Office name is a clean error.
  EXPECT_EQ(ParseDocument("just text", "sheet.xlsx").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParseDocument("just text", "deck.pptx").status().code(), absl::StatusCode::kDataLoss);
}

TEST(ParseDocumentTest, InputOverLimitIsResourceExhausted) {
  ParseOptions options;
  options.max_input_bytes = 1000;
  for (absl::string_view name : {"a.pdf", "a.docx", "a.txt", "", "a.png"}) {
    absl::StatusOr<ParsedDocument> doc = ParseDocument(std::string(1001, 'x'), name, options);
    EXPECT_EQ(doc.status().code(), absl::StatusCode::kResourceExhausted) << name;
    EXPECT_THAT(doc.status().message(), HasSubstr("max_input_bytes")) << name;
  }
}

TEST(ParseDocumentTest, TimeoutIsDeadlineExceeded) {
  ParseOptions options;
  options.timeout = absl::ZeroDuration();
  for (absl::string_view name : {"a.txt", "a.md", "a.html"}) {
    EXPECT_EQ(ParseDocument("one\n\ntwo", name, options).status().code(),
              absl::StatusCode::kDeadlineExceeded)
        << name;
  }
  EXPECT_EQ(ParseDocument(Fixture("pdfkit.pdf"), "a.pdf", options).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(ParseDocument(Fixture("par-hyperlinks.docx"), "a.docx", options).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace tessera::parse
