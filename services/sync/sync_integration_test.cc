// Drive into retrieval, end to end: a FakeDriveServer with files and
// permissions, the sync daemon, and a real RetrievalServiceImpl on an
// in-process gRPC server. Checks that documents become searchable with the
// right ACLs, that edits, trash and permission changes are applied on the
// next round, and that a new daemon over the same state resumes from its
// checkpoint instead of re-ingesting everything.
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/file_system.h"
#include "common/http/curl_http_transport.h"
#include "connectors/drive/fake_drive_server.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/gateway/caller.h"
#include "services/retrieval/retrieval_service.h"
#include "services/sync/retrieval_sink.h"
#include "services/sync/sync_config.h"
#include "services/sync/sync_daemon.h"
#include "services/sync/sync_state.h"
#include "tessera/v1/retrieval.grpc.pb.h"

namespace tessera::sync {
namespace {

using connectors::drive::FakeDriveServer;
using connectors::drive::FakeFile;
using connectors::drive::FakePermission;

Caller MakeCaller(const std::string &user, std::vector<std::string> groups, KeyRole role) {
  Caller c;
  c.principal.user = user;
  c.principal.groups = std::move(groups);
  c.role = role;
  c.key_id = "test-" + user;
  return c;
}

class SyncIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char *tmp = std::getenv("TEST_TMPDIR");
    dir_ = absl::StrCat(tmp ? tmp : "/tmp", "/sync_integration/",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());

    FakeDriveServer::Options fo;
    fo.user_email = "ann@x.com";
    auto drive = FakeDriveServer::Start(fo);
    ASSERT_TRUE(drive.ok()) << drive.status();
    drive_ = std::move(*drive);
    drive_->AcceptToken("drive-token");

    retrieval::RetrievalServiceImpl::Options ro;
    ro.data_dir = dir_ + "/retrieval";
    auto service = retrieval::RetrievalServiceImpl::Create(ro);
    ASSERT_TRUE(service.ok()) << service.status();
    service_ = std::move(*service);
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    channel_ = server_->InProcessChannel(grpc::ChannelArguments());

    auto http = CurlHttpTransport::Create({});
    ASSERT_TRUE(http.ok());
    http_ = std::move(*http);
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  std::unique_ptr<SyncDaemon> NewDaemon() {
    auto config = ParseSyncConfig(
        absl::StrCat(R"({"connectors": [{"id": "acme-drive",
        "type": "drive", "interval": "5m", "collection": "acme",
        "drive": {"api_base": ")",
                     drive_->base_url(), R"(", "token": "drive-token", "page_size": 2}}]})"),
        "test.json");
    EXPECT_TRUE(config.ok()) << config.status();
    if (!config.ok()) return nullptr;
    SyncDaemon::Options o;
    o.config = *config;
    o.state_dir = dir_ + "/sync";
    o.new_retrieval_stub = [this]() -> std::unique_ptr<v1::RetrievalService::StubInterface> {
      return v1::RetrievalService::NewStub(channel_);
    };
    const Caller admin = MakeCaller("sync@x.com", {}, KeyRole::kAdmin);
    o.prepare_context = [admin](grpc::ClientContext *ctx) { AttachCaller(admin, ctx); };
    o.create_missing_collections = true;
    o.http = http_.get();
    o.on_progress = [this](const SyncProgress &p) {
      absl::MutexLock l(&mu_);
      events_.push_back(p);
    };
    auto d = SyncDaemon::Create(std::move(o));
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? std::move(*d) : nullptr;
  }

  // External ids of the hits `user` gets for `query`.
  std::set<std::string> Search(const std::string &user, std::vector<std::string> groups,
                               const std::string &query) {
    auto stub = v1::RetrievalService::NewStub(channel_);
    grpc::ClientContext ctx;
    AttachCaller(MakeCaller(user, std::move(groups), KeyRole::kUser), &ctx);
    v1::SearchRequest req;
    req.add_collections("acme");
    req.set_query(query);
    req.set_top_k(20);
    v1::SearchResponse resp;
    grpc::Status s = stub->Search(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::set<std::string> ids;
    for (const auto &h : resp.hits()) ids.insert(h.external_id());
    return ids;
  }

  ConnectorStatus OnlyStatus(SyncDaemon *d) {
    auto all = d->Status();
    EXPECT_EQ(all.size(), 1u);
    return all.empty() ? ConnectorStatus{} : all[0];
  }

  std::string dir_;
  std::unique_ptr<FakeDriveServer> drive_;
  std::unique_ptr<retrieval::RetrievalServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<CurlHttpTransport> http_;
  absl::Mutex mu_;
  std::vector<SyncProgress> events_;
};

