#include "connectors/parse/text_parser.h"

#include <string>

#include "absl/status/status.h"
#include "connectors/parse/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::parse {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

MATCHER_P2(Section, heading, text, "") {
  return ::testing::ExplainMatchResult(heading, arg.heading, result_listener) &&
         ::testing::ExplainMatchResult(text, arg.text, result_listener);
}

ParsedDocument MustParseText(absl::string_view input) {
  absl::StatusOr<ParsedDocument> doc = ParsePlainText(input, ParseOptions{});
  EXPECT_TRUE(doc.ok()) << doc.status();
  return doc.ok() ? *std::move(doc) : ParsedDocument{};
}

ParsedDocument MustParseMarkdown(absl::string_view input) {
  absl::StatusOr<ParsedDocument> doc = ParseMarkdown(input, ParseOptions{});
  EXPECT_TRUE(doc.ok()) << doc.status();
  return doc.ok() ? *std::move(doc) : ParsedDocument{};
}

TEST(PlainTextTest, KeepsParagraphsAndLines) {
  const ParsedDocument doc =
      MustParseText("Quarterly report\r\n\r\nRevenue grew.\r\nCosts fell.   \n\n\n\nThe end.\n");
  EXPECT_EQ(doc.mime_type, "text/plain");
  EXPECT_EQ(doc.title, "Quarterly report");
  EXPECT_THAT(doc.sections, ElementsAre(Section(
                                "", "Quarterly report\n\nRevenue grew.\nCosts fell.\n\nThe end.")));
  EXPECT_THAT(doc.warnings, IsEmpty());
}

TEST(PlainTextTest, InvalidUtf8IsDecodedAsWindows1252WithWarning) {
  const ParsedDocument doc = MustParseText("caf\xE9 au lait \x80");  // Latin-1 é, cp1252 €
  ASSERT_THAT(doc.sections, SizeIs(1));
  EXPECT_EQ(doc.sections[0].text, "caf\xC3\xA9 au lait \xE2\x82\xAC");
  EXPECT_THAT(doc.warnings, ElementsAre(HasSubstr("windows-1252")));
}

TEST(PlainTextTest, DeclaredCharsetIsUsed) {
  ParseOptions options;
  options.charset = "Shift_JIS";
  absl::StatusOr<ParsedDocument> doc = ParsePlainText("\x93\xFA\x96\x7B", options);
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->sections[0].text, "\xE6\x97\xA5\xE6\x9C\xAC");
}

TEST(PlainTextTest, Utf16WithBomIsConverted) {
  const std::string input("\xFF\xFEH\x00i\x00\n\x00", 8);
  const ParsedDocument doc = MustParseText(input);
  EXPECT_THAT(doc.sections, ElementsAre(Section("", "Hi")));
}

TEST(PlainTextTest, EmptyAndBlankInputHaveNoSections) {
  EXPECT_THAT(MustParseText("").sections, IsEmpty());
  EXPECT_THAT(MustParseText(" \n\t\n").sections, IsEmpty());
}

