#include "common/logging.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tessera {
namespace {

class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetMinLogLevel(LogLevel::kDebug);
    SetLogFormat(LogFormat::kLogfmt);
    SetLogSink([this](LogLevel, const std::string& line) {
      absl::MutexLock lock(&mu_);
      lines_.push_back(line);
    });
  }
  void TearDown() override {
    SetLogSink(nullptr);
    SetMinLogLevel(LogLevel::kInfo);
    SetLogFormat(LogFormat::kLogfmt);
  }
  std::vector<std::string> Lines() {
    absl::MutexLock lock(&mu_);
    return lines_;
  }
  absl::Mutex mu_;
  std::vector<std::string> lines_;
};

TEST_F(LoggingTest, LogfmtLineHasLevelMessageFieldsAndSource) {
  TLOG(INFO, "server listening").Field("addr", "127.0.0.1:7600").Field("tls", false).Field("n", 3);
  auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(absl::StartsWith(lines[0], "ts=")) << lines[0];
  EXPECT_TRUE(absl::StrContains(lines[0], "level=info msg=\"server listening\" addr=127.0.0.1:7600 tls=false n=3 src=logging_test.cc:")) << lines[0];
}

TEST_F(LoggingTest, QuotesValuesWithSpacesAndEscapes) {
  TLOG(WARNING, "x").Field("path", "a b\"c\n");
  EXPECT_TRUE(absl::StrContains(Lines()[0], "path=\"a b\\\"c\\n\"")) << Lines()[0];
}

TEST_F(LoggingTest, JsonFormatParses) {
  SetLogFormat(LogFormat::kJson);
  TLOG(ERROR, "failed \"hard\"").Field("status", absl::NotFoundError("gone")).Field("ms", 1.5).Field("ok", true);
  auto j = nlohmann::json::parse(Lines()[0]);
  EXPECT_EQ(j["level"], "error");
  EXPECT_EQ(j["msg"], "failed \"hard\"");
  EXPECT_EQ(j["status"], "NOT_FOUND: gone");
  EXPECT_DOUBLE_EQ(j["ms"].get<double>(), 1.5);
  EXPECT_EQ(j["ok"], true);
}

TEST_F(LoggingTest, SecretsAreRedacted) {
  TLOG(INFO, "auth").Field("api_key", "tsk_live_abc").Field("refresh_token", "1//xyz")
      .Field("Authorization", "Bearer abc").Field("key_id", "k1").Field("password", "hunter2");
  std::string line = Lines()[0];
  EXPECT_FALSE(absl::StrContains(line, "tsk_live_abc"));
  EXPECT_FALSE(absl::StrContains(line, "1//xyz"));
  EXPECT_FALSE(absl::StrContains(line, "Bearer abc"));
  EXPECT_FALSE(absl::StrContains(line, "hunter2"));
  EXPECT_TRUE(absl::StrContains(line, "key_id=k1"));
  EXPECT_TRUE(IsSecretFieldName("client_secret"));
  EXPECT_TRUE(IsSecretFieldName("key"));
  EXPECT_FALSE(IsSecretFieldName("keys_total"));
}

TEST_F(LoggingTest, BelowMinLevelIsDropped) {
  SetMinLogLevel(LogLevel::kWarning);
  TLOG(INFO, "quiet").Field("a", 1);
  TLOG(DEBUG, "quieter");
  TLOG(WARNING, "loud");
  auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(absl::StrContains(lines[0], "msg=\"loud\""));
}

TEST_F(LoggingTest, ParseLevelAndFormat) {
  LogLevel l;
  EXPECT_TRUE(ParseLogLevel("WARN", &l));
  EXPECT_EQ(l, LogLevel::kWarning);
  EXPECT_FALSE(ParseLogLevel("loud", &l));
  LogFormat f;
  EXPECT_TRUE(ParseLogFormat("json", &f));
  EXPECT_EQ(f, LogFormat::kJson);
  EXPECT_FALSE(ParseLogFormat("xml", &f));
}

TEST_F(LoggingTest, ConcurrentLinesAreWhole) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 100; ++i) TLOG(INFO, "tick").Field("t", t).Field("i", i);
    });
  }
  for (auto& th : threads) th.join();
  auto lines = Lines();
  ASSERT_EQ(lines.size(), 400u);
  for (const auto& line : lines) EXPECT_TRUE(absl::StrContains(line, " src=logging_test.cc:")) << line;
}

}  // namespace
}  // namespace tessera