FakePermission User(const std::string &email) { return {.type = "user", .email = email}; }

TEST_F(SyncIntegrationTest, SyncsDriveWithAclsAppliesChangesAndResumes) {
  FakeFile plan{.id = "plan", .name = "plan.txt", .content = "quarterly budget plan zebra"};
  plan.permissions = {User("bob@x.com")};
  FakeFile pay{.id = "pay", .name = "salaries.txt", .content = "salaries confidential walrus"};
  pay.permissions = {{.type = "group", .email = "fin@x.com"}};
  FakeFile book{.id = "book", .name = "handbook.txt", .content = "employee handbook giraffe"};
  book.permissions = {{.type = "domain", .domain = "x.com"}};
  ASSERT_TRUE(drive_->CreateFile(plan).ok());
  ASSERT_TRUE(drive_->CreateFile(pay).ok());
  ASSERT_TRUE(drive_->CreateFile(book).ok());

  // Round 1: a full sync.
  {
    auto daemon = NewDaemon();
    ASSERT_NE(daemon, nullptr);
    absl::Status s = daemon->RunOnce();
    ASSERT_TRUE(s.ok()) << s;
    ConnectorStatus st = OnlyStatus(daemon.get());
    EXPECT_EQ(st.source, "gdrive");
    EXPECT_EQ(st.runs, 1);
    EXPECT_EQ(st.last_run.indexed, 3);
    // The run record `tessera connector list` reads.
    auto rec = ReadSyncRunRecord(dir_ + "/sync", "acme-drive", LocalFileSystem());
    ASSERT_TRUE(rec.ok()) << rec.status();
    ASSERT_TRUE(rec->has_value());
    EXPECT_FALSE((*rec)->running);
    EXPECT_EQ((*rec)->indexed, 3);
    EXPECT_EQ((*rec)->error, "");
    EXPECT_NE((*rec)->last_success, absl::InfinitePast());
    EXPECT_EQ(st.last_run.failed, 0);
    EXPECT_EQ(st.last_run.deleted, 0);
    {
      absl::MutexLock l(&mu_);
      ASSERT_GE(events_.size(), 3u);
      EXPECT_EQ(events_.front().event, SyncProgress::Event::kStarted);
      EXPECT_EQ(events_.back().event, SyncProgress::Event::kFinished);
      EXPECT_TRUE(events_.back().full_sync);
      EXPECT_EQ(events_.back().run.indexed, 3);
    }

    // ACLs: the owner sees all; bob only plan (and book, by domain); a
    // finance member the payroll file; someone outside x.com nothing.
    EXPECT_TRUE(Search("ann@x.com", {}, "zebra").contains("plan"));
    EXPECT_TRUE(Search("bob@x.com", {}, "zebra").contains("plan"));
    EXPECT_FALSE(Search("bob@x.com", {}, "walrus").contains("pay"));
    EXPECT_TRUE(Search("bob@x.com", {}, "giraffe").contains("book"));
    EXPECT_TRUE(Search("carol@x.com", {"fin@x.com"}, "walrus").contains("pay"));
    EXPECT_FALSE(Search("carol@x.com", {"fin@x.com"}, "zebra").contains("plan"));
    EXPECT_TRUE(Search("dave@y.com", {}, "zebra giraffe walrus").empty());

    // Round 2: an edit, a trashed file, a permission change.
    ASSERT_TRUE(drive_->EditFile("plan", "quarterly budget plan okapi").ok());
    ASSERT_TRUE(drive_->TrashFile("book").ok());
    ASSERT_TRUE(drive_->Share("pay", User("bob@x.com")).ok());
    s = daemon->RunOnce();
    ASSERT_TRUE(s.ok()) << s;
    st = OnlyStatus(daemon.get());
    EXPECT_EQ(st.runs, 2);
    EXPECT_EQ(st.last_run.indexed, 2);  // plan (content), pay (ACL)
    EXPECT_EQ(st.last_run.deleted, 1);  // book
    EXPECT_EQ(st.totals.indexed, 5);
    EXPECT_TRUE(Search("bob@x.com", {}, "okapi").contains("plan"));
    EXPECT_TRUE(Search("bob@x.com", {}, "walrus").contains("pay"));
    EXPECT_FALSE(Search("bob@x.com", {}, "giraffe").contains("book"));
    EXPECT_FALSE(Search("ann@x.com", {}, "giraffe").contains("book"));
    std::set<std::string> zebra = Search("ann@x.com", {}, "zebra");
    // The old text is gone with the old chunks.
    auto stub = v1::RetrievalService::NewStub(channel_);
    grpc::ClientContext ctx;
    AttachCaller(MakeCaller("ann@x.com", {}, KeyRole::kUser), &ctx);
    v1::SearchRequest req;
    req.add_collections("acme");
    req.set_query("zebra");
    req.set_include_text(true);
    v1::SearchResponse resp;
    ASSERT_TRUE(stub->Search(&ctx, req, &resp).ok());
    for (const auto &h : resp.hits()) {
      EXPECT_EQ(h.text().find("zebra"), std::string::npos) << h.external_id();
    }
  }

  // Round 3: a new daemon over the same state resumes from the checkpoint:
  // nothing changed, so nothing is fetched again or re-ingested.
  const int files_before = drive_->RequestCount("/drive/v3/files");
  {
    auto daemon = NewDaemon();
    ASSERT_NE(daemon, nullptr);
    absl::Status s = daemon->RunOnce();
    ASSERT_TRUE(s.ok()) << s;
    ConnectorStatus st = OnlyStatus(daemon.get());
    EXPECT_EQ(st.last_run.indexed, 0);
    EXPECT_EQ(st.last_run.seen, 0);
    EXPECT_EQ(st.last_run.deleted, 0);
    EXPECT_EQ(drive_->RequestCount("/drive/v3/files"), files_before);
    {
      absl::MutexLock l(&mu_);
      EXPECT_FALSE(events_.back().full_sync);
    }
    // A change after the restart: only it is ingested.
    FakeFile memo{.id = "memo", .name = "memo.txt", .content = "team memo narwhal"};
    memo.permissions = {User("bob@x.com")};
    ASSERT_TRUE(drive_->CreateFile(memo).ok());
    s = daemon->RunOnce();
    ASSERT_TRUE(s.ok()) << s;
    st = OnlyStatus(daemon.get());
    EXPECT_EQ(st.last_run.indexed, 1);
    EXPECT_EQ(st.last_run.seen, 1);
    EXPECT_TRUE(Search("bob@x.com", {}, "narwhal").contains("memo"));
    EXPECT_TRUE(Search("bob@x.com", {}, "okapi").contains("plan"));
  }
}

