// SharePointConnector: SharePoint document libraries and OneDrive for
// Business drives, through Microsoft Graph v1.0, as a Tessera Connector.
//
// Scopes: one per drive (document library), named by its Graph drive id.
// Either the configured drive ids, or every documentLibrary of the
// configured sites, or of every site the app can see (GET /sites?search=*:
// nothing has to be listed by hand, unlike connectors that index nothing
// until a site is named).
//
// Change feed: driveItem delta, per drive.
//   * FullSync enumerates /drives/{d}/root/delta without a token, following
//     @odata.nextLink to the final @odata.deltaLink; that last page asks the
//     runner to prune.
//   * IncrementalSync follows the stored deltaLink the same way.
//   * The checkpoint is the deltaLink and is only ever advanced by the page
//     that ends a round: the other pages of a round carry the round's
//     starting checkpoint, so a crash mid-round replays the whole round
//     (idempotent) rather than resuming from a nextLink. Delete events are
//     delivered once by Graph; this is what keeps them from being lost.
//   * 410 Gone (an expired token: resyncChangesApplyDifferences and friends)
//     restarts the drive with a full enumeration, from the Location header
//     when it points at the same service; its last page prunes what
//     vanished.
//   * The same item may appear several times in a round; within a page the
//     last entry wins, and pages apply in order.
//   * Items with the `deleted` facet become deletes. Graph may report only
//     the folder when a folder is deleted, and only the folder when one is
//     moved or renamed (whose descendants' webUrl then changes), so the
//     connector tracks each drive's folder tree: a deleted folder deletes
//     every file it knew below it, a moved or renamed folder re-fetches its
//     subtree (/children). The tree lives in memory and is keyed by the
//     deltaLink it reflects; a new process rebuilds it from one metadata-only
//     enumeration before its first incremental round, and a round that then
//     sees a delete it cannot place asks the runner to prune.
//   * Content: GET /items/{id}/content answers 302 to a pre-authenticated
//     URL, which is fetched with a second client that carries no bearer
//     token (credentials never go to the download host). Bytes are parsed
//     with connectors/parse (by MIME type, else file name).
//   * ACL: GET /items/{id}/permissions mapped by MapGraphPermissions (below).
//     The document is re-fetched whenever delta reports the item, which
//     includes permission changes when Graph is asked for them
//     (Prefer: deltashowsharingchanges, sent on delta calls).
//
// Document ids are "<drive id>/<item id>"; uri is the item's webUrl; title
// its name; metadata: drive_id, item_id, parent_id, site_id.
//
// Site pages (Options::include_pages, with site-based configurations): one
// more scope per site, "pages:<site id>". Graph has no delta for pages, so
// every round lists GET /sites/{s}/pages (metadata), fetches each page that
// is new, changed (lastModifiedDateTime or eTag) or whose ACL changed with
// GET /sites/{s}/pages/{id}/microsoft.graph.sitePage?$expand=canvasLayout,
// and deletes the pages missing from the listing; the checkpoint records the
// last listing (page id -> lastModifiedDateTime and eTag, and the ACL). The first
// listing prunes. Text: the innerHtml of every web part (canvasLayout:
// horizontalSections -> columns -> webparts, then verticalSection), parsed
// as HTML by connectors/parse. Document id "pages:<site id>/<page id>", title
// the page title, uri its webUrl (made absolute with the site's), metadata
// site_id, page_id, page_name, kind=sitePage.
// ACL approximation: Graph exposes no permissions for pages, so a page gets
// the permissions of the root of the site's default document library (GET
// /sites/{s}/drive, then its root's /permissions): the site's members,
// visitors and owners, mapped by MapGraphPermissions. Pages with broken
// inheritance (unique permissions) are not seen as such.
//
// Errors: a file that cannot be downloaded or parsed, or is too large, is a
// DocumentFailure and the sync goes on. Errors that outlast the retry policy
// (throttling, 5xx, transport) and 401 after a token refresh end the sync
// with the RetryingHttpClient's code; nothing of the current round is
// committed past the previous deltaLink, so the next run replays it.
//
// Thread-compatible: one call at a time.
#ifndef TESSERA_CONNECTORS_SHAREPOINT_SHAREPOINT_CONNECTOR_H_
#define TESSERA_CONNECTORS_SHAREPOINT_SHAREPOINT_CONNECTOR_H_

#include <cstdint>
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

