#include "connectors/drive/drive_connector.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "connectors/framework/change_page.h"
#include "connectors/framework/rest_util.h"
#include "connectors/parse/document_parser.h"
#include "nlohmann/json.hpp"

namespace tessera::connectors::drive {
namespace {

using json = nlohmann::json;
using rest::Arr;
using rest::Bool;
using rest::ParseRfc3339;
using rest::Str;
using rest::StrList;
using rest::UrlEncode;

constexpr absl::string_view kFolder = "application/vnd.google-apps.folder";
constexpr absl::string_view kShortcut = "application/vnd.google-apps.shortcut";
constexpr absl::string_view kDoc = "application/vnd.google-apps.document";
constexpr absl::string_view kSheet = "application/vnd.google-apps.spreadsheet";
constexpr absl::string_view kSlides = "application/vnd.google-apps.presentation";
constexpr absl::string_view kFileFields =
    "id,name,mimeType,parents,driveId,trashed,createdTime,modifiedTime,size,"
    "webViewLink,"
    "owners(emailAddress),permissionIds,permissions(id,type,role,emailAddress,"
    "domain,"
    "allowFileDiscovery,deleted,expirationTime),shortcutDetails(targetId,"
    "targetMimeType)";

bool IsExpiredPageToken(const HttpResponse &r) {
  if (r.status_code == 410) return true;
  if (r.status_code != 400) return false;
  return absl::StrContains(r.body, "pageToken");
}

// What one file (or change) means for the index.
using Outcome = DocumentOutcome;

}  // namespace

std::vector<std::string> MapPermissions(const std::vector<DrivePermission> &perms, absl::Time now) {
  std::vector<std::string> acl;
  for (const DrivePermission &p : perms) {
    if (p.deleted || (p.expiration.has_value() && *p.expiration <= now)) continue;
    if (p.type == "user" && !p.email.empty()) {
      acl.push_back(absl::StrCat("user:", absl::AsciiStrToLower(p.email)));
    } else if (p.type == "group" && !p.email.empty()) {
      acl.push_back(absl::StrCat("group:", absl::AsciiStrToLower(p.email)));
    } else if (p.type == "domain" && !p.domain.empty() && p.allow_file_discovery) {
      acl.push_back(absl::StrCat("domain:", absl::AsciiStrToLower(p.domain)));
    } else if (p.type == "anyone" && p.allow_file_discovery) {
      acl.push_back("anyone");
    }
  }
  std::sort(acl.begin(), acl.end());
  acl.erase(std::unique(acl.begin(), acl.end()), acl.end());
  return acl;
}

class DriveConnector::Impl {
 public:
  Impl(RetryingHttpClient *client, Clock *clock, Options options)
      : client_(client), clock_(clock), options_(std::move(options)) {}

  absl::Status ValidateConfig() {
    ASSIGN_OR_RETURN(json about, GetJson("/about", {{"fields", "user(emailAddress)"}}));
    const json &user = about.contains("user") ? about["user"] : json::object();
    me_ = absl::AsciiStrToLower(Str(user, "emailAddress"));
    if (me_.empty()) return absl::InternalError("Drive /about returned no user email");
    return absl::OkStatus();
  }

  absl::Status FullSync(const PageCallback &on_page) {
    RETURN_IF_ERROR(EnsureMe());
    // Folders may have moved while the cursor was lost: scope is recomputed from fresh parents.
    parents_.clear();
    ASSIGN_OR_RETURN(json start,
                     GetJson("/changes/startPageToken", {{"supportsAllDrives", "true"}}));
    std::string token = Str(start, "startPageToken");
    if (token.empty()) return absl::InternalError("Drive returned no startPageToken");
    return ListFrom(token, "", on_page);
  }

  absl::Status IncrementalSync(absl::string_view checkpoint, const PageCallback &on_page) {
    RETURN_IF_ERROR(EnsureMe());
    json cp = json::parse(checkpoint, nullptr, /*allow_exceptions=*/false);
    std::string mode = cp.is_object() ? Str(cp, "mode") : "";
    if (mode == "list" && !Str(cp, "start").empty()) {
      // Restart an interrupted listing from its beginning (keeping the change-feed start token): list
      // page tokens are positions, and files removed while we were down would shift the rest past us.
      RETURN_IF_ERROR(ListFrom(Str(cp, "start"), "", on_page));
      return Changes(Str(cp, "start"), on_page);
    }
    if (mode == "changes" && !Str(cp, "token").empty()) return Changes(Str(cp, "token"), on_page);
    return absl::InvalidArgumentError(
        absl::StrCat("unreadable Drive checkpoint '", checkpoint.substr(0, 100), "'"));
  }

