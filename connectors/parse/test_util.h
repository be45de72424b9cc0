// Test helpers for connectors/parse: reading testdata/ through Bazel runfiles,
// and building inputs at test time (zip archives, DOCX files, small PDFs).
// Test-only. Thread-compatible.
#ifndef TESSERA_CONNECTORS_PARSE_TEST_UTIL_H_
#define TESSERA_CONNECTORS_PARSE_TEST_UTIL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace tessera::parse::testing {

// Contents of connectors/parse/testdata/<name>, from the test's runfiles.
// NOT_FOUND if it is missing.
absl::StatusOr<std::string> ReadTestData(absl::string_view name);

struct ZipEntry {
  std::string name;
  std::string data;
  bool compress = true;  // deflate; false: stored
};

// A zip archive holding `entries`, written with libzip. Aborts on failure.
std::string BuildZip(const std::vector<ZipEntry>& entries);

// A minimal DOCX: [Content_Types].xml, _rels/.rels, word/document.xml with
// `body_xml` inside <w:body>, and, when non-empty, word/styles.xml holding
// `styles_xml` inside <w:styles> and docProps/core.xml with `core_title`.
std::string BuildDocx(absl::string_view body_xml, absl::string_view styles_xml = "",
                      absl::string_view core_title = "");

// A WordprocessingML paragraph with one run of `text` (XML-escaped) and, if
// non-empty, paragraph style `style_id`.
std::string DocxParagraph(absl::string_view text, absl::string_view style_id = "");

// A PDF with one page per entry of `pages` (each one line of Helvetica text,
// ASCII without parentheses or backslashes), an Info Title when `title` is
// non-empty, and, with `encrypted`, a Standard security handler whose user
// password is not empty, so the file cannot be opened without it.
std::string BuildPdf(const std::vector<std::string>& pages, absl::string_view title = "",
                     bool encrypted = false);

// A clock that moves forward by `step` every time it is read.
class TickingClock : public Clock {
 public:
  explicit TickingClock(absl::Duration step) : step_(step) {}
  absl::Time Now() override {
    now_ += step_;
    return now_;
  }
  void SleepFor(absl::Duration d) override { now_ += d; }

 private:
  const absl::Duration step_;
  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
};

}  // namespace tessera::parse::testing

#endif  // TESSERA_CONNECTORS_PARSE_TEST_UTIL_H_
