#include "agents/mcp/stdio_transport.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/logging.h"

extern char** environ;

namespace tessera::mcp {
namespace {

constexpr size_t kReadChunk = 64 << 10;
constexpr size_t kKeepBytes = 512;          // head/tail of an oversized line
constexpr size_t kMaxStderrLine = 2048;     // longer stderr lines are truncated
constexpr size_t kStderrTailLines = 8;

// Variables a stdio server gets from our environment by default (as the
// reference SDKs do); everything else must be configured explicitly.
constexpr const char* kSafeEnv[] = {"HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER",
                                    "LANG", "LC_ALL", "TMPDIR", "TZ"};

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

void SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL, 0);
  if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("killed by signal ", WTERMSIG(status));
  return "stopped";
}

// Finds `"id":<integer or string>` in a fragment of a line we could not keep.
Json FindIdInFragment(const std::string& text) {
  size_t pos = 0;
  while ((pos = text.find("\"id\"", pos)) != std::string::npos) {
    size_t i = pos + 4;
    while (i < text.size() && isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i < text.size() && text[i] == ':') {
      ++i;
      while (i < text.size() && isspace(static_cast<unsigned char>(text[i]))) ++i;
      size_t start = i;
      if (i < text.size() && (isdigit(static_cast<unsigned char>(text[i])) || text[i] == '-')) {
        ++i;
        while (i < text.size() && isdigit(static_cast<unsigned char>(text[i]))) ++i;
        if (i < text.size()) {  // the number must be complete
          auto parsed = ParseJson(text.substr(start, i - start));
          if (parsed.ok()) return *parsed;
        }
      } else if (i < text.size() && text[i] == '"') {
        size_t end = text.find('"', i + 1);
        if (end != std::string::npos) return text.substr(i + 1, end - i - 1);
      }
    }
    pos += 4;
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<std::unique_ptr<StdioTransport>> StdioTransport::Create(Options options) {
  if (options.command.empty()) {
    return absl::InvalidArgumentError("stdio MCP server: \"command\" must not be empty");
  }
  if (options.max_message_bytes < 1024) {
    return absl::InvalidArgumentError("stdio MCP server: max_message_bytes must be at least 1024");
  }
  return std::unique_ptr<StdioTransport>(new StdioTransport(std::move(options)));
}

StdioTransport::StdioTransport(Options options) : options_(std::move(options)) {}

StdioTransport::~StdioTransport() { Close(); }

std::string StdioTransport::Describe() const {
  return absl::StrCat("stdio:", options_.name.empty() ? options_.command : options_.name);
}

pid_t StdioTransport::pid() const {
  absl::MutexLock lock(&mu_);
  return pid_;
}

absl::Status StdioTransport::Start(TransportCallbacks callbacks) {
  callbacks_ = std::move(callbacks);
  int in_pipe[2], out_pipe[2], err_pipe[2], exec_pipe[2], wake_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0 ||
      pipe2(err_pipe, O_CLOEXEC) != 0 || pipe2(exec_pipe, O_CLOEXEC) != 0 ||
      pipe2(wake_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe2 failed: ", strerror(errno)));
  }

  // Everything the child needs is prepared before fork(): after it, only
  // async-signal-safe calls are allowed.
  std::vector<std::string> arg_storage;
  arg_storage.push_back(options_.command);
  for (const auto& a : options_.args) arg_storage.push_back(a);
  std::vector<char*> argv;
  for (auto& a : arg_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::map<std::string, std::string> env;
  if (options_.inherit_env) {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string kv(*e);
      size_t eq = kv.find('=');
      if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  } else {
    for (const char* name : kSafeEnv) {
      const char* value = getenv(name);
      if (value != nullptr) env[name] = value;
    }
  }
  for (const auto& [k, v] : options_.env) env[k] = v;
  std::vector<std::string> env_storage;
  for (const auto& [k, v] : env) env_storage.push_back(absl::StrCat(k, "=", v));
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  const char* cwd = options_.cwd.empty() ? nullptr : options_.cwd.c_str();
  // Resolve the program before fork(): the child may only make
  // async-signal-safe calls, so it uses execve, not a PATH-searching exec.
  std::string program = options_.command;
  if (program.find('/') == std::string::npos) {
    const char* path = getenv("PATH");
    auto found = env.find("PATH");
    std::string search = found != env.end() ? found->second : (path ? path : "/usr/local/bin:/usr/bin:/bin");
    std::string resolved;
    size_t start = 0;
    while (start <= search.size()) {
      size_t end = search.find(':', start);
      if (end == std::string::npos) end = search.size();
      std::string dir = search.substr(start, end - start);
      if (dir.empty()) dir = ".";
      std::string candidate = absl::StrCat(dir, "/", program);
      if (access(candidate.c_str(), X_OK) == 0) {
        resolved = candidate;
        break;
      }
      start = end + 1;
    }
    if (resolved.empty()) {
      for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1], exec_pipe[0],
                     exec_pipe[1], wake_pipe[0], wake_pipe[1]}) {
        ::close(fd);
      }
      return absl::NotFoundError(absl::StrCat("MCP server '", options_.name, "': command \"", program,
                                              "\" not found on PATH (give an absolute path or fix PATH)"));
    }
    program = resolved;
  }

  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1],
                   exec_pipe[0], exec_pipe[1], wake_pipe[0], wake_pipe[1]}) {
      ::close(fd);
    }
    return absl::InternalError(absl::StrCat("fork failed: ", strerror(err)));
  }
  if (pid == 0) {
    setpgid(0, 0);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    signal(SIGPIPE, SIG_DFL);
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    int stage = 0;
    if (cwd != nullptr && chdir(cwd) != 0) {
      stage = 1;
    } else {
      execve(program.c_str(), argv.data(), envp.data());
    }
    int report[2] = {stage, errno};
    ssize_t ignored = write(exec_pipe[1], report, sizeof(report));
    (void)ignored;
    _exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ::close(exec_pipe[1]);
  int report[2] = {0, 0};
  ssize_t n;
  do {
    n = read(exec_pipe[0], report, sizeof(report));
  } while (n < 0 && errno == EINTR);
  ::close(exec_pipe[0]);
  if (n == sizeof(report)) {
    int status = 0;
    waitpid(pid, &status, 0);
    for (int fd : {in_pipe[1], out_pipe[0], err_pipe[0], wake_pipe[0], wake_pipe[1]}) ::close(fd);
    if (report[0] == 1) {
      return absl::NotFoundError(absl::StrCat("MCP server '", options_.name, "': cannot change to working directory \"",
                                              options_.cwd, "\": ", strerror(report[1])));
    }
    return absl::NotFoundError(absl::StrCat("MCP server '", options_.name, "': cannot execute \"",
                                            options_.command, "\": ", strerror(report[1]),
                                            " (check \"command\" and PATH)"));
  }
  {
    absl::MutexLock lock(&write_mu_);
    stdin_fd_ = in_pipe[1];
    SetNonBlocking(stdin_fd_);
  }
  stdout_fd_ = out_pipe[0];
  stderr_fd_ = err_pipe[0];
  SetNonBlocking(stdout_fd_);
  SetNonBlocking(stderr_fd_);
  wake_read_fd_ = wake_pipe[0];
  wake_write_fd_ = wake_pipe[1];
  {
    absl::MutexLock lock(&mu_);
    pid_ = pid;
  }
  TLOG(DEBUG, "mcp stdio server started").Field("server", options_.name).Field("pid", int64_t{pid});
  reader_ = std::thread([this] { ReaderLoop(); });
  return absl::OkStatus();
}

