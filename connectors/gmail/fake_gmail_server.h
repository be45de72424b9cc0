// FakeGmailServer: a Gmail API v1 stand-in for tests.
//
// Serves, on a FakeHttpServer (127.0.0.1, ephemeral port), the subset of the
// Gmail contract in shared/reference/connectors-api.md §1.2 that Tessera's
// connector uses, for one or more mailboxes (userId = the address, or "me"
// for the first mailbox):
//   GET /gmail/v1/users/{u}/profile        emailAddress, messagesTotal, historyId
//   GET /gmail/v1/users/{u}/messages       maxResults (default 100, max 500),
//                                          pageToken, includeSpamTrash; q and
//                                          labelIds are accepted and ignored
//   GET /gmail/v1/users/{u}/messages/{id}  format=raw (base64url without
//                                          padding), metadata (payload.headers),
//                                          minimal/full (no body)
//   GET /gmail/v1/users/{u}/history        startHistoryId (required),
//                                          maxResults, pageToken, historyTypes
//   GET /gmail/v1/users/{u}/labels
//   GET /admin/directory/v1/users          the Admin SDK directory: customer
//                                          (required: "my_customer" or
//                                          Options::customer_id), maxResults
//                                          (default 100, max 500), pageToken;
//                                          users {primaryEmail, suspended,
//                                          name}, sorted by address
// `fields` is ignored (full resources are returned). Every mailbox is a
// directory user; with Options::directory_admins non-empty, a token bound to
// a mailbox (BindToken) may list the directory only if that mailbox is an
// admin (403 "Not Authorized to access this resource/api" otherwise).
//
// Semantics that matter to a connector, as the real service has them:
//   * history ids increase but are not contiguous; a history record carries
//     `messages` plus one of messagesAdded / messagesDeleted / labelsAdded /
//     labelsRemoved, whose messages carry only id and threadId (and labelIds
//     for messagesAdded); the response `historyId` is the mailbox's current
//     one; no nextPageToken on the last page.
//   * ExpireHistory() makes every earlier startHistoryId answer 404 (the
//     client must do a full sync); the current historyId stays valid.
//   * messages.list leaves out SPAM and TRASH unless includeSpamTrash=true;
//     its page tokens are keyset positions, stable under concurrent deletes.
//   * Errors use Google's envelope {"error":{"code","message","status",
//     "errors":[{"domain","reason","message"}]}}; an unknown message is 404.
//   * Every request needs "Authorization: Bearer <token>"; with AcceptToken
//     used, only accepted tokens pass (401 otherwise), so tests can expire the
//     current one mid-sync.
//
// Fault injection (InjectFault) for the next N requests whose path starts with
// a prefix: the catalogue shared with FakeDriveServer
// (connectors/testing/google_api_faults.h: 429 with Retry-After seconds or
// HTTP-date, 403 userRateLimitExceeded / rateLimitExceeded, 500, 503 without
// Retry-After, 401, a connection cut mid-body, an empty page that still
// carries a nextPageToken, duplicated list / history entries).
//
// Thread-safe: all state is under one mutex.
#ifndef TESSERA_CONNECTORS_GMAIL_FAKE_GMAIL_SERVER_H_
#define TESSERA_CONNECTORS_GMAIL_FAKE_GMAIL_SERVER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/http/fake_http_server.h"
#include "connectors/testing/fake_api.h"
#include "connectors/testing/fault_injector.h"
#include "connectors/testing/google_api_faults.h"

namespace tessera::connectors::gmail {

struct FakeMessage {
  std::string id;         // generated when empty
  std::string thread_id;  // defaults to the id
  std::vector<std::string> label_ids = {"INBOX"};
  std::string raw;                          // the RFC 822 bytes
  std::optional<absl::Time> internal_date;  // defaults to the clock
};

// The fault catalogue (connectors/testing/google_api_faults.h), shared with
// FakeDriveServer; kEmptyPage and kDuplicate apply to the messages and
// history lists.
using GmailFault = testing::GoogleFault;

class FakeGmailServer {
 public:
  struct Options {
    std::vector<std::string> mailboxes = {"ann@x.com"};
    Clock *clock = nullptr;  // null: RealClock()
    std::string customer_id = "C01abcdef";
    std::vector<std::string> directory_admins;
  };

