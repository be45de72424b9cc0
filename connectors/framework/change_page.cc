#include "connectors/framework/change_page.h"

#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"

namespace tessera::connectors {

void SetDownloadFailure(absl::Status failure, DocumentOutcome *o) {
  if (failure.code() == absl::StatusCode::kNotFound) {
    o->kind = DocumentOutcome::kDelete;
  } else {
    o->kind = DocumentOutcome::kFailure;
    o->failure.status = std::move(failure);
  }
}

absl::StatusOr<ConnectorDocument> FetchedDocument(DocumentOutcome o, absl::Status gone) {
  switch (o.kind) {
    case DocumentOutcome::kUpsert:
      return std::move(o.doc);
    case DocumentOutcome::kFailure:
      return o.failure.status;
    case DocumentOutcome::kDelete:
    case DocumentOutcome::kSkip:
      break;
  }
  return gone;
}

void CollectLastPerId(std::vector<DocumentOutcome> outcomes, ChangePage *page) {
  auto id_of = [](const DocumentOutcome &o) -> const std::string & {
    return o.kind == DocumentOutcome::kFailure ? o.failure.id : o.doc.id;
  };
  absl::flat_hash_map<std::string, size_t> last;
  for (size_t i = 0; i < outcomes.size(); ++i) last[id_of(outcomes[i])] = i;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    DocumentOutcome &o = outcomes[i];
    if (last[id_of(o)] != i) continue;
    switch (o.kind) {
      case DocumentOutcome::kUpsert:
        page->upserts.push_back(std::move(o.doc));
        break;
      case DocumentOutcome::kDelete:
        page->deletes.push_back(std::move(o.doc.id));
        break;
      case DocumentOutcome::kFailure:
        page->failures.push_back(std::move(o.failure));
        break;
      case DocumentOutcome::kSkip:
        break;
    }
  }
}

}  // namespace tessera::connectors
