#include "connectors/parse/html_parser.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "connectors/parse/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::parse {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

MATCHER_P2(Section, heading, text, "") {
  return ::testing::ExplainMatchResult(heading, arg.heading, result_listener) &&
         ::testing::ExplainMatchResult(text, arg.text, result_listener);
}

ParsedDocument MustParse(absl::string_view html) {
  absl::StatusOr<ParsedDocument> doc = ParseHtml(html, ParseOptions{});
  EXPECT_TRUE(doc.ok()) << doc.status();
  return doc.ok() ? *std::move(doc) : ParsedDocument{};
}

TEST(HtmlParserTest, ExtractsTitleHeadingsAndParagraphs) {
  const ParsedDocument doc = MustParse(R"(<!DOCTYPE html>
<html><head><title>  Travel   policy </title>
<meta charset="utf-8"><style>body { color: red }</style>
<script>var secret = "do not index";</script></head>
<body>
  <p>Intro <b>bold</b>  and
     <i>italic</i>.</p>
  <h1>Booking <em>flights</em></h1>
  <p>Use the portal.</p><div>Second block<br>next line</div>
  <h2>Hotels</h2>
  <ul><li>Max $200</li><li>Receipts required</li></ul>
</body></html>)");
  EXPECT_EQ(doc.mime_type, "text/html");
  EXPECT_EQ(doc.title, "Travel policy");
  EXPECT_THAT(doc.sections,
              ElementsAre(Section("", "Intro bold and italic."),
                          Section("Booking flights", "Use the portal.\n\nSecond block\nnext line"),
                          Section("Hotels", "Max $200\n\nReceipts required")));
  EXPECT_THAT(doc.warnings, IsEmpty());
}

TEST(HtmlParserTest, SkipsInvisibleContent) {
  const ParsedDocument doc = MustParse(
      "<html><body><p>visible</p>"
      "<script>alert('script text')</script>"
      "<style>.x{}</style>"
      "<noscript>noscript text</noscript>"
      "<template><p>template text</p></template>"
      "<!-- comment text -->"
      "<div hidden>hidden text</div>"
      "<iframe>iframe text</iframe>"
      "<svg><title>tooltip</title><text>svg label</text></svg>"
      "<p>also visible</p></body></html>");
  ASSERT_THAT(doc.sections, SizeIs(1));
  const std::string& text = doc.sections[0].text;
  EXPECT_THAT(text, AllOf(HasSubstr("visible"), HasSubstr("also visible"), HasSubstr("svg label")));
  for (const char* hidden : {"script text", ".x{}", "noscript text", "template text",
                             "comment text", "hidden text", "iframe text", "tooltip"}) {
    EXPECT_THAT(text, Not(HasSubstr(hidden)));
  }
}

TEST(HtmlParserTest, DecodesEntities) {
  const ParsedDocument doc = MustParse(
      "<p>Fish &amp; chips &lt;tag&gt; caf&eacute; &#x263A; &#8364;5 a&nbsp;b &quot;q&quot;</p>");
  EXPECT_THAT(doc.sections,
              ElementsAre(Section("",
                                  "Fish & chips <tag> caf\xC3\xA9 \xE2\x98\xBA \xE2\x82\xAC"
                                  "5 a b \"q\"")));
}

TEST(HtmlParserTest, PreservesPreformattedText) {
  const ParsedDocument doc = MustParse("<p>a   b</p><pre>x   y\n  z</pre>");
  EXPECT_THAT(doc.sections, ElementsAre(Section("", "a b\n\nx   y\n  z")));
}

TEST(HtmlParserTest, TablesBecomeTabSeparatedRows) {
  const ParsedDocument doc = MustParse(
      "<table><tr><th>Name</th><th>Role</th></tr>"
      "<tr><td>Ann</td><td><p>Engineer</p><p>Lead<br>Ops</p></td></tr>"
      "<tr><td></td><td>only second</td></tr>"
      "<tr><td> </td><td></td></tr>"
      "<tr><td>Bo<table><tr><td>in</td><td>ner</td></tr></table></td><td>x</td></tr>"
      "</table><p>after</p>");
  EXPECT_THAT(doc.sections,
              ElementsAre(Section("",
                                  "Name\tRole\nAnn\tEngineer Lead Ops\n\tonly second\n"
                                  "Bo in ner\tx\n\nafter")));
}

