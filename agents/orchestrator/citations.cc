#include "agents/orchestrator/citations.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tessera::agents {

std::vector<int> SourceTable::Add(const std::vector<tessera::v1::SearchHit>& hits) {
  std::vector<int> numbers;
  numbers.reserve(hits.size());
  for (const auto& hit : hits) {
    auto key = std::make_pair(hit.collection(), hit.chunk_id().empty() ? hit.document_id() : hit.chunk_id());
    auto it = by_chunk_.find(key);
    if (it != by_chunk_.end()) {
      numbers.push_back(it->second);
      continue;
    }
    hits_.push_back(hit);
    const int n = static_cast<int>(hits_.size());
    by_chunk_.emplace(std::move(key), n);
    numbers.push_back(n);
  }
  return numbers;
}

std::string SourceTable::FormatForModel(const std::vector<tessera::v1::SearchHit>& hits,
                                        const std::vector<int>& numbers, size_t max_chars_per_hit) const {
  if (hits.empty()) return "No documents matched this search (or none that this user may see).";
  std::string out;
  for (size_t i = 0; i < hits.size() && i < numbers.size(); ++i) {
    const auto& h = hits[i];
    absl::StrAppend(&out, i ? "\n\n" : "", "[", numbers[i], "] ", h.title().empty() ? h.external_id() : h.title());
    if (!h.heading().empty() && h.heading() != h.title()) absl::StrAppend(&out, " > ", h.heading());
    if (!h.uri().empty()) absl::StrAppend(&out, " (", h.uri(), ")");
    const std::string& body = h.text().empty() ? h.snippet() : h.text();
    std::string cut = TruncateUtf8(body, max_chars_per_hit);
    absl::StrAppend(&out, "\n", cut, cut.size() < body.size() ? " [...]" : "");
  }
  return out;
}

const tessera::v1::SearchHit* SourceTable::Get(int n) const {
  if (n < 1 || static_cast<size_t>(n) > hits_.size()) return nullptr;
  return &hits_[n - 1];
}

tessera::v1::Citation SourceTable::CitationFor(int n) const {
  tessera::v1::Citation c;
  const auto* h = Get(n);
  if (h == nullptr) return c;
  c.set_index(n);
  c.set_document_id(h->document_id());
  c.set_chunk_id(h->chunk_id());
  c.set_collection(h->collection());
  c.set_source(h->source());
  c.set_title(h->title());
  c.set_uri(h->uri());
  c.set_snippet(TruncateUtf8(h->snippet().empty() ? h->text() : h->snippet(), 300));
  return c;
}

std::vector<int> FindCitationMarkers(absl::string_view text) {
  std::vector<int> out;
  std::set<int> seen;
  size_t pos = 0;
  while ((pos = text.find('[', pos)) != absl::string_view::npos) {
    const size_t close = text.find(']', pos + 1);
    if (close == absl::string_view::npos) break;
    absl::string_view inner = text.substr(pos + 1, close - pos - 1);
    std::vector<int> nums;
    bool ok = !inner.empty() && inner.size() <= 40;
    if (ok) {
      for (absl::string_view part : absl::StrSplit(inner, ',')) {
        part = absl::StripAsciiWhitespace(part);
        int n = 0;
        if (part.empty() || part.size() > 4 || !std::all_of(part.begin(), part.end(), [](char ch) {
              return std::isdigit(static_cast<unsigned char>(ch));
            }) || !absl::SimpleAtoi(part, &n)) {
          ok = false;
          break;
        }
        nums.push_back(n);
      }
    }
    if (ok) {
      for (int n : nums) {
        if (seen.insert(n).second) out.push_back(n);
      }
      pos = close + 1;
    } else {
      pos = pos + 1;
    }
  }
  return out;
}

std::vector<int> CitationTracker::Update(absl::string_view answer) {
  std::vector<int> fresh;
  for (int n : FindCitationMarkers(answer)) {
    if (seen_.count(n)) continue;
    if (sources_ != nullptr && sources_->Get(n) != nullptr) {
      seen_.insert(n);
      cited_.push_back(n);
      fresh.push_back(n);
      invalid_.erase(std::remove(invalid_.begin(), invalid_.end(), n), invalid_.end());
    } else if (std::find(invalid_.begin(), invalid_.end(), n) == invalid_.end()) {
      invalid_.push_back(n);  // may still become valid when a later search shows source n
    }
  }
  return fresh;
}

std::string TruncateUtf8(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t end = max_bytes;
  // Step back over continuation bytes so the cut falls before a character's first byte.
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return std::string(text.substr(0, end));
}

}  // namespace tessera::agents
