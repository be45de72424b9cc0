#include "engine/tokenizer/text_util.h"

#include "gtest/gtest.h"

namespace tessera::engine::tokenizer_internal {
namespace {

TEST(SanitizeUtf8Test, KeepsValidAndReplacesInvalidBytes) {
  EXPECT_EQ(SanitizeUtf8("héllo €"), "héllo €");
  EXPECT_EQ(SanitizeUtf8(std::string("a\xFF" "b", 3)), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(SanitizeUtf8("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // truncated
  EXPECT_EQ(SanitizeUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));  // overlong
  EXPECT_TRUE(IsValidUtf8("日本"));
}

TEST(ParseBytePieceTest, AcceptsOnlyExactForm) {
  EXPECT_EQ(ParseBytePiece("<0x0A>"), 0x0A);
  EXPECT_EQ(ParseBytePiece("<0xff>"), 0xFF);
  EXPECT_FALSE(ParseBytePiece("<0x0A").has_value());
  EXPECT_FALSE(ParseBytePiece("<0xZZ>").has_value());
  EXPECT_FALSE(ParseBytePiece("0x0A").has_value());
}

TEST(SpecialTokenSplitterTest, LongestMatchFirst) {
  SpecialTokenSplitter splitter({{"[INST]", 3}, {"[INST]x", 9}, {"</s>", 2}, {"", 7}});
  const auto segments = splitter.Split("a[INST]x[INST]b</s>");
  ASSERT_EQ(segments.size(), 5u);
  EXPECT_EQ(segments[0].text, "a");
  EXPECT_EQ(segments[1].id, 9);
  EXPECT_EQ(segments[2].id, 3);
  EXPECT_EQ(segments[3].text, "b");
  EXPECT_EQ(segments[3].id, -1);
  EXPECT_EQ(segments[4].id, 2);
  EXPECT_TRUE(splitter.Split("").empty());
}

TEST(DecodeToCodePointsTest, InvalidBecomesReplacement) {
  EXPECT_EQ(DecodeToCodePoints("a\xFFé"), U"a\uFFFDé");
}

}  // namespace
}  // namespace tessera::engine::tokenizer_internal
