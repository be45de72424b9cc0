// FakeGraphServer: a Microsoft Graph v1.0 stand-in (SharePoint sites and
// document libraries) for connector tests.
//
// Serves, on a FakeHttpServer (127.0.0.1, ephemeral port), the subset of the
// Graph contract in shared/reference/connectors-api.md §1.4 that the
// SharePoint connector uses, as seen by an app-only (client-credentials)
// caller, which sees everything:
//   GET /v1.0/sites?search=*                   {"value":[site]} (+ nextLink)
//   GET /v1.0/sites/{site-id}                  site
//   GET /v1.0/sites/{site-id}/drives           {"value":[drive]}
//   GET /v1.0/drives/{drive-id}                drive
//   GET /v1.0/drives/{d}/root/delta            token (absent: full
//       enumeration), $top; pages carry @odata.nextLink, the last one
//       @odata.deltaLink (the token is in the URL)
//   GET /v1.0/drives/{d}/items/{i}             driveItem
//   GET /v1.0/drives/{d}/items/{i}/children    $top, $skiptoken
//   GET /v1.0/drives/{d}/items/{i}/content     302 to a pre-authenticated URL
//   GET /download/{d}/{i}?tempauth=...         the bytes; no Authorization
//       header allowed (a pre-authenticated URL is not a Graph call)
//   GET /v1.0/drives/{d}/items/{i}/permissions {"value":[permission]}
// `$select`, `$expand` and unknown parameters are accepted and ignored.
//
// Delta semantics, as the real service has them:
//   * An enumeration without a token lists every item (root included, with
//     the "root" facet) in creation order; its deltaLink resumes from the
//     point the enumeration started, so changes made during it come again.
//   * A token returns the latest state of each item changed since it, once
//     per item; removed items come as {"id","deleted":{},"parentReference"}
//     with no name and no file/folder facet. Deleting a folder removes its
//     whole subtree but reports only the folder (the harder case: a client
//     must remember what was below it). Moving or renaming a folder reports
//     only the folder, although the webUrl of everything below it changes.
//   * Permission changes report the item (as Graph does with the
//     "Prefer: deltashowsharingchanges" header). Permissions are per item,
//     not inherited.
//   * ExpireDeltaTokens() makes every issued token answer 410 Gone with
//     error code resyncChangesApplyDifferences and a Location header holding
//     a fresh enumeration link.
//   * Errors use Graph's envelope {"error":{"code","message","innerError"}}.
//   * Every /v1.0 request needs "Authorization: Bearer <token>"; tokens can
//     be expired to produce 401 mid-sync.
//
// Fault injection (InjectFault), for the next N requests whose path starts
// with a prefix: 429 with Retry-After as seconds or an HTTP-date, 503 without
// Retry-After, 500, 401, a connection closed mid-body, an empty delta page
// that still carries a nextLink, every delta entry twice on its page, and a
// delta page whose nextLink repeats it (the same items on two pages).
//
// Thread-safe: all state is under one mutex; handlers run on the server's
// connection threads.
#ifndef TESSERA_CONNECTORS_SHAREPOINT_FAKE_GRAPH_SERVER_H_
#define TESSERA_CONNECTORS_SHAREPOINT_FAKE_GRAPH_SERVER_H_

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
#include "nlohmann/json_fwd.hpp"

