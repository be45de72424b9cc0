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

TEST(HostileInputTest, MutatedInputsNeverCrash) {
  struct Seed {
    std::string name;
    std::string data;
  };
  std::vector<Seed> seeds;
  for (const char* fixture :
       {"002-trivial-libre-office-writer.pdf", "libre-office-link.pdf", "pdfkit.pdf",
        "blk-inner-content.docx", "blk-paras-and-tables.docx", "par-hyperlinks.docx"}) {
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
