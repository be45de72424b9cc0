#include "services/sync/sync_config.h"

#include <cstdlib>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace tessera::sync {
namespace {

using Json = nlohmann::json;

// Collection and connector ids share retrieval's rule for collection names.
bool ValidName(absl::string_view s) {
  if (s.empty() || s.size() > 63 || !absl::ascii_islower(s[0])) return false;
  for (char c : s) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-') return false;
  }
  return true;
}

// "path.key", or "key" at the top level.
std::string Sub(absl::string_view path, absl::string_view key) {
  return path.empty() ? std::string(key) : absl::StrCat(path, ".", key);
}

class Parser {
 public:
  Parser(absl::string_view origin, const SyncConfigParseOptions &options)
      : origin_(origin), options_(options) {}

  absl::Status Error(absl::string_view field, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(origin_, ": ", field, ": ", what));
  }

  // Checks that `obj` has only `allowed` keys.
  absl::Status OnlyKeys(const Json &obj, absl::string_view path,
                        const std::set<std::string> &allowed) const {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      if (!allowed.contains(it.key())) {
        return Error(absl::StrCat(path, path.empty() ? "" : ".", it.key()), "unknown field");
      }
    }
    return absl::OkStatus();
  }

  absl::Status String(const Json &obj, const char *key, absl::string_view path, std::string *out,
                      bool required) const {
    const std::string field = Sub(path, key);
    auto it = obj.find(key);
    if (it == obj.end()) {
      return required ? Error(field, "required") : absl::OkStatus();
    }
    if (!it->is_string()) return Error(field, "must be a string");
    *out = it->get<std::string>();
    if (required && out->empty()) return Error(field, "must not be empty");
    return absl::OkStatus();
  }

  absl::Status Bool(const Json &obj, const char *key, absl::string_view path, bool *out) const {
    auto it = obj.find(key);
    if (it == obj.end()) return absl::OkStatus();
    if (!it->is_boolean()) return Error(Sub(path, key), "must be true or false");
    *out = it->get<bool>();
    return absl::OkStatus();
  }

  // A secret from the environment variable named by obj[key] (required).
  absl::Status EnvSecret(const Json &obj, const char *key, absl::string_view path,
                         std::string *out) const {
    std::string var;
    RETURN_IF_ERROR(String(obj, key, path, &var, true));
    if (!options_.resolve_token_env) return absl::OkStatus();
    const char *v = std::getenv(var.c_str());
    if (v == nullptr || *v == '\0') {
      return Error(Sub(path, key), absl::StrCat("environment variable ", var, " is not set"));
    }
    *out = std::string(absl::StripAsciiWhitespace(v));
    return absl::OkStatus();
  }

  // The credentials: exactly one of token, token_env, oauth, service_account.
  absl::Status Credentials(const Json &obj, absl::string_view path, CredentialConfig *out) const {
    int given = 0;
    for (const char *k : {"token", "token_env", "oauth", "service_account", "microsoft"}) {
      given += obj.contains(k) ? 1 : 0;
    }
    if (given != 1) {
      return Error(Sub(path, "token"),
                   "set exactly one of token, token_env, oauth, service_account and microsoft");
    }
    if (auto it = obj.find("microsoft"); it != obj.end()) {
      const std::string p = Sub(path, "microsoft");
      if (!it->is_object()) return Error(p, "must be an object");
      RETURN_IF_ERROR(OnlyKeys(*it, p, {"tenant_id", "client_id", "client_secret_env", "certificate_file",
                                         "private_key_file", "token_url"}));
      out->kind = CredentialConfig::Kind::kMicrosoft;
      RETURN_IF_ERROR(String(*it, "tenant_id", p, &out->tenant_id, true));
      RETURN_IF_ERROR(String(*it, "client_id", p, &out->client_id, true));
      RETURN_IF_ERROR(String(*it, "certificate_file", p, &out->certificate_file, false));
      RETURN_IF_ERROR(String(*it, "private_key_file", p, &out->private_key_file, false));
      RETURN_IF_ERROR(String(*it, "token_url", p, &out->token_url, false));
      const bool secret = it->contains("client_secret_env");
      const bool cert = !out->certificate_file.empty() || !out->private_key_file.empty();
      if (secret == cert || (cert && (out->certificate_file.empty() || out->private_key_file.empty()))) {
        return Error(p, "set client_secret_env, or certificate_file with private_key_file");
      }
      if (secret) RETURN_IF_ERROR(EnvSecret(*it, "client_secret_env", p, &out->client_secret));
      return absl::OkStatus();
    }
    if (obj.contains("token")) {
      RETURN_IF_ERROR(String(obj, "token", path, &out->token, true));
      out->token = std::string(absl::StripAsciiWhitespace(out->token));
      return absl::OkStatus();
    }
    if (obj.contains("token_env")) return EnvSecret(obj, "token_env", path, &out->token);
    if (auto it = obj.find("oauth"); it != obj.end()) {
      const std::string p = Sub(path, "oauth");
      if (!it->is_object()) return Error(p, "must be an object");
      RETURN_IF_ERROR(OnlyKeys(*it, p, {"client_id", "client_secret_env", "refresh_token_env", "token_url", "scopes"}));
      out->kind = CredentialConfig::Kind::kOAuthRefresh;
      RETURN_IF_ERROR(String(*it, "client_id", p, &out->client_id, true));
      if (it->contains("client_secret_env")) RETURN_IF_ERROR(EnvSecret(*it, "client_secret_env", p, &out->client_secret));
      RETURN_IF_ERROR(EnvSecret(*it, "refresh_token_env", p, &out->refresh_token));
      RETURN_IF_ERROR(String(*it, "token_url", p, &out->token_url, false));
      return StringList(*it, "scopes", p, &out->scopes);
    }
    const Json &sa = obj["service_account"];
    const std::string p = Sub(path, "service_account");
    if (!sa.is_object()) return Error(p, "must be an object");
    RETURN_IF_ERROR(OnlyKeys(sa, p, {"key_file", "subject", "scopes", "token_url"}));
    out->kind = CredentialConfig::Kind::kServiceAccount;
    RETURN_IF_ERROR(String(sa, "key_file", p, &out->key_file, true));
    RETURN_IF_ERROR(String(sa, "subject", p, &out->subject, false));
    RETURN_IF_ERROR(String(sa, "token_url", p, &out->token_url, false));
    RETURN_IF_ERROR(StringList(sa, "scopes", p, &out->scopes));
    if (out->scopes.empty()) return Error(Sub(p, "scopes"), "at least one scope is required");
    return absl::OkStatus();
  }

  // An http(s) base URL with `suffix` appended unless present.
  absl::Status ApiBase(const Json &obj, absl::string_view path, std::string base,
                       absl::string_view suffix, std::string *out,
                       const char *key = "api_base") const {
    RETURN_IF_ERROR(String(obj, key, path, &base, false));
    if (!absl::StartsWith(base, "http://") && !absl::StartsWith(base, "https://")) {
      return Error(Sub(path, key), "must start with http:// or https://");
    }
    while (!base.empty() && base.back() == '/') base.pop_back();
    *out = absl::EndsWith(base, suffix) ? base : absl::StrCat(base, suffix);
    return absl::OkStatus();
  }

  absl::Status PageSize(const Json &obj, absl::string_view path, int max, int *out) const {
    if (auto it = obj.find("page_size"); it != obj.end()) {
      if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > max) {
        return Error(Sub(path, "page_size"), absl::StrCat("must be an integer in [1, ", max, "]"));
      }
      *out = static_cast<int>(it->get<int64_t>());
    }
    return absl::OkStatus();
  }

  absl::Status StringList(const Json &obj, const char *key, absl::string_view path,
                          std::vector<std::string> *out) const {
    if (auto it = obj.find(key); it != obj.end()) {
      if (!it->is_array()) return Error(Sub(path, key), "must be an array");
      out->clear();
      for (size_t i = 0; i < it->size(); ++i) {
        const Json &v = (*it)[i];
        if (!v.is_string() || v.get<std::string>().empty()) {
          return Error(absl::StrCat(Sub(path, key), "[", i, "]"), "must be a non-empty string");
        }
        out->push_back(v.get<std::string>());
      }
    }
    return absl::OkStatus();
  }

  absl::Status Gmail(const Json &obj, absl::string_view path, GmailSyncConfig *out) const {
    if (!obj.is_object()) return Error(path, "must be an object");
    RETURN_IF_ERROR(OnlyKeys(obj, path,
                             {"api_base", "token", "token_env", "oauth", "service_account", "mailboxes",
                              "recipients_can_see", "include_spam_trash", "query", "page_size",
                              "directory_customer", "directory_admin", "admin_api_base"}));
    RETURN_IF_ERROR(ApiBase(obj, path, "https://gmail.googleapis.com", "/gmail/v1", &out->options.base_url));
    RETURN_IF_ERROR(ApiBase(obj, path, "https://admin.googleapis.com", "/admin/directory/v1",
                            &out->options.admin_base_url, "admin_api_base"));
    RETURN_IF_ERROR(Credentials(obj, path, &out->auth));
    out->options.mailboxes.clear();  // the config has no default: a list or the directory
    RETURN_IF_ERROR(StringList(obj, "mailboxes", path, &out->options.mailboxes));
    RETURN_IF_ERROR(String(obj, "directory_customer", path, &out->options.directory_customer, false));
    RETURN_IF_ERROR(String(obj, "directory_admin", path, &out->options.directory_admin, false));
    if (!out->options.directory_customer.empty()) {
      if (!out->options.mailboxes.empty()) {
        return Error(Sub(path, "mailboxes"),
                     "must be absent with directory_customer (the directory lists the mailboxes)");
      }
      if (out->options.directory_admin.find('@') == std::string::npos) {
        return Error(Sub(path, "directory_admin"),
                     "required with directory_customer: the address of an administrator the "
                     "directory call acts as");
      }
    } else if (out->options.mailboxes.empty()) {
      return Error(Sub(path, "mailboxes"), "must not be empty (or set directory_customer)");
    }
    RETURN_IF_ERROR(Bool(obj, "recipients_can_see", path, &out->options.recipients_can_see));
    RETURN_IF_ERROR(Bool(obj, "include_spam_trash", path, &out->options.include_spam_trash));
    RETURN_IF_ERROR(String(obj, "query", path, &out->options.query, false));
    return PageSize(obj, path, 500, &out->options.page_size);
  }

  absl::Status SharePoint(const Json &obj, absl::string_view path, SharePointSyncConfig *out) const {
    if (!obj.is_object()) return Error(path, "must be an object");
    RETURN_IF_ERROR(OnlyKeys(obj, path,
                             {"api_base", "token", "token_env", "oauth", "service_account", "microsoft",
                              "tenant_domain", "site_ids", "drive_ids", "page_size", "max_file_bytes",
                              "include_pages"}));
    RETURN_IF_ERROR(Bool(obj, "include_pages", path, &out->options.include_pages));
    RETURN_IF_ERROR(ApiBase(obj, path, "https://graph.microsoft.com", "/v1.0", &out->options.base_url));
    RETURN_IF_ERROR(Credentials(obj, path, &out->auth));
    RETURN_IF_ERROR(String(obj, "tenant_domain", path, &out->options.tenant_domain, false));
    RETURN_IF_ERROR(StringList(obj, "site_ids", path, &out->options.site_ids));
    RETURN_IF_ERROR(StringList(obj, "drive_ids", path, &out->options.drive_ids));
    if (auto it = obj.find("max_file_bytes"); it != obj.end()) {
      if (!it->is_number_integer() || it->get<int64_t>() < 1) {
        return Error(Sub(path, "max_file_bytes"), "must be a positive integer");
      }
      out->options.max_file_bytes = it->get<int64_t>();
    }
    return PageSize(obj, path, 999, &out->options.page_size);
  }

  absl::Status Drive(const Json &obj, absl::string_view path, DriveSyncConfig *out) const {
    if (!obj.is_object()) return Error(path, "must be an object");
    RETURN_IF_ERROR(OnlyKeys(obj, path,
                             {"api_base", "token", "token_env", "oauth", "service_account", "folder_ids",
                              "include_my_drive",
                              "include_shared_with_me", "include_shared_drives", "page_size"}));
    RETURN_IF_ERROR(ApiBase(obj, path, "https://www.googleapis.com", "/drive/v3", &out->options.base_url));
    RETURN_IF_ERROR(Credentials(obj, path, &out->auth));
    RETURN_IF_ERROR(StringList(obj, "folder_ids", path, &out->options.folder_ids));
    RETURN_IF_ERROR(Bool(obj, "include_my_drive", path, &out->options.include_my_drive));
    RETURN_IF_ERROR(Bool(obj, "include_shared_with_me", path, &out->options.include_shared_with_me));
    RETURN_IF_ERROR(Bool(obj, "include_shared_drives", path, &out->options.include_shared_drives));
    return PageSize(obj, path, 1000, &out->options.page_size);
  }

  absl::Status Connector(const Json &obj, absl::string_view path, ConnectorConfig *out) const {
    if (!obj.is_object()) return Error(path, "must be an object");
    RETURN_IF_ERROR(
        OnlyKeys(obj, path, {"id", "type", "interval", "collection", "enabled", "drive", "gmail",
                                         "sharepoint"}));
    RETURN_IF_ERROR(String(obj, "id", path, &out->id, true));
    if (!ValidName(out->id)) {
      return Error(Sub(path, "id"),
                   absl::StrCat("\"", out->id,
                                "\" must be 1 to 63 lowercase letters, digits and '-', starting "
                                "with a letter"));
    }
    RETURN_IF_ERROR(String(obj, "type", path, &out->type, true));
    if (out->type != "drive" && out->type != "gmail" && out->type != "sharepoint") {
      return Error(Sub(path, "type"),
                   absl::StrCat("unsupported \"", out->type, "\"; supported: drive, gmail, sharepoint"));
    }
    std::string interval;
    RETURN_IF_ERROR(String(obj, "interval", path, &interval, false));
    if (!interval.empty()) {
      if (!absl::ParseDuration(interval, &out->interval)) {
        return Error(Sub(path, "interval"),
                     absl::StrCat("bad duration \"", interval, "\" (use e.g. 90s, 5m, 1h)"));
      }
      if (out->interval < absl::Seconds(1)) {
        return Error(Sub(path, "interval"), "must be at least 1s");
      }
    }
    RETURN_IF_ERROR(String(obj, "collection", path, &out->collection, true));
    if (!ValidName(out->collection)) {
      return Error(Sub(path, "collection"),
                   absl::StrCat("\"", out->collection, "\" is not a collection name"));
    }
    RETURN_IF_ERROR(Bool(obj, "enabled", path, &out->enabled));
    for (const char *other : {"drive", "gmail", "sharepoint"}) {
      if (other != out->type && obj.contains(other)) {
        return Error(Sub(path, other), absl::StrCat("not allowed for type ", out->type));
      }
    }
    auto own = obj.find(out->type);
    if (own == obj.end()) return Error(Sub(path, out->type), absl::StrCat("required for type ", out->type));
    if (out->type == "gmail") return Gmail(*own, Sub(path, "gmail"), &out->gmail);
    if (out->type == "sharepoint") return SharePoint(*own, Sub(path, "sharepoint"), &out->sharepoint);
    return Drive(*own, Sub(path, "drive"), &out->drive);
  }

 private:
  const std::string origin_;
  const SyncConfigParseOptions options_;
};

}  // namespace

