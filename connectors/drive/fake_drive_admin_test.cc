#include "connectors/drive/fake_drive_admin.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/http/curl_http_transport.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tessera::connectors::drive {
namespace {

using json = nlohmann::json;

class FakeDriveAdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FakeDriveServer::Options o;
    o.user_email = "admin@acme.example";
    o.user_groups = {"finance@acme.example"};
    auto s = FakeDriveServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    auto t = CurlHttpTransport::Create({});
    ASSERT_TRUE(t.ok());
    http_ = std::move(*t);
  }
  json Do(const std::string &line) {
    return json::parse(ExecuteFakeDriveCommand(*server_, line), nullptr, false);
  }
  json Get(const std::string &path) {
    HttpRequest r;
    r.url = absl::StrCat(server_->base_url(), path);
    r.headers.push_back({"Authorization", "Bearer t"});
    auto resp = http_->Send(r);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? json::parse(resp->body, nullptr, false) : json();
  }
  std::unique_ptr<FakeDriveServer> server_;
  std::unique_ptr<HttpTransport> http_;
};

TEST_F(FakeDriveAdminTest, CreatesAndMutatesFilesThatTheApiThenServes) {
  EXPECT_EQ(Do(R"({"op":"ping"})")["ok"], true);
  EXPECT_EQ(Do(R"({"op":"add_shared_drive","id":"0AFin","name":"Finance",
                   "members":[{"type":"group","email":"finance@acme.example"}]})")["ok"],
            true);
  json c = Do(R"({"op":"create","file":{"id":"f1","name":"Plan","content":"v1",
                 "permissions":[{"type":"user","email":"ann@acme.example"}]}})");
  ASSERT_EQ(c["ok"], true) << c;
  EXPECT_EQ(c["id"], "f1");
  ASSERT_EQ(Do(R"({"op":"create","file":{"id":"f2","name":"Budget","drive_id":"0AFin"}})")["ok"],
            true);
  std::string start = Get("/changes/startPageToken")["startPageToken"];
  ASSERT_EQ(Do(R"({"op":"edit","id":"f1","content":"v2"})")["ok"], true);
  json shared = Do(R"({"op":"share","id":"f1","permission":{"type":"domain",
                      "domain":"acme.example"}})");
  ASSERT_EQ(shared["ok"], true) << shared;
  ASSERT_EQ(Do(absl::StrCat(R"({"op":"unshare","id":"f1","permission_id":")",
                            shared["permission_id"].get<std::string>(), "\"}"))["ok"],
            true);
  ASSERT_EQ(Do(R"({"op":"rename","id":"f1","name":"Plan 2"})")["ok"], true);
  ASSERT_EQ(Do(R"({"op":"trash","id":"f2"})")["ok"], true);
  ASSERT_EQ(Do(R"({"op":"trash","id":"f2","trashed":false})")["ok"], true);
  ASSERT_EQ(Do(R"({"op":"move","id":"f2","parents":[],"drive_id":""})")["ok"], true);
  ASSERT_EQ(Do(R"({"op":"delete","id":"f2"})")["ok"], true);

  json meta = Get("/files/f1");
  EXPECT_EQ(meta["name"], "Plan 2");
  json changes = Get(absl::StrCat("/changes?pageToken=", start, "&pageSize=100"));
  ASSERT_EQ(changes["changes"].size(), 2u) << changes;
  HttpRequest media;
  media.url = absl::StrCat(server_->base_url(), "/files/f1?alt=media");
  media.headers.push_back({"Authorization", "Bearer t"});
  auto body = http_->Send(media);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->body, "v2");
}

TEST_F(FakeDriveAdminTest, BadCommandsAreAnsweredNotFatal) {
  EXPECT_EQ(Do("not json")["error"], "not valid JSON");
  EXPECT_EQ(Do("[]")["ok"], false);
  EXPECT_NE(Do(R"({"op":"explode"})")["error"].get<std::string>().find("unknown op"),
            std::string::npos);
  EXPECT_NE(Do(R"({"op":"edit","id":"nope","content":"x"})")["error"].get<std::string>().find(
                "NOT_FOUND"),
            std::string::npos);
  EXPECT_NE(Do(R"({"op":"create","file":{"name":"x","permissions":[{"type":"robot"}]}})")["error"]
                .get<std::string>()
                .find("permission.type"),
            std::string::npos);
  EXPECT_EQ(Do(R"({"op":"create","file":{"id":"d","name":"x"}})")["ok"], true);
  EXPECT_EQ(Do(R"({"op":"create","file":{"id":"d","name":"x"}})")["ok"], false);  // duplicate
}

TEST_F(FakeDriveAdminTest, LatencyDelaysResponses) {
  ASSERT_EQ(Do(R"({"op":"latency","ms":150})")["ok"], true);
  const absl::Time t0 = absl::Now();
  Get("/about");
  EXPECT_GE(absl::Now() - t0, absl::Milliseconds(140));
  ASSERT_EQ(Do(R"({"op":"latency","ms":0})")["ok"], true);
  EXPECT_EQ(Do(R"({"op":"latency","ms":-1})")["ok"], false);
}

}  // namespace
}  // namespace tessera::connectors::drive