absl::Status StdioTransport::Send(const Json& message) {
  std::string line = Serialize(message);
  line.push_back('\n');
  absl::MutexLock lock(&write_mu_);
  if (stdin_fd_ < 0) {
    return absl::UnavailableError(absl::StrCat("MCP server '", options_.name, "' is not running"));
  }
  // Block SIGPIPE on this thread while writing so a dead child surfaces as
  // EPIPE rather than killing us; consume any SIGPIPE we caused.
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  absl::Status status;
  size_t written = 0;
  absl::Time deadline = absl::Now() + options_.write_timeout;
  while (written < line.size()) {
    ssize_t n = write(stdin_fd_, line.data() + written, line.size() - written);
    if (n > 0) {
      written += n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        status = absl::DeadlineExceededError(absl::StrCat(
            "MCP server '", options_.name, "' has not read its stdin for ", absl::FormatDuration(options_.write_timeout)));
        break;
      }
      pollfd p = {stdin_fd_, POLLOUT, 0};
      poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
      continue;
    }
    status = absl::UnavailableError(absl::StrCat("MCP server '", options_.name,
                                                 "' closed its stdin: ", strerror(errno)));
    break;
  }
  struct timespec zero = {0, 0};
  while (sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  return status;
}

void StdioTransport::ReaderLoop() {
  std::string out_buf, err_buf;
  bool discarding = false;
  std::string discard_head, discard_tail;
  size_t discard_size = 0;
  bool out_open = true, err_open = true;
  std::vector<char> chunk(kReadChunk);
  while (out_open || err_open) {
    pollfd fds[3];
    int nfds = 0;
    int out_idx = -1, err_idx = -1;
    if (out_open) { out_idx = nfds; fds[nfds++] = {stdout_fd_, POLLIN, 0}; }
    if (err_open) { err_idx = nfds; fds[nfds++] = {stderr_fd_, POLLIN, 0}; }
    int wake_idx = nfds;
    fds[nfds++] = {wake_read_fd_, POLLIN, 0};
    int rc = poll(fds, nfds, -1);
    if (rc < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[wake_idx].revents != 0) break;  // Close(): stop reading
    if (out_idx >= 0 && fds[out_idx].revents != 0) {
      ssize_t n = read(stdout_fd_, chunk.data(), chunk.size());
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        out_open = false;
      } else if (n > 0) {
        size_t start = 0;
        for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
          if (chunk[i] != '\n') continue;
          if (discarding) {
            discard_size += i - start;
            std::string piece(chunk.data() + start, i - start);
            discard_tail = (discard_tail + piece);
            if (discard_tail.size() > kKeepBytes) discard_tail = discard_tail.substr(discard_tail.size() - kKeepBytes);
            HandleOversizedLine(discard_head, discard_tail, discard_size);
            discarding = false;
            discard_head.clear();
            discard_tail.clear();
            discard_size = 0;
          } else {
            out_buf.append(chunk.data() + start, i - start);
            HandleStdoutLine(out_buf);
            out_buf.clear();
          }
          start = i + 1;
        }
        if (start < static_cast<size_t>(n)) {
          if (discarding) {
            discard_size += n - start;
            discard_tail.append(chunk.data() + start, n - start);
            if (discard_tail.size() > kKeepBytes) discard_tail = discard_tail.substr(discard_tail.size() - kKeepBytes);
          } else {
            out_buf.append(chunk.data() + start, n - start);
            if (out_buf.size() > options_.max_message_bytes) {
              discarding = true;
              discard_head = out_buf.substr(0, kKeepBytes);
              discard_tail = out_buf.substr(out_buf.size() - kKeepBytes);
              discard_size = out_buf.size();
              out_buf.clear();
              out_buf.shrink_to_fit();
            }
          }
        }
      }
    }
    if (err_idx >= 0 && fds[err_idx].revents != 0) {
      ssize_t n = read(stderr_fd_, chunk.data(), chunk.size());
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        err_open = false;
        if (!err_buf.empty()) HandleStderrLine(err_buf);
      } else if (n > 0) {
        for (ssize_t i = 0; i < n; ++i) {
          if (chunk[i] == '\n') {
            HandleStderrLine(err_buf);
            err_buf.clear();
          } else if (err_buf.size() < kMaxStderrLine) {
            err_buf.push_back(chunk[i]);
          }
        }
      }
    }
    if (!out_open) {
      // stdout closed: the server is gone (or going). Report once, unless we
      // are the ones closing it.
      bool closing;
      {
        absl::MutexLock lock(&mu_);
        closing = closing_;
      }
      if (closing) break;
      WaitForExit(options_.shutdown_grace);
      absl::Status status;
      {
        absl::MutexLock lock(&mu_);
        status = ExitStatusLocked();
      }
      std::string tail = RecentStderr();
      std::string message = absl::StrCat("MCP server '", options_.name, "' closed its stdout (", status.message(), ")");
      if (!tail.empty()) absl::StrAppend(&message, "; last stderr: ", tail);
      TLOG(WARNING, "mcp stdio server went away").Field("server", options_.name).Field("detail", message);
      if (callbacks_.on_closed) callbacks_.on_closed(absl::UnavailableError(message));
      break;
    }
  }
}

