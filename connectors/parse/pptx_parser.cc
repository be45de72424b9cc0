#include "connectors/parse/pptx_parser.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "connectors/parse/document_builder.h"
#include "connectors/parse/docx_parser.h"
#include "connectors/parse/ooxml.h"
#include "connectors/parse/zip_archive.h"
#include "pugixml.hpp"

namespace tessera::parse {
namespace {

using ooxml::Attr;
using ooxml::Child;
using ooxml::LocalName;

constexpr absl::string_view kDefaultPresentation = "ppt/presentation.xml";

template <typename T>
absl::StatusOr<T> WithContext(absl::StatusOr<T> result, absl::string_view context) {
  if (!result.ok()) return Annotate(result.status(), context);
  return result;
}

// The placeholder type of a shape (p:nvSpPr/p:nvPr/p:ph type); "" if none.
absl::string_view PlaceholderType(const pugi::xml_node& sp) {
  const pugi::xml_node ph = Child(Child(Child(sp, "nvSpPr"), "nvPr"), "ph");
  if (!ph) return "";
  const absl::string_view type = Attr(ph, "type");
  return type.empty() ? "body" : type;
}

bool IsSkippedPlaceholder(absl::string_view type) {
  return type == "sldNum" || type == "dt" || type == "ftr" || type == "hdr" || type == "sldImg";
}

// Text of one slide or notes page: title paragraphs and the others.
struct SlideText {
  std::vector<std::string> title;
  std::vector<std::string> paragraphs;
};

// Walks a slide's XML in document order without recursion.
class ShapeWalker {
 public:
  explicit ShapeWalker(DocumentBuilder& builder) : builder_(builder) {}

  absl::Status Walk(const pugi::xml_node& root, SlideText& out) {
    out_ = &out;
    pugi::xml_node node = root.first_child();
    size_t visited = 0;
    while (node) {
      if (++visited % 1024 == 0) RETURN_IF_ERROR(builder_.CheckDeadline());
      if (Enter(node) && node.first_child()) {
        node = node.first_child();
        continue;
      }
      while (true) {
        Exit(node);
        if (pugi::xml_node next = node.next_sibling()) {
          node = next;
          break;
        }
        node = node.parent();
        if (!node || node == root) {
          node = pugi::xml_node();
          break;
        }
      }
    }
    return absl::OkStatus();
  }

 private:
  std::string& Sink() { return in_cell_ ? cell_ : paragraph_; }

  bool Enter(const pugi::xml_node& node) {
    if (node.type() != pugi::node_element) return false;
    const absl::string_view name = LocalName(node.name());
    if (name == "t") {
      Sink().append(node.text().get());
      return false;
    }
    if (name == "br") {
      Sink().push_back(in_cell_ ? ' ' : '\n');
      return false;
    }
    if (name == "sp") {
      const absl::string_view type = PlaceholderType(node);
      if (IsSkippedPlaceholder(type)) return false;
      if (!title_sp_ && (type == "title" || type == "ctrTitle")) title_sp_ = node;
      return true;
    }
    if (name == "p") {
      if (in_cell_ && !cell_.empty()) cell_.push_back(' ');
      if (!in_cell_) paragraph_.clear();
      return true;
    }
    if (name == "tbl") {
      ++table_depth_;
      return true;
    }
    if (name == "tc" && table_depth_ == 1) {
      in_cell_ = true;
      cell_.clear();
      return true;
    }
    if (name == "Fallback" || name == "pPr" || name == "rPr" || name == "endParaRPr" ||
        name == "spPr" || name == "nvSpPr" || name == "tblPr" || name == "tblGrid" ||
        name == "extLst") {
      return false;
    }
    return true;
  }

  void Exit(const pugi::xml_node& node) {
    if (node.type() != pugi::node_element) return;
    const absl::string_view name = LocalName(node.name());
    if (name == "p" && !in_cell_) {
      std::string text(absl::StripAsciiWhitespace(std::exchange(paragraph_, {})));
      if (text.empty()) return;
      (title_sp_ ? out_->title : out_->paragraphs).push_back(std::move(text));
    } else if (name == "sp" && node == title_sp_) {
      title_sp_ = pugi::xml_node();
    } else if (name == "tc" && table_depth_ == 1) {
      in_cell_ = false;
      for (char& c : cell_) {
        if (c == '\t' || c == '\n') c = ' ';
      }
      row_.push_back(std::string(absl::StripAsciiWhitespace(cell_)));
    } else if (name == "tr" && table_depth_ == 1) {
      bool empty = true;
      for (const std::string& cell : row_) empty = empty && cell.empty();
      if (!empty) absl::StrAppend(&table_, absl::StrJoin(row_, "\t"), "\n");
      row_.clear();
    } else if (name == "tbl") {
      if (--table_depth_ == 0 && !table_.empty()) {
        out_->paragraphs.push_back(std::exchange(table_, {}));
      }
    }
  }

