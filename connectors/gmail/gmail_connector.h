// GmailConnector: Gmail (API v1) as a Tessera Connector, one document per
// message.
//
// Sync follows Gmail's history feed, as Google's sync guide prescribes:
//   * FullSync reads users.getProfile's historyId *first*, then lists every
//     message (users.messages.list) and fetches each as format=raw; its last
//     page's checkpoint is that historyId, so nothing that changed during the
//     listing is missed.
//   * IncrementalSync follows users.history.list from the checkpointed
//     historyId. messagesDeleted becomes a delete; messagesAdded, labelsAdded
//     and labelsRemoved refetch the message (labels are metadata, and a move to
//     TRASH or SPAM removes it from the index unless include_spam_trash). A
//     404 (historyId too old, ~a week) starts a full resync whose last page
//     asks the runner to prune.
//   * Content: the raw RFC 822 message is parsed by mime_parser.h: section 1
//     is a header summary (From, To, Cc, Date, Subject) and the body (plain
//     text preferred, HTML converted); each parsed attachment is a section of
//     its own, headed by its file name.
//   * Document: id "<mailbox address>/<message id>" (Gmail ids are per
//     mailbox), title = subject, uri = https://mail.google.com/mail/u/0/#all/<id>,
//     modified = internalDate; metadata from, to, cc, labels (comma-joined
//     label ids), thread_id, date (RFC 3339), message_id, mailbox.
//   * ACL: "user:<mailbox owner>"; with recipients_can_see, also the From,
//     To and Cc addresses ("user:<address>", lowercased). Bcc is never known.
//
// Scopes: one per configured mailbox (the address, or "me" for the user of a
// single OAuth token). Each mailbox is read with its own RetryingHttpClient
// from the ClientProvider, so a service account with domain-wide delegation
// impersonates each mailbox's owner (DelegatedClients below), while a user's
// refresh token serves "me".
//
// Errors: a message that cannot be fetched (a final 4xx other than 404) or
// parsed is reported as a DocumentFailure and the sync goes on; a message
// gone between listing and fetching is a delete. Errors that outlast the
// retry policy and 401 after a refresh end the sync with the
// RetryingHttpClient's code; nothing of the current page is committed.
//
// Directory enumeration: with Options::directory_customer set, the mailboxes
// are not listed by hand but read from the Admin SDK directory (GET
// {admin_base_url}/users?customer=..., every page) each time Scopes() is
// called, i.e. once per round: suspended users are skipped, a user added to
// the directory becomes a scope (full sync) in the next round, and a user
// removed or suspended is no longer synced, and its messages are pruned by
// the runner's next Prune() (which runs after any full listing, e.g. a new
// mailbox's, and periodically), since no scope's SlimListing lists them. The
// directory call uses its own client (Options::directory_clients, acting as
// Options::directory_admin; DelegatedClients::directory_provider()), while
// each mailbox is read as its owner. A user that leaves the directory and
// comes back is listed fully again (its old messages were pruned meanwhile);
// this is remembered in memory only, so if the process restarts in between,
// the mailbox resumes from its checkpoint and its older messages return only
// with a history expiry or a resync.
//
// Not done: attachments carried by attachmentId (format=raw inlines them
// all), thread-level documents, group-based ACL expansion.
//
// Thread-compatible: one call at a time.
#ifndef TESSERA_CONNECTORS_GMAIL_GMAIL_CONNECTOR_H_
#define TESSERA_CONNECTORS_GMAIL_GMAIL_CONNECTOR_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/http/http_transport.h"
#include "connectors/auth/service_account.h"
#include "connectors/connector.h"
#include "connectors/gmail/mime_parser.h"
#include "connectors/http/retrying_client.h"

