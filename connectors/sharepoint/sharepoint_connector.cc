#include "connectors/sharepoint/sharepoint_connector.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/status.h"
#include "connectors/framework/change_page.h"
#include "connectors/framework/rest_util.h"
#include "connectors/parse/document_parser.h"
#include "nlohmann/json.hpp"

namespace tessera::connectors::sharepoint {
namespace {

using json = nlohmann::json;
using rest::Arr;
using rest::Has;
using rest::Int;
using rest::Obj;
using rest::ParseRfc3339;
using rest::Str;

// Graph ids keep their '!' ("b!...") and ',' ("host,site-guid,web-guid").
std::string UrlEncode(absl::string_view s) { return rest::UrlEncode(s, "!,"); }

constexpr int kMaxResyncs = 3;
// Scope of a site's pages: "pages:<site id>" (drive ids never start so).
constexpr char kPagesPrefix[] = "pages:";
// Asks delta to report sharing changes and removals as `deleted` items.
constexpr char kDeltaPrefer[] =
    "deltashowremovedasdeleted, deltatraversepermissiongaps, deltashowsharingchanges";

// "https://host:port" of an absolute URL; empty when it is not one.
std::string Origin(absl::string_view url) {
  size_t scheme = url.find("://");
  if (scheme == absl::string_view::npos) return "";
  size_t slash = url.find('/', scheme + 3);
  return absl::AsciiStrToLower(url.substr(0, slash));
}

// The user's address in a SharePoint claims login ("i:0#.f|membership|ann@x.com").
std::string EmailFromLogin(absl::string_view login) {
  size_t bar = login.rfind('|');
  absl::string_view tail = bar == absl::string_view::npos ? login : login.substr(bar + 1);
  return absl::StrContains(tail, '@') ? std::string(tail) : "";
}

GraphIdentity ParseIdentity(const json &j) {
  GraphIdentity id;
  id.user_email = Str(Obj(j, "user"), "email");
  if (id.user_email.empty()) id.user_email = EmailFromLogin(Str(Obj(j, "siteUser"), "loginName"));
  id.group_email = Str(Obj(j, "group"), "email");
  id.site_group_name = Str(Obj(j, "siteGroup"), "displayName");
  return id;
}

GraphPermission ParsePermission(const json &p) {
  GraphPermission gp;
  if (Has(p, "grantedToV2")) gp.granted_to = ParseIdentity(p["grantedToV2"]);
  gp.link_scope = Str(Obj(p, "link"), "scope");
  for (const json &who : Arr(p, "grantedToIdentitiesV2")) {
    gp.link_recipients.push_back(ParseIdentity(who));
  }
  gp.expiration = ParseRfc3339(Str(p, "expirationDateTime"));
  return gp;
}

// What one item means for the index.
using Outcome = DocumentOutcome;

// A drive's folder tree as far as the index has seen it.
struct Node {
  std::string parent;
  std::string name;
  bool folder = false;
};
struct Tree {
  absl::flat_hash_map<std::string, Node> nodes;
  // Built from the current state, not tracked since a full listing: deletes
  // it cannot place may hide a folder's files, and folders may have moved.
  bool from_snapshot = false;
};

}  // namespace

std::vector<std::string> MapGraphPermissions(const std::vector<GraphPermission> &perms,
                                             absl::string_view site,
                                             absl::string_view tenant_domain, absl::Time now) {
  std::vector<std::string> acl;
  auto add = [&](const GraphIdentity &id) {
    if (!id.user_email.empty()) {
      acl.push_back(absl::StrCat("user:", absl::AsciiStrToLower(id.user_email)));
    } else if (!id.group_email.empty()) {
      acl.push_back(absl::StrCat("group:", absl::AsciiStrToLower(id.group_email)));
    } else if (!id.site_group_name.empty() && !site.empty()) {
      acl.push_back(absl::AsciiStrToLower(absl::StrCat("group:", site, "/", id.site_group_name)));
    }
  };
  for (const GraphPermission &p : perms) {
    if (p.expiration.has_value() && *p.expiration <= now) continue;
    if (p.link_scope.empty()) {
      if (p.granted_to) add(*p.granted_to);
    } else if (p.link_scope == "organization") {
      if (!tenant_domain.empty()) {
        acl.push_back(absl::StrCat("domain:", absl::AsciiStrToLower(tenant_domain)));
      }
    } else if (p.link_scope == "users" || p.link_scope == "existingAccess") {
      for (const GraphIdentity &id : p.link_recipients) add(id);
      if (p.granted_to) add(*p.granted_to);
    }
    // "anonymous": link-only sharing grants nothing.
  }
  std::sort(acl.begin(), acl.end());
  acl.erase(std::unique(acl.begin(), acl.end()), acl.end());
  return acl;
}

class SharePointConnector::Impl {
 public:
  Impl(RetryingHttpClient *graph, RetryingHttpClient *download, Clock *clock, Options options)
      : graph_(graph),
        download_(download),
        clock_(clock),
        options_(std::move(options)),
        origin_(Origin(options_.base_url)) {}

