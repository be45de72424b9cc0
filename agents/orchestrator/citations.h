// Sources and citations of one run: every knowledge-search hit the model is shown gets a number
// ([1], [2], ... across the whole run, the same chunk keeping its number), and the answer's
// markers are checked against that table, so that a citation always names a chunk retrieval
// really returned under the run's permissions. A marker naming no shown source is not cited.
#ifndef TESSERA_AGENTS_ORCHESTRATOR_CITATIONS_H_
#define TESSERA_AGENTS_ORCHESTRATOR_CITATIONS_H_

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "tessera/v1/common.pb.h"

namespace tessera::agents {

class SourceTable {
 public:
  // Numbers the hits (new chunks get the next numbers; chunks already shown keep theirs) and
  // returns each hit's number, in order.
  std::vector<int> Add(const std::vector<tessera::v1::SearchHit>& hits);

  // The hits as the model reads them: "[n] title (uri)\n<text>" blocks, each text cut at
  // `max_chars_per_hit` on a UTF-8 boundary.
  std::string FormatForModel(const std::vector<tessera::v1::SearchHit>& hits,
                             const std::vector<int>& numbers, size_t max_chars_per_hit = 1500) const;

  // The source numbered `n`, or null.
  [[nodiscard]] const tessera::v1::SearchHit* Get(int n) const;
  [[nodiscard]] tessera::v1::Citation CitationFor(int n) const;
  [[nodiscard]] size_t size() const { return hits_.size(); }

 private:
  std::vector<tessera::v1::SearchHit> hits_;  // number n at index n-1
  std::map<std::pair<std::string, std::string>, int> by_chunk_;  // (collection, chunk_id) -> n
};

// The citation markers of a text: "[1]", "[1][2]", "[1, 3]". Returns the numbers in order of
// first appearance, each once. Markers must be complete (closing bracket) to count.
std::vector<int> FindCitationMarkers(absl::string_view text);

// Watches an answer as it streams and reports each valid source the first time it is cited.
class CitationTracker {
 public:
  explicit CitationTracker(const SourceTable* sources) : sources_(sources) {}
  // `answer` is the whole answer so far. Returns the numbers cited for the first time.
  std::vector<int> Update(absl::string_view answer);
  // Numbers cited that name no shown source (the model made them up), in order.
  [[nodiscard]] const std::vector<int>& invalid() const { return invalid_; }
  [[nodiscard]] const std::vector<int>& cited() const { return cited_; }

 private:
  const SourceTable* sources_;
  std::set<int> seen_;
  std::vector<int> cited_;
  std::vector<int> invalid_;
};

// Cuts `text` to at most `max_bytes` without splitting a UTF-8 character.
std::string TruncateUtf8(absl::string_view text, size_t max_bytes);

}  // namespace tessera::agents

#endif  // TESSERA_AGENTS_ORCHESTRATOR_CITATIONS_H_
