#include "services/retrieval/store/document_store.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/sqlite.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::retrieval {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAreArray;

constexpr int kDims = 4;

std::string TempPath(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string path = absl::StrCat(tmp ? tmp : "/tmp", "/", name, "_", ::getpid(), ".db");
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
  return path;
}

std::vector<ChunkText> MakeChunks(const std::vector<std::string>& texts,
                                  const std::string& heading = "") {
  std::vector<ChunkText> out;
  for (const std::string& t : texts) {
    ChunkText c;
    c.heading = heading;
    c.text = t;
    c.embed_text = t;
    c.token_count = static_cast<int>(WordTokenizer().Tokenize(t).size());
    out.push_back(c);
  }
  return out;
}

std::vector<std::vector<float>> MakeEmbeddings(size_t n, float seed = 1) {
  std::vector<std::vector<float>> out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back({seed, static_cast<float>(i), -0.5f, 1e-7f * seed});
  }
  return out;
}

class DocumentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(":memory:"); }

  void Open(const std::string& path) {
    store_.reset();
    SqliteDocumentStore::Options options;
    options.path = path;
    options.clock = &clock_;
    auto store = SqliteDocumentStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    if (!store_->GetCollection("docs").ok()) {
      CollectionRecord c;
      c.name = "docs";
      c.embedding_model = "test-embed";
      c.dimensions = kDims;
      c.chunking = {64, 8};
      ASSERT_TRUE(store_->CreateCollection(c).ok());
    }
  }

  DocumentInput Doc(const std::string& external_id, const std::string& content_hash,
                    std::vector<std::string> acl = {"anyone"}) {
    DocumentInput d;
    d.collection = "docs";
    d.source = "local";
    d.external_id = external_id;
    d.title = absl::StrCat("Title of ", external_id);
    d.uri = absl::StrCat("file:///", external_id);
    d.mime_type = "text/plain";
    d.content_hash = content_hash;
    d.acl = std::move(acl);
    return d;
  }

  UpsertResult Upsert(const DocumentInput& d, const std::vector<std::string>& texts) {
    auto r = store_->UpsertDocument(d, MakeChunks(texts), MakeEmbeddings(texts.size()));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : UpsertResult{};
  }

  AccessFilter Filter(std::vector<std::string> principals = {"anyone"}) {
    AccessFilter f;
    f.collections = {"docs"};
    f.principals = std::move(principals);
    return f;
  }

  std::vector<int64_t> SearchIds(const std::string& query, const AccessFilter& f, int k = 100) {
    auto hits = store_->Bm25Search(query, f, k);
    EXPECT_TRUE(hits.ok()) << hits.status();
    std::vector<int64_t> ids;
    if (hits.ok()) {
      for (const auto& h : *hits) ids.push_back(h.chunk_id);
    }
    return ids;
  }

  SimulatedClock clock_;
  std::unique_ptr<SqliteDocumentStore> store_;
};

TEST(SanitizeFtsQueryTest, QuotesWordsAndDropsSyntax) {
  EXPECT_EQ(SanitizeFtsQuery("hello world"), "\"hello\" OR \"world\"");
  EXPECT_EQ(SanitizeFtsQuery("Hello HELLO hello"), "\"hello\"");
  EXPECT_EQ(SanitizeFtsQuery("NEAR(a b) AND c*"), "\"near\" OR \"a\" OR \"b\" OR \"and\" OR \"c\"");
  EXPECT_EQ(SanitizeFtsQuery("\"^-:*()"), "");
  EXPECT_EQ(SanitizeFtsQuery(""), "");
  EXPECT_EQ(SanitizeFtsQuery("café 東京"), "\"café\" OR \"東京\"");
  EXPECT_EQ(SanitizeFtsQuery("a\xff"
                             "b"),
            "\"a\" OR \"b\"");
}

TEST(ExpandPrincipalTest, UserGroupsDomainAnyone) {
  EXPECT_THAT(ExpandPrincipal(" Ann@X.com", {"Fin@x.com", "eng@x.com"}),
              ElementsAre("anyone", "domain:x.com", "group:eng@x.com", "group:fin@x.com",
                          "user:ann@x.com"));
  EXPECT_THAT(ExpandPrincipal("", {}), ElementsAre("anyone"));
}

TEST(ContentHashTest, StableAndFieldSensitive) {
  const std::string a = ContentHash("t", {{"h", "abc", 1}});
  EXPECT_EQ(a.size(), 64u);
  EXPECT_EQ(a, ContentHash("t", {{"h", "abc", 1}}));
  EXPECT_NE(a, ContentHash("t", {{"h", "abc", 2}}));
  EXPECT_NE(a, ContentHash("t", {{"ha", "bc", 1}}));
  EXPECT_NE(a, ContentHash("th", {{"", "abc", 1}}));
  EXPECT_NE(ContentHash("", {}), ContentHash("", {{"", "", 0}}));
}

