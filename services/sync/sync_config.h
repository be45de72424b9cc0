// SyncConfig: the connectors a sync daemon runs, read from a JSON file.
//
//   {"connectors": [{"id": "acme-drive", "type": "drive", "interval": "5m",
//                    "collection": "acme",
//                    "drive": {"api_base": "http://127.0.0.1:8080", "token": "..."}}]}
//
// Connector fields: id (required; 1..63 of [a-z0-9-], starting with a letter,
// unique: it keys the checkpoints, so renaming it means a full resync), type
// (required; "drive", "gmail" or "sharepoint"), interval (an absl duration: "90s", "5m", "1h"; default
// "15m"; at least 1s), collection (required; a retrieval collection name),
// enabled (default true), and the type's own object.
//
// "gmail": api_base (default "https://gmail.googleapis.com"; "/gmail/v1" is
// appended unless present), the credentials, mailboxes (required: the
// addresses to sync, or ["me"] for the token's own user), recipients_can_see
// (default false: a message is visible to its mailbox owner only),
// include_spam_trash, query (messages.list q for full listings), page_size,
// directory_customer ("my_customer" or a customer id: instead of mailboxes,
// sync every non-suspended user of the Admin SDK directory, re-read each
// round), directory_admin (required with directory_customer: the admin the
// directory call acts as; with a subject-less service account it is
// impersonated with the admin.directory.user.readonly scope while each
// mailbox is impersonated in turn), admin_api_base (default
// "https://admin.googleapis.com"; "/admin/directory/v1" is appended unless
// present).
//
// "sharepoint": api_base (default "https://graph.microsoft.com/v1.0"), the credentials (usually
// "microsoft"), tenant_domain (what "organization" links grant), site_ids or drive_ids (default: every
// site's document libraries), page_size, max_file_bytes, include_pages (default true: each site's
// pages too, as "pages:<site id>" scopes; ACL = the default library root's permissions).
//
// "drive": api_base (default "https://www.googleapis.com"; "/drive/v3" is
// appended unless present), the credentials (see CredentialConfig), folder_ids,
// include_my_drive / include_shared_with_me / include_shared_drives (default
// true), page_size (default 100).
//
// Unknown keys and wrong types are errors. Every error is INVALID_ARGUMENT
// and names the file and the field, e.g. "sync.json: connectors[0].interval:
// bad duration \"5 minutes\" (use e.g. 90s, 5m, 1h)".
#ifndef TESSERA_SERVICES_SYNC_SYNC_CONFIG_H_
#define TESSERA_SERVICES_SYNC_SYNC_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/file_system.h"
#include "connectors/drive/drive_connector.h"
#include "connectors/gmail/gmail_connector.h"
#include "connectors/sharepoint/sharepoint_connector.h"

namespace tessera::sync {

// How a connector gets its access tokens: exactly one of
//   "token" / "token_env": a static bearer token (or the variable holding one);
//   "oauth": {"client_id", "client_secret_env", "refresh_token_env", "token_url"?, "scopes"?}:
//            the OAuth2 refresh-token flow (refreshed as needed, on 401 once);
//   "service_account": {"key_file", "subject"?, "scopes", "token_url"?}: a Google service account
//            (JWT RS256), impersonating `subject` by domain-wide delegation; for Gmail, each
//            mailbox is impersonated in turn when subject is empty;
//   "microsoft": {"tenant_id", "client_id", "client_secret_env" | "certificate_file" +
//            "private_key_file", "token_url"?}: Microsoft Entra client credentials (SharePoint).
// Secrets come from the environment, never from the file.
struct CredentialConfig {
  enum class Kind { kStaticToken, kOAuthRefresh, kServiceAccount, kMicrosoft };
  Kind kind = Kind::kStaticToken;
  std::string token;  // kStaticToken, resolved
  std::string client_id, client_secret, refresh_token;  // kOAuthRefresh, resolved
  std::string key_file;  // kServiceAccount
  std::string subject;
  std::string tenant_id;  // kMicrosoft (client_id and client_secret above)
  std::string certificate_file, private_key_file;
  std::vector<std::string> scopes;
  std::string token_url;  // optional override
};

// Each connector's own options, as its JSON object sets them, plus its credentials. (The connector
// options are used as they are, so a new option is added once, in the connector.)
struct DriveSyncConfig {
  CredentialConfig auth;
  connectors::drive::DriveConnector::Options options;
};

struct GmailSyncConfig {
  CredentialConfig auth;
  connectors::gmail::GmailConnector::Options options;
};

struct SharePointSyncConfig {
  CredentialConfig auth;
  connectors::sharepoint::SharePointConnector::Options options;
};

struct ConnectorConfig {
  std::string id;
  std::string type;  // "drive"
  absl::Duration interval = absl::Minutes(15);
  std::string collection;
  bool enabled = true;
  DriveSyncConfig drive;
  GmailSyncConfig gmail;
  SharePointSyncConfig sharepoint;
};

struct SyncConfig {
  std::vector<ConnectorConfig> connectors;
};

struct SyncConfigParseOptions {
  // Read token_env's variable (an error when unset). Off for tools that only
  // edit or list the file (`tessera connector add|list`), which may run
  // where the daemon's environment is not; `token` then stays empty.
  bool resolve_token_env = true;
};

// Parses and validates `json`; `origin` (a file name) prefixes error messages.
[[nodiscard]] absl::StatusOr<SyncConfig> ParseSyncConfig(
    absl::string_view json, absl::string_view origin, const SyncConfigParseOptions &options = {});

// Parses and validates one connector object (an element of "connectors");
// errors name its fields from the top, e.g. "drive.json: interval: ...".
[[nodiscard]] absl::StatusOr<ConnectorConfig> ParseConnectorConfig(
    absl::string_view json, absl::string_view origin, const SyncConfigParseOptions &options = {});

// Reads `path` through `fs` and parses it. NOT_FOUND when it does not exist.
[[nodiscard]] absl::StatusOr<SyncConfig> LoadSyncConfig(absl::string_view path, FileSystem *fs,
                                                        const SyncConfigParseOptions &options = {});

}  // namespace tessera::sync

#endif  // TESSERA_SERVICES_SYNC_SYNC_CONFIG_H_
