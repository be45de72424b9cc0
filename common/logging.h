// Structured logging for Tessera.
//
//   TLOG(INFO, "server listening").Field("addr", addr).Field("tls", true);
//
// emits one line when the statement ends, in logfmt by default
//   ts=2026-11-29T15:04:05.123Z level=info msg="server listening" addr=127.0.0.1:7600 tls=true src=main.cc:42
// or as one JSON object per line (SetLogFormat(LogFormat::kJson)).
//
// Fields whose key names a secret (token, secret, password, key, authorization,
// credential, cookie; case-insensitive, also as a suffix like "api_key") are
// written as "[REDACTED]", so credentials never reach logs by accident.
//
// Thread-safe: records are formatted per call and written under one mutex.
// The sink defaults to stderr and can be replaced (tests capture lines).
#ifndef TESSERA_COMMON_LOGGING_H_
#define TESSERA_COMMON_LOGGING_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tessera {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };
enum class LogFormat { kLogfmt, kJson };

// Parses "debug", "info", "warning"/"warn", "error" (case-insensitive).
[[nodiscard]] bool ParseLogLevel(absl::string_view text, LogLevel* level);
[[nodiscard]] bool ParseLogFormat(absl::string_view text, LogFormat* format);

void SetMinLogLevel(LogLevel level);
LogLevel MinLogLevel();
void SetLogFormat(LogFormat format);

// Receives each formatted line (without trailing newline). Replacing the sink
// returns the previous one. A null sink restores stderr.
using LogSink = std::function<void(LogLevel, const std::string& line)>;
LogSink SetLogSink(LogSink sink);

// True when `key` names something that must not be logged in clear.
[[nodiscard]] bool IsSecretFieldName(absl::string_view key);

// One record under construction; emitted by the destructor.
class LogMessage {
 public:
  LogMessage(LogLevel level, absl::string_view msg, const char* file, int line);
  ~LogMessage();
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;

  LogMessage& Field(absl::string_view key, absl::string_view value);
  LogMessage& Field(absl::string_view key, const std::string& value) {
    return Field(key, absl::string_view(value));
  }
  LogMessage& Field(absl::string_view key, const char* value) {
    return Field(key, absl::string_view(value));
  }
  LogMessage& Field(absl::string_view key, bool value);
  LogMessage& Field(absl::string_view key, int64_t value);
  LogMessage& Field(absl::string_view key, int value) { return Field(key, int64_t{value}); }
  LogMessage& Field(absl::string_view key, uint64_t value);
  LogMessage& Field(absl::string_view key, double value);
  LogMessage& Field(absl::string_view key, absl::Duration value);
  LogMessage& Field(absl::string_view key, const absl::Status& status);

 private:
  struct Item {
    std::string key;
    std::string value;
    bool quoted_json;  // JSON: emit as a string (true) or raw number/bool (false)
  };
  LogMessage& Add(absl::string_view key, std::string value, bool quoted_json);

  bool enabled_;
  LogLevel level_;
  std::string msg_;
  const char* file_;
  int line_;
  std::vector<Item> items_;
};

}  // namespace tessera

#define TESSERA_LOG_LEVEL_DEBUG ::tessera::LogLevel::kDebug
#define TESSERA_LOG_LEVEL_INFO ::tessera::LogLevel::kInfo
#define TESSERA_LOG_LEVEL_WARNING ::tessera::LogLevel::kWarning
#define TESSERA_LOG_LEVEL_ERROR ::tessera::LogLevel::kError

// TLOG(INFO|DEBUG|WARNING|ERROR, "message").Field(k, v)...;
#define TLOG(level, msg) ::tessera::LogMessage(TESSERA_LOG_LEVEL_##level, (msg), __FILE__, __LINE__)

#endif  // TESSERA_COMMON_LOGGING_H_
