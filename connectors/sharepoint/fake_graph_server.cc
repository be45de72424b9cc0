#include "connectors/sharepoint/fake_graph_server.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status.h"
#include "connectors/testing/fake_api.h"
#include "nlohmann/json.hpp"

namespace tessera::connectors::sharepoint {
namespace {

using json = nlohmann::json;
using testing::JsonResponse;
using testing::ParseQuery;
constexpr absl::string_view kPrefix = "/v1.0";

std::string Iso(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

FakeHttpResponse GraphError(int status, absl::string_view code, absl::string_view message,
                            absl::string_view inner = "") {
  json err = {{"code", std::string(code)}, {"message", std::string(message)}};
  if (!inner.empty()) err["innerError"] = {{"code", std::string(inner)}};
  return JsonResponse(status, {{"error", err}});
}

// The error response that replaces the normal one for `fault`; nullopt for
// the faults DeltaLocked / ServeLocked apply to the normal response.
std::optional<FakeHttpResponse> GraphFaultResponse(GraphFault fault, Clock &clock) {
  switch (fault) {
    case GraphFault::k429RetryAfterSeconds:
    case GraphFault::k429RetryAfterDate: {
      FakeHttpResponse r = GraphError(429, "activityLimitReached", "The request has been throttled",
                                      "throttledRequest");
      testing::AddRetryAfter(fault == GraphFault::k429RetryAfterSeconds
                                 ? testing::RetryAfterForm::kSeconds
                                 : testing::RetryAfterForm::kHttpDate,
                             testing::kFaultRetryAfter, clock, r);
      return r;
    }
    case GraphFault::k503:
      return GraphError(503, "serviceNotAvailable", "Service unavailable");
    case GraphFault::k500:
      return GraphError(500, "generalException", "An unspecified error has occurred.");
    case GraphFault::k401:
      return GraphError(401, "InvalidAuthenticationToken", "Access token has expired.");
    case GraphFault::kDisconnect:
    case GraphFault::kEmptyPage:
    case GraphFault::kDuplicate:
    case GraphFault::kRepeatPage:
      return std::nullopt;
  }
  return std::nullopt;
}

json Identity(const FakeIdentity &who) {
  if (who.kind == "siteGroup") {
    return {{"siteGroup",
             {{"id", absl::StrCat(std::hash<std::string>()(who.display_name) % 1000)},
              {"displayName", who.display_name},
              {"loginName", who.display_name}}}};
  }
  json id = {{"id", absl::StrCat("aad-", who.email)},
             {"displayName", who.display_name.empty() ? who.email : who.display_name}};
  if (!who.email.empty()) id["email"] = who.email;
  json out = {{who.kind == "group" ? "group" : "user", id}};
  if (who.kind == "user") {
    out["siteUser"] = {{"id", "11"},
                       {"displayName", id["displayName"]},
                       {"loginName", absl::StrCat("i:0#.f|membership|", who.email)}};
  }
  return out;
}

json PermissionJson(const FakeGraphPermission &p) {
  json j = {{"id", p.id}, {"roles", p.roles}};
  if (p.granted_to) j["grantedToV2"] = Identity(*p.granted_to);
  if (!p.link_scope.empty()) {
    j["link"] = {{"type", "view"},
                 {"scope", p.link_scope},
                 {"webUrl", absl::StrCat("https://contoso.sharepoint.com/:w:/s/x/", p.id)}};
    json ids = json::array();
    for (const FakeIdentity &who : p.link_recipients) ids.push_back(Identity(who));
    j["grantedToIdentitiesV2"] = ids;
    j["shareId"] = absl::StrCat("s!", p.id);
  }
  if (p.expiration) j["expirationDateTime"] = Iso(*p.expiration);
  return j;
}

int Top(const std::map<std::string, std::string> &q, int max) {
  int n = max;
  auto it = q.find("$top");
  if (it != q.end() && (!absl::SimpleAtoi(it->second, &n) || n < 1)) n = max;
  return std::min(n, max);
}

}  // namespace

absl::StatusOr<std::unique_ptr<FakeGraphServer>> FakeGraphServer::Start(Options options) {
  ASSIGN_OR_RETURN(std::unique_ptr<FakeHttpServer> http, FakeHttpServer::Start());
  std::unique_ptr<FakeGraphServer> server(new FakeGraphServer(std::move(options), std::move(http)));
  FakeGraphServer *self = server.get();
  server->http_->Handle("*", "*", [self](const FakeHttpRequest &r) { return self->Serve(r); });
  return server;
}

FakeGraphServer::FakeGraphServer(Options options, std::unique_ptr<FakeHttpServer> http)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : RealClock()),
      http_(std::move(http)) {}

FakeGraphServer::~FakeGraphServer() { http_->Stop(); }

std::string FakeGraphServer::base_url() const { return absl::StrCat(http_->url(), kPrefix); }

// --- Mutations -----------------------------------------------------------------

void FakeGraphServer::AddSite(FakeSite site) {
  absl::MutexLock lock(&mu_);
  std::string id = site.id;
  sites_[id] = std::move(site);
}

absl::Status FakeGraphServer::AddLibrary(FakeLibrary library) {
  absl::MutexLock lock(&mu_);
  if (!sites_.count(library.site_id)) return absl::InvalidArgumentError("unknown site");
  if (drives_.count(library.id)) return absl::InvalidArgumentError("duplicate drive id");
  Drive d;
  d.lib = library;
  d.root_id = absl::StrCat("01ROOT", next_id_++);
  Item root;
  root.f.id = d.root_id;
  root.f.name = "root";
  root.f.folder = true;
  root.f.created_time = root.f.modified_time = clock_->Now();
  d.items[d.root_id] = root;
  drives_[library.id] = std::move(d);
  return absl::OkStatus();
}

absl::StatusOr<std::string> FakeGraphServer::CreateItem(absl::string_view drive_id,
                                                        FakeDriveItem item) {
  absl::MutexLock lock(&mu_);
  auto dit = drives_.find(std::string(drive_id));
  if (dit == drives_.end()) return absl::NotFoundError("unknown drive");
  Drive &d = dit->second;
  if (item.id.empty()) item.id = absl::StrCat("01ITEM", next_id_++);
  if (d.items.count(item.id)) return absl::InvalidArgumentError("duplicate item id " + item.id);
  if (item.parent_id.empty()) item.parent_id = d.root_id;
  auto parent = d.items.find(item.parent_id);
  if (parent == d.items.end()) return absl::NotFoundError("unknown parent " + item.parent_id);
  if (!parent->second.f.folder) return absl::InvalidArgumentError("parent is a file");
  for (FakeGraphPermission &p : item.permissions) {
    if (p.id.empty()) p.id = absl::StrCat("perm", next_id_++);
  }
  absl::Time now = clock_->Now();
  if (!item.created_time) item.created_time = now;
  if (!item.modified_time) item.modified_time = now;
  std::string id = item.id;
  Item it;
  it.f = std::move(item);
  it.seq = next_id_++;
  d.items[id] = std::move(it);
  d.tombstones.erase(id);
  d.log.push_back(id);
  return id;
}

template <typename F>
absl::Status FakeGraphServer::MutateLocked(absl::string_view drive_id, absl::string_view id,
                                           bool touch, F mutate) {
  auto dit = drives_.find(std::string(drive_id));
  if (dit == drives_.end()) return absl::NotFoundError("unknown drive");
  Drive &d = dit->second;
  auto it = d.items.find(std::string(id));
  if (it == d.items.end() || it->first == d.root_id) {
    return absl::NotFoundError(absl::StrCat("no item ", id));
  }
  RETURN_IF_ERROR(mutate(d, it->second.f));
  ++it->second.version;
  if (touch) it->second.f.modified_time = clock_->Now();
  d.log.push_back(std::string(id));
  return absl::OkStatus();
}

absl::Status FakeGraphServer::EditItem(absl::string_view drive_id, absl::string_view id,
                                       std::string content) {
  absl::MutexLock lock(&mu_);
  return MutateLocked(drive_id, id, true, [&](Drive &, FakeDriveItem &f) {
    if (f.folder) return absl::InvalidArgumentError("a folder has no content");
    f.content = std::move(content);
    return absl::OkStatus();
  });
}

absl::Status FakeGraphServer::RenameItem(absl::string_view drive_id, absl::string_view id,
                                         std::string name) {
  absl::MutexLock lock(&mu_);
  return MutateLocked(drive_id, id, true, [&](Drive &, FakeDriveItem &f) {
    f.name = std::move(name);
    return absl::OkStatus();
  });
}

absl::Status FakeGraphServer::MoveItem(absl::string_view drive_id, absl::string_view id,
                                       std::string new_parent_id) {
  absl::MutexLock lock(&mu_);
  return MutateLocked(drive_id, id, false, [&](Drive &d, FakeDriveItem &f) {
    if (new_parent_id.empty()) new_parent_id = d.root_id;
    auto p = d.items.find(new_parent_id);
    if (p == d.items.end()) return absl::NotFoundError("unknown parent " + new_parent_id);
    if (!p->second.f.folder) return absl::InvalidArgumentError("parent is a file");
    for (std::string up = new_parent_id; !up.empty();) {
      if (up == f.id) return absl::InvalidArgumentError("cannot move a folder below itself");
      auto u = d.items.find(up);
      up = u == d.items.end() ? "" : u->second.f.parent_id;
    }
    f.parent_id = new_parent_id;
    return absl::OkStatus();
  });
}

absl::Status FakeGraphServer::DeleteItem(absl::string_view drive_id, absl::string_view id) {
  absl::MutexLock lock(&mu_);
  auto dit = drives_.find(std::string(drive_id));
  if (dit == drives_.end()) return absl::NotFoundError("unknown drive");
  Drive &d = dit->second;
  auto it = d.items.find(std::string(id));
  if (it == d.items.end() || it->first == d.root_id) {
    return absl::NotFoundError(absl::StrCat("no item ", id));
  }
  // The subtree goes silently; only the item itself is reported.
  std::vector<std::string> doomed = {std::string(id)};
  for (size_t i = 0; i < doomed.size(); ++i) {
    for (const auto &[cid, c] : d.items) {
      if (c.f.parent_id == doomed[i]) doomed.push_back(cid);
    }
  }
  for (const std::string &gone : doomed) {
    d.tombstones[gone] = d.items[gone].f.parent_id;
    d.items.erase(gone);
  }
  d.log.push_back(std::string(id));
  return absl::OkStatus();
}

absl::Status FakeGraphServer::SetPermissions(absl::string_view drive_id, absl::string_view id,
                                             std::vector<FakeGraphPermission> permissions) {
  absl::MutexLock lock(&mu_);
  for (FakeGraphPermission &p : permissions) {
    if (p.id.empty()) p.id = absl::StrCat("perm", next_id_++);
  }
  return MutateLocked(drive_id, id, false, [&](Drive &, FakeDriveItem &f) {
    f.permissions = std::move(permissions);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::string> FakeGraphServer::AddPermission(absl::string_view drive_id,
                                                           absl::string_view id,
                                                           FakeGraphPermission permission) {
  absl::MutexLock lock(&mu_);
  if (permission.id.empty()) permission.id = absl::StrCat("perm", next_id_++);
  std::string pid = permission.id;
  RETURN_IF_ERROR(MutateLocked(drive_id, id, false, [&](Drive &, FakeDriveItem &f) {
    f.permissions.push_back(std::move(permission));
    return absl::OkStatus();
  }));
  return pid;
}

absl::Status FakeGraphServer::RemovePermission(absl::string_view drive_id, absl::string_view id,
                                               absl::string_view permission_id) {
  absl::MutexLock lock(&mu_);
  return MutateLocked(drive_id, id, false, [&](Drive &, FakeDriveItem &f) {
    auto &ps = f.permissions;
    auto end = std::remove_if(ps.begin(), ps.end(),
                              [&](const FakeGraphPermission &p) { return p.id == permission_id; });
    if (end == ps.end()) return absl::NotFoundError("no such permission");
    ps.erase(end, ps.end());
    return absl::OkStatus();
  });
}

void FakeGraphServer::ExpireDeltaTokens(absl::string_view drive_id) {
  absl::MutexLock lock(&mu_);
  for (auto &[id, d] : drives_) {
    if (drive_id.empty() || id == drive_id) ++d.epoch;
  }
}

std::string FakeGraphServer::WebUrl(absl::string_view drive_id, absl::string_view id) const {
  absl::MutexLock lock(&mu_);
  auto dit = drives_.find(std::string(drive_id));
  if (dit == drives_.end() || !dit->second.items.count(std::string(id))) return "";
  return WebUrlLocked(dit->second, std::string(id));
}

void FakeGraphServer::InjectFault(absl::string_view path_prefix, GraphFault fault, int times) {
  absl::MutexLock lock(&mu_);
  faults_.Inject(path_prefix, fault, times);
}

void FakeGraphServer::AcceptToken(std::string token) {
  absl::MutexLock lock(&mu_);
  tokens_.Accept(std::move(token));
}

void FakeGraphServer::ExpireToken(absl::string_view token) {
  absl::MutexLock lock(&mu_);
  tokens_.Expire(token);
}

int FakeGraphServer::RequestCount(absl::string_view prefix) const {
  int n = 0;
  for (const FakeHttpRequest &r : http_->requests()) {
    if (absl::StartsWith(r.path, prefix)) ++n;
  }
  return n;
}

// --- Rendering -----------------------------------------------------------------

std::string FakeGraphServer::PathLocked(const Drive &d, const std::string &parent_id) const {
  std::vector<std::string> names;
  for (std::string up = parent_id; !up.empty() && up != d.root_id;) {
    auto it = d.items.find(up);
    if (it == d.items.end()) break;
    names.push_back(it->second.f.name);
    up = it->second.f.parent_id;
  }
  std::string path;
  for (auto it = names.rbegin(); it != names.rend(); ++it) absl::StrAppend(&path, "/", *it);
  return path;
}

std::string FakeGraphServer::DriveUrlLocked(const Drive &d) const {
  auto site = sites_.find(d.lib.site_id);
  std::string base = site == sites_.end() ? "https://contoso.sharepoint.com" : site->second.web_url;
  return absl::StrCat(base, "/", absl::StrReplaceAll(d.lib.name, {{" ", "%20"}}));
}

std::string FakeGraphServer::WebUrlLocked(const Drive &d, const std::string &id) const {
  auto it = d.items.find(id);
  if (it == d.items.end()) return "";
  if (id == d.root_id) return DriveUrlLocked(d);
  std::string path = absl::StrCat(PathLocked(d, it->second.f.parent_id), "/", it->second.f.name);
  return absl::StrCat(DriveUrlLocked(d), absl::StrReplaceAll(path, {{" ", "%20"}}));
}

absl::StatusOr<std::string> FakeGraphServer::CreatePage(absl::string_view site_id,
                                                        FakeSitePage page) {
  absl::MutexLock lock(&mu_);
  if (!sites_.count(std::string(site_id))) return absl::NotFoundError("unknown site");
  auto &pages = pages_[std::string(site_id)];
  if (page.id.empty()) page.id = absl::StrCat("0000page-", next_id_++);
  if (pages.count(page.id)) return absl::InvalidArgumentError("duplicate page id");
  if (page.name.empty()) page.name = absl::StrCat(page.id, ".aspx");
  page.version = 1;
  if (!page.created_time) page.created_time = clock_->Now();
  if (!page.modified_time) page.modified_time = *page.created_time;
  std::string id = page.id;
  pages[id] = std::move(page);
  return id;
}

absl::Status FakeGraphServer::EditPage(absl::string_view site_id, absl::string_view id,
                                       std::string title, std::vector<std::string> web_parts) {
  absl::MutexLock lock(&mu_);
  auto s = pages_.find(std::string(site_id));
  if (s == pages_.end() || !s->second.count(std::string(id))) {
    return absl::NotFoundError("unknown page");
  }
  FakeSitePage &p = s->second[std::string(id)];
  if (!title.empty()) p.title = std::move(title);
  p.web_parts = std::move(web_parts);
  // lastModifiedDateTime has whole seconds: an edit within the same second
  // keeps it, and only the eTag tells (as with Graph).
  p.modified_time = clock_->Now();
  ++p.version;
  return absl::OkStatus();
}

absl::Status FakeGraphServer::DeletePage(absl::string_view site_id, absl::string_view id) {
  absl::MutexLock lock(&mu_);
  auto s = pages_.find(std::string(site_id));
  if (s == pages_.end() || s->second.erase(std::string(id)) == 0) {
    return absl::NotFoundError("unknown page");
  }
  return absl::OkStatus();
}

absl::Status FakeGraphServer::SetRootPermissions(absl::string_view drive_id,
                                                 std::vector<FakeGraphPermission> permissions) {
  absl::MutexLock lock(&mu_);
  auto it = drives_.find(std::string(drive_id));
  if (it == drives_.end()) return absl::NotFoundError("unknown drive");
  for (FakeGraphPermission &p : permissions) {
    if (p.id.empty()) p.id = absl::StrCat("perm", next_id_++);
  }
  it->second.items.at(it->second.root_id).f.permissions = std::move(permissions);
  return absl::OkStatus();
}

json FakeGraphServer::ItemJsonLocked(const Drive &d, const Item &item) const {
  const FakeDriveItem &f = item.f;
  json j = {{"id", f.id},
            {"name", f.name},
            {"eTag", absl::StrCat("\"{", f.id, "},", item.version, "\"")},
            {"createdDateTime", Iso(*f.created_time)},
            {"lastModifiedDateTime", Iso(*f.modified_time)},
            {"webUrl", WebUrlLocked(d, f.id)},
            {"size", f.content.size()}};
  if (f.id == d.root_id) {
    j["root"] = json::object();
    j["parentReference"] = {
        {"driveType", "documentLibrary"}, {"driveId", d.lib.id}, {"siteId", d.lib.site_id}};
  } else {
    std::string folder_path = PathLocked(d, f.parent_id);
    j["parentReference"] = {{"driveType", "documentLibrary"},
                            {"driveId", d.lib.id},
                            {"id", f.parent_id},
                            {"path", absl::StrCat("/drives/", d.lib.id, "/root:", folder_path)},
                            {"siteId", d.lib.site_id}};
  }
  if (f.folder) {
    int children = 0;
    for (const auto &[cid, c] : d.items) children += c.f.parent_id == f.id ? 1 : 0;
    j["folder"] = {{"childCount", children}};
  } else {
    j["cTag"] = absl::StrCat("\"c:{", f.id, "},", item.version, "\"");
    j["file"] = {{"mimeType", f.mime_type}, {"hashes", {{"quickXorHash", "AAAA"}}}};
    j["@microsoft.graph.downloadUrl"] =
        absl::StrCat(http_->url(), "/download/", d.lib.id, "/", f.id, "?tempauth=v", item.version);
  }
  return j;
}

// --- Serving -------------------------------------------------------------------

FakeHttpResponse FakeGraphServer::Serve(const FakeHttpRequest &request) {
  absl::MutexLock lock(&mu_);
  std::optional<GraphFault> fault = faults_.Take(request.path);
  if (fault) {
    std::optional<FakeHttpResponse> error = GraphFaultResponse(*fault, *clock_);
    if (error) return *std::move(error);
  }
  FakeHttpResponse r = ServeLocked(request, fault);
  if (fault == GraphFault::kDisconnect) r.close_mid_body = true;
  return r;
}

FakeHttpResponse FakeGraphServer::DeltaLocked(Drive &d, const std::map<std::string, std::string> &q,
                                              std::optional<GraphFault> fault) {
  int top = Top(q, options_.max_page_size);
  std::string base = absl::StrCat(base_url(), "/drives/", d.lib.id, "/root/delta");
  auto link = [&](const std::string &token) {
    return absl::StrCat(base, "?token=", token, "&$top=", top);
  };
  auto gone = [&]() {
    FakeHttpResponse r = GraphError(410, "resyncRequired",
                                    "Resync required. Replace any local items with the server's "
                                    "version (including deletes) if you're sure that the service "
                                    "was up to date with your local changes when you last synced.",
                                    "resyncChangesApplyDifferences");
    r.headers.Add("Location", absl::StrCat(base, "?$top=", top));
    return r;
  };
  int64_t end = static_cast<int64_t>(d.log.size());
  std::string token = q.count("token") ? q.at("token") : "";
  if (token == "latest") {
    return JsonResponse(200, {{"value", json::array()},
                              {"@odata.deltaLink", link(absl::StrCat("D", d.epoch, ".", end))}});
  }
  json value = json::array();
  json out;
  auto push = [&](json j) {
    if (fault == GraphFault::kDuplicate) value.push_back(j);
    value.push_back(std::move(j));
  };
  std::string requested;  // the token that serves this page again
  if (token.empty() || token[0] == 'L') {
    // Full enumeration: L<epoch>.<start log position>.<last seq emitted>.
    int64_t epoch = d.epoch, start = end, last = -1;
    if (!token.empty()) {
      std::vector<std::string> parts = absl::StrSplit(token.substr(1), '.');
      if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &epoch) ||
          !absl::SimpleAtoi(parts[1], &start) || !absl::SimpleAtoi(parts[2], &last) ||
          start > end) {
        return GraphError(400, "invalidRequest", "Invalid token");
      }
      if (epoch < d.epoch) return gone();
    }
    requested = absl::StrCat("L", epoch, ".", start, ".", last);
    if (fault == GraphFault::kEmptyPage) {
      return JsonResponse(200, {{"value", value}, {"@odata.nextLink", link(requested)}});
    }
    std::vector<const Item *> order;
    for (const auto &[id, it] : d.items) {
      if (it.seq > last) order.push_back(&it);
    }
    std::sort(order.begin(), order.end(),
              [](const Item *a, const Item *b) { return a->seq < b->seq; });
    size_t n = std::min(order.size(), static_cast<size_t>(top));
    for (size_t i = 0; i < n; ++i) push(ItemJsonLocked(d, *order[i]));
    if (n < order.size()) {
      out["@odata.nextLink"] = link(absl::StrCat("L", epoch, ".", start, ".", order[n - 1]->seq));
    } else {
      out["@odata.deltaLink"] = link(absl::StrCat("D", epoch, ".", start));
    }
  } else if (token[0] == 'D') {
    int64_t epoch = 0, pos = 0;
    std::vector<std::string> parts = absl::StrSplit(token.substr(1), '.');
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &epoch) ||
        !absl::SimpleAtoi(parts[1], &pos) || pos < 0 || pos > end) {
      return GraphError(400, "invalidRequest", "Invalid token");
    }
    if (epoch < d.epoch) return gone();
    requested = token;
    if (fault == GraphFault::kEmptyPage) {
      return JsonResponse(200, {{"value", value}, {"@odata.nextLink", link(requested)}});
    }
    int64_t i = pos;
    int emitted = 0;
    for (; i < end && emitted < top; ++i) {
      const std::string &id = d.log[i];
      bool superseded = false;
      for (int64_t k = i + 1; k < end && !superseded; ++k) superseded = d.log[k] == id;
      if (superseded) continue;
      auto it = d.items.find(id);
      if (it != d.items.end()) {
        push(ItemJsonLocked(d, it->second));
      } else {
        auto tomb = d.tombstones.find(id);
        json del = {{"id", id}, {"deleted", {{"state", "deleted"}}}};
        del["parentReference"] = {{"driveType", "documentLibrary"},
                                  {"driveId", d.lib.id},
                                  {"id", tomb == d.tombstones.end() ? d.root_id : tomb->second},
                                  {"siteId", d.lib.site_id}};
        push(del);
      }
      ++emitted;
    }
    if (i < end) {
      out["@odata.nextLink"] = link(absl::StrCat("D", epoch, ".", i));
    } else {
      out["@odata.deltaLink"] = link(absl::StrCat("D", epoch, ".", end));
    }
  } else {
    return GraphError(400, "invalidRequest", "Invalid token");
  }
  if (fault == GraphFault::kRepeatPage) {
    out.erase("@odata.deltaLink");
    out["@odata.nextLink"] = link(requested);
  }
  out["value"] = value;
  return JsonResponse(200, out);
}

