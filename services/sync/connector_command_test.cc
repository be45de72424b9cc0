#include "services/sync/connector_command.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/file_system.h"
#include "gtest/gtest.h"
#include "services/sync/sync_state.h"

namespace tessera::sync {
namespace {

class ConnectorCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char *tmp = std::getenv("TEST_TMPDIR");
    dir_ = absl::StrCat(tmp ? tmp : "/tmp", "/cc_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(LocalFileSystem()->CreateDirectories(dir_).ok());
    opts_.sync_config = dir_ + "/sync.json";
    opts_.kind = "drive";
  }

  std::string Write(const std::string &name, const std::string &text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  std::string Read(const std::string &path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }

  int Run(bool add, std::string *out, std::string *err) {
    char *obuf = nullptr, *ebuf = nullptr;
    size_t olen = 0, elen = 0;
    FILE *o = open_memstream(&obuf, &olen);
    FILE *e = open_memstream(&ebuf, &elen);
    const int code = add ? ConnectorAddCommand(opts_, o, e) : ConnectorListCommand(opts_, o, e);
    std::fclose(o);
    std::fclose(e);
    *out = std::string(obuf, olen);
    *err = std::string(ebuf, elen);
    std::free(obuf);
    std::free(ebuf);
    return code;
  }

  std::string dir_;
  ConnectorCommandOptions opts_;
};

constexpr char kDrive[] = R"({"collection": "acme", "interval": "5m",
  "drive": {"api_base": "http://127.0.0.1:9", "token": "s3cret-token"}})";

TEST_F(ConnectorCommandTest, AddCreatesTheFileAndListShowsIt) {
  opts_.config_path = Write("drive.json", kDrive);
  opts_.name = "acme-drive";
  std::string out, err;
  ASSERT_EQ(Run(true, &out, &err), 0) << err;
  EXPECT_TRUE(absl::StrContains(out, "added connector acme-drive (drive)")) << out;
  EXPECT_TRUE(absl::StrContains(out, "collection acme, every 5m")) << out;
  EXPECT_FALSE(absl::StrContains(out + err, "s3cret")) << "a token was printed";
  struct stat st;
  ASSERT_EQ(stat(opts_.sync_config.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // The daemon can read what was written.
  absl::StatusOr<SyncConfig> c = LoadSyncConfig(opts_.sync_config, LocalFileSystem());
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->connectors.size(), 1u);
  EXPECT_EQ(c->connectors[0].id, "acme-drive");
  EXPECT_EQ(c->connectors[0].type, "drive");
  EXPECT_EQ(c->connectors[0].drive.auth.token, "s3cret-token");
  // No temporary file is left next to it.
  absl::StatusOr<std::vector<std::string>> names = LocalFileSystem()->ListDirectory(dir_);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(names->size(), 2u) << absl::StrJoin(*names, ",");

  // A second one, with its id in the file; token_env need not be set here.
  opts_.name.clear();
  opts_.config_path = Write("hr.json", R"({"id": "hr-drive", "type": "drive",
      "collection": "hr", "enabled": false,
      "drive": {"api_base": "http://127.0.0.1:9", "token_env": "TESSERA_TEST_UNSET_VAR"}})");
  ASSERT_EQ(Run(true, &out, &err), 0) << err;
  EXPECT_TRUE(absl::StrContains(err, "TESSERA_TEST_UNSET_VAR is not set here")) << err;
  EXPECT_TRUE(
      absl::StrContains(Read(opts_.sync_config), "\"token_env\": \"TESSERA_TEST_UNSET_VAR\""));

  ASSERT_EQ(Run(false, &out, &err), 0) << err;
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << out;
  EXPECT_TRUE(absl::StartsWith(lines[0], "NAME        KIND   COLLECTION  SCHEDULE")) << out;
  EXPECT_TRUE(absl::StartsWith(lines[1], "acme-drive  drive  acme        every 5m  never run"))
      << out;
  EXPECT_TRUE(absl::StartsWith(lines[2], "hr-drive    drive  hr          disabled  never run"))
      << out;
}

