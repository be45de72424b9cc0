#include "connectors/testing/fake_api.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace tessera::connectors::testing {

std::string UrlDecode(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    int v = 0;
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && absl::SimpleHexAtoi(s.substr(i + 1, 2), &v)) {
      out.push_back(static_cast<char>(v));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::map<std::string, std::string> ParseQuery(absl::string_view query) {
  std::map<std::string, std::string> out;
  for (absl::string_view part : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(part, absl::MaxSplits('=', 1));
    out[UrlDecode(kv.first)] = UrlDecode(kv.second);
  }
  return out;
}

FakeHttpResponse JsonResponse(int status, const nlohmann::json &body,
                              absl::string_view content_type) {
  FakeHttpResponse r;
  r.status = status;
  r.headers.Add("Content-Type", std::string(content_type));
  r.body = body.dump();
  return r;
}

std::optional<std::string> BearerTokens::Authorize(const FakeHttpRequest &request) const {
  std::optional<std::string> auth = request.headers.Get("Authorization");
  if (!auth || !absl::StartsWith(*auth, "Bearer ")) return std::nullopt;
  std::string token = auth->substr(7);
  if (token.empty() || (!accepted_.empty() && !accepted_.count(token))) return std::nullopt;
  return token;
}

}  // namespace tessera::connectors::testing
