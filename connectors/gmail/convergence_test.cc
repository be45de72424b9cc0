// Randomised convergence test for the Gmail connector and the SyncRunner
// (12 seeds x 8 rounds, two mailboxes, page size 2, a SimulatedClock: retries
// never sleep), in the style of connectors/drive/convergence_test.cc.
//
// Between rounds the fake Gmail is mutated at random (new messages: plain,
// HTML-only, multipart with an attachment; deletes; labels added and removed;
// moves to and from TRASH and SPAM) and faults are injected (429 with
// Retry-After, 403 rate limits, 500/503, 401 and token expiry, disconnects,
// empty pages, duplicated entries, expired history ids). Some rounds "kill the
// daemon" mid-round (the sink or the before_commit hook fails after K pages)
// and a NEW connector and runner over the same checkpoint database finish the
// round. After every round the index must equal an oracle computed from a
// mirror of the mailboxes.
#include "connectors/testing/convergence.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "connectors/framework/checkpoint_store.h"
#include "connectors/framework/in_memory.h"
#include "connectors/framework/sync_runner.h"
#include "connectors/gmail/fake_gmail_server.h"
#include "connectors/gmail/gmail_connector.h"
#include "connectors/http/retrying_client.h"
#include "connectors/testing/sync_harness.h"
#include "gtest/gtest.h"

