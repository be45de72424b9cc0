#include "common/http/http_transport.h"

#include <algorithm>

#include "absl/strings/match.h"

namespace tessera {

void HttpHeaders::Set(std::string name, std::string value) {
  Remove(name);
  Add(std::move(name), std::move(value));
}

void HttpHeaders::Remove(absl::string_view name) {
  entries_.erase(
      std::remove_if(entries_.begin(), entries_.end(),
                     [name](const Entry& e) { return absl::EqualsIgnoreCase(e.first, name); }),
      entries_.end());
}

std::optional<std::string> HttpHeaders::Get(absl::string_view name) const {
  for (const Entry& e : entries_) {
    if (absl::EqualsIgnoreCase(e.first, name)) return e.second;
  }
  return std::nullopt;
}

std::vector<std::string> HttpHeaders::GetAll(absl::string_view name) const {
  std::vector<std::string> values;
  for (const Entry& e : entries_) {
    if (absl::EqualsIgnoreCase(e.first, name)) values.push_back(e.second);
  }
  return values;
}

bool HttpHeaders::Contains(absl::string_view name) const {
  return std::any_of(entries_.begin(), entries_.end(),
                     [name](const Entry& e) { return absl::EqualsIgnoreCase(e.first, name); });
}

}  // namespace tessera
