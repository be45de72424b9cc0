#include "connectors/parse/charset.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::parse {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string Decode(const std::string& bytes, absl::string_view charset = "") {
  absl::StatusOr<DecodedText> decoded = DecodeText(bytes, charset, 1 << 20);
  EXPECT_TRUE(decoded.ok()) << decoded.status();
  return decoded.ok() ? decoded->text : "";
}

TEST(CharsetTest, ValidUtf8StaysAsIs) {
  absl::StatusOr<DecodedText> decoded = DecodeText("caf\xC3\xA9 \xE2\x82\xAC", "", 100);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->text, "caf\xC3\xA9 \xE2\x82\xAC");
  EXPECT_THAT(decoded->warnings, IsEmpty());
}

TEST(CharsetTest, InvalidUtf8IsWindows1252) {
  absl::StatusOr<DecodedText> decoded = DecodeText("caf\xE9 \x80 \x93quoted\x94", "", 100);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->text, "caf\xC3\xA9 \xE2\x82\xAC \xE2\x80\x9Cquoted\xE2\x80\x9D");
  ASSERT_EQ(decoded->warnings.size(), 1u);
  EXPECT_THAT(decoded->warnings[0], HasSubstr("windows-1252"));
}

TEST(CharsetTest, Latin1LabelMeansWindows1252) {
  EXPECT_EQ(Decode("caf\xE9 \x80", "ISO-8859-1"), "caf\xC3\xA9 \xE2\x82\xAC");
}

TEST(CharsetTest, Utf16Boms) {
  EXPECT_EQ(Decode(std::string("\xFF\xFE" "c\0a\0f\0\xE9\0", 10)), "caf\xC3\xA9");
  EXPECT_EQ(Decode(std::string("\xFE\xFF\0c\0a\0f\0\xE9", 10)), "caf\xC3\xA9");
  // The BOM wins over a declared charset.
  EXPECT_EQ(Decode(std::string("\xFF\xFE" "x\0", 4), "shift_jis"), "x");
  EXPECT_EQ(Decode("\xEF\xBB\xBFhi", "windows-1252"), "hi");
}

TEST(CharsetTest, ShiftJisWhenLabelled) {
  // "日本語" in Shift_JIS.
  EXPECT_EQ(Decode("\x93\xFA\x96\x7B\x8C\xEA", "Shift_JIS"), "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E");
}

TEST(CharsetTest, DeclaredUtf8KeepsReplacement) {
  EXPECT_EQ(Decode("a\xFF", "utf-8"), "a\xEF\xBF\xBD");
}

TEST(CharsetTest, UnknownCharsetIsIgnoredWithWarning) {
  absl::StatusOr<DecodedText> decoded = DecodeText("caf\xE9", "no-such-charset", 100);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->text, "caf\xC3\xA9");
  EXPECT_THAT(decoded->warnings[0], HasSubstr("no-such-charset"));
}

TEST(CharsetTest, OutputLimit) {
  EXPECT_EQ(DecodeText(std::string(1000, '\xE9'), "", 500).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(CharsetTest, CharsetFromMimeType) {
  EXPECT_EQ(CharsetFromMimeType("text/csv; charset=Shift_JIS"), "shift_jis");
  EXPECT_EQ(CharsetFromMimeType("text/html;foo=bar; charset=\"UTF-8\""), "utf-8");
  EXPECT_EQ(CharsetFromMimeType("text/plain"), "");
}

TEST(CharsetTest, HtmlMetaCharset) {
  EXPECT_EQ(HtmlMetaCharset("<html><head><META CharSet=\"Shift_JIS\">"), "shift_jis");
  EXPECT_EQ(HtmlMetaCharset("<meta http-equiv=\"Content-Type\" content=\"text/html; "
                            "charset=windows-1252\">"),
            "windows-1252");
  EXPECT_EQ(HtmlMetaCharset("<meta name=x><p>charset=foo</p>"), "");
}

}  // namespace
}  // namespace tessera::parse
