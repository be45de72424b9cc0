#include "connectors/drive/drive_connector.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "connectors/auth/token_source.h"
#include "connectors/drive/fake_drive_server.h"
#include "connectors/framework/checkpoint_store.h"
#include "connectors/framework/in_memory.h"
#include "connectors/framework/sync_runner.h"
#include "connectors/http/retrying_client.h"
#include "connectors/testing/sync_harness.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::connectors::drive {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

TEST(MapPermissionsTest, LinkOnlyIsNotPublicAndExpiredIsIgnored) {
  absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  std::vector<DrivePermission> perms = {
      {.type = "user", .email = "Ann@X.com"},
      {.type = "group", .email = "fin@x.com"},
      {.type = "domain", .domain = "x.com"},
      {.type = "domain", .domain = "y.com", .allow_file_discovery = false},
      {.type = "anyone", .allow_file_discovery = false},
      {.type = "user", .email = "gone@x.com", .deleted = true},
      {.type = "user", .email = "temp@x.com", .expiration = now - absl::Hours(1)},
      {.type = "user", .email = "later@x.com", .expiration = now + absl::Hours(1)},
  };
  EXPECT_THAT(MapPermissions(perms, now),
              ElementsAre("domain:x.com", "group:fin@x.com", "user:ann@x.com", "user:later@x.com"));
  EXPECT_THAT(MapPermissions({{.type = "anyone"}}, now), ElementsAre("anyone"));
}

