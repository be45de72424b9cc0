#include "connectors/parse/document_builder.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "connectors/parse/utf8.h"

namespace tessera::parse {
namespace {

bool IsBlank(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isspace(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Removes whole blank lines at the start (keeping the indentation of the
// first non-blank line) and all whitespace at the end.
absl::string_view TrimBlankLines(absl::string_view s) {
  s = absl::StripTrailingAsciiWhitespace(s);
  size_t first = 0;
  while (first < s.size() && absl::ascii_isspace(static_cast<unsigned char>(s[first]))) ++first;
  const size_t newline = s.substr(0, first).rfind('\n');
  if (newline != absl::string_view::npos) s.remove_prefix(newline + 1);
  return s;
}

}  // namespace

absl::Status CheckInputSize(size_t input_size, const ParseOptions& options) {
  if (input_size > options.max_input_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "input is ", input_size, " bytes, over max_input_bytes (", options.max_input_bytes, ")"));
  }
  return absl::OkStatus();
}

DocumentBuilder::DocumentBuilder(const ParseOptions& options, absl::string_view mime_type)
    : options_(options),
      clock_(options.clock != nullptr ? options.clock : RealClock()),
      deadline_(clock_->Now() + options.timeout) {
  doc_.mime_type = std::string(mime_type);
}

absl::Status DocumentBuilder::CheckDeadline() {
  if (clock_->Now() >= deadline_) return DeadlineExceeded();
  return absl::OkStatus();
}

absl::Status DocumentBuilder::DeadlineExceeded() const {
  return absl::DeadlineExceededError(absl::StrCat("parsing ", doc_.mime_type,
                                                  " took longer than the timeout (",
                                                  absl::FormatDuration(options_.timeout), ")"));
}

absl::Status DocumentBuilder::Charge(size_t bytes) {
  output_bytes_ += bytes;
  if (output_bytes_ > options_.max_output_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("extracted text exceeds max_output_bytes (", options_.max_output_bytes, ")"));
  }
  return absl::OkStatus();
}

std::string DocumentBuilder::Clean(absl::string_view text) {
  text = TrimBlankLines(text);
  std::string out;
  if (IsValidUtf8(text)) {
    out.assign(text.data(), text.size());
  } else {
    out.reserve(text.size() + 8);
    replaced_utf8_ += AppendSanitizedUtf8(text, &out);
  }
  return out;
}

absl::Status DocumentBuilder::StartSection(absl::string_view heading, int page) {
  if (absl::Status s = CheckDeadline(); !s.ok()) return s;
  ParsedSection section;
  section.heading = Clean(absl::StripAsciiWhitespace(heading));
  section.page = page;
  if (absl::Status s = Charge(section.heading.size()); !s.ok()) return s;
  doc_.sections.push_back(std::move(section));
  return absl::OkStatus();
}

absl::Status DocumentBuilder::AddParagraph(absl::string_view text) {
  if (absl::Status s = CheckDeadline(); !s.ok()) return s;
  if (IsBlank(text)) return absl::OkStatus();
  std::string clean = Clean(text);
  if (doc_.sections.empty()) doc_.sections.emplace_back();
  std::string& body = doc_.sections.back().text;
  const size_t separator = body.empty() ? 0 : 2;
  if (absl::Status s = Charge(clean.size() + separator); !s.ok()) return s;
  if (separator != 0) body.append("\n\n");
  body.append(clean);
  return absl::OkStatus();
}

void DocumentBuilder::SetTitle(absl::string_view title) {
  if (has_title()) return;
  std::string clean = Clean(TruncateUtf8(absl::StripAsciiWhitespace(title), kMaxTitleBytes));
  // Titles are one line.
  for (char& c : clean) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  doc_.title = std::string(TruncateUtf8(clean, kMaxTitleBytes));
}

void DocumentBuilder::AddWarning(std::string warning) {
  doc_.warnings.push_back(std::move(warning));
}

ParsedDocument DocumentBuilder::Finish() && {
  std::erase_if(doc_.sections,
                [](const ParsedSection& s) { return s.heading.empty() && s.text.empty(); });
  if (!has_title()) {
    for (const ParsedSection& s : doc_.sections) {
      if (!s.heading.empty()) {
        SetTitle(s.heading);
        break;
      }
    }
  }
  if (!has_title() && !doc_.sections.empty()) {
    for (const ParsedSection& s : doc_.sections) {
      absl::string_view text = s.text;
      const size_t start = text.find_first_not_of(" \t\r\n");
      if (start == absl::string_view::npos) continue;
      text.remove_prefix(start);
      SetTitle(text.substr(0, text.find('\n')));
      break;
    }
  }
  if (replaced_utf8_ > 0) {
    doc_.warnings.push_back(
        absl::StrCat("replaced ", replaced_utf8_, " invalid UTF-8 sequences with U+FFFD"));
  }
  return std::move(doc_);
}

}  // namespace tessera::parse
