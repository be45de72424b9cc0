// FakeDriveServer: a Google Drive API v3 stand-in for tests and demos.
//
// Serves, on a FakeHttpServer (127.0.0.1, ephemeral port), the subset of the
// Drive v3 contract in shared/reference/connectors-api.md §1.3 that Tessera's
// connector uses, as seen by one user:
//   GET /drive/v3/about
//   GET /drive/v3/changes/startPageToken
//   GET /drive/v3/changes          pageToken (required), pageSize,
//   includeRemoved GET /drive/v3/files            q (the subset below),
//   pageSize, pageToken,
//                                  corpora, includeItemsFromAllDrives
//   GET /drive/v3/files/{id}       metadata, or bytes with alt=media
//   GET /drive/v3/files/{id}/export?mimeType=   Google Docs/Slides as
//                                  text/plain, Sheets as text/csv
//   GET /drive/v3/files/{id}/permissions        paginated
//   GET /drive/v3/drives           shared drives the user is a member of
// `fields`, `supportsAllDrives`, `spaces` are accepted and ignored (full
// resources are returned). q supports terms joined by " and ": trashed =
// true|false, '<id>' in parents, mimeType = / != '<type>', 'me' in owners,
// not 'me' in owners, modifiedTime >= / > '<RFC 3339>'.
//
// Semantics that matter to a connector, as the real service has them:
//   * changes.list returns the latest state of each changed file (one entry
//     per file per page range), `removed:true` without `file` when the file
//     was deleted or the user lost access, `trashed:true` files as ordinary
//     entries; newStartPageToken only on the last page. Changes to files the
//     user never could see are not reported.
//   * Shared-drive files carry permissionIds but no inline permissions (fetch
//     them with permissions.list); My Drive files carry both.
//   * Page tokens are opaque; ExpirePageTokens() invalidates all issued ones
//     (410, or 400 "invalid pageToken", as chosen).
//   * Errors use Google's envelope {"error":{"code","message","status",
//     "errors":[{"domain","reason","message"}]}}.
//   * Every request needs "Authorization: Bearer <token>"; tokens can be
//     expired to produce 401 mid-sync.
//
// Fault injection (InjectFault) for the next N requests whose path starts
// with a prefix: 429 with Retry-After seconds or HTTP-date, 403
// userRateLimitExceeded / rateLimitExceeded, 500, 503 without Retry-After,
// 401, a connection closed mid-body, an empty page that still carries a
// nextPageToken, and duplicated change entries.
//
// Thread-safe: all state is under one mutex; handlers run on the server's
// connection threads.
#ifndef TESSERA_CONNECTORS_DRIVE_FAKE_DRIVE_SERVER_H_
#define TESSERA_CONNECTORS_DRIVE_FAKE_DRIVE_SERVER_H_

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

namespace tessera::connectors::drive {

inline constexpr absl::string_view kMimeGoogleDoc = "application/vnd.google-apps.document";
inline constexpr absl::string_view kMimeGoogleSheet = "application/vnd.google-apps.spreadsheet";
inline constexpr absl::string_view kMimeGoogleSlides = "application/vnd.google-apps.presentation";
inline constexpr absl::string_view kMimeGoogleFolder = "application/vnd.google-apps.folder";
inline constexpr absl::string_view kMimeGoogleShortcut = "application/vnd.google-apps.shortcut";

struct FakePermission {
  std::string id;    // generated when empty
  std::string type;  // user | group | domain | anyone
  std::string role = "reader";
  std::string email;   // user, group
  std::string domain;  // domain
  // For domain and anyone: false means "anyone with the link" (not listed).
  bool allow_file_discovery = true;
};

struct FakeFile {
  std::string id;  // generated when empty
  std::string name;
  std::string mime_type = "text/plain";
  std::vector<std::string> parents;
  std::string drive_id;  // a shared drive; empty for My Drive
  std::string owner;     // My Drive files; defaults to the server's user
  bool trashed = false;
  // Bytes of a binary file; for Google-native files the exported text (CSV
  // for Sheets).
  std::string content;
  std::vector<FakePermission> permissions;  // the file's own (not inherited)
  std::string shortcut_target_id;           // for shortcuts
  // Set by the server when absent.
  std::optional<absl::Time> created_time;
  std::optional<absl::Time> modified_time;
};

struct FakeSharedDrive {
  std::string id;
  std::string name;
  std::vector<FakePermission> members;  // inherited by every file in the drive
};

// The fault catalogue (connectors/testing/google_api_faults.h): 429 with
// Retry-After seconds or HTTP-date, 403 userRateLimitExceeded /
// rateLimitExceeded, 500, 503, 401, a disconnect, an empty page
// (changes/files list), duplicated entries (changes list).
using DriveFault = testing::GoogleFault;

class FakeDriveServer {
 public:
  struct Options {
    std::string user_email = "ann@x.com";
    std::vector<std::string> user_groups;  // group emails the user belongs to
    Clock *clock = nullptr;                // null: RealClock()
  };