class DriveConnectorTest : public ::testing::Test, protected testing::SyncHarness {
 protected:
  void SetUp() override {
    FakeDriveServer::Options server_options;
    server_options.user_groups = {"fin@x.com"};
    server_options.clock = &clock_;
    auto server = FakeDriveServer::Start(server_options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    server_->AcceptToken("tok-1");
    ASSERT_EQ(Open(), absl::OkStatus());
    // FaultCatalogue stacks seven faults on one request.
    client_ = MakeClient(&tokens_, 8);
  }

  void MakeConnector(DriveConnector::Options options = {}) {
    options.base_url = server_->base_url();
    options.page_size = 2;
    auto connector = DriveConnector::Create(client_.get(), &clock_, options);
    ASSERT_TRUE(connector.ok()) << connector.status();
    connector_ = std::move(*connector);
    SyncRunner::Options runner_options;
    runner_options.connector_id = "gdrive:test";
    runner_ = std::make_unique<SyncRunner>(connector_.get(), &sink_, store_.get(), runner_options);
  }

  absl::StatusOr<SyncStats> Sync() { return runner_->SyncScope("drive"); }

  std::map<std::string, ConnectorDocument> Docs() { return sink_.Documents("gdrive"); }
  std::vector<std::string> Ids() { return IdsOf(Docs()); }
  std::string Text(const std::string &id) {
    auto docs = Docs();
    auto it = docs.find(id);
    if (it == docs.end() || it->second.sections.empty()) return "";
    return it->second.sections[0].text;
  }
  std::optional<std::string> Checkpoint() { return *store_->Get("gdrive:test", "drive"); }

  // A small company: My Drive files, a shared drive, something shared with ann.
  void Seed() {
    server_->AddSharedDrive({"0AFin", "Finance", {{.type = "group", .email = "fin@x.com"}}});
    ASSERT_TRUE(server_
                    ->CreateFile({.id = "doc",
                                  .name = "Plan",
                                  .mime_type = std::string(kMimeGoogleDoc),
                                  .content = "Q3 plan",
                                  .permissions = {{.type = "domain", .domain = "x.com"}}})
                    .ok());
    ASSERT_TRUE(server_
                    ->CreateFile({.id = "sheet",
                                  .name = "Budget",
                                  .mime_type = std::string(kMimeGoogleSheet),
                                  .drive_id = "0AFin",
                                  .content = "a,b\n1,2\n"})
                    .ok());
    ASSERT_TRUE(
        server_
            ->CreateFile({.id = "slides",
                          .name = "Deck",
                          .mime_type = std::string(kMimeGoogleSlides),
                          .content = "Slide one",
                          .permissions = {{.type = "anyone", .allow_file_discovery = false}}})
            .ok());
    ASSERT_TRUE(server_
                    ->CreateFile({.id = "txt",
                                  .name = "notes.txt",
                                  .mime_type = "text/plain",
                                  .owner = "bob@x.com",
                                  .content = "from bob",
                                  .permissions = {{.type = "user", .email = "ann@x.com"}}})
                    .ok());
    ASSERT_TRUE(
        server_
            ->CreateFile(
                {.id = "folder", .name = "Stuff", .mime_type = std::string(kMimeGoogleFolder)})
            .ok());
  }

  std::unique_ptr<FakeDriveServer> server_;
  std::unique_ptr<RetryingHttpClient> client_;
  std::unique_ptr<DriveConnector> connector_;
  std::unique_ptr<SyncRunner> runner_;
};

TEST_F(DriveConnectorTest, ValidateConfig) {
  MakeConnector();
  EXPECT_TRUE(connector_->ValidateConfig().ok());
  server_->AcceptToken("someone-else");
  server_->ExpireToken("tok-1");
  MakeConnector();
  // 401, one refresh (tok-2, also refused), then UNAUTHENTICATED surfaces.
  EXPECT_EQ(connector_->ValidateConfig().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(DriveConnectorTest, FullSyncExportsDownloadsAndMapsAcls) {
  Seed();
  MakeConnector();
  auto stats = Sync();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_TRUE(stats->full_sync);
  EXPECT_EQ(stats->failed, 0);
  EXPECT_THAT(Ids(), ElementsAre("doc", "sheet", "slides", "txt"));
  auto docs = Docs();
  EXPECT_EQ(Text("doc"), "Q3 plan");
  EXPECT_THAT(Text("sheet"), HasSubstr("1,2"));
  EXPECT_EQ(Text("slides"), "Slide one");
  EXPECT_EQ(Text("txt"), "from bob");
  EXPECT_THAT(docs["doc"].acl, ElementsAre("domain:x.com", "user:ann@x.com"));
  // Shared drive: ACL through permissions.list (inherited group).
  EXPECT_THAT(docs["sheet"].acl, ElementsAre("group:fin@x.com"));
  EXPECT_GT(server_->RequestCount("/drive/v3/files/sheet/permissions"), 0);
  // Link-only sharing is not public.
  EXPECT_THAT(docs["slides"].acl, ElementsAre("user:ann@x.com"));
  EXPECT_THAT(docs["txt"].acl, ElementsAre("user:ann@x.com", "user:bob@x.com"));
  EXPECT_EQ(docs["doc"].title, "Plan");
  EXPECT_THAT(docs["doc"].uri, HasSubstr("doc"));
  EXPECT_EQ(docs["sheet"].metadata["drive_id"], "0AFin");
  ASSERT_TRUE(Checkpoint().has_value());
  EXPECT_THAT(*Checkpoint(), HasSubstr("changes"));
}

TEST_F(DriveConnectorTest, IncrementalChangesPropagate) {
  Seed();
  MakeConnector();
  ASSERT_TRUE(Sync().ok());
  ASSERT_TRUE(server_->EditFile("doc", "Q4 plan").ok());
  ASSERT_TRUE(server_->TrashFile("slides").ok());
  ASSERT_TRUE(server_->DeleteFile("sheet").ok());
  ASSERT_TRUE(server_
                  ->CreateFile({.id = "new",
                                .name = "new.md",
                                .mime_type = "text/markdown",
                                .content = "# Hello\nworld"})
                  .ok());
  // ACL-only change.
  ASSERT_TRUE(server_->Share("new", {.type = "group", .email = "eng@x.com"}).ok());
  auto stats = Sync();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_FALSE(stats->full_sync);
  EXPECT_EQ(Text("doc"), "Q4 plan");
  EXPECT_THAT(Ids(), ::testing::Not(::testing::Contains("slides")));
  EXPECT_THAT(Ids(), ::testing::Not(::testing::Contains("sheet")));
  EXPECT_THAT(Docs()["new"].acl, ElementsAre("group:eng@x.com", "user:ann@x.com"));
  // Nothing changed: a further sync is a no-op.
  stats = Sync();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->seen, 0);
}

TEST_F(DriveConnectorTest, AccessLostIsADelete) {
  ASSERT_TRUE(
      server_
          ->CreateFile({.id = "txt",
                        .name = "n.txt",
                        .owner = "bob@x.com",
                        .content = "x",
                        .permissions = {{.id = "p-ann", .type = "user", .email = "ann@x.com"}}})
          .ok());
  MakeConnector();
  ASSERT_TRUE(Sync().ok());
  EXPECT_THAT(Ids(), ElementsAre("txt"));
  ASSERT_TRUE(server_->Unshare("txt", "p-ann").ok());
  auto stats = Sync();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->deleted, 1);
  EXPECT_THAT(Ids(), IsEmpty());
}

TEST_F(DriveConnectorTest, MovedIntoAndOutOfFolderScope) {
  ASSERT_TRUE(
      server_->CreateFile({.id = "in", .name = "In", .mime_type = std::string(kMimeGoogleFolder)})
          .ok());
  ASSERT_TRUE(
      server_->CreateFile({.id = "out", .name = "Out", .mime_type = std::string(kMimeGoogleFolder)})
          .ok());
  ASSERT_TRUE(server_
                  ->CreateFile({.id = "sub",
                                .name = "Sub",
                                .mime_type = std::string(kMimeGoogleFolder),
                                .parents = {"out"}})
                  .ok());
  // Old file, created long ago, outside the synced folder.
  server_->SetTouchTime(absl::FromUnixSeconds(1'500'000'000));
  ASSERT_TRUE(
      server_
          ->CreateFile({.id = "old", .name = "old.txt", .parents = {"out"}, .content = "old news"})
          .ok());
  ASSERT_TRUE(
      server_->CreateFile({.id = "deep", .name = "deep.txt", .parents = {"sub"}, .content = "deep"})
          .ok());
  server_->SetTouchTime(std::nullopt);
  ASSERT_TRUE(
      server_->CreateFile({.id = "a", .name = "a.txt", .parents = {"in"}, .content = "a"}).ok());
  MakeConnector({.folder_ids = {"in"}});
  ASSERT_TRUE(Sync().ok());
  EXPECT_THAT(Ids(), ElementsAre("a"));

  // Move the old file in: its modifiedTime is old, the change feed has it.
  ASSERT_TRUE(server_->MoveFile("old", {"in"}, "").ok());
  // Move a whole folder in: its children have no changes of their own.
  ASSERT_TRUE(server_->MoveFile("sub", {"in"}, "").ok());
  ASSERT_TRUE(Sync().ok());
  EXPECT_THAT(Ids(), ElementsAre("a", "deep", "old"));
  EXPECT_EQ(Text("old"), "old news");

  ASSERT_TRUE(server_->MoveFile("a", {"out"}, "").ok());
  ASSERT_TRUE(Sync().ok());
  EXPECT_THAT(Ids(), ElementsAre("deep", "old"));
}

TEST_F(DriveConnectorTest, ShortcutsResolveToTargets) {
  ASSERT_TRUE(server_
                  ->CreateFile({.id = "target",
                                .name = "t.txt",
                                .owner = "bob@x.com",
                                .content = "target text",
                                .permissions = {{.type = "user", .email = "ann@x.com"},
                                                {.type = "group", .email = "fin@x.com"}}})
                  .ok());
  ASSERT_TRUE(server_
                  ->CreateFile({.id = "sc",
                                .name = "Shortcut to t",
                                .mime_type = std::string(kMimeGoogleShortcut),
                                .shortcut_target_id = "target"})
                  .ok());
  ASSERT_TRUE(server_
                  ->CreateFile({.id = "dangling",
                                .name = "dangling",
                                .mime_type = std::string(kMimeGoogleShortcut),
                                .shortcut_target_id = "nowhere"})
                  .ok());
  MakeConnector({.include_shared_with_me = false});  // the target itself is out of scope
  auto stats = Sync();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_THAT(Ids(), ElementsAre("sc"));
  auto docs = Docs();
  EXPECT_EQ(Text("sc"), "target text");
  EXPECT_THAT(docs["sc"].acl, ElementsAre("group:fin@x.com", "user:ann@x.com", "user:bob@x.com"));
  EXPECT_EQ(docs["sc"].metadata["shortcut_target_id"], "target");
  auto fetched = connector_->FetchDocument("sc");
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(fetched->sections[0].text, "target text");
  EXPECT_EQ(connector_->FetchDocument("dangling").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(DriveConnectorTest, FaultCatalogue) {
  Seed();
  MakeConnector();
  ASSERT_TRUE(Sync().ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(server_
                    ->CreateFile({.id = absl::StrCat("n", i),
                                  .name = absl::StrCat("n", i),
                                  .content = absl::StrCat("text ", i)})
                    .ok());
  }
  const std::string changes = "/drive/v3/changes";
  server_->InjectFault(changes, DriveFault::k429RetryAfterSeconds);
  server_->InjectFault(changes, DriveFault::k429RetryAfterDate);
  server_->InjectFault(changes, DriveFault::k403UserRateLimit);
  server_->InjectFault(changes, DriveFault::k403RateLimit);
  server_->InjectFault(changes, DriveFault::k503);
  server_->InjectFault(changes, DriveFault::kDisconnect);
  server_->InjectFault(changes, DriveFault::kEmptyPage);
  server_->InjectFault(changes, DriveFault::kDuplicate);
  server_->InjectFault("/drive/v3/files/n3", DriveFault::k500);
  // The access token expires mid-sync: 401, refresh once, go on.
  server_->AcceptToken("tok-2");
  server_->InjectFault("/drive/v3/files/n2", DriveFault::kDisconnect);
  absl::Duration slept_before = clock_.TotalSlept();
  server_->ExpireToken("tok-1");
  auto stats = Sync();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(tokens_.generation(), 2);
  EXPECT_THAT(Ids(), ElementsAre("doc", "n0", "n1", "n2", "n3", "n4", "sheet", "slides", "txt"));
  EXPECT_EQ(Text("n3"), "text 3");
  EXPECT_EQ(sink_.UpsertCounts()["n0"],
            1);  // duplicates collapsed within the page
  EXPECT_GE(clock_.TotalSlept() - slept_before,
            absl::Seconds(4));  // Retry-After honoured
}

TEST_F(DriveConnectorTest, PersistentThrottlingSurfacesAndKeepsCheckpoint) {
  Seed();
  MakeConnector();
  ASSERT_TRUE(Sync().ok());
  std::string before = *Checkpoint();
  ASSERT_TRUE(server_->EditFile("doc", "changed").ok());
  server_->InjectFault("/drive/v3/changes", DriveFault::k429RetryAfterSeconds, 1000);
  auto stats = Sync();
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(*Checkpoint(), before);
  EXPECT_EQ(Text("doc"), "Q3 plan");
}

TEST_F(DriveConnectorTest, ExpiredPageTokenTriggersFullResyncAndPrune) {
  for (int status : {410, 400}) {
    SCOPED_TRACE(status);
    ASSERT_TRUE(
        server_->CreateFile({.id = absl::StrCat("keep", status), .name = "k", .content = "keep"})
            .ok());
    ASSERT_TRUE(
        server_->CreateFile({.id = absl::StrCat("gone", status), .name = "g", .content = "gone"})
            .ok());
    MakeConnector();
    ASSERT_TRUE(Sync().ok());
    ASSERT_TRUE(Docs().count(absl::StrCat("gone", status)));
    ASSERT_TRUE(server_->DeleteFile(absl::StrCat("gone", status)).ok());
    server_->ExpirePageTokens(status);  // the delete event is lost with the cursor
    auto stats = Sync();
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_TRUE(stats->full_sync);
    EXPECT_GE(stats->pruned, 1);
    EXPECT_FALSE(Docs().count(absl::StrCat("gone", status)));
    EXPECT_TRUE(Docs().count(absl::StrCat("keep", status)));
    // And the feed works again from the fresh token.
    ASSERT_TRUE(server_->EditFile(absl::StrCat("keep", status), "kept").ok());
    stats = Sync();
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_FALSE(stats->full_sync);
    EXPECT_EQ(Text(absl::StrCat("keep", status)), "kept");
  }
}

TEST_F(DriveConnectorTest, UnparseableFileIsCountedAndSyncGoesOn) {
  ASSERT_TRUE(server_
                  ->CreateFile({.id = "bad",
                                .name = "broken.pdf",
                                .mime_type = "application/pdf",
                                .content = "%PDF-1.7 garbage"})
                  .ok());
  ASSERT_TRUE(server_
                  ->CreateFile({.id = "img",
                                .name = "x.png",
                                .mime_type = "image/png",
                                .content = std::string("\x89PNG\r\n\x1a\n\0\0", 10)})
                  .ok());
  ASSERT_TRUE(server_->CreateFile({.id = "good", .name = "good.txt", .content = "fine"}).ok());
  MakeConnector();
  auto stats = Sync();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->failed, 2);
  EXPECT_EQ(stats->indexed, 1);
  std::vector<std::string> failed;
  for (const auto &f : stats->failures) failed.push_back(f.id);
  EXPECT_THAT(failed, UnorderedElementsAre("bad", "img"));
  EXPECT_THAT(Ids(), ElementsAre("good"));
}

TEST_F(DriveConnectorTest, SlimListingAndPrune) {
  Seed();
  MakeConnector();
  ASSERT_TRUE(Sync().ok());
  auto slim = connector_->SlimListing("drive");
  ASSERT_TRUE(slim.ok()) << slim.status();
  std::vector<std::string> ids;
  for (const auto &s : *slim) ids.push_back(s.id);
  EXPECT_THAT(ids, UnorderedElementsAre("doc", "sheet", "slides", "txt"));
  ASSERT_TRUE(sink_.Upsert("gdrive", {{.id = "stale"}}).ok());
  auto pruned = runner_->Prune();
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(*pruned, 1);
  EXPECT_THAT(Ids(), ElementsAre("doc", "sheet", "slides", "txt"));
}

TEST_F(DriveConnectorTest, ResumesMidListingAfterCrash) {
  Seed();
  MakeConnector();
  SyncRunner::Options crashing;
  crashing.connector_id = "gdrive:test";
  int pages = 0;
  crashing.before_commit = [&](const ChangePage &) {
    return ++pages == 2 ? absl::AbortedError("crash") : absl::OkStatus();
  };
  SyncRunner crashy(connector_.get(), &sink_, store_.get(), crashing);
  EXPECT_FALSE(crashy.SyncScope("drive").ok());
  ASSERT_TRUE(Checkpoint().has_value());
  EXPECT_THAT(*Checkpoint(), HasSubstr("list"));
  ASSERT_TRUE(server_->CreateFile({.id = "during", .name = "d.txt", .content = "d"}).ok());
  auto stats = Sync();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_THAT(Ids(), ElementsAre("doc", "during", "sheet", "slides", "txt"));
}

// files.list page tokens are positions in a listing that changes under them
// (the fake's "FL<offset>", and Drive documents no stability either): a
// resumed listing must not skip the files that moved up when files before the
// checkpoint were deleted or trashed while the sync was down.
TEST_F(DriveConnectorTest, ResumedListingSkipsNothingWhenEarlierFilesVanish) {
  Seed();
  MakeConnector();
  SyncRunner::Options crashing;
  crashing.connector_id = "gdrive:test";
  int pages = 0;
  crashing.before_commit = [&](const ChangePage &) {
    return ++pages == 2 ? absl::AbortedError("crash") : absl::OkStatus();
  };
  SyncRunner crashy(connector_.get(), &sink_, store_.get(), crashing);
  EXPECT_FALSE(crashy.SyncScope("drive").ok());
  ASSERT_TRUE(Checkpoint().has_value());
  EXPECT_THAT(*Checkpoint(), HasSubstr("list"));
  // Page 1 (doc, folder) was committed, page 2 (sheet, slides) written but
  // not committed; then three of those four go away while the sync is down.
  // "txt" was never written: a listing resumed at offset 2 of what is left
  // (slides, txt) would skip it.
  ASSERT_TRUE(server_->DeleteFile("doc").ok());
  ASSERT_TRUE(server_->DeleteFile("folder").ok());
  ASSERT_TRUE(server_->TrashFile("sheet").ok());
  auto stats = Sync();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_THAT(Ids(), ElementsAre("slides", "txt"));
}

}  // namespace
}  // namespace tessera::connectors::drive
