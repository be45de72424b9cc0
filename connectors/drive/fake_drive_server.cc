#include "connectors/drive/fake_drive_server.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status.h"
#include "connectors/testing/fake_api.h"
#include "nlohmann/json.hpp"

namespace tessera::connectors::drive {
namespace {

using json = nlohmann::json;
using testing::GoogleError;
using testing::JsonResponse;
using testing::ParseQuery;
constexpr absl::string_view kPrefix = "/drive/v3";

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

FakeHttpResponse NotFound(absl::string_view id) {
  return GoogleError(404, "NOT_FOUND", "notFound", absl::StrCat("File not found: ", id, "."));
}

bool IsGoogleNative(absl::string_view mime) {
  return absl::StartsWith(mime, "application/vnd.google-apps.");
}

std::string DomainOf(absl::string_view email) {
  size_t at = email.find('@');
  return at == absl::string_view::npos ? "" : std::string(email.substr(at + 1));
}

int PageSize(const std::map<std::string, std::string> &q, int def, int max) {
  int n = def;
  auto it = q.find("pageSize");
  if (it != q.end() && (!absl::SimpleAtoi(it->second, &n) || n < 1)) n = def;
  return std::min(n, max);
}

}  // namespace

absl::StatusOr<std::unique_ptr<FakeDriveServer>> FakeDriveServer::Start(Options options) {
  ASSIGN_OR_RETURN(std::unique_ptr<FakeHttpServer> http, FakeHttpServer::Start());
  std::unique_ptr<FakeDriveServer> server(new FakeDriveServer(std::move(options), std::move(http)));
  FakeDriveServer *self = server.get();
  server->http_->Handle("*", "*", [self](const FakeHttpRequest &r) { return self->Serve(r); });
  return server;
}

FakeDriveServer::FakeDriveServer(Options options, std::unique_ptr<FakeHttpServer> http)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : RealClock()),
      http_(std::move(http)) {}

FakeDriveServer::~FakeDriveServer() { http_->Stop(); }

std::string FakeDriveServer::base_url() const { return absl::StrCat(http_->url(), kPrefix); }

// --- Visibility and permissions ----------------------------------------------

bool FakeDriveServer::MatchesUserLocked(const FakePermission &p, bool listing) const {
  if (p.type == "user") return absl::EqualsIgnoreCase(p.email, options_.user_email);
  if (p.type == "group") {
    for (const std::string &g : options_.user_groups) {
      if (absl::EqualsIgnoreCase(g, p.email)) return true;
    }
    return false;
  }
  // Link-only sharing never makes a file show up in the user's listings.
  if (listing && !p.allow_file_discovery) return false;
  if (p.type == "domain") return absl::EqualsIgnoreCase(p.domain, DomainOf(options_.user_email));
  return false;  // "anyone": public files are not in the user's corpus
}

bool FakeDriveServer::VisibleLocked(const File &file) const {
  for (const FakePermission &p : EffectivePermissionsLocked(file)) {
    if (MatchesUserLocked(p, /*listing=*/true)) return true;
  }
  return false;
}

std::vector<FakePermission> FakeDriveServer::EffectivePermissionsLocked(const File &file) const {
  std::vector<FakePermission> out;
  if (!file.f.drive_id.empty()) {
    auto it = drives_.find(file.f.drive_id);
    if (it != drives_.end()) out = it->second.members;
  } else {
    FakePermission owner{absl::StrCat("perm-owner-", file.f.owner), "user", "owner", file.f.owner};
    out.push_back(owner);
  }
  out.insert(out.end(), file.f.permissions.begin(), file.f.permissions.end());
  return out;
}

absl::Time FakeDriveServer::TouchTimeLocked() {
  return touch_time_.has_value() ? *touch_time_ : clock_->Now();
}

void FakeDriveServer::LogChangeLocked(const std::string &id, bool was_visible) {
  auto it = files_.find(id);
  bool visible = it != files_.end() && VisibleLocked(it->second);
  if (was_visible || visible) changes_.push_back({id, clock_->Now()});
}

