#include "connectors/parse/docx_parser.h"

#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "connectors/parse/document_builder.h"
#include "connectors/parse/zip_archive.h"
#include "pugixml.hpp"

namespace tessera::parse {
namespace {

constexpr absl::string_view kDocumentPart = "word/document.xml";
constexpr absl::string_view kStylesPart = "word/styles.xml";
constexpr absl::string_view kCorePropertiesPart = "docProps/core.xml";
// Namespaces of WordprocessingML: transitional (what Word writes) and strict.
constexpr absl::string_view kWordNs =
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main";
constexpr absl::string_view kWordNsStrict = "http://purl.oclc.org/ooxml/wordprocessingml/main";
constexpr int kTitleLevel = 0;  // heading "level" of the Title style
constexpr int kNotHeading = -1;

absl::string_view Name(const pugi::xml_node& node) { return node.name(); }

// The element-name prefix ("w:", or "" for a default namespace) bound to
// WordprocessingML on `root`. pugixml does not resolve namespaces; declaring
// them on the root, as every producer does, is all we support.
std::string WordPrefix(const pugi::xml_node& root) {
  for (const pugi::xml_attribute& attr : root.attributes()) {
    const absl::string_view value = attr.value();
    if (value != kWordNs && value != kWordNsStrict) continue;
    const absl::string_view name = attr.name();
    if (name == "xmlns") return "";
    if (absl::StartsWith(name, "xmlns:")) return absl::StrCat(name.substr(6), ":");
  }
  return "w:";
}

absl::Status LoadXml(std::string& buffer, absl::string_view part, pugi::xml_document& doc) {
  // In place: `buffer` must outlive `doc`. Whitespace-only text is kept when it
  // is an element's only child (<w:t xml:space="preserve"> </w:t>).
  const pugi::xml_parse_result result = doc.load_buffer_inplace(
      buffer.data(), buffer.size(), pugi::parse_default | pugi::parse_ws_pcdata_single,
      pugi::encoding_auto);
  if (!result) {
    return absl::DataLossError(absl::StrCat(part, " is not well-formed XML: ", result.description(),
                                            " at byte ", result.offset));
  }
  if (!doc.document_element()) {
    return absl::DataLossError(absl::StrCat(part, " has no root element"));
  }
  return absl::OkStatus();
}

// "Heading3" -> 3, "Title" -> 0 (case-insensitive); kNotHeading otherwise.
int LevelFromStyleName(absl::string_view name, absl::string_view heading_word) {
  if (absl::EqualsIgnoreCase(name, "title")) return kTitleLevel;
  if (name.size() < heading_word.size() + 1 || !absl::StartsWithIgnoreCase(name, heading_word)) {
    return kNotHeading;
  }
  int level;
  if (!absl::SimpleAtoi(name.substr(heading_word.size()), &level)) return kNotHeading;
  return level >= 1 && level <= 9 ? level : kNotHeading;
}

// w:outlineLvl 0..8 marks heading levels 1..9 (9 means body text).
int LevelFromOutline(const pugi::xml_node& ppr, const std::string& prefix) {
  const pugi::xml_node outline = ppr.child((prefix + "outlineLvl").c_str());
  if (!outline) return kNotHeading;
  int value;
  if (!absl::SimpleAtoi(outline.attribute((prefix + "val").c_str()).value(), &value)) {
    return kNotHeading;
  }
  return value >= 0 && value <= 8 ? value + 1 : kNotHeading;
}

// styleId -> heading level, for paragraph styles that are headings by name
// ("heading 1", "Title": Word's built-in names, kept in English even in
// localised files whose styleIds are translated) or by outline level.
using HeadingStyles = absl::flat_hash_map<std::string, int>;

HeadingStyles ReadHeadingStyles(const pugi::xml_document& doc) {
  HeadingStyles styles;
  const pugi::xml_node root = doc.document_element();
  const std::string prefix = WordPrefix(root);
  const std::string style_tag = prefix + "style";
  const std::string type_attr = prefix + "type";
  const std::string id_attr = prefix + "styleId";
  const std::string name_tag = prefix + "name";
  const std::string val_attr = prefix + "val";
  const std::string ppr_tag = prefix + "pPr";
  for (const pugi::xml_node& style : root.children(style_tag.c_str())) {
    const absl::string_view type = style.attribute(type_attr.c_str()).value();
    if (!type.empty() && type != "paragraph") continue;
    const std::string id = style.attribute(id_attr.c_str()).value();
    if (id.empty()) continue;
    const absl::string_view name =
        style.child(name_tag.c_str()).attribute(val_attr.c_str()).value();
    int level = LevelFromStyleName(name, "heading ");
    if (level == kNotHeading) level = LevelFromOutline(style.child(ppr_tag.c_str()), prefix);
    if (level != kNotHeading) styles[id] = level;
  }
  return styles;
}

// Walks w:body in document order and feeds paragraphs, headings and tables
// to the builder. Iterative, using pugixml's parent/sibling links.
class BodyWalker {
 public:
  BodyWalker(DocumentBuilder& builder, const std::string& prefix, const HeadingStyles& styles)
      : builder_(builder),
        styles_(styles),
        prefix_(prefix),
        p_(prefix + "p"),
        t_(prefix + "t"),
        tab_(prefix + "tab"),
        ptab_(prefix + "ptab"),
        br_(prefix + "br"),
        cr_(prefix + "cr"),
        no_break_hyphen_(prefix + "noBreakHyphen"),
        tbl_(prefix + "tbl"),
        tr_(prefix + "tr"),
        tc_(prefix + "tc"),
        ppr_(prefix + "pPr"),
        pstyle_(prefix + "pStyle"),
        val_(prefix + "val") {
    for (const char* skipped : {"rPr", "sectPr", "tblPr", "tblGrid", "trPr", "tcPr", "del",
                                "moveFrom", "sdtPr", "sdtEndPr", "delText", "instrText"}) {
      skipped_.push_back(prefix + skipped);
    }
  }

