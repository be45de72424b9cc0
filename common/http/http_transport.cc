#include "common/http/http_transport.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

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

std::string RedactUrl(absl::string_view url) {
  size_t cut = url.find_first_of("?#");
  bool had_query = cut != absl::string_view::npos && url[cut] == '?';
  absl::string_view base = url.substr(0, cut);
  std::string out;
  size_t scheme_end = base.find("://");
  if (scheme_end == absl::string_view::npos) {
    out = std::string(base);
  } else {
    size_t authority_start = scheme_end + 3;
    size_t authority_end = std::min(base.find('/', authority_start), base.size());
    absl::string_view authority = base.substr(authority_start, authority_end - authority_start);
    if (size_t at = authority.rfind('@'); at != absl::string_view::npos) {
      authority.remove_prefix(at + 1);
    }
    out = absl::StrCat(base.substr(0, authority_start), authority, base.substr(authority_end));
  }
  if (had_query) out += "?<redacted>";
  return out;
}

}  // namespace tessera
