#include "connectors/framework/sync_runner.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/sqlite.h"
#include "connectors/framework/checkpoint_store.h"
#include "connectors/framework/in_memory.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::connectors {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

ConnectorDocument Doc(const std::string &id, const std::string &text = "body") {
  ConnectorDocument d;
  d.id = id;
  d.title = absl::StrCat("title ", id);
  d.sections.push_back({"", text, 0});
  d.acl = {"user:ann@x.com"};
  return d;
}

std::vector<std::string> Keys(const std::map<std::string, ConnectorDocument> &m) {
  std::vector<std::string> out;
  for (const auto &[k, v] : m) out.push_back(k);
  return out;
}

class SyncRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = SqliteDatabase::Open(":memory:", {});
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    auto store = SqliteCheckpointStore::Create(db_.get(), &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  std::unique_ptr<SyncRunner> Runner(SyncRunner::Options options = {}) {
    if (options.connector_id.empty()) options.connector_id = "mem:test";
    return std::make_unique<SyncRunner>(&connector_, &sink_, store_.get(), options);
  }

  SimulatedClock clock_;
  std::unique_ptr<SqliteDatabase> db_;
  std::unique_ptr<SqliteCheckpointStore> store_;
  InMemoryConnector connector_{/*page_size=*/2};
  InMemorySink sink_;
};

TEST_F(SyncRunnerTest, CheckpointStoreRoundTrip) {
  auto missing = store_->Get("c", "s");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  ASSERT_TRUE(store_->Put("c", "s", "one").ok());
  ASSERT_TRUE(store_->Put("c", "s", "two").ok());
  ASSERT_TRUE(store_->Put("c", "t", "other").ok());
  EXPECT_EQ(**store_->Get("c", "s"), "two");
  EXPECT_EQ(**store_->Get("c", "t"), "other");
  ASSERT_TRUE(store_->Clear("c", "s").ok());
  EXPECT_FALSE(store_->Get("c", "s")->has_value());
}

