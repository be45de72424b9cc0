// `tessera sync`: runs the sync daemon against a running Tessera server.
//
//   tessera sync --sync_config=FILE.json [--server=HOST:PORT] [--key_file=F]
//                [--sync_state_dir=DIR] [--once]
//
// Reads the connectors from FILE (see sync_config.h), connects to the
// server's RetrievalService with an admin key, creates missing collections,
// and runs every connector now and then on its interval, printing one line
// per event to `out`:
//   acme-drive: started
//   acme-drive: page 1: seen=12 indexed=11 deleted=0 failed=1
//   acme-drive:   failed 1AbC (Budget.xlsx): INVALID_ARGUMENT: ...
//   acme-drive: done (full sync): pages=3 seen=40 indexed=38 deleted=1 failed=1 in 1.2s
//   acme-drive: FAILED after 0.3s: UNAVAILABLE: ...
// Progress (see progress_display.h): when stderr is a terminal, a live block
// of one line per source (seen / indexed / failed / rate) is redrawn in place
// on it, and the per-page lines are left out; otherwise a plain
// "progress: ..." line per active source goes to stderr every
// `progress_interval`.
// With `once`, runs each connector once and returns; otherwise runs until
// `wait_for_stop` returns (main passes a sigwait on SIGINT/SIGTERM).
#ifndef TESSERA_SERVICES_SYNC_SYNC_COMMAND_H_
#define TESSERA_SERVICES_SYNC_SYNC_COMMAND_H_

#include <cstdio>
#include <functional>
#include <string>

#include "absl/time/time.h"

namespace tessera::sync {

enum class ProgressMode {
  kAuto,      // terminal when stderr is a tty, else plain
  kTerminal,  // live in-place display on stderr
  kPlain,     // periodic plain lines on stderr
  kOff,       // event lines only
};

// Parses "auto", "tty", "plain" or "off"; false otherwise.
[[nodiscard]] bool ParseProgressMode(const std::string &text, ProgressMode *out);

struct SyncCommandOptions {
  std::string config_path;  // required
  std::string server = "127.0.0.1:7600";
  std::string key;        // an admin API key; required
  std::string tls_ca;     // PEM roots for a TLS server; empty = plaintext
  std::string state_dir;  // checkpoints; default: CONFIG_PATH + ".state"
  bool once = false;
  bool create_collections = true;
  std::function<void()> wait_for_stop;  // required unless `once`
  ProgressMode progress = ProgressMode::kAuto;
  absl::Duration progress_interval = absl::Seconds(10);  // plain mode
};

// Returns a process exit code: 0 ok, 1 a sync failed (with `once`) or could
// not start, 2 a usage or configuration error. Diagnostics go to `err`.
int SyncCommand(const SyncCommandOptions &options, FILE *out, FILE *err);

}  // namespace tessera::sync

#endif  // TESSERA_SERVICES_SYNC_SYNC_COMMAND_H_
