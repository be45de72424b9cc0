// SseParser: incremental Server-Sent Events parser (WHATWG event-stream
// format) for MCP Streamable HTTP responses and GET streams. Handles \n,
// \r\n and \r line ends, multi-line data (joined with \n), comments, "id"
// (kept as the Last-Event-ID cursor, even for events without data: MCP's
// priming event), "retry", and caps each event's size.
// Thread-compatible.
#ifndef TESSERA_AGENTS_MCP_SSE_PARSER_H_
#define TESSERA_AGENTS_MCP_SSE_PARSER_H_

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tessera::mcp {

struct SseEvent {
  std::string event = "message";
  std::string data;
  std::string id;  // the stream's last event id when this event dispatched
};

class SseParser {
 public:
  explicit SseParser(size_t max_event_bytes) : max_event_bytes_(max_event_bytes) {}

  // Feeds a chunk; calls `on_event` for each complete event with data.
  // RESOURCE_EXHAUSTED when an event grows past max_event_bytes.
  [[nodiscard]] absl::Status Feed(absl::string_view chunk, const std::function<void(const SseEvent&)>& on_event);

  [[nodiscard]] const std::string& last_event_id() const { return last_event_id_; }
  // The server's "retry:" in milliseconds, if it sent one.
  [[nodiscard]] std::optional<int> retry_ms() const { return retry_ms_; }

 private:
  absl::Status Line(absl::string_view line, const std::function<void(const SseEvent&)>& on_event);

  const size_t max_event_bytes_;
  std::string line_;
  bool last_was_cr_ = false;
  std::string event_;
  std::string data_;
  bool has_data_ = false;
  std::string last_event_id_;
  std::optional<int> retry_ms_;
};

}  // namespace tessera::mcp

#endif  // TESSERA_AGENTS_MCP_SSE_PARSER_H_
