// In-memory Connector and DocumentSink for tests of the sync framework (and of
// anything that drives connectors): a source whose documents and change log a
// test edits directly, and a sink that records what it acknowledged.
//
// Thread-safe (one mutex each), so tests may mutate while a sync runs.
#ifndef TESSERA_CONNECTORS_FRAMEWORK_IN_MEMORY_H_
#define TESSERA_CONNECTORS_FRAMEWORK_IN_MEMORY_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "connectors/connector.h"

namespace tessera::connectors {

// A source with one scope ("main"). Checkpoints: "full:<seq>:<offset>" in the
// middle of a full listing, "inc:<seq>" afterwards, where <seq> is a position
// in the change log.
class InMemoryConnector : public Connector {
 public:
  explicit InMemoryConnector(size_t page_size = 2) : page_size_(page_size) {}

  // Mutations, each appended to the change log.
  void Put(ConnectorDocument doc);
  void Remove(const std::string &id);
  // A document that exists but fails to parse (reported as a failure).
  void PutBroken(const std::string &id);
  // Removes a document without logging a change (a missed delete event).
  void RemoveSilently(const std::string &id);

  std::string Source() const override { return "memory"; }
  absl::StatusOr<std::vector<std::string>> Scopes() override { return {{"main"}}; }
  absl::Status ValidateConfig() override { return absl::OkStatus(); }
  absl::Status FullSync(absl::string_view scope, const PageCallback &on_page) override;
  absl::Status IncrementalSync(absl::string_view scope, absl::string_view checkpoint,
                               const PageCallback &on_page) override;
  absl::StatusOr<std::vector<SlimDocument>> SlimListing(absl::string_view scope) override;
  absl::StatusOr<ConnectorDocument> FetchDocument(absl::string_view id) override;

 private:
  struct Entry {
    ConnectorDocument doc;
    bool broken = false;
  };
  absl::Status ListFrom(int64_t seq, size_t offset, const PageCallback &on_page);

  const size_t page_size_;
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> docs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> log_ ABSL_GUARDED_BY(mu_);  // ids changed, in order
};

// Records acknowledged documents per source.
class InMemorySink : public DocumentSink {
 public:
  absl::Status Upsert(absl::string_view source,
                      const std::vector<ConnectorDocument> &documents) override;
  absl::Status Delete(absl::string_view source, const std::vector<std::string> &ids) override;
  absl::StatusOr<std::vector<std::string>> ListIds(absl::string_view source) override;

  // The stored documents of `source`, by id.
  std::map<std::string, ConnectorDocument> Documents(absl::string_view source) const;
  // How many times each id was upserted (replays show up as counts > 1).
  std::map<std::string, int> UpsertCounts() const;
  // The next `n` Upsert calls fail with UNAVAILABLE without applying anything.
  void FailNextUpserts(int n);

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::map<std::string, ConnectorDocument>> docs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> upsert_counts_ ABSL_GUARDED_BY(mu_);
  int fail_upserts_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tessera::connectors

#endif  // TESSERA_CONNECTORS_FRAMEWORK_IN_MEMORY_H_
