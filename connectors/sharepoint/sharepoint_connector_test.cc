#include "connectors/sharepoint/sharepoint_connector.h"

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "connectors/auth/service_account.h"
#include "connectors/framework/checkpoint_store.h"
#include "connectors/framework/in_memory.h"
#include "connectors/framework/sync_runner.h"
#include "connectors/http/retrying_client.h"
#include "connectors/sharepoint/fake_graph_server.h"
#include "connectors/testing/sync_harness.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tessera::connectors::sharepoint {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr char kFin[] = "b!fin";
constexpr char kHr[] = "b!hr";
constexpr char kFinSite[] = "contoso.sharepoint.com,1111,aaaa";
constexpr char kHrSite[] = "contoso.sharepoint.com,2222,bbbb";

FakeGraphPermission User(std::string email) {
  return {.granted_to = FakeIdentity{.kind = "user", .email = std::move(email)}};
}
FakeGraphPermission Group(std::string email) {
  return {.granted_to = FakeIdentity{.kind = "group", .email = std::move(email)}};
}
FakeGraphPermission SiteGroup(std::string name) {
  return {.granted_to = FakeIdentity{.kind = "siteGroup", .display_name = std::move(name)}};
}
FakeGraphPermission Link(std::string scope, std::vector<FakeIdentity> to = {}) {
  return {.link_scope = std::move(scope), .link_recipients = std::move(to)};
}

TEST(MapGraphPermissionsTest, MapsEveryKindAndLinkOnlyIsNotPublic) {
  absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  std::vector<GraphPermission> perms = {
      {.granted_to = GraphIdentity{.user_email = "Ann@X.com"}},
      {.granted_to = GraphIdentity{.group_email = "Fin@X.com"}},
      {.granted_to = GraphIdentity{.site_group_name = "Fin Members"}},
      {.link_scope = "organization"},
      {.link_scope = "anonymous"},
      {.link_scope = "users",
       .link_recipients = {{.user_email = "bob@x.com"}, {.group_email = "eng@x.com"}}},
      {.granted_to = GraphIdentity{.user_email = "temp@x.com"}, .expiration = now - absl::Hours(1)},
      {.granted_to = GraphIdentity{.user_email = "later@x.com"},
       .expiration = now + absl::Hours(1)},
  };
  EXPECT_THAT(MapGraphPermissions(perms, "contoso.sharepoint.com/sites/fin", "X.com", now),
              ElementsAre("domain:x.com", "group:contoso.sharepoint.com/sites/fin/fin members",
                          "group:eng@x.com", "group:fin@x.com", "user:ann@x.com", "user:bob@x.com",
                          "user:later@x.com"));
  // Without a tenant domain an organization link grants nothing; anonymous never does.
  EXPECT_THAT(MapGraphPermissions({{.link_scope = "organization"}, {.link_scope = "anonymous"}},
                                  "s", "", now),
              IsEmpty());
}

class SharePointConnectorTest : public ::testing::Test, protected testing::SyncHarness {
 protected:
  void SetUp() override {
    auto server = FakeGraphServer::Start({.clock = &clock_});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    for (int i = 1; i <= 6; ++i) server_->AcceptToken(absl::StrCat("tok-", i));
    ASSERT_EQ(Open(), absl::OkStatus());
    graph_ = MakeClient(&tokens_, 8);
    download_ = MakeClient(nullptr, 8);
    Seed();
    MakeConnector();
  }