template <typename F>
absl::Status FakeDriveServer::MutateLocked(absl::string_view id, F mutate) {
  auto it = files_.find(std::string(id));
  if (it == files_.end()) return absl::NotFoundError(absl::StrCat("no file ", id));
  bool was_visible = VisibleLocked(it->second);
  bool touch = mutate(it->second.f);
  if (touch) {
    it->second.f.modified_time = TouchTimeLocked();
    ++it->second.version;
  }
  LogChangeLocked(std::string(id), was_visible);
  return absl::OkStatus();
}

// --- Mutations ---------------------------------------------------------------

absl::StatusOr<std::string> FakeDriveServer::CreateFile(FakeFile file) {
  absl::MutexLock lock(&mu_);
  if (file.id.empty()) file.id = absl::StrCat("1f", next_id_++, "xD");
  if (files_.count(file.id)) return absl::InvalidArgumentError("duplicate file id " + file.id);
  if (file.owner.empty() && file.drive_id.empty()) file.owner = options_.user_email;
  for (FakePermission &p : file.permissions) {
    if (p.id.empty()) p.id = absl::StrCat("perm", next_id_++);
  }
  absl::Time now = TouchTimeLocked();
  if (!file.created_time) file.created_time = now;
  if (!file.modified_time) file.modified_time = now;
  std::string id = file.id;
  files_[id] = File{std::move(file), 1};
  LogChangeLocked(id, false);
  return id;
}

absl::Status FakeDriveServer::EditFile(absl::string_view id, std::string content) {
  absl::MutexLock lock(&mu_);
  return MutateLocked(id, [&](FakeFile &f) {
    f.content = std::move(content);
    return true;
  });
}

absl::Status FakeDriveServer::RenameFile(absl::string_view id, std::string name) {
  absl::MutexLock lock(&mu_);
  return MutateLocked(id, [&](FakeFile &f) {
    f.name = std::move(name);
    return true;
  });
}

absl::Status FakeDriveServer::MoveFile(absl::string_view id, std::vector<std::string> parents,
                                       std::string drive_id) {
  absl::MutexLock lock(&mu_);
  // A move does not change modifiedTime (RAGFlow #13939's trap).
  return MutateLocked(id, [&](FakeFile &f) {
    f.parents = std::move(parents);
    f.drive_id = std::move(drive_id);
    if (f.drive_id.empty() && f.owner.empty()) f.owner = options_.user_email;
    return false;
  });
}

absl::Status FakeDriveServer::TrashFile(absl::string_view id, bool trashed) {
  absl::MutexLock lock(&mu_);
  return MutateLocked(id, [&](FakeFile &f) {
    f.trashed = trashed;
    return false;
  });
}

absl::Status FakeDriveServer::DeleteFile(absl::string_view id) {
  absl::MutexLock lock(&mu_);
  auto it = files_.find(std::string(id));
  if (it == files_.end()) return absl::NotFoundError(absl::StrCat("no file ", id));
  bool was_visible = VisibleLocked(it->second);
  files_.erase(it);
  LogChangeLocked(std::string(id), was_visible);
  return absl::OkStatus();
}

absl::StatusOr<std::string> FakeDriveServer::Share(absl::string_view id,
                                                   FakePermission permission) {
  absl::MutexLock lock(&mu_);
  if (permission.id.empty()) permission.id = absl::StrCat("perm", next_id_++);
  std::string pid = permission.id;
  RETURN_IF_ERROR(MutateLocked(id, [&](FakeFile &f) {
    f.permissions.push_back(std::move(permission));
    return false;
  }));
  return pid;
}

absl::Status FakeDriveServer::Unshare(absl::string_view id, absl::string_view permission_id) {
  absl::MutexLock lock(&mu_);
  bool found = false;
  RETURN_IF_ERROR(MutateLocked(id, [&](FakeFile &f) {
    auto &ps = f.permissions;
    auto end = std::remove_if(ps.begin(), ps.end(),
                              [&](const FakePermission &p) { return p.id == permission_id; });
    found = end != ps.end();
    ps.erase(end, ps.end());
    return false;
  }));
  return found ? absl::OkStatus() : absl::NotFoundError("no such permission");
}

