// SharePoint into retrieval through the sync daemon: a FakeGraphServer with a finance library and an
// intranet library, the daemon configured by JSON ("type": "sharepoint", Microsoft client
// credentials from a token endpoint), a real RetrievalServiceImpl. The finance file is searchable by
// the finance group only, the intranet file by the whole domain, the anonymous-link file by nobody;
// a deletion follows on the next round through the delta feed.
#include <cstdlib>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/http/curl_http_transport.h"
#include "common/http/fake_http_server.h"
#include "connectors/sharepoint/fake_graph_server.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/gateway/caller.h"
#include "services/retrieval/retrieval_service.h"
#include "services/sync/sync_config.h"
#include "services/sync/sync_daemon.h"
#include "services/sync/testing/sync_test_env.h"
#include "tessera/v1/retrieval.grpc.pb.h"

namespace tessera::sync {
namespace {

using connectors::sharepoint::FakeDriveItem;
using connectors::sharepoint::FakeGraphPermission;
using connectors::sharepoint::FakeGraphServer;
using connectors::sharepoint::FakeIdentity;

TEST(SharePointSyncTest, LibrariesAreSyncedWithTheirPermissions) {
  const char *tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/sharepoint_sync");
  auto graph = FakeGraphServer::Start({});
  ASSERT_TRUE(graph.ok()) << graph.status();
  FakeGraphServer &g = **graph;
  g.AcceptToken("graph-token");
  g.AddSite({"x.sharepoint.com,1,a", "fin", "Finance", "https://x.sharepoint.com/sites/fin"});
  g.AddSite({"x.sharepoint.com,2,b", "intranet", "Intranet", "https://x.sharepoint.com/sites/intranet"});
  ASSERT_TRUE(g.AddLibrary({"b!fin", "x.sharepoint.com,1,a", "Documents"}).ok());
  ASSERT_TRUE(g.AddLibrary({"b!intra", "x.sharepoint.com,2,b", "Documents"}).ok());
  FakeGraphPermission fin;
  fin.granted_to = FakeIdentity{"group", "fin@x.com", "Finance"};
  FakeDriveItem forecast;
  forecast.name = "forecast.txt";
  forecast.content = "The forecast for the quarter: revenue up.";
  forecast.permissions = {fin};
  auto forecast_id = g.CreateItem("b!fin", forecast);
  ASSERT_TRUE(forecast_id.ok());
  FakeGraphPermission org;
  org.link_scope = "organization";
  FakeDriveItem news;
  news.name = "news.txt";
  news.content = "Company news for the quarter: the office moves.";
  news.permissions = {org};
  ASSERT_TRUE(g.CreateItem("b!intra", news).ok());
  FakeGraphPermission anon;
  anon.link_scope = "anonymous";
  FakeDriveItem secret;
  secret.name = "anon.txt";
  secret.content = "Shared by an anonymous link this quarter.";
  secret.permissions = {anon};
  ASSERT_TRUE(g.CreateItem("b!intra", secret).ok());

  // Microsoft's token endpoint issues the Graph token for the client credentials.
  auto token_endpoint = FakeHttpServer::Start();
  ASSERT_TRUE(token_endpoint.ok());
  (*token_endpoint)->Handle("POST", "/tenant/token", [](const FakeHttpRequest &r) {
    FakeHttpResponse resp;
    if (r.body.find("client_secret=sp-secret") == std::string::npos) {
      resp.status = 401;
      resp.body = R"({"error": "invalid_client"})";
      return resp;
    }
    resp.headers.Set("Content-Type", "application/json");
    resp.body = R"({"access_token": "graph-token", "expires_in": 3600, "token_type": "Bearer"})";
    return resp;
  });
  setenv("SP_SYNC_TEST_SECRET", "sp-secret", 1);

  auto env = testing::SyncTestEnv::Start(dir);
  ASSERT_TRUE(env.ok()) << env.status();

  const std::string config =
      absl::StrCat(R"({"connectors": [{"id": "acme-sp", "type": "sharepoint", "collection": "sp",
      "sharepoint": {"api_base": ")",
                   g.base_url(), R"(", "tenant_domain": "x.com",
        "microsoft": {"tenant_id": "tenant", "client_id": "app", "client_secret_env": "SP_SYNC_TEST_SECRET",
                      "token_url": ")",
                   (*token_endpoint)->url(), R"(/tenant/token"}}}]})");
  auto daemon = (*env)->NewDaemon(config);
  ASSERT_TRUE(daemon.ok()) << daemon.status();

  auto search = [&](const std::string &user, std::vector<std::string> groups) {
    return (*env)->SearchTitles("sp", "quarter", user, std::move(groups));
  };
  ASSERT_TRUE((*daemon)->RunOnce().ok());
  EXPECT_EQ(search("ann@x.com", {"fin@x.com"}), (std::set<std::string>{"forecast.txt", "news.txt"}));
  EXPECT_EQ(search("bob@x.com", {}), std::set<std::string>{"news.txt"});
  EXPECT_TRUE(search("eve@other.com", {}).empty());

  ASSERT_TRUE(g.DeleteItem("b!fin", *forecast_id).ok());
  ASSERT_TRUE((*daemon)->RunOnce().ok());
  EXPECT_EQ(search("ann@x.com", {"fin@x.com"}), std::set<std::string>{"news.txt"});
}

}  // namespace
}  // namespace tessera::sync