  // Two sites with a library each; a folder with two files in Finance.
  void Seed() {
    server_->AddSite({kFinSite, "Fin", "Finance", "https://contoso.sharepoint.com/sites/Fin"});
    server_->AddSite({kHrSite, "HR", "People", "https://contoso.sharepoint.com/sites/HR"});
    ASSERT_TRUE(server_->AddLibrary({kFin, kFinSite, "Shared Documents"}).ok());
    ASSERT_TRUE(server_->AddLibrary({kHr, kHrSite, "Documents"}).ok());
    ASSERT_TRUE(server_->CreateItem(kFin, {.id = "rep", .name = "Reports", .folder = true}).ok());
    ASSERT_TRUE(server_
                    ->CreateItem(kFin, {.id = "q3",
                                        .name = "Q3.txt",
                                        .parent_id = "rep",
                                        .content = "q3 revenue up",
                                        .permissions = {User("Ann@x.com"), SiteGroup("Fin Members"),
                                                        Link("anonymous")}})
                    .ok());
    ASSERT_TRUE(server_
                    ->CreateItem(kFin, {.id = "q4",
                                        .name = "Q4 plan.txt",
                                        .parent_id = "rep",
                                        .content = "q4 plan",
                                        .permissions = {Link("organization")}})
                    .ok());
    ASSERT_TRUE(
        server_
            ->CreateItem(kHr,
                         {.id = "pol",
                          .name = "policy.html",
                          .mime_type = "text/html",
                          .content = "<html><body><p>Leave policy</p></body></html>",
                          .permissions = {Group("hr@x.com"),
                                          Link("users", {{.kind = "user", .email = "bob@x.com"}})}})
            .ok());
  }

  void MakeConnector(SharePointConnector::Options options = {}, SyncRunner::Options ro = {}) {
    options.base_url = server_->base_url();
    options.page_size = 2;
    options.tenant_domain = "x.com";
    auto connector = SharePointConnector::Create(graph_.get(), download_.get(), &clock_, options);
    ASSERT_TRUE(connector.ok()) << connector.status();
    connector_ = std::move(*connector);
    ro.connector_id = "sharepoint:test";
    runner_ = std::make_unique<SyncRunner>(connector_.get(), &sink_, store_.get(), ro);
  }

  absl::StatusOr<SyncStats> Sync() { return runner_->SyncAll(); }
  absl::StatusOr<SyncStats> SyncFin() { return runner_->SyncScope(kFin); }

  std::map<std::string, ConnectorDocument> Docs() { return sink_.Documents("sharepoint"); }
  std::vector<std::string> Ids() { return IdsOf(Docs()); }
  ConnectorDocument Doc(const std::string &id) { return Docs()[id]; }
  std::string Text(const std::string &id) {
    ConnectorDocument d = Doc(id);
    return d.sections.empty() ? "" : d.sections[0].text;
  }
  std::string Checkpoint(const std::string &drive = kFin) {
    auto cp = store_->Get("sharepoint:test", drive);
    return cp.ok() && cp->has_value() ? **cp : "";
  }

  std::unique_ptr<FakeGraphServer> server_;
  std::unique_ptr<RetryingHttpClient> graph_;
  std::unique_ptr<RetryingHttpClient> download_;
  std::unique_ptr<SharePointConnector> connector_;
  std::unique_ptr<SyncRunner> runner_;
};

