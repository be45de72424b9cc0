#include "common/config.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "gtest/gtest.h"

ABSL_FLAG(std::string, test_listen, "127.0.0.1:7600", "test flag");
ABSL_FLAG(int32_t, test_threads, 4, "test flag");
ABSL_FLAG(bool, test_tls, false, "test flag");
ABSL_FLAG(double, test_ratio, 0.5, "test flag");
ABSL_FLAG(std::vector<std::string>, test_only, {}, "test flag");

namespace tessera {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  absl::FlagSaver saver_;  // restores every flag after each test
};

TEST_F(ConfigTest, AppliesEveryValueKind) {
  ASSERT_TRUE(ApplyConfigJson(R"({
      // comments are allowed
      "test_listen": "0.0.0.0:9000", "test_threads": 16, "test_tls": true,
      "test_ratio": 0.25, "test_only": ["engine", "retrieval"]})", "t.json").ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_listen), "0.0.0.0:9000");
  EXPECT_EQ(absl::GetFlag(FLAGS_test_threads), 16);
  EXPECT_TRUE(absl::GetFlag(FLAGS_test_tls));
  EXPECT_DOUBLE_EQ(absl::GetFlag(FLAGS_test_ratio), 0.25);
  EXPECT_EQ(absl::GetFlag(FLAGS_test_only), (std::vector<std::string>{"engine", "retrieval"}));
}

TEST_F(ConfigTest, UnknownKeyIsNamed) {
  absl::Status s = ApplyConfigJson(R"({"test_listn": "x"})", "/etc/t.json");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("/etc/t.json"), std::string::npos) << s;
  EXPECT_NE(s.message().find("test_listn"), std::string::npos) << s;
}

TEST_F(ConfigTest, BadValueChangesNothing) {
  absl::Status s = ApplyConfigJson(R"({"test_listen": "changed", "test_threads": "many"})", "t");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("test_threads"), std::string::npos) << s;
  EXPECT_EQ(absl::GetFlag(FLAGS_test_listen), "127.0.0.1:7600");
  EXPECT_EQ(absl::GetFlag(FLAGS_test_threads), 4);
}

TEST_F(ConfigTest, MalformedInputIsInvalidArgument) {
  for (const char* bad : {"", "{", "[1,2]", "\"str\"", R"({"test_tls": null})",
                          R"({"test_only": [{"a":1}]})", R"({"config": "x.json"})"}) {
    EXPECT_EQ(ApplyConfigJson(bad, "t").code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST_F(ConfigTest, MissingFileIsNotFound) {
  InMemoryFileSystem fs;
  EXPECT_EQ(ApplyConfigFile("/nope.json", &fs).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(fs.WriteFileAtomic("/t.json", R"({"test_threads": 2})", 0644).ok());
  ASSERT_TRUE(ApplyConfigFile("/t.json", &fs).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_threads), 2);
}

TEST_F(ConfigTest, FindConfigArgForms) {
  std::vector<std::string> a = {"tessera", "serve", "--config=/a.json", "--x=1"};
  std::vector<std::string> b = {"tessera", "--config", "/b.json"};
  std::vector<std::string> c = {"tessera", "--", "--config=/c.json"};
  auto argv = [](std::vector<std::string>& v) {
    std::vector<char*> out;
    for (auto& s : v) out.push_back(s.data());
    return out;
  };
  auto va = argv(a), vb = argv(b), vc = argv(c);
  EXPECT_EQ(FindConfigArg(va.size(), va.data()), "/a.json");
  EXPECT_EQ(FindConfigArg(vb.size(), vb.data()), "/b.json");
  EXPECT_EQ(FindConfigArg(vc.size(), vc.data()), "");
}

}  // namespace
}  // namespace tessera