namespace tessera::connectors::sharepoint {

// Who a permission names: kind "user" or "group" (an Entra identity with an
// email), or "siteGroup" (a SharePoint group, by display name).
struct FakeIdentity {
  std::string kind = "user";
  std::string email;
  std::string display_name;
};

struct FakeGraphPermission {
  std::string id;  // generated when empty
  std::vector<std::string> roles = {"read"};
  // A direct grant (grantedToV2); unset for a sharing link.
  std::optional<FakeIdentity> granted_to;
  // A sharing link: scope "anonymous", "organization" or "users"; empty for a
  // direct grant. For "users" links, the people and groups it was sent to
  // (grantedToIdentitiesV2).
  std::string link_scope;
  std::vector<FakeIdentity> link_recipients;
  std::optional<absl::Time> expiration;
};

struct FakeDriveItem {
  std::string id;  // generated when empty
  std::string name;
  bool folder = false;
  std::string parent_id;  // empty: the drive's root
  std::string mime_type = "text/plain";
  std::string content;  // files only
  std::vector<FakeGraphPermission> permissions;
  // Set by the server when absent.
  std::optional<absl::Time> created_time;
  std::optional<absl::Time> modified_time;
};

struct FakeSite {
  std::string id;  // "contoso.sharepoint.com,<guid>,<guid>"
  std::string name;
  std::string display_name;
  std::string web_url;  // "https://contoso.sharepoint.com/sites/Fin"
};

struct FakeLibrary {
  std::string id;  // "b!..."
  std::string site_id;
  std::string name = "Documents";
};

// A modern site page (microsoft.graph.sitePage). Its canvas is one
// horizontal section with one column per entry of `web_parts`, each a text
// web part with that innerHtml.
struct FakeSitePage {
  std::string id;    // generated when empty
  std::string name;  // "Home.aspx"; defaults to the id + ".aspx"
  std::string title;
  std::vector<std::string> web_parts;  // innerHtml of each text web part
  std::optional<absl::Time> created_time;
  std::optional<absl::Time> modified_time;
  int64_t version = 1;  // set by the server; in the eTag
};

enum class GraphFault {
  k429RetryAfterSeconds,  // 429 activityLimitReached, Retry-After: 2
  k429RetryAfterDate,     // 429 with Retry-After as an HTTP-date 2 s ahead
  k503,                   // serviceNotAvailable, no Retry-After
  k500,
  k401,         // InvalidAuthenticationToken, whatever the token
  kDisconnect,  // the normal response, cut mid-body
  kEmptyPage,   // delta: 0 items + a nextLink to the same position
  kDuplicate,   // delta: every entry twice on its page
  kRepeatPage,  // delta: the page's nextLink (or deltaLink) serves it again
};

class FakeGraphServer {
 public:
  struct Options {
    Clock *clock = nullptr;   // null: RealClock()
    int max_page_size = 200;  // $top is capped to this
  };

  [[nodiscard]] static absl::StatusOr<std::unique_ptr<FakeGraphServer>> Start(Options options);
  ~FakeGraphServer();

  // "http://127.0.0.1:PORT/v1.0".
  [[nodiscard]] std::string base_url() const;
  FakeHttpServer *http() { return http_.get(); }

  // --- Mutations -------------------------------------------------------------
  void AddSite(FakeSite site);
  // Creates the library with its root item. INVALID_ARGUMENT for an unknown
  // site or a duplicate id.
  absl::Status AddLibrary(FakeLibrary library);
  // Returns the item id. NOT_FOUND for an unknown drive or parent,
  // INVALID_ARGUMENT for a duplicate id or a file as parent.
  absl::StatusOr<std::string> CreateItem(absl::string_view drive_id, FakeDriveItem item);
  absl::Status EditItem(absl::string_view drive_id, absl::string_view id, std::string content);
  absl::Status RenameItem(absl::string_view drive_id, absl::string_view id, std::string name);
  // Does not change lastModifiedDateTime. INVALID_ARGUMENT for a move below
  // itself.
  absl::Status MoveItem(absl::string_view drive_id, absl::string_view id,
                        std::string new_parent_id);
  // Removes the item and everything below it; reports only the item.
  absl::Status DeleteItem(absl::string_view drive_id, absl::string_view id);
  // Replaces all of the item's permissions.
  absl::Status SetPermissions(absl::string_view drive_id, absl::string_view id,
                              std::vector<FakeGraphPermission> permissions);
  // Returns the permission id.
  absl::StatusOr<std::string> AddPermission(absl::string_view drive_id, absl::string_view id,
                                            FakeGraphPermission permission);
  absl::Status RemovePermission(absl::string_view drive_id, absl::string_view id,
                                absl::string_view permission_id);
  // Site pages (GET /sites/{s}/pages[/{id}[/microsoft.graph.sitePage]],
  // $top / $skiptoken paging, canvasLayout only with $expand=canvasLayout).
  // Returns the page id. NOT_FOUND for an unknown site, INVALID_ARGUMENT for a
  // duplicate id.
  absl::StatusOr<std::string> CreatePage(absl::string_view site_id, FakeSitePage page);
  // Replaces the title (when non-empty) and the web parts; touches the page.
  absl::Status EditPage(absl::string_view site_id, absl::string_view id, std::string title,
                        std::vector<std::string> web_parts);
  absl::Status DeletePage(absl::string_view site_id, absl::string_view id);
  // Replaces the permissions of a library's root item (what the site's
  // members, visitors and owners are; SharePointConnector uses them as the
  // site pages' ACL). Not reported by delta. NOT_FOUND for an unknown drive.
  absl::Status SetRootPermissions(absl::string_view drive_id,
                                  std::vector<FakeGraphPermission> permissions);