void StdioTransport::HandleStdoutLine(absl::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.find_first_not_of(" \t") == absl::string_view::npos) return;  // blank
  auto parsed = ParseJson(line);
  if (!parsed.ok() || Classify(*parsed) == MessageKind::kInvalid) {
    ++invalid_lines_;
    if (invalid_lines_ <= 20 || invalid_lines_ % 1000 == 0) {
      TLOG(WARNING, "mcp server wrote a line that is not a JSON-RPC message; ignored")
          .Field("server", options_.name)
          .Field("count", invalid_lines_)
          .Field("line", std::string(line.substr(0, 200)));
    }
    return;
  }
  if (callbacks_.on_message) callbacks_.on_message(*parsed);
}

void StdioTransport::HandleOversizedLine(const std::string& head, const std::string& tail, size_t size) {
  Json id = FindIdInFragment(head);
  if (id.is_null()) id = FindIdInFragment(tail);
  absl::Status status = absl::ResourceExhaustedError(absl::StrCat(
      "MCP server '", options_.name, "' sent a message of ", size, " bytes, over the limit of ",
      options_.max_message_bytes, " bytes (max_message_bytes in the server config); the message was dropped"));
  TLOG(WARNING, "mcp message over size limit dropped").Field("server", options_.name).Field("bytes", uint64_t{size});
  if (callbacks_.on_request_failed) callbacks_.on_request_failed(id, status);
}

