#include "connectors/gmail/gmail_connector.h"

#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/http/fake_http_server.h"
#include "connectors/auth/service_account.h"
#include "connectors/auth/testing/test_keys.h"
#include "connectors/framework/checkpoint_store.h"
#include "connectors/framework/in_memory.h"
#include "connectors/framework/sync_runner.h"
#include "connectors/gmail/fake_gmail_server.h"
#include "connectors/http/retrying_client.h"
#include "connectors/testing/sync_harness.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tessera::connectors::gmail {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kAnn[] = "ann@x.com";
constexpr char kBob[] = "bob@x.com";

std::string Mail(const std::string &subject, const std::string &body,
                 const std::string &to = "bob@x.com", const std::string &extra = "") {
  return absl::StrCat(
      "From: Carol <Carol@Y.com>\r\nTo: ", to, "\r\nCc: dan@x.com\r\nSubject: ", subject,
      "\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n", "Message-ID: <", subject, "@y.com>\r\n",
      extra, extra.empty() ? "Content-Type: text/plain; charset=utf-8\r\n" : "", "\r\n", body);
}

std::string HtmlOnly(const std::string &subject, const std::string &html) {
  return Mail(subject, html, "bob@x.com", "Content-Type: text/html; charset=utf-8\r\n");
}

std::string WithAttachment(const std::string &subject) {
  return Mail(subject,
              "--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n"
              "--c\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
              "--c\r\nContent-Type: text/html\r\n\r\n<p>see <b>attached</b></p>\r\n--c--\r\n"
              "--b\r\nContent-Type: text/csv; name=q3.csv\r\n"
              "Content-Disposition: attachment; filename=q3.csv\r\n"
              "Content-Transfer-Encoding: base64\r\n\r\n" +
                  absl::Base64Escape("region,sales\nnorth,42\n") + "\r\n--b--\r\n",
              "bob@x.com", "Content-Type: multipart/mixed; boundary=b\r\n");
}

