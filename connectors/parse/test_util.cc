#include "connectors/parse/test_util.h"

#include <zip.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"

namespace tessera::parse::testing {
namespace {

[[noreturn]] void Die(absl::string_view what) {
  std::fprintf(stderr, "test_util: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

std::string XmlEscape(absl::string_view text) {
  return absl::StrReplaceAll(text, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}});
}

constexpr absl::string_view kWordNsDecl =
    "xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"";

}  // namespace

absl::StatusOr<std::string> ReadTestData(absl::string_view name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  const std::string path =
      absl::StrCat(srcdir ? srcdir : ".", "/", workspace ? workspace : "tessera",
                   "/connectors/parse/testdata/", name);
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

std::string BuildZip(const std::vector<ZipEntry>& entries) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* buffer = zip_source_buffer_create(nullptr, 0, 0, &error);
  if (buffer == nullptr) Die("zip_source_buffer_create");
  zip_source_keep(buffer);  // read it back after zip_close
  zip_t* archive = zip_open_from_source(buffer, ZIP_TRUNCATE, &error);
  if (archive == nullptr) Die(zip_error_strerror(&error));
  for (const ZipEntry& entry : entries) {
    zip_source_t* data = zip_source_buffer(archive, entry.data.data(), entry.data.size(), 0);
    if (data == nullptr) Die("zip_source_buffer");
    const zip_int64_t index =
        zip_file_add(archive, entry.name.c_str(), data, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE);
    if (index < 0) Die(zip_strerror(archive));
    if (zip_set_file_compression(archive, index, entry.compress ? ZIP_CM_DEFLATE : ZIP_CM_STORE,
                                 entry.compress ? 9 : 0) != 0) {
      Die(zip_strerror(archive));
    }
  }
  if (zip_close(archive) != 0) Die(zip_strerror(archive));
  zip_stat_t stat;
  zip_stat_init(&stat);
  if (zip_source_stat(buffer, &stat) != 0 || zip_source_open(buffer) != 0) Die("zip read back");
  std::string out(stat.size, '\0');
  if (zip_source_read(buffer, out.data(), out.size()) != static_cast<zip_int64_t>(out.size())) {
    Die("zip_source_read");
  }
  zip_source_close(buffer);
  zip_source_free(buffer);
  zip_error_fini(&error);
  return out;
}

std::string DocxParagraph(absl::string_view text, absl::string_view style_id) {
  std::string ppr;
  if (!style_id.empty()) ppr = absl::StrCat("<w:pPr><w:pStyle w:val=\"", style_id, "\"/></w:pPr>");
  return absl::StrCat("<w:p>", ppr, "<w:r><w:t xml:space=\"preserve\">", XmlEscape(text),
                      "</w:t></w:r></w:p>");
}

std::string BuildDocx(absl::string_view body_xml, absl::string_view styles_xml,
                      absl::string_view core_title) {
  std::vector<ZipEntry> entries = {
      {"[Content_Types].xml",
       "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>"
       "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">"
       "<Default Extension=\"rels\" "
       "ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>"
       "<Default Extension=\"xml\" ContentType=\"application/xml\"/>"
       "<Override PartName=\"/word/document.xml\" ContentType=\"application/"
       "vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/>"
       "</Types>"},
      {"_rels/.rels",
       "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>"
       "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
       "<Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/"
       "relationships/officeDocument\" Target=\"word/document.xml\"/></Relationships>"},
      {"word/document.xml",
       absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>"
                    "<w:document ",
                    kWordNsDecl, "><w:body>", body_xml, "</w:body></w:document>")},
  };
  if (!styles_xml.empty()) {
    entries.push_back(
        {"word/styles.xml", absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?><w:styles ",
                                         kWordNsDecl, ">", styles_xml, "</w:styles>")});
  }
  if (!core_title.empty()) {
    entries.push_back(
        {"docProps/core.xml",
         absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?><cp:coreProperties "
                      "xmlns:cp=\"http://schemas.openxmlformats.org/package/2006/metadata/"
                      "core-properties\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">"
                      "<dc:title>",
                      XmlEscape(core_title), "</dc:title></cp:coreProperties>")});
  }
  return BuildZip(entries);
}

std::string BuildPdf(const std::vector<std::string>& pages, absl::string_view title,
                     bool encrypted) {
  // Objects: 1 catalog, 2 page tree, 3 font, then a page and its content
  // stream per page, then the optional Info and Encrypt dictionaries.
  std::vector<std::string> objects;
  std::string kids;
  for (size_t i = 0; i < pages.size(); ++i) absl::StrAppend(&kids, 4 + 2 * i, " 0 R ");
  objects.push_back("<< /Type /Catalog /Pages 2 0 R >>");
  objects.push_back(
      absl::StrCat("<< /Type /Pages /Kids [", kids, "] /Count ", pages.size(), " >>"));
  objects.push_back("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
  for (size_t i = 0; i < pages.size(); ++i) {
    objects.push_back(absl::StrCat(
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R "
        ">> >> /Contents ",
        5 + 2 * i, " 0 R >>"));
    const std::string stream = absl::StrCat("BT /F1 12 Tf 72 720 Td (", pages[i], ") Tj ET");
    objects.push_back(
        absl::StrCat("<< /Length ", stream.size(), " >>\nstream\n", stream, "\nendstream"));
  }
  std::string trailer_extra;
  if (!title.empty()) {
    objects.push_back(absl::StrCat("<< /Title (", title, ") >>"));
    absl::StrAppend(&trailer_extra, " /Info ", objects.size(), " 0 R");
  }
  if (encrypted) {
    // RC4-40 with arbitrary O and U values: the empty password does not match.
    objects.push_back(absl::StrCat("<< /Filter /Standard /V 1 /R 2 /O <", std::string(64, 'A'),
                                   "> /U <", std::string(64, 'B'), "> /P -4 >>"));
    absl::StrAppend(&trailer_extra, " /Encrypt ", objects.size(),
                    " 0 R /ID [<00112233445566778899AABBCCDDEEFF>"
                    "<00112233445566778899AABBCCDDEEFF>]");
  }
  std::string pdf = "%PDF-1.4\n";
  std::vector<size_t> offsets;
  for (size_t i = 0; i < objects.size(); ++i) {
    offsets.push_back(pdf.size());
    absl::StrAppend(&pdf, i + 1, " 0 obj\n", objects[i], "\nendobj\n");
  }
  const size_t xref = pdf.size();
  absl::StrAppend(&pdf, "xref\n0 ", objects.size() + 1, "\n0000000000 65535 f \n");
  for (size_t offset : offsets) absl::StrAppend(&pdf, absl::StrFormat("%010d 00000 n \n", offset));
  absl::StrAppend(&pdf, "trailer\n<< /Size ", objects.size() + 1, " /Root 1 0 R", trailer_extra,
                  " >>\nstartxref\n", xref, "\n%%EOF\n");
  return pdf;
}

}  // namespace tessera::parse::testing
