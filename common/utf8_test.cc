#include "common/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace tessera {
namespace {

TEST(Utf8Test, DecodesEachLength) {
  int32_t cp;
  EXPECT_EQ(DecodeUtf8("a", 0, &cp), 1u);
  EXPECT_EQ(cp, 'a');
  EXPECT_EQ(DecodeUtf8("\xc3\xa9", 0, &cp), 2u);
  EXPECT_EQ(cp, 0xE9);
  EXPECT_EQ(DecodeUtf8("\xe2\x82\xac", 0, &cp), 3u);
  EXPECT_EQ(cp, 0x20AC);
  EXPECT_EQ(DecodeUtf8("\xf0\x9f\x98\x80", 0, &cp), 4u);
  EXPECT_EQ(cp, 0x1F600);
}

TEST(Utf8Test, InvalidSequencesAreOneByte) {
  int32_t cp;
  for (const std::string bad : {std::string("\xff"), std::string("\xc3"), std::string("\xc0\xaf"),
                                std::string("\xed\xa0\x80"), std::string("\xe2\x28\xa1"),
                                std::string("\xf4\x90\x80\x80"), std::string("\x80")}) {
    EXPECT_EQ(DecodeUtf8(bad, 0, &cp), 1u) << bad.size();
    EXPECT_EQ(cp, -1);
  }
}

}  // namespace
}  // namespace tessera