TEST_F(SharePointConnectorTest, ValidateConfigAndScopes) {
  EXPECT_TRUE(connector_->ValidateConfig().ok());
  auto scopes = connector_->Scopes();
  ASSERT_TRUE(scopes.ok()) << scopes.status();
  EXPECT_THAT(*scopes, ElementsAre(kFin, kHr, std::string("pages:") + kFinSite,
                                   std::string("pages:") + kHrSite));

  MakeConnector({.site_ids = {kHrSite}});
  EXPECT_THAT(*connector_->Scopes(), ElementsAre(kHr, std::string("pages:") + kHrSite));
  MakeConnector({.site_ids = {kHrSite}, .include_pages = false});
  EXPECT_THAT(*connector_->Scopes(), ElementsAre(kHr));
  MakeConnector({.drive_ids = {kFin}});
  EXPECT_THAT(*connector_->Scopes(), ElementsAre(kFin));
  MakeConnector({.drive_ids = {"b!nope"}});
  EXPECT_EQ(connector_->ValidateConfig().code(), absl::StatusCode::kNotFound);

  // A 401 that a token refresh does not cure.
  MakeConnector();
  server_->InjectFault("/v1.0/sites", GraphFault::k401, 2);
  EXPECT_EQ(connector_->ValidateConfig().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(SharePointConnectorTest, FullSyncDownloadsThroughRedirectAndMapsAcls) {
  auto stats = Sync();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_TRUE(stats->full_sync);
  EXPECT_THAT(Ids(), ElementsAre("b!fin/q3", "b!fin/q4", "b!hr/pol"));
  ConnectorDocument q3 = Doc("b!fin/q3");
  EXPECT_EQ(q3.title, "Q3.txt");
  EXPECT_EQ(q3.uri, "https://contoso.sharepoint.com/sites/Fin/Shared%20Documents/Reports/Q3.txt");
  EXPECT_EQ(Text("b!fin/q3"), "q3 revenue up");
  EXPECT_EQ(q3.metadata["parent_id"], "rep");
  EXPECT_EQ(q3.metadata["site_id"], kFinSite);
  EXPECT_THAT(q3.acl,
              ElementsAre("group:contoso.sharepoint.com/sites/fin/fin members", "user:ann@x.com"));
  EXPECT_THAT(Doc("b!fin/q4").acl, ElementsAre("domain:x.com"));
  EXPECT_THAT(Doc("b!hr/pol").acl, ElementsAre("group:hr@x.com", "user:bob@x.com"));
  EXPECT_THAT(Text("b!hr/pol"), HasSubstr("Leave policy"));
  // The bytes came from the pre-authenticated URL, without a bearer token (the fake refuses one).
  EXPECT_EQ(server_->RequestCount("/download/"), 3);
  for (const FakeHttpRequest &r : server_->http()->requests()) {
    if (absl::StartsWith(r.path, "/download/")) {
      EXPECT_FALSE(r.headers.Contains("Authorization"));
    } else {
      EXPECT_TRUE(r.headers.Contains("Authorization")) << r.path;
    }
  }
  // The checkpoint is the deltaLink.
  auto cp = nlohmann::json::parse(Checkpoint());
  EXPECT_EQ(cp["mode"], "delta");
  EXPECT_THAT(cp["link"].get<std::string>(), HasSubstr("/root/delta?token="));
}

TEST_F(SharePointConnectorTest, IncrementalEditsCreatesRenamesAndDeletes) {
  ASSERT_TRUE(Sync().ok());
  std::string before = Checkpoint();
  ASSERT_TRUE(server_->EditItem(kFin, "q3", "q3 revenue down").ok());
  ASSERT_TRUE(server_->CreateItem(kFin, {.id = "new", .name = "new.txt", .content = "fresh"}).ok());
  ASSERT_TRUE(server_->RenameItem(kFin, "q4", "Q4 final.txt").ok());
  ASSERT_TRUE(server_->CreateItem(kFin, {.id = "tmp", .name = "tmp.txt", .content = "x"}).ok());
  ASSERT_TRUE(server_->DeleteItem(kFin, "tmp").ok());  // never indexed: a no-op delete
  int downloads = server_->RequestCount("/download/");
  auto stats = Sync();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_FALSE(stats->full_sync);
  EXPECT_EQ(server_->RequestCount("/download/") - downloads, 3);  // only what changed
  EXPECT_THAT(Ids(), ElementsAre("b!fin/new", "b!fin/q3", "b!fin/q4", "b!hr/pol"));
  EXPECT_EQ(Text("b!fin/q3"), "q3 revenue down");
  EXPECT_EQ(Doc("b!fin/q4").title, "Q4 final.txt");
  EXPECT_NE(Checkpoint(), before);

  ASSERT_TRUE(server_->DeleteItem(kFin, "q3").ok());
  ASSERT_TRUE(Sync().ok());
  EXPECT_THAT(Ids(), ElementsAre("b!fin/new", "b!fin/q4", "b!hr/pol"));
}

TEST_F(SharePointConnectorTest, PermissionChangesRefreshTheAcl) {
  ASSERT_TRUE(Sync().ok());
  ASSERT_TRUE(server_->SetPermissions(kFin, "q3", {Group("fin@x.com")}).ok());
  auto pid = server_->AddPermission(kFin, "q4", User("carl@x.com"));
  ASSERT_TRUE(pid.ok());
  ASSERT_TRUE(Sync().ok());
  EXPECT_THAT(Doc("b!fin/q3").acl, ElementsAre("group:fin@x.com"));
  EXPECT_THAT(Doc("b!fin/q4").acl, ElementsAre("domain:x.com", "user:carl@x.com"));
  ASSERT_TRUE(server_->RemovePermission(kFin, "q4", *pid).ok());
  ASSERT_TRUE(server_->SetPermissions(kFin, "q3", {Link("anonymous")}).ok());
  ASSERT_TRUE(Sync().ok());
  EXPECT_THAT(Doc("b!fin/q4").acl, ElementsAre("domain:x.com"));
  EXPECT_THAT(Doc("b!fin/q3").acl, IsEmpty());  // link-only: nobody, not the public
}

TEST_F(SharePointConnectorTest, DeletedFolderDeletesItsFiles) {
  ASSERT_TRUE(Sync().ok());
  ASSERT_TRUE(
      server_->CreateItem(kFin, {.id = "sub", .name = "Sub", .folder = true, .parent_id = "rep"})
          .ok());
  ASSERT_TRUE(
      server_
          ->CreateItem(kFin,
                       {.id = "deep", .name = "deep.txt", .parent_id = "sub", .content = "deep"})
          .ok());
  ASSERT_TRUE(Sync().ok());
  EXPECT_THAT(Ids(), ElementsAre("b!fin/deep", "b!fin/q3", "b!fin/q4", "b!hr/pol"));
  ASSERT_TRUE(server_->DeleteItem(kFin, "rep").ok());  // Graph reports only "rep"
  auto stats = Sync();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->pruned, 0);  // the tracked tree placed them
  EXPECT_THAT(Ids(), ElementsAre("b!hr/pol"));
}

TEST_F(SharePointConnectorTest, DeletedFolderAfterRestartIsPruned) {
  ASSERT_TRUE(Sync().ok());
  ASSERT_TRUE(server_->DeleteItem(kFin, "rep").ok());
  MakeConnector();  // a new process: no tree in memory
  auto stats = Sync();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_THAT(Ids(), ElementsAre("b!hr/pol"));
}

TEST_F(SharePointConnectorTest, MovedOrRenamedFolderRefreshesItsFilesUris) {
  ASSERT_TRUE(Sync().ok());
  ASSERT_TRUE(server_->CreateItem(kFin, {.id = "arch", .name = "Archive", .folder = true}).ok());
  ASSERT_TRUE(Sync().ok());
  ASSERT_TRUE(server_->MoveItem(kFin, "rep", "arch").ok());
  ASSERT_TRUE(Sync().ok());
  EXPECT_EQ(Doc("b!fin/q3").uri,
            "https://contoso.sharepoint.com/sites/Fin/Shared%20Documents/Archive/Reports/Q3.txt");
  EXPECT_EQ(Doc("b!fin/q3").uri, server_->WebUrl(kFin, "q3"));
  // After a restart too (the tree is rebuilt from a snapshot).
  ASSERT_TRUE(server_->RenameItem(kFin, "arch", "Old").ok());
  MakeConnector();
  ASSERT_TRUE(Sync().ok());
  EXPECT_EQ(Doc("b!fin/q4").uri, server_->WebUrl(kFin, "q4"));
  EXPECT_THAT(Doc("b!fin/q4").uri, HasSubstr("/Old/Reports/"));
}

TEST_F(SharePointConnectorTest, ExpiredDeltaTokenResyncsAndPrunes) {
  ASSERT_TRUE(Sync().ok());
  ASSERT_TRUE(server_->EditItem(kFin, "q4", "q4 revised").ok());
  ASSERT_TRUE(server_->DeleteItem(kFin, "q3").ok());
  server_->ExpireDeltaTokens(kFin);
  auto stats = SyncFin();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_TRUE(stats->full_sync);
  EXPECT_THAT(Ids(), ElementsAre("b!fin/q4", "b!hr/pol"));
  EXPECT_EQ(Text("b!fin/q4"), "q4 revised");
  // And incremental again afterwards.
  ASSERT_TRUE(server_->EditItem(kFin, "q4", "q4 again").ok());
  stats = SyncFin();
  ASSERT_TRUE(stats.ok());
  EXPECT_FALSE(stats->full_sync);
  EXPECT_EQ(Text("b!fin/q4"), "q4 again");
}

TEST_F(SharePointConnectorTest, EveryFaultIsRidden) {
  ASSERT_TRUE(Sync().ok());
  const std::vector<GraphFault> faults = {GraphFault::k429RetryAfterSeconds,
                                          GraphFault::k429RetryAfterDate,
                                          GraphFault::k503,
                                          GraphFault::k500,
                                          GraphFault::kDisconnect,
                                          GraphFault::kEmptyPage,
                                          GraphFault::kDuplicate,
                                          GraphFault::kRepeatPage};
  for (GraphFault fault : faults) {
    SCOPED_TRACE(static_cast<int>(fault));
    std::string text = absl::StrCat("edit ", static_cast<int>(fault));
    ASSERT_TRUE(server_->EditItem(kFin, "q3", text).ok());
    ASSERT_TRUE(server_->CreateItem(kFin, {.name = "n.txt", .content = text}).ok());
    server_->InjectFault("/v1.0/drives/b!fin/root/delta", fault);
    server_->InjectFault("/download/", fault == GraphFault::kEmptyPage ? GraphFault::k503 : fault);
    server_->InjectFault("/v1.0/drives/b!fin/items/", fault);
    auto stats = SyncFin();
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(Text("b!fin/q3"), text);
  }
  EXPECT_GE(clock_.TotalSlept(), absl::Seconds(3));  // Retry-After honoured (simulated)
  EXPECT_EQ(Ids().size(), 3 + faults.size());
}

TEST_F(SharePointConnectorTest, PersistentThrottlingSurfacesAndKeepsTheCheckpoint) {
  ASSERT_TRUE(Sync().ok());
  std::string before = Checkpoint();
  ASSERT_TRUE(server_->EditItem(kFin, "q3", "later").ok());
  // Every attempt the retry policy allows (8) is throttled: the sync gives up, it does not hang.
  server_->InjectFault("/v1.0/drives/b!fin/root/delta", GraphFault::k429RetryAfterSeconds, 8);
  auto stats = SyncFin();
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kResourceExhausted) << stats.status();
  EXPECT_EQ(Checkpoint(), before);
  ASSERT_TRUE(SyncFin().ok());
  EXPECT_EQ(Text("b!fin/q3"), "later");
}

