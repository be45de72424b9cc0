#include "services/sync/sync_command.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace tessera::sync {
namespace {

std::string RunCommand(const SyncCommandOptions &o, int *code) {
  char *buf = nullptr;
  size_t len = 0;
  FILE *err = open_memstream(&buf, &len);
  *code = SyncCommand(o, stdout, err);
  std::fclose(err);
  std::string s(buf, len);
  std::free(buf);
  return s;
}

TEST(SyncCommandTest, UsageAndConfigErrorsExitWithTwo) {
  const char *tmp = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(tmp ? tmp : "/tmp") + "/bad_sync.json";
  std::ofstream(path) << R"({"connectors": [{"id": "a", "type": "drive", "interval": "often",
      "collection": "c", "drive": {"token": "t"}}]})";
  SyncCommandOptions o;
  o.once = true;
  int code = 0;
  std::string err = RunCommand(o, &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("--sync_config"), std::string::npos) << err;

  o.config_path = path;
  err = RunCommand(o, &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("API key"), std::string::npos) << err;

  o.key = "k";
  err = RunCommand(o, &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("connectors[0].interval"), std::string::npos) << err;

  o.config_path = path + ".missing";
  err = RunCommand(o, &code);
  EXPECT_EQ(code, 1);
}

TEST(SyncCommandTest, ParsesProgressModes) {
  ProgressMode m = ProgressMode::kOff;
  ASSERT_TRUE(ParseProgressMode("auto", &m));
  EXPECT_EQ(m, ProgressMode::kAuto);
  ASSERT_TRUE(ParseProgressMode("tty", &m));
  EXPECT_EQ(m, ProgressMode::kTerminal);
  ASSERT_TRUE(ParseProgressMode("plain", &m));
  EXPECT_EQ(m, ProgressMode::kPlain);
  ASSERT_TRUE(ParseProgressMode("off", &m));
  EXPECT_EQ(m, ProgressMode::kOff);
  EXPECT_FALSE(ParseProgressMode("fancy", &m));
}

}  // namespace
}  // namespace tessera::sync