namespace tessera::connectors::sharepoint {

// An identity a Graph permission names (grantedToV2, or one entry of
// grantedToIdentitiesV2).
struct GraphIdentity {
  std::string user_email;       // user.email, or from siteUser.loginName
  std::string group_email;      // group.email (an Entra / M365 group)
  std::string site_group_name;  // siteGroup.displayName (a SharePoint group)
};

// A Graph permission, as far as ACLs are concerned.
struct GraphPermission {
  std::optional<GraphIdentity> granted_to;  // a direct grant
  std::string link_scope;                   // anonymous | organization | users | "" (no link)
  std::vector<GraphIdentity> link_recipients;
  std::optional<absl::Time> expiration;
};

// Maps Graph permissions to principal strings, sorted and unique. Every role
// (read, write, owner) grants read access.
//   user                -> "user:<email>"
//   group               -> "group:<email>"
//   siteGroup           -> "group:<site>/<display name>", where <site> is the
//                          site's webUrl without scheme ("contoso.sharepoint.com
//                          /sites/fin"); a SharePoint group only means
//                          something within its site collection
//   link "organization" -> "domain:<tenant_domain>" (nothing when no tenant
//                          domain is configured)
//   link "users"        -> its recipients, mapped as above
//   link "anonymous"    -> nothing: link-only sharing is not public, and who
//                          holds the link is unknown (the Drive rule)
// All lowercased. Expired permissions grant nothing.
[[nodiscard]] std::vector<std::string> MapGraphPermissions(
    const std::vector<GraphPermission> &perms, absl::string_view site,
    absl::string_view tenant_domain, absl::Time now);

class SharePointConnector : public Connector {
 public:
  struct Options {
    std::string base_url = "https://graph.microsoft.com/v1.0";
    // When non-empty, exactly these drives are synced (no site enumeration).
    std::vector<std::string> drive_ids;
    // When non-empty (and drive_ids is empty), the document libraries of
    // these sites; otherwise of every site GET /sites?search=* returns.
    std::vector<std::string> site_ids;
    // The tenant's primary domain ("contoso.com"): what "organization"
    // sharing links grant. Empty: such links grant nothing.
    std::string tenant_domain;
    int page_size = 200;  // $top for delta and children (1..1000)
    // Larger files are reported as failures, not downloaded.
    int64_t max_file_bytes = 64 << 20;
    // Sync each site's pages too ("pages:<site id>" scopes); ignored when
    // drive_ids are configured (no site is known then).
    bool include_pages = true;
  };

  // `graph` carries the TokenSource (client credentials,
  // connectors/auth/service_account.h); `download` must carry none: it
  // fetches the pre-authenticated content URLs. Neither, nor `clock`, is
  // owned; all must outlive the connector. INVALID_ARGUMENT for bad options
  // or a null client.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SharePointConnector>> Create(
      RetryingHttpClient *graph, RetryingHttpClient *download, Clock *clock, Options options);

  std::string Source() const override { return "sharepoint"; }
  // The drive ids (see Options), plus "pages:<site id>" per site with
  // include_pages. Errors of the site and drive listings.
  absl::StatusOr<std::vector<std::string>> Scopes() override;
  // Checks the credentials and every configured drive (GET /drives/{id}) or
  // site (GET /sites/{id}), so that a denied or mistyped one fails now rather
  // than mid-sync; with neither configured, GET /sites?search=*&$top=1.
  // UNAUTHENTICATED / PERMISSION_DENIED for credentials, NOT_FOUND for an
  // unknown drive or site (the message names it), UNAVAILABLE when Graph is
  // down.
  absl::Status ValidateConfig() override;
  absl::Status FullSync(absl::string_view scope, const PageCallback &on_page) override;
  absl::Status IncrementalSync(absl::string_view scope, absl::string_view checkpoint,
                               const PageCallback &on_page) override;
  absl::StatusOr<std::vector<SlimDocument>> SlimListing(absl::string_view scope) override;
  // `id` is "<drive id>/<item id>" or "pages:<site id>/<page id>". NOT_FOUND when the item is gone,
  // is not a file, or lies in a drive outside the configured drive_ids (with site-based
  // configurations the drive is not checked); a download or parse failure
  // returns that failure's status.
  absl::StatusOr<ConnectorDocument> FetchDocument(absl::string_view id) override;

  ~SharePointConnector() override;

 private:
  class Impl;
  explicit SharePointConnector(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::connectors::sharepoint

#endif  // TESSERA_CONNECTORS_SHAREPOINT_SHAREPOINT_CONNECTOR_H_