  [[nodiscard]] static absl::StatusOr<std::unique_ptr<FakeGmailServer>> Start(Options options);
  ~FakeGmailServer();

  // "http://127.0.0.1:PORT/gmail/v1".
  [[nodiscard]] std::string base_url() const;
  // "http://127.0.0.1:PORT/admin/directory/v1".
  [[nodiscard]] std::string admin_base_url() const;

  // --- Mutations (each recorded in the mailbox's history) ------------------
  // Returns the message id. NOT_FOUND for an unknown mailbox,
  // INVALID_ARGUMENT for a duplicate id.
  absl::StatusOr<std::string> AddMessage(absl::string_view mailbox, FakeMessage message);
  absl::Status DeleteMessage(absl::string_view mailbox, absl::string_view id);
  absl::Status ModifyLabels(absl::string_view mailbox, absl::string_view id,
                            const std::vector<std::string> &add,
                            const std::vector<std::string> &remove);
  // Every historyId issued so far, except the current one, becomes too old.
  absl::Status ExpireHistory(absl::string_view mailbox);

  // --- Directory ------------------------------------------------------------
  // A new, empty mailbox (and directory user). INVALID_ARGUMENT if it exists.
  absl::Status AddMailbox(absl::string_view address);
  // Deletes the user and its mailbox (Gmail then answers 400 for it).
  absl::Status RemoveMailbox(absl::string_view address);
  // A suspended user stays in the directory (suspended: true), mailbox intact.
  absl::Status SetSuspended(absl::string_view address, bool suspended);

  // --- Faults -------------------------------------------------------------
  void InjectFault(absl::string_view path_prefix, GmailFault fault, int times = 1);
  // Drops the injected faults no request has consumed yet.
  void ClearFaults();
  void AcceptToken(std::string token);
  void ExpireToken(absl::string_view token);
  // Accepts `token` for `mailbox` only (as a delegated token acting as that
  // user); other mailboxes answer 403 "Delegation denied".
  void BindToken(std::string token, std::string mailbox);

  [[nodiscard]] int RequestCount(absl::string_view prefix) const;
  [[nodiscard]] int64_t HistoryId(absl::string_view mailbox) const;

 private:
  struct Message {
    FakeMessage m;
    int64_t history_id = 0;
  };
  struct Record {
    int64_t id;
    std::string type;  // messagesAdded | messagesDeleted | labelsAdded | labelsRemoved
    std::string message_id;
    std::string thread_id;
    std::vector<std::string> labels;  // message labels (added) or changed labels
  };
  struct Mailbox {
    std::map<std::string, Message> messages;
    std::vector<Record> history;
    int64_t history_id = 1000;
    int64_t expired_below = 0;
    bool suspended = false;
  };

  FakeGmailServer(Options options, std::unique_ptr<FakeHttpServer> http);
  FakeHttpResponse Serve(const FakeHttpRequest &request);
  FakeHttpResponse ServeLocked(const FakeHttpRequest &request, std::optional<GmailFault> fault)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Mailbox *FindLocked(absl::string_view mailbox) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  FakeHttpResponse ServeDirectoryLocked(const FakeHttpRequest &request, const std::string &token)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t NextHistoryIdLocked(Mailbox *box) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  Clock *const clock_;
  std::unique_ptr<FakeHttpServer> http_;

  mutable absl::Mutex mu_;
  std::map<std::string, Mailbox> mailboxes_ ABSL_GUARDED_BY(mu_);
  testing::FaultInjector<GmailFault> faults_ ABSL_GUARDED_BY(mu_);
  testing::BearerTokens tokens_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> token_mailbox_ ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 0x18c1a000;
};

}  // namespace tessera::connectors::gmail

#endif  // TESSERA_CONNECTORS_GMAIL_FAKE_GMAIL_SERVER_H_
