#include "services/sync/sync_config.h"

#include <cstdlib>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace tessera::sync {
namespace {

TEST(SyncConfigTest, ParsesADriveConnector) {
  auto c = ParseSyncConfig(R"({"connectors": [{"id": "acme-drive", "type": "drive",
      "interval": "5m", "collection": "acme",
      "drive": {"api_base": "http://127.0.0.1:9000/", "token": "t0k",
                "folder_ids": ["f1"], "page_size": 50}}]})",
                           "sync.json");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->connectors.size(), 1u);
  const ConnectorConfig &x = c->connectors[0];
  EXPECT_EQ(x.id, "acme-drive");
  EXPECT_EQ(x.interval, absl::Minutes(5));
  EXPECT_EQ(x.collection, "acme");
  EXPECT_TRUE(x.enabled);
  EXPECT_EQ(x.drive.base_url, "http://127.0.0.1:9000/drive/v3");
  EXPECT_EQ(x.drive.token, "t0k");
  EXPECT_EQ(x.drive.folder_ids, std::vector<std::string>{"f1"});
  EXPECT_EQ(x.drive.page_size, 50);
}

TEST(SyncConfigTest, DefaultsAndTokenFromEnvironment) {
  setenv("SYNC_CONFIG_TEST_TOKEN", "from-env", 1);
  auto c = ParseSyncConfig(R"({"connectors": [{"id": "d", "type": "drive", "collection": "c",
      "drive": {"token_env": "SYNC_CONFIG_TEST_TOKEN"}}]})",
                           "f");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->connectors[0].interval, absl::Minutes(15));
  EXPECT_EQ(c->connectors[0].drive.base_url, "https://www.googleapis.com/drive/v3");
  EXPECT_EQ(c->connectors[0].drive.token, "from-env");
}

void ExpectError(const std::string &json, const std::string &field) {
  auto c = ParseSyncConfig(json, "sync.json");
  ASSERT_FALSE(c.ok()) << json;
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(c.status().message(), "sync.json: " + field))
      << c.status().message() << " should name " << field;
}

TEST(SyncConfigTest, ErrorsNameTheField) {
  const std::string drive = R"("drive": {"token": "t"})";
  ExpectError("not json", "");
  ExpectError("{}", "connectors");
  ExpectError(R"({"connectors": {}})", "connectors");
  ExpectError(R"({"connectors": [], "extra": 1})", "extra");
  ExpectError(R"({"connectors": [{"type": "drive", "collection": "c", )" + drive + "}]}",
              "connectors[0].id");
  ExpectError(
      R"({"connectors": [{"id": "Bad_Id", "type": "drive", "collection": "c", )" + drive + "}]}",
      "connectors[0].id");
  ExpectError(R"({"connectors": [{"id": "a", "type": "dropbox", "collection": "c", )" + drive + "}]}",
              "connectors[0].type");
  ExpectError(R"({"connectors": [{"id": "a", "type": "drive", "interval": "5 minutes", )"
              R"("collection": "c", )" +
                  drive + "}]}",
              "connectors[0].interval");
  ExpectError(R"({"connectors": [{"id": "a", "type": "drive", "collection": "c"}]})",
              "connectors[0].drive");
  ExpectError(R"({"connectors": [{"id": "a", "type": "drive", "collection": "c", )"
              R"("drive": {}}]})",
              "connectors[0].drive.token");
  ExpectError(R"({"connectors": [{"id": "a", "type": "drive", "collection": "c", )"
              R"("drive": {"token": "t", "api_base": "ftp://x"}}]})",
              "connectors[0].drive.api_base");
  ExpectError(R"({"connectors": [{"id": "a", "type": "drive", "collection": "c", )"
              R"("drive": {"token": "t", "tokn": "x"}}]})",
              "connectors[0].drive.tokn");
  ExpectError(R"({"connectors": [{"id": "a", "type": "drive", "collection": "c", )" + drive +
                  R"(}, {"id": "a", "type": "drive", "collection": "d", )" + drive + "}]}",
              "connectors[1].id");
  ExpectError(R"({"connectors": [{"id": "a", "type": "drive", "collection": "c", )" + drive +
                  R"(}, {"id": "b", "type": "drive", "collection": "c", )" + drive + "}]}",
              "connectors[1].collection");
}

}  // namespace
}  // namespace tessera::sync
