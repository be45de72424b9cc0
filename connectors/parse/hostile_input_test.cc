// Mutation smoke test: corrupted variants of every fixture and generated file
// go through ParseDocument. Any result is fine except a crash, a sanitizer
// report, or an OK document with invalid UTF-8. (Stderr is not captured here,
// so that a sanitizer report stays visible; pdf_parser_test checks silence.)
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "connectors/parse/document_parser.h"
#include "connectors/parse/test_util.h"
#include "connectors/parse/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::parse {
namespace {

int Iterations() {
  int n = 40;  // per seed file; raise with HOSTILE_ITERATIONS for a long run
  if (const char* env = std::getenv("HOSTILE_ITERATIONS")) (void)absl::SimpleAtoi(env, &n);
  return n;
}

std::string Mutate(std::string data, std::mt19937& rng) {
  const int edits = 1 + static_cast<int>(rng() % 8);
  for (int e = 0; e < edits && !data.empty(); ++e) {
    const size_t at = rng() % data.size();
    switch (rng() % 5) {
      case 0:  // flip a byte
        data[at] = static_cast<char>(rng());
        break;
      case 1:  // truncate
        data.resize(at);
        break;
      case 2:  // delete a range
        data.erase(at, rng() % 64);
        break;
      case 3:  // duplicate a range
        data.insert(at, data.substr(rng() % data.size(), rng() % 256));
        break;
      case 4: {  // interesting bytes
        static constexpr char kBytes[] = "\0\xFF<>[](){}%#\n";
        const std::string interesting(kBytes, sizeof(kBytes) - 1);
        const size_t from = rng() % interesting.size();
        data.insert(at, interesting.substr(from, 1 + rng() % 4));
        break;
      }
    }
  }
  return data;
}

constexpr absl::string_view kXlsxMime =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

// An XLSX with stored (uncompressed) parts, so that mutations reach the XML.
std::string StoredXlsx(const std::string& shared_strings = "<sst><si><t>Region</t></si></sst>",
                       const std::string& sheet_data = "<row><c t=\"s\"><v>0</v></c><c s=\"1\">"
                                                       "<v>44197</v></c><c><f>A1</f></c></row>",
                       bool compress = false) {
  return testing::BuildZip(
      {{"xl/workbook.xml",
        "<workbook xmlns:r=\"urn:r\"><sheets><sheet name=\"S\" r:id=\"rId1\"/></sheets>"
        "</workbook>",
        compress},
       {"xl/_rels/workbook.xml.rels",
        "<Relationships><Relationship Id=\"rId1\" Type=\"t/worksheet\" "
        "Target=\"worksheets/sheet1.xml\"/></Relationships>",
        compress},
       {"xl/sharedStrings.xml", shared_strings, compress},
       {"xl/styles.xml", "<styleSheet><cellXfs><xf numFmtId=\"0\"/><xf numFmtId=\"14\"/>"
                         "</cellXfs></styleSheet>", compress},
       {"xl/worksheets/sheet1.xml", "<worksheet><sheetData>" + sheet_data +
                                        "</sheetData></worksheet>", compress}});
}

std::string StoredPptx(const std::string& slide = "<p:sld xmlns:p=\"urn:p\" xmlns:a=\"urn:a\">"
                                                  "<p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r>"
                                                  "<a:t>Hello</a:t></a:r></a:p></p:txBody></p:sp>"
                                                  "</p:spTree></p:cSld></p:sld>") {
  return testing::BuildZip(
      {{"ppt/presentation.xml",
        "<p:presentation xmlns:p=\"urn:p\" xmlns:r=\"urn:r\"><p:sldIdLst><p:sldId id=\"256\" "
        "r:id=\"rId1\"/></p:sldIdLst></p:presentation>",
        false},
       {"ppt/_rels/presentation.xml.rels",
        "<Relationships><Relationship Id=\"rId1\" Type=\"t/slide\" "
        "Target=\"slides/slide1.xml\"/></Relationships>",
        false},
       {"ppt/slides/slide1.xml", slide, false}});
}

TEST(HostileInputTest, ZipBombSharedStringsIsRefused) {
  // 64 MiB of one repeated byte deflates to about 64 KiB.
  const std::string bomb = StoredXlsx(
      "<sst><si><t>" + std::string(64 << 20, 'A') + "</t></si></sst>", "", /*compress=*/true);
  ASSERT_LT(bomb.size(), 1u << 20);
  ParseOptions options;
  options.max_output_bytes = 8 << 20;
  absl::StatusOr<ParsedDocument> doc = ParseDocument(bomb, "bomb.xlsx", options);
  EXPECT_EQ(doc.status().code(), absl::StatusCode::kResourceExhausted) << doc.status();
  EXPECT_THAT(std::string(doc.status().message()), ::testing::HasSubstr("zip bomb"));
}

TEST(HostileInputTest, DeeplyNestedSlideXml) {
  std::string nested;
  for (int i = 0; i < 300'000; ++i) nested.append("<p:grpSp>");
  nested.append("<p:sp><p:txBody><a:p><a:r><a:t>deep</a:t></a:r></a:p></p:txBody></p:sp>");
  for (int i = 0; i < 300'000; ++i) nested.append("</p:grpSp>");
  absl::StatusOr<ParsedDocument> doc = ParseDocument(
      StoredPptx("<p:sld xmlns:p=\"urn:p\" xmlns:a=\"urn:a\"><p:cSld><p:spTree>" + nested +
                 "</p:spTree></p:cSld></p:sld>"),
      "deep.pptx");
  ASSERT_TRUE(doc.ok()) << doc.status();
  ASSERT_EQ(doc->sections.size(), 1u);
  EXPECT_EQ(doc->sections[0].text, "deep");
}

TEST(HostileInputTest, TruncatedAndMisnamedXlsx) {
  absl::StatusOr<std::string> xlsx = testing::ReadTestData("temperature.xlsx");
  ASSERT_TRUE(xlsx.ok()) << xlsx.status();
  for (size_t cut = 1; cut < xlsx->size(); cut += 97) {
    absl::StatusOr<ParsedDocument> doc = ParseDocument(xlsx->substr(0, cut), "t.xlsx");
    EXPECT_EQ(doc.status().code(), absl::StatusCode::kDataLoss) << cut << " " << doc.status();
  }
  // A PDF named .xlsx is parsed as a PDF; text named .xlsx is a clean error.
  absl::StatusOr<ParsedDocument> pdf = ParseDocument(testing::BuildPdf({"real pdf"}), "x.xlsx");
  ASSERT_TRUE(pdf.ok()) << pdf.status();
  EXPECT_EQ(pdf->mime_type, "application/pdf");
  absl::StatusOr<ParsedDocument> text = ParseDocument("Region,Revenue\nEMEA,1\n", "x.xlsx");
  EXPECT_EQ(text.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(text.status().message()), ::testing::HasSubstr("not a valid XLSX"));
}

TEST(HostileInputTest, CsvWithFiftyMegabyteField) {
  std::string csv = "id,body\n1,\"";
  csv.append(50 << 20, 'x');
  csv.append("\"\n2,short\n");
  ParseOptions options;
  options.max_output_bytes = 1 << 20;
  absl::StatusOr<ParsedDocument> doc = ParseDocument(csv, "big.csv", options);
  ASSERT_TRUE(doc.ok()) << doc.status();
  ASSERT_EQ(doc->sections.size(), 1u);
  EXPECT_LT(doc->sections[0].text.size(), 64u << 10);
  EXPECT_THAT(doc->sections[0].text, ::testing::HasSubstr(" [...]\nid: 2; body: short"));
  EXPECT_THAT(doc->warnings, ::testing::Contains(::testing::HasSubstr("1 cells longer")));
}

TEST(HostileInputTest, FormulaCellsWithoutCachedValues) {
  absl::StatusOr<ParsedDocument> doc =
      ParseDocument(StoredXlsx("<sst><si><t>Total</t></si></sst>",
                               "<row><c t=\"s\"><v>0</v></c><c><f>SUM(B2:B9)</f></c>"
                               "<c t=\"str\"><f>A1</f></c><c t=\"s\"><f>X</f></c></row>"),
                    kXlsxMime);
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->sections[0].text, "Total");
  EXPECT_THAT(doc->warnings,
              ::testing::ElementsAre(::testing::HasSubstr("3 formula cells have no cached")));
}

TEST(HostileInputTest, MutatedInputsNeverCrash) {
  struct Seed {
    std::string name;
    std::string data;
  };
  std::vector<Seed> seeds;
  for (const char* fixture :
       {"002-trivial-libre-office-writer.pdf", "libre-office-link.pdf", "pdfkit.pdf",
        "blk-inner-content.docx", "blk-paras-and-tables.docx", "par-hyperlinks.docx",
        "date.xlsx", "temperature.xlsx"}) {
    absl::StatusOr<std::string> data = testing::ReadTestData(fixture);
    ASSERT_TRUE(data.ok()) << data.status();
    seeds.push_back({fixture, *std::move(data)});
  }
  // Uncompressed parts so that mutations reach the XML parser.
  seeds.push_back({"stored.docx",
                   testing::BuildZip({{"word/document.xml",
                                       "<w:document xmlns:w=\"http://schemas.openxmlformats.org/"
                                       "wordprocessingml/2006/main\"><w:body><w:p><w:pPr><w:pStyle "
                                       "w:val=\"Heading1\"/></w:pPr><w:r><w:t>Head</w:t></w:r></"
                                       "w:p><w:tbl><w:tr><w:tc><w:p><w:r><w:t>cell</w:t><w:tab/>"
                                       "</w:r></w:p></w:tc></w:tr></w:tbl></w:body></w:document>",
                                       /*compress=*/false}})});
  seeds.push_back({"stored.xlsx", StoredXlsx()});
  seeds.push_back({"stored.pptx", StoredPptx()});
  seeds.push_back({"table.csv", "Region,Revenue\r\nEMEA,\"1,200\"\r\n\"multi\nline\",\"q\"\"\"\n"});
  seeds.push_back({"multi.pdf", testing::BuildPdf({"one", "two", "three"}, "Title")});
  seeds.push_back({"page.html",
                   "<!doctype html><html><head><title>T</title><style>x{}</style></head><body>"
                   "<h1>A &amp; B</h1><p>para <b>bold</b><br>line</p><table><tr><td>a</td><td>b"
                   "</td></tr></table><pre> x  y</pre><script>s()</script></body></html>"});
  seeds.push_back({"notes.md",
                   "# Title\n\nText [link](u) ![img](i)\n\n```\ncode\n```\n## Sub ##\nmore\n"
                   "Setext\n===\n[r]: http://x\n"});
  seeds.push_back({"a.txt", "line one\r\nline two\n\n\xEF\xBB\xBFthird caf\xC3\xA9"});

  ParseOptions options;
  options.max_output_bytes = 4 << 20;
  options.timeout = absl::Seconds(5);
  std::mt19937 rng(20240601);
  const int iterations = Iterations();
  int ok = 0;
  for (const Seed& seed : seeds) {
    for (int i = 0; i < iterations; ++i) {
      const std::string input = Mutate(seed.data, rng);
      // Both with the declared name and sniffed.
      for (absl::string_view name : {absl::string_view(seed.name), absl::string_view()}) {
        absl::StatusOr<ParsedDocument> doc = ParseDocument(input, name, options);
        if (!doc.ok()) continue;
        ++ok;
        EXPECT_TRUE(IsValidUtf8(doc->title)) << seed.name << " #" << i;
        for (const ParsedSection& s : doc->sections) {
          EXPECT_TRUE(IsValidUtf8(s.heading)) << seed.name << " #" << i;
          EXPECT_TRUE(IsValidUtf8(s.text)) << seed.name << " #" << i;
        }
      }
    }
  }
  EXPECT_GT(ok, 0);
}

}  // namespace
}  // namespace tessera::parse