TEST_F(DocumentStoreTest, MigrationsOnFileAreIdempotentAndRefuseNewer) {
  const std::string path = TempPath("migrations");
  Open(path);
  const DocumentInput d = Doc("a", "h1");
  Upsert(d, {"persistent text"});
  Open(path);  // reopen: migrations already applied, data kept
  EXPECT_EQ(SearchIds("persistent", Filter()).size(), 1u);
  store_.reset();
  {
    auto db = SqliteDatabase::Open(path, {});
    ASSERT_TRUE(db.ok());
    EXPECT_EQ(*(*db)->SchemaVersion(), static_cast<int>(SqliteDocumentStore::Migrations().size()));
    ASSERT_TRUE((*db)->Exec("PRAGMA user_version = 99").ok());
  }
  SqliteDocumentStore::Options options;
  options.path = path;
  EXPECT_EQ(SqliteDocumentStore::Open(options).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(DocumentStoreTest, Collections) {
  CollectionRecord c;
  c.name = "alpha";
  c.embedding_model = "m";
  c.dimensions = 8;
  c.index_factory = "HNSW32";
  auto created = store_->CreateCollection(c);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->create_time, clock_.Now());
  EXPECT_EQ(created->index_factory, "HNSW32");
  EXPECT_EQ(created->chunking.max_tokens, 512);
  EXPECT_EQ(store_->CreateCollection(c).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->GetCollection("nope").status().code(), absl::StatusCode::kNotFound);

  CollectionRecord bad = c;
  bad.name = "beta";
  bad.dimensions = 0;
  EXPECT_EQ(store_->CreateCollection(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad.dimensions = 4;
  bad.chunking = {100, 60};
  EXPECT_EQ(store_->CreateCollection(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad.chunking = {};
  bad.embedding_model = "";
  EXPECT_EQ(store_->CreateCollection(bad).status().code(), absl::StatusCode::kInvalidArgument);

  auto list = store_->ListCollections();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "alpha");
  EXPECT_EQ((*list)[1].name, "docs");

  clock_.Advance(absl::Seconds(5));
  Upsert(Doc("a", "h"), {"one", "two"});
  Upsert(Doc("b", "h"), {"three"});
  auto docs = store_->GetCollection("docs");
  ASSERT_TRUE(docs.ok());
  EXPECT_EQ(docs->document_count, 2);
  EXPECT_EQ(docs->chunk_count, 3);
  EXPECT_EQ(docs->update_time, clock_.Now());
  EXPECT_EQ(store_->GetCollection("alpha")->chunk_count, 0);
}

TEST_F(DocumentStoreTest, DeleteCollectionRemovesEverything) {
  const std::string path = TempPath("delete_collection");
  Open(path);
  const auto a = Upsert(Doc("a", "h"), {"zebra one", "zebra two"});
  const auto b = Upsert(Doc("b", "h"), {"zebra three"});
  auto removed = store_->DeleteCollection("docs");
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_THAT(*removed,
              ElementsAre(a.added_chunk_ids[0], a.added_chunk_ids[1], b.added_chunk_ids[0]));
  EXPECT_EQ(store_->GetCollection("docs").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->DeleteCollection("docs").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Bm25Search("zebra", Filter(), 10).status().code(), absl::StatusCode::kNotFound);

  auto db = SqliteDatabase::Open(path, {});
  ASSERT_TRUE(db.ok());
  for (const char* table : {"documents", "chunks", "document_acl", "document_metadata"}) {
    auto stmt = (*db)->Prepare(absl::StrCat("SELECT count(*) FROM ", table));
    ASSERT_TRUE(stmt.ok());
    ASSERT_TRUE(*stmt->Step());
    EXPECT_EQ(stmt->ColumnInt(0), 0) << table;
  }
  auto fts = (*db)->Prepare("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'zebra'");
  ASSERT_TRUE(fts.ok());
  ASSERT_TRUE(*fts->Step());
  EXPECT_EQ(fts->ColumnInt(0), 0);
  ASSERT_TRUE((*db)->Exec("INSERT INTO chunks_fts(chunks_fts) VALUES('integrity-check')").ok());
}

TEST_F(DocumentStoreTest, UpsertStatuses) {
  DocumentInput d = Doc("a", "hash1", {"user:ann@x.com"});
  d.metadata = {{"author", "ann"}};
  auto plan = store_->PrepareUpsert(d);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(*plan, UpsertPlan::kNeedsChunks);

  const UpsertResult created = Upsert(d, {"alpha text", "beta text"});
  EXPECT_EQ(created.status, UpsertStatus::kCreated);
  EXPECT_FALSE(created.acl_changed);
  EXPECT_EQ(created.chunk_count, 2);
  EXPECT_EQ(created.added_chunk_ids.size(), 2u);
  EXPECT_THAT(created.removed_chunk_ids, IsEmpty());
  const absl::Time created_at = clock_.Now();

  // Same content, ACL and attributes: nothing written.
  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ(*store_->PrepareUpsert(d), UpsertPlan::kUnchanged);
  auto unchanged = store_->UpsertDocument(d, {}, {});
  ASSERT_TRUE(unchanged.ok());
  EXPECT_EQ(unchanged->status, UpsertStatus::kUnchanged);
  EXPECT_EQ(unchanged->doc_id, created.doc_id);
  EXPECT_EQ(unchanged->chunk_count, 2);
  EXPECT_THAT(unchanged->added_chunk_ids, IsEmpty());
  auto got = store_->GetDocument("docs", created.doc_id, {"user:ann@x.com"});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->update_time, created_at);
  EXPECT_EQ(store_->GetCollection("docs")->update_time, created_at);

  // ACL change: chunks kept, permissions follow.
  d.acl = {"group:fin@x.com"};
  EXPECT_EQ(*store_->PrepareUpsert(d), UpsertPlan::kMetadataOnly);
  auto acl = store_->UpsertDocument(d, {}, {});
  ASSERT_TRUE(acl.ok());
  EXPECT_EQ(acl->status, UpsertStatus::kMetadataUpdated);
  EXPECT_TRUE(acl->acl_changed);
  EXPECT_EQ(acl->chunk_count, 2);
  EXPECT_THAT(acl->added_chunk_ids, IsEmpty());
  EXPECT_THAT(acl->removed_chunk_ids, IsEmpty());
  EXPECT_THAT(SearchIds("alpha", Filter({"user:ann@x.com"})), IsEmpty());
  EXPECT_THAT(SearchIds("alpha", Filter({"group:fin@x.com"})),
              ElementsAre(created.added_chunk_ids[0]));
  EXPECT_EQ(store_->GetDocument("docs", created.doc_id, {"group:fin@x.com"})->update_time,
            clock_.Now());

  // Metadata change only.
  d.metadata["author"] = "bob";
  auto meta = store_->UpsertDocument(d, {}, {});
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->status, UpsertStatus::kMetadataUpdated);
  EXPECT_FALSE(meta->acl_changed);
  AccessFilter by_author = Filter({"group:fin@x.com"});
  by_author.metadata_equals = {{"author", "bob"}};
  EXPECT_EQ(store_->AllowedChunkIds(by_author)->size(), 2u);

  // Title change (same content hash): re-indexed under the new title, chunks kept.
  d.title = "Quarterly zanzibar";
  auto title = store_->UpsertDocument(d, {}, {});
  ASSERT_TRUE(title.ok());
  EXPECT_EQ(title->status, UpsertStatus::kMetadataUpdated);
  EXPECT_EQ(SearchIds("zanzibar", Filter({"group:fin@x.com"})).size(), 2u);
  EXPECT_THAT(SearchIds("title", Filter({"group:fin@x.com"})), IsEmpty());
  EXPECT_EQ(store_->GetChunks(created.added_chunk_ids)->size(), 2u);

  // Content change: chunks replaced.
  d.content_hash = "hash2";
  EXPECT_EQ(*store_->PrepareUpsert(d), UpsertPlan::kNeedsChunks);
  const UpsertResult updated = Upsert(d, {"gamma text"});
  EXPECT_EQ(updated.status, UpsertStatus::kUpdated);
  EXPECT_EQ(updated.doc_id, created.doc_id);
  EXPECT_FALSE(updated.acl_changed);
  EXPECT_EQ(updated.chunk_count, 1);
  EXPECT_THAT(updated.removed_chunk_ids, ElementsAreArray(created.added_chunk_ids));
  ASSERT_EQ(updated.added_chunk_ids.size(), 1u);
  EXPECT_GT(updated.added_chunk_ids[0], created.added_chunk_ids[1]);  // ids never reused
  EXPECT_THAT(SearchIds("alpha", Filter({"group:fin@x.com"})), IsEmpty());
  EXPECT_THAT(SearchIds("gamma", Filter({"group:fin@x.com"})),
              ElementsAre(updated.added_chunk_ids[0]));
  EXPECT_THAT(*store_->GetChunks(created.added_chunk_ids), IsEmpty());
}

TEST_F(DocumentStoreTest, ChunkIdsNeverReusedAfterDelete) {
  const auto a = Upsert(Doc("a", "h"), {"one", "two"});
  ASSERT_TRUE(store_->DeleteDocuments("docs", {a.doc_id}).ok());
  const auto b = Upsert(Doc("b", "h"), {"three"});
  EXPECT_GT(b.added_chunk_ids[0], a.added_chunk_ids[1]);
  EXPECT_GT(b.doc_id, a.doc_id);
}

TEST_F(DocumentStoreTest, FailedUpsertKeepsOldVersion) {
  DocumentInput d = Doc("a", "v1", {"user:ann@x.com"});
  const UpsertResult v1 = Upsert(d, {"original walrus text"});
  const std::vector<std::string> ann = {"user:ann@x.com"};
  auto check_intact = [&] {
    auto got = store_->GetDocument("docs", v1.doc_id, ann);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->content_hash, "v1");
    ASSERT_EQ(got->chunks.size(), 1u);
    EXPECT_EQ(got->chunks[0].text, "original walrus text");
    EXPECT_THAT(got->acl, ElementsAre("user:ann@x.com"));
    EXPECT_THAT(SearchIds("walrus", Filter(ann)), ElementsAre(v1.added_chunk_ids[0]));
  };

  d.content_hash = "v2";
  d.acl = {"anyone"};
  // Count mismatch.
  auto r = store_->UpsertDocument(d, MakeChunks({"new", "text"}), MakeEmbeddings(1));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  check_intact();
  // Wrong dimensions.
  r = store_->UpsertDocument(d, MakeChunks({"new"}), {{1, 2, 3}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  check_intact();
  // Non-finite value.
  r = store_->UpsertDocument(d, MakeChunks({"new"}),
                             {{1, 2, 3, std::numeric_limits<float>::quiet_NaN()}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  check_intact();
  // Bad ACL string.
  DocumentInput bad = d;
  bad.acl = {"user:ann@x.com", "everyone"};
  r = store_->UpsertDocument(bad, MakeChunks({"new"}), MakeEmbeddings(1));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  check_intact();
  bad.acl = {"user:"};
  EXPECT_EQ(store_->PrepareUpsert(bad).status().code(), absl::StatusCode::kInvalidArgument);
  // Missing fields, metadata over limits, unknown collection.
  bad = d;
  bad.source = "";
  EXPECT_EQ(store_->PrepareUpsert(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad = d;
  bad.content_hash = "";
  EXPECT_EQ(store_->PrepareUpsert(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad = d;
  bad.metadata[std::string(129, 'k')] = "v";
  EXPECT_EQ(store_->PrepareUpsert(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad = d;
  for (int i = 0; i < 65; ++i) bad.metadata[absl::StrCat("k", i)] = "v";
  EXPECT_EQ(store_->PrepareUpsert(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad = d;
  bad.collection = "nope";
  EXPECT_EQ(store_->UpsertDocument(bad, {}, {}).status().code(), absl::StatusCode::kNotFound);
  check_intact();
}

// A failure in the middle of the transaction (after the old chunks were deleted) rolls back.
TEST_F(DocumentStoreTest, FailureMidTransactionRollsBack) {
  const std::string path = TempPath("mid_txn");
  Open(path);
  DocumentInput d = Doc("a", "v1", {"anyone"});
  const UpsertResult v1 = Upsert(d, {"original walrus text", "second part"});
  {
    auto db = SqliteDatabase::Open(path, {});
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)
                    ->Exec("CREATE TRIGGER fail_boom BEFORE INSERT ON chunks "
                           "WHEN NEW.text = 'boom' BEGIN SELECT RAISE(ABORT, 'injected'); END;")
                    .ok());
  }
  d.content_hash = "v2";
  d.title = "New title";
  auto r = store_->UpsertDocument(d, MakeChunks({"fine text", "boom"}), MakeEmbeddings(2));
  EXPECT_FALSE(r.ok());
  auto got = store_->GetDocument("docs", v1.doc_id, {"anyone"});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->content_hash, "v1");
  EXPECT_EQ(got->title, "Title of a");
  ASSERT_EQ(got->chunks.size(), 2u);
  EXPECT_EQ(got->chunks[0].chunk_id, v1.added_chunk_ids[0]);
  EXPECT_THAT(SearchIds("walrus", Filter()), ElementsAre(v1.added_chunk_ids[0]));
  EXPECT_THAT(SearchIds("fine", Filter()), IsEmpty());
  // And the store keeps working.
  const UpsertResult v2 = Upsert(d, {"fine text"});
  EXPECT_EQ(v2.status, UpsertStatus::kUpdated);
  EXPECT_THAT(SearchIds("walrus", Filter()), IsEmpty());
}

TEST_F(DocumentStoreTest, DeleteRemovesChunksAclAndFtsRows) {
  const std::string path = TempPath("delete_docs");
  Open(path);
  const auto a = Upsert(Doc("a", "h"), {"walrus one", "walrus two"});
  const auto b = Upsert(Doc("b", "h"), {"walrus three"});
  const auto c = Upsert(Doc("c", "h"), {"walrus four"});

  auto del = store_->DeleteDocuments("docs", {a.doc_id, a.doc_id, 999999});
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_EQ(del->deleted_count, 1);
  EXPECT_THAT(del->removed_chunk_ids, ElementsAreArray(a.added_chunk_ids));
  EXPECT_THAT(SearchIds("walrus", Filter()),
              UnorderedElementsAreArray({b.added_chunk_ids[0], c.added_chunk_ids[0]}));
  EXPECT_EQ(store_->GetDocument("docs", a.doc_id, {"anyone"}).status().code(),
            absl::StatusCode::kNotFound);

  auto by_ext = store_->DeleteDocumentsByExternalId("docs", "local", {"b", "zzz"});
  ASSERT_TRUE(by_ext.ok());
  EXPECT_EQ(by_ext->deleted_count, 1);
  EXPECT_THAT(by_ext->removed_chunk_ids, ElementsAreArray(b.added_chunk_ids));
  // Wrong source or collection deletes nothing.
  EXPECT_EQ(store_->DeleteDocumentsByExternalId("docs", "gdrive", {"c"})->deleted_count, 0);
  EXPECT_EQ(store_->DeleteDocuments("nope", {c.doc_id}).status().code(),
            absl::StatusCode::kNotFound);
  // Retrying a delete is fine.
  EXPECT_EQ(store_->DeleteDocuments("docs", {a.doc_id})->deleted_count, 0);
  EXPECT_THAT(*store_->AllowedChunkIds(Filter()), ElementsAreArray(c.added_chunk_ids));

  // The FTS index itself no longer has the deleted rows.
  auto db = SqliteDatabase::Open(path, {});
  ASSERT_TRUE(db.ok());
  auto fts = (*db)->Prepare("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH 'walrus'");
  ASSERT_TRUE(fts.ok());
  std::vector<int64_t> rows;
  while (*fts->Step()) rows.push_back(fts->ColumnInt(0));
  EXPECT_THAT(rows, ElementsAreArray(c.added_chunk_ids));
  for (const char* table : {"document_acl", "document_metadata"}) {
    auto stmt = (*db)->Prepare(absl::StrCat("SELECT count(*) FROM ", table, " WHERE doc_id IN (",
                                            a.doc_id, ",", b.doc_id, ")"));
    ASSERT_TRUE(stmt.ok());
    ASSERT_TRUE(*stmt->Step());
    EXPECT_EQ(stmt->ColumnInt(0), 0) << table;
  }
  ASSERT_TRUE((*db)->Exec("INSERT INTO chunks_fts(chunks_fts) VALUES('integrity-check')").ok());
}

TEST_F(DocumentStoreTest, Bm25Ranking) {
  DocumentInput d1 = Doc("many", "h");
  d1.title = "Notes";
  const auto many = Upsert(d1, {"otter otter otter swims in the river today"});
  DocumentInput d2 = Doc("once", "h");
  d2.title = "Notes";
  const auto once = Upsert(d2, {"an otter and many other animals live in the river"});
  DocumentInput d3 = Doc("title", "h");
  d3.title = "Heron";
  const auto title = Upsert(d3, {"the bird stands in the river and waits"});
  DocumentInput d4 = Doc("body", "h");
  d4.title = "Notes";
  const auto body = Upsert(d4, {"the heron stands in the river and waits"});
  Upsert(Doc("none", "h"), {"nothing relevant here at all"});

  auto hits = store_->Bm25Search("otter", Filter(), 10);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 2u);
  EXPECT_EQ((*hits)[0].chunk_id, many.added_chunk_ids[0]);
  EXPECT_EQ((*hits)[1].chunk_id, once.added_chunk_ids[0]);
  EXPECT_GT((*hits)[0].bm25, (*hits)[1].bm25);
  EXPECT_GT((*hits)[1].bm25, 0);

  // A title match outweighs the same match in the body.
  EXPECT_THAT(SearchIds("heron", Filter()),
              ElementsAre(title.added_chunk_ids[0], body.added_chunk_ids[0]));
  // OR semantics: a chunk matching more of the terms ranks first.
  EXPECT_EQ(SearchIds("otter river swims", Filter()).front(), many.added_chunk_ids[0]);
  EXPECT_EQ(SearchIds("river", Filter()).size(), 4u);
  EXPECT_EQ(SearchIds("river", Filter(), 3).size(), 3u);
  EXPECT_THAT(SearchIds("river", Filter(), 0), IsEmpty());
  EXPECT_EQ(store_->Bm25Search("river", Filter(), -1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(DocumentStoreTest, DiacriticsAndCase) {
  const auto a = Upsert(Doc("a", "h"), {"Le Café de la Gare à Zürich"});
  EXPECT_THAT(SearchIds("cafe", Filter()), ElementsAre(a.added_chunk_ids[0]));
  EXPECT_THAT(SearchIds("ZURICH", Filter()), ElementsAre(a.added_chunk_ids[0]));
  EXPECT_THAT(SearchIds("café", Filter()), ElementsAre(a.added_chunk_ids[0]));
}

TEST_F(DocumentStoreTest, HostileQueriesNeverError) {
  const auto a = Upsert(Doc("a", "h"), {"alpha beta gamma near and or not"});
  Upsert(Doc("b", "h"), {"東京 tokyo naïve \xff\xfe broken bytes"});
  const std::vector<std::string> queries = {"\"",
                                            "\"\"",
                                            "*",
                                            "a*",
                                            "NEAR(a b)",
                                            "NEAR(alpha beta, 2)",
                                            "a AND",
                                            "AND",
                                            "OR OR",
                                            "NOT",
                                            "-",
                                            "-alpha",
                                            ":",
                                            "title:alpha",
                                            "{title}: alpha",
                                            "^alpha",
                                            "(",
                                            ")",
                                            "alpha)",
                                            "+",
                                            "'",
                                            "alpha\"beta",
                                            "\\",
                                            "%",
                                            "_",
                                            "\x01\x02",
                                            "\xff\xfe",
                                            "東京",
                                            "naive",
                                            "😀",
                                            std::string(5000, 'a'),
                                            std::string(3000, '"'),
                                            "a b c d e f g h i j k l m n o p q r s",
                                            std::string("\0alpha", 6)};
  for (const std::string& q : queries) {
    auto hits = store_->Bm25Search(q, Filter(), 10);
    EXPECT_TRUE(hits.ok()) << "query [" << q << "]: " << hits.status();
  }
  EXPECT_THAT(SearchIds("\"", Filter()), IsEmpty());
  EXPECT_THAT(SearchIds("", Filter()), IsEmpty());
  EXPECT_THAT(SearchIds("NEAR(alpha zzz)", Filter()), ElementsAre(a.added_chunk_ids[0]));
  EXPECT_THAT(SearchIds("-alpha", Filter()), ElementsAre(a.added_chunk_ids[0]));
  EXPECT_EQ(SearchIds("東京", Filter()).size(), 1u);
  EXPECT_EQ(SearchIds("broken", Filter()).size(), 1u);
}

TEST_F(DocumentStoreTest, Filters) {
  CollectionRecord other;
  other.name = "other";
  other.embedding_model = "test-embed";
  other.dimensions = kDims;
  ASSERT_TRUE(store_->CreateCollection(other).ok());

  DocumentInput d1 = Doc("1", "h");
  d1.source = "gdrive";
  d1.modified_time_us = 1000;
  d1.metadata = {{"folder", "finance"}, {"author", "ann"}};
  const auto r1 = Upsert(d1, {"report text one"});
  DocumentInput d2 = Doc("2", "h");
  d2.source = "gmail";
  d2.modified_time_us = 2000;
  d2.metadata = {{"folder", "finance"}, {"author", "bob"}};
  const auto r2 = Upsert(d2, {"report text two"});
  DocumentInput d3 = Doc("3", "h");
  d3.source = "gdrive";  // no modified time
  d3.metadata = {{"folder", "hr"}};
  const auto r3 = Upsert(d3, {"report text three"});
  DocumentInput d4 = Doc("4", "h");
  d4.collection = "other";
  d4.source = "gdrive";
  d4.modified_time_us = 1500;
  const auto r4 = Upsert(d4, {"report text four"});

  const int64_t c1 = r1.added_chunk_ids[0], c2 = r2.added_chunk_ids[0], c3 = r3.added_chunk_ids[0],
                c4 = r4.added_chunk_ids[0];
  auto both = [&](const AccessFilter& f) {
    auto allowed = store_->AllowedChunkIds(f);
    EXPECT_TRUE(allowed.ok()) << allowed.status();
    auto searched = SearchIds("report", f);
    std::sort(searched.begin(), searched.end());
    EXPECT_EQ(searched, *allowed);
    return *allowed;
  };

  AccessFilter f = Filter();
  EXPECT_THAT(both(f), ElementsAre(c1, c2, c3));
  f.collections = {"docs", "other"};
  EXPECT_THAT(both(f), ElementsAre(c1, c2, c3, c4));
  f.sources = {"gdrive"};
  EXPECT_THAT(both(f), ElementsAre(c1, c3, c4));
  f.modified_after_us = 1000;
  EXPECT_THAT(both(f), ElementsAre(c1, c4));  // inclusive; no modified time excluded
  f.modified_before_us = 1500;
  EXPECT_THAT(both(f), ElementsAre(c1));  // exclusive
  f = Filter();
  f.modified_before_us = 2000;
  EXPECT_THAT(both(f), ElementsAre(c1));
  f = Filter();
  f.metadata_equals = {{"folder", "finance"}};
  EXPECT_THAT(both(f), ElementsAre(c1, c2));
  f.metadata_equals.push_back({"author", "bob"});
  EXPECT_THAT(both(f), ElementsAre(c2));
  f.metadata_equals = {{"folder", "Finance"}};
  EXPECT_THAT(both(f), IsEmpty());
  f = Filter();
  f.document_ids = {r1.doc_id, r3.doc_id, r4.doc_id};  // r4 is in another collection
  EXPECT_THAT(both(f), ElementsAre(c1, c3));
  f.sources = {"gmail"};
  EXPECT_THAT(both(f), IsEmpty());

  f = Filter();
  f.collections = {};
  EXPECT_EQ(store_->AllowedChunkIds(f).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Bm25Search("report", f, 5).status().code(), absl::StatusCode::kInvalidArgument);
  f.collections = {"docs", "missing"};
  EXPECT_EQ(store_->AllowedChunkIds(f).status().code(), absl::StatusCode::kNotFound);
  f = Filter({});
  EXPECT_THAT(both(f), IsEmpty());
  f = Filter();
  for (int i = 0; i < 40000; ++i) f.document_ids.push_back(i);
  EXPECT_EQ(store_->AllowedChunkIds(f).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DocumentStoreTest, PrincipalsAreNormalized) {
  const auto a = Upsert(Doc("a", "h", {" User:Ann@X.com ", "GROUP:fin@x.com", "user:ann@x.com"}),
                        {"secret plans"});
  EXPECT_THAT(SearchIds("secret", Filter({"user:ann@x.com"})), ElementsAre(a.added_chunk_ids[0]));
  EXPECT_THAT(SearchIds("secret", Filter({"USER:ANN@X.COM"})), ElementsAre(a.added_chunk_ids[0]));
  EXPECT_THAT(SearchIds("secret", Filter({"group:fin@x.com"})), ElementsAre(a.added_chunk_ids[0]));
  EXPECT_THAT(SearchIds("secret", Filter({"anyone", "user:bob@x.com", "domain:x.com"})), IsEmpty());
  auto got = store_->GetDocument("docs", a.doc_id, {"user:ann@x.com"});
  ASSERT_TRUE(got.ok());
  EXPECT_THAT(got->acl, ElementsAre("group:fin@x.com", "user:ann@x.com"));
  // An empty ACL: visible to no one.
  const auto none = Upsert(Doc("none", "h", {}), {"hidden plans"});
  EXPECT_THAT(SearchIds("hidden", Filter(ExpandPrincipal("ann@x.com", {"fin@x.com"}))), IsEmpty());
  EXPECT_THAT(*store_->AllowedChunkIds(Filter(ExpandPrincipal("ann@x.com", {"fin@x.com"}))),
              ElementsAre(a.added_chunk_ids[0]));
  (void)none;
}

TEST_F(DocumentStoreTest, GetDocumentHidesInvisibleDocuments) {
  DocumentInput d = Doc("a", "h", {"user:ann@x.com"});
  d.metadata = {{"k", "v"}};
  d.modified_time_us = 42;
  const auto a = Upsert(d, {"first chunk", "second chunk", "third chunk"});
  auto got = store_->GetDocument("docs", a.doc_id, {"user:ann@x.com"});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->external_id, "a");
  EXPECT_EQ(got->source, "local");
  EXPECT_EQ(got->title, "Title of a");
  EXPECT_EQ(got->uri, "file:///a");
  EXPECT_EQ(got->mime_type, "text/plain");
  EXPECT_EQ(got->modified_time_us, 42);
  EXPECT_EQ(got->metadata, d.metadata);
  ASSERT_EQ(got->chunks.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(got->chunks[i].chunk_index, i);
    EXPECT_EQ(got->chunks[i].chunk_id, a.added_chunk_ids[i]);
    EXPECT_EQ(got->chunks[i].metadata, d.metadata);
  }
  const auto hidden = store_->GetDocument("docs", a.doc_id, {"user:bob@x.com", "anyone"});
  const auto absent = store_->GetDocument("docs", a.doc_id + 100, {"user:ann@x.com"});
  const auto no_principals = store_->GetDocument("docs", a.doc_id, {});
  const auto wrong_collection = store_->GetDocument("zzz", a.doc_id, {"user:ann@x.com"});
  for (const auto* s : {&hidden, &absent, &no_principals, &wrong_collection}) {
    EXPECT_EQ(s->status().code(), absl::StatusCode::kNotFound);
  }
  // Indistinguishable apart from the id in the message.
  EXPECT_EQ(hidden.status().message(),
            absl::StrCat("document ", a.doc_id, " not found in collection \"docs\""));
}

TEST_F(DocumentStoreTest, GetChunksKeepsOrderAndSkipsMissing) {
  DocumentInput d = Doc("a", "h");
  d.metadata = {{"author", "ann"}};
  d.modified_time_us = 7;
  const auto a = Upsert(d, {"one", "two", "three"});
  const auto b = Upsert(Doc("b", "h"), {"four"});
  auto chunks = store_->GetChunks({b.added_chunk_ids[0], a.added_chunk_ids[2], 123456,
                                   a.added_chunk_ids[0], b.added_chunk_ids[0]});
  ASSERT_TRUE(chunks.ok());
  ASSERT_EQ(chunks->size(), 3u);
  EXPECT_EQ((*chunks)[0].text, "four");
  EXPECT_EQ((*chunks)[0].external_id, "b");
  EXPECT_THAT((*chunks)[0].metadata, IsEmpty());
  EXPECT_EQ((*chunks)[1].text, "three");
  EXPECT_EQ((*chunks)[1].chunk_index, 2);
  EXPECT_EQ((*chunks)[1].doc_id, a.doc_id);
  EXPECT_EQ((*chunks)[1].collection, "docs");
  EXPECT_EQ((*chunks)[1].title, "Title of a");
  EXPECT_EQ((*chunks)[1].uri, "file:///a");
  EXPECT_EQ((*chunks)[1].modified_time_us, 7);
  EXPECT_EQ((*chunks)[1].metadata, d.metadata);
  EXPECT_EQ((*chunks)[1].token_count, 1);
  EXPECT_EQ((*chunks)[2].text, "one");
  // Many ids (batched internally).
  std::vector<int64_t> many;
  for (int i = 0; i < 1200; ++i) many.push_back(i);
  EXPECT_EQ(store_->GetChunks(many)->size(), 4u);
}

TEST_F(DocumentStoreTest, ForEachEmbeddingRoundTrips) {
  CollectionRecord other;
  other.name = "other";
  other.embedding_model = "m";
  other.dimensions = 2;
  ASSERT_TRUE(store_->CreateCollection(other).ok());
  const std::vector<std::vector<float>> e = {{1.5f, -2.25f, 3e-38f, -0.0f},
                                             {std::numeric_limits<float>::max(), 0, 1, -1}};
  auto a = store_->UpsertDocument(Doc("a", "h"), MakeChunks({"x", "y"}), e);
  ASSERT_TRUE(a.ok());
  DocumentInput o = Doc("o", "h");
  o.collection = "other";
  ASSERT_TRUE(store_->UpsertDocument(o, MakeChunks({"z"}), {{9, 9}}).ok());

  std::vector<int64_t> ids;
  std::vector<std::vector<float>> vectors;
  ASSERT_TRUE(store_
                  ->ForEachEmbedding("docs",
                                     [&](int64_t id, const float* v, int dims) {
                                       ids.push_back(id);
                                       vectors.emplace_back(v, v + dims);
                                       return absl::OkStatus();
                                     })
                  .ok());
  EXPECT_EQ(ids, a->added_chunk_ids);
  ASSERT_EQ(vectors.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    for (size_t k = 0; k < 4; ++k) {
      EXPECT_EQ(std::memcmp(&vectors[i][k], &e[i][k], sizeof(float)), 0);
    }
  }
  int calls = 0;
  const absl::Status stop = store_->ForEachEmbedding("docs", [&](int64_t, const float*, int) {
    ++calls;
    return absl::CancelledError("enough");
  });
  EXPECT_EQ(stop.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(
      store_->ForEachEmbedding("nope", [](int64_t, const float*, int) { return absl::OkStatus(); })
          .code(),
      absl::StatusCode::kNotFound);
}

TEST_F(DocumentStoreTest, InvalidUtf8TextIsStoredAndSearchable) {
  const std::string text = "prefix \xff\xfe\xc3 suffix";
  const auto a = Upsert(Doc("a", "h"), {text});
  EXPECT_THAT(SearchIds("suffix", Filter()), ElementsAre(a.added_chunk_ids[0]));
  auto chunks = store_->GetChunks(a.added_chunk_ids);
  ASSERT_TRUE(chunks.ok());
  EXPECT_EQ((*chunks)[0].text, text);
  ASSERT_TRUE(store_->DeleteDocuments("docs", {a.doc_id}).ok());
  EXPECT_THAT(SearchIds("suffix", Filter()), IsEmpty());
}

TEST_F(DocumentStoreTest, ChunkerOutputRoundTrips) {
  const std::vector<Section> sections = {{"Intro", "Tessera stores chunks.\n\nWith ACLs.", 1},
                                         {"Details", "Hybrid search with BM25.", 2}};
  const auto chunks = ChunkDocument("Guide", sections, {64, 8}, WordTokenizer());
  DocumentInput d = Doc("guide", ContentHash("Guide", sections));
  auto r = store_->UpsertDocument(d, chunks, MakeEmbeddings(chunks.size()));
  ASSERT_TRUE(r.ok()) << r.status();
  auto got = store_->GetDocument("docs", r->doc_id, {"anyone"});
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->chunks.size(), chunks.size());
  for (size_t i = 0; i < chunks.size(); ++i) {
    EXPECT_EQ(got->chunks[i].text, chunks[i].text);
    EXPECT_EQ(got->chunks[i].heading, chunks[i].heading);
    EXPECT_EQ(got->chunks[i].section_index, chunks[i].section_index);
    EXPECT_EQ(got->chunks[i].token_count, chunks[i].token_count);
  }
  // Headings are searchable.
  EXPECT_EQ(SearchIds("details", Filter()).size(), 1u);
}

TEST_F(DocumentStoreTest, ConcurrentWritersAndReaders) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < 40; ++i) {
        DocumentInput d = Doc(absl::StrCat("t", t, "-", i), "h", {absl::StrCat("user:u", t)});
        auto r = store_->UpsertDocument(d, MakeChunks({"shared words", "more shared words"}),
                                        MakeEmbeddings(2));
        ASSERT_TRUE(r.ok()) << r.status();
        auto hits = store_->Bm25Search("shared", Filter({absl::StrCat("user:u", t)}), 1000);
        ASSERT_TRUE(hits.ok()) << hits.status();
        ASSERT_EQ(hits->size(), static_cast<size_t>(2 * (i + 1)));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(store_->GetCollection("docs")->chunk_count, 4 * 40 * 2);
}

}  // namespace
}  // namespace tessera::retrieval

namespace tessera::retrieval {
namespace {

class DocumentStoreBatchTest : public DocumentStoreTest {};

TEST_F(DocumentStoreBatchTest, BatchCommitsGoodDocumentsAndUndoesOnlyTheFailedOne) {
  const UpsertResult old = Upsert(Doc("keep", "v1"), {"original otter text"});
  std::vector<UpsertInput> batch(4);
  batch[0] = {Doc("new-1", "h1"), MakeChunks({"first badger"}), MakeEmbeddings(1)};
  // A failing document in the middle: chunk and embedding counts differ.
  batch[1] = {Doc("broken", "h2"), MakeChunks({"never stored heron"}), MakeEmbeddings(2)};
  batch[2] = {Doc("keep", "v2"), MakeChunks({"replaced otter text"}), MakeEmbeddings(1)};
  batch[3] = {Doc("new-1", "h1"), {}, {}};  // the same document again, unchanged now
  auto results = store_->UpsertDocuments(batch);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 4u);
  ASSERT_TRUE((*results)[0].ok());
  EXPECT_EQ((*results)[0]->status, UpsertStatus::kCreated);
  EXPECT_EQ((*results)[1].status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE((*results)[2].ok());
  EXPECT_EQ((*results)[2]->status, UpsertStatus::kUpdated);
  EXPECT_EQ((*results)[2]->removed_chunk_ids, old.added_chunk_ids);
  ASSERT_TRUE((*results)[3].ok());
  EXPECT_EQ((*results)[3]->status, UpsertStatus::kUnchanged);
  EXPECT_EQ((*results)[3]->doc_id, (*results)[0]->doc_id);

  EXPECT_EQ(SearchIds("badger", Filter()).size(), 1u);
  EXPECT_TRUE(SearchIds("heron", Filter()).empty());  // nothing of the failed one
  EXPECT_TRUE(SearchIds("original", Filter()).empty());
  EXPECT_EQ(SearchIds("replaced", Filter()).size(), 1u);
  auto c = store_->GetCollection("docs");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->document_count, 2);
  EXPECT_EQ(c->chunk_count, 2);
  // An empty batch is fine.
  auto none = store_->UpsertDocuments({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

}  // namespace
}  // namespace tessera::retrieval
