#include "connectors/gmail/fake_gmail_server.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status.h"
#include "connectors/testing/fake_api.h"
#include "nlohmann/json.hpp"

namespace tessera::connectors::gmail {
namespace {

using json = nlohmann::json;
using testing::GoogleError;
using testing::JsonResponse;
using testing::ParseQuery;
using testing::UrlDecode;
constexpr absl::string_view kPrefix = "/gmail/v1/users/";

int PageSize(const std::map<std::string, std::string> &q, int def, int max) {
  int n = def;
  auto it = q.find("maxResults");
  if (it != q.end() && (!absl::SimpleAtoi(it->second, &n) || n < 1)) n = def;
  return std::min(n, max);
}

bool HasLabel(const FakeMessage &m, absl::string_view label) {
  return std::find(m.label_ids.begin(), m.label_ids.end(), label) != m.label_ids.end();
}

// The header block of `raw`, unfolded, as Gmail's payload.headers.
json Headers(absl::string_view raw) {
  json out = json::array();
  size_t end = raw.find("\r\n\r\n");
  if (end == absl::string_view::npos) end = raw.find("\n\n");
  absl::string_view block = raw.substr(0, end);
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(block, '\n')) {
    line = absl::StripSuffix(line, "\r");
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t') && !lines.empty()) {
      absl::StrAppend(&lines.back(), " ", absl::StripAsciiWhitespace(line));
    } else {
      lines.emplace_back(line);
    }
  }
  for (const std::string &l : lines) {
    size_t colon = l.find(':');
    if (colon == std::string::npos) continue;
    out.push_back({{"name", l.substr(0, colon)},
                   {"value", std::string(absl::StripAsciiWhitespace(l.substr(colon + 1)))}});
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<FakeGmailServer>> FakeGmailServer::Start(Options options) {
  ASSIGN_OR_RETURN(std::unique_ptr<FakeHttpServer> http, FakeHttpServer::Start());
  std::unique_ptr<FakeGmailServer> server(new FakeGmailServer(std::move(options), std::move(http)));
  FakeGmailServer *self = server.get();
  server->http_->Handle("*", "*", [self](const FakeHttpRequest &r) { return self->Serve(r); });
  return server;
}

FakeGmailServer::FakeGmailServer(Options options, std::unique_ptr<FakeHttpServer> http)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : RealClock()),
      http_(std::move(http)) {
  absl::MutexLock lock(&mu_);
  for (const std::string &m : options_.mailboxes) mailboxes_[absl::AsciiStrToLower(m)];
}

FakeGmailServer::~FakeGmailServer() { http_->Stop(); }

std::string FakeGmailServer::base_url() const { return absl::StrCat(http_->url(), "/gmail/v1"); }
std::string FakeGmailServer::admin_base_url() const {
  return absl::StrCat(http_->url(), "/admin/directory/v1");
}

absl::Status FakeGmailServer::AddMailbox(absl::string_view address) {
  absl::MutexLock lock(&mu_);
  std::string key = absl::AsciiStrToLower(address);
  if (key.find('@') == std::string::npos || mailboxes_.count(key)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot add mailbox ", address));
  }
  mailboxes_[key];
  return absl::OkStatus();
}

absl::Status FakeGmailServer::RemoveMailbox(absl::string_view address) {
  absl::MutexLock lock(&mu_);
  if (mailboxes_.erase(absl::AsciiStrToLower(address)) == 0) {
    return absl::NotFoundError(absl::StrCat("no mailbox ", address));
  }
  return absl::OkStatus();
}

absl::Status FakeGmailServer::SetSuspended(absl::string_view address, bool suspended) {
  absl::MutexLock lock(&mu_);
  auto it = mailboxes_.find(absl::AsciiStrToLower(address));
  if (it == mailboxes_.end()) return absl::NotFoundError(absl::StrCat("no mailbox ", address));
  it->second.suspended = suspended;
  return absl::OkStatus();
}

FakeHttpResponse FakeGmailServer::ServeDirectoryLocked(const FakeHttpRequest &request,
                                                       const std::string &token) {
  auto bound = token_mailbox_.find(token);
  if (!options_.directory_admins.empty() && bound != token_mailbox_.end() &&
      std::find(options_.directory_admins.begin(), options_.directory_admins.end(),
                bound->second) == options_.directory_admins.end()) {
    return GoogleError(403, "PERMISSION_DENIED", "forbidden",
                       "Not Authorized to access this resource/api");
  }
  std::map<std::string, std::string> q = ParseQuery(request.query);
  if (q["customer"] != "my_customer" && q["customer"] != options_.customer_id) {
    return GoogleError(400, "INVALID_ARGUMENT", "badRequest", "Bad Request");
  }
  int size = PageSize(q, 100, 500);
  absl::string_view page = q["pageToken"];
  if (!page.empty() && !absl::ConsumePrefix(&page, "DU")) {
    return GoogleError(400, "INVALID_ARGUMENT", "invalid", "Invalid pageToken");
  }
  auto it = page.empty() ? mailboxes_.begin() : mailboxes_.upper_bound(std::string(page));
  json users = json::array();
  std::string last;
  for (int n = 0; it != mailboxes_.end() && n < size; ++it, ++n) {
    users.push_back({{"kind", "admin#directory#user"},
                     {"primaryEmail", it->first},
                     {"suspended", it->second.suspended},
                     {"name", {{"fullName", it->first.substr(0, it->first.find('@'))}}}});
    last = it->first;
  }
  json out = {{"kind", "admin#directory#users"}, {"users", users}};
  if (it != mailboxes_.end()) out["nextPageToken"] = absl::StrCat("DU", last);
  return JsonResponse(200, out);
}

FakeGmailServer::Mailbox *FakeGmailServer::FindLocked(absl::string_view mailbox) {
  std::string key = absl::AsciiStrToLower(mailbox);
  if (key == "me" && !options_.mailboxes.empty())
    key = absl::AsciiStrToLower(options_.mailboxes[0]);
  auto it = mailboxes_.find(key);
  return it == mailboxes_.end() ? nullptr : &it->second;
}

int64_t FakeGmailServer::NextHistoryIdLocked(Mailbox *box) {
  // Increasing but not contiguous, as Gmail's are.
  box->history_id += 1 + (box->history_id % 3);
  return box->history_id;
}

absl::StatusOr<std::string> FakeGmailServer::AddMessage(absl::string_view mailbox,
                                                        FakeMessage message) {
  absl::MutexLock lock(&mu_);
  Mailbox *box = FindLocked(mailbox);
  if (box == nullptr) return absl::NotFoundError(absl::StrCat("no mailbox ", mailbox));
  if (message.id.empty()) message.id = absl::StrCat(absl::Hex(next_id_++));
  if (box->messages.count(message.id)) {
    return absl::InvalidArgumentError(absl::StrCat("duplicate message id ", message.id));
  }
  if (message.thread_id.empty()) message.thread_id = message.id;
  if (!message.internal_date) message.internal_date = clock_->Now();
  int64_t h = NextHistoryIdLocked(box);
  box->history.push_back({h, "messagesAdded", message.id, message.thread_id, message.label_ids});
  std::string id = message.id;
  box->messages[id] = Message{std::move(message), h};
  return id;
}

absl::Status FakeGmailServer::DeleteMessage(absl::string_view mailbox, absl::string_view id) {
  absl::MutexLock lock(&mu_);
  Mailbox *box = FindLocked(mailbox);
  if (box == nullptr) return absl::NotFoundError(absl::StrCat("no mailbox ", mailbox));
  auto it = box->messages.find(std::string(id));
  if (it == box->messages.end()) return absl::NotFoundError(absl::StrCat("no message ", id));
  int64_t h = NextHistoryIdLocked(box);
  box->history.push_back({h, "messagesDeleted", it->first, it->second.m.thread_id, {}});
  box->messages.erase(it);
  return absl::OkStatus();
}

absl::Status FakeGmailServer::ModifyLabels(absl::string_view mailbox, absl::string_view id,
                                           const std::vector<std::string> &add,
                                           const std::vector<std::string> &remove) {
  absl::MutexLock lock(&mu_);
  Mailbox *box = FindLocked(mailbox);
  if (box == nullptr) return absl::NotFoundError(absl::StrCat("no mailbox ", mailbox));
  auto it = box->messages.find(std::string(id));
  if (it == box->messages.end()) return absl::NotFoundError(absl::StrCat("no message ", id));
  FakeMessage &m = it->second.m;
  std::vector<std::string> added, removed;
  for (const std::string &l : add) {
    if (!HasLabel(m, l)) {
      m.label_ids.push_back(l);
      added.push_back(l);
    }
  }
  for (const std::string &l : remove) {
    auto pos = std::find(m.label_ids.begin(), m.label_ids.end(), l);
    if (pos != m.label_ids.end()) {
      m.label_ids.erase(pos);
      removed.push_back(l);
    }
  }
  if (!added.empty()) {
    int64_t h = NextHistoryIdLocked(box);
    box->history.push_back({h, "labelsAdded", m.id, m.thread_id, added});
    it->second.history_id = h;
  }
  if (!removed.empty()) {
    int64_t h = NextHistoryIdLocked(box);
    box->history.push_back({h, "labelsRemoved", m.id, m.thread_id, removed});
    it->second.history_id = h;
  }
  return absl::OkStatus();
}

absl::Status FakeGmailServer::ExpireHistory(absl::string_view mailbox) {
  absl::MutexLock lock(&mu_);
  Mailbox *box = FindLocked(mailbox);
  if (box == nullptr) return absl::NotFoundError(absl::StrCat("no mailbox ", mailbox));
  box->expired_below = NextHistoryIdLocked(box);  // the current id stays valid
  return absl::OkStatus();
}

void FakeGmailServer::InjectFault(absl::string_view path_prefix, GmailFault fault, int times) {
  absl::MutexLock lock(&mu_);
  faults_.Inject(path_prefix, fault, times);
}

void FakeGmailServer::ClearFaults() {
  absl::MutexLock lock(&mu_);
  faults_.Clear();
}

void FakeGmailServer::AcceptToken(std::string token) {
  absl::MutexLock lock(&mu_);
  tokens_.Accept(std::move(token));
}

void FakeGmailServer::ExpireToken(absl::string_view token) {
  absl::MutexLock lock(&mu_);
  tokens_.Expire(token);
}

void FakeGmailServer::BindToken(std::string token, std::string mailbox) {
  absl::MutexLock lock(&mu_);
  tokens_.Accept(token);
  token_mailbox_[std::move(token)] = absl::AsciiStrToLower(mailbox);
}

int FakeGmailServer::RequestCount(absl::string_view prefix) const {
  int n = 0;
  for (const FakeHttpRequest &r : http_->requests()) {
    if (absl::StartsWith(r.path, prefix)) ++n;
  }
  return n;
}

int64_t FakeGmailServer::HistoryId(absl::string_view mailbox) const {
  absl::MutexLock lock(&mu_);
  auto it = mailboxes_.find(absl::AsciiStrToLower(mailbox));
  return it == mailboxes_.end() ? 0 : it->second.history_id;
}

FakeHttpResponse FakeGmailServer::Serve(const FakeHttpRequest &request) {
  absl::MutexLock lock(&mu_);
  std::optional<GmailFault> fault = faults_.Take(request.path);
  if (fault) {
    std::optional<FakeHttpResponse> error = testing::GoogleFaultResponse(*fault, *clock_);
    if (error) return *std::move(error);  // otherwise applied by ServeLocked
  }
  FakeHttpResponse r = ServeLocked(request, fault);
  if (fault == GmailFault::kDisconnect) r.close_mid_body = true;
  return r;
}

FakeHttpResponse FakeGmailServer::ServeLocked(const FakeHttpRequest &request,
                                              std::optional<GmailFault> fault) {
  std::optional<std::string> token = tokens_.Authorize(request);
  if (!token) {
    return GoogleError(401, "UNAUTHENTICATED", "authError", "Invalid Credentials");
  }
  if (request.method != "GET") {
    return GoogleError(405, "INVALID_ARGUMENT", "methodNotAllowed", "Method not allowed");
  }
  absl::string_view path = request.path;
  if (path == "/admin/directory/v1/users") return ServeDirectoryLocked(request, *token);
  if (!absl::ConsumePrefix(&path, kPrefix)) return GoogleError(404, "NOT_FOUND", "notFound", "");
  std::vector<std::string> parts = absl::StrSplit(path, '/');
  std::string user = UrlDecode(parts[0]);
  Mailbox *box = FindLocked(user);
  if (box == nullptr) {
    return GoogleError(400, "FAILED_PRECONDITION", "failedPrecondition",
                       "Mail service not enabled");
  }
  std::string address =
      user == "me" ? absl::AsciiStrToLower(options_.mailboxes[0]) : absl::AsciiStrToLower(user);
  if (box->suspended) {
    return GoogleError(400, "FAILED_PRECONDITION", "failedPrecondition",
                       "Mail service not enabled");
  }
  auto bound = token_mailbox_.find(*token);
  if (bound != token_mailbox_.end() && bound->second != address) {
    return GoogleError(403, "PERMISSION_DENIED", "forbidden",
                       absl::StrCat("Delegation denied for ", bound->second));
  }
  std::map<std::string, std::string> q = ParseQuery(request.query);

  if (parts.size() == 2 && parts[1] == "profile") {
    return JsonResponse(200, {{"emailAddress", address},
                              {"messagesTotal", box->messages.size()},
                              {"threadsTotal", box->messages.size()},
                              {"historyId", absl::StrCat(box->history_id)}});
  }
  if (parts.size() == 2 && parts[1] == "labels") {
    std::set<std::string> labels = {"INBOX", "SENT",   "DRAFT",   "SPAM",
                                    "TRASH", "UNREAD", "STARRED", "IMPORTANT"};
    for (const auto &[id, m] : box->messages)
      labels.insert(m.m.label_ids.begin(), m.m.label_ids.end());
    json list = json::array();
    for (const std::string &l : labels) {
      bool system = l == absl::AsciiStrToUpper(l);
      list.push_back({{"id", l}, {"name", l}, {"type", system ? "system" : "user"}});
    }
    return JsonResponse(200, {{"labels", list}});
  }
  if (parts.size() == 2 && parts[1] == "messages") {
    bool spam_trash = q["includeSpamTrash"] == "true";
    int size = PageSize(q, 100, 500);
    absl::string_view token = q["pageToken"];
    if (!token.empty() && !absl::ConsumePrefix(&token, "ML")) {
      return GoogleError(400, "INVALID_ARGUMENT", "invalid", "Invalid pageToken");
    }
    std::string after(token);
    json out = {{"resultSizeEstimate", box->messages.size()}};
    json list = json::array();
    if (fault == GmailFault::kEmptyPage) {
      out["messages"] = list;
      out["nextPageToken"] = q["pageToken"].empty() ? "ML" : q["pageToken"];
      return JsonResponse(200, out);
    }
    auto it = after.empty() ? box->messages.begin() : box->messages.upper_bound(after);
    std::string last;
    int n = 0;
    for (; it != box->messages.end() && n < size; ++it) {
      const FakeMessage &m = it->second.m;
      if (!spam_trash && (HasLabel(m, "SPAM") || HasLabel(m, "TRASH"))) continue;
      json e = {{"id", m.id}, {"threadId", m.thread_id}};
      list.push_back(e);
      if (fault == GmailFault::kDuplicate) list.push_back(e);
      last = m.id;
      ++n;
    }
    out["messages"] = list;
    if (it != box->messages.end()) out["nextPageToken"] = absl::StrCat("ML", last);
    return JsonResponse(200, out);
  }
  if (parts.size() == 3 && parts[1] == "messages") {
    auto it = box->messages.find(parts[2]);
    if (it == box->messages.end()) {
      return GoogleError(404, "NOT_FOUND", "notFound", "Requested entity was not found.");
    }
    const FakeMessage &m = it->second.m;
    std::string format = q.count("format") ? q["format"] : "full";
    json j = {{"id", m.id},
              {"threadId", m.thread_id},
              {"labelIds", m.label_ids},
              {"snippet", m.raw.substr(0, 40)},
              {"historyId", absl::StrCat(it->second.history_id)},
              {"internalDate", absl::StrCat(absl::ToUnixMillis(*m.internal_date))},
              {"sizeEstimate", m.raw.size()}};
    if (format == "raw") {
      j["raw"] = absl::WebSafeBase64Escape(m.raw);  // unpadded, as Gmail sends it
    } else if (format != "minimal") {
      j["payload"] = {{"partId", ""}, {"mimeType", "message/rfc822"}, {"headers", Headers(m.raw)}};
    }
    return JsonResponse(200, j);
  }
  if (parts.size() == 2 && parts[1] == "history") {
    int64_t start = 0;
    if (!q.count("startHistoryId") || !absl::SimpleAtoi(q["startHistoryId"], &start)) {
      return GoogleError(400, "INVALID_ARGUMENT", "invalidArgument",
                         "Missing or invalid startHistoryId");
    }
    if (start < box->expired_below) {
      return GoogleError(404, "NOT_FOUND", "notFound", "Requested entity was not found.");
    }
    size_t pos = 0;
    if (!q["pageToken"].empty()) {
      absl::string_view t = q["pageToken"];
      if (!absl::ConsumePrefix(&t, "HP") || !absl::SimpleAtoi(t, &pos)) {
        return GoogleError(400, "INVALID_ARGUMENT", "invalid", "Invalid pageToken");
      }
    } else {
      while (pos < box->history.size() && box->history[pos].id <= start) ++pos;
    }
    json out = {{"historyId", absl::StrCat(box->history_id)}};
    json list = json::array();
    if (fault == GmailFault::kEmptyPage) {
      out["history"] = list;
      out["nextPageToken"] = absl::StrCat("HP", pos);
      return JsonResponse(200, out);
    }
    int size = PageSize(q, 100, 500);
    int n = 0;
    for (; pos < box->history.size() && n < size; ++pos, ++n) {
      const Record &r = box->history[pos];
      json msg = {{"id", r.message_id}, {"threadId", r.thread_id}};
      json rec = {{"id", absl::StrCat(r.id)}, {"messages", json::array({msg})}};
      if (r.type == "messagesAdded") {
        json added = msg;
        added["labelIds"] = r.labels;
        rec["messagesAdded"] = json::array({{{"message", added}}});
      } else if (r.type == "messagesDeleted") {
        rec["messagesDeleted"] = json::array({{{"message", msg}}});
      } else {
        rec[r.type] = json::array({{{"message", msg}, {"labelIds", r.labels}}});
      }
      list.push_back(rec);
      if (fault == GmailFault::kDuplicate) list.push_back(rec);
    }
    out["history"] = list;
    if (pos < box->history.size()) out["nextPageToken"] = absl::StrCat("HP", pos);
    return JsonResponse(200, out);
  }
  return GoogleError(404, "NOT_FOUND", "notFound", "Not Found");
}

}  // namespace tessera::connectors::gmail