TEST(PlainTextTest, LimitsAreEnforced) {
  ParseOptions options;
  options.max_input_bytes = 10;
  EXPECT_EQ(ParsePlainText(std::string(11, 'a'), options).status().code(),
            absl::StatusCode::kResourceExhausted);
  options = ParseOptions{};
  options.max_output_bytes = 20;
  EXPECT_EQ(ParsePlainText("0123456789\n\n0123456789\n\n0123456789", options).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(PlainTextTest, DeadlineIsCheckedBetweenParagraphs) {
  testing::TickingClock clock(absl::Seconds(1));
  ParseOptions options;
  options.clock = &clock;
  options.timeout = absl::Seconds(5);
  std::string input;
  for (int i = 0; i < 20; ++i) input += "paragraph\n\n";
  EXPECT_EQ(ParsePlainText(input, options).status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(MarkdownTest, AtxHeadingsOpenSections) {
  const ParsedDocument doc = MustParseMarkdown(
      "Intro line.\n"
      "\n"
      "# Overview #\n"
      "First paragraph\ncontinues here.\n"
      "\n"
      "Second paragraph.\n"
      "  ## Details\n"
      "###### Deep\n"
      "#hashtag is not a heading\n"
      "    # indented code, not a heading\n"
      "####### seven is too many\n");
  EXPECT_EQ(doc.mime_type, "text/markdown");
  EXPECT_EQ(doc.title, "Overview");
  EXPECT_THAT(
      doc.sections,
      ElementsAre(Section("", "Intro line."),
                  Section("Overview", "First paragraph\ncontinues here.\n\nSecond paragraph."),
                  Section("Details", ""),
                  Section("Deep",
                          "#hashtag is not a heading\n"
                          "    # indented code, not a heading\n"
                          "####### seven is too many")));
}

TEST(MarkdownTest, SetextHeadingsAndThematicBreaks) {
  const ParsedDocument doc =
      MustParseMarkdown("Main Title\n==========\n\ntext one\n\n***\n\nSub part\n---\ntext two\n");
  EXPECT_THAT(doc.sections,
              ElementsAre(Section("Main Title", "text one"), Section("Sub part", "text two")));
}

TEST(MarkdownTest, CodeFencesAreKeptVerbatim) {
  const ParsedDocument doc = MustParseMarkdown(
      "# Build\n"
      "Run this:\n"
      "```bash\n"
      "# not a heading\n"
      "\n"
      "echo [x](y)\n"
      "```\n"
      "~~~~\n"
      "~~~\n"
      "still code\n"
      "~~~~\n"
      "Done.\n");
  EXPECT_THAT(doc.sections,
              ElementsAre(Section("Build",
                                  "Run this:\n\n# not a heading\n\necho [x](y)\n\n~~~\nstill "
                                  "code\n\nDone.")));
}

TEST(MarkdownTest, UnclosedFenceKeepsItsText) {
  const ParsedDocument doc = MustParseMarkdown("```\ncode line\n# still code");
  EXPECT_THAT(doc.sections, ElementsAre(Section("", "code line\n# still code")));
}

TEST(MarkdownTest, LinksBecomeTheirText) {
  const ParsedDocument doc = MustParseMarkdown(
      "# See [the guide](https://example.com/guide)\n"
      "Read [our docs](https://x.y/a_(b)) and ![a diagram](d.png \"title\").\n"
      "Nested [![logo](l.png) home](/) and [ref link][r1] and \\[not a link](z).\n"
      "\n"
      "[r1]: https://example.com/ref\n");
  EXPECT_THAT(doc.sections,
              ElementsAre(Section("See the guide",
                                  "Read our docs and a diagram.\nNested logo home and ref link "
                                  "and \\[not a link](z).")));
}

TEST(MarkdownTest, StripLinksSurvivesHostileBrackets) {
  EXPECT_EQ(StripMarkdownLinks("[a](b"), "[a](b");
  EXPECT_EQ(StripMarkdownLinks("]([)"), "]([)");
  EXPECT_EQ(StripMarkdownLinks("[x [y](z ](d) e)"), "x y");
  const std::string brackets(200000, '[');
  EXPECT_EQ(StripMarkdownLinks(brackets), brackets);
  std::string nested;
  for (int i = 0; i < 10000; ++i) nested += "[";
  nested += "t";
  for (int i = 0; i < 10000; ++i) nested += "](u)";
  EXPECT_EQ(StripMarkdownLinks(nested), "t");
}

TEST(MarkdownTest, EmptyInputHasNoSections) {
  const ParsedDocument doc = MustParseMarkdown("");
  EXPECT_THAT(doc.sections, IsEmpty());
  EXPECT_EQ(doc.title, "");
}

}  // namespace
}  // namespace tessera::parse