  absl::StatusOr<std::vector<SlimDocument>> SlimListing() {
    RETURN_IF_ERROR(EnsureMe());
    std::vector<SlimDocument> out;
    std::string page_token;
    for (int empty = 0;;) {
      ASSIGN_OR_RETURN(json list, ListFiles(page_token));
      for (const json &f : Arr(list, "files")) {
        std::string mime = Str(f, "mimeType");
        if (Bool(f, "trashed") || mime == kFolder) continue;
        ASSIGN_OR_RETURN(bool in_scope, InScope(f));
        if (!in_scope || !IsIndexable(mime, f)) continue;
        ASSIGN_OR_RETURN(std::vector<std::string> acl, Acl(f));
        out.push_back({Str(f, "id"), std::move(acl)});
      }
      std::string next = Str(list, "nextPageToken");
      if (next.empty()) break;
      RETURN_IF_ERROR(rest::CheckProgress("Drive", Arr(list, "files").empty(), &empty));
      page_token = next;
    }
    return out;
  }

  absl::StatusOr<ConnectorDocument> FetchDocument(absl::string_view id) {
    RETURN_IF_ERROR(EnsureMe());
    ASSIGN_OR_RETURN(std::optional<json> file, GetFile(id));
    if (!file) return absl::NotFoundError(absl::StrCat("Drive file ", id, " not found"));
    ASSIGN_OR_RETURN(Outcome o, Process(*file));
    return FetchedDocument(
        std::move(o), absl::NotFoundError(absl::StrCat("Drive file ", id,
                                                       " is not an indexable document in scope")));
  }

 private:
  using Params = std::vector<std::pair<std::string, std::string>>;

  std::string Url(absl::string_view path, const Params &params) const {
    std::string url = absl::StrCat(options_.base_url, path);
    char sep = '?';
    for (const auto &[k, v] : params) {
      absl::StrAppend(&url, std::string(1, sep), UrlEncode(k), "=", UrlEncode(v));
      sep = '&';
    }
    return url;
  }

  absl::StatusOr<HttpResponse> Get(absl::string_view path, const Params &params) {
    HttpRequest req;
    req.url = Url(path, params);
    return client_->Send(req);
  }

  absl::StatusOr<json> ParseJson(const HttpResponse &r, absl::string_view path) {
    json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) {
      return absl::UnavailableError(absl::StrCat("Drive ", path, " returned malformed JSON"));
    }
    return j;
  }

  absl::StatusOr<json> GetJson(absl::string_view path, const Params &params) {
    ASSIGN_OR_RETURN(HttpResponse r, Get(path, params));
    RETURN_IF_ERROR(CheckHttpStatus(r, "GET", Url(path, {})));
    return ParseJson(r, path);
  }

  // The file's metadata; nullopt when it is gone or not visible.
  absl::StatusOr<std::optional<json>> GetFile(absl::string_view id) {
    std::string path = absl::StrCat("/files/", UrlEncode(id));
    ASSIGN_OR_RETURN(HttpResponse r, Get(path, {{"supportsAllDrives", "true"},
                                                {"fields", std::string(kFileFields)}}));
    if (r.status_code == 404) return std::optional<json>();
    RETURN_IF_ERROR(CheckHttpStatus(r, "GET", Url(path, {})));
    ASSIGN_OR_RETURN(json j, ParseJson(r, path));
    return std::optional<json>(std::move(j));
  }

  absl::Status EnsureMe() {
    if (!me_.empty()) return absl::OkStatus();
    return ValidateConfig();
  }

  absl::StatusOr<json> ListFiles(const std::string &page_token) {
    Params params = {{"corpora", options_.include_shared_drives ? "allDrives" : "user"},
                     {"includeItemsFromAllDrives", "true"},
                     {"supportsAllDrives", "true"},
                     {"q", "trashed = false"},
                     {"pageSize", absl::StrCat(options_.page_size)},
                     {"fields", absl::StrCat("nextPageToken,files(", kFileFields, ")")}};
    if (!page_token.empty()) params.push_back({"pageToken", page_token});
    return GetJson("/files", params);
  }

