#include "services/sync/progress_display.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace tessera::sync {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1800000000);

ProgressRow Row(std::string id, ProgressRow::State state, int64_t seen, int64_t indexed,
                int64_t failed) {
  ProgressRow r;
  r.connector_id = std::move(id);
  r.state = state;
  r.run.seen = seen;
  r.run.indexed = indexed;
  r.run.failed = failed;
  r.started = kT0;
  return r;
}

TEST(ProgressDisplayTest, RendersOneAlignedLinePerSource) {
  ProgressRow a = Row("acme-drive", ProgressRow::State::kRunning, 1200, 1180, 3);
  ProgressRow b = Row("hr", ProgressRow::State::kFailed, 10, 9, 1);
  b.finished = kT0 + absl::Seconds(5);
  b.error = "UNAVAILABLE: connection refused";
  ProgressRow c;
  c.connector_id = "later";
  std::vector<std::string> lines = RenderProgressLines({a, b, c}, kT0 + absl::Seconds(30));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0],
            "acme-drive  running  seen   1200  indexed   1180  failed    3  deleted    0     "
            "40.0/s  0:30");
  EXPECT_TRUE(absl::StartsWith(lines[1], "hr          FAILED   seen     10")) << lines[1];
  // A finished run's rate and time stop at its end.
  EXPECT_TRUE(absl::StrContains(lines[1], "2.0/s  0:05  UNAVAILABLE: connection refused"))
      << lines[1];
  EXPECT_TRUE(absl::StartsWith(lines[2], "later       waiting  seen      0")) << lines[2];
  EXPECT_EQ(ProgressRate(a, kT0 + absl::Milliseconds(500)), 0);  // too early to tell
}

TEST(ProgressDisplayTest, TerminalFrameRewritesThePreviousOneInPlace) {
  EXPECT_EQ(RenderTerminalFrame({"a", "b"}, 0), "\r\x1b[2Ka\n\r\x1b[2Kb\n");
  EXPECT_EQ(RenderTerminalFrame({"a", "b"}, 2), "\x1b[2A\r\x1b[2Ka\n\r\x1b[2Kb\n");
  // Shorter than the last frame: the leftover line is cleared, the cursor
  // ends right below the new frame.
  EXPECT_EQ(RenderTerminalFrame({"a"}, 2), "\x1b[2A\r\x1b[2Ka\n\r\x1b[2K\n\x1b[1A");
}

TEST(ProgressDisplayTest, PlainLine) {
  ProgressRow a = Row("acme-drive", ProgressRow::State::kRunning, 20, 19, 1);
  EXPECT_EQ(RenderPlainLine(a, kT0 + absl::Seconds(10)),
            "progress: acme-drive running seen=20 indexed=19 failed=1 deleted=0 rate=2.0/s");
}

std::string Drain(FILE *f, char **buf, size_t *len) {
  std::fflush(f);
  return std::string(*buf, *len);
}

TEST(ProgressDisplayTest, FoldsEventsAndLogsPlainLinesOnlyForChangedSources) {
  char *ebuf = nullptr, *dbuf = nullptr;
  size_t elen = 0, dlen = 0;
  FILE *events = open_memstream(&ebuf, &elen);
  FILE *disp = open_memstream(&dbuf, &dlen);
  ProgressDisplay::Options o;
  o.plain_interval = absl::Seconds(10);
  {
    ProgressDisplay d(o, {"a", "b"}, events, disp);
    SyncProgress p;
    p.connector_id = "a";
    d.Update(p, kT0);
    p.event = SyncProgress::Event::kPage;
    p.run.seen = 50;
    p.run.indexed = 49;
    p.run.failed = 1;
    d.Update(p, kT0 + absl::Seconds(5));
    d.Tick(kT0 + absl::Seconds(10));
    EXPECT_EQ(Drain(disp, &dbuf, &dlen),
              "progress: a running seen=50 indexed=49 failed=1 deleted=0 rate=5.0/s\n");
    d.Tick(kT0 + absl::Seconds(12));  // within the interval: nothing
    d.Tick(kT0 + absl::Seconds(25));  // nothing changed: nothing
    EXPECT_EQ(Drain(disp, &dbuf, &dlen),
              "progress: a running seen=50 indexed=49 failed=1 deleted=0 rate=5.0/s\n");
    p.event = SyncProgress::Event::kFinished;
    p.status = absl::UnavailableError("down");
    d.Update(p, kT0 + absl::Seconds(30));
    std::vector<ProgressRow> rows = d.Rows();
    EXPECT_EQ(rows[0].state, ProgressRow::State::kFailed);
    EXPECT_EQ(rows[0].error, "UNAVAILABLE: down");
    EXPECT_EQ(rows[1].state, ProgressRow::State::kWaiting);
    d.PrintLine("a: FAILED");
    d.Finish(kT0 + absl::Seconds(31));
    EXPECT_EQ(Drain(events, &ebuf, &elen), "a: FAILED\n");
    EXPECT_TRUE(absl::StrContains(Drain(disp, &dbuf, &dlen),
                                  "progress: a FAILED seen=50 indexed=49 failed=1 deleted=0 "
                                  "rate=1.7/s error=\"UNAVAILABLE: down\"\n"));
  }
  std::fclose(events);
  std::fclose(disp);
  std::free(ebuf);
  std::free(dbuf);
}

TEST(ProgressDisplayTest, TerminalModeRedrawsBelowEventLines) {
  char *buf = nullptr;
  size_t len = 0;
  FILE *tty = open_memstream(&buf, &len);
  ProgressDisplay::Options o;
  o.terminal = true;
  o.shared_terminal = true;
  {
    ProgressDisplay d(o, {"a"}, tty, tty);
    d.Tick(kT0);
    d.PrintLine("a: started");
    std::fflush(tty);
    const std::string s(buf, len);
    // Frame, erased (cursor up 1, cleared), the event line, the frame again.
    EXPECT_TRUE(absl::StartsWith(s, "\r\x1b[2Ka  waiting")) << s;
    EXPECT_TRUE(absl::StrContains(s, "\x1b[1A\r\x1b[2K\n\x1b[1Aa: started\n\r\x1b[2Ka  waiting"))
        << s;
  }
  std::fclose(tty);
  std::free(buf);
}

}  // namespace
}  // namespace tessera::sync