  absl::Status ValidateConfig() {
    if (!options_.drive_ids.empty()) {
      for (const std::string &d : options_.drive_ids) {
        RETURN_IF_ERROR(
            Annotate(GetJson(Url("/drives/" + UrlEncode(d))).status(), absl::StrCat("drive ", d)));
      }
      return absl::OkStatus();
    }
    if (!options_.site_ids.empty()) {
      for (const std::string &s : options_.site_ids) {
        RETURN_IF_ERROR(
            Annotate(GetJson(Url("/sites/" + UrlEncode(s))).status(), absl::StrCat("site ", s)));
      }
      return absl::OkStatus();
    }
    return GetJson(Url("/sites?search=*&$top=1")).status();
  }

  absl::StatusOr<std::vector<std::string>> Scopes() {
    if (!options_.drive_ids.empty()) return options_.drive_ids;
    std::vector<std::string> sites = options_.site_ids;
    if (sites.empty()) {
      ASSIGN_OR_RETURN(std::vector<json> all, ListAll(Url("/sites?search=*")));
      for (const json &s : all) {
        if (!Str(s, "id").empty()) sites.push_back(Str(s, "id"));
      }
    }
    std::vector<std::string> drives;
    for (const std::string &site : sites) {
      if (options_.include_pages) drives.push_back(absl::StrCat(kPagesPrefix, site));
      ASSIGN_OR_RETURN(std::vector<json> all,
                       ListAll(Url(absl::StrCat("/sites/", UrlEncode(site), "/drives"))));
      for (const json &d : all) {
        std::string type = Str(d, "driveType");
        if (!Str(d, "id").empty() && (type.empty() || type == "documentLibrary")) {
          drives.push_back(Str(d, "id"));
        }
      }
    }
    std::sort(drives.begin(), drives.end());
    drives.erase(std::unique(drives.begin(), drives.end()), drives.end());
    return drives;
  }

  absl::Status FullSync(const std::string &drive, const PageCallback &on_page) {
    if (absl::StartsWith(drive, kPagesPrefix)) {
      return PagesRound(drive.substr(strlen(kPagesPrefix)), PagesFullCheckpoint(drive), nullptr,
                        on_page);
    }
    return Round(drive, DeltaUrl(drive), FullCheckpoint(drive), /*full=*/true, Tree(), on_page,
                 kMaxResyncs);
  }

  absl::Status IncrementalSync(const std::string &drive, absl::string_view checkpoint,
                               const PageCallback &on_page) {
    json cp = json::parse(checkpoint, nullptr, /*allow_exceptions=*/false);
    std::string mode = Str(cp, "mode");
    if (absl::StartsWith(drive, kPagesPrefix)) {
      std::string site = drive.substr(strlen(kPagesPrefix));
      if (!cp.is_object() || Str(cp, "site") != site || (mode != "pages" && mode != "pages-full")) {
        return absl::InvalidArgumentError(
            absl::StrCat("unreadable SharePoint pages checkpoint for site ", site));
      }
      if (mode == "pages-full") return FullSync(drive, on_page);
      return PagesRound(site, std::string(checkpoint), &cp, on_page);
    }
    if (!cp.is_object() || Str(cp, "drive") != drive) {
      return absl::InvalidArgumentError(
          absl::StrCat("unreadable SharePoint checkpoint for drive ", drive));
    }
    if (mode == "full") return FullSync(drive, on_page);
    std::string link = Str(cp, "link");
    if (mode != "delta" || link.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unreadable SharePoint checkpoint for drive ", drive));
    }
    if (Origin(link) != origin_) {
      return absl::InvalidArgumentError(
          "SharePoint checkpoint points at another service than base_url");
    }
    Tree tree;
    auto known = trees_.find(drive);
    if (known != trees_.end() && known->second.first == link) {
      tree = known->second.second;
    } else {
      ASSIGN_OR_RETURN(tree, SnapshotTree(drive));
    }
    return Round(drive, link, std::string(checkpoint), /*full=*/false, std::move(tree), on_page,
                 kMaxResyncs);
  }

  absl::StatusOr<std::vector<SlimDocument>> SlimListing(const std::string &drive) {
    std::vector<SlimDocument> out;
    if (absl::StartsWith(drive, kPagesPrefix)) {
      std::string site = drive.substr(strlen(kPagesPrefix));
      ASSIGN_OR_RETURN(std::vector<std::string> acl, PagesAcl(site));
      ASSIGN_OR_RETURN(std::vector<json> pages, ListAll(PagesUrl(site)));
      absl::flat_hash_set<std::string> seen;
      for (const json &page : pages) {
        std::string id = Str(page, "id");
        if (!IsSitePage(page) || id.empty() || !seen.insert(id).second) continue;
        out.push_back({PageDocId(site, id), acl});
      }
      return out;
    }
    absl::flat_hash_set<std::string> seen;
    RETURN_IF_ERROR(Enumerate(drive, [&](const json &item) -> absl::Status {
      if (Has(item, "deleted") || !Has(item, "file")) return absl::OkStatus();
      std::string id = Str(item, "id");
      if (id.empty() || !seen.insert(id).second) return absl::OkStatus();
      ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> acl, Acl(drive, item));
      if (acl) out.push_back({DocId(drive, id), std::move(*acl)});
      return absl::OkStatus();
    }));
    return out;
  }