TEST_F(SyncRunnerTest, FullThenIncrementalWithDeletes) {
  for (const char *id : {"a", "b", "c"}) connector_.Put(Doc(id));
  auto runner = Runner();
  auto stats = runner->SyncScope("main");
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_TRUE(stats->full_sync);
  EXPECT_EQ(stats->indexed, 3);
  EXPECT_EQ(stats->pages, 2);
  EXPECT_EQ(Keys(sink_.Documents("memory")), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(**store_->Get("mem:test", "main"), "inc:3");

  connector_.Put(Doc("b", "edited"));
  connector_.Remove("a");
  connector_.Put(Doc("d"));
  stats = runner->SyncScope("main");
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_FALSE(stats->full_sync);
  EXPECT_EQ(stats->deleted, 1);
  EXPECT_EQ(stats->indexed, 2);
  auto docs = sink_.Documents("memory");
  EXPECT_EQ(Keys(docs), (std::vector<std::string>{"b", "c", "d"}));
  EXPECT_EQ(docs["b"].sections[0].text, "edited");
}

TEST_F(SyncRunnerTest, CrashBetweenAckAndCommitReplaysNeverSkips) {
  for (const char *id : {"a", "b", "c", "d", "e"}) connector_.Put(Doc(id));
  int pages = 0;
  SyncRunner::Options crashing;
  crashing.before_commit = [&](const ChangePage &) {
    // Crash after the sink acknowledged the second page.
    return ++pages == 2 ? absl::AbortedError("simulated crash") : absl::OkStatus();
  };
  auto stats = Runner(crashing)->SyncScope("main");
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(**store_->Get("mem:test", "main"), "full:5:2");  // first page only
  EXPECT_EQ(sink_.UpsertCounts().size(), 4u);                // c, d acked

  // Restart: resumes from the committed checkpoint, replays page 2.
  stats = Runner()->SyncScope("main");
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(Keys(sink_.Documents("memory")), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_THAT(sink_.UpsertCounts(),
              ElementsAre(Pair("a", 1), Pair("b", 1), Pair("c", 2), Pair("d", 2), Pair("e", 1)));
  EXPECT_EQ(**store_->Get("mem:test", "main"), "inc:5");
}

TEST_F(SyncRunnerTest, CrashDuringIncrementalReplaysDelete) {
  for (const char *id : {"a", "b"}) connector_.Put(Doc(id));
  ASSERT_TRUE(Runner()->SyncScope("main").ok());
  connector_.Remove("a");
  connector_.Put(Doc("c"));
  SyncRunner::Options crashing;
  crashing.before_commit = [](const ChangePage &) { return absl::AbortedError("crash"); };
  EXPECT_FALSE(Runner(crashing)->SyncScope("main").ok());
  EXPECT_EQ(**store_->Get("mem:test", "main"), "inc:2");
  auto stats = Runner()->SyncScope("main");
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(Keys(sink_.Documents("memory")), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(**store_->Get("mem:test", "main"), "inc:4");
}

TEST_F(SyncRunnerTest, SinkFailureDoesNotCommit) {
  for (const char *id : {"a", "b", "c"}) connector_.Put(Doc(id));
  sink_.FailNextUpserts(1);
  auto stats = Runner()->SyncScope("main");
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(store_->Get("mem:test", "main")->has_value());
  ASSERT_TRUE(Runner()->SyncScope("main").ok());
  EXPECT_EQ(sink_.Documents("memory").size(), 3u);
}

TEST_F(SyncRunnerTest, BrokenDocumentIsCountedAndSyncGoesOn) {
  connector_.Put(Doc("a"));
  connector_.PutBroken("b");
  connector_.Put(Doc("c"));
  auto stats = Runner()->SyncScope("main");
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->seen, 3);
  EXPECT_EQ(stats->indexed, 2);
  EXPECT_EQ(stats->failed, 1);
  ASSERT_EQ(stats->failures.size(), 1u);
  EXPECT_EQ(stats->failures[0].id, "b");
  EXPECT_EQ(stats->failures[0].status.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Keys(sink_.Documents("memory")), (std::vector<std::string>{"a", "c"}));
}

TEST_F(SyncRunnerTest, PruneRemovesStaleIds) {
  for (const char *id : {"a", "b", "c"}) connector_.Put(Doc(id));
  auto runner = Runner();
  ASSERT_TRUE(runner->SyncScope("main").ok());
  connector_.RemoveSilently("b");  // the delete event is lost
  auto stats = runner->SyncScope("main");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(sink_.Documents("memory").size(), 3u);
  auto pruned = runner->Prune();
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(*pruned, 1);
  EXPECT_EQ(Keys(sink_.Documents("memory")), (std::vector<std::string>{"a", "c"}));
}

TEST_F(SyncRunnerTest, FullSyncPrunesLeftovers) {
  // The sink holds a document from an earlier life of the connector.
  ASSERT_TRUE(sink_.Upsert("memory", {Doc("old")}).ok());
  connector_.Put(Doc("a"));
  auto stats = Runner()->SyncAll();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->pruned, 1);
  EXPECT_EQ(Keys(sink_.Documents("memory")), (std::vector<std::string>{"a"}));
}

TEST_F(SyncRunnerTest, BadCheckpointSurfaces) {
  ASSERT_TRUE(store_->Put("mem:test", "main", "garbage").ok());
  EXPECT_EQ(Runner()->SyncScope("main").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SyncRunnerTest, CheckpointSurvivesReopen) {
  std::string path = absl::StrCat(::testing::TempDir(), "/ckpt.db");
  {
    auto db = SqliteDatabase::Open(path, {});
    ASSERT_TRUE(db.ok());
    auto store = SqliteCheckpointStore::Create(db->get(), &clock_);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Put("c", "s", "tok-42").ok());
  }
  auto db = SqliteDatabase::Open(path, {});
  ASSERT_TRUE(db.ok());
  auto store = SqliteCheckpointStore::Create(db->get(), &clock_);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(**(*store)->Get("c", "s"), "tok-42");
}

}  // namespace
}  // namespace tessera::connectors