absl::StatusOr<ConnectorConfig> ParseConnectorConfig(absl::string_view json,
                                                     absl::string_view origin,
                                                     const SyncConfigParseOptions &options) {
  Parser p(origin, options);
  Json root = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": not valid JSON"));
  }
  ConnectorConfig c;
  if (!root.is_object()) return p.Error("(top level)", "must be an object");
  RETURN_IF_ERROR(p.Connector(root, "", &c));
  return c;
}

absl::StatusOr<SyncConfig> ParseSyncConfig(absl::string_view json, absl::string_view origin,
                                           const SyncConfigParseOptions &options) {
  Parser p(origin, options);
  Json root = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": not valid JSON"));
  }
  if (!root.is_object()) return p.Error("(top level)", "must be an object");
  RETURN_IF_ERROR(p.OnlyKeys(root, "", {"connectors"}));
  auto list = root.find("connectors");
  if (list == root.end()) return p.Error("connectors", "required");
  if (!list->is_array()) return p.Error("connectors", "must be an array");
  SyncConfig config;
  std::set<std::string> ids;
  std::set<std::string> targets;
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string path = absl::StrCat("connectors[", i, "]");
    ConnectorConfig c;
    RETURN_IF_ERROR(p.Connector((*list)[i], path, &c));
    if (!ids.insert(c.id).second) {
      return p.Error(Sub(path, "id"), absl::StrCat("duplicate id \"", c.id, "\""));
    }
    // Documents are keyed by (collection, source, id): two connectors of one
    // type filling one collection would overwrite and prune each other.
    if (!targets.insert(absl::StrCat(c.type, "\n", c.collection)).second) {
      return p.Error(Sub(path, "collection"),
                     absl::StrCat("another ", c.type, " connector already fills \"", c.collection,
                                  "\"; use one collection per connector of a type"));
    }
    config.connectors.push_back(std::move(c));
  }
  return config;
}

absl::StatusOr<SyncConfig> LoadSyncConfig(absl::string_view path, FileSystem *fs,
                                          const SyncConfigParseOptions &options) {
  ASSIGN_OR_RETURN(std::string text, fs->ReadFile(path, 4 << 20));
  return ParseSyncConfig(text, path, options);
}

}  // namespace tessera::sync
