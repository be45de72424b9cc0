// ProgressDisplay: what `tessera sync` shows while connectors run.
//
// The state (one ProgressRow per connector: seen / indexed / failed, the rate
// and what it is doing) is folded from the daemon's SyncProgress events by
// ProgressDisplay::Update. Rendering is a pure function of that state:
//
//   RenderProgressLines(rows, now)  one line per source, e.g.
//     acme-drive  running  seen 1200  indexed 1180  failed 3  deleted 17  41.2/s  0:29
//   RenderTerminalFrame(lines, n)   the bytes that replace the previous frame
//                                   of `n` lines in place (ANSI cursor-up and
//                                   erase-line), for a terminal
//   RenderPlainLine(row, now)       "progress: acme-drive running seen=1200 ..."
//                                   for logs, when stderr is not a terminal
//
// ProgressDisplay writes them: on a terminal it redraws the block in place
// (Tick() at a few Hz) and prints event lines (started, done, failures) above
// it; otherwise Tick() logs one plain line per source that changed, at most
// every `plain_interval`.
//
// Thread-safe: Update() is called on the daemon's sync threads, Tick() and
// PrintLine() on any thread.
#ifndef TESSERA_SERVICES_SYNC_PROGRESS_DISPLAY_H_
#define TESSERA_SERVICES_SYNC_PROGRESS_DISPLAY_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/sync/sync_daemon.h"

namespace tessera::sync {

struct ProgressRow {
  enum class State { kWaiting, kRunning, kDone, kFailed };
  std::string connector_id;
  State state = State::kWaiting;
  bool full_sync = false;
  SyncCounts run;  // the current (or last) run
  absl::Time started = absl::InfinitePast();
  absl::Time finished = absl::InfinitePast();
  std::string error;  // of a failed run
};

// Documents seen per second over the run (0 before one second has passed).
[[nodiscard]] double ProgressRate(const ProgressRow &row, absl::Time now);

// One aligned line per row (ids padded to the longest), in row order.
[[nodiscard]] std::vector<std::string> RenderProgressLines(const std::vector<ProgressRow> &rows,
                                                           absl::Time now);

// Moves the cursor up over the `previous_lines` lines of the last frame and
// writes `lines` in their place, clearing what each old line held.
[[nodiscard]] std::string RenderTerminalFrame(const std::vector<std::string> &lines,
                                              size_t previous_lines);

// "progress: ID STATE seen=N indexed=N failed=N deleted=N rate=R/s".
[[nodiscard]] std::string RenderPlainLine(const ProgressRow &row, absl::Time now);

class ProgressDisplay {
 public:
  struct Options {
    bool terminal = false;  // redraw in place (stderr is a terminal)
    // Whether event lines and the frame share one terminal (stdout and
    // stderr both a tty): event lines then erase the frame and redraw it.
    bool shared_terminal = false;
    absl::Duration plain_interval = absl::Seconds(10);
  };
  // `events` gets event lines, `display` the frame or the plain progress
  // lines. Not owned.
  ProgressDisplay(Options options, std::vector<std::string> connector_ids, FILE *events,
                  FILE *display);

  void Update(const SyncProgress &p, absl::Time now);
  // Prints an event line (keeping the terminal frame below it).
  void PrintLine(absl::string_view line);
  // Redraws the frame (terminal) or logs what changed (plain).
  void Tick(absl::Time now);
  // Final redraw; the frame stays on screen.
  void Finish(absl::Time now);

  [[nodiscard]] std::vector<ProgressRow> Rows() const;

 private:
  void DrawLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  FILE *const events_;
  FILE *const display_;
  mutable absl::Mutex mu_;
  std::vector<ProgressRow> rows_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> changed_ ABSL_GUARDED_BY(mu_);  // since the last plain line
  size_t drawn_lines_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_plain_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace tessera::sync

#endif  // TESSERA_SERVICES_SYNC_PROGRESS_DISPLAY_H_