  // Lists all files from `page_token` ("" = the beginning), emitting pages
  // whose checkpoints resume the listing; the last one resumes the change
  // feed at `start`.
  absl::Status ListFrom(const std::string &start, std::string page_token,
                        const PageCallback &on_page) {
    for (int empty = 0;;) {
      ASSIGN_OR_RETURN(json list, ListFiles(page_token));
      ChangePage page;
      std::vector<Outcome> outcomes;
      for (const json &f : Arr(list, "files")) {
        ASSIGN_OR_RETURN(Outcome o, Process(f));
        // Out of scope in a listing: never indexed by this listing, but it
        // may be from an earlier one (the scope changed): prune handles that.
        if (o.kind == Outcome::kDelete) o.kind = Outcome::kSkip;
        outcomes.push_back(std::move(o));
      }
      CollectLastPerId(std::move(outcomes), &page);
      std::string next = Str(list, "nextPageToken");
      if (next.empty()) {
        page.checkpoint = json({{"mode", "changes"}, {"token", start}}).dump();
        page.full_listing_done = true;
      } else {
        RETURN_IF_ERROR(rest::CheckProgress("Drive", Arr(list, "files").empty(), &empty));
        page.checkpoint = json({{"mode", "list"}, {"start", start}, {"page", next}}).dump();
      }
      RETURN_IF_ERROR(on_page(std::move(page)));
      if (next.empty()) return absl::OkStatus();
      page_token = next;
    }
  }

  absl::Status Changes(std::string token, const PageCallback &on_page) {
    for (int empty = 0;;) {
      Params params = {{"pageToken", token},
                       {"pageSize", absl::StrCat(options_.page_size)},
                       {"includeItemsFromAllDrives", "true"},
                       {"supportsAllDrives", "true"},
                       {"includeRemoved", "true"},
                       {"spaces", "drive"},
                       {"fields", absl::StrCat("nextPageToken,newStartPageToken,changes(changeType,"
                                               "removed,fileId,driveId,time,file(",
                                               kFileFields, "))")}};
      ASSIGN_OR_RETURN(HttpResponse r, Get("/changes", params));
      if (IsExpiredPageToken(r)) {
        // The cursor is gone: list everything again; the runner prunes after.
        return FullSync(on_page);
      }
      RETURN_IF_ERROR(CheckHttpStatus(r, "GET", Url("/changes", {})));
      ASSIGN_OR_RETURN(json list, ParseJson(r, "/changes"));
      std::vector<Outcome> outcomes;
      for (const json &c : Arr(list, "changes")) {
        if (Str(c, "changeType") == "drive") continue;
        std::string id = Str(c, "fileId");
        if (id.empty()) continue;
        if (Bool(c, "removed") || !c.contains("file") || !c["file"].is_object()) {
          Outcome o;
          o.kind = Outcome::kDelete;
          o.doc.id = id;
          outcomes.push_back(std::move(o));
          continue;
        }
        const json &f = c["file"];
        if (Str(f, "mimeType") == kFolder) parents_.erase(id);  // it may have moved
        ASSIGN_OR_RETURN(Outcome o, Process(f));
        outcomes.push_back(std::move(o));
        if (Str(f, "mimeType") == kFolder && !options_.folder_ids.empty()) {
          // A folder moved into scope brings its whole subtree along, without changes of its
          // own; one moved out of scope (or trashed) takes it away. Deletes of ids never indexed
          // are no-ops, so this does not need to know where the folder was before.
          bool in_scope = false;
          if (!Bool(f, "trashed")) {
            ASSIGN_OR_RETURN(in_scope, InScope(f));
          }
          RETURN_IF_ERROR(Descendants(id, /*as_deletes=*/!in_scope, &outcomes));
        }
      }
      ChangePage page;
      CollectLastPerId(std::move(outcomes), &page);
      std::string next = Str(list, "nextPageToken");
      std::string fresh = Str(list, "newStartPageToken");
      if (next.empty() && fresh.empty()) {
        return absl::UnavailableError(
            "Drive changes.list returned neither nextPageToken nor "
            "newStartPageToken");
      }
      if (!next.empty()) {
        RETURN_IF_ERROR(rest::CheckProgress("Drive", Arr(list, "changes").empty(), &empty));
      }
      page.checkpoint = json({{"mode", "changes"}, {"token", next.empty() ? fresh : next}}).dump();
      RETURN_IF_ERROR(on_page(std::move(page)));
      if (next.empty()) return absl::OkStatus();
      token = next;
    }
  }