namespace tessera::connectors::gmail {
namespace {

constexpr int kRounds = 8;
const std::vector<std::string> kMailboxes = {"ann@x.com", "bob@x.com"};

struct ModelMessage {
  std::string subject;
  std::string word;  // a unique word of the body (or attachment)
  std::vector<std::string> recipients;
  std::vector<std::string> labels;
};

struct Expected {
  std::string title;
  std::string word;
  std::vector<std::string> acl;
  std::string labels;
};

class ConvergenceTest : public ::testing::TestWithParam<uint32_t>,
                        protected testing::ConvergenceHarness {
 protected:
  void SetUp() override {
    Seed(GetParam());
    FakeGmailServer::Options server_options;
    server_options.mailboxes = kMailboxes;
    server_options.clock = &clock_;
    auto server = FakeGmailServer::Start(server_options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    server_->AcceptToken("tok-1");
    AcceptUpcomingTokens();
    ASSERT_EQ(Open(), absl::OkStatus());
    client_ = MakeClient(&tokens_, 8);
    for (int i = 0; i < 10; ++i) ASSERT_NO_FATAL_FAILURE(Create());
  }

  void StartDaemon(SyncRunner::Options runner_options = {}) override {
    GmailConnector::Options options;
    options.base_url = server_->base_url();
    options.page_size = 2;
    options.mailboxes = kMailboxes;
    options.recipients_can_see = true;
    RetryingHttpClient *client = client_.get();
    auto connector = GmailConnector::Create(
        [client](const std::string &) -> absl::StatusOr<RetryingHttpClient *> { return client; },
        &clock_, options);
    ASSERT_TRUE(connector.ok()) << connector.status();
    connector_ = std::move(*connector);
    runner_options.connector_id = "gmail:convergence";
    runner_ = std::make_unique<SyncRunner>(connector_.get(), &crashing_sink_, store_.get(),
                                           runner_options);
  }

  void Create() {
    const std::string &mailbox = Pick(kMailboxes);
    ModelMessage m;
    int n = next_++;
    m.subject = absl::StrCat("subject ", n);
    m.word = absl::StrCat("word", n, "x", Rand(1000));
    static const std::vector<std::string> kPeople = {"ann@x.com", "bob@x.com", "cy@y.com",
                                                     "dee@z.com"};
    int r = 1 + Rand(2);
    for (int i = 0; i < r; ++i) m.recipients.push_back(Pick(kPeople));
    static const std::vector<std::vector<std::string>> kLabels = {
        {"INBOX"}, {"INBOX", "UNREAD"}, {}, {"SENT"}, {"SPAM"}, {"Label_1"}};
    m.labels = Pick(kLabels);
    std::string headers =
        absl::StrCat("From: Sender <sender@y.com>\r\nTo: ", absl::StrJoin(m.recipients, ", "),
                     "\r\nSubject: ", m.subject, "\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n");
    std::string raw;
    switch (Rand(3)) {
      case 0:
        raw = absl::StrCat(headers, "Content-Type: text/plain\r\n\r\nbody ", m.word, "\r\n");
        break;
      case 1:
        raw = absl::StrCat(headers, "Content-Type: text/html\r\n\r\n<p>body <b>", m.word,
                           "</b></p>\r\n");
        break;
      default:
        raw = absl::StrCat(headers, "Content-Type: multipart/mixed; boundary=b\r\n\r\n",
                           "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n",
                           "--b\r\nContent-Type: text/plain; name=a.txt\r\n",
                           "Content-Disposition: attachment; filename=a.txt\r\n",
                           "Content-Transfer-Encoding: base64\r\n\r\n",
                           absl::Base64Escape(absl::StrCat("attached ", m.word)), "\r\n--b--\r\n");
    }
    FakeMessage fm;
    fm.raw = raw;
    fm.label_ids = m.labels;
    auto id = server_->AddMessage(mailbox, fm);
    ASSERT_TRUE(id.ok()) << id.status();
    model_[mailbox][*id] = m;
  }

  void Mutate() override {
    const std::string &mailbox = Pick(kMailboxes);
    auto &box = model_[mailbox];
    int op = Rand(6);
    if (box.empty() || op == 0) {
      Create();
      return;
    }
    std::vector<std::string> ids;
    for (const auto &[id, m] : box) ids.push_back(id);
    std::string id = Pick(ids);
    ModelMessage &m = box[id];
    auto has = [&](const std::string &l) {
      return std::find(m.labels.begin(), m.labels.end(), l) != m.labels.end();
    };
    auto modify = [&](std::vector<std::string> add, std::vector<std::string> remove) {
      ASSERT_TRUE(server_->ModifyLabels(mailbox, id, add, remove).ok());
      for (const std::string &l : add) {
        if (!has(l)) m.labels.push_back(l);
      }
      for (const std::string &l : remove) {
        m.labels.erase(std::remove(m.labels.begin(), m.labels.end(), l), m.labels.end());
      }
    };
    switch (op) {
      case 1:
        ASSERT_TRUE(server_->DeleteMessage(mailbox, id).ok());
        box.erase(id);
        break;
      case 2:
        modify({Pick(std::vector<std::string>{"STARRED", "Label_2", "IMPORTANT"})}, {});
        break;
      case 3:
        if (m.labels.empty()) return modify({"INBOX"}, {});
        modify({}, {Pick(m.labels)});
        break;
      case 4:
        has("TRASH") ? modify({}, {"TRASH"}) : modify({"TRASH"}, {});
        break;
      default:
        has("SPAM") ? modify({"INBOX"}, {"SPAM"}) : modify({"SPAM"}, {"INBOX"});
    }
  }

  void InjectFaults(std::vector<std::string> *log) override {
    static const std::vector<GmailFault> kFaults = {GmailFault::k429RetryAfterSeconds,
                                                    GmailFault::k429RetryAfterDate,
                                                    GmailFault::k403UserRateLimit,
                                                    GmailFault::k403RateLimit,
                                                    GmailFault::k500,
                                                    GmailFault::k503,
                                                    GmailFault::kDisconnect,
                                                    GmailFault::kEmptyPage,
                                                    GmailFault::kDuplicate,
                                                    GmailFault::k401};
    static const std::vector<std::string> kPaths = {"/messages", "/history", "/messages/",
                                                    "/profile"};
    // A 401 right after a refresh is a real credentials error (the client gives
    // up, as it should), so a round has at most one source of 401: a token
    // expiry or one injected 401 (seeds 111, 259, 275, 277 of Range(1, 301) stacked two).
    server_->ClearFaults();  // unconsumed faults of earlier rounds would stack up
    bool token_expired = Chance(0.2);
    bool had_401 = token_expired;
    if (token_expired) {
      server_->ExpireToken(absl::StrCat("tok-", tokens_.generation()));
      log->push_back("token expired");
    }
    int n = Rand(4);
    for (int i = 0; i < n; ++i) {
      GmailFault fault = Pick(kFaults);
      if (fault == GmailFault::k401) {
        if (had_401) continue;
        had_401 = true;
      }
      std::string prefix = absl::StrCat("/gmail/v1/users/", Pick(kMailboxes), Pick(kPaths));
      server_->InjectFault(prefix, fault);
      log->push_back(absl::StrCat("fault ", static_cast<int>(fault), " on ", prefix));
    }
    if (Chance(0.2)) {
      const std::string &mailbox = Pick(kMailboxes);
      ASSERT_TRUE(server_->ExpireHistory(mailbox).ok());
      log->push_back(absl::StrCat("history expired for ", mailbox));
    }
  }

  std::map<std::string, Expected> Oracle() {
    std::map<std::string, Expected> out;
    for (const auto &[mailbox, box] : model_) {
      for (const auto &[id, m] : box) {
        auto has = [&](const std::string &l) {
          return std::find(m.labels.begin(), m.labels.end(), l) != m.labels.end();
        };
        if (has("SPAM") || has("TRASH")) continue;
        Expected e;
        e.title = m.subject;
        e.word = m.word;
        std::set<std::string> acl = {absl::StrCat("user:", mailbox), "user:sender@y.com"};
        for (const std::string &r : m.recipients) acl.insert(absl::StrCat("user:", r));
        e.acl.assign(acl.begin(), acl.end());
        e.labels = absl::StrJoin(m.labels, ",");
        out[absl::StrCat(mailbox, "/", id)] = e;
      }
    }
    return out;
  }

  void AcceptToken(const std::string &token) override { server_->AcceptToken(token); }
  absl::StatusOr<SyncStats> Sync() override { return runner_->SyncAll(); }

  std::string FirstDifference() override {
    std::map<std::string, Expected> want = Oracle();
    std::map<std::string, ConnectorDocument> got = sink_.Documents("gmail");
    std::set<std::string> ids;
    for (const auto &[id, e] : want) ids.insert(id);
    for (const auto &[id, d] : got) ids.insert(id);
    for (const std::string &id : ids) {
      auto w = want.find(id);
      auto g = got.find(id);
      if (w == want.end()) return absl::StrCat("index has extra ", id);
      if (g == got.end()) return absl::StrCat("index misses ", id);
      const ConnectorDocument &d = g->second;
      std::string text;
      for (const DocumentSection &s : d.sections) absl::StrAppend(&text, s.text, "\n");
      auto labels = d.metadata.find("labels");
      if (d.title != w->second.title || d.acl != w->second.acl || labels == d.metadata.end() ||
          labels->second != w->second.labels || text.find(w->second.word) == std::string::npos) {
        return absl::StrCat("differs: ", id, " want title=", w->second.title,
                            " labels=", w->second.labels,
                            " acl=", absl::StrJoin(w->second.acl, ","), " got title=", d.title,
                            " labels=", labels == d.metadata.end() ? "?" : labels->second,
                            " acl=", absl::StrJoin(d.acl, ","), " text=", text);
      }
    }
    return "";
  }

  std::unique_ptr<FakeGmailServer> server_;
  std::unique_ptr<RetryingHttpClient> client_;
  std::unique_ptr<GmailConnector> connector_;
  std::unique_ptr<SyncRunner> runner_;
  std::map<std::string, std::map<std::string, ModelMessage>> model_;
  int next_ = 0;
};

TEST_P(ConvergenceTest, IndexEqualsMailboxesAfterEveryRound) { RunRounds(kRounds); }

INSTANTIATE_TEST_SUITE_P(Seeds, ConvergenceTest, ::testing::Range(1u, 13u));

}  // namespace
}  // namespace tessera::connectors::gmail
