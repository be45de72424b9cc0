#include "agents/mcp/sse_parser.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tessera::mcp {

absl::Status SseParser::Feed(absl::string_view chunk, const std::function<void(const SseEvent&)>& on_event) {
  for (char c : chunk) {
    if (c == '\n' && last_was_cr_) {  // the \n of a \r\n
      last_was_cr_ = false;
      continue;
    }
    last_was_cr_ = c == '\r';
    if (c == '\n' || c == '\r') {
      absl::Status s = Line(line_, on_event);
      line_.clear();
      if (!s.ok()) return s;
      continue;
    }
    line_.push_back(c);
    if (line_.size() + data_.size() > max_event_bytes_) {
      line_.clear();
      data_.clear();
      return absl::ResourceExhaustedError(
          absl::StrCat("server-sent event larger than ", max_event_bytes_, " bytes (max_message_bytes)"));
    }
  }
  return absl::OkStatus();
}

absl::Status SseParser::Line(absl::string_view line, const std::function<void(const SseEvent&)>& on_event) {
  if (line.empty()) {
    if (has_data_ && !data_.empty()) {
      SseEvent ev;
      if (!event_.empty()) ev.event = event_;
      ev.data = data_;
      ev.id = last_event_id_;
      on_event(ev);
    }
    event_.clear();
    data_.clear();
    has_data_ = false;
    return absl::OkStatus();
  }
  if (line.front() == ':') return absl::OkStatus();  // comment / keep-alive
  absl::string_view field = line, value;
  size_t colon = line.find(':');
  if (colon != absl::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) data_.push_back('\n');
    data_.append(value.data(), value.size());
    has_data_ = true;
  } else if (field == "event") {
    event_ = std::string(value);
  } else if (field == "id") {
    if (value.find('\0') == absl::string_view::npos) last_event_id_ = std::string(value);
  } else if (field == "retry") {
    int ms = 0;
    if (absl::SimpleAtoi(value, &ms) && ms >= 0) retry_ms_ = ms;
  }
  return absl::OkStatus();
}

}  // namespace tessera::mcp