TEST(HtmlParserTest, TitleFallsBackToFirstHeading) {
  EXPECT_EQ(MustParse("<h2>Release notes</h2><p>v2</p>").title, "Release notes");
  EXPECT_EQ(MustParse("<p>First line</p>").title, "First line");
}

TEST(HtmlParserTest, MalformedHtmlStillYieldsText) {
  const ParsedDocument doc = MustParse("<p>one<p>two<div><span>three</div></b></i><td>four");
  ASSERT_THAT(doc.sections, SizeIs(1));
  EXPECT_THAT(doc.sections[0].text,
              AllOf(HasSubstr("one"), HasSubstr("two"), HasSubstr("three"), HasSubstr("four")));
}

TEST(HtmlParserTest, InvalidUtf8IsDecodedAsWindows1252WithWarning) {
  const ParsedDocument doc = MustParse("<p>na\xEFve \xFF</p>");
  ASSERT_THAT(doc.sections, SizeIs(1));
  EXPECT_EQ(doc.sections[0].text, "na\xC3\xAFve \xC3\xBF");
  EXPECT_THAT(doc.warnings, ElementsAre(HasSubstr("windows-1252")));
}

TEST(HtmlParserTest, MetaCharsetIsHonoured) {
  const ParsedDocument doc =
      MustParse("<html><head><meta charset=\"Shift_JIS\"></head><body><p>\x93\xFA\x96\x7B</p>");
  ASSERT_THAT(doc.sections, SizeIs(1));
  EXPECT_EQ(doc.sections[0].text, "\xE6\x97\xA5\xE6\x9C\xAC");
  EXPECT_THAT(doc.warnings, IsEmpty());
}

TEST(HtmlParserTest, EmptyInputHasNoSections) { EXPECT_THAT(MustParse("").sections, IsEmpty()); }

TEST(HtmlParserTest, DeepNestingIsSafe) {
  // 100k levels: the walker and the cleanup must not recurse per level.
  std::string html;
  for (int i = 0; i < 100000; ++i) html += "<span>";
  html += "deep text";
  const ParsedDocument doc = MustParse(html);
  EXPECT_THAT(doc.sections, ElementsAre(Section("", "deep text")));
}

TEST(HtmlParserTest, QuadraticNestingStopsAtTheDeadline) {
  // Gumbo takes quadratic time on nested <div>s (minutes for this input);
  // the allocator hook abandons the parse at the deadline.
  std::string html;
  for (int i = 0; i < 400000; ++i) html += "<div>";
  ParseOptions options;
  options.timeout = absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  EXPECT_EQ(ParseHtml(html, options).status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
}

TEST(HtmlParserTest, DeadlineWithSimulatedClock) {
  testing::TickingClock clock(absl::Seconds(1));
  ParseOptions options;
  options.clock = &clock;
  options.timeout = absl::Seconds(3);
  std::string html;
  for (int i = 0; i < 50; ++i) html += absl::StrCat("<p>paragraph ", i, "</p>");
  EXPECT_EQ(ParseHtml(html, options).status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(HtmlParserTest, LimitsAreEnforced) {
  ParseOptions options;
  options.max_input_bytes = 10;
  EXPECT_EQ(ParseHtml("<p>0123456789</p>", options).status().code(),
            absl::StatusCode::kResourceExhausted);
  options = ParseOptions{};
  options.max_output_bytes = 30;
  // Markup does not count: 100 bytes of HTML holding 20 bytes of text is fine.
  EXPECT_TRUE(ParseHtml(absl::StrCat("<div class='", std::string(70, 'x'),
                                     "'><p>01234567890123456789</p></div>"),
                        options)
                  .ok());
  EXPECT_EQ(
      ParseHtml("<p>0123456789</p><p>0123456789</p><p>0123456789</p>", options).status().code(),
      absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace tessera::parse