FakeHttpResponse FakeGraphServer::ServeLocked(const FakeHttpRequest &request,
                                              std::optional<GraphFault> fault) {
  if (request.method != "GET") {
    return GraphError(405, "BadRequest", "Method not allowed");
  }
  std::map<std::string, std::string> q = ParseQuery(request.query);
  absl::string_view path = request.path;

  // Pre-authenticated download URLs: no bearer wanted.
  if (absl::ConsumePrefix(&path, "/download/")) {
    if (request.headers.Contains("Authorization")) {
      return GraphError(400, "invalidRequest",
                        "Pre-authenticated download URLs must not carry an Authorization header");
    }
    std::vector<std::string> parts = absl::StrSplit(path, '/');
    if (parts.size() != 2) return GraphError(404, "itemNotFound", "Not found");
    auto dit = drives_.find(parts[0]);
    if (dit == drives_.end()) return GraphError(404, "itemNotFound", "Not found");
    auto it = dit->second.items.find(parts[1]);
    if (it == dit->second.items.end() || it->second.f.folder) {
      return GraphError(404, "itemNotFound", "The resource could not be found.");
    }
    FakeHttpResponse r;
    r.headers.Add("Content-Type", it->second.f.mime_type);
    r.body = it->second.f.content;
    return r;
  }

  if (!tokens_.Authorize(request)) {
    return GraphError(401, "InvalidAuthenticationToken",
                      "Access token has expired or is not yet "
                      "valid.");
  }
  if (!absl::ConsumePrefix(&path, kPrefix)) return GraphError(404, "BadRequest", "Unknown path");

  auto site_json = [&](const FakeSite &s) {
    return json{
        {"id", s.id}, {"name", s.name}, {"displayName", s.display_name}, {"webUrl", s.web_url}};
  };
  auto drive_json = [&](const Drive &d) {
    return json{{"id", d.lib.id},
                {"name", d.lib.name},
                {"driveType", "documentLibrary"},
                {"webUrl", DriveUrlLocked(d)}};
  };

  if (path == "/sites") {
    std::string search = q.count("search") ? q["search"] : "";
    if (search.empty()) return GraphError(400, "invalidRequest", "search is required");
    int top = Top(q, options_.max_page_size);
    size_t skip = 0;
    if (q.count("$skiptoken") && !absl::SimpleAtoi(q["$skiptoken"], &skip)) {
      return GraphError(400, "invalidRequest", "Invalid skiptoken");
    }
    std::vector<const FakeSite *> matched;
    for (const auto &[id, s] : sites_) {
      if (search == "*" ||
          absl::StrContains(absl::AsciiStrToLower(s.name), absl::AsciiStrToLower(search)))
        matched.push_back(&s);
    }
    json value = json::array();
    size_t i = skip;
    for (; i < matched.size() && value.size() < static_cast<size_t>(top); ++i) {
      value.push_back(site_json(*matched[i]));
    }
    json out = {{"value", value}};
    if (i < matched.size()) {
      out["@odata.nextLink"] =
          absl::StrCat(base_url(), "/sites?search=", search, "&$top=", top, "&$skiptoken=", i);
    }
    return JsonResponse(200, out);
  }
  if (absl::ConsumePrefix(&path, "/sites/")) {
    std::vector<std::string> parts = absl::StrSplit(path, '/');
    auto s = sites_.find(parts[0]);
    if (s == sites_.end())
      return GraphError(404, "itemNotFound", "Requested site could not be found");
    if (parts.size() == 1) return JsonResponse(200, site_json(s->second));
    if (parts.size() == 2 && parts[1] == "drive") {
      // The default library: "Documents" if there is one, else the first.
      const Drive *best = nullptr;
      for (const auto &[id, d] : drives_) {
        if (d.lib.site_id != s->first) continue;
        if (best == nullptr || (d.lib.name == "Documents" && best->lib.name != "Documents")) {
          best = &d;
        }
      }
      if (best == nullptr) return GraphError(404, "itemNotFound", "The site has no drive");
      return JsonResponse(200, drive_json(*best));
    }
    if (parts.size() >= 2 && parts[1] == "pages") {
      const std::map<std::string, FakeSitePage> &pages = pages_[s->first];
      bool expand = absl::StrContains(q["$expand"], "canvasLayout");
      auto page_json = [&](const FakeSitePage &p) {
        json j = {{"@odata.type", "#microsoft.graph.sitePage"},
                  {"id", p.id},
                  {"name", p.name},
                  {"title", p.title},
                  {"pageLayout", "article"},
                  {"webUrl", absl::StrCat("SitePages/", p.name)},
                  {"createdDateTime", Iso(*p.created_time)},
                  {"lastModifiedDateTime", Iso(*p.modified_time)},
                  {"eTag", absl::StrCat("\"{", p.id, "},", p.version, "\"")}};
        if (expand) {
          json columns = json::array();
          int n = 0;
          for (const std::string &html : p.web_parts) {
            columns.push_back(
                {{"id", absl::StrCat(++n)},
                 {"width", 12},
                 {"webparts", json::array({{{"@odata.type", "#microsoft.graph.textWebPart"},
                                            {"id", absl::StrCat("wp-", n)},
                                            {"innerHtml", html}}})}});
          }
          j["canvasLayout"] = {
              {"horizontalSections",
               json::array({{{"layout", "oneColumn"}, {"id", "1"}, {"columns", columns}}})}};
        }
        return j;
      };
      if (parts.size() == 2) {
        int top = Top(q, options_.max_page_size);
        std::string after = q.count("$skiptoken") ? q["$skiptoken"] : "";
        auto it = after.empty() ? pages.begin() : pages.upper_bound(after);
        json value = json::array();
        std::string last;
        for (; it != pages.end() && value.size() < static_cast<size_t>(top); ++it) {
          value.push_back(page_json(it->second));
          last = it->first;
        }
        json out = {{"value", value}};
        if (it != pages.end()) {
          out["@odata.nextLink"] =
              absl::StrCat(base_url(), "/sites/", s->first, "/pages?$top=", top,
                           expand ? "&$expand=canvasLayout" : "", "&$skiptoken=", last);
        }
        return JsonResponse(200, out);
      }
      if (parts.size() == 3 || (parts.size() == 4 && parts[3] == "microsoft.graph.sitePage")) {
        auto it = pages.find(parts[2]);
        if (it == pages.end()) return GraphError(404, "itemNotFound", "The page does not exist");
        return JsonResponse(200, page_json(it->second));
      }
      return GraphError(400, "invalidRequest", "Unsupported pages segment");
    }
    if (parts.size() == 2 && parts[1] == "drives") {
      json value = json::array();
      for (const auto &[id, d] : drives_) {
        if (d.lib.site_id == s->first) value.push_back(drive_json(d));
      }
      return JsonResponse(200, {{"value", value}});
    }
    return GraphError(400, "invalidRequest", "Unsupported site segment");
  }
  if (absl::ConsumePrefix(&path, "/drives/")) {
    std::vector<std::string> parts = absl::StrSplit(path, '/');
    auto dit = drives_.find(parts[0]);
    if (dit == drives_.end())
      return GraphError(404, "itemNotFound", "The drive could not be found");
    Drive &d = dit->second;
    if (parts.size() == 1) return JsonResponse(200, drive_json(d));
    if (parts.size() == 2 && parts[1] == "root") {
      return JsonResponse(200, ItemJsonLocked(d, d.items.at(d.root_id)));
    }
    if (parts.size() == 3 && parts[1] == "root" && parts[2] == "delta") {
      return DeltaLocked(d, q, fault);
    }
    if (parts.size() >= 3 && parts[1] == "items") {
      auto it = d.items.find(parts[2]);
      if (it == d.items.end()) {
        return GraphError(404, "itemNotFound", "The resource could not be found.");
      }
      const Item &item = it->second;
      if (parts.size() == 3) return JsonResponse(200, ItemJsonLocked(d, item));
      if (parts.size() == 4 && parts[3] == "content") {
        if (item.f.folder) return GraphError(404, "itemNotFound", "A folder has no content.");
        FakeHttpResponse r;
        r.status = 302;
        r.headers.Add("Location", absl::StrCat(http_->url(), "/download/", d.lib.id, "/", item.f.id,
                                               "?tempauth=v", item.version));
        return r;
      }
      if (parts.size() == 4 && parts[3] == "permissions") {
        json value = json::array();
        for (const FakeGraphPermission &p : item.f.permissions) value.push_back(PermissionJson(p));
        return JsonResponse(200, {{"value", value}});
      }
      if (parts.size() == 4 && parts[3] == "children") {
        int top = Top(q, options_.max_page_size);
        size_t skip = 0;
        if (q.count("$skiptoken") && !absl::SimpleAtoi(q["$skiptoken"], &skip)) {
          return GraphError(400, "invalidRequest", "Invalid skiptoken");
        }
        std::vector<const Item *> kids;
        for (const auto &[cid, c] : d.items) {
          if (c.f.parent_id == item.f.id) kids.push_back(&c);
        }
        json value = json::array();
        size_t i = skip;
        for (; i < kids.size() && value.size() < static_cast<size_t>(top); ++i) {
          value.push_back(ItemJsonLocked(d, *kids[i]));
        }
        json out = {{"value", value}};
        if (i < kids.size()) {
          out["@odata.nextLink"] =
              absl::StrCat(base_url(), "/drives/", d.lib.id, "/items/", item.f.id,
                           "/children?$top=", top, "&$skiptoken=", i);
        }
        return JsonResponse(200, out);
      }
    }
    return GraphError(400, "invalidRequest", "Unsupported drive segment");
  }
  return GraphError(404, "BadRequest", "Unknown path");
}

}  // namespace tessera::connectors::sharepoint