void FakeDriveServer::AddSharedDrive(FakeSharedDrive drive) {
  absl::MutexLock lock(&mu_);
  for (FakePermission &p : drive.members) {
    if (p.id.empty()) p.id = absl::StrCat("perm", next_id_++);
  }
  drives_[drive.id] = std::move(drive);
}

void FakeDriveServer::SetTouchTime(std::optional<absl::Time> t) {
  absl::MutexLock lock(&mu_);
  touch_time_ = t;
}

void FakeDriveServer::InjectFault(absl::string_view path_prefix, DriveFault fault, int times) {
  absl::MutexLock lock(&mu_);
  faults_.Inject(path_prefix, fault, times);
}

void FakeDriveServer::ExpirePageTokens(int http_status) {
  absl::MutexLock lock(&mu_);
  changes_.push_back({"", clock_->Now()});  // a no-op entry moves the start token on
  expired_below_ = static_cast<int64_t>(changes_.size()) + 1;
  expired_status_ = http_status;
}

void FakeDriveServer::AcceptToken(std::string token) {
  absl::MutexLock lock(&mu_);
  tokens_.Accept(std::move(token));
}

void FakeDriveServer::ExpireToken(absl::string_view token) {
  absl::MutexLock lock(&mu_);
  tokens_.Expire(token);
}

void FakeDriveServer::SetLatency(absl::Duration latency) {
  absl::MutexLock lock(&mu_);
  latency_ = latency;
}

int FakeDriveServer::RequestCount(absl::string_view prefix) const {
  int n = 0;
  for (const FakeHttpRequest &r : http_->requests()) {
    if (absl::StartsWith(r.path, prefix)) ++n;
  }
  return n;
}

// --- Serving -----------------------------------------------------------------

FakeHttpResponse FakeDriveServer::Serve(const FakeHttpRequest &request) {
  absl::MutexLock lock(&mu_);
  std::optional<DriveFault> fault = faults_.Take(request.path);
  if (fault) {
    std::optional<FakeHttpResponse> error = testing::GoogleFaultResponse(*fault, *clock_);
    if (error) return *std::move(error);  // otherwise applied by ServeLocked
  }
  FakeHttpResponse r = ServeLocked(request, fault);
  if (fault == DriveFault::kDisconnect) r.close_mid_body = true;
  r.delay_before_headers = latency_;  // waited on the connection thread, not under mu_
  return r;
}