TEST_F(ConnectorCommandTest, ListShowsTheLastRunFromTheStateDir) {
  Write("sync.json", R"({"connectors": [
      {"id": "a", "type": "drive", "collection": "ca", "drive": {"token": "t"}},
      {"id": "b", "type": "drive", "collection": "cb", "interval": "1h", "drive": {"token": "t"}},
      {"id": "c", "type": "drive", "collection": "cc", "drive": {"token": "t"}}]})");
  const std::string state = opts_.sync_config + ".state";  // sync's default
  SyncRunRecord a;
  a.connector_id = "a";
  a.started = absl::FromUnixSeconds(1800000000);
  a.finished = a.started + absl::Seconds(90);
  a.last_success = a.finished;
  a.seen = 120;
  a.indexed = 117;
  a.failed = 3;
  ASSERT_TRUE(WriteSyncRunRecord(state, a, LocalFileSystem()).ok());
  SyncRunRecord b = a;
  b.connector_id = "b";
  b.error = "UNAVAILABLE: retrieval is down";
  ASSERT_TRUE(WriteSyncRunRecord(state, b, LocalFileSystem()).ok());
  SyncRunRecord c = a;
  c.connector_id = "c";
  c.running = true;
  c.pid = 4242;
  c.error.clear();
  ASSERT_TRUE(WriteSyncRunRecord(state, c, LocalFileSystem()).ok());
  opts_.pid_alive = [](int64_t) { return false; };  // the daemon was killed

  std::string out, err;
  ASSERT_EQ(Run(false, &out, &err), 0) << err;
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u) << out;
  EXPECT_EQ(lines[1],
            "a     drive  ca          every 15m  ok           2027-01-15 08:01:30Z  120   117      "
            "3")
      << out;
  EXPECT_TRUE(absl::StrContains(lines[2], "every 1h   failed")) << out;
  EXPECT_TRUE(absl::EndsWith(lines[2], "UNAVAILABLE: retrieval is down")) << out;
  EXPECT_TRUE(absl::StrContains(lines[3], "interrupted  2027-01-15 08:00:00Z")) << out;

  opts_.pid_alive = [](int64_t pid) { return pid == 4242; };
  ASSERT_EQ(Run(false, &out, &err), 0) << err;
  EXPECT_TRUE(
      absl::StrContains(out, "c     drive  cc          every 15m  running  2027-01-15 08:00:00Z"))
      << out;
}

TEST_F(ConnectorCommandTest, BadConfigsNameTheFieldAndChangeNothing) {
  opts_.name = "acme-drive";
  std::string out, err;
  struct Case {
    const char *json;
    const char *expect;
  } cases[] = {
      {R"({"collection": "acme", "interval": "5 minutes", "drive": {"token": "t"}})",
       "drive.json: interval: bad duration \"5 minutes\""},
      {R"({"collection": "acme", "drive": {"token": "t", "page_size": 0}})",
       "drive.json: drive.page_size: must be an integer in [1, 1000]"},
      {R"({"collection": "acme", "drive": {}})",
       "drive.json: drive.token: set exactly one of token, token_env, oauth, service_account and microsoft"},
      {R"({"drive": {"token": "t"}})", "drive.json: collection: required"},
      {R"({"collection": "acme", "colection": "x", "drive": {"token": "t"}})",
       "drive.json: colection: unknown field"},
      {R"({"collection": "acme", "type": "gmail", "drive": {"token": "t"}})",
       "does not match the kind drive"},
      {R"({"id": "other", "collection": "acme", "drive": {"token": "t"}})",
       "differs from --name=acme-drive"},
      {R"([1, 2])", "must be a connector object"},
      {R"({"collection": )", "drive.json: not valid JSON"},
  };
  for (const Case &c : cases) {
    opts_.config_path = Write("drive.json", c.json);
    EXPECT_EQ(Run(true, &out, &err), 2) << c.json;
    EXPECT_TRUE(absl::StrContains(err, c.expect)) << err;
    EXPECT_FALSE(LocalFileSystem()->Exists(opts_.sync_config)) << c.json;
  }
  opts_.name = "Bad Name";
  opts_.config_path = Write("drive.json", kDrive);
  EXPECT_EQ(Run(true, &out, &err), 2);
  EXPECT_TRUE(absl::StrContains(err, "drive.json: id: \"Bad Name\" must be")) << err;
  opts_.name.clear();
  EXPECT_EQ(Run(true, &out, &err), 2);
  EXPECT_TRUE(absl::StrContains(err, "id: required (or pass --name=NAME)")) << err;
  opts_.name = "acme-drive";
  opts_.kind = "dropbox";
  EXPECT_EQ(Run(true, &out, &err), 2);
  EXPECT_TRUE(absl::StrContains(err, "unsupported kind \"dropbox\"")) << err;
  opts_.kind = "drive";
  opts_.config_path = dir_ + "/nope.json";
  EXPECT_EQ(Run(true, &out, &err), 1);
  EXPECT_TRUE(absl::StrContains(err, "nope.json")) << err;
}

