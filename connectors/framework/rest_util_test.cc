#include "connectors/framework/rest_util.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::connectors::rest {
namespace {

using ::testing::ElementsAre;
using json = nlohmann::json;

TEST(RestUtilTest, AccessorsNeverThrow) {
  json j = json::parse(R"({"s":"x","n":7,"b":true,"a":["p",1,"q"],"o":{"k":"v"},"z":null})");
  EXPECT_EQ(Str(j, "s"), "x");
  EXPECT_EQ(Str(j, "n"), "");
  EXPECT_EQ(Int(j, "n"), 7);
  EXPECT_EQ(Int(j, "s"), 0);
  EXPECT_TRUE(Bool(j, "b"));
  EXPECT_TRUE(Bool(j, "missing", true));
  EXPECT_THAT(StrList(j, "a"), ElementsAre("p", "q"));
  EXPECT_TRUE(Arr(j, "s").empty());
  EXPECT_EQ(Str(Obj(j, "o"), "k"), "v");
  EXPECT_TRUE(Obj(j, "a").empty());
  EXPECT_TRUE(Has(j, "o"));
  EXPECT_FALSE(Has(j, "z"));
  json not_object = json::array({1, 2});
  EXPECT_EQ(Str(not_object, "s"), "");
  EXPECT_FALSE(Has(not_object, "s"));
  EXPECT_TRUE(Arr(not_object, "a").empty());
}

TEST(RestUtilTest, Rfc3339AndUrlEncode) {
  EXPECT_EQ(ParseRfc3339("2023-11-14T22:13:20.000Z"), absl::FromUnixSeconds(1'700'000'000));
  EXPECT_EQ(ParseRfc3339(""), std::nullopt);
  EXPECT_EQ(ParseRfc3339("yesterday"), std::nullopt);
  EXPECT_EQ(UrlEncode("a b/c~d"), "a%20b%2fc~d");
  EXPECT_EQ(UrlEncode("b!x,y@z", "!,"), "b!x,y%40z");
}

TEST(RestUtilTest, CheckProgressGivesUpAfterTooManyEmptyPagesInARow) {
  int empty = 0;
  for (int i = 0; i < kMaxEmptyPages; ++i) ASSERT_TRUE(CheckProgress("Drive", true, &empty).ok());
  EXPECT_TRUE(CheckProgress("Drive", false, &empty).ok());
  EXPECT_EQ(empty, 0);
  for (int i = 0; i < kMaxEmptyPages; ++i) ASSERT_TRUE(CheckProgress("Drive", true, &empty).ok());
  absl::Status s = CheckProgress("Drive", true, &empty);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), ::testing::HasSubstr("Drive returned 101 empty pages"));
}

}  // namespace
}  // namespace tessera::connectors::rest
