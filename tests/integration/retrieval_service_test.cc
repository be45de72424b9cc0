// RetrievalService through the real gateway: collections, ingest statuses,
// permission-exact hybrid search for different users, deletes, bad input,
// and indexes that survive a restart (loaded, or rebuilt from SQLite).
#include <cstdlib>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file_system.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/gateway/api_key_store.h"
#include "services/gateway/server.h"
#include "services/retrieval/retrieval_service.h"
#include "tessera/v1/retrieval.grpc.pb.h"

namespace tessera {
namespace {

using retrieval::RetrievalServiceImpl;

class RetrievalServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = absl::StrCat(tmp ? tmp : "/tmp", "/retrieval_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    Start();
    auto keys = ApiKeyStore::Open(dir_ + "/admin.db", RealClock());
    ASSERT_TRUE(keys.ok()) << keys.status();
    ApiKeyStore::CreateOptions o;
    o.principal.user = "it@acme.example";
    o.role = KeyRole::kAdmin;
    admin_ = (*keys)->Create(o)->token;
    o.role = KeyRole::kUser;
    o.principal.user = "ann@acme.example";
    o.principal.groups = {"finance@acme.example"};
    ann_ = (*keys)->Create(o)->token;
    o.principal.user = "bob@acme.example";
    o.principal.groups = {"engineering@acme.example"};
    bob_ = (*keys)->Create(o)->token;
    o.principal.user = "eve@other.example";
    o.principal.groups = {};
    eve_ = (*keys)->Create(o)->token;
  }

  void Start() {
    TesseraServer::Options o;
    o.data_dir = dir_;
    o.listen = "127.0.0.1:0";
    o.factories["retrieval"] = [this](TesseraServer*) -> absl::StatusOr<std::unique_ptr<grpc::Service>> {
      RetrievalServiceImpl::Options ro;
      ro.data_dir = dir_ + "/retrieval";
      ro.index_save_interval = absl::ZeroDuration();
      ro.maintenance_interval = absl::Milliseconds(50);
      auto s = RetrievalServiceImpl::Create(ro);
      if (!s.ok()) return s.status();
      service_ = s->get();
      return std::unique_ptr<grpc::Service>(std::move(*s));
    };
    auto s = TesseraServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    stub_ = v1::RetrievalService::NewStub(
        grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  }
  void Restart() {
    server_.reset();  // shuts down; the service saves its indexes
    Start();
  }

  std::unique_ptr<grpc::ClientContext> Ctx(const std::string& key) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", "Bearer " + key);
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    return ctx;
  }

  void CreateCollection(const std::string& name, const std::string& factory = "") {
    v1::CreateCollectionRequest req;
    req.mutable_collection()->set_name(name);
    if (!factory.empty()) req.mutable_collection()->mutable_index()->set_faiss_factory(factory);
    v1::CreateCollectionResponse resp;
    auto ctx = Ctx(admin_);
    grpc::Status s = stub_->CreateCollection(ctx.get(), req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.collection().embedding_model(), "lexical-hash-384");
    EXPECT_EQ(resp.collection().embedding_dimensions(), 384);
  }

  static v1::Document Doc(const std::string& id, const std::string& title, const std::string& text,
                          std::vector<std::string> acl) {
    v1::Document d;
    d.set_source("test");
    d.set_external_id(id);
    d.set_title(title);
    d.set_text(text);
    d.set_uri("https://docs.acme.example/" + id);
    for (auto& a : acl) d.add_acl(a);
    return d;
  }

  v1::IngestDocumentsResponse Ingest(const std::string& collection, std::vector<v1::Document> docs,
                                     grpc::Status* status = nullptr, const std::string& key = "") {
    v1::IngestDocumentsRequest req;
    req.set_collection(collection);
    for (auto& d : docs) *req.add_documents() = d;
    v1::IngestDocumentsResponse resp;
    auto ctx = Ctx(key.empty() ? admin_ : key);
    grpc::Status s = stub_->IngestDocuments(ctx.get(), req, &resp);
    if (status) {
      *status = s;
    } else {
      EXPECT_TRUE(s.ok()) << s.error_message();
    }
    return resp;
  }

