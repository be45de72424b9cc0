#include "connectors/testing/convergence.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tessera::connectors::testing {

absl::Status CrashingSink::Upsert(absl::string_view source,
                                  const std::vector<ConnectorDocument> &documents) {
  absl::Status s = inner_->Upsert(source, documents);
  return s.ok() ? Tick() : s;
}

absl::Status CrashingSink::Delete(absl::string_view source, const std::vector<std::string> &ids) {
  absl::Status s = inner_->Delete(source, ids);
  return s.ok() ? Tick() : s;
}

absl::StatusOr<std::vector<std::string>> CrashingSink::ListIds(absl::string_view source) {
  return inner_->ListIds(source);
}

absl::Status CrashingSink::Tick() {
  if (countdown_ > 0 && --countdown_ == 0) return absl::UnavailableError("sink crashed");
  return absl::OkStatus();
}

std::string DescribeDocument(const ConnectorDocument &d) {
  std::vector<std::string> texts;
  for (const DocumentSection &s : d.sections) texts.push_back(absl::StrCat(s.heading, "|", s.text));
  return absl::StrCat("{id=", d.id, " title=", d.title, " uri=", d.uri, " mime=", d.mime_type,
                      " text=[", absl::StrJoin(texts, ";"), "] acl=[", absl::StrJoin(d.acl, ","),
                      "]}");
}

bool SameIndexedDocument(const ConnectorDocument &a, const ConnectorDocument &b) {
  if (a.id != b.id || a.title != b.title || a.uri != b.uri || a.mime_type != b.mime_type ||
      a.acl != b.acl || a.sections.size() != b.sections.size()) {
    return false;
  }
  for (size_t i = 0; i < a.sections.size(); ++i) {
    if (a.sections[i].heading != b.sections[i].heading || a.sections[i].text != b.sections[i].text)
      return false;
  }
  return true;
}

std::string FirstIndexDifference(const std::map<std::string, ConnectorDocument> &want,
                                 const std::map<std::string, ConnectorDocument> &got) {
  std::set<std::string> ids;
  for (const auto &[id, d] : want) ids.insert(id);
  for (const auto &[id, d] : got) ids.insert(id);
  for (const std::string &id : ids) {
    auto w = want.find(id);
    auto g = got.find(id);
    if (w == want.end()) return absl::StrCat("index has extra ", DescribeDocument(g->second));
    if (g == got.end()) return absl::StrCat("index misses ", DescribeDocument(w->second));
    if (!SameIndexedDocument(w->second, g->second)) {
      return absl::StrCat("differs: want ", DescribeDocument(w->second), " got ",
                          DescribeDocument(g->second));
    }
  }
  return "";
}

std::string RoundContext(uint32_t seed, int round, const std::vector<std::string> &events) {
  return absl::StrCat("seed=", seed, " round=", round, " events: ", absl::StrJoin(events, "; "));
}

}  // namespace tessera::connectors::testing
