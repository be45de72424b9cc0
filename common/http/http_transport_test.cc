#include "common/http/http_transport.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;
using ::testing::Optional;

TEST(HttpHeadersTest, LookupIsCaseInsensitiveAndKeepsOrder) {
  HttpHeaders headers;
  headers.Add("Content-Type", "text/plain");
  headers.Add("Set-Cookie", "a=1");
  headers.Add("set-cookie", "b=2");
  EXPECT_THAT(headers.Get("content-type"), Optional(std::string("text/plain")));
  EXPECT_THAT(headers.Get("SET-COOKIE"), Optional(std::string("a=1")));
  EXPECT_THAT(headers.GetAll("Set-Cookie"), ElementsAre("a=1", "b=2"));
  EXPECT_EQ(headers.Get("Missing"), std::nullopt);
  EXPECT_TRUE(headers.GetAll("Missing").empty());
  EXPECT_TRUE(headers.Contains("CONTENT-type"));
  EXPECT_EQ(headers.size(), 3u);
  // Spelling as received is preserved.
  EXPECT_EQ(headers.entries()[2].first, "set-cookie");
}

TEST(HttpHeadersTest, SetReplacesAndRemoveDeletesAllCases) {
  HttpHeaders headers = {{"X-A", "1"}, {"x-a", "2"}, {"X-B", "3"}};
  headers.Set("X-a", "9");
  EXPECT_THAT(headers.GetAll("x-A"), ElementsAre("9"));
  headers.Remove("x-b");
  EXPECT_FALSE(headers.Contains("X-B"));
  EXPECT_EQ(headers.size(), 1u);
  headers.clear();
  EXPECT_TRUE(headers.empty());
}

TEST(HttpRequestTest, Defaults) {
  HttpRequest request;
  EXPECT_EQ(request.method, "GET");
  EXPECT_EQ(request.timeout, absl::Seconds(60));
  EXPECT_EQ(request.connect_timeout, absl::Seconds(10));
  HttpResponse response;
  EXPECT_EQ(response.status_code, 0);
}

}  // namespace
}  // namespace tessera
