#include "connectors/drive/fake_drive_server.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/http/curl_http_transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tessera::connectors::drive {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

class FakeDriveServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FakeDriveServer::Options options;
    options.user_groups = {"fin@x.com"};
    options.clock = &clock_;
    auto server = FakeDriveServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto transport = CurlHttpTransport::Create({});
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = std::move(*transport);
  }
  HttpResponse Get(absl::string_view path_and_query) {
    HttpRequest r;
    r.url = absl::StrCat(server_->base_url(), path_and_query);
    r.headers.push_back({"Authorization", "Bearer t1"});
    auto resp = transport_->Send(r);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? *resp : HttpResponse{};
  }
  json GetJson(absl::string_view path_and_query, int want_status = 200) {
    HttpResponse r = Get(path_and_query);
    EXPECT_EQ(r.status_code, want_status) << r.body;
    return json::parse(r.body, nullptr, false);
  }

  SimulatedClock clock_;
  std::unique_ptr<FakeDriveServer> server_;
  std::unique_ptr<HttpTransport> transport_;
};

TEST_F(FakeDriveServerTest, ChangesPaginateAndEndWithNewStartPageToken) {
  std::string start = GetJson("/changes/startPageToken")["startPageToken"];
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(server_->CreateFile({.name = absl::StrCat("f", i), .content = "x"}).ok());
  }
  json page1 = GetJson(absl::StrCat("/changes?pageToken=", start, "&pageSize=2"));
  ASSERT_EQ(page1["changes"].size(), 2u);
  EXPECT_FALSE(page1.contains("newStartPageToken"));
  ASSERT_TRUE(page1.contains("nextPageToken"));
  json page2 = GetJson(absl::StrCat(
      "/changes?pageToken=", page1["nextPageToken"].get<std::string>(), "&pageSize=2"));
  ASSERT_EQ(page2["changes"].size(), 1u);
  EXPECT_FALSE(page2.contains("nextPageToken"));
  EXPECT_TRUE(page2.contains("newStartPageToken"));
  EXPECT_EQ(page2["changes"][0]["file"]["name"], "f2");
}

TEST_F(FakeDriveServerTest, TrashedRemovedAndAccessLost) {
  auto a = server_->CreateFile({.name = "a"});
  auto b = server_->CreateFile({.name = "b"});
  auto c = server_->CreateFile(
      {.name = "c", .owner = "bob@x.com", .permissions = {{.type = "user", .email = "ann@x.com"}}});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  std::string start = GetJson("/changes/startPageToken")["startPageToken"];
  ASSERT_TRUE(server_->TrashFile(*a).ok());
  ASSERT_TRUE(server_->DeleteFile(*b).ok());
  // Bob unshares c: ann loses access.
  EXPECT_EQ(server_->Unshare(*c, "nope").code(), absl::StatusCode::kNotFound);
  json meta = GetJson(absl::StrCat("/files/", *c));
  std::string pid = meta["permissions"][1]["id"];
  ASSERT_TRUE(server_->Unshare(*c, pid).ok());
  json changes = GetJson(absl::StrCat("/changes?pageToken=", start))["changes"];
  ASSERT_EQ(changes.size(), 3u);  // a trashed, b removed, c removed
  EXPECT_EQ(changes[0]["fileId"], *a);
  EXPECT_FALSE(changes[0]["removed"].get<bool>());
  EXPECT_TRUE(changes[0]["file"]["trashed"].get<bool>());
  EXPECT_TRUE(changes[1]["removed"].get<bool>());
  EXPECT_FALSE(changes[1].contains("file"));
  EXPECT_EQ(changes[2]["fileId"], *c);
  EXPECT_TRUE(changes[2]["removed"].get<bool>());
  EXPECT_EQ(GetJson(absl::StrCat("/files/", *c), 404)["error"]["code"], 404);
}

TEST_F(FakeDriveServerTest, SharedDriveFilesNeedPermissionsList) {
  server_->AddSharedDrive({"0ADrive", "Finance", {{.type = "group", .email = "fin@x.com"}}});
  auto id =
      server_->CreateFile({.name = "budget",
                           .drive_id = "0ADrive",
                           .permissions = {{.type = "anyone", .allow_file_discovery = false}}});
  ASSERT_TRUE(id.ok());
  json files = GetJson(
      "/files?corpora=allDrives&includeItemsFromAllDrives=true"
      "&supportsAllDrives=true&q=trashed%20%3D%20false")["files"];
  ASSERT_EQ(files.size(), 1u);
  EXPECT_FALSE(files[0].contains("permissions"));
  EXPECT_EQ(files[0]["permissionIds"].size(), 2u);
  json perms = GetJson(absl::StrCat("/files/", *id, "/permissions?pageSize=1"));
  ASSERT_EQ(perms["permissions"].size(), 1u);
  EXPECT_EQ(perms["permissions"][0]["type"], "group");
  EXPECT_TRUE(perms["permissions"][0]["permissionDetails"][0]["inherited"].get<bool>());
  json perms2 = GetJson(absl::StrCat(
      "/files/", *id, "/permissions?pageToken=", perms["nextPageToken"].get<std::string>()));
  EXPECT_EQ(perms2["permissions"][0]["type"], "anyone");
  EXPECT_FALSE(perms2["permissions"][0]["allowFileDiscovery"].get<bool>());
  // Without includeItemsFromAllDrives, shared-drive items are not listed.
  EXPECT_EQ(GetJson("/files")["files"].size(), 0u);
  EXPECT_EQ(GetJson("/drives")["drives"][0]["name"], "Finance");
}

