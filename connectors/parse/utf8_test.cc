#include "connectors/parse/utf8.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::parse {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string Sanitize(absl::string_view in, size_t* replaced = nullptr) {
  std::string out;
  const size_t n = AppendSanitizedUtf8(in, &out);
  if (replaced != nullptr) *replaced = n;
  return out;
}

constexpr char kFffd[] = "\xEF\xBF\xBD";

TEST(Utf8Test, ValidTextIsUnchanged) {
  const std::string text = "plain, caf\xC3\xA9, \xE2\x82\xAC, \xF0\x9F\x98\x80";
  EXPECT_TRUE(IsValidUtf8(text));
  size_t replaced = 99;
  EXPECT_EQ(Sanitize(text, &replaced), text);
  EXPECT_EQ(replaced, 0u);
}

TEST(Utf8Test, InvalidBytesBecomeReplacementCharacters) {
  EXPECT_FALSE(
      IsValidUtf8("a\xFF"
                  "b"));
  size_t replaced = 0;
  EXPECT_EQ(Sanitize("a\xFF"
                     "b",
                     &replaced),
            std::string("a") + kFffd + "b");
  EXPECT_EQ(replaced, 1u);
  // Overlong encoding of '/', and a lone continuation byte.
  EXPECT_EQ(Sanitize("\xC0\xAF"), std::string(kFffd) + kFffd);
  EXPECT_EQ(Sanitize("\x80"), kFffd);
}

TEST(Utf8Test, MaximalSubpartsAreReplacedOnce) {
  // A truncated 3-byte sequence followed by ASCII: one U+FFFD for "\xE2\x82".
  EXPECT_EQ(Sanitize("\xE2\x82z"), std::string(kFffd) + "z");
  // A surrogate (ED A0 80): ED cannot be followed by A0, so three replacements.
  EXPECT_EQ(Sanitize("\xED\xA0\x80"), std::string(kFffd) + kFffd + kFffd);
  // Above U+10FFFF.
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));
  // Truncated at the end of input.
  EXPECT_EQ(Sanitize("ok\xF0\x9F\x98"), std::string("ok") + kFffd);
}

TEST(Utf8Test, PrefixAllowsTruncationAtEndOnly) {
  EXPECT_EQ(ValidUtf8PrefixAllowingTruncation("ab\xE2\x82"), 4u);
  EXPECT_EQ(ValidUtf8PrefixAllowingTruncation("ab\xFFz"), 2u);
}

TEST(Utf8Test, TruncateDoesNotSplitCharacters) {
  const std::string text = "a\xE2\x82\xAC";  // "a€"
  EXPECT_EQ(TruncateUtf8(text, 3), "a");
  EXPECT_EQ(TruncateUtf8(text, 4), text);
  EXPECT_EQ(TruncateUtf8(text, 1), "a");
}

TEST(Utf8Test, DecodeStripsUtf8Bom) {
  auto decoded = DecodeToUtf8("\xEF\xBB\xBFhello", 1000);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->text, "hello");
  EXPECT_THAT(decoded->warnings, IsEmpty());
}

TEST(Utf8Test, DecodeConvertsUtf16LittleAndBigEndian) {
  // "h\u00e9 \U0001F600" in UTF-16LE and UTF-16BE with BOMs.
  const std::string le("\xFF\xFEh\x00\xE9\x00 \x00\x3D\xD8\x00\xDE", 12);
  const std::string be("\xFE\xFF\x00h\x00\xE9\x00 \xD8\x3D\xDE\x00", 12);
  for (const std::string& input : {le, be}) {
    auto decoded = DecodeToUtf8(input, 1000);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->text, "h\xC3\xA9 \xF0\x9F\x98\x80");
    EXPECT_THAT(decoded->warnings, IsEmpty());
  }
}

TEST(Utf8Test, DecodeReplacesBadUtf16) {
  // An unpaired high surrogate, then "x", then an odd trailing byte.
  const std::string input("\xFF\xFE\x3D\xD8x\x00\x41", 7);
  auto decoded = DecodeToUtf8(input, 1000);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->text, std::string(kFffd) + "x" + kFffd);
  EXPECT_THAT(decoded->warnings, ElementsAre(HasSubstr("UTF-16")));
}

TEST(Utf8Test, DecodeWarnsAboutInvalidUtf8) {
  auto decoded = DecodeToUtf8(
      "ab\xFE"
      "cd",
      1000);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->text, std::string("ab") + kFffd + "cd");
  EXPECT_THAT(decoded->warnings, ElementsAre(HasSubstr("1 invalid UTF-8")));
}

TEST(Utf8Test, DecodeEnforcesOutputLimit) {
  EXPECT_EQ(DecodeToUtf8(std::string(100, 'a'), 99).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(DecodeToUtf8("\xFF\xFE" + std::string(400, 'a'), 100).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(DecodeToUtf8(std::string(100, 'a'), 100).ok());
}

}  // namespace
}  // namespace tessera::parse