TEST_F(SharePointConnectorTest, ExpiredAccessTokenIsRefreshedOnce) {
  ASSERT_TRUE(Sync().ok());
  ASSERT_TRUE(server_->EditItem(kFin, "q3", "after refresh").ok());
  server_->ExpireToken("tok-1");
  ASSERT_TRUE(Sync().ok());
  EXPECT_EQ(tokens_.generation(), 2);
  EXPECT_EQ(Text("b!fin/q3"), "after refresh");
  // A 401 the refresh cannot cure surfaces UNAUTHENTICATED.
  ASSERT_TRUE(server_->EditItem(kFin, "q3", "x").ok());
  server_->InjectFault("/v1.0/", GraphFault::k401, 2);
  EXPECT_EQ(SyncFin().status().code(), absl::StatusCode::kUnauthenticated);
}

// The production wiring: a Microsoft client-credentials TokenSource (client secret) behind the
// Graph client; a token that expires mid-sync is fetched again from the token endpoint.
TEST_F(SharePointConnectorTest, ClientCredentialsTokenSourceEndToEnd) {
  int issued = 0;
  server_->http()->Handle("POST", "/tenant-1/oauth2/v2.0/token", [&](const FakeHttpRequest &r) {
    FakeHttpResponse resp;
    resp.headers.Add("Content-Type", "application/json");
    if (!absl::StrContains(r.body, "grant_type=client_credentials") ||
        !absl::StrContains(r.body, "client_secret=S3CRET")) {
      resp.status = 401;
      resp.body = R"({"error":"invalid_client","error_description":"AADSTS7000215"})";
      return resp;
    }
    resp.body = absl::StrCat(R"({"token_type":"Bearer","expires_in":3599,"access_token":"ms-)",
                             ++issued, R"("})");
    return resp;
  });
  server_->AcceptToken("ms-1");
  server_->AcceptToken("ms-2");
  MicrosoftClientCredentialsTokenSource::Options mo;
  mo.tenant_id = "tenant-1";
  mo.client_id = "app-id";
  mo.client_secret = "S3CRET";
  mo.token_url = server_->http()->url() + "/tenant-1/oauth2/v2.0/token";
  auto tokens = MicrosoftClientCredentialsTokenSource::Create(transport_.get(), &clock_, mo);
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  RetryingHttpClient::Options graph_options;
  graph_options.token_source = tokens->get();
  graph_options.jitter = [] { return 0.5; };
  graph_ = std::make_unique<RetryingHttpClient>(transport_.get(), &clock_, graph_options);
  MakeConnector();
  ASSERT_TRUE(Sync().ok());
  EXPECT_EQ(Ids().size(), 3u);
  ASSERT_TRUE(server_->EditItem(kFin, "q3", "new token").ok());
  server_->ExpireToken("ms-1");
  ASSERT_TRUE(Sync().ok());
  EXPECT_EQ(issued, 2);
  EXPECT_EQ(Text("b!fin/q3"), "new token");
}