FakeHttpResponse FakeDriveServer::ServeLocked(const FakeHttpRequest &request,
                                              std::optional<DriveFault> fault) {
  if (!tokens_.Authorize(request)) {
    return GoogleError(401, "UNAUTHENTICATED", "authError", "Invalid Credentials");
  }
  if (request.method != "GET") {
    return GoogleError(405, "INVALID_ARGUMENT", "methodNotAllowed", "Method not allowed");
  }
  absl::string_view path = request.path;
  if (!absl::ConsumePrefix(&path, kPrefix)) return GoogleError(404, "NOT_FOUND", "notFound", "");
  std::map<std::string, std::string> q = ParseQuery(request.query);

  auto file_json = [&](const File &file) {
    const FakeFile &f = file.f;
    json j = {{"kind", "drive#file"},
              {"id", f.id},
              {"name", f.name},
              {"mimeType", f.mime_type},
              {"parents", f.parents},
              {"trashed", f.trashed},
              {"explicitlyTrashed", f.trashed},
              {"createdTime", Rfc3339(*f.created_time)},
              {"modifiedTime", Rfc3339(*f.modified_time)},
              {"version", std::to_string(file.version)},
              {"webViewLink", absl::StrCat("https://drive.google.com/file/d/", f.id, "/view")}};
    if (!f.drive_id.empty()) j["driveId"] = f.drive_id;
    if (!f.owner.empty()) j["owners"] = json::array({{{"emailAddress", f.owner}}});
    if (!IsGoogleNative(f.mime_type)) j["size"] = std::to_string(f.content.size());
    if (f.mime_type == kMimeGoogleShortcut) {
      std::string target_mime;
      auto t = files_.find(f.shortcut_target_id);
      if (t != files_.end()) target_mime = t->second.f.mime_type;
      j["shortcutDetails"] = {{"targetId", f.shortcut_target_id}, {"targetMimeType", target_mime}};
    }
    std::vector<FakePermission> perms = EffectivePermissionsLocked(file);
    json ids = json::array();
    json list = json::array();
    for (const FakePermission &p : perms) {
      ids.push_back(p.id);
      json pj = {{"kind", "drive#permission"}, {"id", p.id}, {"type", p.type}, {"role", p.role}};
      if (!p.email.empty()) pj["emailAddress"] = p.email;
      if (!p.domain.empty()) pj["domain"] = p.domain;
      if (p.type == "domain" || p.type == "anyone")
        pj["allowFileDiscovery"] = p.allow_file_discovery;
      list.push_back(pj);
    }
    j["permissionIds"] = ids;
    if (f.drive_id.empty()) j["permissions"] = list;  // shared drives: permissions.list
    return j;
  };
  auto visible_file = [&](absl::string_view id) -> const File * {
    auto it = files_.find(std::string(id));
    if (it == files_.end() || !VisibleLocked(it->second)) return nullptr;
    return &it->second;
  };

  if (path == "/about") {
    return JsonResponse(200, {{"kind", "drive#about"},
                              {"user",
                               {{"emailAddress", options_.user_email},
                                {"displayName", options_.user_email},
                                {"permissionId", "me-perm"}}}});
  }
  if (path == "/changes/startPageToken") {
    return JsonResponse(200, {{"kind", "drive#startPageToken"},
                              {"startPageToken", absl::StrCat(changes_.size() + 1)}});
  }
  if (path == "/changes") {
    auto tok = q.find("pageToken");
    int64_t pos = 0;
    if (tok == q.end() || tok->second.empty()) {
      return GoogleError(400, "INVALID_ARGUMENT", "required", "Required parameter: pageToken");
    }
    if (!absl::SimpleAtoi(tok->second, &pos) || pos < 1 ||
        pos > static_cast<int64_t>(changes_.size()) + 1) {
      return GoogleError(400, "INVALID_ARGUMENT", "invalid", "Invalid Value (pageToken)");
    }
    if (pos < expired_below_) {
      if (expired_status_ == 410) {
        return GoogleError(410, "FAILED_PRECONDITION", "pageTokenExpired",
                           "The page token is no longer valid (pageToken).");
      }
      return GoogleError(400, "INVALID_ARGUMENT", "invalid", "Invalid Value (pageToken)");
    }
    bool include_removed = q.count("includeRemoved") == 0 || q["includeRemoved"] != "false";
    int size = PageSize(q, 100, 1000);
    json changes = json::array();
    int64_t end = static_cast<int64_t>(changes_.size());
    int64_t i = pos - 1;  // tokens are 1-based positions
    if (fault == DriveFault::kEmptyPage) {
      return JsonResponse(
          200,
          {{"kind", "drive#changeList"}, {"changes", changes}, {"nextPageToken", tok->second}});
    }
    int emitted = 0;
    for (; i < end && emitted < size; ++i) {
      const Change &c = changes_[i];
      if (c.file_id.empty()) continue;
      bool superseded = false;
      for (int64_t k = i + 1; k < end; ++k) {
        if (changes_[k].file_id == c.file_id) superseded = true;
      }
      if (superseded) continue;
      const File *file = visible_file(c.file_id);
      json cj = {{"kind", "drive#change"},
                 {"changeType", "file"},
                 {"time", Rfc3339(c.time)},
                 {"fileId", c.file_id},
                 {"removed", file == nullptr}};
      if (file == nullptr && !include_removed) continue;
      if (file != nullptr) {
        cj["file"] = file_json(*file);
        if (!file->f.drive_id.empty()) cj["driveId"] = file->f.drive_id;
      }
      changes.push_back(cj);
      if (fault == DriveFault::kDuplicate) changes.push_back(cj);
      ++emitted;
    }
    json out = {{"kind", "drive#changeList"}, {"changes", changes}};
    if (i < end) {
      out["nextPageToken"] = absl::StrCat(i + 1);
    } else {
      out["newStartPageToken"] = absl::StrCat(end + 1);
    }
    return JsonResponse(200, out);
  }
  if (path == "/drives") {
    json drives = json::array();
    for (const auto &[id, d] : drives_) {
      bool member = false;
      for (const FakePermission &p : d.members) member = member || MatchesUserLocked(p, true);
      if (member) drives.push_back({{"kind", "drive#drive"}, {"id", id}, {"name", d.name}});
    }
    return JsonResponse(200, {{"kind", "drive#driveList"}, {"drives", drives}});
  }
  if (path == "/files") {
    // q: terms joined by " and ".
    std::vector<std::function<bool(const FakeFile &)>> preds;
    std::string query = q.count("q") ? q["q"] : "";
    for (absl::string_view raw : absl::StrSplit(query, " and ", absl::SkipWhitespace())) {
      std::string term(absl::StripAsciiWhitespace(raw));
      auto quoted = [](absl::string_view s) -> std::optional<std::string> {
        s = absl::StripAsciiWhitespace(s);
        if (s.size() < 2 || s.front() != '\'' || s.back() != '\'') return std::nullopt;
        return std::string(s.substr(1, s.size() - 2));
      };
      std::string me = options_.user_email;
      if (term == "trashed = false" || term == "trashed=false") {
        preds.push_back([](const FakeFile &f) { return !f.trashed; });
      } else if (term == "trashed = true" || term == "trashed=true") {
        preds.push_back([](const FakeFile &f) { return f.trashed; });
      } else if (term == "'me' in owners") {
        preds.push_back([me](const FakeFile &f) { return f.owner == me; });
      } else if (term == "not 'me' in owners") {
        preds.push_back([me](const FakeFile &f) { return f.owner != me; });
      } else if (absl::EndsWith(term, " in parents") &&
                 quoted(absl::StripSuffix(term, " in parents"))) {
        std::string parent = *quoted(absl::StripSuffix(term, " in parents"));
        preds.push_back([parent](const FakeFile &f) {
          return std::find(f.parents.begin(), f.parents.end(), parent) != f.parents.end();
        });
      } else if (absl::StartsWith(term, "mimeType != ") && quoted(term.substr(12))) {
        std::string m = *quoted(term.substr(12));
        preds.push_back([m](const FakeFile &f) { return f.mime_type != m; });
      } else if (absl::StartsWith(term, "mimeType = ") && quoted(term.substr(11))) {
        std::string m = *quoted(term.substr(11));
        preds.push_back([m](const FakeFile &f) { return f.mime_type == m; });
      } else if (absl::StartsWith(term, "modifiedTime >= ") && quoted(term.substr(16))) {
        std::string t = *quoted(term.substr(16));
        preds.push_back([t](const FakeFile &f) { return Rfc3339(*f.modified_time) >= t; });
      } else if (absl::StartsWith(term, "modifiedTime > ") && quoted(term.substr(15))) {
        std::string t = *quoted(term.substr(15));
        preds.push_back([t](const FakeFile &f) { return Rfc3339(*f.modified_time) > t; });
      } else {
        return GoogleError(400, "INVALID_ARGUMENT", "invalid", "Invalid Value (q)");
      }
    }
    bool all_drives = q["includeItemsFromAllDrives"] == "true" || q["corpora"] == "allDrives" ||
                      q["corpora"] == "drive";
    std::string drive_filter = q.count("driveId") ? q["driveId"] : "";
    std::vector<const File *> matched;
    for (const auto &[id, file] : files_) {
      if (!VisibleLocked(file)) continue;
      if (!file.f.drive_id.empty() && !all_drives) continue;
      if (!drive_filter.empty() && file.f.drive_id != drive_filter) continue;
      bool ok = true;
      for (const auto &p : preds) ok = ok && p(file.f);
      if (ok) matched.push_back(&file);
    }
    int size = PageSize(q, 100, 1000);
    size_t offset = 0;
    if (q.count("pageToken") && !q["pageToken"].empty()) {
      absl::string_view t = q["pageToken"];
      if (!absl::ConsumePrefix(&t, "FL") || !absl::SimpleAtoi(t, &offset)) {
        return GoogleError(400, "INVALID_ARGUMENT", "invalid", "Invalid Value (pageToken)");
      }
    }
    json files = json::array();
    json out = {{"kind", "drive#fileList"}, {"incompleteSearch", false}};
    if (fault == DriveFault::kEmptyPage) {
      out["files"] = files;
      out["nextPageToken"] = absl::StrCat("FL", offset);
      return JsonResponse(200, out);
    }
    size_t i = offset;
    for (; i < matched.size() && files.size() < static_cast<size_t>(size); ++i) {
      files.push_back(file_json(*matched[i]));
    }
    out["files"] = files;
    if (i < matched.size()) out["nextPageToken"] = absl::StrCat("FL", i);
    return JsonResponse(200, out);
  }
  if (absl::ConsumePrefix(&path, "/files/")) {
    std::vector<std::string> parts = absl::StrSplit(path, '/');
    const File *file = visible_file(parts[0]);
    if (file == nullptr) return NotFound(parts[0]);
    const FakeFile &f = file->f;
    if (parts.size() == 1) {
      if (q["alt"] == "media") {
        if (IsGoogleNative(f.mime_type)) {
          return GoogleError(403, "PERMISSION_DENIED", "fileNotDownloadable",
                             "Only files with binary content can be downloaded. Use Export "
                             "with Docs Editors files.");
        }
        FakeHttpResponse r;
        r.headers.Add("Content-Type", f.mime_type);
        r.body = f.content;
        return r;
      }
      return JsonResponse(200, file_json(*file));
    }
    if (parts.size() == 2 && parts[1] == "export") {
      std::string want = q["mimeType"];
      bool ok = (f.mime_type == kMimeGoogleDoc && (want == "text/plain" || want == "text/html")) ||
                (f.mime_type == kMimeGoogleSheet && want == "text/csv") ||
                (f.mime_type == kMimeGoogleSlides && want == "text/plain");
      if (!IsGoogleNative(f.mime_type)) {
        return GoogleError(403, "PERMISSION_DENIED", "fileNotExportable",
                           "Export only supports Docs Editors files.");
      }
      if (!ok) {
        return GoogleError(400, "INVALID_ARGUMENT", "badRequest",
                           "The requested conversion is not supported.");
      }
      FakeHttpResponse r;
      r.headers.Add("Content-Type", want);
      r.body = f.content;
      return r;
    }
    if (parts.size() == 2 && parts[1] == "permissions") {
      json all = file_json(*file);
      std::vector<FakePermission> perms = EffectivePermissionsLocked(*file);
      int size = PageSize(q, 100, 100);
      size_t offset = 0;
      if (q.count("pageToken") && !q["pageToken"].empty()) {
        absl::string_view t = q["pageToken"];
        if (!absl::ConsumePrefix(&t, "PL") || !absl::SimpleAtoi(t, &offset)) {
          return GoogleError(400, "INVALID_ARGUMENT", "invalid", "Invalid Value (pageToken)");
        }
      }
      json list = json::array();
      size_t i = offset;
      for (; i < perms.size() && list.size() < static_cast<size_t>(size); ++i) {
        const FakePermission &p = perms[i];
        json pj = {{"kind", "drive#permission"}, {"id", p.id}, {"type", p.type}, {"role", p.role}};
        if (!p.email.empty()) pj["emailAddress"] = p.email;
        if (!p.domain.empty()) pj["domain"] = p.domain;
        if (p.type == "domain" || p.type == "anyone") {
          pj["allowFileDiscovery"] = p.allow_file_discovery;
        }
        if (!f.drive_id.empty()) {
          bool inherited = i < perms.size() - f.permissions.size();
          pj["permissionDetails"] = json::array(
              {{{"permissionType", "file"}, {"role", p.role}, {"inherited", inherited}}});
          if (inherited) pj["permissionDetails"][0]["inheritedFrom"] = f.drive_id;
        }
        list.push_back(pj);
      }
      json out = {{"kind", "drive#permissionList"}, {"permissions", list}};
      if (i < perms.size()) out["nextPageToken"] = absl::StrCat("PL", i);
      return JsonResponse(200, out);
    }
  }
  return GoogleError(404, "NOT_FOUND", "notFound", "Not Found");
}

}  // namespace tessera::connectors::drive