  // Every delta token issued so far for `drive_id` (all drives when empty)
  // answers 410 Gone from now on.
  void ExpireDeltaTokens(absl::string_view drive_id = "");

  // The webUrl the server gives an item now (for test oracles); empty when
  // the item does not exist.
  [[nodiscard]] std::string WebUrl(absl::string_view drive_id, absl::string_view id) const;

  // --- Faults and auth -------------------------------------------------------
  // Faults stack in injection order; the first one with requests left whose
  // prefix matches the request path is used.
  void InjectFault(absl::string_view path_prefix, GraphFault fault, int times = 1);
  // With accepted tokens set, only those are valid; otherwise any bearer is.
  void AcceptToken(std::string token);
  void ExpireToken(absl::string_view token);

  // Requests received whose path starts with `prefix`.
  [[nodiscard]] int RequestCount(absl::string_view prefix) const;

 private:
  struct Item {
    FakeDriveItem f;
    int64_t seq = 0;      // creation order (enumeration order)
    int64_t version = 1;  // eTag / cTag
  };
  struct Drive {
    FakeLibrary lib;
    std::string root_id;
    std::map<std::string, Item> items;
    std::map<std::string, std::string> tombstones;  // deleted id -> last parent
    std::vector<std::string> log;                   // changed ids, in order
    int64_t epoch = 0;                              // tokens of older epochs are expired
  };

  FakeGraphServer(Options options, std::unique_ptr<FakeHttpServer> http);
  FakeHttpResponse Serve(const FakeHttpRequest &request);
  FakeHttpResponse ServeLocked(const FakeHttpRequest &request, std::optional<GraphFault> fault)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  FakeHttpResponse DeltaLocked(Drive &drive, const std::map<std::string, std::string> &q,
                               std::optional<GraphFault> fault) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  template <typename F>
  absl::Status MutateLocked(absl::string_view drive_id, absl::string_view id, bool touch, F mutate)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string WebUrlLocked(const Drive &drive, const std::string &id) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  std::string PathLocked(const Drive &drive, const std::string &parent_id) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  nlohmann::json ItemJsonLocked(const Drive &drive, const Item &item) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  std::string DriveUrlLocked(const Drive &drive) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const Options options_;
  Clock *const clock_;
  std::unique_ptr<FakeHttpServer> http_;

  mutable absl::Mutex mu_;
  std::map<std::string, FakeSite> sites_ ABSL_GUARDED_BY(mu_);
  // site id -> page id -> page
  std::map<std::string, std::map<std::string, FakeSitePage>> pages_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Drive> drives_ ABSL_GUARDED_BY(mu_);
  testing::FaultInjector<GraphFault> faults_ ABSL_GUARDED_BY(mu_);
  testing::BearerTokens tokens_ ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace tessera::connectors::sharepoint

#endif  // TESSERA_CONNECTORS_SHAREPOINT_FAKE_GRAPH_SERVER_H_