  absl::Status Walk(const pugi::xml_node& body) {
    pugi::xml_node node = body.first_child();
    size_t visited = 0;
    while (node) {
      if (++visited % 1024 == 0) RETURN_IF_ERROR(builder_.CheckDeadline());
      if (Enter(node) && node.first_child()) {
        node = node.first_child();
        continue;
      }
      // `node` is done: leave it and every ancestor that has no next sibling.
      while (true) {
        RETURN_IF_ERROR(Exit(node));
        if (pugi::xml_node next = node.next_sibling()) {
          node = next;
          break;
        }
        node = node.parent();
        if (node == body) {
          node = pugi::xml_node();
          break;
        }
      }
    }
    // Text outside any paragraph (malformed but harmless).
    return builder_.AddParagraph(std::exchange(paragraph_, {}));
  }

 private:
  std::string& Sink() { return table_depth_ > 0 ? cell_ : paragraph_; }

  static void Separate(std::string& s) {
    if (!s.empty() && s.back() != ' ' && s.back() != '\n' && s.back() != '\t') s.push_back(' ');
  }

  // Handles an element on the way down. Returns whether to visit its children.
  bool Enter(const pugi::xml_node& node) {
    if (node.type() != pugi::node_element) return false;
    const absl::string_view name = Name(node);
    if (name == t_) {
      for (const pugi::xml_node& child : node.children()) {
        if (child.type() == pugi::node_pcdata || child.type() == pugi::node_cdata) {
          Sink().append(child.value());
        }
      }
      return false;
    }
    if (name == tab_ || name == ptab_) {
      Sink().push_back(table_depth_ > 0 ? ' ' : '\t');
      return false;
    }
    if (name == br_ || name == cr_) {
      Sink().push_back(table_depth_ > 0 ? ' ' : '\n');
      return false;
    }
    if (name == no_break_hyphen_) {
      Sink().push_back('-');
      return false;
    }
    if (name == p_) {
      ++p_depth_;
      if (table_depth_ > 0 || p_depth_ > 1) {
        Separate(Sink());  // paragraph in a cell, or in a text box in a run
      } else {
        heading_level_ = kNotHeading;
      }
      return true;
    }
    if (name == ppr_) {
      if (p_depth_ == 1 && table_depth_ == 0) heading_level_ = HeadingLevel(node);
      return false;
    }
    if (name == tbl_) {
      if (++table_depth_ > 1) Separate(cell_);
      return true;
    }
    if (name == tr_) {
      if (table_depth_ == 1) row_.clear();
      return true;
    }
    if (name == tc_) {
      if (table_depth_ == 1) cell_.clear();
      return true;
    }
    // mc:AlternateContent repeats its content in mc:Fallback for old readers.
    if (absl::EndsWith(name, ":Fallback")) return false;
    for (const std::string& skipped : skipped_) {
      if (name == skipped) return false;
    }
    return true;
  }

