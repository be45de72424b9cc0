// `tessera connector add|list`: manage the connectors file the sync daemon
// reads (--sync_config, see sync_config.h) and show what it last did.
//
//   tessera connector add KIND --config=FILE [--name=NAME] --sync_config=SYNC.json
//   tessera connector list --sync_config=SYNC.json [--sync_state_dir=DIR]
//
// add: FILE holds one connector object as in SYNC.json's "connectors" list
// ("type" may be left out: it is KIND; "id" may be left out when --name
// gives it). It is validated with sync_config's parser, so an error names the
// file and the field ("drive.json: interval: bad duration ..."), then checked
// against the connectors already there (a duplicate name is ALREADY_EXISTS;
// one collection per connector of a kind), and SYNC.json is replaced
// atomically (a temporary file, then rename; mode 0600: it may hold tokens).
// A missing SYNC.json is created. Tokens are never printed.
//
// list: one row per connector: name, kind, collection, schedule, and from the
// daemon's state dir (default SYNC.json + ".state", as `tessera sync` uses)
// the status and end of the last run, its seen / indexed / failed counts and
// its error (see sync_state.h).
//
// Exit codes: 0 ok, 1 an operational error (missing file, I/O), 2 a usage or
// configuration error (bad config, duplicate, unsupported kind).
#ifndef TESSERA_SERVICES_SYNC_CONNECTOR_COMMAND_H_
#define TESSERA_SERVICES_SYNC_CONNECTOR_COMMAND_H_

#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "services/sync/sync_config.h"
#include "services/sync/sync_state.h"

namespace tessera::sync {

struct ConnectorCommandOptions {
  std::string sync_config;  // the connectors file; required
  std::string state_dir;    // list: default SYNC_CONFIG + ".state"
  std::string kind;         // add: "drive"
  std::string config_path;  // add: the new connector's JSON
  std::string name;         // add: its id (overrides none; must agree with "id")
  // list: whether the daemon that wrote a "running" record is alive; null
  // means kill(pid, 0).
  std::function<bool(int64_t pid)> pid_alive;
};

int ConnectorAddCommand(const ConnectorCommandOptions &options, FILE *out, FILE *err);
int ConnectorListCommand(const ConnectorCommandOptions &options, FILE *out, FILE *err);

// One row of `connector list`: a configured connector and its run record.
struct ConnectorListRow {
  ConnectorConfig config;
  std::optional<SyncRunRecord> record;
  bool writer_alive = false;  // for a running record: its daemon is alive
};

// The table `connector list` prints (pure; times in UTC).
[[nodiscard]] std::string RenderConnectorTable(const std::vector<ConnectorListRow> &rows);

// `tessera connector add KIND --config=FILE` reuses the name of the global
// --config flag (a JSON file of flag values, common/config.h). main() calls
// this on argv before ParseFlagsAndConfig: when argv holds the words
// "connector add", it removes --config=FILE (or --config FILE) from argv,
// updates *argc and returns FILE; otherwise it returns "" and leaves argv.
[[nodiscard]] std::string TakeConnectorConfigArg(int *argc, char **argv);

}  // namespace tessera::sync

#endif  // TESSERA_SERVICES_SYNC_CONNECTOR_COMMAND_H_