TEST_F(ConnectorCommandTest, RefusesDuplicatesAndKeepsTheFile) {
  opts_.config_path = Write("drive.json", kDrive);
  opts_.name = "acme-drive";
  std::string out, err;
  ASSERT_EQ(Run(true, &out, &err), 0) << err;
  const std::string before = Read(opts_.sync_config);
  EXPECT_EQ(Run(true, &out, &err), 2);
  EXPECT_TRUE(absl::StrContains(err, "a connector named \"acme-drive\" already exists")) << err;
  // Another name, the same collection: the daemon would prune one with the other.
  opts_.name = "acme-drive-2";
  EXPECT_EQ(Run(true, &out, &err), 2);
  EXPECT_TRUE(absl::StrContains(err,
                                "sync.json: connectors[1].collection: another drive "
                                "connector already fills \"acme\""))
      << err;
  EXPECT_EQ(Read(opts_.sync_config), before);
}

TEST_F(ConnectorCommandTest, BrokenOrMissingConnectorsFile) {
  std::string out, err;
  EXPECT_EQ(Run(false, &out, &err), 1);
  EXPECT_TRUE(absl::StrContains(err, "sync.json does not exist")) << err;
  opts_.sync_config.clear();
  EXPECT_EQ(Run(false, &out, &err), 2);
  EXPECT_TRUE(absl::StrContains(err, "--sync_config")) << err;
  EXPECT_EQ(Run(true, &out, &err), 2);

  opts_.sync_config = Write("sync.json", R"({"connectors": [{"id": "a"}]})");
  EXPECT_EQ(Run(false, &out, &err), 2);
  EXPECT_TRUE(absl::StrContains(err, "sync.json: connectors[0].type: required")) << err;
  opts_.config_path = Write("drive.json", kDrive);
  opts_.name = "acme-drive";
  EXPECT_EQ(Run(true, &out, &err), 2);  // never overwrites a file it cannot read
  EXPECT_EQ(Read(opts_.sync_config), R"({"connectors": [{"id": "a"}]})");

  opts_.sync_config = Write("empty.json", R"({"connectors": []})");
  EXPECT_EQ(Run(false, &out, &err), 0);
  EXPECT_TRUE(absl::StrContains(out, "no connectors in")) << out;
}

TEST(SyncStateTest, RecordRoundTripsAndMissingIsNullopt) {
  const char *tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/state_rt");
  SyncRunRecord r;
  r.connector_id = "x";
  r.running = true;
  r.pid = 12;
  r.started = absl::FromUnixMillis(1800000000123);
  r.seen = 5;
  r.indexed = 4;
  r.failed = 1;
  r.deleted = 2;
  r.pages = 3;
  r.full_sync = true;
  r.error = "E";
  ASSERT_TRUE(WriteSyncRunRecord(dir, r, LocalFileSystem()).ok());
  auto back = ReadSyncRunRecord(dir, "x", LocalFileSystem());
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_TRUE(back->has_value());
  EXPECT_EQ(SyncRunRecordToJson(**back), SyncRunRecordToJson(r));
  EXPECT_EQ((*back)->started, r.started);
  EXPECT_EQ((*back)->finished, absl::InfinitePast());
  auto none = ReadSyncRunRecord(dir, "y", LocalFileSystem());
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_FALSE(SyncRunRecordFromJson("[]").ok());
  EXPECT_FALSE(SyncRunRecordFromJson(R"({"connector_id": "x", "started": "soon"})").ok());
}

TEST(TakeConnectorConfigArgTest, OnlyForConnectorAdd) {
  std::string a0 = "tessera", a1 = "connector", a2 = "add", a3 = "drive", a4 = "--config=d.json",
              a5 = "--name=n";
  char *argv[] = {a0.data(), a1.data(), a2.data(), a3.data(), a4.data(), a5.data(), nullptr};
  int argc = 6;
  EXPECT_EQ(TakeConnectorConfigArg(&argc, argv), "d.json");
  ASSERT_EQ(argc, 5);
  EXPECT_STREQ(argv[4], "--name=n");
  EXPECT_EQ(argv[5], nullptr);

  std::string b4 = "--config", b5 = "x.json";
  char *argv2[] = {a0.data(), a1.data(), a2.data(), b4.data(), b5.data(), a3.data(), nullptr};
  argc = 6;
  EXPECT_EQ(TakeConnectorConfigArg(&argc, argv2), "x.json");
  ASSERT_EQ(argc, 4);
  EXPECT_STREQ(argv2[3], "drive");

  std::string s = "sync";
  char *argv3[] = {a0.data(), s.data(), a4.data(), nullptr};
  argc = 3;
  EXPECT_EQ(TakeConnectorConfigArg(&argc, argv3), "");
  EXPECT_EQ(argc, 3);
  EXPECT_STREQ(argv3[2], "--config=d.json");
}

}  // namespace
}  // namespace tessera::sync
