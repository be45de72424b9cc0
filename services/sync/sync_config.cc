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

class Parser {
 public:
  explicit Parser(absl::string_view origin) : origin_(origin) {}

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
    const std::string field = absl::StrCat(path, ".", key);
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
    if (!it->is_boolean()) return Error(absl::StrCat(path, ".", key), "must be true or false");
    *out = it->get<bool>();
    return absl::OkStatus();
  }

  absl::Status Drive(const Json &obj, absl::string_view path, DriveSyncConfig *out) const {
    if (!obj.is_object()) return Error(path, "must be an object");
    RETURN_IF_ERROR(OnlyKeys(obj, path,
                             {"api_base", "token", "token_env", "folder_ids", "include_my_drive",
                              "include_shared_with_me", "include_shared_drives", "page_size"}));
    std::string base = "https://www.googleapis.com";
    RETURN_IF_ERROR(String(obj, "api_base", path, &base, false));
    if (!absl::StartsWith(base, "http://") && !absl::StartsWith(base, "https://")) {
      return Error(absl::StrCat(path, ".api_base"), "must start with http:// or https://");
    }
    while (!base.empty() && base.back() == '/') base.pop_back();
    out->base_url = absl::EndsWith(base, "/drive/v3") ? base : absl::StrCat(base, "/drive/v3");
    std::string token, token_env;
    RETURN_IF_ERROR(String(obj, "token", path, &token, false));
    RETURN_IF_ERROR(String(obj, "token_env", path, &token_env, false));
    if (token.empty() == token_env.empty()) {
      return Error(absl::StrCat(path, ".token"), "set exactly one of token and token_env");
    }
    if (!token_env.empty()) {
      const char *v = std::getenv(token_env.c_str());
      if (v == nullptr || *v == '\0') {
        return Error(absl::StrCat(path, ".token_env"),
                     absl::StrCat("environment variable ", token_env, " is not set"));
      }
      token = v;
    }
    out->token = std::string(absl::StripAsciiWhitespace(token));
    if (auto it = obj.find("folder_ids"); it != obj.end()) {
      if (!it->is_array()) return Error(absl::StrCat(path, ".folder_ids"), "must be an array");
      for (size_t i = 0; i < it->size(); ++i) {
        const Json &v = (*it)[i];
        if (!v.is_string() || v.get<std::string>().empty()) {
          return Error(absl::StrCat(path, ".folder_ids[", i, "]"), "must be a non-empty string");
        }
        out->folder_ids.push_back(v.get<std::string>());
      }
    }
    RETURN_IF_ERROR(Bool(obj, "include_my_drive", path, &out->include_my_drive));
    RETURN_IF_ERROR(Bool(obj, "include_shared_with_me", path, &out->include_shared_with_me));
    RETURN_IF_ERROR(Bool(obj, "include_shared_drives", path, &out->include_shared_drives));
    if (auto it = obj.find("page_size"); it != obj.end()) {
      if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 1000) {
        return Error(absl::StrCat(path, ".page_size"), "must be an integer in [1, 1000]");
      }
      out->page_size = static_cast<int>(it->get<int64_t>());
    }
    return absl::OkStatus();
  }

  absl::Status Connector(const Json &obj, absl::string_view path, ConnectorConfig *out) const {
    if (!obj.is_object()) return Error(path, "must be an object");
    RETURN_IF_ERROR(
        OnlyKeys(obj, path, {"id", "type", "interval", "collection", "enabled", "drive"}));
    RETURN_IF_ERROR(String(obj, "id", path, &out->id, true));
    if (!ValidName(out->id)) {
      return Error(absl::StrCat(path, ".id"),
                   absl::StrCat("\"", out->id,
                                "\" must be 1 to 63 lowercase letters, digits and '-', starting "
                                "with a letter"));
    }
    RETURN_IF_ERROR(String(obj, "type", path, &out->type, true));
    if (out->type != "drive") {
      return Error(absl::StrCat(path, ".type"),
                   absl::StrCat("unsupported \"", out->type, "\"; supported: drive"));
    }
    std::string interval;
    RETURN_IF_ERROR(String(obj, "interval", path, &interval, false));
    if (!interval.empty()) {
      if (!absl::ParseDuration(interval, &out->interval)) {
        return Error(absl::StrCat(path, ".interval"),
                     absl::StrCat("bad duration \"", interval, "\" (use e.g. 90s, 5m, 1h)"));
      }
      if (out->interval < absl::Seconds(1)) {
        return Error(absl::StrCat(path, ".interval"), "must be at least 1s");
      }
    }
    RETURN_IF_ERROR(String(obj, "collection", path, &out->collection, true));
    if (!ValidName(out->collection)) {
      return Error(absl::StrCat(path, ".collection"),
                   absl::StrCat("\"", out->collection, "\" is not a collection name"));
    }
    RETURN_IF_ERROR(Bool(obj, "enabled", path, &out->enabled));
    auto drive = obj.find("drive");
    if (drive == obj.end()) return Error(absl::StrCat(path, ".drive"), "required for type drive");
    return Drive(*drive, absl::StrCat(path, ".drive"), &out->drive);
  }

 private:
  const std::string origin_;
};

}  // namespace

absl::StatusOr<SyncConfig> ParseSyncConfig(absl::string_view json, absl::string_view origin) {
  Parser p(origin);
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
      return p.Error(absl::StrCat(path, ".id"), absl::StrCat("duplicate id \"", c.id, "\""));
    }
    // Documents are keyed by (collection, source, id): two connectors of one
    // type filling one collection would overwrite and prune each other.
    if (!targets.insert(absl::StrCat(c.type, "\n", c.collection)).second) {
      return p.Error(absl::StrCat(path, ".collection"),
                     absl::StrCat("another ", c.type, " connector already fills \"", c.collection,
                                  "\"; use one collection per connector of a type"));
    }
    config.connectors.push_back(std::move(c));
  }
  return config;
}

absl::StatusOr<SyncConfig> LoadSyncConfig(absl::string_view path, FileSystem *fs) {
  ASSIGN_OR_RETURN(std::string text, fs->ReadFile(path, 4 << 20));
  return ParseSyncConfig(text, path);
}

}  // namespace tessera::sync