  // Handles an element on the way up (also one whose children were skipped).
  absl::Status Exit(const pugi::xml_node& node) {
    if (node.type() != pugi::node_element) return absl::OkStatus();
    const absl::string_view name = Name(node);
    if (name == p_) {
      if (p_depth_ > 0) --p_depth_;
      if (p_depth_ > 0) Separate(Sink());  // end of a text-box paragraph
      if (p_depth_ > 0 || table_depth_ > 0) return absl::OkStatus();
      std::string text = std::exchange(paragraph_, {});
      if (heading_level_ == kNotHeading || absl::StripAsciiWhitespace(text).empty()) {
        return builder_.AddParagraph(text);
      }
      if (heading_level_ == kTitleLevel) builder_.SetTitle(text);
      return builder_.StartSection(text);
    }
    if (table_depth_ == 0) return absl::OkStatus();
    if (name == tc_ && table_depth_ == 1) {
      std::string cell = std::exchange(cell_, {});
      for (char& c : cell) {
        if (c == '\t' || c == '\n') c = ' ';
      }
      row_.push_back(std::string(absl::StripAsciiWhitespace(cell)));
    } else if (name == tr_ && table_depth_ == 1) {
      bool empty = true;
      for (const std::string& cell : row_) empty = empty && cell.empty();
      if (!empty) absl::StrAppend(&table_, absl::StrJoin(row_, "\t"), "\n");
      row_.clear();
    } else if (name == tbl_) {
      if (--table_depth_ == 0) return builder_.AddParagraph(std::exchange(table_, {}));
      Separate(cell_);
    }
    return absl::OkStatus();
  }

  int HeadingLevel(const pugi::xml_node& ppr) const {
    const absl::string_view style_id = ppr.child(pstyle_.c_str()).attribute(val_.c_str()).value();
    if (!style_id.empty()) {
      if (auto it = styles_.find(style_id); it != styles_.end()) return it->second;
      const int level = LevelFromStyleName(style_id, "heading");
      if (level != kNotHeading) return level;
    }
    return LevelFromOutline(ppr, prefix_);
  }

  DocumentBuilder& builder_;
  const HeadingStyles& styles_;
  const std::string prefix_;
  // Qualified element names, e.g. "w:p".
  const std::string p_, t_, tab_, ptab_, br_, cr_, no_break_hyphen_, tbl_, tr_, tc_, ppr_, pstyle_,
      val_;
  std::vector<std::string> skipped_;  // elements whose content is not text

