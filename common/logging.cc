#include "common/logging.h"

#include <atomic>
#include <cstdio>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"

namespace tessera {
namespace {

std::atomic<int> g_min_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_format{static_cast<int>(LogFormat::kLogfmt)};

absl::Mutex g_sink_mu;
LogSink* g_sink ABSL_GUARDED_BY(g_sink_mu) = nullptr;

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "info";
}

std::string JsonEscape(absl::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
  return out;
}

// logfmt: bare when safe, otherwise quoted with JSON-style escapes.
std::string LogfmtValue(absl::string_view s) {
  bool bare = !s.empty();
  for (unsigned char c : s) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) {
      bare = false;
      break;
    }
  }
  return bare ? std::string(s) : JsonEscape(s);
}

const char* Basename(const char* path) {
  const char* base = path;
  for (const char* p = path; *p; ++p) {
    if (*p == '/') base = p + 1;
  }
  return base;
}

}  // namespace

bool ParseLogLevel(absl::string_view text, LogLevel* level) {
  std::string t = absl::AsciiStrToLower(text);
  if (t == "debug") *level = LogLevel::kDebug;
  else if (t == "info") *level = LogLevel::kInfo;
  else if (t == "warning" || t == "warn") *level = LogLevel::kWarning;
  else if (t == "error") *level = LogLevel::kError;
  else return false;
  return true;
}

bool ParseLogFormat(absl::string_view text, LogFormat* format) {
  std::string t = absl::AsciiStrToLower(text);
  if (t == "logfmt" || t == "text") *format = LogFormat::kLogfmt;
  else if (t == "json") *format = LogFormat::kJson;
  else return false;
  return true;
}

void SetMinLogLevel(LogLevel level) { g_min_level.store(static_cast<int>(level)); }
LogLevel MinLogLevel() { return static_cast<LogLevel>(g_min_level.load()); }
void SetLogFormat(LogFormat format) { g_format.store(static_cast<int>(format)); }

LogSink SetLogSink(LogSink sink) {
  absl::MutexLock lock(&g_sink_mu);
  LogSink previous = g_sink ? std::move(*g_sink) : LogSink();
  delete g_sink;
  g_sink = sink ? new LogSink(std::move(sink)) : nullptr;
  return previous;
}

bool IsSecretFieldName(absl::string_view key) {
  std::string k = absl::AsciiStrToLower(key);
  static constexpr absl::string_view kSecretWords[] = {
      "token", "secret", "password", "passwd", "authorization", "credential", "cookie",
      "private_key", "api_key", "apikey"};
  for (absl::string_view w : kSecretWords) {
    if (absl::StrContains(k, w)) return true;
  }
  // "key" alone or as a suffix ("bearer_key"), but not "key_id" or "keys_count".
  return k == "key" || absl::EndsWith(k, "_key") || absl::EndsWith(k, "-key");
}

LogMessage::LogMessage(LogLevel level, absl::string_view msg, const char* file, int line)
    : enabled_(static_cast<int>(level) >= g_min_level.load()),
      level_(level),
      msg_(enabled_ ? std::string(msg) : std::string()),
      file_(file),
      line_(line) {}

LogMessage& LogMessage::Add(absl::string_view key, std::string value, bool quoted_json) {
  if (!enabled_) return *this;
  if (IsSecretFieldName(key)) {
    value = "[REDACTED]";
    quoted_json = true;
  }
  items_.push_back(Item{std::string(key), std::move(value), quoted_json});
  return *this;
}

LogMessage& LogMessage::Field(absl::string_view key, absl::string_view value) {
  return Add(key, std::string(value), true);
}
LogMessage& LogMessage::Field(absl::string_view key, bool value) {
  return Add(key, value ? "true" : "false", false);
}
LogMessage& LogMessage::Field(absl::string_view key, int64_t value) {
  return Add(key, absl::StrCat(value), false);
}
LogMessage& LogMessage::Field(absl::string_view key, uint64_t value) {
  return Add(key, absl::StrCat(value), false);
}
LogMessage& LogMessage::Field(absl::string_view key, double value) {
  return Add(key, absl::StrFormat("%g", value), false);
}
LogMessage& LogMessage::Field(absl::string_view key, absl::Duration value) {
  return Add(key, absl::FormatDuration(value), true);
}
LogMessage& LogMessage::Field(absl::string_view key, const absl::Status& status) {
  return Add(key, status.ok() ? std::string("OK") : status.ToString(), true);
}

LogMessage::~LogMessage() {
  if (!enabled_) return;
  const std::string ts =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  const std::string src = absl::StrCat(Basename(file_), ":", line_);
  std::string line;
  if (static_cast<LogFormat>(g_format.load()) == LogFormat::kJson) {
    absl::StrAppend(&line, "{\"ts\":", JsonEscape(ts), ",\"level\":", JsonEscape(LevelName(level_)),
                    ",\"msg\":", JsonEscape(msg_));
    for (const Item& item : items_) {
      absl::StrAppend(&line, ",", JsonEscape(item.key), ":",
                      item.quoted_json ? JsonEscape(item.value) : item.value);
    }
    absl::StrAppend(&line, ",\"src\":", JsonEscape(src), "}");
  } else {
    absl::StrAppend(&line, "ts=", ts, " level=", LevelName(level_), " msg=", JsonEscape(msg_));
    for (const Item& item : items_) {
      absl::StrAppend(&line, " ", item.key, "=", LogfmtValue(item.value));
    }
    absl::StrAppend(&line, " src=", src);
  }
  absl::MutexLock lock(&g_sink_mu);
  if (g_sink != nullptr) {
    (*g_sink)(level_, line);
  } else {
    line.push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  }
}

}  // namespace tessera
