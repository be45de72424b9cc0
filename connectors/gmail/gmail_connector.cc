#include "connectors/gmail/gmail_connector.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "connectors/framework/change_page.h"
#include "connectors/framework/rest_util.h"
#include "nlohmann/json.hpp"

namespace tessera::connectors::gmail {
namespace {

using json = nlohmann::json;
using rest::Arr;
using rest::StrList;
using rest::UrlEncode;

// Like rest::Str, but an integer reads as its decimal string.
std::string Str(const json &j, const char *key) {
  auto it = j.find(key);
  if (it == j.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
  return "";
}

std::string Addresses(const std::vector<MailAddress> &as) {
  std::vector<std::string> s;
  for (const MailAddress &a : as) s.push_back(FormatAddress(a));
  return absl::StrJoin(s, ", ");
}

using Outcome = DocumentOutcome;

}  // namespace

// --- DelegatedClients --------------------------------------------------------

DelegatedClients::DelegatedClients(HttpTransport *transport, Clock *clock,
                                   ServiceAccountTokenSource::Options base,
                                   RetryingHttpClient::Options client_options)
    : transport_(transport),
      clock_(clock),
      base_(std::move(base)),
      client_options_(std::move(client_options)) {}

absl::StatusOr<RetryingHttpClient *> DelegatedClients::Get(const std::string &mailbox) {
  std::string subject = absl::AsciiStrToLower(mailbox);
  return GetFor(
      subject, subject,
      base_.scopes.empty() ? std::vector<std::string>{kGmailReadonlyScope} : base_.scopes);
}

absl::StatusOr<RetryingHttpClient *> DelegatedClients::GetDirectory(const std::string &admin) {
  std::string subject = absl::AsciiStrToLower(admin);
  // The configured scopes are Gmail's; the directory needs its own.
  return GetFor(absl::StrCat("directory:", subject), subject, {kDirectoryUserReadonlyScope});
}

absl::StatusOr<RetryingHttpClient *> DelegatedClients::GetFor(const std::string &key,
                                                              const std::string &subject,
                                                              std::vector<std::string> scopes) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) return it->second.client.get();
  ServiceAccountTokenSource::Options options = base_;
  options.subject = subject;
  options.scopes = std::move(scopes);
  ASSIGN_OR_RETURN(std::unique_ptr<ServiceAccountTokenSource> tokens,
                   ServiceAccountTokenSource::Create(transport_, clock_, std::move(options)));
  RetryingHttpClient::Options client_options = client_options_;
  client_options.token_source = tokens.get();
  Entry &e = entries_[key];
  e.tokens = std::move(tokens);
  e.client = std::make_unique<RetryingHttpClient>(transport_, clock_, client_options);
  return e.client.get();
}

// --- GmailConnector ----------------------------------------------------------

class GmailConnector::Impl {
 public:
  Impl(ClientProvider clients, Clock *clock, Options options)
      : clients_(std::move(clients)), clock_(clock), options_(std::move(options)) {}

  absl::StatusOr<std::vector<std::string>> Scopes() {
    if (!Directory()) return options_.mailboxes;
    return ListDirectory();
  }

  absl::Status ValidateConfig() {
    if (Directory()) {
      ASSIGN_OR_RETURN(std::vector<std::string> users, ListDirectory());
      if (users.empty()) return absl::OkStatus();
      ASSIGN_OR_RETURN(Box * box, GetBox(users.front()));
      return Profile(box).status();
    }
    for (const std::string &m : options_.mailboxes) {
      ASSIGN_OR_RETURN(Box * box, GetBox(m));
      ASSIGN_OR_RETURN(json profile, Profile(box));
      (void)profile;
    }
    return absl::OkStatus();
  }

  absl::Status FullSync(absl::string_view scope, const PageCallback &on_page) {
    ASSIGN_OR_RETURN(Box * box, GetBox(scope));
    ASSIGN_OR_RETURN(json profile, Profile(box));
    std::string history = Str(profile, "historyId");
    if (history.empty()) return absl::InternalError("Gmail getProfile returned no historyId");
    return ListFrom(box, history, "", on_page);
  }

