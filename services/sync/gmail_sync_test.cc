// Gmail into retrieval through the sync daemon: a FakeGmailServer with two mailboxes, the daemon
// configured by JSON ("type": "gmail"), a real RetrievalServiceImpl. Each message is searchable by
// its mailbox owner only; a deletion is applied on the next round through the history feed.
#include <cstdlib>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/http/curl_http_transport.h"
#include "common/http/fake_http_server.h"
#include "connectors/gmail/fake_gmail_server.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/gateway/caller.h"
#include "services/retrieval/retrieval_service.h"
#include "services/sync/sync_config.h"
#include "services/sync/sync_daemon.h"
#include "services/sync/testing/sync_test_env.h"
#include "tessera/v1/retrieval.grpc.pb.h"

namespace tessera::sync {
namespace {

using connectors::gmail::FakeGmailServer;
using connectors::gmail::FakeMessage;

std::string Mail(const std::string &to, const std::string &subject, const std::string &body) {
  return absl::StrCat("From: boss@x.com\r\nTo: ", to, "\r\nSubject: ", subject,
                      "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", body, "\r\n");
}

TEST(GmailSyncTest, MailboxesAreSyncedPrivatelyAndDeletionsFollow) {
  const char *tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/gmail_sync");
  FakeGmailServer::Options fo;
  fo.mailboxes = {"ann@x.com", "bob@x.com"};
  auto gmail = FakeGmailServer::Start(fo);
  ASSERT_TRUE(gmail.ok()) << gmail.status();
  (*gmail)->AcceptToken("mail-token");
  FakeMessage m1;
  m1.raw = Mail("ann@x.com", "Bonus letter", "Your bonus is twelve percent.");
  auto ann_msg = (*gmail)->AddMessage("ann@x.com", m1);
  ASSERT_TRUE(ann_msg.ok());
  FakeMessage m2;
  m2.raw = Mail("bob@x.com", "On-call rota", "Bob is on call in December; bonus rules unchanged.");
  ASSERT_TRUE((*gmail)->AddMessage("bob@x.com", m2).ok());

  auto env = testing::SyncTestEnv::Start(dir);
  ASSERT_TRUE(env.ok()) << env.status();

  // The daemon gets its access token by the OAuth2 refresh-token flow from a token endpoint.
  auto token_endpoint = FakeHttpServer::Start();
  ASSERT_TRUE(token_endpoint.ok());
  (*token_endpoint)->Handle("POST", "/token", [](const FakeHttpRequest &r) {
    FakeHttpResponse resp;
    if (r.body.find("refresh_token=r-123") == std::string::npos) {
      resp.status = 400;
      resp.body = R"({"error": "invalid_grant"})";
      return resp;
    }
    resp.headers.Set("Content-Type", "application/json");
    resp.body = R"({"access_token": "mail-token", "expires_in": 3600, "token_type": "Bearer"})";
    return resp;
  });
  setenv("GMAIL_SYNC_TEST_REFRESH", "r-123", 1);
  const std::string config = absl::StrCat(R"({"connectors": [{"id": "acme-mail", "type": "gmail",
      "collection": "mail", "gmail": {"api_base": ")", (*gmail)->base_url(), R"(",
      "oauth": {"client_id": "tessera", "refresh_token_env": "GMAIL_SYNC_TEST_REFRESH", "token_url": ")",
                                             (*token_endpoint)->url(), R"(/token"},
      "mailboxes": ["ann@x.com", "bob@x.com"]}}]})");
  auto daemon = (*env)->NewDaemon(config);
  ASSERT_TRUE(daemon.ok()) << daemon.status();

  auto search = [&](const std::string &user) { return (*env)->SearchTitles("mail", "bonus", user); };
  ASSERT_TRUE((*daemon)->RunOnce().ok());
  EXPECT_EQ(search("ann@x.com"), std::set<std::string>{"Bonus letter"});
  EXPECT_EQ(search("bob@x.com"), std::set<std::string>{"On-call rota"});
  EXPECT_TRUE(search("eve@x.com").empty());

  ASSERT_TRUE((*gmail)->DeleteMessage("ann@x.com", *ann_msg).ok());
  ASSERT_TRUE((*daemon)->RunOnce().ok());
  EXPECT_TRUE(search("ann@x.com").empty());
  EXPECT_EQ(search("bob@x.com"), std::set<std::string>{"On-call rota"});
}

