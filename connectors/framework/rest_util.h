// What the REST connectors (Drive, Gmail, SharePoint) share when they read an
// API's responses: JSON accessors that never throw, RFC 3339 times, URL
// encoding, and the guard against a feed that keeps answering empty pages.
#ifndef TESSERA_CONNECTORS_FRAMEWORK_REST_UTIL_H_
#define TESSERA_CONNECTORS_FRAMEWORK_REST_UTIL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace tessera::connectors::rest {

// The only accessors used on parsed JSON: they never throw. A missing key, a
// value of another type, or `j` not being an object gives the empty value.
[[nodiscard]] std::string Str(const nlohmann::json &j, const char *key);
[[nodiscard]] bool Bool(const nlohmann::json &j, const char *key, bool def = false);
[[nodiscard]] int64_t Int(const nlohmann::json &j, const char *key);
[[nodiscard]] const nlohmann::json &Obj(const nlohmann::json &j, const char *key);
[[nodiscard]] const nlohmann::json &Arr(const nlohmann::json &j, const char *key);
// The string elements of the array `key`.
[[nodiscard]] std::vector<std::string> StrList(const nlohmann::json &j, const char *key);
// Whether `key` is present and not null.
[[nodiscard]] bool Has(const nlohmann::json &j, const char *key);

// An RFC 3339 time ("2023-11-14T22:13:20.000Z"); nullopt when empty or bad.
[[nodiscard]] std::optional<absl::Time> ParseRfc3339(const std::string &s);

// Percent-encodes all but the unreserved characters and those in `keep`.
[[nodiscard]] std::string UrlEncode(absl::string_view s, absl::string_view keep = "");

// How many empty pages in a row (each with a next page) a feed may answer
// before a sync gives up on it.
inline constexpr int kMaxEmptyPages = 100;

// Counts a page into `*empty_pages` (reset by a page with items);
// UNAVAILABLE, naming `api`, once more than kMaxEmptyPages came in a row.
[[nodiscard]] absl::Status CheckProgress(absl::string_view api, bool page_empty, int *empty_pages);

}  // namespace tessera::connectors::rest

#endif  // TESSERA_CONNECTORS_FRAMEWORK_REST_UTIL_H_
