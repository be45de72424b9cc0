#include "connectors/parse/document_parser.h"

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/status.h"
#include "connectors/parse/charset.h"
#include "connectors/parse/csv_parser.h"
#include "connectors/parse/document_builder.h"
#include "connectors/parse/docx_parser.h"
#include "connectors/parse/html_parser.h"
#include "connectors/parse/pdf_parser.h"
#include "connectors/parse/pptx_parser.h"
#include "connectors/parse/text_parser.h"
#include "connectors/parse/utf8.h"
#include "connectors/parse/xlsx_parser.h"
#include "connectors/parse/zip_archive.h"

namespace tessera::parse {
namespace {

constexpr absl::string_view kOctetStream = "application/octet-stream";
constexpr absl::string_view kZip = "application/zip";

struct TypeName {
  absl::string_view name;  // extension (with dot) or MIME alias, lower case
  absl::string_view mime;
};

// Supported formats: extensions and MIME aliases -> canonical MIME type.
constexpr TypeName kSupported[] = {
    {".pdf", kMimePdf},
    {".docx", kMimeDocx},
    {".xlsx", kMimeXlsx},
    {".xlsm", kMimeXlsx},
    {".pptx", kMimePptx},
    {".csv", kMimeCsv},
    {".tsv", kMimeTsv},
    {".tab", kMimeTsv},
    {".html", kMimeHtml},
    {".htm", kMimeHtml},
    {".xhtml", kMimeHtml},
    {".md", kMimeMarkdown},
    {".markdown", kMimeMarkdown},
    {".txt", kMimePlainText},
    {".text", kMimePlainText},
    {"application/pdf", kMimePdf},
    {"application/x-pdf", kMimePdf},
    {kMimeDocx, kMimeDocx},
    {kMimeXlsx, kMimeXlsx},
    {"application/vnd.ms-excel.sheet.macroenabled.12", kMimeXlsx},
    {kMimePptx, kMimePptx},
    {"text/csv", kMimeCsv},
    {"application/csv", kMimeCsv},
    {"text/x-csv", kMimeCsv},
    {"text/comma-separated-values", kMimeCsv},
    {"text/tab-separated-values", kMimeTsv},
    {"text/html", kMimeHtml},
    {"application/xhtml+xml", kMimeHtml},
    {"text/markdown", kMimeMarkdown},
    {"text/x-markdown", kMimeMarkdown},
    {"text/plain", kMimePlainText},
};

// Common unsupported extensions, so that errors can name the format.
constexpr TypeName kUnsupportedExtensions[] = {
    {".doc", "application/msword"},
    {".xls", "application/vnd.ms-excel"},
    {".ppt", "application/vnd.ms-powerpoint"},
    {".odt", "application/vnd.oasis.opendocument.text"},
    {".rtf", "application/rtf"},
    {".zip", kZip},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},
    {".gif", "image/gif"},
};

absl::string_view Lookup(absl::string_view name, absl::Span<const TypeName> table) {
  for (const TypeName& t : table) {
    if (t.name == name) return t.mime;
  }
  return {};
}

// "type/subtype" with an IANA top-level type; parameters stripped, lower case.
// Empty if `s` does not look like a MIME type (then it is a file name: a path
// such as "docs/readme.md" has no IANA top-level type before the slash).
std::string AsMimeType(absl::string_view s) {
  s = absl::StripAsciiWhitespace(s.substr(0, s.find(';')));
  const size_t slash = s.find('/');
  if (slash == absl::string_view::npos || s.find('/', slash + 1) != absl::string_view::npos) {
    return "";
  }
  const std::string type = absl::AsciiStrToLower(s.substr(0, slash));
  static constexpr absl::string_view kTopLevel[] = {
      "application", "audio", "font", "image", "message", "model", "multipart", "text", "video"};
  bool known = false;
  for (absl::string_view t : kTopLevel) known = known || t == type;
  const absl::string_view subtype = s.substr(slash + 1);
  if (!known || subtype.empty()) return "";
  for (char c : subtype) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        absl::string_view("!#$&^_.+-").find(c) == absl::string_view::npos) {
      return "";
    }
  }
  return absl::AsciiStrToLower(s);
}

// Lower-case extension of the last path component, with the dot ("" if none).
std::string Extension(absl::string_view filename) {
  const size_t slash = filename.find_last_of("/\\");
  if (slash != absl::string_view::npos) filename.remove_prefix(slash + 1);
  const size_t dot = filename.rfind('.');
  if (dot == absl::string_view::npos || dot == 0) return "";
  return absl::AsciiStrToLower(filename.substr(dot));
}

struct Declared {
  std::string mime;  // canonical if supported, else as declared; may be empty
  bool supported = false;
};

Declared Classify(absl::string_view filename_or_mime) {
  Declared d;
  if (std::string mime = AsMimeType(filename_or_mime); !mime.empty()) {
    const absl::string_view canonical = Lookup(mime, kSupported);
    d.supported = !canonical.empty();
    d.mime = d.supported ? std::string(canonical) : mime;
    return d;
  }
  const std::string ext = Extension(filename_or_mime);
  if (ext.empty()) return d;
  if (const absl::string_view mime = Lookup(ext, kSupported); !mime.empty()) {
    d.mime = std::string(mime);
    d.supported = true;
  } else {
    d.mime = std::string(Lookup(ext, kUnsupportedExtensions));
  }
  return d;
}

