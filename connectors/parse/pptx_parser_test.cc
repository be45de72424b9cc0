#include "connectors/parse/pptx_parser.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "connectors/parse/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::parse {
namespace {

constexpr absl::string_view kNs =
    "xmlns:a=\"http://schemas.openxmlformats.org/drawingml/2006/main\" "
    "xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\" "
    "xmlns:p=\"http://schemas.openxmlformats.org/presentationml/2006/main\"";
constexpr absl::string_view kRel =
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
constexpr absl::string_view kRelsNs =
    "xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"";

// A shape with optional placeholder type and one a:p per paragraph.
std::string Shape(absl::string_view ph_type, const std::vector<std::string>& paragraphs) {
  std::string body;
  for (const std::string& p : paragraphs) {
    absl::StrAppend(&body, "<a:p><a:r><a:rPr lang=\"en\"/><a:t>", p, "</a:t></a:r></a:p>");
  }
  const std::string ph = ph_type.empty() ? "" : absl::StrCat("<p:ph type=\"", ph_type, "\"/>");
  return absl::StrCat("<p:sp><p:nvSpPr><p:cNvPr id=\"2\" name=\"x\"/><p:cNvSpPr/><p:nvPr>", ph,
                      "</p:nvPr></p:nvSpPr><p:spPr/><p:txBody><a:bodyPr/>", body,
                      "</p:txBody></p:sp>");
}

std::string SlideXml(absl::string_view shapes) {
  return absl::StrCat("<p:sld ", kNs, "><p:cSld><p:spTree>", shapes,
                      "</p:spTree></p:cSld></p:sld>");
}

struct Slide {
  std::string xml;
  std::string notes_xml;  // empty: no notes
};

// Slides are listed in `slides` order but stored under reversed part names.
std::string BuildPptx(const std::vector<Slide>& slides) {
  std::string ids, rels;
  std::vector<testing::ZipEntry> entries;
  for (size_t i = 0; i < slides.size(); ++i) {
    const size_t n = slides.size() - i;
    absl::StrAppend(&ids, "<p:sldId id=\"", 256 + i, "\" r:id=\"rId", i + 7, "\"/>");
    absl::StrAppend(&rels, "<Relationship Id=\"rId", i + 7, "\" Type=\"", kRel,
                    "/slide\" Target=\"slides/slide", n, ".xml\"/>");
    entries.push_back({absl::StrCat("ppt/slides/slide", n, ".xml"), slides[i].xml});
    if (!slides[i].notes_xml.empty()) {
      entries.push_back({absl::StrCat("ppt/slides/_rels/slide", n, ".xml.rels"),
                         absl::StrCat("<Relationships ", kRelsNs, "><Relationship Id=\"rId2\" "
                                      "Type=\"", kRel, "/notesSlide\" Target=\"../notesSlides/"
                                      "notesSlide", n, ".xml\"/></Relationships>")});
      entries.push_back(
          {absl::StrCat("ppt/notesSlides/notesSlide", n, ".xml"), slides[i].notes_xml});
    }
  }
  entries.push_back({"ppt/presentation.xml",
                     absl::StrCat("<p:presentation ", kNs, "><p:sldIdLst>", ids,
                                  "</p:sldIdLst></p:presentation>")});
  entries.push_back({"ppt/_rels/presentation.xml.rels",
                     absl::StrCat("<Relationships ", kRelsNs, ">", rels, "</Relationships>")});
  return testing::BuildZip(entries);
}

ParsedDocument MustParse(absl::string_view bytes) {
  absl::StatusOr<ParsedDocument> doc = ParsePptx(bytes, {});
  EXPECT_TRUE(doc.ok()) << doc.status();
  return doc.ok() ? *std::move(doc) : ParsedDocument{};
}

TEST(PptxParserTest, SlidesInOrderWithTitlesAndNotes) {
  const std::string notes = absl::StrCat(
      "<p:notes ", kNs, "><p:cSld><p:spTree>", Shape("sldImg", {}),
      Shape("body", {"Mention the EMEA numbers", "and thank the team"}), Shape("sldNum", {"1"}),
      "</p:spTree></p:cSld></p:notes>");
  const std::string pptx = BuildPptx({
      {SlideXml(Shape("ctrTitle", {"Quarterly review"}) + Shape("subTitle", {"Q3 2026"})), notes},
      {SlideXml(Shape("", {"First point", "Second point"}) + Shape("sldNum", {"2"})), ""},
      {SlideXml(Shape("title", {"Results"}) +
                "<p:grpSp>" + Shape("body", {"grouped"}) + "</p:grpSp>" +
                "<p:graphicFrame><a:graphic><a:graphicData><a:tbl><a:tr><a:tc><a:txBody><a:p>"
                "<a:r><a:t>Region</a:t></a:r></a:p></a:txBody></a:tc><a:tc><a:txBody><a:p><a:r>"
                "<a:t>EMEA</a:t></a:r></a:p></a:txBody></a:tc></a:tr></a:tbl></a:graphicData>"
                "</a:graphic></p:graphicFrame>"),
       ""},
  });
  const ParsedDocument doc = MustParse(pptx);
  EXPECT_EQ(doc.mime_type,
            "application/vnd.openxmlformats-officedocument.presentationml.presentation");
  EXPECT_EQ(doc.title, "Quarterly review");
  ASSERT_EQ(doc.sections.size(), 3u);
  EXPECT_EQ(doc.sections[0].heading, "Quarterly review");
  EXPECT_EQ(doc.sections[0].page, 1);
  EXPECT_EQ(doc.sections[0].text,
            "Q3 2026\n\nNotes: Mention the EMEA numbers\nand thank the team");
  EXPECT_EQ(doc.sections[1].heading, "Slide 2");
  EXPECT_EQ(doc.sections[1].page, 2);
  EXPECT_EQ(doc.sections[1].text, "First point\n\nSecond point");
  EXPECT_EQ(doc.sections[2].heading, "Results");
  EXPECT_EQ(doc.sections[2].text, "grouped\n\nRegion\tEMEA");
}

TEST(PptxParserTest, LineBreaksAndRuns) {
  const std::string slide = SlideXml(
      "<p:sp><p:txBody><a:p><a:r><a:t>one </a:t></a:r><a:r><a:t>run</a:t></a:r><a:br/>"
      "<a:r><a:t>next line</a:t></a:r></a:p></p:txBody></p:sp>");
  EXPECT_EQ(MustParse(BuildPptx({{slide, ""}})).sections[0].text, "one run\nnext line");
}

TEST(PptxParserTest, DeeplyNestedShapesDoNotOverflowTheStack) {
  std::string nested;
  constexpr int kDepth = 200'000;
  for (int i = 0; i < kDepth; ++i) nested.append("<p:grpSp>");
  nested.append(Shape("", {"deep"}));
  for (int i = 0; i < kDepth; ++i) nested.append("</p:grpSp>");
  const ParsedDocument doc = MustParse(BuildPptx({{SlideXml(nested), ""}}));
  ASSERT_EQ(doc.sections.size(), 1u);
  EXPECT_EQ(doc.sections[0].text, "deep");
}

TEST(PptxParserTest, Errors) {
  EXPECT_EQ(ParsePptx("plain text", {}).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParsePptx(testing::BuildZip({{"a.txt", "x"}}), {}).status().code(),
            absl::StatusCode::kDataLoss);
  const std::string bad = BuildPptx({{"<p:sld><unclosed", ""}});
  EXPECT_EQ(ParsePptx(bad, {}).status().code(), absl::StatusCode::kDataLoss);
  ParseOptions small;
  small.max_output_bytes = 1000;
  const std::string big = BuildPptx({{SlideXml(Shape("", {std::string(5000, 'x')})), ""}});
  EXPECT_EQ(ParsePptx(big, small).status().code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace tessera::parse