  absl::StatusOr<ConnectorDocument> FetchDocument(absl::string_view id) {
    size_t slash = id.find('/');
    if (slash == absl::string_view::npos || slash == 0 || slash + 1 == id.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("SharePoint document id '", id, "' is not <drive id>/<item id>"));
    }
    std::string drive(id.substr(0, slash));
    std::string item_id(id.substr(slash + 1));
    if (absl::StartsWith(drive, kPagesPrefix)) {
      std::string site = drive.substr(strlen(kPagesPrefix));
      if (!options_.drive_ids.empty() || !options_.include_pages ||
          (!options_.site_ids.empty() &&
           std::find(options_.site_ids.begin(), options_.site_ids.end(), site) ==
               options_.site_ids.end())) {
        return absl::NotFoundError(absl::StrCat("pages of site ", site, " are not synced"));
      }
      ASSIGN_OR_RETURN(std::vector<std::string> acl, PagesAcl(site));
      ASSIGN_OR_RETURN(std::string site_url, SiteUrl(site));
      ASSIGN_OR_RETURN(Outcome o, ProcessPage(site, site_url, item_id, acl));
      return FetchedDocument(std::move(o),
                             absl::NotFoundError(absl::StrCat("page ", id, " is gone")));
    }
    if (!options_.drive_ids.empty() &&
        std::find(options_.drive_ids.begin(), options_.drive_ids.end(), drive) ==
            options_.drive_ids.end()) {
      return absl::NotFoundError(absl::StrCat("drive ", drive, " is not synced"));
    }
    std::string url =
        Url(absl::StrCat("/drives/", UrlEncode(drive), "/items/", UrlEncode(item_id)));
    ASSIGN_OR_RETURN(HttpResponse r, Get(url));
    if (r.status_code == 404) return absl::NotFoundError(absl::StrCat("item ", id, " not found"));
    RETURN_IF_ERROR(CheckHttpStatus(r, "GET", url));
    ASSIGN_OR_RETURN(json item, ParseJson(r, url));
    if (Has(item, "deleted") || !Has(item, "file")) {
      return absl::NotFoundError(absl::StrCat("item ", id, " is not a file"));
    }
    ASSIGN_OR_RETURN(Outcome o, ProcessFile(drive, item));
    return FetchedDocument(std::move(o),
                           absl::NotFoundError(absl::StrCat("item ", id, " is gone")));
  }

 private:
  std::string Url(absl::string_view path) const { return absl::StrCat(options_.base_url, path); }
  std::string DeltaUrl(const std::string &drive) const {
    return Url(absl::StrCat("/drives/", UrlEncode(drive), "/root/delta?$top=", options_.page_size));
  }
  static std::string DocId(const std::string &drive, const std::string &item) {
    return absl::StrCat(drive, "/", item);
  }
  static std::string FullCheckpoint(const std::string &drive) {
    return json({{"drive", drive}, {"mode", "full"}}).dump();
  }

  absl::StatusOr<HttpResponse> Get(const std::string &url, bool delta = false) {
    if (Origin(url) != origin_) {
      // Never send the bearer token anywhere but the configured service.
      return absl::FailedPreconditionError("Graph returned a link to another host");
    }
    HttpRequest req;
    req.url = url;
    if (delta) req.headers.push_back({"Prefer", kDeltaPrefer});
    return graph_->Send(req);
  }

  absl::StatusOr<json> ParseJson(const HttpResponse &r, absl::string_view url) {
    json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) {
      return absl::UnavailableError(
          absl::StrCat("Graph returned malformed JSON for ", url.substr(0, url.find('?'))));
    }
    return j;
  }

  absl::StatusOr<json> GetJson(const std::string &url) {
    ASSIGN_OR_RETURN(HttpResponse r, Get(url));
    RETURN_IF_ERROR(CheckHttpStatus(r, "GET", url));
    return ParseJson(r, url);
  }

  // Every element of a paged collection ({"value":[..],"@odata.nextLink"}).
  absl::StatusOr<std::vector<json>> ListAll(std::string url) {
    std::vector<json> out;
    for (int empty = 0;;) {
      ASSIGN_OR_RETURN(json page, GetJson(url));
      for (const json &v : Arr(page, "value")) out.push_back(v);
      url = Str(page, "@odata.nextLink");
      if (url.empty()) return out;
      RETURN_IF_ERROR(rest::CheckProgress("Graph", Arr(page, "value").empty(), &empty));
    }
  }

  // Calls `fn` for every item of a fresh enumeration of the drive (metadata
  // only). A 410 here restarts the enumeration.
  absl::Status Enumerate(const std::string &drive,
                         const std::function<absl::Status(const json &)> &fn) {
    std::string url = DeltaUrl(drive);
    for (int empty = 0, restarts = 0;;) {
      ASSIGN_OR_RETURN(HttpResponse r, Get(url, /*delta=*/true));
      if (r.status_code == 410 && restarts++ < kMaxResyncs) {
        url = DeltaUrl(drive);
        continue;
      }
      RETURN_IF_ERROR(CheckHttpStatus(r, "GET", url));
      ASSIGN_OR_RETURN(json page, ParseJson(r, url));
      for (const json &item : Arr(page, "value")) RETURN_IF_ERROR(fn(item));
      std::string next = Str(page, "@odata.nextLink");
      if (next.empty()) {
        if (Str(page, "@odata.deltaLink").empty()) {
          return absl::UnavailableError("Graph delta page has neither nextLink nor deltaLink");
        }
        return absl::OkStatus();
      }
      RETURN_IF_ERROR(rest::CheckProgress("Graph", Arr(page, "value").empty(), &empty));
      url = next;
    }
  }

  absl::StatusOr<Tree> SnapshotTree(const std::string &drive) {
    Tree tree;
    tree.from_snapshot = true;
    RETURN_IF_ERROR(Enumerate(drive, [&](const json &item) {
      std::string id = Str(item, "id");
      if (id.empty()) return absl::OkStatus();
      if (Has(item, "deleted")) {
        tree.nodes.erase(id);
      } else {
        tree.nodes[id] = {Str(Obj(item, "parentReference"), "id"), Str(item, "name"),
                          Has(item, "folder") || Has(item, "root")};
      }
      return absl::OkStatus();
    }));
    return tree;
  }

  // One delta round from `url` to the deltaLink. Pages before the last carry
  // `hold` (the round's starting checkpoint); the last carries the deltaLink.
  absl::Status Round(const std::string &drive, std::string url, std::string hold, bool full,
                     Tree tree, const PageCallback &on_page, int resyncs_left) {
    bool prune = full;
    for (int empty = 0;;) {
      ASSIGN_OR_RETURN(HttpResponse r, Get(url, /*delta=*/true));
      if (r.status_code == 410) {
        if (resyncs_left <= 0) {
          return absl::UnavailableError(
              absl::StrCat("Graph keeps answering 410 Gone for drive ", drive));
        }
        // The cursor is gone: enumerate again and prune what vanished.
        std::string fresh = r.headers.Get("Location").value_or("");
        if (fresh.empty() || Origin(fresh) != origin_) fresh = DeltaUrl(drive);
        return Round(drive, fresh, FullCheckpoint(drive), /*full=*/true, Tree(), on_page,
                     resyncs_left - 1);
      }
      RETURN_IF_ERROR(CheckHttpStatus(r, "GET", url));
      ASSIGN_OR_RETURN(json page, ParseJson(r, url));
      std::vector<Outcome> outcomes;
      for (const json &item : Arr(page, "value")) {
        RETURN_IF_ERROR(ProcessDeltaItem(drive, item, full, &tree, &outcomes, &prune));
      }
      ChangePage change;
      CollectLastPerId(std::move(outcomes), &change);
      std::string next = Str(page, "@odata.nextLink");
      std::string delta = Str(page, "@odata.deltaLink");
      if (!next.empty()) {
        RETURN_IF_ERROR(rest::CheckProgress("Graph", Arr(page, "value").empty(), &empty));
        change.checkpoint = hold;
      } else if (!delta.empty()) {
        if (Origin(delta) != origin_) {
          return absl::FailedPreconditionError("Graph returned a deltaLink to another host");
        }
        change.checkpoint = json({{"drive", drive}, {"mode", "delta"}, {"link", delta}}).dump();
        change.full_listing_done = prune;
      } else {
        return absl::UnavailableError("Graph delta page has neither nextLink nor deltaLink");
      }
      RETURN_IF_ERROR(on_page(std::move(change)));
      if (next.empty()) {
        tree.from_snapshot = false;
        trees_[drive] = {delta, std::move(tree)};
        return absl::OkStatus();
      }
      url = next;
    }
  }

  // Files known below `folder`, removed from the tree.
  std::vector<std::string> TakeSubtree(const std::string &folder, Tree *tree) {
    absl::flat_hash_map<std::string, std::vector<std::string>> children;
    for (const auto &[id, node] : tree->nodes) children[node.parent].push_back(id);
    std::vector<std::string> queue = {folder}, files;
    absl::flat_hash_set<std::string> seen = {folder};
    while (!queue.empty()) {
      std::string id = queue.back();
      queue.pop_back();
      for (const std::string &c : children[id]) {
        if (!seen.insert(c).second) continue;
        if (tree->nodes[c].folder) {
          queue.push_back(c);
        } else {
          files.push_back(c);
        }
        tree->nodes.erase(c);
      }
    }
    return files;
  }

  absl::Status ProcessDeltaItem(const std::string &drive, const json &item, bool full, Tree *tree,
                                std::vector<Outcome> *out, bool *prune) {
    std::string id = Str(item, "id");
    if (id.empty()) return absl::OkStatus();
    if (Has(item, "deleted")) {
      Outcome o;
      o.kind = Outcome::kDelete;
      o.doc.id = DocId(drive, id);
      out->push_back(std::move(o));
      auto it = tree->nodes.find(id);
      if (it != tree->nodes.end()) {
        bool folder = it->second.folder;
        tree->nodes.erase(it);
        if (folder) {
          for (const std::string &f : TakeSubtree(id, tree)) {
            Outcome d;
            d.kind = Outcome::kDelete;
            d.doc.id = DocId(drive, f);
            out->push_back(std::move(d));
          }
        }
      } else if (tree->from_snapshot) {
        *prune = true;  // it may have been a folder with files we never placed
      }
      return absl::OkStatus();
    }
    std::string parent = Str(Obj(item, "parentReference"), "id");
    std::string name = Str(item, "name");
    if (Has(item, "root")) {
      tree->nodes[id] = {"", name, true};
      return absl::OkStatus();
    }
    if (Has(item, "folder")) {
      auto it = tree->nodes.find(id);
      bool existed = it != tree->nodes.end();
      bool changed = existed && (it->second.parent != parent || it->second.name != name);
      tree->nodes[id] = {parent, name, true};
      if (!full && existed && (changed || tree->from_snapshot)) {
        // Graph reports only the folder; the webUrl of everything below changed.
        RETURN_IF_ERROR(RefreshSubtree(drive, id, tree, out));
      }
      return absl::OkStatus();
    }
    tree->nodes[id] = {parent, name, false};
    if (!Has(item, "file")) return absl::OkStatus();  // packages (OneNote) and the like
    ASSIGN_OR_RETURN(Outcome o, ProcessFile(drive, item));
    out->push_back(std::move(o));
    return absl::OkStatus();
  }

  // Re-fetches every file below `folder` (current state, /children).
  absl::Status RefreshSubtree(const std::string &drive, const std::string &folder, Tree *tree,
                              std::vector<Outcome> *out) {
    std::vector<std::string> queue = {folder};
    absl::flat_hash_set<std::string> seen = {folder};
    while (!queue.empty()) {
      std::string id = queue.back();
      queue.pop_back();
      ASSIGN_OR_RETURN(
          std::vector<json> kids,
          ListAll(Url(absl::StrCat("/drives/", UrlEncode(drive), "/items/", UrlEncode(id),
                                   "/children?$top=", options_.page_size))));
      for (const json &c : kids) {
        std::string cid = Str(c, "id");
        if (cid.empty() || !seen.insert(cid).second) continue;
        bool is_folder = Has(c, "folder");
        tree->nodes[cid] = {id, Str(c, "name"), is_folder};
        if (is_folder) {
          queue.push_back(cid);
        } else if (Has(c, "file")) {
          ASSIGN_OR_RETURN(Outcome o, ProcessFile(drive, c));
          out->push_back(std::move(o));
        }
      }
    }
    return absl::OkStatus();
  }

  // "contoso.sharepoint.com/sites/fin" for a site id (cached); the drive id
  // when the item names no site.
  absl::StatusOr<std::string> SiteKey(const std::string &drive, const json &item) {
    std::string site_id = Str(Obj(item, "parentReference"), "siteId");
    if (site_id.empty()) return drive;
    auto it = site_keys_.find(site_id);
    if (it != site_keys_.end()) return it->second;
    ASSIGN_OR_RETURN(json site, GetJson(Url("/sites/" + UrlEncode(site_id))));
    std::string key = Str(site, "webUrl");
    size_t scheme = key.find("://");
    if (scheme != std::string::npos) key = key.substr(scheme + 3);
    while (!key.empty() && key.back() == '/') key.pop_back();
    if (key.empty()) key = site_id;
    key = absl::AsciiStrToLower(key);
    site_keys_[site_id] = key;
    return key;
  }

  // The item's ACL; nullopt when the item vanished.
  absl::StatusOr<std::optional<std::vector<std::string>>> Acl(const std::string &drive,
                                                              const json &item) {
    std::string url = Url(absl::StrCat("/drives/", UrlEncode(drive), "/items/",
                                       UrlEncode(Str(item, "id")), "/permissions"));
    std::vector<GraphPermission> perms;
    for (int empty = 0;;) {
      ASSIGN_OR_RETURN(HttpResponse r, Get(url));
      if (r.status_code == 404) return std::optional<std::vector<std::string>>();
      RETURN_IF_ERROR(CheckHttpStatus(r, "GET", url));
      ASSIGN_OR_RETURN(json page, ParseJson(r, url));
      for (const json &p : Arr(page, "value")) perms.push_back(ParsePermission(p));
      url = Str(page, "@odata.nextLink");
      if (url.empty()) break;
      RETURN_IF_ERROR(rest::CheckProgress("Graph", Arr(page, "value").empty(), &empty));
    }
    ASSIGN_OR_RETURN(std::string site, SiteKey(drive, item));
    return std::optional<std::vector<std::string>>(
        MapGraphPermissions(perms, site, options_.tenant_domain, clock_->Now()));
  }

  // The file's bytes through /content and its redirect. A final non-2xx is a
  // per-document failure (in `failure`; NOT_FOUND when the item vanished).
  absl::StatusOr<std::string> Content(const std::string &drive, const std::string &id,
                                      absl::Status *failure) {
    std::string url =
        Url(absl::StrCat("/drives/", UrlEncode(drive), "/items/", UrlEncode(id), "/content"));
    ASSIGN_OR_RETURN(HttpResponse r, Get(url));
    if (r.status_code / 100 == 3) {
      std::string location = r.headers.Get("Location").value_or("");
      if (Origin(location).empty()) {
        *failure = absl::UnavailableError("Graph content redirect without an absolute Location");
        return std::string();
      }
      HttpRequest req;
      req.url = location;  // pre-authenticated: sent without our token
      ASSIGN_OR_RETURN(r, download_->Send(req));
      url = location.substr(0, location.find('?'));
    }
    if (r.status_code / 100 != 2) {
      *failure = CheckHttpStatus(r, "GET", url);
      return std::string();
    }
    return std::move(r.body);
  }

  // --- Site pages ------------------------------------------------------------
  // Pages have no delta: every round lists them all (metadata only), fetches
  // those whose lastModifiedDateTime or whose ACL changed since the listing
  // the checkpoint records, and deletes those no longer listed. A full
  // listing (no checkpoint yet) fetches every page and asks for a prune.

  static bool IsSitePage(const json &page) {
    std::string type = Str(page, "@odata.type");
    return type.empty() || type == "#microsoft.graph.sitePage";
  }
  static std::string PageDocId(const std::string &site, const std::string &page) {
    return absl::StrCat(kPagesPrefix, site, "/", page);
  }
  static std::string PagesFullCheckpoint(const std::string &scope) {
    return json({{"site", scope.substr(strlen(kPagesPrefix))}, {"mode", "pages-full"}}).dump();
  }
  std::string PagesUrl(const std::string &site) const {
    return Url(absl::StrCat("/sites/", UrlEncode(site), "/pages?$top=", options_.page_size));
  }

  // The site's webUrl (cached), to make page webUrls absolute.
  absl::StatusOr<std::string> SiteUrl(const std::string &site) {
    auto it = site_urls_.find(site);
    if (it != site_urls_.end()) return it->second;
    ASSIGN_OR_RETURN(json j, GetJson(Url("/sites/" + UrlEncode(site))));
    std::string url = Str(j, "webUrl");
    while (!url.empty() && url.back() == '/') url.pop_back();
    site_urls_[site] = url;
    return url;
  }

  // The pages' ACL: Graph has no per-page permissions endpoint, so the
  // permissions of the root of the site's default library (its members and
  // owners, inherited by unbroken items) stand for them. Empty (nobody) when
  // the site has no default library.
  absl::StatusOr<std::vector<std::string>> PagesAcl(const std::string &site) {
    std::string url = Url(absl::StrCat("/sites/", UrlEncode(site), "/drive"));
    ASSIGN_OR_RETURN(HttpResponse r, Get(url));
    if (r.status_code == 404) return std::vector<std::string>();
    RETURN_IF_ERROR(CheckHttpStatus(r, "GET", url));
    ASSIGN_OR_RETURN(json drive, ParseJson(r, url));
    std::string drive_id = Str(drive, "id");
    if (drive_id.empty()) return std::vector<std::string>();
    url = Url(absl::StrCat("/drives/", UrlEncode(drive_id), "/root"));
    ASSIGN_OR_RETURN(r, Get(url));
    if (r.status_code == 404) return std::vector<std::string>();
    RETURN_IF_ERROR(CheckHttpStatus(r, "GET", url));
    ASSIGN_OR_RETURN(json root, ParseJson(r, url));
    if (Str(Obj(root, "parentReference"), "siteId").empty()) {
      root["parentReference"]["siteId"] = site;
    }
    ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> acl, Acl(drive_id, root));
    return acl ? *std::move(acl) : std::vector<std::string>();
  }

  absl::Status PagesRound(const std::string &site, const std::string &start_checkpoint,
                          const json *previous, const PageCallback &on_page) {
    ASSIGN_OR_RETURN(std::vector<std::string> acl, PagesAcl(site));
    ASSIGN_OR_RETURN(std::string site_url, SiteUrl(site));
    std::string acl_key = absl::StrJoin(acl, " ");
    json known = json::object();
    bool acl_changed = true;
    if (previous != nullptr) {
      known = Obj(*previous, "pages");
      if (!known.is_object()) known = json::object();
      acl_changed = Str(*previous, "acl") != acl_key;
    }
    json current = json::object();
    std::string url = PagesUrl(site);
    for (int empty = 0;;) {
      ASSIGN_OR_RETURN(json list, GetJson(url));
      std::vector<Outcome> outcomes;
      for (const json &page : Arr(list, "value")) {
        std::string id = Str(page, "id");
        if (!IsSitePage(page) || id.empty() || current.contains(id)) continue;
        // lastModifiedDateTime has whole seconds; the eTag changes with every edit.
        std::string version =
            absl::StrCat(Str(page, "lastModifiedDateTime"), " ", Str(page, "eTag"));
        current[id] = version;
        if (!acl_changed && version != " " && Str(known, id.c_str()) == version) continue;
        ASSIGN_OR_RETURN(Outcome o, ProcessPage(site, site_url, id, acl));
        if (o.kind == Outcome::kFailure) current[id] = "";  // retried next round
        if (o.kind == Outcome::kDelete) current.erase(id);
        outcomes.push_back(std::move(o));
      }
      ChangePage out;
      CollectLastPerId(std::move(outcomes), &out);
      std::string next = Str(list, "@odata.nextLink");
      if (!next.empty()) {
        RETURN_IF_ERROR(rest::CheckProgress("Graph", Arr(list, "value").empty(), &empty));
        out.checkpoint = start_checkpoint;  // a crash replays the whole round
        RETURN_IF_ERROR(on_page(std::move(out)));
        url = next;
        continue;
      }
      for (auto it = known.begin(); it != known.end(); ++it) {
        if (!current.contains(it.key())) out.deletes.push_back(PageDocId(site, it.key()));
      }
      out.checkpoint =
          json({{"site", site}, {"mode", "pages"}, {"acl", acl_key}, {"pages", current}}).dump();
      out.full_listing_done = previous == nullptr;
      return on_page(std::move(out));
    }
  }

  // Appends the innerHtml of every web part under `j` (canvasLayout:
  // horizontalSections -> columns -> webparts, and verticalSection ->
  // webparts), in layout order.
  static void CollectWebParts(const json &layout, std::string *html) {
    auto parts = [&](const json &holder) {
      for (const json &wp : Arr(holder, "webparts")) {
        std::string inner = Str(wp, "innerHtml");
        if (!inner.empty()) absl::StrAppend(html, "<div>", inner, "</div>\n");
      }
    };
    for (const json &section : Arr(layout, "horizontalSections")) {
      for (const json &column : Arr(section, "columns")) parts(column);
    }
    parts(Obj(layout, "verticalSection"));
  }

  absl::StatusOr<Outcome> ProcessPage(const std::string &site, const std::string &site_url,
                                      const std::string &id, const std::vector<std::string> &acl) {
    Outcome o;
    o.doc.id = PageDocId(site, id);
    o.failure.id = o.doc.id;
    std::string url = Url(absl::StrCat("/sites/", UrlEncode(site), "/pages/", UrlEncode(id),
                                       "/microsoft.graph.sitePage?$expand=canvasLayout"));
    ASSIGN_OR_RETURN(HttpResponse r, Get(url));
    if (r.status_code == 404) {
      o.kind = Outcome::kDelete;
      return o;
    }
    if (r.status_code / 100 == 4 && r.status_code != 401 && r.status_code != 429) {
      o.kind = Outcome::kFailure;
      o.failure.status = CheckHttpStatus(r, "GET", url);
      return o;
    }
    RETURN_IF_ERROR(CheckHttpStatus(r, "GET", url));
    ASSIGN_OR_RETURN(json page, ParseJson(r, url));
    ConnectorDocument &d = o.doc;
    d.title = Str(page, "title");
    if (d.title.empty()) d.title = Str(page, "name");
    o.failure.title = d.title;
    std::string html;
    CollectWebParts(Obj(page, "canvasLayout"), &html);
    if (!html.empty()) {
      absl::StatusOr<parse::ParsedDocument> parsed =
          parse::ParseDocument(absl::StrCat("<html><body>", html, "</body></html>"), "text/html");
      if (!parsed.ok()) {
        o.kind = Outcome::kFailure;
        o.failure.status = parsed.status();
        return o;
      }
      for (parse::ParsedSection &s : parsed->sections) {
        if (s.text.empty()) continue;
        d.sections.push_back({std::move(s.heading), std::move(s.text), s.page});
      }
    }
    if (d.sections.empty()) d.sections.push_back({"", d.title, 0});
    if (d.sections.front().heading.empty()) d.sections.front().heading = d.title;
    d.uri = Str(page, "webUrl");
    if (!d.uri.empty() && Origin(d.uri).empty() && !site_url.empty()) {
      d.uri = absl::StrCat(site_url, "/", absl::StripPrefix(d.uri, "/"));
    }
    d.mime_type = "text/html";
    d.modified_time = ParseRfc3339(Str(page, "lastModifiedDateTime")).value_or(absl::UnixEpoch());
    d.acl = acl;
    d.metadata["site_id"] = site;
    d.metadata["page_id"] = id;
    d.metadata["page_name"] = Str(page, "name");
    d.metadata["kind"] = "sitePage";
    o.kind = Outcome::kUpsert;
    return o;
  }

  absl::StatusOr<Outcome> ProcessFile(const std::string &drive, const json &item) {
    Outcome o;
    std::string id = Str(item, "id");
    std::string name = Str(item, "name");
    o.doc.id = DocId(drive, id);
    o.failure.id = o.doc.id;
    o.failure.title = name;
    int64_t size = Int(item, "size");
    if (size > options_.max_file_bytes) {
      o.kind = Outcome::kFailure;
      o.failure.status = absl::ResourceExhaustedError(
          absl::StrCat("file is ", size, " bytes, over the limit of ", options_.max_file_bytes));
      return o;
    }
    absl::Status failure;
    ASSIGN_OR_RETURN(std::string bytes, Content(drive, id, &failure));
    if (!failure.ok()) {
      SetDownloadFailure(std::move(failure), &o);
      return o;
    }
    std::string mime = Str(Obj(item, "file"), "mimeType");
    std::string parse_as = mime.empty() || mime == "application/octet-stream" ? name : mime;
    absl::StatusOr<parse::ParsedDocument> parsed = parse::ParseDocument(bytes, parse_as);
    if (!parsed.ok()) {
      o.kind = Outcome::kFailure;
      o.failure.status = parsed.status();
      return o;
    }
    ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> acl, Acl(drive, item));
    if (!acl) {
      o.kind = Outcome::kDelete;
      return o;
    }
    ConnectorDocument &d = o.doc;
    d.acl = std::move(*acl);
    d.title = name;
    d.uri = Str(item, "webUrl");
    d.mime_type = mime;
    d.modified_time = ParseRfc3339(Str(item, "lastModifiedDateTime")).value_or(absl::UnixEpoch());
    for (parse::ParsedSection &s : parsed->sections) {
      d.sections.push_back({std::move(s.heading), std::move(s.text), s.page});
    }
    const json &parent = Obj(item, "parentReference");
    d.metadata["drive_id"] = drive;
    d.metadata["item_id"] = id;
    if (!Str(parent, "id").empty()) d.metadata["parent_id"] = Str(parent, "id");
    if (!Str(parent, "siteId").empty()) d.metadata["site_id"] = Str(parent, "siteId");
    o.kind = Outcome::kUpsert;
    return o;
  }

  RetryingHttpClient *const graph_;
  RetryingHttpClient *const download_;
  Clock *const clock_;
  const Options options_;
  const std::string origin_;
  // drive -> (the deltaLink the tree reflects, the tree)
  std::map<std::string, std::pair<std::string, Tree>> trees_;
  absl::flat_hash_map<std::string, std::string> site_keys_;
  absl::flat_hash_map<std::string, std::string> site_urls_;
};