  absl::Status IncrementalSync(absl::string_view scope, absl::string_view checkpoint,
                               const PageCallback &on_page) {
    ASSIGN_OR_RETURN(Box * box, GetBox(scope));
    if (resync_.erase(std::string(scope)) > 0) return FullSync(scope, on_page);
    json cp = json::parse(checkpoint, nullptr, /*allow_exceptions=*/false);
    std::string mode = cp.is_object() ? Str(cp, "mode") : "";
    std::string history = cp.is_object() ? Str(cp, "history") : "";
    int64_t unused = 0;
    if (history.empty() || !absl::SimpleAtoi(history, &unused)) mode.clear();
    if (mode == "list") {
      RETURN_IF_ERROR(EnsureAddress(box));
      RETURN_IF_ERROR(ListFrom(box, history, Str(cp, "page"), on_page));
      return History(box, history, "", on_page);
    }
    if (mode == "history") {
      RETURN_IF_ERROR(EnsureAddress(box));
      return History(box, history, Str(cp, "page"), on_page);
    }
    return absl::InvalidArgumentError(
        absl::StrCat("unreadable Gmail checkpoint '", checkpoint.substr(0, 100), "'"));
  }

  absl::StatusOr<std::vector<SlimDocument>> SlimListing(absl::string_view scope) {
    ASSIGN_OR_RETURN(Box * box, GetBox(scope));
    RETURN_IF_ERROR(EnsureAddress(box));
    std::vector<SlimDocument> out;
    std::string page_token;
    for (int empty = 0;;) {
      ASSIGN_OR_RETURN(json list, ListMessages(box, page_token));
      for (const json &m : Arr(list, "messages")) {
        std::string id = Str(m, "id");
        if (id.empty()) continue;
        SlimDocument slim{DocId(box, id), {}};
        if (options_.recipients_can_see) {
          // The recipients are in the headers: format=metadata is enough.
          ASSIGN_OR_RETURN(HttpResponse r, Get(box, MessagePath(box, id),
                                               {{"format", "metadata"},
                                                {"metadataHeaders", "From"},
                                                {"metadataHeaders", "To"},
                                                {"metadataHeaders", "Cc"}}));
          if (r.status_code == 404) continue;
          RETURN_IF_ERROR(CheckHttpStatus(r, "GET", Url(box, MessagePath(box, id), {})));
          ASSIGN_OR_RETURN(json msg, ParseJson(r));
          std::string headers;
          if (msg.contains("payload") && msg["payload"].is_object()) {
            for (const json &h : Arr(msg["payload"], "headers")) {
              absl::StrAppend(&headers, Str(h, "name"), ": ", Str(h, "value"), "\r\n");
            }
          }
          absl::StatusOr<MimeMessage> parsed =
              ParseMimeMessage(absl::StrCat(headers, "\r\n"), options_.mime);
          slim.acl = Acl(box, parsed.ok() ? &*parsed : nullptr);
        } else {
          slim.acl = Acl(box, nullptr);
        }
        out.push_back(std::move(slim));
      }
      std::string next = Str(list, "nextPageToken");
      if (next.empty()) break;
      RETURN_IF_ERROR(rest::CheckProgress("Gmail", Arr(list, "messages").empty(), &empty));
      page_token = next;
    }
    return out;
  }

