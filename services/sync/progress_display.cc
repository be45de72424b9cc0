#include "services/sync/progress_display.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tessera::sync {
namespace {

const char *StateName(ProgressRow::State s) {
  switch (s) {
    case ProgressRow::State::kWaiting:
      return "waiting";
    case ProgressRow::State::kRunning:
      return "running";
    case ProgressRow::State::kDone:
      return "done";
    case ProgressRow::State::kFailed:
      return "FAILED";
  }
  return "?";
}

absl::Time RunEnd(const ProgressRow &row, absl::Time now) {
  return row.state == ProgressRow::State::kRunning ? now : row.finished;
}

std::string Elapsed(const ProgressRow &row, absl::Time now) {
  if (row.started == absl::InfinitePast()) return "";
  const int64_t s = std::max<int64_t>(0, absl::ToInt64Seconds(RunEnd(row, now) - row.started));
  return absl::StrFormat("%d:%02d", s / 60, s % 60);
}

}  // namespace

double ProgressRate(const ProgressRow &row, absl::Time now) {
  if (row.started == absl::InfinitePast()) return 0;
  const double secs = absl::ToDoubleSeconds(RunEnd(row, now) - row.started);
  if (secs < 1.0) return 0;
  return static_cast<double>(row.run.seen) / secs;
}

std::vector<std::string> RenderProgressLines(const std::vector<ProgressRow> &rows, absl::Time now) {
  size_t width = 0;
  for (const ProgressRow &r : rows) width = std::max(width, r.connector_id.size());
  std::vector<std::string> out;
  for (const ProgressRow &r : rows) {
    std::string line = absl::StrFormat(
        "%-*s  %-7s  seen %6d  indexed %6d  failed %4d  deleted %4d  %7.1f/s  %s",
        static_cast<int>(width), r.connector_id, StateName(r.state), r.run.seen, r.run.indexed,
        r.run.failed, r.run.deleted, ProgressRate(r, now), Elapsed(r, now));
    while (!line.empty() && line.back() == ' ') line.pop_back();
    if (r.state == ProgressRow::State::kFailed && !r.error.empty()) {
      absl::StrAppend(&line, "  ", r.error);
    }
    out.push_back(std::move(line));
  }
  return out;
}

std::string RenderTerminalFrame(const std::vector<std::string> &lines, size_t previous_lines) {
  std::string out;
  if (previous_lines > 0) absl::StrAppend(&out, "\x1b[", previous_lines, "A");
  for (const std::string &l : lines) absl::StrAppend(&out, "\r\x1b[2K", l, "\n");
  // A frame shorter than the last one: clear the leftover lines below it.
  if (previous_lines > lines.size()) {
    const size_t extra = previous_lines - lines.size();
    for (size_t i = 0; i < extra; ++i) absl::StrAppend(&out, "\r\x1b[2K\n");
    absl::StrAppend(&out, "\x1b[", extra, "A");
  }
  return out;
}

std::string RenderPlainLine(const ProgressRow &r, absl::Time now) {
  std::string line =
      absl::StrFormat("progress: %s %s seen=%d indexed=%d failed=%d deleted=%d rate=%.1f/s",
                      r.connector_id, StateName(r.state), r.run.seen, r.run.indexed, r.run.failed,
                      r.run.deleted, ProgressRate(r, now));
  if (r.state == ProgressRow::State::kFailed && !r.error.empty()) {
    absl::StrAppend(&line, " error=\"", r.error, "\"");
  }
  return line;
}

ProgressDisplay::ProgressDisplay(Options options, std::vector<std::string> connector_ids,
                                 FILE *events, FILE *display)
    : options_(options), events_(events), display_(display) {
  for (std::string &id : connector_ids) {
    ProgressRow r;
    r.connector_id = std::move(id);
    rows_.push_back(std::move(r));
    changed_.push_back(false);
  }
}

void ProgressDisplay::Update(const SyncProgress &p, absl::Time now) {
  absl::MutexLock l(&mu_);
  for (size_t i = 0; i < rows_.size(); ++i) {
    ProgressRow &r = rows_[i];
    if (r.connector_id != p.connector_id) continue;
    changed_[i] = true;
    r.run = p.run;
    r.full_sync = p.full_sync;
    switch (p.event) {
      case SyncProgress::Event::kStarted:
        r.state = ProgressRow::State::kRunning;
        r.started = now;
        r.finished = absl::InfinitePast();
        r.error.clear();
        break;
      case SyncProgress::Event::kPage:
        r.state = ProgressRow::State::kRunning;
        break;
      case SyncProgress::Event::kFinished:
        r.state = p.status.ok() ? ProgressRow::State::kDone : ProgressRow::State::kFailed;
        r.finished = now;
        r.error = p.status.ok() ? "" : p.status.ToString();
        break;
    }
  }
}

void ProgressDisplay::EraseLocked() {
  if (drawn_lines_ == 0) return;
  std::string s = absl::StrCat("\x1b[", drawn_lines_, "A");
  for (size_t i = 0; i < drawn_lines_; ++i) absl::StrAppend(&s, "\r\x1b[2K\n");
  absl::StrAppend(&s, "\x1b[", drawn_lines_, "A");
  std::fputs(s.c_str(), display_);
  std::fflush(display_);
  drawn_lines_ = 0;
}

void ProgressDisplay::DrawLocked(absl::Time now) {
  std::vector<std::string> lines = RenderProgressLines(rows_, now);
  std::fputs(RenderTerminalFrame(lines, drawn_lines_).c_str(), display_);
  std::fflush(display_);
  drawn_lines_ = lines.size();
}

void ProgressDisplay::PrintLine(absl::string_view line) {
  absl::MutexLock l(&mu_);
  const bool redraw = options_.terminal && options_.shared_terminal && drawn_lines_ > 0;
  // On a shared terminal the line goes where the frame was, the frame below.
  if (redraw) EraseLocked();
  std::fprintf(events_, "%.*s\n", static_cast<int>(line.size()), line.data());
  std::fflush(events_);
  if (redraw) DrawLocked(absl::Now());
}

void ProgressDisplay::Tick(absl::Time now) {
  absl::MutexLock l(&mu_);
  if (options_.terminal) {
    DrawLocked(now);
    return;
  }
  if (now - last_plain_ < options_.plain_interval) return;
  last_plain_ = now;
  for (size_t i = 0; i < rows_.size(); ++i) {
    if (!changed_[i]) continue;
    changed_[i] = false;
    std::fprintf(display_, "%s\n", RenderPlainLine(rows_[i], now).c_str());
  }
  std::fflush(display_);
}

void ProgressDisplay::Finish(absl::Time now) {
  absl::MutexLock l(&mu_);
  if (options_.terminal) {
    DrawLocked(now);
    return;
  }
  for (size_t i = 0; i < rows_.size(); ++i) {
    if (!changed_[i]) continue;
    changed_[i] = false;
    std::fprintf(display_, "%s\n", RenderPlainLine(rows_[i], now).c_str());
  }
  std::fflush(display_);
}

std::vector<ProgressRow> ProgressDisplay::Rows() const {
  absl::MutexLock l(&mu_);
  return rows_;
}

}  // namespace tessera::sync
