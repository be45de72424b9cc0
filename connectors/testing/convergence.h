// What the connectors' randomised convergence tests (Drive, Gmail,
// SharePoint) share: a sink that crashes on cue, the comparison of the index
// with the oracle, and the context a failure prints.
#ifndef TESSERA_CONNECTORS_TESTING_CONVERGENCE_H_
#define TESSERA_CONNECTORS_TESTING_CONVERGENCE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "connectors/connector.h"

namespace tessera::connectors::testing {

// Forwards to `inner`; when armed, the `fail_at`-th call from then on applies
// the change and then fails (the acknowledgement is lost: a crash).
class CrashingSink : public DocumentSink {
 public:
  explicit CrashingSink(DocumentSink *inner) : inner_(inner) {}
  void Arm(int fail_at) { countdown_ = fail_at; }
  void Disarm() { countdown_ = -1; }

  absl::Status Upsert(absl::string_view source,
                      const std::vector<ConnectorDocument> &documents) override;
  absl::Status Delete(absl::string_view source, const std::vector<std::string> &ids) override;
  absl::StatusOr<std::vector<std::string>> ListIds(absl::string_view source) override;

 private:
  absl::Status Tick();

  DocumentSink *const inner_;
  int countdown_ = -1;
};

// A document's indexed fields on one line: id, title, uri, mime type,
// sections (heading|text) and ACL.
[[nodiscard]] std::string DescribeDocument(const ConnectorDocument &d);

// Whether two documents agree on id, title, uri, mime type, ACL and the
// sections' headings and texts.
[[nodiscard]] bool SameIndexedDocument(const ConnectorDocument &a, const ConnectorDocument &b);

// "" when `got` (the index, by id) equals `want` (the oracle); otherwise the
// first id, in order, that is extra, missing or different.
[[nodiscard]] std::string FirstIndexDifference(const std::map<std::string, ConnectorDocument> &want,
                                               const std::map<std::string, ConnectorDocument> &got);

// "seed=S round=R events: a; b; c": what a failing round prints.
[[nodiscard]] std::string RoundContext(uint32_t seed, int round,
                                       const std::vector<std::string> &events);

}  // namespace tessera::connectors::testing

#endif  // TESSERA_CONNECTORS_TESTING_CONVERGENCE_H_