  grpc::Status Search(const std::string& key, const std::string& query, v1::SearchResponse* resp,
                      int k = 10, std::vector<std::string> collections = {"acme"}) {
    v1::SearchRequest req;
    for (auto& c : collections) req.add_collections(c);
    req.set_query(query);
    req.set_top_k(k);
    auto ctx = Ctx(key);
    return stub_->Search(ctx.get(), req, resp);
  }

  std::set<std::string> Titles(const std::string& key, const std::string& query) {
    v1::SearchResponse resp;
    grpc::Status s = Search(key, query, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::set<std::string> out;
    for (const auto& h : resp.hits()) out.insert(h.title());
    return out;
  }

  void SeedAcme() {
    CreateCollection("acme");
    auto r = Ingest("acme", {
        Doc("fin-1", "Q3 budget", "The finance team's Q3 budget plan: travel costs down 10 percent.",
            {"group:finance@acme.example"}),
        Doc("eng-1", "Q3 roadmap", "Engineering roadmap for Q3: budget for GPUs and the search rewrite.",
            {"group:engineering@acme.example"}),
        Doc("all-1", "Holiday calendar", "Company holidays and the office budget for parties.",
            {"domain:acme.example"}),
        Doc("ann-1", "Ann's review", "Performance review notes, salary and budget.",
            {"user:ann@acme.example"}),
        Doc("pub-1", "Press release", "Acme announces record revenue and a new budget airline.",
            {"anyone"}),
    });
    ASSERT_EQ(r.results_size(), 5);
    for (const auto& res : r.results()) {
      EXPECT_EQ(res.status(), v1::INGEST_STATUS_CREATED) << res.external_id() << " " << res.error().message();
      EXPECT_GE(res.chunk_count(), 1);
    }
  }

  std::string dir_;
  RetrievalServiceImpl* service_ = nullptr;  // owned by server_
  std::unique_ptr<TesseraServer> server_;
  std::unique_ptr<v1::RetrievalService::Stub> stub_;
  std::string admin_, ann_, bob_, eve_;
};

TEST_F(RetrievalServiceTest, EachUserSeesOnlyWhatTheyMay) {
  SeedAcme();
  EXPECT_EQ(Titles(ann_, "budget"), (std::set<std::string>{"Q3 budget", "Holiday calendar",
                                                           "Ann's review", "Press release"}));
  EXPECT_EQ(Titles(bob_, "budget"),
            (std::set<std::string>{"Q3 roadmap", "Holiday calendar", "Press release"}));
  EXPECT_EQ(Titles(eve_, "budget"), (std::set<std::string>{"Press release"}));
}

TEST_F(RetrievalServiceTest, HitsCarrySubScoresAndCitationFields) {
  SeedAcme();
  v1::SearchResponse resp;
  ASSERT_TRUE(Search(ann_, "finance travel costs", &resp, 3).ok());
  ASSERT_GE(resp.hits_size(), 1);
  const auto& top = resp.hits(0);
  EXPECT_EQ(top.title(), "Q3 budget");
  EXPECT_EQ(top.uri(), "https://docs.acme.example/fin-1");
  EXPECT_EQ(top.source(), "test");
  EXPECT_EQ(top.external_id(), "fin-1");
  EXPECT_FALSE(top.document_id().empty());
  EXPECT_FALSE(top.chunk_id().empty());
  EXPECT_NE(top.snippet().find("travel"), std::string::npos);
  EXPECT_TRUE(top.scores().has_bm25());
  EXPECT_TRUE(top.scores().has_vector());
  EXPECT_TRUE(top.scores().has_fused());
  EXPECT_EQ(top.scores().bm25_rank(), 1);
  EXPECT_TRUE(resp.has_timing());
  EXPECT_LE(resp.hits_size(), 3);
}

TEST_F(RetrievalServiceTest, ReingestStatusesAndAclChanges) {
  SeedAcme();
  auto same = Ingest("acme", {Doc("fin-1", "Q3 budget",
                                  "The finance team's Q3 budget plan: travel costs down 10 percent.",
                                  {"group:finance@acme.example"})});
  EXPECT_EQ(same.results(0).status(), v1::INGEST_STATUS_UNCHANGED);
  // Share the finance doc with engineering: metadata-only, visible to Bob now.
  auto shared = Ingest("acme", {Doc("fin-1", "Q3 budget",
                                    "The finance team's Q3 budget plan: travel costs down 10 percent.",
                                    {"group:finance@acme.example", "group:engineering@acme.example"})});
  EXPECT_EQ(shared.results(0).status(), v1::INGEST_STATUS_METADATA_UPDATED);
  EXPECT_TRUE(shared.results(0).acl_changed());
  EXPECT_TRUE(Titles(bob_, "travel costs").count("Q3 budget"));
  // New content replaces the old chunks.
  auto changed = Ingest("acme", {Doc("fin-1", "Q3 budget", "Completely new text about invoices.",
                                     {"group:finance@acme.example"})});
  EXPECT_EQ(changed.results(0).status(), v1::INGEST_STATUS_UPDATED);
  // The old words are gone from the text index and from the stored chunks
  // (the vector retriever still returns nearest neighbours, so look at the
  // BM25 sub-score and the snippet, not mere presence).
  v1::SearchResponse old_words;
  ASSERT_TRUE(Search(ann_, "travel", &old_words).ok());
  for (const auto& h : old_words.hits()) {
    if (h.title() != "Q3 budget") continue;
    EXPECT_FALSE(h.scores().has_bm25());
    EXPECT_EQ(h.snippet(), "Completely new text about invoices.");
  }
  v1::SearchResponse new_words;
  ASSERT_TRUE(Search(ann_, "invoices", &new_words).ok());
  ASSERT_GE(new_words.hits_size(), 1);
  EXPECT_EQ(new_words.hits(0).title(), "Q3 budget");
  EXPECT_TRUE(new_words.hits(0).scores().has_bm25());
  EXPECT_FALSE(Titles(bob_, "invoices").count("Q3 budget"));
}

TEST_F(RetrievalServiceTest, DeleteRemovesFromBothRetrievers) {
  SeedAcme();
  v1::DeleteDocumentsRequest req;
  req.set_collection("acme");
  req.mutable_source_documents()->set_source("test");
  req.mutable_source_documents()->add_external_ids("pub-1");
  v1::DeleteDocumentsResponse resp;
  auto ctx = Ctx(admin_);
  ASSERT_TRUE(stub_->DeleteDocuments(ctx.get(), req, &resp).ok());
  EXPECT_EQ(resp.deleted_count(), 1);
  // Neither BM25 nor the vector index (which returns nearest neighbours even
  // without word overlap) may return it.
  v1::SearchResponse sr;
  ASSERT_TRUE(Search(eve_, "press release revenue airline", &sr).ok());
  EXPECT_EQ(sr.hits_size(), 0);
}

TEST_F(RetrievalServiceTest, BadInputGetsClearErrors) {
  SeedAcme();
  v1::SearchResponse resp;
  EXPECT_EQ(Search(ann_, "budget", &resp, 10, {"nope"}).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Search(ann_, "budget", &resp, 5000).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Search(ann_, "budget", &resp, -1).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Search(ann_, "   ", &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // Hostile FTS syntax is just words.
  EXPECT_TRUE(Search(ann_, "\"budget* NEAR( OR AND -", &resp).ok());
  // A user key cannot write, nor search as someone else.
  grpc::Status s;
  Ingest("acme", {Doc("x", "x", "x", {"anyone"})}, &s, ann_);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  v1::SearchRequest as_bob;
  as_bob.add_collections("acme");
  as_bob.set_query("budget");
  as_bob.mutable_principal()->set_user("bob@acme.example");
  auto ctx = Ctx(ann_);
  EXPECT_EQ(stub_->Search(ctx.get(), as_bob, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // An admin may, and sees exactly Bob's view.
  auto actx = Ctx(admin_);
  as_bob.mutable_principal()->add_groups("engineering@acme.example");
  ASSERT_TRUE(stub_->Search(actx.get(), as_bob, &resp).ok());
  std::set<std::string> titles;
  for (const auto& h : resp.hits()) titles.insert(h.title());
  EXPECT_EQ(titles, Titles(bob_, "budget"));
  // Per-document failures do not stop the batch.
  v1::Document no_id = Doc("", "t", "text", {"anyone"});
  auto r = Ingest("acme", {no_id, Doc("ok-1", "fine", "fine text", {"anyone"})});
  ASSERT_EQ(r.results_size(), 2);
  EXPECT_EQ(r.results(0).status(), v1::INGEST_STATUS_FAILED);
  EXPECT_EQ(r.results(0).error().code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(r.results(1).status(), v1::INGEST_STATUS_CREATED);
  // Unknown collection on ingest, bad collection names.
  Ingest("missing", {Doc("a", "a", "a", {"anyone"})}, &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  v1::CreateCollectionRequest bad;
  bad.mutable_collection()->set_name("Bad Name");
  v1::CreateCollectionResponse cr;
  auto c2 = Ctx(admin_);
  EXPECT_EQ(stub_->CreateCollection(c2.get(), bad, &cr).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  bad.mutable_collection()->set_name("acme");
  auto c3 = Ctx(admin_);
  EXPECT_EQ(stub_->CreateCollection(c3.get(), bad, &cr).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  bad.mutable_collection()->set_name("bad-index");
  bad.mutable_collection()->mutable_index()->set_faiss_factory("NotAnIndex99");
  auto c4 = Ctx(admin_);
  EXPECT_EQ(stub_->CreateCollection(c4.get(), bad, &cr).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(RetrievalServiceTest, RandomisedPermissionsZeroLeaksAndFullK) {
  for (const std::string factory : {"Flat", "HNSW32"}) {
    const std::string coll = factory == "Flat" ? "rand-flat" : "rand-hnsw";
    CreateCollection(coll, factory);
    std::mt19937 rng(1234);
    const std::vector<std::string> users = {"ann@acme.example", "bob@acme.example",
                                            "eve@other.example"};
    const std::vector<std::string> groups = {"finance@acme.example", "engineering@acme.example",
                                             "legal@acme.example"};
    const std::vector<std::string> words = {"alpha", "bravo", "charlie", "delta", "echo",
                                            "foxtrot", "golf", "hotel", "india", "juliet"};
    std::vector<v1::Document> docs;
    std::map<std::string, std::vector<std::string>> acl_of;
    for (int i = 0; i < 120; ++i) {
      std::vector<std::string> acl;
      int n = rng() % 3;
      for (int j = 0; j < n; ++j) {
        switch (rng() % 4) {
          case 0: acl.push_back("user:" + users[rng() % users.size()]); break;
          case 1: acl.push_back("group:" + groups[rng() % groups.size()]); break;
          case 2: acl.push_back("domain:acme.example"); break;
          default: if (rng() % 5 == 0) acl.push_back("anyone");
        }
      }
      std::string text;
      for (int w = 0; w < 12; ++w) absl::StrAppend(&text, words[rng() % words.size()], " ");
      std::string id = absl::StrCat("d", i);
      acl_of[id] = acl;
      docs.push_back(Doc(id, id, text, acl));
    }
    Ingest(coll, docs);
    auto may_see = [&](const std::vector<std::string>& acl, const std::string& user,
                       const std::vector<std::string>& gs) {
      for (const auto& a : acl) {
        if (a == "anyone" || a == "user:" + user) return true;
        if (a == "domain:acme.example" && user.find("@acme.example") != std::string::npos) return true;
        for (const auto& g : gs) {
          if (a == "group:" + g) return true;
        }
      }
      return false;
    };
    // Admin searches as many principals; vector candidates guarantee k results
    // whenever k permitted chunks exist (each document is one chunk here).
    for (int trial = 0; trial < 30; ++trial) {
      std::string user = users[rng() % users.size()];
      std::vector<std::string> gs;
      for (const auto& g : groups) {
        if (rng() % 2) gs.push_back(g);
      }
      int permitted = 0;
      for (const auto& [id, acl] : acl_of) permitted += may_see(acl, user, gs);
      const int k = 1 + static_cast<int>(rng() % 20);
      v1::SearchRequest req;
      req.add_collections(coll);
      req.set_query(absl::StrCat(words[rng() % words.size()], " ", words[rng() % words.size()]));
      req.set_top_k(k);
      req.mutable_principal()->set_user(user);
      for (const auto& g : gs) req.mutable_principal()->add_groups(g);
      v1::SearchResponse resp;
      auto ctx = Ctx(admin_);
      grpc::Status s = stub_->Search(ctx.get(), req, &resp);
      ASSERT_TRUE(s.ok()) << s.error_message();
      for (const auto& h : resp.hits()) {
        ASSERT_TRUE(may_see(acl_of[h.external_id()], user, gs))
            << factory << ": leak of " << h.external_id() << " to " << user;
      }
      EXPECT_EQ(resp.hits_size(), std::min(k, permitted)) << factory << " trial " << trial;
    }
  }
}

TEST_F(RetrievalServiceTest, IvfTrainsInTheBackgroundAndServesThroughout) {
  CreateCollection("ivf", "IVF4,Flat");
  std::vector<v1::Document> docs;
  for (int i = 0; i < 200; ++i) {
    docs.push_back(Doc(absl::StrCat("d", i), absl::StrCat("Doc ", i),
                       absl::StrCat("report number ", i, " about topic ", i % 7), {"anyone"}));
  }
  // Before training: the exact side index serves.
  Ingest("ivf", std::vector<v1::Document>(docs.begin(), docs.begin() + 100));
  v1::SearchResponse resp;
  ASSERT_TRUE(Search(eve_, "topic 3", &resp, 10, {"ivf"}).ok());
  EXPECT_EQ(resp.hits_size(), 10);
  EXPECT_NE(service_->DescribeIndex("ivf")->find("untrained"), std::string::npos);
  // Enough vectors (39 per list): the background thread trains.
  Ingest("ivf", std::vector<v1::Document>(docs.begin() + 100, docs.end()));
  bool trained = false;
  for (int i = 0; i < 200 && !trained; ++i) {
    trained = service_->DescribeIndex("ivf")->find("state=trained") != std::string::npos;
    if (!trained) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(trained) << *service_->DescribeIndex("ivf");
  ASSERT_TRUE(Search(eve_, "topic 3", &resp, 10, {"ivf"}).ok());
  EXPECT_EQ(resp.hits_size(), 10);
}

TEST_F(RetrievalServiceTest, EmptyAndOversizedDocuments) {
  CreateCollection("acme");
  // An empty document is stored (its metadata is real) with no chunks.
  auto r = Ingest("acme", {Doc("empty", "Empty", "", {"anyone"})});
  EXPECT_EQ(r.results(0).status(), v1::INGEST_STATUS_CREATED);
  EXPECT_EQ(r.results(0).chunk_count(), 0);
  // 200 MB of text is refused whole, with a clear status, and nothing is written.
  v1::IngestDocumentsRequest big;
  big.set_collection("acme");
  v1::Document* d = big.add_documents();
  *d = Doc("huge", "Huge", "", {"anyone"});
  d->mutable_text()->assign(200u << 20, 'a');
  v1::IngestDocumentsResponse resp;
  auto ctx = Ctx(admin_);
  grpc::Status s = stub_->IngestDocuments(ctx.get(), big, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  v1::GetCollectionRequest g;
  g.set_name("acme");
  v1::GetCollectionResponse gr;
  auto gctx = Ctx(admin_);
  ASSERT_TRUE(stub_->GetCollection(gctx.get(), g, &gr).ok());
  EXPECT_EQ(gr.collection().document_count(), 1);
}

TEST_F(RetrievalServiceTest, IndexSurvivesRestartAndRebuildsWhenStale) {
  SeedAcme();
  auto before = Titles(ann_, "budget");
  Restart();
  EXPECT_EQ(Titles(ann_, "budget"), before);
  // A stale or missing saved index is rebuilt from SQLite at start.
  ASSERT_TRUE(LocalFileSystem()->DeleteFile(dir_ + "/retrieval/index/acme.faiss").ok());
  Restart();
  EXPECT_EQ(Titles(ann_, "budget"), before);
  v1::SearchResponse resp;
  ASSERT_TRUE(Search(ann_, "travel costs finance", &resp).ok());
  ASSERT_GE(resp.hits_size(), 1);
  EXPECT_TRUE(resp.hits(0).scores().has_vector());
}

}  // namespace
}  // namespace tessera