class GmailConnectorTest : public ::testing::Test, protected testing::SyncHarness {
 protected:
  void SetUp() override {
    FakeGmailServer::Options server_options;
    server_options.mailboxes = {kAnn, kBob};
    server_options.clock = &clock_;
    auto server = FakeGmailServer::Start(server_options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    server_->AcceptToken("tok-1");
    ASSERT_EQ(Open(), absl::OkStatus());
    client_ = MakeClient(&tokens_);
  }

  void MakeConnector(GmailConnector::Options options = {}) {
    options.base_url = server_->base_url();
    options.admin_base_url = server_->admin_base_url();
    options.page_size = 2;
    if (options.mailboxes == std::vector<std::string>{"me"}) options.mailboxes = {kAnn};
    RetryingHttpClient *client = client_.get();
    if (!options.directory_customer.empty()) {
      options.directory_clients = [client](const std::string &) { return client; };
    }
    auto connector = GmailConnector::Create(
        [client](const std::string &) -> absl::StatusOr<RetryingHttpClient *> { return client; },
        &clock_, options);
    ASSERT_TRUE(connector.ok()) << connector.status();
    connector_ = std::move(*connector);
    SyncRunner::Options runner_options;
    runner_options.connector_id = "gmail:test";
    runner_ = std::make_unique<SyncRunner>(connector_.get(), &sink_, store_.get(), runner_options);
  }

  absl::StatusOr<SyncStats> Sync(const std::string &scope = kAnn) {
    return runner_->SyncScope(scope);
  }
  std::map<std::string, ConnectorDocument> Docs() { return sink_.Documents("gmail"); }
  std::vector<std::string> Ids() { return IdsOf(Docs()); }
  std::string Text(const std::string &id) {
    auto docs = Docs();
    auto it = docs.find(id);
    if (it == docs.end()) return "";
    std::string all;
    for (const DocumentSection &s : it->second.sections) absl::StrAppend(&all, s.text, "\n");
    return all;
  }
  void Add(const std::string &id, const std::string &raw,
           std::vector<std::string> labels = {"INBOX"}, const std::string &mailbox = kAnn) {
    FakeMessage m;
    m.id = id;
    m.raw = raw;
    m.label_ids = std::move(labels);
    ASSERT_TRUE(server_->AddMessage(mailbox, m).ok());
  }
  void Seed() {
    Add("m1", Mail("Q3 plan", "The Q3 plan is ready."));
    Add("m2", HtmlOnly("Launch", "<html><body><p>Launch <i>Friday</i></p></body></html>"),
        {"INBOX", "Label_7"});
    Add("m3", WithAttachment("Numbers"));
    Add("m4", Mail("Spam", "buy now"), {"SPAM"});
    Add("m5", Mail("Old", "archived note"), {});
  }

  std::unique_ptr<FakeGmailServer> server_;
  std::unique_ptr<RetryingHttpClient> client_;
  std::unique_ptr<GmailConnector> connector_;
  std::unique_ptr<SyncRunner> runner_;
};

TEST_F(GmailConnectorTest, CreateRejectsBadOptions) {
  auto provider = [](const std::string &) -> absl::StatusOr<RetryingHttpClient *> {
    return nullptr;
  };
  GmailConnector::Options options;
  options.mailboxes = {};
  EXPECT_EQ(GmailConnector::Create(provider, &clock_, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.mailboxes = {"not-an-address"};
  EXPECT_EQ(GmailConnector::Create(provider, &clock_, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.mailboxes = {"me"};
  options.page_size = 501;
  EXPECT_EQ(GmailConnector::Create(provider, &clock_, options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(GmailConnectorTest, ValidateConfig) {
  MakeConnector();
  EXPECT_TRUE(connector_->ValidateConfig().ok());
  server_->AcceptToken("someone-else");
  server_->ExpireToken("tok-1");
  MakeConnector();
  // 401, one refresh (tok-2, also refused), then UNAUTHENTICATED surfaces.
  EXPECT_EQ(connector_->ValidateConfig().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(GmailConnectorTest, FullSyncParsesMessagesIntoDocuments) {
  Seed();
  MakeConnector();
  auto stats = Sync();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_TRUE(stats->full_sync);
  EXPECT_EQ(stats->failed, 0);
  EXPECT_THAT(Ids(), ElementsAre("ann@x.com/m1", "ann@x.com/m2", "ann@x.com/m3", "ann@x.com/m5"));
  auto docs = Docs();
  const ConnectorDocument &m1 = docs["ann@x.com/m1"];
  EXPECT_EQ(m1.title, "Q3 plan");
  EXPECT_EQ(m1.uri, "https://mail.google.com/mail/u/0/#all/m1");
  EXPECT_EQ(m1.mime_type, "message/rfc822");
  EXPECT_THAT(m1.sections[0].text, HasSubstr("From: Carol <Carol@Y.com>"));
  EXPECT_THAT(m1.sections[0].text, HasSubstr("To: bob@x.com"));
  EXPECT_THAT(m1.sections[0].text, HasSubstr("The Q3 plan is ready."));
  EXPECT_THAT(m1.acl, ElementsAre("user:ann@x.com"));
  EXPECT_EQ(m1.metadata.at("from"), "Carol <Carol@Y.com>");
  EXPECT_EQ(m1.metadata.at("to"), "bob@x.com");
  EXPECT_EQ(m1.metadata.at("thread_id"), "m1");
  EXPECT_EQ(m1.metadata.at("labels"), "INBOX");
  EXPECT_EQ(m1.metadata.at("date"), "2023-11-14T22:13:20+00:00");
  EXPECT_EQ(m1.metadata.at("message_id"), "Q3 plan@y.com");
  // HTML-only: converted to text.
  EXPECT_THAT(Text("ann@x.com/m2"), HasSubstr("Launch Friday"));
  EXPECT_THAT(Text("ann@x.com/m2"), Not(HasSubstr("<p>")));
  EXPECT_EQ(docs["ann@x.com/m2"].metadata.at("labels"), "INBOX,Label_7");
  // Nested multipart: plain part preferred, attachment parsed into its own section.
  const ConnectorDocument &m3 = docs["ann@x.com/m3"];
  ASSERT_EQ(m3.sections.size(), 2u);
  EXPECT_THAT(m3.sections[0].text, HasSubstr("see attached"));
  EXPECT_EQ(m3.sections[1].heading, "Attachment: q3.csv");
  EXPECT_THAT(m3.sections[1].text, HasSubstr("north"));
  auto cp = store_->Get("gmail:test", kAnn);
  ASSERT_TRUE(cp.ok() && cp->has_value());
  EXPECT_THAT(**cp, HasSubstr("\"mode\":\"history\""));
}

TEST_F(GmailConnectorTest, RecipientsCanSee) {
  Seed();
  GmailConnector::Options options;
  options.recipients_can_see = true;
  MakeConnector(options);
  ASSERT_TRUE(Sync().ok());
  EXPECT_THAT(Docs()["ann@x.com/m1"].acl, ElementsAre("user:ann@x.com", "user:bob@x.com",
                                                      "user:carol@y.com", "user:dan@x.com"));
  auto slim = connector_->SlimListing(kAnn);
  ASSERT_TRUE(slim.ok()) << slim.status();
  ASSERT_EQ(slim->size(), 4u);
  EXPECT_EQ((*slim)[0].id, "ann@x.com/m1");
  EXPECT_EQ((*slim)[0].acl, Docs()["ann@x.com/m1"].acl);
}

TEST_F(GmailConnectorTest, IncrementalAddsDeletesAndLabelChanges) {
  Seed();
  MakeConnector();
  ASSERT_TRUE(Sync().ok());
  int lists = server_->RequestCount("/gmail/v1/users/ann@x.com/messages");
  Add("m6", Mail("New", "fresh news"));
  ASSERT_TRUE(server_->DeleteMessage(kAnn, "m1").ok());
  ASSERT_TRUE(server_->ModifyLabels(kAnn, "m2", {"STARRED"}, {"INBOX"}).ok());
  ASSERT_TRUE(server_->ModifyLabels(kAnn, "m3", {"TRASH"}, {}).ok());
  ASSERT_TRUE(server_->ModifyLabels(kAnn, "m4", {"INBOX"}, {"SPAM"}).ok());
  auto stats = Sync();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_FALSE(stats->full_sync);
  EXPECT_THAT(Ids(), ElementsAre("ann@x.com/m2", "ann@x.com/m4", "ann@x.com/m5", "ann@x.com/m6"));
  EXPECT_EQ(Docs()["ann@x.com/m2"].metadata.at("labels"), "Label_7,STARRED");
  EXPECT_THAT(Text("ann@x.com/m6"), HasSubstr("fresh news"));
  // No listing: only history and the changed messages were read.
  EXPECT_GT(server_->RequestCount("/gmail/v1/users/ann@x.com/history"), 0);
  EXPECT_EQ(server_->RequestCount("/gmail/v1/users/ann@x.com/messages/m5"), 1);
  (void)lists;
  // Untrash brings it back.
  ASSERT_TRUE(server_->ModifyLabels(kAnn, "m3", {}, {"TRASH"}).ok());
  ASSERT_TRUE(Sync().ok());
  EXPECT_THAT(Ids(), ElementsAre("ann@x.com/m2", "ann@x.com/m3", "ann@x.com/m4", "ann@x.com/m5",
                                 "ann@x.com/m6"));
  // Nothing changed: nothing happens.
  auto idle = Sync();
  ASSERT_TRUE(idle.ok());
  EXPECT_EQ(idle->seen, 0);
}

TEST_F(GmailConnectorTest, ExpiredHistoryIdStartsAFullResyncThatPrunes) {
  Seed();
  MakeConnector();
  ASSERT_TRUE(Sync().ok());
  ASSERT_TRUE(server_->DeleteMessage(kAnn, "m1").ok());
  ASSERT_TRUE(server_->ExpireHistory(kAnn).ok());
  Add("m7", Mail("After", "after expiry"));
  auto stats = Sync();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_TRUE(stats->full_sync);
  EXPECT_THAT(Ids(), ElementsAre("ann@x.com/m2", "ann@x.com/m3", "ann@x.com/m5", "ann@x.com/m7"));
  // And the feed continues from the new historyId.
  Add("m8", Mail("Later", "later"));
  auto next = Sync();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_FALSE(next->full_sync);
  EXPECT_EQ(Docs().count("ann@x.com/m8"), 1u);
}

TEST_F(GmailConnectorTest, EveryFaultIsRetriedAndTheIndexStaysRight) {
  const std::vector<GmailFault> kFaults = {GmailFault::k429RetryAfterSeconds,
                                           GmailFault::k429RetryAfterDate,
                                           GmailFault::k403UserRateLimit,
                                           GmailFault::k403RateLimit,
                                           GmailFault::k500,
                                           GmailFault::k503,
                                           GmailFault::k401,
                                           GmailFault::kDisconnect,
                                           GmailFault::kEmptyPage,
                                           GmailFault::kDuplicate};
  Seed();
  MakeConnector();
  int n = 0;
  for (GmailFault fault : kFaults) {
    SCOPED_TRACE(static_cast<int>(fault));
    // Tokens refreshed by the 401 fault must stay acceptable.
    for (int g = 1; g <= 3; ++g)
      server_->AcceptToken(absl::StrCat("tok-", tokens_.generation() + g));
    for (const char *path : {"/messages", "/history", "/messages/m"}) {
      server_->InjectFault(absl::StrCat("/gmail/v1/users/ann@x.com", path), fault);
    }
    Add(absl::StrCat("f", n), Mail(absl::StrCat("Fault ", n), "text"));
    if (n == 3) {
      ASSERT_TRUE(server_->ExpireHistory(kAnn).ok());  // one round lists again
    }
    ++n;
    auto stats = Sync();
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(Docs().count(absl::StrCat("ann@x.com/f", n - 1)), 1u);
  }
  EXPECT_EQ(Ids().size(), 4u + kFaults.size());
}

TEST_F(GmailConnectorTest, TokenExpiryMidSyncRefreshesOnce) {
  Seed();
  MakeConnector();
  server_->AcceptToken("tok-2");
  server_->ExpireToken("tok-1");
  auto stats = Sync();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(tokens_.generation(), 2);
  EXPECT_EQ(Ids().size(), 4u);
}

TEST_F(GmailConnectorTest, PersistentThrottlingSurfacesAndNothingIsCommitted) {
  Seed();
  MakeConnector();
  server_->InjectFault("/gmail/v1/users/ann@x.com/messages", GmailFault::k429RetryAfterSeconds,
                       100);
  auto stats = Sync();
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kResourceExhausted);
  auto cp = store_->Get("gmail:test", kAnn);
  ASSERT_TRUE(cp.ok());
  EXPECT_FALSE(cp->has_value());
}

TEST_F(GmailConnectorTest, MailboxesAreScopesWithTheirOwnDocuments) {
  Add("m1", Mail("For ann", "a"));
  Add("m1", Mail("For bob", "b"), {"INBOX"}, kBob);  // same id in another mailbox
  GmailConnector::Options options;
  options.mailboxes = {kAnn, kBob};
  MakeConnector(options);
  EXPECT_THAT(*connector_->Scopes(), ElementsAre(kAnn, kBob));
  auto stats = runner_->SyncAll();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_THAT(Ids(), ElementsAre("ann@x.com/m1", "bob@x.com/m1"));
  EXPECT_THAT(Docs()["bob@x.com/m1"].acl, ElementsAre("user:bob@x.com"));
  // A second full listing of one mailbox must not prune the other's documents.
  ASSERT_TRUE(server_->ExpireHistory(kBob).ok());
  ASSERT_TRUE(runner_->SyncAll().ok());
  EXPECT_THAT(Ids(), ElementsAre("ann@x.com/m1", "bob@x.com/m1"));
}

TEST_F(GmailConnectorTest, FetchDocumentAndBadCheckpoint) {
  Seed();
  MakeConnector();
  auto doc = connector_->FetchDocument("ann@x.com/m1");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->title, "Q3 plan");
  EXPECT_EQ(connector_->FetchDocument("ann@x.com/nope").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(connector_->FetchDocument("zed@x.com/m1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(connector_->FetchDocument("m1").status().code(), absl::StatusCode::kInvalidArgument);
  absl::Status s =
      connector_->IncrementalSync(kAnn, "garbage", [](ChangePage) { return absl::OkStatus(); });
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(connector_->FullSync("who@x.com", [](ChangePage) { return absl::OkStatus(); }).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(GmailConnectorTest, UnparseableRawIsAFailureNotAnError) {
  Add("ok", Mail("Fine", "fine"));
  MakeConnector();
  // An empty message cannot be parsed: reported, and the sync goes on.
  Add("empty", "");
  auto stats = Sync();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->failed, 1);
  EXPECT_THAT(Ids(), ElementsAre("ann@x.com/ok"));
}

// Domain-wide delegation: one ServiceAccountTokenSource per mailbox, whose
// JWT `sub` is that mailbox; each token only opens its own mailbox.
TEST_F(GmailConnectorTest, DelegatedClientsImpersonateEachMailbox) {
  using json = nlohmann::json;
  auto token_server = FakeHttpServer::Start();
  ASSERT_TRUE(token_server.ok());
  std::vector<std::string> subjects;
  absl::Mutex mu;
  (*token_server)->Handle("POST", "/token", [&](const FakeHttpRequest &r) {
    std::map<std::string, std::string> form = testing::ParseForm(r.body);
    json claims = json::parse(testing::JwtPart(form["assertion"], 1), nullptr, false);
    std::string sub = claims.is_object() ? claims.value("sub", "") : "";
    {
      absl::MutexLock lock(&mu);
      subjects.push_back(sub);
    }
    FakeHttpResponse out;
    out.headers.Add("Content-Type", "application/json");
    out.body =
        json{{"access_token", "dwd-" + sub}, {"expires_in", 3599}, {"token_type", "Bearer"}}.dump();
    return out;
  });
  server_->BindToken("dwd-ann@x.com", kAnn);
  server_->BindToken("dwd-bob@x.com", kBob);
  Add("a1", Mail("For ann", "a"));
  Add("b1", Mail("For bob", "b"), {"INBOX"}, kBob);

  testing::TestRsaKey rsa = testing::GenerateRsaKey();
  ServiceAccountTokenSource::Options base;
  base.key.client_email = "sync@tessera-test.iam.gserviceaccount.com";
  base.key.private_key_pem = rsa.private_pem;
  base.token_url = (*token_server)->url() + "/token";
  RetryingHttpClient::Options client_options;
  client_options.jitter = [] { return 0.5; };
  DelegatedClients clients(transport_.get(), &clock_, base, client_options);

  GmailConnector::Options options;
  options.base_url = server_->base_url();
  options.mailboxes = {kAnn, kBob};
  auto connector = GmailConnector::Create(clients.provider(), &clock_, options);
  ASSERT_TRUE(connector.ok()) << connector.status();
  ASSERT_TRUE((*connector)->ValidateConfig().ok());
  SyncRunner runner(connector->get(), &sink_, store_.get(), {.connector_id = "gmail:dwd"});
  auto stats = runner.SyncAll();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_THAT(Ids(), ElementsAre("ann@x.com/a1", "bob@x.com/b1"));
  absl::MutexLock lock(&mu);
  EXPECT_THAT(subjects, ElementsAre("ann@x.com", "bob@x.com"));  // one token each, cached
}

// --- Admin SDK directory enumeration -----------------------------------------

GmailConnector::Options DirectoryOptions() {
  GmailConnector::Options options;
  options.directory_customer = "my_customer";
  options.directory_admin = "admin@x.com";
  options.directory_page_size = 2;
  return options;
}

TEST_F(GmailConnectorTest, DirectoryOptionsAreChecked) {
  auto provider = [](const std::string &) -> absl::StatusOr<RetryingHttpClient *> {
    return nullptr;
  };
  GmailConnector::Options options = DirectoryOptions();
  EXPECT_EQ(GmailConnector::Create(provider, &clock_, options).status().code(),
            absl::StatusCode::kInvalidArgument);  // no directory client
  options.directory_clients = provider;
  EXPECT_TRUE(GmailConnector::Create(provider, &clock_, options).ok());
  options.directory_admin = "";
  EXPECT_EQ(GmailConnector::Create(provider, &clock_, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.directory_admin = "admin@x.com";
  options.directory_page_size = 501;
  EXPECT_EQ(GmailConnector::Create(provider, &clock_, options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(GmailConnectorTest, DirectoryEnumeratesPagesAndSkipsSuspendedUsers) {
  ASSERT_TRUE(server_->AddMailbox("Carol@x.com").ok());
  ASSERT_TRUE(server_->AddMailbox("dan@x.com").ok());
  ASSERT_TRUE(server_->AddMailbox("eve@x.com").ok());
  ASSERT_TRUE(server_->SetSuspended("dan@x.com", true).ok());
  MakeConnector(DirectoryOptions());
  auto scopes = connector_->Scopes();
  ASSERT_TRUE(scopes.ok()) << scopes.status();
  EXPECT_THAT(*scopes, ElementsAre(kAnn, kBob, "carol@x.com", "eve@x.com"));
  EXPECT_EQ(server_->RequestCount("/admin/directory/v1/users"), 3);  // 5 users, 2 a page
  EXPECT_TRUE(connector_->ValidateConfig().ok());
  // A suspended user is not a scope.
  EXPECT_EQ(connector_->FullSync("dan@x.com", [](ChangePage) { return absl::OkStatus(); }).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(GmailConnectorTest, DirectoryErrorsSurface) {
  MakeConnector(DirectoryOptions());
  server_->InjectFault("/admin/directory/v1/users", GmailFault::k429RetryAfterSeconds, 100);
  EXPECT_EQ(connector_->Scopes().status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(runner_->SyncAll().status().code(), absl::StatusCode::kResourceExhausted);
  server_->ClearFaults();
  auto bad = DirectoryOptions();
  bad.directory_customer = "C999";
  MakeConnector(bad);
  EXPECT_EQ(connector_->Scopes().status().code(), absl::StatusCode::kInvalidArgument);
}

// Users added to the directory are synced in the next round; the messages of
// users removed (or suspended) are pruned: the new mailbox's full listing
// prunes right away, otherwise the runner's periodic Prune() does.
TEST_F(GmailConnectorTest, DirectoryChangesFollowEachRound) {
  Add("a1", Mail("For ann", "a"));
  Add("b1", Mail("For bob", "b"), {"INBOX"}, kBob);
  MakeConnector(DirectoryOptions());
  ASSERT_TRUE(runner_->SyncAll().ok());
  EXPECT_THAT(Ids(), ElementsAre("ann@x.com/a1", "bob@x.com/b1"));

  ASSERT_TRUE(server_->AddMailbox("carol@x.com").ok());
  Add("c1", Mail("For carol", "c"), {"INBOX"}, "carol@x.com");
  ASSERT_TRUE(server_->RemoveMailbox(kBob).ok());
  auto stats = runner_->SyncAll();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_THAT(*connector_->Scopes(), ElementsAre(kAnn, "carol@x.com"));
  EXPECT_THAT(Ids(), ElementsAre("ann@x.com/a1", "carol@x.com/c1"));
  EXPECT_THAT(Docs()["carol@x.com/c1"].acl, ElementsAre("user:carol@x.com"));
  EXPECT_EQ(stats->pruned, 1);

  // Suspension: no longer synced (an incremental round touches nothing), and
  // pruned by the next Prune().
  ASSERT_TRUE(server_->SetSuspended(kAnn, true).ok());
  Add("a2", Mail("Ann again", "a2"));
  ASSERT_TRUE(runner_->SyncAll().ok());
  EXPECT_THAT(Ids(), ElementsAre("ann@x.com/a1", "carol@x.com/c1"));
  auto pruned = runner_->Prune();
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(*pruned, 1);
  EXPECT_THAT(Ids(), ElementsAre("carol@x.com/c1"));
  // Reinstated: its scope comes back, listed fully (its pruned messages return).
  ASSERT_TRUE(server_->SetSuspended(kAnn, false).ok());
  ASSERT_TRUE(runner_->SyncAll().ok());
  EXPECT_THAT(Ids(), ElementsAre("ann@x.com/a1", "ann@x.com/a2", "carol@x.com/c1"));
}

// The directory call impersonates the admin with the directory scope; each
// mailbox is impersonated in turn with the Gmail scope.
TEST_F(GmailConnectorTest, DirectoryWithDomainWideDelegation) {
  using json = nlohmann::json;
  FakeGmailServer::Options server_options;
  server_options.mailboxes = {kAnn, kBob};
  server_options.clock = &clock_;
  server_options.directory_admins = {"admin@x.com"};
  auto server = FakeGmailServer::Start(server_options);
  ASSERT_TRUE(server.ok());
  auto token_server = FakeHttpServer::Start();
  ASSERT_TRUE(token_server.ok());
  std::vector<std::string> grants;
  absl::Mutex mu;
  (*token_server)->Handle("POST", "/token", [&](const FakeHttpRequest &r) {
    std::map<std::string, std::string> form = testing::ParseForm(r.body);
    json claims = json::parse(testing::JwtPart(form["assertion"], 1), nullptr, false);
    std::string sub = claims.is_object() ? claims.value("sub", "") : "";
    std::string scope = claims.is_object() ? claims.value("scope", "") : "";
    {
      absl::MutexLock lock(&mu);
      grants.push_back(sub + " " + scope);
    }
    FakeHttpResponse out;
    out.headers.Add("Content-Type", "application/json");
    out.body =
        json{{"access_token", "dwd-" + sub}, {"expires_in", 3599}, {"token_type", "Bearer"}}.dump();
    return out;
  });
  (*server)->BindToken("dwd-admin@x.com", "admin@x.com");
  (*server)->BindToken("dwd-ann@x.com", kAnn);
  (*server)->BindToken("dwd-bob@x.com", kBob);
  FakeMessage m;
  m.raw = Mail("For bob", "b");
  m.id = "b1";
  ASSERT_TRUE((*server)->AddMessage(kBob, m).ok());

  testing::TestRsaKey rsa = testing::GenerateRsaKey();
  ServiceAccountTokenSource::Options base;
  base.key.client_email = "sync@tessera-test.iam.gserviceaccount.com";
  base.key.private_key_pem = rsa.private_pem;
  base.token_url = (*token_server)->url() + "/token";
  RetryingHttpClient::Options client_options;
  client_options.jitter = [] { return 0.5; };
  DelegatedClients clients(transport_.get(), &clock_, base, client_options);

  GmailConnector::Options options = DirectoryOptions();
  options.base_url = (*server)->base_url();
  options.admin_base_url = (*server)->admin_base_url();
  options.directory_clients = clients.directory_provider();
  auto connector = GmailConnector::Create(clients.provider(), &clock_, options);
  ASSERT_TRUE(connector.ok()) << connector.status();
  SyncRunner runner(connector->get(), &sink_, store_.get(), {.connector_id = "gmail:dir"});
  auto stats = runner.SyncAll();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_THAT(Ids(), ElementsAre("bob@x.com/b1"));
  absl::MutexLock lock(&mu);
  EXPECT_THAT(grants, ElementsAre(std::string("admin@x.com ") + kDirectoryUserReadonlyScope,
                                  std::string("ann@x.com ") + kGmailReadonlyScope,
                                  std::string("bob@x.com ") + kGmailReadonlyScope));
}

}  // namespace
}  // namespace tessera::connectors::gmail
