// Connector: the interface every source (Drive, Gmail, SharePoint, local
// folders) implements, and DocumentSink: the retrieval side it feeds.
//
// A connector turns a source's change feed into pages of changes. Each page
// carries the documents to upsert (already parsed, with their ACL), the ids to
// delete, the documents that could not be fetched or parsed, and an opaque
// checkpoint: the point from which to resume once this page has been applied.
// The SyncRunner (connectors/framework/sync_runner.h) applies each page to a
// DocumentSink and only then persists its checkpoint, so a crash replays a
// page (upserts and deletes are idempotent) and never skips one.
//
// Scopes: a connector syncs one or more independent scopes (a mailbox, a
// shared drive, a site), each with its own checkpoint. Scope names are stable
// strings chosen by the connector.
//
// Principals in ACLs use the strings of DESIGN.md: "user:ann@x.com",
// "group:fin@x.com", "domain:x.com", "anyone". An empty ACL means nobody.
#ifndef TESSERA_CONNECTORS_CONNECTOR_H_
#define TESSERA_CONNECTORS_CONNECTOR_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tessera::connectors {

// One piece of a document's text (mirrors tessera.v1.Section).
struct DocumentSection {
  std::string heading;
  std::string text;
  int page = 0;  // 1-based for paged formats; 0 when unknown
};

// A document ready for retrieval. Value type.
struct ConnectorDocument {
  std::string id;  // the source's stable id (a Drive file id); unique per source
  std::string title;
  std::string uri;        // opens the document in its source; shown in citations
  std::string mime_type;  // of the original
  absl::Time modified_time = absl::UnixEpoch();
  std::vector<DocumentSection> sections;
  std::vector<std::string> acl;  // principal strings, sorted and unique
  std::map<std::string, std::string> metadata;
};

// A document whose id and ACL are known without its content (for pruning and
// permission-only refreshes).
struct SlimDocument {
  std::string id;
  std::vector<std::string> acl;
};

// A document the connector saw but could not turn into a ConnectorDocument
// (download refused, unsupported or corrupt format). Reported, not fatal.
struct DocumentFailure {
  std::string id;
  std::string title;
  absl::Status status;
};

// One page of changes. `upserts` and `deletes` are disjoint: when a source
// reports several changes of one document in a page, the last one wins.
struct ChangePage {
  std::vector<ConnectorDocument> upserts;
  std::vector<std::string> deletes;
  std::vector<DocumentFailure> failures;
  // Opaque; resumes right after this page. Never empty.
  std::string checkpoint;
  // Set on the page that completes a full listing of the scope (an initial
  // sync or a resync after an expired cursor): documents not listed since the
  // listing began may be gone, so the runner prunes after applying it.
  bool full_listing_done = false;
};

// Receives pages in order. Returning an error stops the sync, which then
// returns that error; the connector has done nothing the caller must undo.
using PageCallback = std::function<absl::Status(ChangePage page)>;

// A source of documents. Implementations document their thread-safety; the
// SyncRunner calls one method at a time.
class Connector {
 public:
  virtual ~Connector() = default;

  // The source name used in tessera.v1.Document.source ("gdrive", "gmail").
  [[nodiscard]] virtual std::string Source() const = 0;

  // The scopes this connector syncs, each checkpointed separately.
  [[nodiscard]] virtual absl::StatusOr<std::vector<std::string>> Scopes() = 0;

  // Checks the configuration and the credentials against the source (one
  // cheap call). INVALID_ARGUMENT for a bad configuration, UNAUTHENTICATED or
  // PERMISSION_DENIED for credentials, UNAVAILABLE when the source is down.
  [[nodiscard]] virtual absl::Status ValidateConfig() = 0;

  // Lists all of `scope` from scratch, emitting pages to `on_page`. The last
  // page has full_listing_done set and a checkpoint for IncrementalSync.
  [[nodiscard]] virtual absl::Status FullSync(absl::string_view scope,
                                              const PageCallback &on_page) = 0;

  // Continues from `checkpoint` (any checkpoint this connector emitted for
  // `scope`, including one from the middle of a full listing) until the feed
  // has no more changes. When the source no longer accepts the cursor
  // (expired), the connector falls back to a full listing by itself.
  // INVALID_ARGUMENT for a checkpoint it cannot read.
  [[nodiscard]] virtual absl::Status IncrementalSync(absl::string_view scope,
                                                     absl::string_view checkpoint,
                                                     const PageCallback &on_page) = 0;

  // Every document currently in `scope`, ids and ACLs only (no content).
  [[nodiscard]] virtual absl::StatusOr<std::vector<SlimDocument>> SlimListing(
      absl::string_view scope) = 0;

  // One document, fetched and parsed now. NOT_FOUND when it is gone or out of
  // scope.
  [[nodiscard]] virtual absl::StatusOr<ConnectorDocument> FetchDocument(absl::string_view id) = 0;
};

// The retrieval side. Each call returns only once the change is durable
// (acknowledged); an error means it may or may not have been applied, and the
// caller will repeat it. Both calls must therefore be idempotent.
class DocumentSink {
 public:
  virtual ~DocumentSink() = default;
  // Inserts or replaces documents of `source` by id.
  [[nodiscard]] virtual absl::Status Upsert(absl::string_view source,
                                            const std::vector<ConnectorDocument> &documents) = 0;
  // Deletes documents of `source`; unknown ids are not an error.
  [[nodiscard]] virtual absl::Status Delete(absl::string_view source,
                                            const std::vector<std::string> &ids) = 0;
  // The ids of every document of `source` the sink holds (for pruning).
  [[nodiscard]] virtual absl::StatusOr<std::vector<std::string>> ListIds(
      absl::string_view source) = 0;
};

}  // namespace tessera::connectors

#endif  // TESSERA_CONNECTORS_CONNECTOR_H_