// The scheduler: Start() runs at once, Stop() returns promptly.
TEST_F(SyncIntegrationTest, StartRunsImmediatelyAndStopReturns) {
  FakeFile plan{.id = "plan", .name = "plan.txt", .content = "quarterly budget plan zebra"};
  plan.permissions = {User("bob@x.com")};
  ASSERT_TRUE(drive_->CreateFile(plan).ok());
  auto daemon = NewDaemon();
  ASSERT_NE(daemon, nullptr);
  daemon->Start();
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline && OnlyStatus(daemon.get()).runs == 0) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ConnectorStatus st = OnlyStatus(daemon.get());
  EXPECT_EQ(st.runs, 1);
  EXPECT_TRUE(st.last_status.ok()) << st.last_status;
  EXPECT_EQ(st.last_run.indexed, 1);
  EXPECT_GT(st.next_run, st.last_start);
  const absl::Time t0 = absl::Now();
  daemon->Stop();
  EXPECT_LT(absl::Now() - t0, absl::Seconds(5));
}

// The sink alone: batches, per-document failures, the ledger behind ListIds.
TEST_F(SyncIntegrationTest, SinkReportsRefusedDocumentsAndKeepsALedger) {
  {
    auto stub = v1::RetrievalService::NewStub(channel_);
    grpc::ClientContext ctx;
    AttachCaller(MakeCaller("sync@x.com", {}, KeyRole::kAdmin), &ctx);
    v1::CreateCollectionRequest req;
    req.mutable_collection()->set_name("acme");
    v1::CreateCollectionResponse resp;
    ASSERT_TRUE(stub->CreateCollection(&ctx, req, &resp).ok());
  }
  auto db = SqliteDatabase::Open(":memory:", {});
  ASSERT_TRUE(db.ok());
  RetrievalSink::Options so;
  so.connector_id = "c1";
  so.collection = "acme";
  so.batch_documents = 2;  // three documents: two RPCs
  const Caller admin = MakeCaller("sync@x.com", {}, KeyRole::kAdmin);
  so.prepare_context = [admin](grpc::ClientContext *ctx) { AttachCaller(admin, ctx); };
  auto sink = RetrievalSink::Create(v1::RetrievalService::NewStub(channel_), db->get(), so);
  ASSERT_TRUE(sink.ok()) << sink.status();

  std::vector<connectors::ConnectorDocument> docs(3);
  for (int i = 0; i < 3; ++i) {
    docs[i].id = absl::StrCat("d", i);
    docs[i].title = absl::StrCat("doc ", i);
    docs[i].sections.push_back({"", absl::StrCat("alpaca text ", i), 0});
    docs[i].acl = {"user:bob@x.com"};
    docs[i].modified_time = absl::FromUnixSeconds(1'700'000'000);
  }
  docs[1].acl = {"bogus-principal"};
  docs[2].metadata["big"] = std::string(5000, 'x');
  ASSERT_TRUE((*sink)->Upsert("gdrive", docs).ok());
  std::vector<connectors::DocumentFailure> failures = (*sink)->TakeFailures();
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].id, "d1");
  EXPECT_EQ(failures[0].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE((*sink)->TakeFailures().empty());
  auto ids = (*sink)->ListIds("gdrive");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<std::string>{"d0", "d2"}));
  EXPECT_TRUE(Search("bob@x.com", {}, "alpaca").contains("d2"));

  ASSERT_TRUE((*sink)->Delete("gdrive", {"d0", "unknown"}).ok());
  ids = (*sink)->ListIds("gdrive");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, std::vector<std::string>{"d2"});
  EXPECT_FALSE(Search("bob@x.com", {}, "alpaca").contains("d0"));

  v1::Document p = ToProtoDocument("gdrive", docs[2]);
  EXPECT_EQ(p.source(), "gdrive");
  EXPECT_EQ(p.external_id(), "d2");
  EXPECT_EQ(p.modified_time().seconds(), 1'700'000'000);
  EXPECT_EQ(p.metadata().at("big").size(), 4096u);
  EXPECT_EQ(p.acl(0), "user:bob@x.com");
}

}  // namespace
}  // namespace tessera::sync