  // The files below `folder`, as upserts (fetched and parsed) or, with as_deletes, as deletes.
  absl::Status Descendants(const std::string &folder, bool as_deletes, std::vector<Outcome> *out) {
    std::vector<std::string> queue = {folder};
    absl::flat_hash_set<std::string> seen = {folder};
    while (!queue.empty()) {
      std::string id = queue.back();
      queue.pop_back();
      std::string page_token;
      for (int empty = 0;;) {
        Params params = {{"corpora", "allDrives"},
                         {"includeItemsFromAllDrives", "true"},
                         {"supportsAllDrives", "true"},
                         {"q", absl::StrCat("'", id, "' in parents and trashed = false")},
                         {"pageSize", absl::StrCat(options_.page_size)}};
        if (!page_token.empty()) params.push_back({"pageToken", page_token});
        ASSIGN_OR_RETURN(json list, GetJson("/files", params));
        for (const json &f : Arr(list, "files")) {
          std::string child = Str(f, "id");
          if (Str(f, "mimeType") == kFolder) {
            if (seen.insert(child).second) queue.push_back(child);
            continue;
          }
          if (as_deletes) {
            Outcome o;
            o.kind = Outcome::kDelete;
            o.doc.id = child;
            out->push_back(std::move(o));
            continue;
          }
          ASSIGN_OR_RETURN(Outcome o, Process(f));
          out->push_back(std::move(o));
        }
        page_token = Str(list, "nextPageToken");
        if (page_token.empty()) break;
        RETURN_IF_ERROR(rest::CheckProgress("Drive", Arr(list, "files").empty(), &empty));
      }
    }
    return absl::OkStatus();
  }

  bool IsIndexable(absl::string_view mime, const json &f) const {
    if (mime == kShortcut) return true;
    if (absl::StartsWith(mime, "application/vnd.google-apps.")) {
      return mime == kDoc || mime == kSheet || mime == kSlides;
    }
    return true;
  }

  // The file's parents, from the cache or the API.
  absl::StatusOr<std::vector<std::string>> ParentsOf(const std::string &id) {
    auto it = parents_.find(id);
    if (it != parents_.end()) return it->second;
    ASSIGN_OR_RETURN(std::optional<json> f, GetFile(id));
    std::vector<std::string> parents = f ? StrList(*f, "parents") : std::vector<std::string>();
    parents_[id] = parents;
    return parents;
  }

  absl::StatusOr<bool> InScope(const json &f) {
    std::string drive_id = Str(f, "driveId");
    if (!drive_id.empty()) {
      if (!options_.include_shared_drives) return false;
    } else {
      bool mine = false;
      for (const json &o : Arr(f, "owners")) {
        mine = mine || absl::AsciiStrToLower(Str(o, "emailAddress")) == me_;
      }
      if (mine && !options_.include_my_drive) return false;
      if (!mine && !options_.include_shared_with_me) return false;
    }
    if (options_.folder_ids.empty()) return true;
    std::string id = Str(f, "id");
    if (Str(f, "mimeType") == kFolder) parents_[id] = StrList(f, "parents");
    std::vector<std::string> frontier = StrList(f, "parents");
    absl::flat_hash_set<std::string> seen = {id};
    if (std::count(options_.folder_ids.begin(), options_.folder_ids.end(), id)) return true;
    while (!frontier.empty()) {
      std::string p = frontier.back();
      frontier.pop_back();
      if (!seen.insert(p).second) continue;
      if (std::count(options_.folder_ids.begin(), options_.folder_ids.end(), p)) return true;
      ASSIGN_OR_RETURN(std::vector<std::string> up, ParentsOf(p));
      frontier.insert(frontier.end(), up.begin(), up.end());
    }
    return false;
  }