// directory_customer: the daemon reads the mailboxes from the Admin SDK directory each round; a
// user added to it is synced in the next round, a removed one's messages are pruned.
TEST(GmailSyncTest, DirectoryMailboxesFollowTheDirectory) {
  const char *tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/gmail_sync_directory");
  FakeGmailServer::Options fo;
  fo.mailboxes = {"ann@x.com", "bob@x.com"};
  auto gmail = FakeGmailServer::Start(fo);
  ASSERT_TRUE(gmail.ok()) << gmail.status();
  (*gmail)->AcceptToken("mail-token");
  FakeMessage m;
  m.raw = Mail("ann@x.com", "Bonus letter", "Your bonus is twelve percent.");
  ASSERT_TRUE((*gmail)->AddMessage("ann@x.com", m).ok());
  m.raw = Mail("bob@x.com", "Bonus rota", "Bob's bonus rules.");
  ASSERT_TRUE((*gmail)->AddMessage("bob@x.com", m).ok());

  auto env = testing::SyncTestEnv::Start(dir);
  ASSERT_TRUE(env.ok()) << env.status();
  std::string base = (*gmail)->base_url();
  base = base.substr(0, base.find("/gmail/v1"));
  const std::string config = absl::StrCat(R"({"connectors": [{"id": "acme-mail", "type": "gmail",
      "collection": "mail", "gmail": {"api_base": ")", base, R"(", "token": "mail-token",
      "directory_customer": "my_customer", "directory_admin": "admin@x.com",
      "admin_api_base": ")", base, R"("}}]})");
  auto daemon = (*env)->NewDaemon(config);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto search = [&](const std::string &user) { return (*env)->SearchTitles("mail", "bonus", user); };
  ASSERT_TRUE((*daemon)->RunOnce().ok());
  EXPECT_EQ(search("ann@x.com"), std::set<std::string>{"Bonus letter"});
  EXPECT_EQ(search("bob@x.com"), std::set<std::string>{"Bonus rota"});
  EXPECT_GT((*gmail)->RequestCount("/admin/directory/v1/users"), 0);

  ASSERT_TRUE((*gmail)->AddMailbox("carol@x.com").ok());
  m.raw = Mail("carol@x.com", "Bonus memo", "Carol's bonus memo.");
  ASSERT_TRUE((*gmail)->AddMessage("carol@x.com", m).ok());
  ASSERT_TRUE((*gmail)->RemoveMailbox("bob@x.com").ok());
  ASSERT_TRUE((*daemon)->RunOnce().ok());
  EXPECT_EQ(search("carol@x.com"), std::set<std::string>{"Bonus memo"});
  EXPECT_TRUE(search("bob@x.com").empty());
  EXPECT_EQ(search("ann@x.com"), std::set<std::string>{"Bonus letter"});
}

TEST(GmailSyncTest, ConfigErrorsNameTheField) {
  auto bad = ParseSyncConfig(R"({"connectors": [{"id": "m", "type": "gmail", "collection": "mail",
      "gmail": {"token": "t"}}]})",
                             "s.json");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("connectors[0].gmail.mailboxes"), std::string::npos) << bad.status();
  auto mixed = ParseSyncConfig(R"({"connectors": [{"id": "m", "type": "gmail", "collection": "mail",
      "gmail": {"token": "t", "mailboxes": ["me"]}, "drive": {"token": "t"}}]})",
                               "s.json");
  EXPECT_NE(mixed.status().message().find("connectors[0].drive: not allowed for type gmail"), std::string::npos)
      << mixed.status();
}

}  // namespace
}  // namespace tessera::sync