namespace tessera::connectors::gmail {

inline constexpr char kGmailReadonlyScope[] = "https://www.googleapis.com/auth/gmail.readonly";
inline constexpr char kDirectoryUserReadonlyScope[] =
    "https://www.googleapis.com/auth/admin.directory.user.readonly";

// The HTTP client that acts as `mailbox`'s owner. The client must stay valid
// for the connector's lifetime.
using ClientProvider = std::function<absl::StatusOr<RetryingHttpClient *>(const std::string &)>;

// One RetryingHttpClient per mailbox, each with a ServiceAccountTokenSource
// impersonating that mailbox (domain-wide delegation), created on first use.
// Thread-safe. Not owned: transport, clock (must outlive the pool).
class DelegatedClients {
 public:
  DelegatedClients(HttpTransport *transport, Clock *clock, ServiceAccountTokenSource::Options base,
                   RetryingHttpClient::Options client_options);
  // Errors: those of ServiceAccountTokenSource::Create (INVALID_ARGUMENT).
  absl::StatusOr<RetryingHttpClient *> Get(const std::string &mailbox);
  // The client impersonating `admin` with the directory (users, read-only)
  // scope, for GmailConnector::Options::directory_clients. Same errors.
  absl::StatusOr<RetryingHttpClient *> GetDirectory(const std::string &admin);
  ClientProvider provider() {
    return [this](const std::string &m) { return Get(m); };
  }
  ClientProvider directory_provider() {
    return [this](const std::string &a) { return GetDirectory(a); };
  }

 private:
  absl::StatusOr<RetryingHttpClient *> GetFor(const std::string &key, const std::string &subject,
                                              std::vector<std::string> scopes);
  struct Entry {
    std::unique_ptr<ServiceAccountTokenSource> tokens;
    std::unique_ptr<RetryingHttpClient> client;
  };
  HttpTransport *const transport_;
  Clock *const clock_;
  const ServiceAccountTokenSource::Options base_;
  const RetryingHttpClient::Options client_options_;
  absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

class GmailConnector : public Connector {
 public:
  struct Options {
    std::string base_url = "https://gmail.googleapis.com/gmail/v1";
    // Config field `mailboxes`: addresses to sync (domain-wide delegation),
    // or {"me"} for the single user of an OAuth token.
    std::vector<std::string> mailboxes = {"me"};
    // Config option `recipients_can_see`: senders and recipients (From, To,
    // Cc) may find the message too, not only the mailbox owner.
    bool recipients_can_see = false;
    // Index SPAM and TRASH too (off: moving a message there deletes it).
    bool include_spam_trash = false;
    // messages.list `q` (e.g. "after:2024/01/01 -category:promotions");
    // applies to full listings only (history has no filter).
    std::string query;
    int page_size = 100;  // messages.list / history.list maxResults (1..500)
    MimeOptions mime;
    // Config field `directory_customer` ("my_customer", or a customer id):
    // when set, the mailboxes are the directory's non-suspended users, read
    // each round, and `mailboxes` is ignored.
    std::string directory_customer;
    // Config field `directory_admin`: the admin the directory call acts as
    // (the subject passed to directory_clients). Required with
    // directory_customer.
    std::string directory_admin;
    // Config field `admin_api_base`.
    std::string admin_base_url = "https://admin.googleapis.com/admin/directory/v1";
    int directory_page_size = 500;  // users.list maxResults (1..500)
    // The client for the directory call, given directory_admin. Required
    // with directory_customer; the client must outlive the connector.
    ClientProvider directory_clients;
  };

  // `clock` is not owned and must outlive the connector. INVALID_ARGUMENT for
  // bad options.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<GmailConnector>> Create(
      ClientProvider clients, Clock *clock, Options options);

  std::string Source() const override { return "gmail"; }
  // The mailboxes; with directory_customer, read from the directory now
  // (errors of that call: the RetryingHttpClient's codes).
  absl::StatusOr<std::vector<std::string>> Scopes() override;
  // users.getProfile for every mailbox: checks the credentials (and, with
  // delegation, that each mailbox exists and is delegated). With
  // directory_customer: the directory listing, then the first mailbox's
  // profile.
  absl::Status ValidateConfig() override;
  absl::Status FullSync(absl::string_view scope, const PageCallback &on_page) override;
  absl::Status IncrementalSync(absl::string_view scope, absl::string_view checkpoint,
                               const PageCallback &on_page) override;
  absl::StatusOr<std::vector<SlimDocument>> SlimListing(absl::string_view scope) override;
  // `id` as in the documents: "<mailbox address>/<message id>".
  absl::StatusOr<ConnectorDocument> FetchDocument(absl::string_view id) override;

  ~GmailConnector() override;

 private:
  class Impl;
  explicit GmailConnector(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::connectors::gmail

#endif  // TESSERA_CONNECTORS_GMAIL_GMAIL_CONNECTOR_H_