void StdioTransport::HandleStderrLine(absl::string_view line) {
  {
    absl::MutexLock lock(&mu_);
    stderr_tail_.emplace_back(line);
    while (stderr_tail_.size() > kStderrTailLines) stderr_tail_.pop_front();
  }
  // A server flooding stderr must not flood our logs: at most 50 lines a
  // second, then one summary of what was dropped.
  absl::Time now = absl::Now();
  if (now - stderr_window_start_ >= absl::Seconds(1)) {
    if (stderr_suppressed_ > 0) {
      TLOG(WARNING, "mcp server stderr lines suppressed (rate limit)")
          .Field("server", options_.name)
          .Field("lines", stderr_suppressed_);
    }
    stderr_window_start_ = now;
    stderr_window_lines_ = 0;
    stderr_suppressed_ = 0;
  }
  if (++stderr_window_lines_ > 50) {
    ++stderr_suppressed_;
    return;
  }
  TLOG(INFO, "mcp server stderr").Field("server", options_.name).Field("line", line);
}

std::string StdioTransport::RecentStderr() {
  absl::MutexLock lock(&mu_);
  return absl::StrJoin(stderr_tail_, " | ");
}

absl::Status StdioTransport::ExitStatusLocked() {
  if (exit_status_ < 0) return absl::UnavailableError("still running");
  return absl::UnavailableError(DescribeWaitStatus(exit_status_));
}

bool StdioTransport::WaitForExit(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (pid_ < 0 || exit_status_ >= 0) return true;
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exit_status_ = status;
        return true;
      }
      if (r < 0 && errno == ECHILD) {
        exit_status_ = 0;
        return true;
      }
    }
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));  // shutdown polling, not business logic
  }
}

void StdioTransport::Close() {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    closing_ = true;
  }
  {
    absl::MutexLock lock(&write_mu_);
    CloseFd(stdin_fd_);
  }
  pid_t pid;
  {
    absl::MutexLock lock(&mu_);
    pid = pid_;
  }
  if (pid > 0) {
    // 1. closed stdin; 2. SIGTERM; 3. SIGKILL. Signals go to the whole group
    // (npx and shell wrappers spawn the real server as a grandchild).
    if (!WaitForExit(options_.shutdown_grace)) {
      TLOG(INFO, "mcp server did not exit after stdin closed; sending SIGTERM").Field("server", options_.name);
      kill(-pid, SIGTERM);
      if (!WaitForExit(options_.shutdown_grace)) {
        TLOG(WARNING, "mcp server ignored SIGTERM; sending SIGKILL").Field("server", options_.name);
        kill(-pid, SIGKILL);
        WaitForExit(absl::Seconds(30));
      }
    } else {
      kill(-pid, SIGTERM);  // leftover grandchildren, if any (ESRCH otherwise)
    }
  }
  if (wake_write_fd_ >= 0) {
    char c = 'x';
    ssize_t ignored = write(wake_write_fd_, &c, 1);
    (void)ignored;
  }
  if (reader_.joinable()) reader_.join();
  CloseFd(stdout_fd_);
  CloseFd(stderr_fd_);
  CloseFd(wake_read_fd_);
  CloseFd(wake_write_fd_);
}

}  // namespace tessera::mcp
