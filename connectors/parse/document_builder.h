// DocumentBuilder: the one place where parsers assemble a ParsedDocument and
// where the ParseOptions limits are enforced.
//
// Each format parser walks its input and calls StartSection/AddParagraph; the
// builder sanitises UTF-8, trims blank lines, counts output bytes against
// max_output_bytes (RESOURCE_EXHAUSTED) and checks the deadline on every call
// (DEADLINE_EXCEEDED), so every parser gets the same limits for free. Parsers
// that do long stretches of work between paragraphs also call CheckDeadline.
//
// Internal to connectors/parse. Not thread-safe: one builder per parse.
#ifndef TESSERA_CONNECTORS_PARSE_DOCUMENT_BUILDER_H_
#define TESSERA_CONNECTORS_PARSE_DOCUMENT_BUILDER_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "connectors/parse/parsed_document.h"

namespace tessera::parse {

// Titles longer than this (bytes) are cut at a character boundary.
inline constexpr size_t kMaxTitleBytes = 256;

// RESOURCE_EXHAUSTED naming the limit when `input_size` exceeds
// options.max_input_bytes; OK otherwise.
[[nodiscard]] absl::Status CheckInputSize(size_t input_size, const ParseOptions& options);

class DocumentBuilder {
 public:
  // The deadline starts now (options.clock or RealClock()). `options` is
  // copied; its clock must outlive the builder.
  DocumentBuilder(const ParseOptions& options, absl::string_view mime_type);

  DocumentBuilder(const DocumentBuilder&) = delete;
  DocumentBuilder& operator=(const DocumentBuilder&) = delete;

  // DEADLINE_EXCEEDED once options.timeout has passed since construction.
  [[nodiscard]] absl::Status CheckDeadline();
  // The DEADLINE_EXCEEDED error CheckDeadline returns, unconditionally.
  [[nodiscard]] absl::Status DeadlineExceeded() const;
  absl::Time deadline() const { return deadline_; }
  Clock* clock() const { return clock_; }
  const ParseOptions& options() const { return options_; }

  // Opens a new section. The heading is trimmed and made valid UTF-8.
  // Errors: RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED.
  [[nodiscard]] absl::Status StartSection(absl::string_view heading, int page = 0);

  // Appends a paragraph to the current section (opening an untitled one if
  // there is none), separated from the previous one by a blank line. Leading
  // blank lines and trailing whitespace are removed; blank paragraphs are
  // ignored. Errors: RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED.
  [[nodiscard]] absl::Status AddParagraph(absl::string_view text);

  // Sets the title unless one was already set (first wins). Empty titles are
  // ignored. Trimmed, sanitised, cut to kMaxTitleBytes.
  void SetTitle(absl::string_view title);
  bool has_title() const { return !doc_.title.empty(); }

  void AddWarning(std::string warning);

  // Drops empty sections, fills in a missing title (first heading, else first
  // line of text), reports replaced UTF-8 as a warning, and returns the
  // document. The builder must not be used afterwards.
  [[nodiscard]] ParsedDocument Finish() &&;

 private:
  // Sanitised `text` trimmed as AddParagraph describes.
  std::string Clean(absl::string_view text);
  absl::Status Charge(size_t bytes);

  const ParseOptions options_;
  Clock* const clock_;
  const absl::Time deadline_;
  ParsedDocument doc_;
  size_t output_bytes_ = 0;
  size_t replaced_utf8_ = 0;
};

}  // namespace tessera::parse

#endif  // TESSERA_CONNECTORS_PARSE_DOCUMENT_BUILDER_H_