  absl::StatusOr<std::vector<std::string>> Acl(const json &f) {
    std::vector<DrivePermission> perms;
    auto add = [&](const json &p) {
      DrivePermission dp;
      dp.type = Str(p, "type");
      dp.email = Str(p, "emailAddress");
      dp.domain = Str(p, "domain");
      dp.allow_file_discovery = Bool(p, "allowFileDiscovery", true);
      dp.deleted = Bool(p, "deleted");
      dp.expiration = ParseRfc3339(Str(p, "expirationTime"));
      perms.push_back(std::move(dp));
    };
    if (f.contains("permissions") && f["permissions"].is_array()) {
      for (const json &p : f["permissions"]) add(p);
    } else {
      // Shared-drive items: inline permissions are not returned.
      std::string path = absl::StrCat("/files/", UrlEncode(Str(f, "id")), "/permissions");
      std::string page_token;
      for (int empty = 0;;) {
        Params params = {{"supportsAllDrives", "true"},
                         {"pageSize", "100"},
                         {"fields",
                          "nextPageToken,permissions(id,type,role,emailAddress,domain,"
                          "allowFileDiscovery,deleted,expirationTime)"}};
        if (!page_token.empty()) params.push_back({"pageToken", page_token});
        ASSIGN_OR_RETURN(json list, GetJson(path, params));
        for (const json &p : Arr(list, "permissions")) add(p);
        page_token = Str(list, "nextPageToken");
        if (page_token.empty()) break;
        RETURN_IF_ERROR(rest::CheckProgress("Drive", Arr(list, "permissions").empty(), &empty));
      }
    }
    return MapPermissions(perms, clock_->Now());
  }

  // Downloads or exports the file's content. A final non-2xx response is a
  // per-document failure (returned in `failure`), not an error.
  absl::StatusOr<std::string> Content(const json &f, std::string *parse_as, absl::Status *failure) {
    std::string id = Str(f, "id");
    std::string mime = Str(f, "mimeType");
    std::string path;
    Params params = {{"supportsAllDrives", "true"}};
    if (mime == kDoc || mime == kSlides || mime == kSheet) {
      *parse_as = mime == kSheet ? "text/csv" : "text/plain";
      path = absl::StrCat("/files/", UrlEncode(id), "/export");
      params.push_back({"mimeType", *parse_as});
      if (mime == kSheet) *parse_as = "text/plain";  // CSV is read as text
    } else {
      int64_t size = 0;
      if (absl::SimpleAtoi(Str(f, "size"), &size) && size > options_.max_file_bytes) {
        *failure = absl::ResourceExhaustedError(
            absl::StrCat("file is ", size, " bytes, over the limit of ", options_.max_file_bytes));
        return std::string();
      }
      *parse_as = mime.empty() || mime == "application/octet-stream" ? Str(f, "name") : mime;
      path = absl::StrCat("/files/", UrlEncode(id));
      params.push_back({"alt", "media"});
    }
    ASSIGN_OR_RETURN(HttpResponse r, Get(path, params));
    if (r.status_code / 100 != 2) {
      *failure = CheckHttpStatus(r, "GET", Url(path, {}));
      return std::string();
    }
    return std::move(r.body);
  }