  absl::StatusOr<ConnectorDocument> FetchDocument(absl::string_view id) {
    size_t slash = id.rfind('/');
    if (slash == absl::string_view::npos || slash == 0 || slash + 1 == id.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("Gmail document id '", id, "' is not <mailbox>/<message id>"));
    }
    std::string address = absl::AsciiStrToLower(id.substr(0, slash));
    std::string message_id(id.substr(slash + 1));
    Box *box = nullptr;
    std::vector<std::string> mailboxes = options_.mailboxes;
    if (Directory()) {
      if (!enumerated_) RETURN_IF_ERROR(ListDirectory().status());
      mailboxes.assign(directory_.begin(), directory_.end());
    }
    for (const std::string &m : mailboxes) {
      ASSIGN_OR_RETURN(Box * b, GetBox(m));
      RETURN_IF_ERROR(EnsureAddress(b));
      if (b->address == address) box = b;
    }
    if (box == nullptr) {
      return absl::NotFoundError(absl::StrCat("mailbox ", address, " is not synced"));
    }
    ASSIGN_OR_RETURN(Outcome o, Process(box, message_id));
    return FetchedDocument(std::move(o),
                           absl::NotFoundError(absl::StrCat("Gmail message ", id, " not found")));
  }

 private:
  using Params = std::vector<std::pair<std::string, std::string>>;
  struct Box {
    std::string user;  // the userId in URLs: the configured mailbox or "me"
    RetryingHttpClient *client = nullptr;
    std::string address;  // lowercased, from getProfile
  };

  bool Directory() const { return !options_.directory_customer.empty(); }

  // The directory's non-suspended users, lowercased, in directory order;
  // remembered as the mailboxes GetBox accepts.
  absl::StatusOr<std::vector<std::string>> ListDirectory() {
    ASSIGN_OR_RETURN(RetryingHttpClient * client,
                     options_.directory_clients(options_.directory_admin));
    if (client == nullptr) return absl::InternalError("no HTTP client for the Gmail directory");
    std::vector<std::string> out;
    std::set<std::string> seen;
    std::string page_token;
    for (int empty = 0;;) {
      std::string url = absl::StrCat(
          options_.admin_base_url, "/users?customer=", UrlEncode(options_.directory_customer),
          "&maxResults=", options_.directory_page_size,
          "&fields=", UrlEncode("nextPageToken,users(primaryEmail,suspended)"));
      if (!page_token.empty()) absl::StrAppend(&url, "&pageToken=", UrlEncode(page_token));
      HttpRequest req;
      req.url = url;
      ASSIGN_OR_RETURN(HttpResponse r, client->Send(req));
      RETURN_IF_ERROR(CheckHttpStatus(r, "GET", absl::StrCat(options_.admin_base_url, "/users")));
      json list = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
      if (!list.is_object()) {
        return absl::UnavailableError("Admin SDK directory returned malformed JSON");
      }
      for (const json &u : Arr(list, "users")) {
        std::string email = absl::AsciiStrToLower(Str(u, "primaryEmail"));
        auto suspended = u.find("suspended");
        if (email.find('@') == std::string::npos) continue;
        if (suspended != u.end() && suspended->is_boolean() && suspended->get<bool>()) continue;
        if (seen.insert(email).second) out.push_back(email);
      }
      std::string next = Str(list, "nextPageToken");
      if (next.empty()) break;
      RETURN_IF_ERROR(
          rest::CheckProgress("Admin SDK directory", Arr(list, "users").empty(), &empty));
      page_token = next;
    }
    // A user that left the directory had its messages pruned (no scope lists
    // them any more); if it comes back, its old checkpoint would resume past
    // them, so its next sync lists it fully instead.
    for (const std::string &u : directory_) {
      if (seen.count(u) == 0) gone_.insert(u);
    }
    for (const std::string &u : seen) {
      if (gone_.erase(u) > 0) resync_.insert(u);
    }
    directory_ = std::move(seen);
    enumerated_ = true;
    return out;
  }

  absl::StatusOr<Box *> GetBox(absl::string_view scope) {
    auto it = boxes_.find(scope);
    if (it != boxes_.end()) return &it->second;
    if (Directory()) {
      if (!enumerated_) RETURN_IF_ERROR(ListDirectory().status());
      if (directory_.count(std::string(scope)) == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown Gmail scope ", scope, " (not an active directory user)"));
      }
    } else if (std::find(options_.mailboxes.begin(), options_.mailboxes.end(), scope) ==
               options_.mailboxes.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown Gmail scope ", scope));
    }
    ASSIGN_OR_RETURN(RetryingHttpClient * client, clients_(std::string(scope)));
    if (client == nullptr) {
      return absl::InternalError(absl::StrCat("no HTTP client for mailbox ", scope));
    }
    Box &box = boxes_[std::string(scope)];
    box.user = std::string(scope);
    box.client = client;
    return &box;
  }

  std::string Url(Box *box, absl::string_view path, const Params &params) const {
    std::string url = absl::StrCat(options_.base_url, "/users/", UrlEncode(box->user, "@"), path);
    char sep = '?';
    for (const auto &[k, v] : params) {
      absl::StrAppend(&url, std::string(1, sep), UrlEncode(k), "=", UrlEncode(v));
      sep = '&';
    }
    return url;
  }

  absl::StatusOr<HttpResponse> Get(Box *box, absl::string_view path, const Params &params) {
    HttpRequest req;
    req.url = Url(box, path, params);
    return box->client->Send(req);
  }

  static absl::StatusOr<json> ParseJson(const HttpResponse &r) {
    json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) return absl::UnavailableError("Gmail returned malformed JSON");
    return j;
  }

  absl::StatusOr<json> GetJson(Box *box, absl::string_view path, const Params &params) {
    ASSIGN_OR_RETURN(HttpResponse r, Get(box, path, params));
    RETURN_IF_ERROR(CheckHttpStatus(r, "GET", Url(box, path, {})));
    return ParseJson(r);
  }

  absl::StatusOr<json> Profile(Box *box) {
    ASSIGN_OR_RETURN(json profile, GetJson(box, "/profile", {}));
    std::string address = absl::AsciiStrToLower(Str(profile, "emailAddress"));
    if (address.empty()) return absl::InternalError("Gmail getProfile returned no emailAddress");
    box->address = address;
    return profile;
  }

  absl::Status EnsureAddress(Box *box) {
    if (!box->address.empty()) return absl::OkStatus();
    return Profile(box).status();
  }

  std::string DocId(Box *box, absl::string_view message_id) const {
    return absl::StrCat(box->address, "/", message_id);
  }
  std::string MessagePath(Box *, absl::string_view id) const {
    return absl::StrCat("/messages/", UrlEncode(id));
  }

  absl::StatusOr<json> ListMessages(Box *box, const std::string &page_token) {
    Params params = {{"maxResults", absl::StrCat(options_.page_size)},
                     {"includeSpamTrash", options_.include_spam_trash ? "true" : "false"},
                     {"fields", "messages(id,threadId),nextPageToken"}};
    if (!options_.query.empty()) params.push_back({"q", options_.query});
    if (!page_token.empty()) params.push_back({"pageToken", page_token});
    return GetJson(box, "/messages", params);
  }

  // Lists all messages from `page_token`, emitting pages whose checkpoints
  // resume the listing; the last one resumes the history feed at `history`.
  absl::Status ListFrom(Box *box, const std::string &history, std::string page_token,
                        const PageCallback &on_page) {
    for (int empty = 0;;) {
      ASSIGN_OR_RETURN(json list, ListMessages(box, page_token));
      std::vector<Outcome> outcomes;
      for (const json &m : Arr(list, "messages")) {
        std::string id = Str(m, "id");
        if (id.empty()) continue;
        ASSIGN_OR_RETURN(Outcome o, Process(box, id));
        if (o.kind == Outcome::kDelete) o.kind = Outcome::kSkip;  // pruning handles it
        outcomes.push_back(std::move(o));
      }
      ChangePage page;
      CollectLastPerId(std::move(outcomes), &page);
      std::string next = Str(list, "nextPageToken");
      if (next.empty()) {
        page.checkpoint = json({{"mode", "history"}, {"history", history}}).dump();
        page.full_listing_done = true;
      } else {
        RETURN_IF_ERROR(rest::CheckProgress("Gmail", Arr(list, "messages").empty(), &empty));
        page.checkpoint = json({{"mode", "list"}, {"history", history}, {"page", next}}).dump();
      }
      RETURN_IF_ERROR(on_page(std::move(page)));
      if (next.empty()) return absl::OkStatus();
      page_token = next;
    }
  }

  absl::Status History(Box *box, const std::string &start, std::string page_token,
                       const PageCallback &on_page) {
    for (int empty = 0;;) {
      Params params = {
          {"startHistoryId", start},        {"maxResults", absl::StrCat(options_.page_size)},
          {"historyTypes", "messageAdded"}, {"historyTypes", "messageDeleted"},
          {"historyTypes", "labelAdded"},   {"historyTypes", "labelRemoved"}};
      if (!page_token.empty()) params.push_back({"pageToken", page_token});
      ASSIGN_OR_RETURN(HttpResponse r, Get(box, "/history", params));
      if (r.status_code == 404) {
        // The historyId is too old: list everything again; the runner prunes after.
        return FullSync(box->user, on_page);
      }
      if (r.status_code == 400 && !page_token.empty()) {
        // A page token from an earlier run no longer accepted: replay from the start id
        // (changes are refetched, so replaying is harmless).
        page_token.clear();
        continue;
      }
      RETURN_IF_ERROR(CheckHttpStatus(r, "GET", Url(box, "/history", {})));
      ASSIGN_OR_RETURN(json list, ParseJson(r));
      // In record order: a deletion wins over earlier changes of the same message and
      // vice versa (ids are never reused, so a change after a deletion is impossible).
      std::vector<std::pair<std::string, bool>> events;  // id, deleted
      for (const json &rec : Arr(list, "history")) {
        for (const json &d : Arr(rec, "messagesDeleted")) {
          if (d.contains("message")) events.push_back({Str(d["message"], "id"), true});
        }
        for (const char *key : {"messagesAdded", "labelsAdded", "labelsRemoved"}) {
          for (const json &a : Arr(rec, key)) {
            if (a.contains("message")) events.push_back({Str(a["message"], "id"), false});
          }
        }
      }
      absl::flat_hash_map<std::string, bool> last;
      std::vector<std::string> order;
      for (const auto &[id, deleted] : events) {
        if (id.empty()) continue;
        if (!last.contains(id)) order.push_back(id);
        last[id] = deleted;
      }
      std::vector<Outcome> outcomes;
      for (const std::string &id : order) {
        if (last[id]) {
          Outcome o;
          o.kind = Outcome::kDelete;
          o.doc.id = DocId(box, id);
          outcomes.push_back(std::move(o));
          continue;
        }
        ASSIGN_OR_RETURN(Outcome o, Process(box, id));
        outcomes.push_back(std::move(o));
      }
      ChangePage page;
      CollectLastPerId(std::move(outcomes), &page);
      std::string next = Str(list, "nextPageToken");
      std::string fresh = Str(list, "historyId");
      if (next.empty()) {
        if (fresh.empty())
          return absl::UnavailableError("Gmail history.list returned no historyId");
        page.checkpoint = json({{"mode", "history"}, {"history", fresh}}).dump();
      } else {
        RETURN_IF_ERROR(rest::CheckProgress("Gmail", Arr(list, "history").empty(), &empty));
        page.checkpoint = json({{"mode", "history"}, {"history", start}, {"page", next}}).dump();
      }
      RETURN_IF_ERROR(on_page(std::move(page)));
      if (next.empty()) return absl::OkStatus();
      page_token = next;
    }
  }

  std::vector<std::string> Acl(Box *box, const MimeMessage *m) const {
    std::vector<std::string> acl = {absl::StrCat("user:", box->address)};
    if (options_.recipients_can_see && m != nullptr) {
      for (const auto *list : {&m->from, &m->to, &m->cc}) {
        for (const MailAddress &a : *list) {
          if (a.email.find('@') == std::string::npos) continue;
          acl.push_back(absl::StrCat("user:", absl::AsciiStrToLower(a.email)));
        }
      }
    }
    std::sort(acl.begin(), acl.end());
    acl.erase(std::unique(acl.begin(), acl.end()), acl.end());
    return acl;
  }

  // Fetches one message and turns it into what the index should do with it.
  absl::StatusOr<Outcome> Process(Box *box, const std::string &id) {
    Outcome o;
    o.doc.id = DocId(box, id);
    o.failure.id = o.doc.id;
    std::string path = MessagePath(box, id);
    ASSIGN_OR_RETURN(HttpResponse r, Get(box, path, {{"format", "raw"}}));
    if (r.status_code == 404) {
      o.kind = Outcome::kDelete;  // gone since it was listed
      return o;
    }
    if (r.status_code / 100 == 4 && r.status_code != 401 && r.status_code != 429) {
      o.kind = Outcome::kFailure;
      o.failure.status = CheckHttpStatus(r, "GET", Url(box, path, {}));
      return o;
    }
    RETURN_IF_ERROR(CheckHttpStatus(r, "GET", Url(box, path, {})));
    ASSIGN_OR_RETURN(json msg, ParseJson(r));
    std::vector<std::string> labels = StrList(msg, "labelIds");
    auto has = [&](absl::string_view l) {
      return std::find(labels.begin(), labels.end(), l) != labels.end();
    };
    if (!options_.include_spam_trash && (has("SPAM") || has("TRASH"))) {
      o.kind = Outcome::kDelete;
      return o;
    }
    absl::StatusOr<std::string> raw = DecodeBase64Url(Str(msg, "raw"));
    absl::StatusOr<MimeMessage> parsed = raw.ok() ? ParseMimeMessage(*raw, options_.mime)
                                                  : absl::StatusOr<MimeMessage>(raw.status());
    if (!parsed.ok()) {
      o.kind = Outcome::kFailure;
      o.failure.status = parsed.status();
      return o;
    }
    const MimeMessage &m = *parsed;
    ConnectorDocument &d = o.doc;
    d.title = m.subject.empty() ? "(no subject)" : m.subject;
    o.failure.title = d.title;
    d.uri = absl::StrCat("https://mail.google.com/mail/u/0/#all/", id);
    d.mime_type = "message/rfc822";
    int64_t ms = 0;
    if (absl::SimpleAtoi(Str(msg, "internalDate"), &ms)) {
      d.modified_time = absl::FromUnixMillis(ms);
    } else if (m.date) {
      d.modified_time = *m.date;
    }
    std::vector<std::string> summary;
    if (!m.from.empty()) summary.push_back(absl::StrCat("From: ", Addresses(m.from)));
    if (!m.to.empty()) summary.push_back(absl::StrCat("To: ", Addresses(m.to)));
    if (!m.cc.empty()) summary.push_back(absl::StrCat("Cc: ", Addresses(m.cc)));
    if (m.date) {
      summary.push_back(absl::StrCat(
          "Date: ", absl::FormatTime("%a, %d %b %Y %H:%M:%S +0000", *m.date, absl::UTCTimeZone())));
    }
    summary.push_back(absl::StrCat("Subject: ", d.title));
    std::string text = absl::StrJoin(summary, "\n");
    if (!m.body.empty()) absl::StrAppend(&text, "\n\n", m.body);
    d.sections.push_back({d.title, std::move(text), 0});
    for (const MimeAttachment &a : m.attachments) {
      if (!a.status.ok() || a.text.empty()) continue;
      d.sections.push_back({absl::StrCat("Attachment: ", a.filename), a.text, 0});
    }
    d.acl = Acl(box, &m);
    d.metadata["mailbox"] = box->address;
    d.metadata["thread_id"] = Str(msg, "threadId");
    d.metadata["labels"] = absl::StrJoin(labels, ",");
    if (!m.from.empty()) d.metadata["from"] = Addresses(m.from);
    if (!m.to.empty()) d.metadata["to"] = Addresses(m.to);
    if (!m.cc.empty()) d.metadata["cc"] = Addresses(m.cc);
    if (m.date)
      d.metadata["date"] = absl::FormatTime(absl::RFC3339_sec, *m.date, absl::UTCTimeZone());
    if (!m.message_id.empty()) d.metadata["message_id"] = m.message_id;
    o.kind = Outcome::kUpsert;
    return o;
  }

  ClientProvider clients_;
  Clock *const clock_;
  const Options options_;
  std::map<std::string, Box, std::less<>> boxes_;
  // Directory mode: the users of the last listing.
  bool enumerated_ = false;
  std::set<std::string> directory_;
  std::set<std::string> gone_;    // left the directory since this process saw them
  std::set<std::string> resync_;  // came back: the next sync is a full listing
};

