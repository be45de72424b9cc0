#include "connectors/sharepoint/fake_graph_server.h"

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/http/curl_http_transport.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tessera::connectors::sharepoint {
namespace {

using json = nlohmann::json;

class FakeGraphServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = FakeGraphServer::Start({.clock = &clock_});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto transport = CurlHttpTransport::Create({});
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = std::move(*transport);
    server_->AddSite({"s1", "fin", "Finance", "https://contoso.sharepoint.com/sites/Fin"});
    ASSERT_TRUE(server_->AddLibrary({"b!d", "s1", "Shared Documents"}).ok());
    ASSERT_TRUE(server_->CreateItem("b!d", {.id = "dir", .name = "Reports", .folder = true}).ok());
    ASSERT_TRUE(server_
                    ->CreateItem("b!d", {.id = "a",
                                         .name = "a b.txt",
                                         .parent_id = "dir",
                                         .content = "hello",
                                         .permissions = {{.link_scope = "organization"}}})
                    .ok());
    ASSERT_TRUE(server_->CreateItem("b!d", {.id = "c", .name = "c.txt", .content = "x"}).ok());
  }
  HttpResponse Get(const std::string &url, bool auth = true) {
    HttpRequest r;
    r.url = absl::StartsWith(url, "http") ? url : absl::StrCat(server_->base_url(), url);
    if (auth) r.headers.push_back({"Authorization", "Bearer t1"});
    auto resp = transport_->Send(r);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? *resp : HttpResponse{};
  }
  json GetJson(const std::string &url, int want_status = 200) {
    HttpResponse r = Get(url);
    EXPECT_EQ(r.status_code, want_status) << r.body;
    return json::parse(r.body, nullptr, false);
  }
  // Follows nextLinks; returns every item and sets `delta_link`.
  json Round(std::string url, std::string *delta_link, int *pages = nullptr) {
    json all = json::array();
    for (int n = 1;; ++n) {
      json page = GetJson(url);
      for (const json &v : page["value"]) all.push_back(v);
      if (page.contains("@odata.nextLink")) {
        url = page["@odata.nextLink"];
        continue;
      }
      *delta_link = page.value("@odata.deltaLink", "");
      if (pages) *pages = n;
      return all;
    }
  }

  SimulatedClock clock_;
  std::unique_ptr<FakeGraphServer> server_;
  std::unique_ptr<HttpTransport> transport_;
};

TEST_F(FakeGraphServerTest, SitesDrivesAndAuth) {
  json sites = GetJson("/sites?search=*");
  ASSERT_EQ(sites["value"].size(), 1u);
  EXPECT_EQ(sites["value"][0]["webUrl"], "https://contoso.sharepoint.com/sites/Fin");
  json drives = GetJson("/sites/s1/drives");
  ASSERT_EQ(drives["value"].size(), 1u);
  EXPECT_EQ(drives["value"][0]["driveType"], "documentLibrary");
  server_->AcceptToken("good");
  HttpResponse r = Get("/sites/s1");
  EXPECT_EQ(r.status_code, 401);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "InvalidAuthenticationToken");
}

TEST_F(FakeGraphServerTest, DeltaPagesThenDeltaLinkThenChanges) {
  std::string link;
  int pages = 0;
  json all = Round("/drives/b!d/root/delta?$top=2", &link, &pages);
  EXPECT_EQ(pages, 2);
  ASSERT_EQ(all.size(), 4u);  // root, dir, a, c
  EXPECT_TRUE(all[0].contains("root"));
  EXPECT_TRUE(all[1].contains("folder"));
  EXPECT_EQ(all[2]["webUrl"],
            "https://contoso.sharepoint.com/sites/Fin/Shared%20Documents/Reports/a%20b.txt");
  EXPECT_EQ(all[2]["parentReference"]["id"], "dir");
  EXPECT_EQ(all[2]["file"]["mimeType"], "text/plain");
  ASSERT_TRUE(absl::StrContains(link, "token="));

  // Nothing changed: an empty round.
  std::string link2;
  EXPECT_TRUE(Round(link, &link2).empty());
  // An edit twice is reported once; a deleted folder alone, without name or facets.
  ASSERT_TRUE(server_->EditItem("b!d", "c", "y").ok());
  ASSERT_TRUE(server_->EditItem("b!d", "c", "z").ok());
  ASSERT_TRUE(server_->DeleteItem("b!d", "dir").ok());
  std::string link3;
  json changes = Round(link2, &link3);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0]["id"], "c");
  EXPECT_EQ(changes[1]["id"], "dir");
  EXPECT_TRUE(changes[1].contains("deleted"));
  EXPECT_FALSE(changes[1].contains("name"));
  EXPECT_FALSE(changes[1].contains("folder"));
  EXPECT_EQ(GetJson("/drives/b!d/items/a", 404)["error"]["code"], "itemNotFound");
}

TEST_F(FakeGraphServerTest, ExpiredTokenIs410WithLocation) {
  std::string link;
  Round("/drives/b!d/root/delta", &link);
  server_->ExpireDeltaTokens();
  HttpResponse r = Get(link);
  EXPECT_EQ(r.status_code, 410);
  EXPECT_EQ(json::parse(r.body)["error"]["innerError"]["code"], "resyncChangesApplyDifferences");
  auto location = r.headers.Get("Location");
  ASSERT_TRUE(location.has_value());
  std::string fresh;
  EXPECT_EQ(Round(*location, &fresh).size(), 4u);
}

TEST_F(FakeGraphServerTest, ContentRedirectsToAPreAuthenticatedUrl) {
  HttpResponse r = Get("/drives/b!d/items/a/content");
  EXPECT_EQ(r.status_code, 302);
  auto location = r.headers.Get("Location");
  ASSERT_TRUE(location.has_value());
  HttpResponse bytes = Get(*location, /*auth=*/false);
  EXPECT_EQ(bytes.status_code, 200);
  EXPECT_EQ(bytes.body, "hello");
  EXPECT_EQ(Get(*location, /*auth=*/true).status_code, 400);  // no bearer to the download host
  json perms = GetJson("/drives/b!d/items/a/permissions");
  ASSERT_EQ(perms["value"].size(), 1u);
  EXPECT_EQ(perms["value"][0]["link"]["scope"], "organization");
}

TEST_F(FakeGraphServerTest, Faults) {
  server_->InjectFault("/v1.0/drives/b!d/root/delta", GraphFault::k429RetryAfterSeconds);
  HttpResponse r = Get("/drives/b!d/root/delta");
  EXPECT_EQ(r.status_code, 429);
  EXPECT_EQ(r.headers.Get("Retry-After"), "2");
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "activityLimitReached");
  server_->InjectFault("/v1.0/drives/b!d/root/delta", GraphFault::kEmptyPage);
  json empty = GetJson("/drives/b!d/root/delta");
  EXPECT_TRUE(empty["value"].empty());
  EXPECT_TRUE(empty.contains("@odata.nextLink"));
  server_->InjectFault("/v1.0/drives/b!d/root/delta", GraphFault::kDuplicate);
  EXPECT_EQ(GetJson("/drives/b!d/root/delta")["value"].size(), 8u);
  server_->InjectFault("/v1.0/drives/b!d/root/delta", GraphFault::kRepeatPage);
  json repeat = GetJson("/drives/b!d/root/delta?$top=3");
  std::string link;
  EXPECT_EQ(Round(repeat["@odata.nextLink"], &link).size(), 4u);  // served again, in full
}

}  // namespace
}  // namespace tessera::connectors::sharepoint
