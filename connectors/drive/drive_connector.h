// DriveConnector: Google Drive (API v3) as a Tessera Connector.
//
// Follows Drive's change feed, never modifiedTime polling (which misses files
// moved into scope with old timestamps):
//   * FullSync takes changes.getStartPageToken *first*, then lists every file
//     with files.list (all drives); its last page's checkpoint is that start
//     token, so nothing changed during the listing is missed.
//   * IncrementalSync follows changes.list from the checkpoint to the
//     newStartPageToken. `removed` entries, trashed files and files no longer
//     in scope (moved out, unshared from a scope) become deletes; files moved
//     into scope become upserts whatever their modifiedTime. A page token the
//     server no longer accepts (410, or 400 "invalid pageToken") starts a full
//     resync; its last page asks the runner to prune.
//   * Content: Google Docs and Slides are exported as text/plain, Sheets as
//     text/csv; other files are downloaded (alt=media) and parsed with
//     connectors/parse. Shortcuts are resolved to their target (content, ACL,
//     link) and indexed under the shortcut's id. Folders and other
//     Google-native types (forms, drawings) are not documents.
//   * ACLs: inline permissions, or permissions.list for shared-drive files;
//     mapped by MapPermissions (below).
//
// Scope: one scope, "drive", covering My Drive, shared-with-me and shared
// drives as configured, optionally narrowed to folders.
//
// Errors: a file that cannot be exported, downloaded or parsed (a final 4xx,
// an unsupported or corrupt format, too large) is reported as a
// DocumentFailure and the sync goes on. Errors that outlast the retry policy
// (throttling, 5xx, transport) and 401 after a refresh end the sync with the
// RetryingHttpClient's code; nothing of the current page is committed, so the
// next run replays it.
//
// Thread-compatible: one call at a time.
#ifndef TESSERA_CONNECTORS_DRIVE_DRIVE_CONNECTOR_H_
#define TESSERA_CONNECTORS_DRIVE_DRIVE_CONNECTOR_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "connectors/connector.h"
#include "connectors/http/retrying_client.h"

namespace tessera::connectors::drive {

// A Drive permission, as far as ACLs are concerned.
struct DrivePermission {
  std::string type;  // user | group | domain | anyone
  std::string email;
  std::string domain;
  bool allow_file_discovery = true;
  bool deleted = false;
  std::optional<absl::Time> expiration;
};

// Maps Drive permissions to principal strings, sorted and unique:
// user -> "user:<email>", group -> "group:<email>" (lowercased), domain ->
// "domain:<d>", anyone -> "anyone". Link-only sharing (allowFileDiscovery
// false on domain or anyone) grants nothing: it is not public, and the people
// who hold the link are unknown. Deleted and expired permissions grant nothing.
[[nodiscard]] std::vector<std::string> MapPermissions(const std::vector<DrivePermission> &perms,
                                                      absl::Time now);

class DriveConnector : public Connector {
 public:
  struct Options {
    std::string base_url = "https://www.googleapis.com/drive/v3";
    bool include_my_drive = true;
    bool include_shared_with_me = true;
    bool include_shared_drives = true;
    // When non-empty, only files below these folders (at any depth).
    std::vector<std::string> folder_ids;
    int page_size = 100;  // files.list / changes.list pageSize (1..1000)
    // Larger files are reported as failures, not downloaded.
    int64_t max_file_bytes = 64 << 20;
  };

  // `client` (which carries the TokenSource) and `clock` are not owned and
  // must outlive the connector. INVALID_ARGUMENT for bad options.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<DriveConnector>> Create(
      RetryingHttpClient *client, Clock *clock, Options options);

  std::string Source() const override { return "gdrive"; }
  absl::StatusOr<std::vector<std::string>> Scopes() override { return {{"drive"}}; }
  // GET /about: checks the credentials and learns the user's address.
  absl::Status ValidateConfig() override;
  absl::Status FullSync(absl::string_view scope, const PageCallback &on_page) override;
  absl::Status IncrementalSync(absl::string_view scope, absl::string_view checkpoint,
                               const PageCallback &on_page) override;
  absl::StatusOr<std::vector<SlimDocument>> SlimListing(absl::string_view scope) override;
  absl::StatusOr<ConnectorDocument> FetchDocument(absl::string_view id) override;

  ~DriveConnector() override;

 private:
  class Impl;
  explicit DriveConnector(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::connectors::drive

#endif  // TESSERA_CONNECTORS_DRIVE_DRIVE_CONNECTOR_H_
