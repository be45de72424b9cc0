#include "connectors/auth/token_endpoint.h"

#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace tessera::connectors {
namespace {

using json = nlohmann::json;

std::string StringField(const json& doc, const char* key) {
  auto it = doc.find(key);
  if (it == doc.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

std::string Printable(std::string text) {
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  if (text.size() > 300) text = absl::StrCat(text.substr(0, 300), "...");
  return text;
}

}  // namespace

std::string FormUrlEncode(const FormFields& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out.push_back('&');
    for (const std::string* part : {&name, &value}) {
      for (unsigned char c : *part) {
        if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
          out.push_back(static_cast<char>(c));
        } else if (c == ' ') {
          out.push_back('+');
        } else {
          absl::StrAppendFormat(&out, "%%%02X", c);
        }
      }
      if (part == &name) out.push_back('=');
    }
  }
  return out;
}

absl::StatusOr<TokenResponse> RequestToken(RetryingHttpClient& client, Clock* clock,
                                           absl::string_view token_url, const FormFields& fields,
                                           const TokenErrorHints& hints) {
  HttpRequest request;
  request.method = "POST";
  request.url = std::string(token_url);
  request.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                     {"Accept", "application/json"}};
  request.body = FormUrlEncode(fields);
  const std::string where = absl::StrCat("token endpoint ", RedactUrl(token_url));

  absl::StatusOr<HttpResponse> sent = client.Send(request, {.idempotent = true});
  if (!sent.ok()) return Annotate(sent.status(), "requesting an access token");
  const HttpResponse& response = *sent;
  const json doc = json::parse(response.body, nullptr, /*allow_exceptions=*/false);

  if (response.status_code < 200 || response.status_code >= 300) {
    std::string error = doc.is_object() ? StringField(doc, "error") : "";
    std::string description = doc.is_object() ? Printable(StringField(doc, "error_description")) : "";
    const std::string server_says =
        description.empty() ? "" : absl::StrCat(" (server says: ", description, ")");
    if (error == "invalid_grant") {
      return absl::FailedPreconditionError(
          absl::StrCat(hints.invalid_grant, ": ", where, " answered invalid_grant", server_says));
    }
    if (error == "invalid_client") {
      return absl::UnauthenticatedError(absl::StrCat(
          where, " rejected the client credentials (invalid_client): check the client id and "
                 "its secret or certificate",
          server_says));
    }
    if (error == "unauthorized_client") {
      return absl::PermissionDeniedError(absl::StrCat(
          hints.unauthorized_client.empty() ? "the client is not authorised for this grant"
                                            : hints.unauthorized_client,
          ": ", where, " answered unauthorized_client", server_says));
    }
    if (error == "invalid_scope") {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " rejected the requested scopes (invalid_scope)", server_says));
    }
    absl::Status status = CheckHttpStatus(response, request.method, request.url);
    if (!error.empty()) {
      return absl::Status(status.code(),
                          absl::StrCat(status.message(), ": OAuth2 error ", error, server_says));
    }
    return status;
  }

  if (!doc.is_object()) {
    return absl::InternalError(absl::StrCat(where, " returned a malformed (non-JSON) answer"));
  }
  TokenResponse out;
  out.access.token = StringField(doc, "access_token");
  if (out.access.token.empty()) {
    return absl::InternalError(absl::StrCat(where, " returned no access_token"));
  }
  if (std::string type = StringField(doc, "token_type");
      !type.empty() && !absl::EqualsIgnoreCase(type, "bearer")) {
    return absl::InternalError(
        absl::StrCat(where, " returned a token of type '", Printable(type), "', not Bearer"));
  }
  // expires_in is RECOMMENDED (RFC 6749): a number, or a numeric string from
  // some Microsoft endpoints. Without it assume an hour, the common lifetime.
  int64_t expires_in = 3600;
  if (auto it = doc.find("expires_in"); it != doc.end()) {
    if (it->is_number_integer()) {
      expires_in = it->get<int64_t>();
    } else if (it->is_number()) {
      expires_in = static_cast<int64_t>(it->get<double>());
    } else if (!it->is_string() || !absl::SimpleAtoi(it->get<std::string>(), &expires_in)) {
      return absl::InternalError(absl::StrCat(where, " returned a malformed expires_in"));
    }
    if (expires_in <= 0) {
      return absl::InternalError(
          absl::StrFormat("%s returned a token that expires in %d seconds", where, expires_in));
    }
  }
  out.access.expiry = clock->Now() + absl::Seconds(expires_in);
  out.refresh_token = StringField(doc, "refresh_token");
  return out;
}

}  // namespace tessera::connectors