  DocumentBuilder& builder_;
  SlideText* out_ = nullptr;
  pugi::xml_node title_sp_;  // the title placeholder being walked, if any
  std::string paragraph_;
  int table_depth_ = 0;
  bool in_cell_ = false;
  std::string cell_;
  std::vector<std::string> row_;
  std::string table_;
};

}  // namespace

absl::StatusOr<ParsedDocument> ParsePptx(absl::string_view bytes, const ParseOptions& options) {
  DocumentBuilder builder(options, kMimePptx);
  RETURN_IF_ERROR(CheckInputSize(bytes.size(), options));
  if (IsOleCompoundFile(bytes)) {
    return absl::InvalidArgumentError(
        "file is an OLE compound document (a legacy .ppt, or an Office file protected with a "
        "password), not a PPTX; only unencrypted .pptx is supported");
  }
  absl::StatusOr<std::unique_ptr<ZipArchive>> opened = ZipArchive::Open(bytes);
  if (!opened.ok()) return Annotate(opened.status(), "not a valid PPTX");
  const ZipArchive& zip = **opened;
  size_t budget = options.max_output_bytes;  // shared by every part read
  const std::string presentation_part = ooxml::MainPart(zip, kDefaultPresentation, &budget);
  if (!zip.Contains(presentation_part)) {
    return absl::DataLossError(
        absl::StrCat("not a valid PPTX: the zip archive has no ", presentation_part));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<ooxml::XmlPart> presentation,
                   WithContext(ooxml::ReadXmlPart(zip, presentation_part, &budget), "PPTX"));
  ASSIGN_OR_RETURN(ooxml::Relationships rels,
                   WithContext(ooxml::ReadRelationships(zip, presentation_part, &budget), "PPTX"));
  builder.SetTitle(ooxml::CoreTitle(zip, &budget));

  int number = 0;
  for (pugi::xml_node id : Child(presentation->root(), "sldIdLst").children()) {
    if (id.type() != pugi::node_element || LocalName(id.name()) != "sldId") continue;
    ++number;
    const auto target = rels.target.find(std::string(ooxml::RelId(id)));
    if (target == rels.target.end() || !zip.Contains(target->second)) {
      builder.AddWarning(absl::StrCat("slide ", number, " has no slide part; skipped"));
      continue;
    }
    const std::string& slide_part = target->second;
    const std::string context = absl::StrCat("PPTX slide ", number);
    ASSIGN_OR_RETURN(std::unique_ptr<ooxml::XmlPart> slide,
                     WithContext(ooxml::ReadXmlPart(zip, slide_part, &budget), context));
    SlideText text;
    {
      ShapeWalker walker(builder);
      RETURN_IF_ERROR(walker.Walk(slide->root(), text));
    }
    slide.reset();

    // Speaker notes, if the slide links a notes page.
    SlideText notes;
    ASSIGN_OR_RETURN(ooxml::Relationships slide_rels,
                     WithContext(ooxml::ReadRelationships(zip, slide_part, &budget), context));
    for (const auto& [rel_id, type] : slide_rels.type) {
      if (!absl::EndsWith(type, "/notesSlide")) continue;
      const std::string& notes_part = slide_rels.target[rel_id];
      if (!zip.Contains(notes_part)) break;
      absl::StatusOr<std::unique_ptr<ooxml::XmlPart>> notes_xml =
          ooxml::ReadXmlPart(zip, notes_part, &budget);
      if (!notes_xml.ok()) {
        if (absl::IsResourceExhausted(notes_xml.status())) {
          return Annotate(notes_xml.status(), context);
        }
        builder.AddWarning(absl::StrCat("ignored the notes of slide ", number, ": ",
                                        notes_xml.status().message()));
        break;
      }
      ShapeWalker walker(builder);
      RETURN_IF_ERROR(walker.Walk((*notes_xml)->root(), notes));
      break;
    }

    const std::string title = absl::StrJoin(text.title, " ");
    RETURN_IF_ERROR(
        builder.StartSection(title.empty() ? absl::StrCat("Slide ", number) : title, number));
    builder.SetTitle(title);  // the first slide title, unless core.xml had one
    for (const std::string& paragraph : text.paragraphs) {
      RETURN_IF_ERROR(builder.AddParagraph(paragraph));
    }
    // Notes pages may carry a title too; all of it is note text.
    std::vector<std::string> note_lines = std::move(notes.title);
    for (std::string& line : notes.paragraphs) note_lines.push_back(std::move(line));
    if (!note_lines.empty()) {
      RETURN_IF_ERROR(builder.AddParagraph(absl::StrCat("Notes: ", absl::StrJoin(note_lines, "\n"))));
    }
  }
  return std::move(builder).Finish();
}

}  // namespace tessera::parse
