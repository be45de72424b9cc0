// Assembling a ChangePage from what a connector made of each changed item
// (and the document a fetch by id comes to).
//
// A change feed may name one item several times on a page (Drive's changes,
// Gmail's history, Graph's delta all do); only the last outcome for an id
// counts, so a page's upserts, deletes and failures name disjoint ids.
#ifndef TESSERA_CONNECTORS_FRAMEWORK_CHANGE_PAGE_H_
#define TESSERA_CONNECTORS_FRAMEWORK_CHANGE_PAGE_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "connectors/connector.h"

namespace tessera::connectors {

// What processing one changed item came to. The id is doc.id, or failure.id
// for a failure.
struct DocumentOutcome {
  enum Kind { kUpsert, kDelete, kSkip, kFailure } kind = kSkip;
  ConnectorDocument doc;  // kUpsert: the document; kDelete, kSkip: its id
  DocumentFailure failure;
};

// Records that downloading the item's content failed: NOT_FOUND means it
// vanished between listing and download (a delete); any other failure is the
// document's failure (`o->failure.id` and title as already set).
void SetDownloadFailure(absl::Status failure, DocumentOutcome *o);

// What fetching one document by id comes to: the document, the failure's
// status, or `gone` (a NOT_FOUND naming it) when the outcome is a delete or a
// skip.
[[nodiscard]] absl::StatusOr<ConnectorDocument> FetchedDocument(DocumentOutcome o,
                                                                absl::Status gone);

// Appends `outcomes` to `page` in order, keeping only the last outcome per id:
// upserts to page->upserts, deletes to page->deletes (the id), failures to
// page->failures; a last outcome that is a skip drops the id from the page.
void CollectLastPerId(std::vector<DocumentOutcome> outcomes, ChangePage *page);

}  // namespace tessera::connectors

#endif  // TESSERA_CONNECTORS_FRAMEWORK_CHANGE_PAGE_H_
