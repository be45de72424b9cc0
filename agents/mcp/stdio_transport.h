// StdioTransport: runs an MCP server as a child process and speaks JSON-RPC
// over its stdin/stdout, one message per line (MCP stdio transport).
//
// The child gets its own process group, the configured working directory and
// an environment built from a small safe subset of ours (HOME, PATH, ...)
// plus the configured variables, so Tessera's own secrets do not leak to
// tools unless inherit_env is set. Its stderr is drained to our logs (it is
// the server's log channel, never an error signal); the last lines are kept
// to explain a crash. A reader thread polls stdout and stderr; lines longer
// than max_message_bytes are discarded and the request they answered fails
// with RESOURCE_EXHAUSTED. Close(): close stdin, wait, SIGTERM, wait, SIGKILL.
//
// Thread-safe.
#ifndef TESSERA_AGENTS_MCP_STDIO_TRANSPORT_H_
#define TESSERA_AGENTS_MCP_STDIO_TRANSPORT_H_

#include <sys/types.h>

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agents/mcp/transport.h"

namespace tessera::mcp {

class StdioTransport : public Transport {
 public:
  struct Options {
    std::string name;  // server name, for logs
    std::string command;
    std::vector<std::string> args;
    std::map<std::string, std::string> env;
    std::string cwd;  // empty: inherit ours
    bool inherit_env = false;
    size_t max_message_bytes = 16 << 20;
    // Each of the three shutdown steps waits at most this long.
    absl::Duration shutdown_grace = absl::Seconds(2);
    // A write that cannot proceed for this long fails (the server is not
    // reading its stdin).
    absl::Duration write_timeout = absl::Seconds(10);
  };

  // Validates the options; spawning happens in Start(). INVALID_ARGUMENT for
  // an empty command.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<StdioTransport>> Create(Options options);
  ~StdioTransport() override;

  // NOT_FOUND when the command cannot be executed (with errno text),
  // INTERNAL when pipes or fork fail.
  [[nodiscard]] absl::Status Start(TransportCallbacks callbacks) override;
  [[nodiscard]] absl::Status Send(const Json& message) override;
  void Close() override;
  [[nodiscard]] std::string Describe() const override;

  // The child's pid while running, else -1 (tests).
  [[nodiscard]] pid_t pid() const;

 private:
  explicit StdioTransport(Options options);
  void ReaderLoop();
  void HandleStdoutLine(absl::string_view line);
  void HandleOversizedLine(const std::string& head, const std::string& tail, size_t size);
  void HandleStderrLine(absl::string_view line);
  std::string RecentStderr();
  absl::Status ExitStatusLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool WaitForExit(absl::Duration timeout);

  const Options options_;
  TransportCallbacks callbacks_;  // set before the reader starts, then read-only

  mutable absl::Mutex mu_;
  pid_t pid_ ABSL_GUARDED_BY(mu_) = -1;
  int exit_status_ ABSL_GUARDED_BY(mu_) = -1;  // waitpid status once reaped
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<std::string> stderr_tail_ ABSL_GUARDED_BY(mu_);

  absl::Mutex write_mu_;
  int stdin_fd_ ABSL_GUARDED_BY(write_mu_) = -1;

  int stdout_fd_ = -1;  // owned by the reader thread
  int stderr_fd_ = -1;
  int wake_read_fd_ = -1;
  int wake_write_fd_ = -1;
  std::thread reader_;
  int invalid_lines_ = 0;  // reader thread only
  // stderr log rate limit (reader thread only): lines logged in this second.
  absl::Time stderr_window_start_ = absl::InfinitePast();
  int stderr_window_lines_ = 0;
  int64_t stderr_suppressed_ = 0;
};

}  // namespace tessera::mcp

#endif  // TESSERA_AGENTS_MCP_STDIO_TRANSPORT_H_