absl::StatusOr<std::unique_ptr<SharePointConnector>> SharePointConnector::Create(
    RetryingHttpClient *graph, RetryingHttpClient *download, Clock *clock, Options options) {
  if (graph == nullptr || download == nullptr || clock == nullptr) {
    return absl::InvalidArgumentError(
        "SharePoint connector needs a Graph client, a download client and a clock");
  }
  if (options.page_size < 1 || options.page_size > 1000) {
    return absl::InvalidArgumentError("SharePoint page_size must be within 1..1000");
  }
  if (!absl::StartsWith(options.base_url, "http://") &&
      !absl::StartsWith(options.base_url, "https://")) {
    return absl::InvalidArgumentError("SharePoint base_url must be an http(s) URL");
  }
  while (absl::EndsWith(options.base_url, "/")) options.base_url.pop_back();
  for (const std::string &d : options.drive_ids) {
    if (d.empty() || absl::StrContains(d, '/')) {
      return absl::InvalidArgumentError(absl::StrCat("bad SharePoint drive id '", d, "'"));
    }
  }
  return std::unique_ptr<SharePointConnector>(
      new SharePointConnector(std::make_unique<Impl>(graph, download, clock, std::move(options))));
}

SharePointConnector::SharePointConnector(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SharePointConnector::~SharePointConnector() = default;

absl::StatusOr<std::vector<std::string>> SharePointConnector::Scopes() { return impl_->Scopes(); }

absl::Status SharePointConnector::ValidateConfig() { return impl_->ValidateConfig(); }

absl::Status SharePointConnector::FullSync(absl::string_view scope, const PageCallback &on_page) {
  if (scope.empty() || absl::StrContains(scope, '/')) {
    return absl::InvalidArgumentError(absl::StrCat("bad SharePoint scope '", scope, "'"));
  }
  return impl_->FullSync(std::string(scope), on_page);
}

absl::Status SharePointConnector::IncrementalSync(absl::string_view scope,
                                                  absl::string_view checkpoint,
                                                  const PageCallback &on_page) {
  if (scope.empty() || absl::StrContains(scope, '/')) {
    return absl::InvalidArgumentError(absl::StrCat("bad SharePoint scope '", scope, "'"));
  }
  return impl_->IncrementalSync(std::string(scope), checkpoint, on_page);
}

absl::StatusOr<std::vector<SlimDocument>> SharePointConnector::SlimListing(
    absl::string_view scope) {
  if (scope.empty() || absl::StrContains(scope, '/')) {
    return absl::InvalidArgumentError(absl::StrCat("bad SharePoint scope '", scope, "'"));
  }
  return impl_->SlimListing(std::string(scope));
}

absl::StatusOr<ConnectorDocument> SharePointConnector::FetchDocument(absl::string_view id) {
  return impl_->FetchDocument(id);
}

}  // namespace tessera::connectors::sharepoint