  // Turns one file resource into what the index should do with it.
  absl::StatusOr<Outcome> Process(const json &f) {
    Outcome o;
    std::string id = Str(f, "id");
    std::string mime = Str(f, "mimeType");
    o.doc.id = id;
    if (id.empty()) {
      o.kind = Outcome::kSkip;
      return o;
    }
    if (Bool(f, "trashed")) {
      o.kind = Outcome::kDelete;
      return o;
    }
    if (mime == kFolder) {
      parents_[id] = StrList(f, "parents");
      o.kind = Outcome::kSkip;
      return o;
    }
    ASSIGN_OR_RETURN(bool in_scope, InScope(f));
    if (!in_scope || !IsIndexable(mime, f)) {
      o.kind = Outcome::kDelete;  // moved out of scope (or never a document)
      return o;
    }
    const json *source = &f;
    std::optional<json> target;
    if (mime == kShortcut) {
      std::string target_id;
      if (f.contains("shortcutDetails") && f["shortcutDetails"].is_object()) {
        target_id = Str(f["shortcutDetails"], "targetId");
      }
      if (!target_id.empty()) {
        ASSIGN_OR_RETURN(target, GetFile(target_id));
      }
      if (!target || Bool(*target, "trashed") || !IsIndexable(Str(*target, "mimeType"), *target) ||
          Str(*target, "mimeType") == kShortcut || Str(*target, "mimeType") == kFolder) {
        o.kind = Outcome::kDelete;  // dangling or not a document
        return o;
      }
      source = &*target;
    }
    o.failure.id = id;
    o.failure.title = Str(f, "name");
    std::string parse_as;
    absl::Status failure;
    ASSIGN_OR_RETURN(std::string bytes, Content(*source, &parse_as, &failure));
    if (!failure.ok()) {
      SetDownloadFailure(std::move(failure), &o);
      return o;
    }
    absl::StatusOr<parse::ParsedDocument> parsed = parse::ParseDocument(bytes, parse_as);
    if (!parsed.ok()) {
      o.kind = Outcome::kFailure;
      o.failure.status = parsed.status();
      return o;
    }
    ASSIGN_OR_RETURN(o.doc.acl, Acl(*source));
    ConnectorDocument &d = o.doc;
    d.title = Str(f, "name");
    d.uri = Str(*source, "webViewLink");
    d.mime_type = Str(*source, "mimeType");
    d.modified_time = ParseRfc3339(Str(*source, "modifiedTime")).value_or(absl::UnixEpoch());
    for (parse::ParsedSection &s : parsed->sections) {
      d.sections.push_back({std::move(s.heading), std::move(s.text), s.page});
    }
    std::string drive_id = Str(f, "driveId");
    if (!drive_id.empty()) d.metadata["drive_id"] = drive_id;
    std::vector<std::string> parents = StrList(f, "parents");
    if (!parents.empty()) d.metadata["parent_id"] = parents[0];
    for (const json &owner : Arr(*source, "owners")) {
      d.metadata["owner"] = Str(owner, "emailAddress");
      break;
    }
    if (target) d.metadata["shortcut_target_id"] = Str(*target, "id");
    o.kind = Outcome::kUpsert;
    return o;
  }

  RetryingHttpClient *const client_;
  Clock *const clock_;
  const Options options_;
  std::string me_;  // the user's address, lowercased
  absl::flat_hash_map<std::string, std::vector<std::string>> parents_;  // folder -> parents
};

absl::StatusOr<std::unique_ptr<DriveConnector>> DriveConnector::Create(RetryingHttpClient *client,
                                                                       Clock *clock,
                                                                       Options options) {
  if (options.page_size < 1 || options.page_size > 1000) {
    return absl::InvalidArgumentError("Drive page_size must be within 1..1000");
  }
  if (!options.include_my_drive && !options.include_shared_with_me &&
      !options.include_shared_drives) {
    return absl::InvalidArgumentError(
        "Drive connector includes nothing: enable My Drive, shared-with-me or "
        "shared drives");
  }
  if (!absl::StartsWith(options.base_url, "http://") &&
      !absl::StartsWith(options.base_url, "https://")) {
    return absl::InvalidArgumentError("Drive base_url must be an http(s) URL");
  }
  return std::unique_ptr<DriveConnector>(
      new DriveConnector(std::make_unique<Impl>(client, clock, std::move(options))));
}

DriveConnector::DriveConnector(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DriveConnector::~DriveConnector() = default;

absl::Status DriveConnector::ValidateConfig() { return impl_->ValidateConfig(); }

absl::Status DriveConnector::FullSync(absl::string_view scope, const PageCallback &on_page) {
  if (scope != "drive") return absl::InvalidArgumentError(absl::StrCat("unknown scope ", scope));
  return impl_->FullSync(on_page);
}

absl::Status DriveConnector::IncrementalSync(absl::string_view scope, absl::string_view checkpoint,
                                             const PageCallback &on_page) {
  if (scope != "drive") return absl::InvalidArgumentError(absl::StrCat("unknown scope ", scope));
  return impl_->IncrementalSync(checkpoint, on_page);
}

absl::StatusOr<std::vector<SlimDocument>> DriveConnector::SlimListing(absl::string_view scope) {
  if (scope != "drive") return absl::InvalidArgumentError(absl::StrCat("unknown scope ", scope));
  return impl_->SlimListing();
}

absl::StatusOr<ConnectorDocument> DriveConnector::FetchDocument(absl::string_view id) {
  return impl_->FetchDocument(id);
}

}  // namespace tessera::connectors::drive