TEST_F(FakeDriveServerTest, ExportAndDownload) {
  auto doc = server_->CreateFile(
      {.name = "plan", .mime_type = std::string(kMimeGoogleDoc), .content = "Q3 plan"});
  auto sheet = server_->CreateFile(
      {.name = "nums", .mime_type = std::string(kMimeGoogleSheet), .content = "a,b\n1,2\n"});
  auto bin = server_->CreateFile({.name = "r.txt", .mime_type = "text/plain", .content = "hi"});
  ASSERT_TRUE(doc.ok() && sheet.ok() && bin.ok());
  EXPECT_EQ(Get(absl::StrCat("/files/", *doc, "/export?mimeType=text%2Fplain")).body, "Q3 plan");
  EXPECT_EQ(Get(absl::StrCat("/files/", *sheet, "/export?mimeType=text/csv")).body, "a,b\n1,2\n");
  EXPECT_EQ(Get(absl::StrCat("/files/", *sheet, "/export?mimeType=text/plain")).status_code, 400);
  EXPECT_EQ(Get(absl::StrCat("/files/", *doc, "?alt=media")).status_code, 403);
  EXPECT_EQ(Get(absl::StrCat("/files/", *bin, "?alt=media")).body, "hi");
  EXPECT_EQ(GetJson(absl::StrCat("/files/", *bin))["size"], "2");
}

TEST_F(FakeDriveServerTest, QueryFilters) {
  ASSERT_TRUE(
      server_->CreateFile({.id = "fold", .name = "F", .mime_type = std::string(kMimeGoogleFolder)})
          .ok());
  ASSERT_TRUE(server_->CreateFile({.id = "in", .name = "in", .parents = {"fold"}}).ok());
  ASSERT_TRUE(
      server_->CreateFile({.id = "tr", .name = "tr", .parents = {"fold"}, .trashed = true}).ok());
  json files = GetJson("/files?q='fold'+in+parents+and+trashed+%3D+false")["files"];
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0]["id"], "in");
  EXPECT_EQ(GetJson("/files?q=mimeType+!%3D+'application/vnd.google-apps.folder'")["files"].size(),
            2u);
  EXPECT_EQ(GetJson("/files?q=bogus", 400)["error"]["errors"][0]["reason"], "invalid");
}

TEST_F(FakeDriveServerTest, FaultsAndExpiredTokens) {
  server_->InjectFault("/drive/v3/about", DriveFault::k429RetryAfterSeconds);
  server_->InjectFault("/drive/v3/about", DriveFault::k403UserRateLimit);
  HttpResponse r = Get("/about");
  EXPECT_EQ(r.status_code, 429);
  EXPECT_EQ(r.headers.Get("Retry-After"), "2");
  r = Get("/about");
  EXPECT_EQ(r.status_code, 403);
  EXPECT_THAT(r.body, HasSubstr("userRateLimitExceeded"));
  EXPECT_EQ(Get("/about").status_code, 200);

  server_->InjectFault("/drive/v3/about", DriveFault::k429RetryAfterDate);
  r = Get("/about");
  EXPECT_THAT(r.headers.Get("Retry-After").value_or(""), HasSubstr("GMT"));

  std::string start = GetJson("/changes/startPageToken")["startPageToken"];
  server_->ExpirePageTokens(410);
  EXPECT_EQ(Get(absl::StrCat("/changes?pageToken=", start)).status_code, 410);
  std::string fresh = GetJson("/changes/startPageToken")["startPageToken"];
  EXPECT_EQ(Get(absl::StrCat("/changes?pageToken=", fresh)).status_code, 200);
  server_->ExpirePageTokens(400);
  r = Get(absl::StrCat("/changes?pageToken=", fresh));
  EXPECT_EQ(r.status_code, 400);
  EXPECT_THAT(r.body, HasSubstr("pageToken"));

  std::string t = GetJson("/changes/startPageToken")["startPageToken"];
  server_->InjectFault("/drive/v3/changes", DriveFault::kEmptyPage);
  json empty = GetJson(absl::StrCat("/changes?pageToken=", t));
  EXPECT_EQ(empty["changes"].size(), 0u);
  EXPECT_EQ(empty["nextPageToken"], t);

  server_->InjectFault("/drive/v3/about", DriveFault::kDisconnect);
  HttpRequest req;
  req.url = absl::StrCat(server_->base_url(), "/about");
  req.headers.push_back({"Authorization", "Bearer t1"});
  EXPECT_EQ(transport_->Send(req).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(FakeDriveServerTest, TokensExpire) {
  server_->AcceptToken("t1");
  EXPECT_EQ(Get("/about").status_code, 200);
  server_->ExpireToken("t1");
  server_->AcceptToken("t2");
  EXPECT_EQ(Get("/about").status_code, 401);
}

}  // namespace
}  // namespace tessera::connectors::drive