bool LooksLikeHtml(absl::string_view bytes) {
  if (absl::StartsWith(bytes, "\xEF\xBB\xBF")) bytes.remove_prefix(3);
  bytes = absl::StripLeadingAsciiWhitespace(bytes.substr(0, 1024));
  for (absl::string_view start : {"<!doctype html", "<html", "<head", "<body"}) {
    if (bytes.size() >= start.size() &&
        absl::EqualsIgnoreCase(bytes.substr(0, start.size()), start)) {
      return true;
    }
  }
  return false;
}

bool LooksLikeText(absl::string_view bytes) {
  if (absl::StartsWith(bytes, "\xFF\xFE") || absl::StartsWith(bytes, "\xFE\xFF")) return true;
  const absl::string_view head = bytes.substr(0, 8192);
  return head.find('\0') == absl::string_view::npos &&
         ValidUtf8PrefixAllowingTruncation(head) == head.size();
}

// The OOXML type of a zip archive by its main part (reads only the zip
// directory); kZip for other archives.
std::string SniffZip(absl::string_view bytes) {
  absl::StatusOr<std::unique_ptr<ZipArchive>> zip = ZipArchive::Open(bytes);
  if (!zip.ok()) return std::string(kZip);
  if ((*zip)->Contains("word/document.xml")) return std::string(kMimeDocx);
  if ((*zip)->Contains("xl/workbook.xml")) return std::string(kMimeXlsx);
  if ((*zip)->Contains("ppt/presentation.xml")) return std::string(kMimePptx);
  return std::string(kZip);
}

bool IsOoxml(absl::string_view mime) {
  return mime == kMimeDocx || mime == kMimeXlsx || mime == kMimePptx;
}

// Binary formats recognisable by their first bytes; "" if none.
std::string SniffBinary(absl::string_view bytes) {
  if (bytes.substr(0, 1024).find("%PDF-") != absl::string_view::npos) {
    return std::string(kMimePdf);
  }
  if (absl::StartsWith(bytes, absl::string_view("PK\x03\x04", 4))) return SniffZip(bytes);
  if (LooksLikeHtml(bytes)) return std::string(kMimeHtml);
  return "";
}

}  // namespace

std::string DetectMimeType(absl::string_view bytes, absl::string_view filename_or_mime) {
  const Declared declared = Classify(filename_or_mime);
  if (declared.supported && IsOoxml(declared.mime)) {
    // A misnamed file: a PDF or another OOXML type under an Office name.
    const std::string sniffed = SniffBinary(bytes);
    if (sniffed == kMimePdf || (IsOoxml(sniffed) && sniffed != declared.mime)) return sniffed;
  }
  if (declared.supported) return declared.mime;
  const std::string sniffed = SniffBinary(bytes);
  if (!sniffed.empty() && sniffed != kZip) return sniffed;
  // Plain text only when nothing more specific was declared: an image/svg+xml
  // file is text too, but not text we claim to understand.
  const bool generic = declared.mime.empty() || declared.mime == kOctetStream;
  if (generic && sniffed.empty() && !bytes.empty() && LooksLikeText(bytes)) {
    return std::string(kMimePlainText);
  }
  if (!declared.mime.empty()) return declared.mime;
  if (!sniffed.empty()) return sniffed;
  return std::string(kOctetStream);
}

absl::StatusOr<ParsedDocument> ParseDocument(absl::string_view bytes,
                                             absl::string_view filename_or_mime,
                                             const ParseOptions& options) {
  RETURN_IF_ERROR(CheckInputSize(bytes.size(), options));
  const std::string mime = DetectMimeType(bytes, filename_or_mime);
  ParseOptions text_options = options;
  if (text_options.charset.empty() && !AsMimeType(filename_or_mime).empty()) {
    text_options.charset = CharsetFromMimeType(filename_or_mime);
  }
  if (bytes.empty()) {
    ParsedDocument empty;
    empty.mime_type = mime;
    return empty;
  }
  if (mime == kMimePdf) return ParsePdf(bytes, options);
  if (mime == kMimeDocx) return ParseDocx(bytes, options);
  if (mime == kMimeXlsx) return ParseXlsx(bytes, options);
  if (mime == kMimePptx) return ParsePptx(bytes, options);
  if (mime == kMimeHtml) return ParseHtml(bytes, text_options);
  if (mime == kMimeCsv) return ParseCsv(bytes, text_options);
  if (mime == kMimeTsv) return ParseTsv(bytes, text_options);
  if (mime == kMimeMarkdown) return ParseMarkdown(bytes, text_options);
  if (mime == kMimePlainText) return ParsePlainText(bytes, text_options);
  const std::string source =
      filename_or_mime.empty() ? "" : absl::StrCat(" (from '", filename_or_mime, "')");
  if (mime == kOctetStream) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unrecognised document format", source,
        ": neither the name nor the content matches PDF, DOCX, XLSX, PPTX, HTML, CSV, "
        "TSV, Markdown or text"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported document format '", mime, "'", source,
                   "; supported: PDF, DOCX, XLSX, PPTX, HTML, CSV, TSV, Markdown, plain text"));
}

}  // namespace tessera::parse
