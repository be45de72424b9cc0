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
#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "common/http/curl_http_transport.h"
#include "common/sqlite.h"
#include "connectors/auth/testing/rotating_token_source.h"
#include "connectors/framework/checkpoint_store.h"
#include "connectors/framework/in_memory.h"
#include "connectors/framework/sync_runner.h"
#include "connectors/gmail/fake_gmail_server.h"
#include "connectors/gmail/gmail_connector.h"
#include "connectors/http/retrying_client.h"
#include "gtest/gtest.h"

namespace tessera::connectors::gmail {
namespace {

constexpr int kRounds = 8;
const std::vector<std::string> kMailboxes = {"ann@x.com", "bob@x.com"};

// Forwards to an InMemorySink; when armed, the `fail_at`-th call from then on
// applies the change and then fails (the acknowledgement is lost: a crash).
class CrashingSink : public DocumentSink {
 public:
  explicit CrashingSink(InMemorySink *inner) : inner_(inner) {}
  void Arm(int fail_at) { countdown_ = fail_at; }
  void Disarm() { countdown_ = -1; }
  absl::Status Upsert(absl::string_view source,
                      const std::vector<ConnectorDocument> &documents) override {
    absl::Status s = inner_->Upsert(source, documents);
    return s.ok() ? Tick() : s;
  }
  absl::Status Delete(absl::string_view source, const std::vector<std::string> &ids) override {
    absl::Status s = inner_->Delete(source, ids);
    return s.ok() ? Tick() : s;
  }
  absl::StatusOr<std::vector<std::string>> ListIds(absl::string_view source) override {
    return inner_->ListIds(source);
  }

 private:
  absl::Status Tick() {
    if (countdown_ > 0 && --countdown_ == 0) return absl::UnavailableError("sink crashed");
    return absl::OkStatus();
  }
  InMemorySink *const inner_;
  int countdown_ = -1;
};

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

class ConvergenceTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  void SetUp() override {
    rng_.seed(GetParam());
    FakeGmailServer::Options server_options;
    server_options.mailboxes = kMailboxes;
    server_options.clock = &clock_;
    auto server = FakeGmailServer::Start(server_options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    server_->AcceptToken("tok-1");
    AcceptUpcomingTokens();
    auto transport = CurlHttpTransport::Create({});
    ASSERT_TRUE(transport.ok());
    transport_ = std::move(*transport);
    RetryingHttpClient::Options client_options;
    client_options.token_source = &tokens_;
    client_options.jitter = [] { return 0.5; };
    client_options.policy.max_attempts = 8;
    client_ = std::make_unique<RetryingHttpClient>(transport_.get(), &clock_, client_options);
    auto db = SqliteDatabase::Open(":memory:", {});
    ASSERT_TRUE(db.ok());
    db_ = std::move(*db);
    auto store = SqliteCheckpointStore::Create(db_.get(), &clock_);
    ASSERT_TRUE(store.ok());
    store_ = std::move(*store);
    for (int i = 0; i < 10; ++i) ASSERT_NO_FATAL_FAILURE(Create());
  }

  void StartDaemon(SyncRunner::Options runner_options = {}) {
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

  void AcceptUpcomingTokens() {
    int g = tokens_.generation();
    for (int i = g + 1; i <= g + 4; ++i) server_->AcceptToken(absl::StrCat("tok-", i));
  }

  int Rand(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  template <typename T>
  const T &Pick(const std::vector<T> &v) {
    return v[Rand(static_cast<int>(v.size()))];
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

  void Mutate() {
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

  void InjectFaults(std::vector<std::string> *log) {
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

  std::string FirstDifference() {
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

  std::string Context(int round, const std::vector<std::string> &log) {
    return absl::StrCat("seed=", GetParam(), " round=", round,
                        " events: ", absl::StrJoin(log, "; "));
  }

  std::mt19937 rng_;
  SimulatedClock clock_{SimulatedClock::Options{.auto_advance = true}};
  RotatingTokenSource tokens_;
  std::unique_ptr<FakeGmailServer> server_;
  std::unique_ptr<HttpTransport> transport_;
  std::unique_ptr<RetryingHttpClient> client_;
  std::unique_ptr<SqliteDatabase> db_;
  std::unique_ptr<SqliteCheckpointStore> store_;
  InMemorySink sink_;
  CrashingSink crashing_sink_{&sink_};
  std::unique_ptr<GmailConnector> connector_;
  std::unique_ptr<SyncRunner> runner_;
  std::map<std::string, std::map<std::string, ModelMessage>> model_;
  int next_ = 0;
};

TEST_P(ConvergenceTest, IndexEqualsMailboxesAfterEveryRound) {
  StartDaemon();
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::string> log;
    if (round > 0) {
      int n = 2 + Rand(7);
      for (int i = 0; i < n; ++i) ASSERT_NO_FATAL_FAILURE(Mutate());
      log.push_back(absl::StrCat(n, " mutations"));
    }
    ASSERT_NO_FATAL_FAILURE(InjectFaults(&log));
    AcceptUpcomingTokens();
    if (Chance(0.35)) {
      int k = 1 + Rand(4);
      SyncRunner::Options crashing;
      bool in_sink = Chance(0.5);
      if (in_sink) {
        crashing_sink_.Arm(k);
      } else {
        auto pages = std::make_shared<int>(0);
        crashing.before_commit = [pages, k](const ChangePage &) {
          return ++*pages == k ? absl::AbortedError("killed") : absl::OkStatus();
        };
      }
      log.push_back(absl::StrCat("crash ", in_sink ? "in sink" : "before commit", " at ", k));
      StartDaemon(crashing);
      (void)runner_->SyncAll();  // may finish before the crash point
      crashing_sink_.Disarm();
      if (Chance(0.5)) {
        for (int i = 0; i < 1 + Rand(3); ++i) ASSERT_NO_FATAL_FAILURE(Mutate());
        log.push_back("mutations while down");
      }
      StartDaemon();
    }
    auto stats = runner_->SyncAll();
    ASSERT_TRUE(stats.ok()) << stats.status() << " " << Context(round, log);
    ASSERT_EQ(FirstDifference(), "") << Context(round, log);
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, ConvergenceTest, ::testing::Range(1u, 13u));

}  // namespace
}  // namespace tessera::connectors::gmail