absl::StatusOr<std::unique_ptr<GmailConnector>> GmailConnector::Create(ClientProvider clients,
                                                                       Clock *clock,
                                                                       Options options) {
  if (!clients) return absl::InvalidArgumentError("Gmail connector needs a client provider");
  if (!options.directory_customer.empty()) {
    if (options.directory_admin.find('@') == std::string::npos) {
      return absl::InvalidArgumentError(
          "Gmail directory_customer needs directory_admin, an administrator's address");
    }
    if (!options.directory_clients) {
      return absl::InvalidArgumentError("Gmail directory_customer needs a directory client");
    }
    if (options.directory_page_size < 1 || options.directory_page_size > 500) {
      return absl::InvalidArgumentError("Gmail directory page size must be within 1..500");
    }
    if (!absl::StartsWith(options.admin_base_url, "http://") &&
        !absl::StartsWith(options.admin_base_url, "https://")) {
      return absl::InvalidArgumentError("Gmail admin_base_url must be an http(s) URL");
    }
    options.mailboxes.clear();
  } else if (options.mailboxes.empty()) {
    return absl::InvalidArgumentError("Gmail connector has no mailboxes to sync");
  }
  for (std::string &m : options.mailboxes) {
    if (m != "me" && m.find('@') == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("Gmail mailbox '", m, "' is neither an address nor \"me\""));
    }
  }
  if (options.page_size < 1 || options.page_size > 500) {
    return absl::InvalidArgumentError("Gmail page_size must be within 1..500");
  }
  if (!absl::StartsWith(options.base_url, "http://") &&
      !absl::StartsWith(options.base_url, "https://")) {
    return absl::InvalidArgumentError("Gmail base_url must be an http(s) URL");
  }
  return std::unique_ptr<GmailConnector>(
      new GmailConnector(std::make_unique<Impl>(std::move(clients), clock, std::move(options))));
}

GmailConnector::GmailConnector(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GmailConnector::~GmailConnector() = default;

absl::StatusOr<std::vector<std::string>> GmailConnector::Scopes() { return impl_->Scopes(); }
absl::Status GmailConnector::ValidateConfig() { return impl_->ValidateConfig(); }
absl::Status GmailConnector::FullSync(absl::string_view scope, const PageCallback &on_page) {
  return impl_->FullSync(scope, on_page);
}
absl::Status GmailConnector::IncrementalSync(absl::string_view scope, absl::string_view checkpoint,
                                             const PageCallback &on_page) {
  return impl_->IncrementalSync(scope, checkpoint, on_page);
}
absl::StatusOr<std::vector<SlimDocument>> GmailConnector::SlimListing(absl::string_view scope) {
  return impl_->SlimListing(scope);
}
absl::StatusOr<ConnectorDocument> GmailConnector::FetchDocument(absl::string_view id) {
  return impl_->FetchDocument(id);
}

}  // namespace tessera::connectors::gmail