  [[nodiscard]] static absl::StatusOr<std::unique_ptr<FakeDriveServer>> Start(Options options);
  ~FakeDriveServer();

  // "http://127.0.0.1:PORT/drive/v3".
  [[nodiscard]] std::string base_url() const;
  FakeHttpServer *http() { return http_.get(); }

  // --- Mutations (each recorded in the change log) ------------------------
  // Returns the file id. INVALID_ARGUMENT for a duplicate id.
  absl::StatusOr<std::string> CreateFile(FakeFile file);
  absl::Status EditFile(absl::string_view id, std::string content);
  absl::Status RenameFile(absl::string_view id, std::string name);
  // Replaces the parents (and the shared drive, which may be "").
  absl::Status MoveFile(absl::string_view id, std::vector<std::string> parents,
                        std::string drive_id);
  absl::Status TrashFile(absl::string_view id, bool trashed = true);
  absl::Status DeleteFile(absl::string_view id);
  // Returns the permission id.
  absl::StatusOr<std::string> Share(absl::string_view id, FakePermission permission);
  absl::Status Unshare(absl::string_view id, absl::string_view permission_id);
  void AddSharedDrive(FakeSharedDrive drive);
  // Sets the modifiedTime the next mutations stamp (default: the clock).
  void SetTouchTime(std::optional<absl::Time> t);

  // --- Faults -------------------------------------------------------------
  // Faults stack in injection order; the first one with requests left whose
  // prefix matches is used. Note "/drive/v3/changes" also matches
  // "/drive/v3/changes/startPageToken".
  void InjectFault(absl::string_view path_prefix, DriveFault fault, int times = 1);
  // Every page token issued so far becomes invalid; using one answers
  // `http_status` (410, or 400 with reason "invalid" on pageToken).
  void ExpirePageTokens(int http_status = 410);
  // With accepted tokens set, only those are valid; otherwise any bearer is.
  void AcceptToken(std::string token);
  void ExpireToken(absl::string_view token);

  // Every response waits this long before its headers (a slow network; lets
  // a test catch a sync mid-way). Default zero.
  void SetLatency(absl::Duration latency);

  // Requests received whose path starts with `prefix` (e.g.
  // "/drive/v3/changes").
  [[nodiscard]] int RequestCount(absl::string_view prefix) const;

 private:
  struct Change {
    std::string file_id;
    absl::Time time;
  };
  struct File {
    FakeFile f;
    int64_t version = 1;
  };

  FakeDriveServer(Options options, std::unique_ptr<FakeHttpServer> http);
  FakeHttpResponse Serve(const FakeHttpRequest &request);
  FakeHttpResponse ServeLocked(const FakeHttpRequest &request, std::optional<DriveFault> fault)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  bool VisibleLocked(const File &file) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  bool MatchesUserLocked(const FakePermission &p, bool listing) const;
  std::vector<FakePermission> EffectivePermissionsLocked(const File &file) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Applies `mutate` to file `id`, stamps it, and logs a change when the
  // file was or is visible.
  template <typename F>
  absl::Status MutateLocked(absl::string_view id, F mutate) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LogChangeLocked(const std::string &id, bool was_visible) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time TouchTimeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  Clock *const clock_;
  std::unique_ptr<FakeHttpServer> http_;

  mutable absl::Mutex mu_;
  std::map<std::string, File> files_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, FakeSharedDrive> drives_ ABSL_GUARDED_BY(mu_);
  std::vector<Change> changes_ ABSL_GUARDED_BY(mu_);
  testing::FaultInjector<DriveFault> faults_ ABSL_GUARDED_BY(mu_);
  // Change-log positions below this are expired page tokens.
  int64_t expired_below_ ABSL_GUARDED_BY(mu_) = 0;
  int expired_status_ ABSL_GUARDED_BY(mu_) = 410;
  testing::BearerTokens tokens_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Time> touch_time_ ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::Duration latency_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
};

}  // namespace tessera::connectors::drive

#endif  // TESSERA_CONNECTORS_DRIVE_FAKE_DRIVE_SERVER_H_