TEST_F(SharePointConnectorTest, CrashMidRoundReplaysTheWholeRound) {
  ASSERT_TRUE(Sync().ok());
  std::string before = Checkpoint();
  ASSERT_TRUE(server_->DeleteItem(kFin, "q3").ok());  // on the first page
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(server_
                    ->CreateItem(kFin, {.name = absl::StrCat("c", i, ".txt"),
                                        .content = absl::StrCat("c", i)})
                    .ok());
  }
  SyncRunner::Options crashing;
  int pages = 0;
  crashing.before_commit = [&](const ChangePage &p) {
    // Intermediate pages never advance the stored checkpoint past the round's start.
    if (!p.deletes.empty() || pages > 0) {
      EXPECT_EQ(p.checkpoint, before);
    }
    return ++pages == 2 ? absl::AbortedError("killed") : absl::OkStatus();
  };
  MakeConnector({}, crashing);
  EXPECT_FALSE(SyncFin().ok());
  EXPECT_EQ(Checkpoint(), before);
  MakeConnector();
  ASSERT_TRUE(SyncFin().ok());
  EXPECT_EQ(Ids().size(), 6u);
  EXPECT_EQ(Docs().count("b!fin/q3"), 0u);
}

TEST_F(SharePointConnectorTest, FetchDocumentAndSlimListing) {
  auto doc = connector_->FetchDocument("b!fin/q3");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->title, "Q3.txt");
  EXPECT_EQ(connector_->FetchDocument("b!fin/nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(connector_->FetchDocument("b!fin/rep").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(connector_->FetchDocument("junk").status().code(), absl::StatusCode::kInvalidArgument);
  auto slim = connector_->SlimListing(kFin);
  ASSERT_TRUE(slim.ok()) << slim.status();
  ASSERT_EQ(slim->size(), 2u);
  EXPECT_EQ((*slim)[0].id, "b!fin/q3");
  EXPECT_THAT((*slim)[1].acl, ElementsAre("domain:x.com"));
}

TEST_F(SharePointConnectorTest, UnreadableAndOversizedFilesAreFailuresNotErrors) {
  ASSERT_TRUE(server_
                  ->CreateItem(kHr, {.id = "bad",
                                     .name = "broken.docx",
                                     .mime_type = "application/vnd.openxmlformats-officedocument."
                                                  "wordprocessingml.document",
                                     .content = "not a zip"})
                  .ok());
  ASSERT_TRUE(
      server_->CreateItem(kHr, {.id = "big", .name = "big.txt", .content = std::string(2048, 'x')})
          .ok());
  MakeConnector({.max_file_bytes = 1024});
  auto stats = Sync();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->failed, 2);
  std::set<std::string> failed;
  for (const DocumentFailure &f : stats->failures) failed.insert(f.id);
  EXPECT_THAT(failed, UnorderedElementsAre("b!hr/bad", "b!hr/big"));
  EXPECT_THAT(Ids(), ElementsAre("b!fin/q3", "b!fin/q4", "b!hr/pol"));
  MakeConnector({.drive_ids = {kHr}});
  EXPECT_EQ(connector_->FetchDocument("b!fin/q3").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SharePointConnectorTest, RejectsBadOptionsAndCheckpoints) {
  EXPECT_FALSE(SharePointConnector::Create(graph_.get(), nullptr, &clock_, {}).ok());
  EXPECT_FALSE(
      SharePointConnector::Create(graph_.get(), download_.get(), &clock_, {.page_size = 0}).ok());
  EXPECT_FALSE(
      SharePointConnector::Create(graph_.get(), download_.get(), &clock_, {.base_url = "ftp://x"})
          .ok());
  auto noop = [](ChangePage) { return absl::OkStatus(); };
  EXPECT_EQ(connector_->IncrementalSync(kFin, "garbage", noop).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(connector_
                ->IncrementalSync(
                    kFin, R"({"drive":"b!fin","mode":"delta","link":"https://evil/x"})", noop)
                .code(),
            absl::StatusCode::kInvalidArgument);
}

// --- Site pages ----------------------------------------------------------------

const std::string kFinPages = std::string("pages:") + kFinSite;
std::string PageId(const std::string &page) { return kFinPages + "/" + page; }

TEST_F(SharePointConnectorTest, SitePagesAreDocumentsWithTheLibraryRootAcl) {
  ASSERT_TRUE(
      server_->SetRootPermissions(kFin, {SiteGroup("Fin Members"), User("Ann@x.com")}).ok());
  ASSERT_TRUE(server_
                  ->CreatePage(kFinSite, {.id = "home",
                                          .name = "Home.aspx",
                                          .title = "Finance home",
                                          .web_parts = {"<h2>Budget</h2><p>The budget is "
                                                        "<b>approved</b>.</p>",
                                                        "<p>Second column</p>"}})
                  .ok());
  auto stats = Sync();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_THAT(Ids(), ElementsAre("b!fin/q3", "b!fin/q4", "b!hr/pol", PageId("home")));
  ConnectorDocument home = Doc(PageId("home"));
  EXPECT_EQ(home.title, "Finance home");
  EXPECT_EQ(home.uri, "https://contoso.sharepoint.com/sites/Fin/SitePages/Home.aspx");
  EXPECT_EQ(home.mime_type, "text/html");
  EXPECT_EQ(home.metadata["site_id"], kFinSite);
  EXPECT_EQ(home.metadata["page_name"], "Home.aspx");
  std::string text;
  for (const DocumentSection &sec : home.sections) absl::StrAppend(&text, sec.text, "\n");
  EXPECT_THAT(text, HasSubstr("The budget is approved."));
  EXPECT_THAT(text, HasSubstr("Second column"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("<p>")));
  EXPECT_THAT(home.acl,
              ElementsAre("group:contoso.sharepoint.com/sites/fin/fin members", "user:ann@x.com"));
  auto cp = nlohmann::json::parse(Checkpoint(kFinPages));
  EXPECT_EQ(cp["mode"], "pages");

  // Nothing changed: the listing is read, no page is fetched again.
  const std::string page_path = absl::StrCat("/v1.0/sites/", kFinSite, "/pages/");
  int fetched = server_->RequestCount(page_path);
  ASSERT_TRUE(Sync().ok());
  EXPECT_EQ(server_->RequestCount(page_path), fetched);

  // Edits and new pages are picked up, deletions follow without a prune.
  ASSERT_TRUE(server_->EditPage(kFinSite, "home", "", {"<p>Budget revised</p>"}).ok());
  ASSERT_TRUE(
      server_->CreatePage(kFinSite, {.id = "news", .title = "News", .web_parts = {"<p>hi</p>"}})
          .ok());
  ASSERT_TRUE(server_->CreatePage(kFinSite, {.id = "old", .title = "Old"}).ok());
  stats = Sync();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(server_->RequestCount(page_path), fetched + 3);
  EXPECT_THAT(Doc(PageId("home")).sections[0].text, HasSubstr("Budget revised"));
  EXPECT_EQ(Doc(PageId("old")).sections[0].text, "Old");  // no web parts: the title
  ASSERT_TRUE(server_->DeletePage(kFinSite, "old").ok());
  stats = Sync();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->pruned, 0);
  EXPECT_EQ(stats->deleted, 1);
  EXPECT_EQ(Docs().count(PageId("old")), 0u);

  // A change of the library root's permissions refreshes every page's ACL.
  ASSERT_TRUE(server_->SetRootPermissions(kFin, {Group("fin@x.com")}).ok());
  ASSERT_TRUE(Sync().ok());
  EXPECT_THAT(Doc(PageId("home")).acl, ElementsAre("group:fin@x.com"));
  EXPECT_THAT(Doc(PageId("news")).acl, ElementsAre("group:fin@x.com"));

  // FetchDocument and SlimListing know pages too.
  auto doc = connector_->FetchDocument(PageId("news"));
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->title, "News");
  EXPECT_EQ(connector_->FetchDocument(PageId("old")).status().code(), absl::StatusCode::kNotFound);
  auto slim = connector_->SlimListing(kFinPages);
  ASSERT_TRUE(slim.ok()) << slim.status();
  ASSERT_EQ(slim->size(), 2u);
  EXPECT_EQ((*slim)[0].id, PageId("home"));
  EXPECT_THAT((*slim)[0].acl, ElementsAre("group:fin@x.com"));
  // A periodic prune keeps them.
  auto pruned = runner_->Prune();
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(*pruned, 0);
}

TEST_F(SharePointConnectorTest, PagesListingPagesAndFaults) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(server_
                    ->CreatePage(kHrSite, {.id = absl::StrCat("p", i),
                                           .title = absl::StrCat("Page ", i),
                                           .web_parts = {absl::StrCat("<p>body ", i, "</p>")}})
                    .ok());
  }
  server_->InjectFault(absl::StrCat("/v1.0/sites/", kHrSite, "/pages"),
                       GraphFault::k429RetryAfterSeconds, 2);
  server_->InjectFault(absl::StrCat("/v1.0/sites/", kHrSite, "/pages/p3"), GraphFault::k503, 1);
  auto stats = runner_->SyncScope(std::string("pages:") + kHrSite);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->pages, 3);  // 5 pages, 2 a listing page
  EXPECT_EQ(Ids().size(), 5u);
  // Bad checkpoints are refused.
  auto noop = [](ChangePage) { return absl::OkStatus(); };
  EXPECT_EQ(connector_->IncrementalSync(std::string("pages:") + kHrSite, "{}", noop).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(connector_
                ->IncrementalSync(std::string("pages:") + kHrSite,
                                  R"({"site":"other","mode":"pages"})", noop)
                .code(),
            absl::StatusCode::kInvalidArgument);
  // With drive_ids there are no page scopes, and page ids are not served.
  MakeConnector({.drive_ids = {kHr}});
  EXPECT_EQ(connector_->FetchDocument(std::string("pages:") + kHrSite + "/p1").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace tessera::connectors::sharepoint