  int p_depth_ = 0;
  int table_depth_ = 0;
  int heading_level_ = kNotHeading;
  std::string paragraph_;         // text of the open top-level paragraph
  std::string cell_;              // text of the open top-level table cell
  std::vector<std::string> row_;  // cells of the open top-level row
  std::string table_;             // rows of the open top-level table
};

// Reads an optional part within `budget` bytes, charging what was read.
// Failures become warnings: the document is still usable without it.
bool ReadOptionalPart(const ZipArchive& zip, absl::string_view part, size_t& budget,
                      DocumentBuilder& builder, std::string& buffer, pugi::xml_document& doc) {
  if (!zip.Contains(part)) return false;
  absl::StatusOr<std::string> data = zip.Read(part, budget);
  absl::Status status = data.status();
  if (status.ok()) {
    budget -= data->size();
    buffer = *std::move(data);
    status = LoadXml(buffer, part, doc);
  }
  if (!status.ok()) {
    builder.AddWarning(absl::StrCat("ignored ", part, ": ", status.message()));
    return false;
  }
  return true;
}

}  // namespace

bool IsOleCompoundFile(absl::string_view bytes) {
  return absl::StartsWith(bytes, absl::string_view("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", 8));
}

bool LooksLikeDocx(absl::string_view bytes) {
  if (!absl::StartsWith(bytes, "PK")) return false;
  absl::StatusOr<std::unique_ptr<ZipArchive>> zip = ZipArchive::Open(bytes);
  return zip.ok() && (*zip)->Contains(kDocumentPart);
}

absl::StatusOr<ParsedDocument> ParseDocx(absl::string_view bytes, const ParseOptions& options) {
  DocumentBuilder builder(options, kMimeDocx);
  RETURN_IF_ERROR(CheckInputSize(bytes.size(), options));
  if (IsOleCompoundFile(bytes)) {
    return absl::InvalidArgumentError(
        "file is an OLE compound document (a legacy .doc, or an Office file protected with a "
        "password), not a DOCX; only unencrypted .docx is supported");
  }
  absl::StatusOr<std::unique_ptr<ZipArchive>> opened = ZipArchive::Open(bytes);
  if (!opened.ok()) return Annotate(opened.status(), "not a valid DOCX");
  const ZipArchive& zip = **opened;
  if (!zip.Contains(kDocumentPart)) {
    return absl::DataLossError(
        absl::StrCat("not a valid DOCX: the zip archive has no ", kDocumentPart));
  }

  // All parts read share one decompression budget.
  size_t budget = options.max_output_bytes;
  absl::StatusOr<std::string> document_data = zip.Read(kDocumentPart, budget);
  if (!document_data.ok()) return Annotate(document_data.status(), "DOCX");
  std::string document_buffer = *std::move(document_data);
  budget -= document_buffer.size();
  pugi::xml_document document;
  RETURN_IF_ERROR(Annotate(LoadXml(document_buffer, kDocumentPart, document), "corrupt DOCX"));
  RETURN_IF_ERROR(builder.CheckDeadline());

  std::string core_buffer;
  pugi::xml_document core;
  if (ReadOptionalPart(zip, kCorePropertiesPart, budget, builder, core_buffer, core)) {
    for (const pugi::xml_node& child : core.document_element().children()) {
      const absl::string_view name = Name(child);
      if (name == "title" || absl::EndsWith(name, ":title")) {
        builder.SetTitle(child.text().get());
        break;
      }
    }
  }
  HeadingStyles styles;
  {
    std::string styles_buffer;
    pugi::xml_document styles_doc;
    if (ReadOptionalPart(zip, kStylesPart, budget, builder, styles_buffer, styles_doc)) {
      styles = ReadHeadingStyles(styles_doc);
    }
  }

  const pugi::xml_node root = document.document_element();
  const std::string prefix = WordPrefix(root);
  const pugi::xml_node body = root.child((prefix + "body").c_str());
  if (!body) {
    return absl::DataLossError(
        absl::StrCat("corrupt DOCX: ", kDocumentPart, " has no <", prefix, "body>"));
  }
  BodyWalker walker(builder, prefix, styles);
  RETURN_IF_ERROR(walker.Walk(body));
  return std::move(builder).Finish();
}

}  // namespace tessera::parse
