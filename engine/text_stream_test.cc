#include "engine/text_stream.h"

#include "gtest/gtest.h"

namespace tessera::engine {
namespace {

TEST(TextStreamTest, MultiByteCharacterSplitAcrossTokensWaitsForItsLastByte) {
  TextStream s({});
  EXPECT_EQ(s.Push("caf"), "caf");
  EXPECT_EQ(s.Push("\xC3"), "");       // first byte of é
  EXPECT_EQ(s.Push("\xA9!"), "\xC3\xA9!");
  EXPECT_EQ(s.Push("\xF0\x9F"), "");   // half an emoji
  EXPECT_EQ(s.Push("\x98\x80"), "\xF0\x9F\x98\x80");
  EXPECT_EQ(s.Flush(), "");
}

TEST(TextStreamTest, InvalidBytesBecomeReplacementCharacters) {
  TextStream s({});
  EXPECT_EQ(s.Push("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(s.Push("\xC3"), "");
  EXPECT_EQ(s.Flush(), "\xEF\xBF\xBD");  // a character that never finished
  EXPECT_EQ(SanitizeUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
}

TEST(TextStreamTest, StopStringEndsTheStreamAndIsNotShown) {
  TextStream s({"\nUser:", "###"});
  EXPECT_EQ(s.Push("Hello"), "Hello");
  EXPECT_EQ(s.Push(" there\nUs"), " there");  // "\nUs" might start "\nUser:"
  EXPECT_FALSE(s.stopped());
  EXPECT_EQ(s.Push("er: hi"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.matched_stop(), "\nUser:");
  EXPECT_EQ(s.Push("more"), "");
  EXPECT_EQ(s.Flush(), "");
}

TEST(TextStreamTest, HeldTextIsReleasedWhenItTurnsOutNotToBeAStop) {
  TextStream s({"###"});
  EXPECT_EQ(s.Push("a#"), "a");
  EXPECT_EQ(s.Push("#b"), "##b");
  EXPECT_EQ(s.Push("#"), "");
  EXPECT_EQ(s.Flush(), "#");
}

TEST(TextStreamTest, StopInsideOneChunkKeepsTheTextBefore) {
  TextStream s({"STOP"});
  EXPECT_EQ(s.Push("abcSTOPdef"), "abc");
  EXPECT_TRUE(s.stopped());
}

}  // namespace
}  // namespace tessera::engine
