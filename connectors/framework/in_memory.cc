#include "connectors/framework/in_memory.h"

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

namespace tessera::connectors {

void InMemoryConnector::Put(ConnectorDocument doc) {
  absl::MutexLock lock(&mu_);
  log_.push_back(doc.id);
  std::string id = doc.id;
  docs_[id] = Entry{std::move(doc), false};
}

void InMemoryConnector::PutBroken(const std::string &id) {
  absl::MutexLock lock(&mu_);
  log_.push_back(id);
  Entry e;
  e.doc.id = id;
  e.broken = true;
  docs_[id] = std::move(e);
}

void InMemoryConnector::Remove(const std::string &id) {
  absl::MutexLock lock(&mu_);
  log_.push_back(id);
  docs_.erase(id);
}

void InMemoryConnector::RemoveSilently(const std::string &id) {
  absl::MutexLock lock(&mu_);
  docs_.erase(id);
}

absl::Status InMemoryConnector::ListFrom(int64_t seq, size_t offset, const PageCallback &on_page) {
  while (true) {
    ChangePage page;
    bool last;
    {
      absl::MutexLock lock(&mu_);
      auto it = docs_.begin();
      for (size_t i = 0; i < offset && it != docs_.end(); ++i) ++it;
      for (size_t n = 0; n < page_size_ && it != docs_.end(); ++n, ++it) {
        if (it->second.broken) {
          page.failures.push_back({it->first, "", absl::DataLossError("corrupt file")});
        } else {
          page.upserts.push_back(it->second.doc);
        }
      }
      offset += page_size_;
      last = it == docs_.end();
    }
    page.checkpoint = last ? absl::StrCat("inc:", seq) : absl::StrCat("full:", seq, ":", offset);
    page.full_listing_done = last;
    RETURN_IF_ERROR(on_page(std::move(page)));
    if (last) return absl::OkStatus();
  }
}

absl::Status InMemoryConnector::FullSync(absl::string_view, const PageCallback &on_page) {
  int64_t seq;
  {
    absl::MutexLock lock(&mu_);
    seq = static_cast<int64_t>(log_.size());
  }
  return ListFrom(seq, 0, on_page);
}

absl::Status InMemoryConnector::IncrementalSync(absl::string_view, absl::string_view checkpoint,
                                                const PageCallback &on_page) {
  std::vector<std::string> parts = absl::StrSplit(checkpoint, ':');
  int64_t seq = 0;
  size_t offset = 0;
  if (parts.size() == 3 && parts[0] == "full" && absl::SimpleAtoi(parts[1], &seq) &&
      absl::SimpleAtoi(parts[2], &offset)) {
    RETURN_IF_ERROR(ListFrom(seq, offset, on_page));
    return IncrementalSync("", absl::StrCat("inc:", seq), on_page);
  }
  if (parts.size() != 2 || parts[0] != "inc" || !absl::SimpleAtoi(parts[1], &seq)) {
    return absl::InvalidArgumentError(absl::StrCat("bad checkpoint '", checkpoint, "'"));
  }
  while (true) {
    ChangePage page;
    {
      absl::MutexLock lock(&mu_);
      if (seq >= static_cast<int64_t>(log_.size())) return absl::OkStatus();
      int64_t end = std::min<int64_t>(seq + static_cast<int64_t>(page_size_),
                                      static_cast<int64_t>(log_.size()));
      absl::flat_hash_map<std::string, bool> done;
      for (int64_t i = end - 1; i >= seq; --i) {  // last change of an id wins
        const std::string &id = log_[i];
        if (!done.emplace(id, true).second) continue;
        auto it = docs_.find(id);
        if (it == docs_.end()) {
          page.deletes.push_back(id);
        } else if (it->second.broken) {
          page.failures.push_back({id, "", absl::DataLossError("corrupt file")});
        } else {
          page.upserts.push_back(it->second.doc);
        }
      }
      seq = end;
    }
    page.checkpoint = absl::StrCat("inc:", seq);
    RETURN_IF_ERROR(on_page(std::move(page)));
  }
}

absl::StatusOr<std::vector<SlimDocument>> InMemoryConnector::SlimListing(absl::string_view) {
  absl::MutexLock lock(&mu_);
  std::vector<SlimDocument> out;
  for (const auto &[id, e] : docs_) out.push_back({id, e.doc.acl});
  return out;
}

absl::StatusOr<ConnectorDocument> InMemoryConnector::FetchDocument(absl::string_view id) {
  absl::MutexLock lock(&mu_);
  auto it = docs_.find(std::string(id));
  if (it == docs_.end()) return absl::NotFoundError(absl::StrCat("no document ", id));
  if (it->second.broken) return absl::DataLossError("corrupt file");
  return it->second.doc;
}

absl::Status InMemorySink::Upsert(absl::string_view source,
                                  const std::vector<ConnectorDocument> &documents) {
  absl::MutexLock lock(&mu_);
  if (fail_upserts_ > 0) {
    --fail_upserts_;
    return absl::UnavailableError("sink unavailable");
  }
  auto &docs = docs_[std::string(source)];
  for (const ConnectorDocument &d : documents) {
    docs[d.id] = d;
    ++upsert_counts_[d.id];
  }
  return absl::OkStatus();
}

absl::Status InMemorySink::Delete(absl::string_view source, const std::vector<std::string> &ids) {
  absl::MutexLock lock(&mu_);
  auto &docs = docs_[std::string(source)];
  for (const std::string &id : ids) docs.erase(id);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> InMemorySink::ListIds(absl::string_view source) {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto &[id, d] : docs_[std::string(source)]) out.push_back(id);
  return out;
}

std::map<std::string, ConnectorDocument> InMemorySink::Documents(absl::string_view source) const {
  absl::MutexLock lock(&mu_);
  auto it = docs_.find(std::string(source));
  return it == docs_.end() ? std::map<std::string, ConnectorDocument>() : it->second;
}

std::map<std::string, int> InMemorySink::UpsertCounts() const {
  absl::MutexLock lock(&mu_);
  return upsert_counts_;
}

void InMemorySink::FailNextUpserts(int n) {
  absl::MutexLock lock(&mu_);
  fail_upserts_ = n;
}

}  // namespace tessera::connectors
