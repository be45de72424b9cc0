// Request and response plumbing the fake API servers (Drive, Gmail, Graph)
// share: query-string decoding, JSON responses and bearer-token checks.
#ifndef TESSERA_CONNECTORS_TESTING_FAKE_API_H_
#define TESSERA_CONNECTORS_TESTING_FAKE_API_H_

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "common/http/fake_http_server.h"
#include "nlohmann/json.hpp"

namespace tessera::connectors::testing {

// Percent-decodes `s`, with '+' as a space (application/x-www-form-urlencoded).
[[nodiscard]] std::string UrlDecode(absl::string_view s);

// "a=1&b=x%20y" -> {a: "1", b: "x y"}; a repeated key keeps its last value.
[[nodiscard]] std::map<std::string, std::string> ParseQuery(absl::string_view query);

inline constexpr absl::string_view kJsonContentType = "application/json; charset=UTF-8";

// A response with `body` serialised as JSON.
[[nodiscard]] FakeHttpResponse JsonResponse(int status, const nlohmann::json &body,
                                            absl::string_view content_type = kJsonContentType);

// The bearer tokens a fake API accepts. Until a token is accepted explicitly
// any non-empty bearer passes; from then on only the accepted ones do, so a
// test can expire the current token mid-sync. Not thread-safe: the fake
// guards it with its own mutex.
class BearerTokens {
 public:
  void Accept(std::string token) { accepted_.insert(std::move(token)); }
  void Expire(absl::string_view token) { accepted_.erase(std::string(token)); }

  // The token of the request's "Authorization: Bearer <token>" when it is
  // acceptable; nullopt otherwise (answer 401).
  [[nodiscard]] std::optional<std::string> Authorize(const FakeHttpRequest &request) const;

 private:
  std::set<std::string> accepted_;
};

}  // namespace tessera::connectors::testing

#endif  // TESSERA_CONNECTORS_TESTING_FAKE_API_H_
