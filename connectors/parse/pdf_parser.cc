#include "connectors/parse/pdf_parser.h"

#include <poppler/cpp/poppler-document.h>
#include <poppler/cpp/poppler-global.h>
#include <poppler/cpp/poppler-page.h>

#include <climits>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "connectors/parse/document_builder.h"

namespace tessera::parse {
namespace {

// Poppler reports problems through one process-wide callback. Messages raised
// on a thread that is inside ParsePdf are collected there (poppler calls back
// on the thread that hit the problem); all others are dropped.
constexpr size_t kMaxPopplerMessages = 8;
thread_local std::vector<std::string>* tls_poppler_messages = nullptr;

void QuietPopplerError(const std::string& message, void* /*closure*/) {
  std::vector<std::string>* messages = tls_poppler_messages;
  if (messages == nullptr || messages->size() >= kMaxPopplerMessages) return;
  messages->push_back(std::string(absl::StripAsciiWhitespace(message)));
}

void InstallQuietPopplerErrors() {
  // Function-local static: installed once, thread-safely, before first use.
  static const bool installed = [] {
    poppler::set_debug_error_function(&QuietPopplerError, nullptr);
    return true;
  }();
  (void)installed;
}

// Routes this thread's poppler messages into `messages` while in scope.
class ScopedPopplerMessages {
 public:
  explicit ScopedPopplerMessages(std::vector<std::string>* messages)
      : previous_(std::exchange(tls_poppler_messages, messages)) {}
  ~ScopedPopplerMessages() { tls_poppler_messages = previous_; }
  ScopedPopplerMessages(const ScopedPopplerMessages&) = delete;
  ScopedPopplerMessages& operator=(const ScopedPopplerMessages&) = delete;

 private:
  std::vector<std::string>* previous_;
};

std::string ToUtf8(const poppler::ustring& s) {
  const poppler::byte_array bytes = s.to_utf8();
  return std::string(bytes.begin(), bytes.end());
}

std::string Detail(const std::vector<std::string>& messages) {
  if (messages.empty()) return "";
  return absl::StrCat(" (poppler: ", messages.front(), ")");
}

// Page text as poppler lays it out; form feeds and NULs dropped.
std::string PageText(const poppler::page& page) {
  std::string text = ToUtf8(page.text());
  std::erase_if(text, [](char c) { return c == '\f' || c == '\0'; });
  return text;
}

absl::StatusOr<ParsedDocument> ParsePdfUnsafe(absl::string_view bytes, const ParseOptions& options,
                                              std::vector<std::string>& messages) {
  DocumentBuilder builder(options, kMimePdf);
  RETURN_IF_ERROR(CheckInputSize(bytes.size(), options));
  if (bytes.size() > static_cast<size_t>(INT_MAX)) {
    return absl::ResourceExhaustedError("PDF input over 2 GiB is not supported");
  }
  // load_from_raw_data does not copy: `bytes` outlives `doc`.
  std::unique_ptr<poppler::document> doc(
      poppler::document::load_from_raw_data(bytes.data(), static_cast<int>(bytes.size())));
  if (doc == nullptr) {
    return absl::DataLossError(
        absl::StrCat("not a readable PDF: corrupt, truncated or not a PDF", Detail(messages)));
  }
  // Must come first: other calls on a locked document crash poppler.
  if (doc->is_locked()) {
    return absl::InvalidArgumentError(
        "PDF is encrypted with a user password; it cannot be read without it");
  }
  const int pages = doc->pages();
  if (pages <= 0) {
    return absl::DataLossError(absl::StrCat("PDF has no readable pages", Detail(messages)));
  }
  builder.SetTitle(ToUtf8(doc->get_title()));

  int empty_pages = 0;
  for (int i = 0; i < pages; ++i) {
    RETURN_IF_ERROR(builder.CheckDeadline());
    std::unique_ptr<poppler::page> page(doc->create_page(i));
    std::string text;
    if (page != nullptr) text = PageText(*page);
    if (absl::StripAsciiWhitespace(text).empty()) {
      ++empty_pages;
      continue;
    }
    RETURN_IF_ERROR(builder.StartSection("", i + 1));
    RETURN_IF_ERROR(builder.AddParagraph(text));
  }
  if (empty_pages > 0) {
    builder.AddWarning(absl::StrCat(empty_pages, " of ", pages,
                                    " pages have no extractable text (scanned images are not "
                                    "OCRed)"));
  }
  if (!messages.empty()) {
    builder.AddWarning(absl::StrCat("poppler reported problems: ", absl::StrJoin(messages, "; ")));
  }
  return std::move(builder).Finish();
}

}  // namespace

absl::StatusOr<ParsedDocument> ParsePdf(absl::string_view bytes, const ParseOptions& options) {
  InstallQuietPopplerErrors();
  std::vector<std::string> messages;
  ScopedPopplerMessages scope(&messages);
  try {
    return ParsePdfUnsafe(bytes, options, messages);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of memory parsing PDF");
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat("PDF could not be parsed: ", e.what()));
  } catch (...) {
    return absl::DataLossError("PDF could not be parsed: unknown error in poppler");
  }
}

}  // namespace tessera::parse
