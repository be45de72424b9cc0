#include "connectors/framework/sync_runner.h"

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status.h"

namespace tessera::connectors {

SyncRunner::SyncRunner(Connector *connector, DocumentSink *sink, SqliteCheckpointStore *checkpoints,
                       Options options)
    : connector_(connector), sink_(sink), checkpoints_(checkpoints), options_(std::move(options)) {}

absl::Status SyncRunner::ApplyPage(absl::string_view scope, ChangePage page, SyncStats *stats) {
  ++stats->pages;
  stats->seen +=
      static_cast<int64_t>(page.upserts.size() + page.deletes.size() + page.failures.size());
  if (!page.deletes.empty()) {
    RETURN_IF_ERROR(Annotate(sink_->Delete(connector_->Source(), page.deletes), "sink delete"));
    stats->deleted += static_cast<int64_t>(page.deletes.size());
  }
  if (!page.upserts.empty()) {
    RETURN_IF_ERROR(Annotate(sink_->Upsert(connector_->Source(), page.upserts), "sink upsert"));
    stats->indexed += static_cast<int64_t>(page.upserts.size());
  }
  for (DocumentFailure &failure : page.failures) {
    ++stats->failed;
    TLOG(WARNING, "document skipped")
        .Field("connector", options_.connector_id)
        .Field("scope", scope)
        .Field("id", failure.id)
        .Field("status", failure.status.ToString());
    if (stats->failures.size() < options_.max_reported_failures) {
      stats->failures.push_back(std::move(failure));
    }
  }
  if (options_.before_commit) RETURN_IF_ERROR(options_.before_commit(page));
  if (page.checkpoint.empty()) {
    return absl::InternalError(
        absl::StrCat("connector ", connector_->Source(), " emitted a page without a checkpoint"));
  }
  RETURN_IF_ERROR(Annotate(checkpoints_->Put(options_.connector_id, scope, page.checkpoint),
                           "commit checkpoint"));
  if (page.full_listing_done && options_.prune_after_full_listing) {
    ASSIGN_OR_RETURN(int64_t pruned, Prune());
    stats->pruned += pruned;
    stats->deleted += pruned;
  }
  return absl::OkStatus();
}

absl::StatusOr<SyncStats> SyncRunner::SyncScope(absl::string_view scope) {
  SyncStats stats;
  ASSIGN_OR_RETURN(std::optional<std::string> checkpoint,
                   checkpoints_->Get(options_.connector_id, scope));
  PageCallback on_page = [&](ChangePage page) {
    if (page.full_listing_done) stats.full_sync = true;
    return ApplyPage(scope, std::move(page), &stats);
  };
  absl::Status status;
  if (!checkpoint.has_value()) {
    stats.full_sync = true;
    status = connector_->FullSync(scope, on_page);
  } else {
    status = connector_->IncrementalSync(scope, *checkpoint, on_page);
  }
  TLOG(INFO, "sync finished")
      .Field("connector", options_.connector_id)
      .Field("scope", scope)
      .Field("pages", stats.pages)
      .Field("seen", stats.seen)
      .Field("indexed", stats.indexed)
      .Field("deleted", stats.deleted)
      .Field("failed", stats.failed)
      .Field("status", status.ToString());
  RETURN_IF_ERROR(status);
  return stats;
}

absl::StatusOr<SyncStats> SyncRunner::SyncAll() {
  ASSIGN_OR_RETURN(std::vector<std::string> scopes, connector_->Scopes());
  SyncStats total;
  for (const std::string &scope : scopes) {
    ASSIGN_OR_RETURN(SyncStats stats, SyncScope(scope));
    total.pages += stats.pages;
    total.seen += stats.seen;
    total.indexed += stats.indexed;
    total.deleted += stats.deleted;
    total.pruned += stats.pruned;
    total.failed += stats.failed;
    total.full_sync = total.full_sync || stats.full_sync;
    for (DocumentFailure &f : stats.failures) {
      if (total.failures.size() < options_.max_reported_failures) {
        total.failures.push_back(std::move(f));
      }
    }
  }
  return total;
}

absl::StatusOr<int64_t> SyncRunner::Prune() {
  ASSIGN_OR_RETURN(std::vector<std::string> scopes, connector_->Scopes());
  absl::flat_hash_set<std::string> live;
  for (const std::string &scope : scopes) {
    ASSIGN_OR_RETURN(std::vector<SlimDocument> slim, connector_->SlimListing(scope));
    for (SlimDocument &doc : slim) live.insert(std::move(doc.id));
  }
  ASSIGN_OR_RETURN(std::vector<std::string> held, sink_->ListIds(connector_->Source()));
  std::vector<std::string> stale;
  for (std::string &id : held) {
    if (!live.contains(id)) stale.push_back(std::move(id));
  }
  if (!stale.empty()) {
    RETURN_IF_ERROR(Annotate(sink_->Delete(connector_->Source(), stale), "sink delete (prune)"));
  }
  TLOG(INFO, "prune finished")
      .Field("connector", options_.connector_id)
      .Field("held", static_cast<int64_t>(held.size()))
      .Field("live", static_cast<int64_t>(live.size()))
      .Field("pruned", static_cast<int64_t>(stale.size()));
  return static_cast<int64_t>(stale.size());
}

}  // namespace tessera::connectors
