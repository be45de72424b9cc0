#include "common/sqlite.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/file_system.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

std::string TempPath(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return absl::StrCat(tmp ? tmp : "/tmp", "/", name, "_", ::getpid(), ".db");
}

const std::vector<SqliteMigration> kMigrations = {
    {1, "items", "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, data BLOB);"},
    {2, "score", "ALTER TABLE items ADD COLUMN score REAL; CREATE INDEX items_score ON items(score);"},
};

TEST(SqliteTest, MigrateBindStepRoundTrip) {
  auto db = SqliteDatabase::Open(":memory:", {});
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_TRUE((*db)->Migrate(kMigrations).ok());
  EXPECT_EQ(*(*db)->SchemaVersion(), 2);

  auto ins = (*db)->Prepare("INSERT INTO items(name, data, score) VALUES (?, ?, ?)");
  ASSERT_TRUE(ins.ok()) << ins.status();
  std::string blob("\0\1\2", 3);
  ASSERT_TRUE(ins->Bind(1, "alpha").ok());
  ASSERT_TRUE(ins->BindBlob(2, blob).ok());
  ASSERT_TRUE(ins->Bind(3, 0.5).ok());
  ASSERT_TRUE(ins->Run().ok());
  EXPECT_EQ((*db)->LastInsertRowId(), 1);
  ASSERT_TRUE(ins->Reset().ok());
  ASSERT_TRUE(ins->Bind(1, std::string("beta")).ok());
  ASSERT_TRUE(ins->BindNull(2).ok());
  ASSERT_TRUE(ins->Bind(3, 2).ok());
  ASSERT_TRUE(ins->Run().ok());

  auto sel = (*db)->Prepare("SELECT id, name, data, score FROM items ORDER BY id");
  ASSERT_TRUE(sel.ok());
  ASSERT_TRUE(*sel->Step());
  EXPECT_EQ(sel->ColumnInt(0), 1);
  EXPECT_EQ(sel->ColumnText(1), "alpha");
  EXPECT_EQ(sel->ColumnBlob(2), blob);
  EXPECT_DOUBLE_EQ(sel->ColumnDouble(3), 0.5);
  ASSERT_TRUE(*sel->Step());
  EXPECT_TRUE(sel->IsNull(2));
  EXPECT_FALSE(*sel->Step());
}

