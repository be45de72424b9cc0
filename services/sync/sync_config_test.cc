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
  EXPECT_EQ(x.drive.options.base_url, "http://127.0.0.1:9000/drive/v3");
  EXPECT_EQ(x.drive.auth.token, "t0k");
  EXPECT_EQ(x.drive.options.folder_ids, std::vector<std::string>{"f1"});
  EXPECT_EQ(x.drive.options.page_size, 50);
}

TEST(SyncConfigTest, DefaultsAndTokenFromEnvironment) {
  setenv("SYNC_CONFIG_TEST_TOKEN", "from-env", 1);
  auto c = ParseSyncConfig(R"({"connectors": [{"id": "d", "type": "drive", "collection": "c",
      "drive": {"token_env": "SYNC_CONFIG_TEST_TOKEN"}}]})",
                           "f");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->connectors[0].interval, absl::Minutes(15));
  EXPECT_EQ(c->connectors[0].drive.options.base_url, "https://www.googleapis.com/drive/v3");
  EXPECT_EQ(c->connectors[0].drive.auth.token, "from-env");
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
TEST(SyncConfigCredentials, OAuthAndServiceAccountsAreRead) {
  setenv("TEST_CLIENT_SECRET", "s3cret", 1);
  setenv("TEST_REFRESH", "r-token", 1);
  auto c = ParseSyncConfig(R"({"connectors": [
      {"id": "d", "type": "drive", "collection": "c",
       "drive": {"oauth": {"client_id": "cid", "client_secret_env": "TEST_CLIENT_SECRET",
                           "refresh_token_env": "TEST_REFRESH"}}},
      {"id": "m", "type": "gmail", "collection": "mail",
       "gmail": {"service_account": {"key_file": "/etc/tessera/sa.json",
                                     "scopes": ["https://www.googleapis.com/auth/gmail.readonly"]},
                 "mailboxes": ["ann@x.com"]}}]})",
                           "sync.json");
  ASSERT_TRUE(c.ok()) << c.status();
  const CredentialConfig &o = c->connectors[0].drive.auth;
  EXPECT_EQ(o.kind, CredentialConfig::Kind::kOAuthRefresh);
  EXPECT_EQ(o.client_secret, "s3cret");
  EXPECT_EQ(o.refresh_token, "r-token");
  const CredentialConfig &sa = c->connectors[1].gmail.auth;
  EXPECT_EQ(sa.kind, CredentialConfig::Kind::kServiceAccount);
  EXPECT_EQ(sa.key_file, "/etc/tessera/sa.json");
  EXPECT_TRUE(sa.subject.empty());
  ExpectError(R"({"connectors": [{"id": "d", "type": "drive", "collection": "c",
      "drive": {"token": "t", "oauth": {"client_id": "x", "refresh_token_env": "TEST_REFRESH"}}}]})",
              "connectors[0].drive.token: set exactly one");
  ExpectError(R"({"connectors": [{"id": "d", "type": "drive", "collection": "c",
      "drive": {"oauth": {"client_id": "x", "refresh_token_env": "NOT_SET_ANYWHERE"}}}]})",
              "connectors[0].drive.oauth.refresh_token_env: environment variable NOT_SET_ANYWHERE");
  ExpectError(R"({"connectors": [{"id": "d", "type": "gmail", "collection": "c",
      "gmail": {"service_account": {"key_file": "k.json"}, "mailboxes": ["me"]}}]})",
              "connectors[0].gmail.service_account.scopes");
}

TEST(SyncConfigGmailDirectory, DirectoryFieldsAreReadAndChecked) {
  auto c = ParseSyncConfig(R"({"connectors": [
      {"id": "m", "type": "gmail", "collection": "mail",
       "gmail": {"token": "t", "directory_customer": "my_customer",
                 "directory_admin": "admin@x.com", "admin_api_base": "http://127.0.0.1:9/"}},
      {"id": "n", "type": "gmail", "collection": "mail2",
       "gmail": {"token": "t", "mailboxes": ["ann@x.com"]}},
      {"id": "s", "type": "sharepoint", "collection": "sp",
       "sharepoint": {"token": "t", "include_pages": false}}]})",
                           "sync.json");
  ASSERT_TRUE(c.ok()) << c.status();
  const GmailSyncConfig &g = c->connectors[0].gmail;
  EXPECT_EQ(g.options.directory_customer, "my_customer");
  EXPECT_EQ(g.options.directory_admin, "admin@x.com");
  EXPECT_EQ(g.options.admin_base_url, "http://127.0.0.1:9/admin/directory/v1");
  EXPECT_TRUE(g.options.mailboxes.empty());
  EXPECT_EQ(c->connectors[1].gmail.options.admin_base_url,
            "https://admin.googleapis.com/admin/directory/v1");
  EXPECT_TRUE(c->connectors[1].gmail.options.directory_customer.empty());
  EXPECT_FALSE(c->connectors[2].sharepoint.options.include_pages);
  ExpectError(R"({"connectors": [{"id": "d", "type": "gmail", "collection": "c",
      "gmail": {"token": "t", "directory_customer": "my_customer"}}]})",
              "connectors[0].gmail.directory_admin: required");
  ExpectError(R"({"connectors": [{"id": "d", "type": "gmail", "collection": "c",
      "gmail": {"token": "t", "directory_customer": "my_customer", "directory_admin": "a@x.com",
                "mailboxes": ["ann@x.com"]}}]})",
              "connectors[0].gmail.mailboxes: must be absent");
  ExpectError(R"({"connectors": [{"id": "d", "type": "gmail", "collection": "c",
      "gmail": {"token": "t"}}]})",
              "connectors[0].gmail.mailboxes: must not be empty");
  ExpectError(R"({"connectors": [{"id": "d", "type": "gmail", "collection": "c",
      "gmail": {"token": "t", "mailboxes": ["me"], "admin_api_base": "ftp://x"}}]})",
              "connectors[0].gmail.admin_api_base: must start with");
  ExpectError(R"({"connectors": [{"id": "d", "type": "sharepoint", "collection": "c",
      "sharepoint": {"token": "t", "include_pages": "yes"}}]})",
              "connectors[0].sharepoint.include_pages");
}

}  // namespace tessera::sync