TEST(SqliteTest, ErrorCodesAreSpecific) {
  auto db = *SqliteDatabase::Open(":memory:", {});
  ASSERT_TRUE(db->Migrate(kMigrations).ok());
  ASSERT_TRUE(db->Exec("INSERT INTO items(name) VALUES ('a')").ok());
  absl::Status dup = db->Exec("INSERT INTO items(name) VALUES ('a')");
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists) << dup;
  EXPECT_EQ(db->Exec("INSERT INTO items(name) VALUES (NULL)").code(),
            absl::StatusCode::kFailedPrecondition);
  auto bad = db->Prepare("SELEC nonsense");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("SELEC nonsense"), std::string::npos);
  auto stmt = *db->Prepare("SELECT ?");
  EXPECT_EQ(stmt.Bind(5, 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(db->Prepare("   ").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SqliteTest, TransactionRollsBackUnlessCommitted) {
  auto db = *SqliteDatabase::Open(":memory:", {});
  ASSERT_TRUE(db->Migrate(kMigrations).ok());
  {
    auto txn = *SqliteTransaction::Begin(db.get());
    ASSERT_TRUE(db->Exec("INSERT INTO items(name) VALUES ('gone')").ok());
  }  // destroyed without Commit
  {
    auto txn = *SqliteTransaction::Begin(db.get());
    ASSERT_TRUE(db->Exec("INSERT INTO items(name) VALUES ('kept')").ok());
    ASSERT_TRUE(txn->Commit().ok());
    EXPECT_EQ(txn->Commit().code(), absl::StatusCode::kFailedPrecondition);
  }
  auto sel = *db->Prepare("SELECT group_concat(name) FROM items");
  ASSERT_TRUE(*sel.Step());
  EXPECT_EQ(sel.ColumnText(0), "kept");
}

TEST(SqliteTest, MigrationsAreIncrementalAndNewerDatabaseRefused) {
  std::string path = TempPath("migrate");
  {
    auto db = *SqliteDatabase::Open(path, {});
    ASSERT_TRUE(db->Migrate({kMigrations[0]}).ok());
    EXPECT_EQ(*db->SchemaVersion(), 1);
    ASSERT_TRUE(db->Exec("INSERT INTO items(name) VALUES ('x')").ok());
  }
  {
    auto db = *SqliteDatabase::Open(path, {});
    ASSERT_TRUE(db->Migrate(kMigrations).ok());  // applies only #2, keeps data
    EXPECT_EQ(*db->SchemaVersion(), 2);
    auto sel = *db->Prepare("SELECT count(*) FROM items");
    ASSERT_TRUE(*sel.Step());
    EXPECT_EQ(sel.ColumnInt(0), 1);
  }
  {
    auto db = *SqliteDatabase::Open(path, {});
    absl::Status s = db->Migrate({kMigrations[0]});
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(s.message().find("newer"), std::string::npos);
  }
}

TEST(SqliteTest, FailedMigrationLeavesVersionUnchanged) {
  auto db = *SqliteDatabase::Open(":memory:", {});
  std::vector<SqliteMigration> bad = {kMigrations[0], {2, "broken", "CREATE TABLE t(x); SELEC oops;"}};
  absl::Status s = db->Migrate(bad);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("migration 2 (broken)"), std::string::npos) << s;
  EXPECT_EQ(*db->SchemaVersion(), 1);
  EXPECT_FALSE(db->Exec("SELECT * FROM t").ok());  // the partial step was rolled back
  EXPECT_EQ(db->Migrate({{2, "gap", "SELECT 1"}}).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(SqliteTest, UsesWalAndFileThatIsNotADatabaseIsDataLoss) {
  std::string path = TempPath("wal");
  {
    auto db = *SqliteDatabase::Open(path, {});
    auto stmt = *db->Prepare("PRAGMA journal_mode");
    ASSERT_TRUE(*stmt.Step());
    EXPECT_EQ(stmt.ColumnText(0), "wal");
  }
  std::string junk = TempPath("junk");
  ASSERT_TRUE(LocalFileSystem()->WriteFileAtomic(junk, std::string(4096, 'z')).ok());
  auto db = SqliteDatabase::Open(junk, {});
  EXPECT_EQ(db.status().code(), absl::StatusCode::kDataLoss) << db.status();
  auto missing = SqliteDatabase::Open("/nonexistent/dir/x.db", {});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
}

TEST(SqliteTest, CommittedWriteSurvivesKill9) {
  std::string path = TempPath("durable");
  {
    auto db = *SqliteDatabase::Open(path, {});
    ASSERT_TRUE(db->Migrate(kMigrations).ok());
  }
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto db = SqliteDatabase::Open(path, {});
    if (!db.ok()) _exit(2);
    auto txn = SqliteTransaction::Begin(db->get());
    if (!txn.ok() || !(*db)->Exec("INSERT INTO items(name) VALUES ('durable')").ok() ||
        !(*txn)->Commit().ok()) {
      _exit(3);
    }
    // An uncommitted write in flight when the process dies.
    if (!(*db)->Exec("BEGIN; INSERT INTO items(name) VALUES ('lost')").ok()) _exit(4);
    kill(getpid(), SIGKILL);
    _exit(5);
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exited with " << WEXITSTATUS(wstatus);
  auto db = *SqliteDatabase::Open(path, {});
  auto sel = *db->Prepare("SELECT group_concat(name) FROM items");
  ASSERT_TRUE(*sel.Step());
  EXPECT_EQ(sel.ColumnText(0), "durable");
}

TEST(SqliteTest, BusyWriterGetsUnavailable) {
  std::string path = TempPath("busy");
  auto a = *SqliteDatabase::Open(path, {.busy_timeout = absl::Milliseconds(50)});
  auto b = *SqliteDatabase::Open(path, {.busy_timeout = absl::Milliseconds(50)});
  ASSERT_TRUE(a->Migrate(kMigrations).ok());
  auto txn = *SqliteTransaction::Begin(a.get());
  auto other = SqliteTransaction::Begin(b.get());
  EXPECT_EQ(other.status().code(), absl::StatusCode::kUnavailable) << other.status();
}

}  // namespace
}  // namespace tessera
